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
shopt -s nullglob
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
root=$PWD
parallel=()
if [[ $jobs -gt 1 ]]; then
  parallel=(-jobs="$jobs" -workers="$jobs")
fi
for target in "${targets[@]}"; do
  mkdir -p "$work/$target/new" "fuzz/corpus/$target"
  log="$work/$target/run.log"
  # Run from the work directory: libFuzzer's parallel jobs write fuzz-N.log where they run.
  if (cd "$work/$target" && cargo fuzz run --fuzz-dir "$root/fuzz" --sanitizer none "$target" \
      new "$root/fuzz/corpus/$target" -- -max_total_time="$seconds" "${parallel[@]}") >"$log" 2>&1; then
    runs=$(cat "$log" "$work/$target"/fuzz-*.log | { grep -o 'Done [0-9]* runs' || true; } |
      awk '{s += $2} END {print s + 0}')
    printf 'fuzz: %-24s %10s executions in %ss, corpus %s seeds + %s new\n' "$target" "$runs" \
      "$seconds" "$(find "fuzz/corpus/$target" -type f | wc -l)" "$(find "$work/$target/new" -type f | wc -l)" >&2
  else
    echo "fuzz: $target FAILED:" >&2
    { cat "$log" "$work/$target"/fuzz-*.log 2>/dev/null || true; } |
      grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact' | head -20 >&2 || tail -30 "$log" >&2
    failed+=("$target")
  fi
done
echo "fuzz: total $((SECONDS - start))s" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
  exit 1
fi
