# keyrotor — see README.md.
.PHONY: demo test setup build lint bench scale scale-org respond-bench cost cold-start clean-emulator

## demo: seed a local emulated AWS account and run keyrotor's main job against it
demo:
	scripts/demo.sh

## test: fmt check, clippy -D warnings, unit + property + emulator-backed integration tests, short fuzz run
test:
	scripts/test.sh

## setup: install the pinned emulator into .venv (done by demo and test as needed)
setup:
	scripts/setup.sh

build:
	cargo build --bins

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

## bench: criterion benches of the pure core
bench:
	cargo bench --bench plan

## scale: count the AWS calls of a plan over a large emulated account (see BENCHMARKS.md)
scale:
	scripts/scale.sh

## respond-bench: time `keyrotor respond` from the call to containment and to the finished report (see BENCHMARKS.md)
respond-bench:
	scripts/respond-bench.sh

## scale-org: plan over an emulated organization, accounts one at a time and all at once (see BENCHMARKS.md)
scale-org:
	scripts/scale-org.sh

## cost: state transitions and Lambda GB-seconds per credential from local executions (see BENCHMARKS.md)
cost:
	scripts/cost-model.sh

## cold-start: sizes and cold starts of the release Lambda binaries under a local Runtime API (see BENCHMARKS.md)
cold-start:
	scripts/cold-start.sh

clean-emulator:
	scripts/emulator.sh stop
