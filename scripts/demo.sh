#!/usr/bin/env bash
# `make demo`: a full keyrotor run against a local emulated AWS account.
#   1. starts the emulator (moto) and seeds a realistic account as of now: IAM users with
#      fresh / old / unused / never-used keys, an exempt user, a break-glass user, API keys
#      in usage plans bound to Secrets Manager secrets, certificates expiring in 3, 20 and
#      200 days and one already expired;
#   2. runs the main job: `keyrotor init`, `keyrotor plan --record` (what a scheduled sweep
#      in mode = "plan" does), then the sweep state machine itself, executed locally
#      (scripts/sfn-local.sh: aws-local-stepfunctions + cargo-lambda + the real function
#      binaries) in mode = "enforce", now and 8 days later: IAM keys warned then deactivated,
#      certificates reported, an API key rotated through grace and recovery in a child
#      execution; then an undo with `keyrotor reactivate iam-key`, a rotation for a leaked
#      key, a Secrets Manager rotation of an IAM key, a
#      migration to a role (plan, apply, status), the certificate report and certificate sweep,
#      and prints the audit trail and its verification;
#   3. ends by writing the HTML posture report (keyrotor report --html) and printing its path.
# KEEP=1 leaves the emulator running afterwards so you can explore it.
set -euo pipefail
cd "$(dirname "$0")/.."

account=123456789012
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

cargo build --quiet --bins
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
summarize() { # the JSON document of scripts/sfn-local.sh
  .venv/bin/python - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
print(f'  execution: {doc["status"]}')
for e in doc["executions"]:
    print(f'  - {e["execution"]} ({e["machine"]}): {e["status"]}')
out = doc.get("output") or {}
results = out.get("results") or []
if results:
    iam, certs, migration, api = results
    for a in iam.get("applied", []):
        print(f'  iam-keys   {a["status"]:8} {a["action"]:10} {a["reason"]:18} {a["key"]}  {a["user"]:12} -> {a["stage"]}')
    for n in certs.get("notifications", []):
        print(f'  certs      {n["status"]:8} notify     {n["domain"]} (step {n["step"]})')
    for t in migration.get("transitions", []):
        print(f'  migration  {t["status"]:8} {t["user"]}: {t["from"]} -> {t["to"]}')
    steps = [e["state"] for e in doc["events"] if e["type"] == "StateEntered" and e["execution"] != "sweep"]
    for child in [e for e in doc["executions"] if e["machine"] == "api-key-rotation"]:
        print(f'  api-keys   {child["status"]:8} {child["execution"]}: ' + " -> ".join(
            e["state"] for e in doc["events"]
            if e["execution"] == child["execution"] and e["type"] == "StateEntered"))
PY
}
echo
echo "==> the sweep state machine, executed locally: state-machine/sweep.asl.json under"
echo "    aws-local-stepfunctions, its Lambda tasks served by the real function binaries under"
echo "    cargo-lambda, mode = enforce. IAM keys, certificates and migrations are swept in"
echo "    parallel; partner-acme (100 days old) is rotated in a child execution whose Wait states"
echo "    hold the grace period and the recovery window (shortened to milliseconds here)"
KEYROTOR_SFN_ENDPOINT=$endpoint KEYROTOR_CONFIG=$enforce KEYROTOR_SFN_BIN_DIR=target/debug \
  scripts/sfn-local.sh sweep > .keyrotor/sweep-execution.json || true
summarize .keyrotor/sweep-execution.json
echo
echo "==> the sweep state machine again, 8 days later (KEYROTOR_NOW=$later): the warned keys,"
echo "    still unused, are deactivated"
KEYROTOR_NOW=$later KEYROTOR_SFN_ENDPOINT=$endpoint KEYROTOR_CONFIG=$enforce KEYROTOR_SFN_BIN_DIR=target/debug \
  scripts/sfn-local.sh sweep > .keyrotor/sweep-execution-later.json || true
summarize .keyrotor/sweep-execution-later.json
key=$(.venv/bin/python -c 'import json,sys; d=json.load(open(sys.argv[1])); print(next((a["key"] for a in d["output"]["results"][0]["applied"] if a["action"] == "deactivate" and a["status"] == "done"), ""))' .keyrotor/sweep-execution-later.json 2>/dev/null || true)
if [[ -n $key ]]; then
  echo
  echo "==> keyrotor reactivate iam-key $key   (the owner needs it back)"
  KEYROTOR_NOW=$later enforcing reactivate iam-key "$key"
fi
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
echo
echo "==> keyrotor report --html .keyrotor/report.html   (posture: key ages, states, rotations, expiry, funnel, compliance)"
keyrotor report --html .keyrotor/report.html --quiet
echo
echo "The posture report is at $(pwd)/.keyrotor/report.html (open it in a browser)."
if [[ ${KEEP:-0} == 1 ]]; then
  echo
  echo "The emulator keeps running at $base. Try:"
  echo "  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 \\"
  echo "    ./target/debug/keyrotor --endpoint-url $endpoint --config examples/keyrotor.toml plan --output json"
  echo "Stop it with scripts/emulator.sh stop"
fi
