#!/usr/bin/env bash
# `make demo`: a full keyrotor run against a local emulated AWS account.
#   1. starts the emulator (moto) and seeds a realistic account as of now: IAM users with
#      fresh / old / unused / never-used keys, an exempt user, a break-glass user, API keys
#      in usage plans bound to Secrets Manager secrets, certificates expiring in 3, 20 and
#      200 days and one already expired;
#   2. runs the main job: `keyrotor init`, `keyrotor plan --record` (what a scheduled sweep
#      in mode = "plan" does), the IAM key sweep in mode = "enforce" now and 8 days later
#      (warnings, then deactivations), an undo with `keyrotor reactivate iam-key`, the API
#      key sweep now, after the grace period and after the recovery window (rotate, retire,
#      delete), a rotation for a leaked key, a Secrets Manager rotation of an IAM key, a
#      migration to a role (plan, apply, status), the certificate report and certificate sweep,
#      and prints the audit trail and its verification.
# KEEP=1 leaves the emulator running afterwards so you can explore it.
set -euo pipefail
cd "$(dirname "$0")/.."

account=123456789012
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

cargo build --quiet --bin keyrotor
base=$(scripts/emulator.sh start)
if [[ ${KEEP:-0} != 1 ]]; then
  trap 'scripts/emulator.sh stop' EXIT
fi
endpoint="$base/_account/$account"

echo "==> seeding account $account in the emulator at $base (world as of $now)"
if ! .venv/bin/python tests/emulator/seed_world.py --endpoint "$base" --account "$account" --now "$now" \
    > .keyrotor/manifest.json 2> .keyrotor/seed.err; then
  if grep -q "already seeded" .keyrotor/seed.err; then
    echo "    (already seeded by an earlier KEEP=1 run)"
  else
    cat .keyrotor/seed.err >&2
    exit 1
  fi
fi

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
keyrotor() { ./target/debug/keyrotor --endpoint-url "$endpoint" --config examples/keyrotor.toml "$@"; }

echo
echo "==> keyrotor init"
keyrotor init
echo
echo "==> keyrotor plan --record"
keyrotor plan --record
# The IAM key sweep acts only in mode = "enforce": the demo uses a copy of the example policy
# with that one change.
enforce=.keyrotor/demo-enforce.toml
sed 's/^mode = "plan"/mode = "enforce"/' examples/keyrotor.toml > "$enforce"
later=$(date -u -d "$now + 8 days" +%Y-%m-%dT%H:%M:%SZ)
enforcing() { ./target/debug/keyrotor --endpoint-url "$endpoint" --config "$enforce" "$@"; }
echo
echo "==> keyrotor sweep --kind iam-keys   (mode = enforce: owners of unused keys are warned)"
enforcing sweep --kind iam-keys
echo
echo "==> KEYROTOR_NOW=$later keyrotor sweep --kind iam-keys   (8 days later: still unused, so deactivated)"
KEYROTOR_NOW=$later enforcing sweep --kind iam-keys --output json > .keyrotor/iam-sweep.json
.venv/bin/python - .keyrotor/iam-sweep.json <<'PY'
import json, sys
done = json.load(open(sys.argv[1]))
for a in done["applied"]:
    print(f'  {a["status"]:8} {a["action"]:10} {a["reason"]:18} {a["key"]}  {a["user"]:14} -> {a["stage"]}')
PY
key=$(.venv/bin/python -c 'import json,sys; print(next((a["key"] for a in json.load(open(sys.argv[1]))["applied"] if a["action"] == "deactivate" and a["status"] == "done"), ""))' .keyrotor/iam-sweep.json)
if [[ -n $key ]]; then
  echo
  echo "==> keyrotor reactivate iam-key $key   (the owner needs it back)"
  KEYROTOR_NOW=$later enforcing reactivate iam-key "$key"
fi
later2=$(date -u -d "$now + 15 days" +%Y-%m-%dT%H:%M:%SZ)
echo
echo "==> keyrotor sweep --kind api-keys   (partner-acme is 100 days old: replacement created in both"
echo "    usage plans, published as AWSPENDING, verified, promoted to AWSCURRENT; the old key keeps working)"
enforcing sweep --kind api-keys
echo
echo "==> KEYROTOR_NOW=$later keyrotor sweep --kind api-keys   (grace period over: the old key is detached and disabled)"
KEYROTOR_NOW=$later enforcing sweep --kind api-keys
echo
echo "==> KEYROTOR_NOW=$later2 keyrotor sweep --kind api-keys   (recovery window over: the old key is deleted)"
KEYROTOR_NOW=$later2 enforcing sweep --kind api-keys
echo
echo "==> keyrotor rotate api-key partner-globex --reason compromised   (a leak: no grace period)"
enforcing rotate api-key partner-globex --reason compromised
echo
echo "==> keyrotor rotate secret keyrotor/iam/ci-deployer   (the rotation hook's four steps, in process)"
enforcing rotate secret keyrotor/iam/ci-deployer
echo
echo "==> keyrotor migrate plan heidi   (heidi is tagged keyrotor:migrate-to = role ci-runner)"
enforcing migrate plan heidi
echo
echo "==> keyrotor migrate apply heidi   (the role is created; its adoption is followed by the sweep)"
enforcing migrate apply heidi > /dev/null
enforcing migrate status
echo
echo "==> keyrotor certs --within 365d"
keyrotor certs --within 365d
echo
echo "==> keyrotor sweep --kind certs   (owners notified once per ladder step; no SNS topic in the demo policy, so reported only)"
keyrotor sweep --kind certs --emf .keyrotor/metrics.jsonl
echo "    (one CloudWatch EMF metric per certificate written to .keyrotor/metrics.jsonl)"
echo
echo "==> keyrotor audit list"
keyrotor audit list
echo
echo "==> keyrotor audit verify"
keyrotor audit verify
if [[ ${KEEP:-0} == 1 ]]; then
  echo
  echo "The emulator keeps running at $base. Try:"
  echo "  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 \\"
  echo "    ./target/debug/keyrotor --endpoint-url $endpoint --config examples/keyrotor.toml plan --output json"
  echo "Stop it with scripts/emulator.sh stop"
fi
