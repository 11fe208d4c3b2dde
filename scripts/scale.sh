#!/usr/bin/env bash
# Scale harness: seeds an emulated account with N IAM users (default 1000; 1% with a due
# key, half with two keys) and counts the AWS calls, wall time and peak RSS of
#   1. `keyrotor plan --kind iam-keys`                      (read-only)
#   2. `keyrotor sweep --kind iam-keys`  at now             (mode = enforce: warns the due keys)
#   3. `keyrotor sweep --kind iam-keys`  at now + 8 days    (deactivates them)
# and, with API_KEYS (spread over 50 usage plans, 1% due) and CERTS (imported, expiring
# over the next year), the read-only plans of those kinds and of every kind at once:
#   4. `keyrotor plan --kind api-keys`
#   5. `keyrotor plan --kind certs`
#   6. `keyrotor plan` (every kind)
# Usage: scripts/scale.sh [USERS] [API_KEYS] [CERTS]
set -euo pipefail
cd "$(dirname "$0")/.."

users=${1:-1000}
api_keys=${2:-0}
certs=${3:-0}
account=$(printf '9%011d' "$users")
now=2026-11-25T00:00:00Z
later=2026-12-03T00:00:00Z

cargo build --quiet --release --bin keyrotor
base=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT

echo "seeding $users users into account $account ..." >&2
start=$SECONDS
.venv/bin/python tests/emulator/seed_scale.py --endpoint "$base" --account "$account" --users "$users" \
  --api-keys "$api_keys" --certs "$certs" --now "$now"
echo "seeded in $((SECONDS - start))s" >&2

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
policy=$(mktemp --suffix=.toml)
out=$(mktemp)
trap 'scripts/emulator.sh stop; rm -f "$policy" "$out" "$out.err"' EXIT
printf 'mode = "enforce"\n[audit]\ntable = "scale-audit"\nstate_table = "scale-state"\n' >"$policy"

measure() { # label, time, keyrotor arguments...
  local label=$1 at=$2
  shift 2
  KEYROTOR_NOW=$at /usr/bin/time -f '{"wall_seconds": %e, "peak_rss_kb": %M}' \
    target/release/keyrotor --endpoint-url "$base/_account/$account" --config "$policy" \
    --call-stats "$@" --output json 2>"$out.err" >"$out"
  echo "== $label"
  .venv/bin/python - "$out" "$out.err" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
calls = next(l for l in lines if "aws_calls" in l)["aws_calls"]
usage = next(l for l in lines if "wall_seconds" in l)
if "applied" in result:
    done = {}
    for a in result["applied"]:
        done[f'{a["action"]}:{a["status"]}'] = done.get(f'{a["action"]}:{a["status"]}', 0) + 1
    print("applied:", json.dumps(done, sort_keys=True))
else:
    print("planned actions:", len(result["actions"]))
iam = {k: v for k, v in calls.items() if k.startswith("iam:")}
print("iam calls:", sum(iam.values()), json.dumps(iam, sort_keys=True))
if "actions" in result:
    kinds = {}
    for a in result["actions"]:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    print("actions by kind:", json.dumps(kinds, sort_keys=True))
print("other calls:", json.dumps({k: v for k, v in calls.items() if not k.startswith("iam:")}, sort_keys=True))
print(json.dumps(usage))
PY
}

measure "plan --kind iam-keys" "$now" plan --kind iam-keys
target/release/keyrotor --endpoint-url "$base/_account/$account" --config "$policy" init >/dev/null
measure "sweep --kind iam-keys (warn)" "$now" sweep --kind iam-keys
measure "sweep --kind iam-keys (+8 days: deactivate)" "$later" sweep --kind iam-keys
if [[ $api_keys -gt 0 ]]; then
  measure "plan --kind api-keys" "$now" plan --kind api-keys
fi
if [[ $certs -gt 0 ]]; then
  measure "plan --kind certs" "$now" plan --kind certs
fi
if [[ $api_keys -gt 0 || $certs -gt 0 ]]; then
  measure "plan (every kind)" "$now" plan
fi
