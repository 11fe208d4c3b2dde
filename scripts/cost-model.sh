#!/usr/bin/env bash
# `make cost`: the cost model of BENCHMARKS.md, from actual local executions.
#   Seeds the demo world in a fresh emulator account, then runs the sweep state machine
#   locally (scripts/sfn-local.sh: the real ASL, the real function binaries) today and 8
#   days later, recording every state entered and every Lambda invocation with its
#   duration. scripts/cost_model.py turns the counts into state transitions and Lambda
#   GB-seconds per credential and the price of 1,000 API key rotations under Standard and
#   Express workflows.
set -euo pipefail
cd "$(dirname "$0")/.."

account=${KEYROTOR_COST_ACCOUNT:-$(printf '5%011d' $((RANDOM * RANDOM)))}
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d "$now + 8 days" +%Y-%m-%dT%H:%M:%SZ)
out=.keyrotor/cost
mkdir -p "$out"
rm -f "$out"/*.jsonl "$out"/*.json

cargo build --quiet --bins
base=$(scripts/emulator.sh start)
endpoint="$base/_account/$account"
.venv/bin/python tests/emulator/seed_world.py --endpoint "$base" --account "$account" --now "$now" > "$out/manifest.json"
enforce="$out/enforce.toml"
sed 's/^mode = "plan"/mode = "enforce"/' examples/keyrotor.toml > "$enforce"
AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 \
  ./target/debug/keyrotor --endpoint-url "$endpoint" --config "$enforce" --quiet init > /dev/null

for run in today later; do
  at=$now
  [[ $run == later ]] && at=$later
  KEYROTOR_NOW=$at KEYROTOR_SFN_ENDPOINT=$endpoint KEYROTOR_CONFIG=$enforce KEYROTOR_SFN_BIN_DIR=target/debug \
    KEYROTOR_SFN_INVOCATIONS="$out/invocations-$run.jsonl" \
    scripts/sfn-local.sh sweep > "$out/execution-$run.json" || true
done
.venv/bin/python scripts/cost_model.py "$out" "$(grep -oP 'MemorySize: \K[0-9]+' infra/template.yaml | head -1)"
