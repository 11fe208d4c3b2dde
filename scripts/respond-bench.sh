#!/usr/bin/env bash
# Response-time harness for `keyrotor respond` (BENCHMARKS.md, "Responding to a leaked
# key"): in the emulator, a user whose key is bound to a secret, an "attacker" making a few
# signed calls with the key (one CreateUser), and HISTORY more CloudTrail events of the key
# (seeded through the emulator's /_keyrotor/cloudtrail-events route). Then, for a fresh key
# each time, `keyrotor respond iam-key` with --no-investigation (containment alone) and in
# full (containment, then the investigation), at the default pacing. Prints wall time and
# the AWS calls per operation of each run.
# Usage: scripts/respond-bench.sh [HISTORY...]   (default: 0 5000)
#        PROFILE=dev scripts/respond-bench.sh   (a debug build; default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
target=${CARGO_TARGET_DIR:-target}

histories=("$@")
[[ ${#histories[@]} -gt 0 ]] || histories=(0 5000)

cargo build --quiet --profile "$profile" --bin keyrotor
bin=$target/$dir/keyrotor
base=$(scripts/emulator.sh start)
work=$(mktemp -d)
trap 'scripts/emulator.sh stop; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf 'mode = "enforce"\n[audit]\ntable = "bench-audit"\nstate_table = "bench-state"\n' >"$work/policy.toml"

# seed ACCOUNT HISTORY: prints the leaked key's id
seed() {
  .venv/bin/python - "$base" "$1" "$2" "$now" <<'PY'
import json, sys, urllib.request
import boto3
base, account, history, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def client(service, **creds):
    return boto3.client(service, endpoint_url=f"{base}/_account/{account}", region_name="us-east-1",
                        aws_access_key_id=creds.get("id", "test"),
                        aws_secret_access_key=creds.get("secret", "test"))
iam, sm = client("iam"), client("secretsmanager")
iam.create_user(UserName="svc")
key = iam.create_access_key(UserName="svc")["AccessKey"]
arn = sm.create_secret(Name="svc/iam", SecretString=json.dumps({
    "userName": "svc", "accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}),
    Tags=[{"Key": "keyrotor:type", "Value": "iam-access-key"}])["ARN"]
iam.tag_user(UserName="svc", Tags=[{"Key": "keyrotor:secret", "Value": arn}])
attacker = client("iam", id=key["AccessKeyId"], secret=key["SecretAccessKey"])
attacker.list_users()
attacker.create_user(UserName="backdoor")
if history:
    body = json.dumps({"account": account, "region": "us-east-1", "accessKeyId": key["AccessKeyId"],
                       "count": history, "start": "2026-09-10T00:00:00Z", "spacingSeconds": 60}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{base}/_keyrotor/cloudtrail-events", data=body,
                                                  method="POST"), timeout=60).read()
print(key["AccessKeyId"])
PY
}

run() { # account key label extra-args...
  local account=$1 key=$2 label=$3
  shift 3
  KEYROTOR_NOW=$now "$bin" --endpoint-url "$base/_account/$account" \
    --config "$work/policy.toml" --output json init >/dev/null
  local start end
  start=$(date +%s.%N)
  KEYROTOR_NOW=$now "$bin" --endpoint-url "$base/_account/$account" \
    --config "$work/policy.toml" --call-stats --output json respond iam-key "$key" "$@" \
    >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  end=$(date +%s.%N)
  .venv/bin/python - "$work/out" "$work/err" "$label" "$start" "$end" <<'PY'
import json, sys
out, err, label, start, end = sys.argv[1:6]
r = json.load(open(out))[0]
calls = next(json.loads(l) for l in open(err) if l.startswith("{") and "aws_calls" in l)["aws_calls"]
activity = r.get("activity") or {}
print(f"{label:44} {float(end) - float(start):6.2f} s  status {r['status']}"
      f"  events {activity.get('event_count', '-')}  AWS calls {sum(calls.values())}")
for op, n in sorted(calls.items()):
    print(f"    {op:40} {n}")
PY
}

n=0
for history in "${histories[@]}"; do
  for mode in contain full; do
    n=$((n + 1))
    account=$(printf '77%010d' "$n")
    key=$(seed "$account" "$history")
    if [[ $mode == contain ]]; then
      run "$account" "$key" "history $history: containment (--no-investigation)" --no-investigation
    else
      run "$account" "$key" "history $history: containment + investigation"
    fi
  done
done
