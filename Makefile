# Entry points. The scripts in infra/ do all set-up (the emulator's Python venv lives in .dev/).
# `make dev` runs everything locally; `make test` runs what CI runs.

.DEFAULT_GOAL := help

.PHONY: help dev test build emulator-start emulator-stop fmt clippy clean-dev

help:
	@echo "make dev             run the API locally against the emulator (Ctrl-C stops it)"
	@echo "make test            fmt check, clippy -D warnings, all tests against the emulator"
	@echo "make build           cargo build --workspace"
	@echo "make fmt             format the workspace"
	@echo "make clippy          lint the workspace"
	@echo "make emulator-start  start the emulator (moto server) in the background"
	@echo "make emulator-stop   stop the emulator started by emulator-start"
	@echo "make clean-dev       stop that emulator and remove .dev (venv, logs, dev API key)"

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
