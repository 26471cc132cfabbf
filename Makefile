# Entry points. The scripts in infra/ do all set-up (the emulator's Python venv lives in .dev/).
# `make dev` runs everything locally; `make test` runs what CI runs.

.DEFAULT_GOAL := help

.PHONY: help dev test build emulator-start emulator-stop fmt clippy clean-dev bench-coldstart

help:
	@echo "make dev             run the API locally against the emulator (Ctrl-C stops it)"
	@echo "make test            fmt check, clippy -D warnings, all tests against the emulator"
	@echo "make build           cargo build --workspace"
	@echo "make fmt             format the workspace"
	@echo "make clippy          lint the workspace"
	@echo "make emulator-start  start the emulator (moto server) in the background"
	@echo "make emulator-stop   stop the emulator started by emulator-start"
	@echo "make clean-dev       stop that emulator and remove .dev (venv, logs, dev API key)"
	@echo "make bench-coldstart release builds, then cold-start init vs a hello-world lambda_runtime"

dev:
	bash infra/dev.sh

test:
	bash infra/test.sh

build:
	cargo build --workspace

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

emulator-start:
	bash infra/emulator.sh start

emulator-stop:
	bash infra/emulator.sh stop

clean-dev:
	bash infra/emulator.sh stop
	rm -rf .dev

# Release builds of the functions and of a hello-world lambda_runtime baseline, then their cold
# starts against a fake Runtime API (DESIGN section 11: init <= 1.3x the baseline).
bench-coldstart:
	cargo build --release -p create-connection -p api -p bench
	python3 infra/bench/coldstart.py "$${CARGO_TARGET_DIR:-target}/release"
