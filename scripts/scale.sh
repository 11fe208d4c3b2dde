#!/usr/bin/env bash
# Scale harness: seeds an emulated account with N IAM users (default 1000; 1% with a due
# key, half with two keys) and counts the AWS calls, wall time and peak RSS of
# `keyrotor plan --kind iam-keys`. Usage: scripts/scale.sh [USERS]
set -euo pipefail
cd "$(dirname "$0")/.."

users=${1:-1000}
account=$(printf '9%011d' "$users")
now=2026-11-25T00:00:00Z

cargo build --quiet --release --bin keyrotor
base=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT

echo "seeding $users users into account $account ..." >&2
.venv/bin/python tests/emulator/seed_scale.py --endpoint "$base" --account "$account" --users "$users" --now "$now"

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 KEYROTOR_NOW=$now
out=$(mktemp)
/usr/bin/time -f '{"wall_seconds": %e, "peak_rss_kb": %M}' \
  target/release/keyrotor --endpoint-url "$base/_account/$account" --call-stats \
  plan --kind iam-keys --output json 2>"$out.err" >"$out"
echo "planned actions: $(.venv/bin/python -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["actions"]))' "$out")"
grep -E 'aws_calls|wall_seconds' "$out.err"
rm -f "$out" "$out.err"
