#!/usr/bin/env bash
# Organizations scale harness: an emulated organization of a management account and
# MEMBERS member accounts (each with the member role of infra/member-role.yaml and USERS IAM
# users, 1% with a due key), then `keyrotor plan --kind iam-keys` over the organization with
# [accounts] concurrency = 1 and = MEMBERS + 1. Prints per run the wall time, peak RSS and the
# AWS calls (sts:AssumeRole once per member account; IAM calls per account). Pacing is per
# account, so accounts worked in at once finish in about the time of one.
# Usage: scripts/scale-org.sh [MEMBERS] [USERS]   (defaults 4, 500)
set -euo pipefail
cd "$(dirname "$0")/.."

members=${1:-4}
users=${2:-500}
now=2026-11-25T00:00:00Z
management=$(printf '8%011d' "$users")

cargo build --quiet --release --bin keyrotor
base=$(scripts/emulator.sh start)
work=$(mktemp -d)
trap 'scripts/emulator.sh stop; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1

echo "creating an organization of $members member accounts with $users users each ..." >&2
start=$SECONDS
.venv/bin/python - "$base" "$management" "$members" >"$work/members" <<'PY'
import json, sys
import boto3
base, management, members = sys.argv[1], sys.argv[2], int(sys.argv[3])
def client(service, account):
    return boto3.client(service, endpoint_url=f"{base}/_account/{account}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
org = client("organizations", management)
org.create_organization(FeatureSet="ALL")
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{management}:root"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": "scale-external-id"}}}]}
for n in range(members):
    status = org.create_account(AccountName=f"member-{n}", Email=f"member-{n}@example.com")
    account = status["CreateAccountStatus"]["AccountId"]
    client("iam", account).create_role(RoleName="KeyRotorMember", Path="/keyrotor/",
                                       AssumeRolePolicyDocument=json.dumps(trust))
    print(account)
PY
while read -r account; do
  .venv/bin/python tests/emulator/seed_scale.py --endpoint "$base" --account "$account" \
    --users "$users" --now "$now" >/dev/null
done <"$work/members"
echo "seeded in $((SECONDS - start))s" >&2

measure() { # concurrency
  printf 'mode = "plan"\n[accounts]\norganization = true\nexternal_id = "scale-external-id"\nconcurrency = %s\n[audit]\ntable = "scale-audit"\nstate_table = "scale-state"\n' "$1" >"$work/policy.toml"
  KEYROTOR_NOW=$now /usr/bin/time -f '{"wall_seconds": %e, "peak_rss_kb": %M}' \
    target/release/keyrotor --endpoint-url "$base/_account/$management" --config "$work/policy.toml" \
    --call-stats --output json plan --kind iam-keys 2>"$work/err" >"$work/out" || true
  echo "== plan --kind iam-keys over $((members + 1)) accounts, concurrency $1"
  .venv/bin/python - "$work/out" "$work/err" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
calls = next(l for l in lines if "aws_calls" in l)["aws_calls"]
usage = next(l for l in lines if "wall_seconds" in l)
for a in result["accounts"]:
    actions = len(a["result"]["actions"]) if a["status"] == "succeeded" else 0
    print(f'  {a["account"]} {a["name"] or "(management)":12} {a["status"]:9} actions {actions}')
iam = sum(v for k, v in calls.items() if k.startswith("iam:"))
print("iam calls:", iam, "| sts:AssumeRole:", calls.get("sts:AssumeRole", 0),
      "| organizations:ListAccounts:", calls.get("organizations:ListAccounts", 0))
print(json.dumps(usage))
PY
}

measure 1
measure $((members + 1))
