# Entry points. The scripts in infra/ do all set-up (the emulator's Python venv lives in .dev/).
# `make dev` runs everything locally; `make test` runs what CI runs.

.DEFAULT_GOAL := help

.PHONY: help dev test build emulator-start emulator-stop fmt clippy clean-dev bench-coldstart bench-sync bench-memory bench-soak bench-faults bench-webhooks bench-scale fakes openapi package check-panic

help:
	@echo "make dev             run the API locally against the emulator (Ctrl-C stops it)"
	@echo "make test            fmt check, clippy -D warnings, all tests against the emulator"
	@echo "make fakes           the providers' fake APIs on fixed local ports, with demo data"
	@echo "make build           cargo build --workspace"
	@echo "make package         every function's arm64 release zip (cargo-lambda, zig), with its size,"
	@echo "                     then the panic check"
	@echo "make check-panic     the panic check alone: a handler panic in a binary built as deployed"
	@echo "                     is an error answer, and the process serves the next event"
	@echo "make openapi         rewrite openapi.json from the code (a test fails while they differ)"
	@echo "make fmt             format the workspace"
	@echo "make clippy          lint the workspace"
	@echo "make emulator-start  start the emulator (moto server) in the background"
	@echo "make emulator-stop   stop the emulator started by emulator-start"
	@echo "make clean-dev       stop that emulator and remove .dev (venv, node SDK, logs, dev API key)"
	@echo "make bench-coldstart deployed builds (this machine's architecture), then cold-start init"
	@echo "                     vs a hello-world lambda_runtime"
	@echo "make bench-memory    deployed builds, then each function's peak RSS on its sample events"
	@echo "make bench-soak      the dev stack under mixed load from several organizations, 1% of AWS"
	@echo "                     requests failed, then the invariants (SOAK_SECONDS=180 by default)"
	@echo "make bench-faults    the whole fault matrix: every AWS request of every operation failed"
	@echo "                     with every kind of fault (make test fails each once, one kind)"
	@echo "make bench-sync      deployed builds, then the sync worker on 100,000 stub entities"
	@echo "                     (BENCH_ENTITIES=5000 for a quick run) against the emulator"
	@echo "make bench-webhooks  webhook delivery on the emulator: commit -> first attempt latency"
	@echo "make bench-scale     10,000 connections due in the same minute: requests per claim, hand-off"
	@echo "                     (median, p99) and the sender's deliveries per second"

dev:
	bash infra/dev.sh

test:
	bash infra/test.sh

# Every provider fake on 127.0.0.1 (ports 4700-4708) with a demo workspace; prints the variables
# to start `make dev` with, in another terminal, and writes them to .dev/fakes.env.
fakes:
	cargo run -p fakes --bin fake-apis

build:
	cargo build --workspace

package:
	bash infra/package.sh

# The panic probe built as `make package` builds the functions, for this machine's architecture,
# against a fake Runtime API: a handler panic must be answered on the invocation's error route
# and the process must serve the next event (`make package` runs it too).
check-panic:
	bin=$$(bash infra/lambda-build.sh panic-probe) && python3 infra/bench/panic_check.py "$$bin"

openapi:
	UPDATE_OPENAPI=1 cargo test -p http-api --lib openapi::tests::the_checked_in_document_is_what_the_code_generates

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

# The benchmarks measure the deployed build: infra/lambda-build.sh builds these packages as
# `make package` does (cargo-lambda, the workspace release profile) but for this machine's
# architecture, and prints the directory holding each binary under its name. The benchmark
# helpers (the hello-world baseline, the sync fixture: the bench crate) are built the same way.
BENCH_PACKAGES := create-connection api oauth-callback sync-worker scheduler webhook-sender bench

# Cold starts of the functions and of a hello-world lambda_runtime baseline against a fake
# Runtime API (DESIGN section 11: init <= 1.3x the baseline).
bench-coldstart:
	bin=$$(bash infra/lambda-build.sh $(BENCH_PACKAGES)) && \
		python3 infra/bench/coldstart.py "$$bin"

# Each function's binary driven through every sample event in events/ (the e2e events test,
# pointed at those builds), its peak RSS recorded per event; the table of each binary's
# heaviest event against the 128 MB memory setting goes into BENCHMARKS.md.
bench-memory:
	bin=$$(bash infra/lambda-build.sh $(BENCH_PACKAGES)) && \
	LAMBDA_BINARY_DIR="$$bin" BENCH_MEMORY_REPORT="$$PWD/.dev/memory.jsonl" \
		bash infra/bench/with-emulator.sh \
		cargo test -p e2e every_sample_event_drives_its_functions_binary && \
	python3 infra/bench/memory.py .dev/memory.jsonl "$$bin"

# The sync worker binary as its own process, fed SQS messages through a fake Runtime API, on a
# stub connection of BENCH_ENTITIES entities: first sync, unchanged, 10% changed, full with
# deletes, next to the emulator's raw write rate. infra/bench/with-emulator.sh starts the
# emulator unless one answers, and stops it afterwards only if it started it.
bench-sync:
	bin=$$(bash infra/lambda-build.sh sync-worker bench) && \
	BENCH_BIN="$$bin" bash infra/bench/with-emulator.sh sh -c '"$$BENCH_PYTHON" infra/bench/sync.py \
		"$$BENCH_BIN" "$${BENCH_ENTITIES:-100000}"'

# The dev gateway (debug build) on loopback under a bounded mixed load from several
# organizations, with a share of its AWS requests failed at random; latency, 5xx and the
# invariants once it settled go into BENCHMARKS.md. Not part of `make test`.
bench-soak:
	cargo build -p local-stack -p admin --bins
	bash infra/bench/with-emulator.sh sh -c '"$$BENCH_PYTHON" infra/bench/soak.py \
		"$${CARGO_TARGET_DIR:-target}/debug"'

# Webhook delivery on the emulator: latency from a change's commit to the first attempt at a
# local receiver (median, p99), and the sender's deliveries per second on a backlog; the table
# goes into BENCHMARKS.md. BENCH_WEBHOOK_EVENTS sets the latency sample (200), BENCH_WEBHOOK_BACKLOG
# the backlog (300).
bench-webhooks:
	cargo build -p bench --bin webhook-bench
	bash infra/bench/with-emulator.sh sh -c '"$${CARGO_TARGET_DIR:-target}/debug/webhook-bench" \
		"$${BENCH_WEBHOOK_EVENTS:-200}" "$${BENCH_WEBHOOK_BACKLOG:-300}" | python3 infra/bench/webhooks.py'

# The scheduler at scale: BENCH_SCALE_CONNECTIONS (10,000) connections in 100 organizations due
# in the same minute, claimed by one tick and the shards it hands off through the scheduler's
# queue, then on a second stack by two ticks at once (release build of the bench crate).
bench-scale:
	bin=$$(bash infra/lambda-build.sh bench) && \
	BENCH_BIN="$$bin" bash infra/bench/with-emulator.sh sh -c '"$$BENCH_BIN/scale-bench" \
		"$${BENCH_SCALE_CONNECTIONS:-10000}" 100 | python3 infra/bench/scale.py'

# The fault matrix with every kind of fault at every AWS request of every operation (make test
# runs one kind per request, the kinds in turn); its table goes into BENCHMARKS.md.
bench-faults:
	FAULT_MATRIX=full BENCH_FAULTS_REPORT="$$PWD/.dev/faults.md" \
		bash infra/bench/with-emulator.sh \
		cargo test -p e2e fault_matrix::every_aws_request_of_every_operation_failed_once_loses_nothing
	python3 infra/bench/faults.py .dev/faults.md
