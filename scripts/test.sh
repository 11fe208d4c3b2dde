#!/usr/bin/env bash
# The full test suite (`make test`): format, lints, template checks, unit, property,
# emulator-backed integration tests, local state machine executions and a short fuzz run of
# every decoder of outside input. One emulator serves every test; each test works in its own account.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# The deployment templates: cfn-lint (0 errors, 0 warnings) and checkov (0 failed checks;
# each skip is justified next to the resource it concerns).
.venv/bin/cfn-lint infra/*.yaml
.venv/bin/checkov -d infra --framework cloudformation --compact --quiet --skip-download

# The HTML report's browser test: Debian's chromium and playwright-core.
scripts/setup-browser.sh

endpoint=$(scripts/emulator.sh start)
trap 'scripts/emulator.sh stop' EXIT
export KEYROTOR_TEST_ENDPOINT=$endpoint

# The emulator's own additions (tests/emulator/moto_world.py: CloudTrail record and
# LookupEvents, seeding route), on a wrapper of their own (a few seconds).
.venv/bin/python -m unittest discover -s tests/emulator -p 'test_*.py'

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --all-targets --no-fail-fast
fi

# Every decoder of outside input under libFuzzer, each target for a short bounded time (a
# crash fails the suite). README.md, "Fuzzing", has the long run.
KEYROTOR_FUZZ_SECONDS=${KEYROTOR_FUZZ_SECONDS:-15} scripts/fuzz.sh
