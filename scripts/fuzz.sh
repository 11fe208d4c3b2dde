#!/usr/bin/env bash
# Fuzzes every decoder of outside input (fuzz/fuzz_targets/*.rs) with cargo-fuzz (libFuzzer),
# each target for a bounded time, and prints the executions per target. `make test` runs it
# short; see README.md ("Fuzzing") for a long run.
#
# Usage: scripts/fuzz.sh [TARGET...]            (default: every target)
# Environment:
#   KEYROTOR_FUZZ_SECONDS  time per target (default 15)
#   KEYROTOR_FUZZ_JOBS     libFuzzer jobs per target (default 1)
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, -Cpasses=sancov-module); on a stable
# toolchain RUSTC_BOOTSTRAP=1 enables them. New corpus entries go to a temporary directory:
# the seeds in fuzz/corpus/<target> are read, never grown. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script; reproduce it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.13.2
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $version" ]]; then
  echo "fuzz: installing cargo-fuzz $version (about two minutes)" >&2
  cargo install cargo-fuzz --locked --version "$version" >&2
fi

export RUSTC_BOOTSTRAP=1
seconds=${KEYROTOR_FUZZ_SECONDS:-15}
jobs=${KEYROTOR_FUZZ_JOBS:-1}
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

start=$SECONDS
# One instrumented build of the crate and its dependencies for every target.
(cd fuzz && cargo fuzz build --sanitizer none) >&2
echo "fuzz: build took $((SECONDS - start))s" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$work/$target" "fuzz/corpus/$target"
  log="$work/$target.log"
  if (cd fuzz && cargo fuzz run --sanitizer none "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" -print_final_stats=1) >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | awk '{s += $2} END {print s + 0}')
    if [[ $runs == 0 ]]; then
      runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    fi
    printf 'fuzz: %-24s %10s executions in %ss, %s corpus entries\n' "$target" "$runs" "$seconds" \
      "$(find "$work/$target" "fuzz/corpus/$target" -type f | wc -l)" >&2
  else
    echo "fuzz: $target FAILED:" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact' "$log" | head -20 >&2 || tail -30 "$log" >&2
    failed+=("$target")
  fi
done
echo "fuzz: total $((SECONDS - start))s" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
  exit 1
fi
