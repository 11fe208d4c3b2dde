#!/usr/bin/env bash
# Runs one of keyrotor's state machines locally, with real components:
#   - the ASL from state-machine/ under aws-local-stepfunctions (npm, state-machine/node_modules);
#   - its Lambda tasks served by the real function binaries under cargo-lambda's runtime
#     emulator (`cargo lambda watch --only-lambda-apis`), each binary attached to it by name;
#   - those functions calling AWS at KEYROTOR_SFN_ENDPOINT (the local emulator).
# The child executions the sweep starts (states:startExecution.sync) run the same way, as
# nested local executions (state-machine/local/run.cjs). Wait and Retry pauses are shortened to milliseconds; the functions
# then take the policy time from the event ("at", KEYROTOR_EVENT_TIME=1), so a 7-day grace
# period passes in a moment.
#
# Usage: scripts/sfn-local.sh sweep|api-key-rotation|respond [INPUT_JSON]
# (respond: INPUT_JSON is the event as EventBridge delivers it, e.g. an AWS Health event)
# Environment:
#   KEYROTOR_SFN_ENDPOINT  AWS endpoint the functions call (required), e.g.
#                          http://127.0.0.1:PORT/_account/123456789012
#   KEYROTOR_CONFIG        policy file of the functions (default: built-in defaults)
#   KEYROTOR_NOW           policy time of the functions (optional)
#   KEYROTOR_SFN_BIN_DIR   where the function binaries are (default: build them into target/debug)
#   KEYROTOR_SFN_PAUSE_MS  Wait and Retry pauses in milliseconds (default 20)
#   KEYROTOR_SFN_LOG       file receiving the functions' logs (default: a temporary file)
#   KEYROTOR_SFN_RUNTIME_LOG  file receiving cargo-lambda's own log (default: a temporary file)
#   KEYROTOR_SFN_HISTORY   file receiving every execution event with its state input and
#                          output, one JSON document a line (default: none)
#   KEYROTOR_SFN_INVOCATIONS  file receiving every Lambda invocation, request and response
#                          payloads, one JSON document a line (default: none)
# Prints one JSON document (status, output or error, executions, events); exits 2 when the
# execution failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

machine=${1:?usage: scripts/sfn-local.sh sweep|api-key-rotation|respond [INPUT_JSON]}
input=${2:-"{}"}
: "${KEYROTOR_SFN_ENDPOINT:?set KEYROTOR_SFN_ENDPOINT to the AWS endpoint the functions call}"
pause=${KEYROTOR_SFN_PAUSE_MS:-20}
[[ -f state-machine/$machine.asl.json ]] || { echo "sfn-local: no state-machine/$machine.asl.json" >&2; exit 2; }
[[ -x .venv/bin/cargo-lambda ]] || scripts/setup.sh
[[ -d state-machine/node_modules/aws-local-stepfunctions ]] || scripts/setup.sh

bin_dir=${KEYROTOR_SFN_BIN_DIR:-}
if [[ -z $bin_dir ]]; then
  cargo build --quiet --bins
  bin_dir=target/debug
fi
functions=(plan iam-keys api-key migration certs record-failure respond-decode respond-contain respond-investigate respond-notify)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log=${KEYROTOR_SFN_LOG:-$work/functions.log}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "sfn-local: nothing listens on port $1" >&2
  return 1
}

export AWS_REGION=${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
export AWS_EC2_METADATA_DISABLED=true
runtime=$(free_port)
runtime_log=${KEYROTOR_SFN_RUNTIME_LOG:-$work/runtime.log}
.venv/bin/cargo-lambda lambda watch --only-lambda-apis -q -A 127.0.0.1 -P "$runtime" >>"$runtime_log" 2>&1 &
pids+=($!)
wait_port "$runtime"
for f in "${functions[@]}"; do
  env AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$runtime/.rt/keyrotor-$f" \
    AWS_LAMBDA_FUNCTION_NAME="keyrotor-$f" AWS_LAMBDA_FUNCTION_VERSION=1 \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
    AWS_ENDPOINT_URL="$KEYROTOR_SFN_ENDPOINT" KEYROTOR_EVENT_TIME=1 \
    "$bin_dir/keyrotor-$f" >>"$log" 2>&1 &
  pids+=($!)
done
sleep 0.5
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "sfn-local: a function did not start:" >&2; tail -5 "$log" >&2; exit 1; }
done
proxy=$(free_port)
node state-machine/local/lambda-invoke-proxy.cjs "$proxy" "$runtime" &
pids+=($!)
wait_port "$proxy"

# The definitions as deployed, with each function resolved to its local name.
for asl in state-machine/*.asl.json; do
  sed -e 's/\${PlanFunctionArn}/keyrotor-plan/g' \
    -e 's/\${IamKeysFunctionArn}/keyrotor-iam-keys/g' \
    -e 's/\${ApiKeyFunctionArn}/keyrotor-api-key/g' \
    -e 's/\${MigrationFunctionArn}/keyrotor-migration/g' \
    -e 's/\${CertsFunctionArn}/keyrotor-certs/g' \
    -e 's/\${RecordFailureFunctionArn}/keyrotor-record-failure/g' \
    -e 's/\${RespondDecodeFunctionArn}/keyrotor-respond-decode/g' \
    -e 's/\${RespondContainFunctionArn}/keyrotor-respond-contain/g' \
    -e 's/\${RespondInvestigateFunctionArn}/keyrotor-respond-investigate/g' \
    -e 's/\${RespondNotifyFunctionArn}/keyrotor-respond-notify/g' \
    -e 's/\${ApiKeyRotationStateMachineArn}/arn:aws:states:us-east-1:000000000000:stateMachine:keyrotor-api-key-rotation/g' \
    "$asl" >"$work/$(basename "$asl")"
done

export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$proxy"
printf '%s\n' "$input" | NODE_NO_WARNINGS=1 node state-machine/local/run.cjs "$work" "$machine" "$pause"
