#!/usr/bin/env bash
# `make cold-start`: sizes and cold starts of keyrotor's Lambda functions (BENCHMARKS.md,
# "Lambda size"; issue #10).
#   1. builds the release binaries (`cargo build --release --bins`; the release profile is
#      tuned for Lambda) unless KEYROTOR_NO_BUILD=1;
#   2. for each function binary: its stripped size and its zip as `bootstrap` (deflate -9);
#   3. starts the local AWS emulator (scripts/emulator.sh, stopped on exit) and measures RUNS
#      cold starts per function (default 5) under a minimal Lambda Runtime API on loopback
#      (scripts/cold_start.py): spawn -> first GET .../invocation/next (init) and spawn ->
#      POST of the response or error (cold start including the first invocation), one event
#      per process in a fresh emulator account, then the process is killed.
# Prints a markdown table and JSON; the full report (every run) is written to
# .keyrotor/cold-start/report-x86_64.json, the zips next to it.
# Usage: scripts/cold-start.sh [RUNS]
#   KEYROTOR_BUILD_NICE (default 15): nice level of the build.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS]" >&2; exit 2; }

if [[ ${KEYROTOR_NO_BUILD:-} != 1 ]]; then
  echo "building release binaries ..." >&2
  nice -n "${KEYROTOR_BUILD_NICE:-15}" cargo build --quiet --release --bins
fi

base=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT

python3 scripts/cold_start.py --bin-dir target/release --endpoint "$base" \
  --emulator-log .keyrotor/emulator.log --runs "$runs" --out .keyrotor/cold-start --arch x86_64
echo >&2
echo "x86_64 release binaries, local emulator (moto) on $(nproc) cores; $runs runs per function" >&2
