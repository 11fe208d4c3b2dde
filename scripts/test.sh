#!/usr/bin/env bash
# The full test suite (`make test`): format, lints, unit, property and emulator-backed
# integration tests. One emulator serves every test; each test works in its own account.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

endpoint=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT
export KEYROTOR_TEST_ENDPOINT=$endpoint

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --all-targets --no-fail-fast
fi
