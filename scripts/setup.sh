#!/usr/bin/env bash
# Installs what keyrotor's demo and tests need beyond Rust: a project-local virtualenv with
# the pinned AWS emulator (moto) and cargo-lambda (the Lambda runtime emulator), and
# state-machine/node_modules with aws-local-stepfunctions (npm).
# Idempotent: does nothing when the pinned set is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

req=tests/emulator/requirements.txt
lock=state-machine/package-lock.json
stamp=.venv/.installed
want=$(cat "$req" "$lock" | sha256sum | cut -d' ' -f1)

if [[ -f $stamp && $(cat "$stamp") == "$want" && -d state-machine/node_modules/aws-local-stepfunctions ]]; then
  exit 0
fi

command -v python3 >/dev/null || { echo "setup: python3 is required (3.10 or newer)" >&2; exit 1; }
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
echo "setup: installing $(grep -v '^#' "$req" | xargs) into .venv (about a minute)" >&2
.venv/bin/pip install --quiet --disable-pip-version-check -r "$req" >&2
command -v npm >/dev/null || { echo "setup: npm is required (Node 20 or newer)" >&2; exit 1; }
echo "setup: installing aws-local-stepfunctions (state-machine/package-lock.json)" >&2
npm ci --prefix state-machine --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
