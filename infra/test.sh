#!/usr/bin/env bash
# `make test`: formatting, lints and every test (unit tests and the e2e binary) against the
# emulator. Starts the emulator unless one already answers, and stops it afterwards, on
# failure too, only if this script started it. Exits non-zero on the first failing step.
#
# Environment: EMULATOR_PORT (default 4566), DEV_DIR, CARGO_TARGET_DIR; CI=true adds --locked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EMULATOR=(bash "$ROOT/infra/emulator.sh")

started_emulator=false
summary=
cleanup() {
    local status=$?
    # Ignore, not reset: make passes its own SIGTERM/SIGINT on, and that must not cut this short.
    trap - EXIT
    trap '' INT TERM
    if $started_emulator; then
        "${EMULATOR[@]}" stop || true
    fi
    if ((status == 0)); then
        echo "test: all checks passed"
    else
        echo "test: FAILED (exit $status)" >&2
    fi
    # The test count closes the output, so whoever reads the last line reads it.
    if [[ -n $summary ]]; then
        echo "$summary"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In CI a stale Cargo.lock is an error, not something to fix up silently.
locked=()
if [[ ${CI:-} == true ]]; then
    locked=(--locked)
fi

step() {
    echo "test: \$ $*"
    "$@"
}

if ! "${EMULATOR[@]}" running; then
    "${EMULATOR[@]}" start
    started_emulator=true
else
    echo "test: using the emulator already answering on port ${EMULATOR_PORT:-4566}"
fi
eval "$("${EMULATOR[@]}" env)"
# Airweave's Python SDK, which the wire-compatibility test drives against the API.
AIRWEAVE_SDK_PYTHON="$("${EMULATOR[@]}" python)"
export AIRWEAVE_SDK_PYTHON
# schemathesis, in its own venv: the API fuzzing test runs it against GET /openapi.json.
SCHEMATHESIS="$("${EMULATOR[@]}" schemathesis)"
export SCHEMATHESIS
# Airweave's TypeScript SDK (npm @airweave/sdk): the directory whose node_modules holds it.
AIRWEAVE_TS_SDK_DIR="$("${EMULATOR[@]}" ts-sdk)"
export AIRWEAVE_TS_SDK_DIR
# Airweave's CLI (pip airweave-cli), in its own venv: the CLI compatibility test runs it.
AIRWEAVE_CLI="$("${EMULATOR[@]}" airweave-cli)"
export AIRWEAVE_CLI
# standardwebhooks and Svix's SDK, in their own venv: the webhook delivery test verifies every
# delivered signature with them.
WEBHOOK_VERIFIERS_PYTHON="$("${EMULATOR[@]}" webhook-verifiers)"
export WEBHOOK_VERIFIERS_PYTHON

# cfn-lint (with the serverless rules) and `sam validate --lint` on template.yaml, offline.
step bash "$ROOT/infra/lint-template.sh"
step cargo fmt --all --check
step cargo clippy "${locked[@]}" --workspace --all-targets -- -D warnings
# The function binaries themselves: the e2e tests run each one against a local Runtime API,
# and the admin CLI as an operator runs it.
step cargo build "${locked[@]}" -p create-connection -p api -p oauth-callback -p sync-worker -p scheduler -p webhook-sender -p admin
# The summary line adds up every test binary's result, so the last line is the whole count.
test_log="$(mktemp)"
status=0
step cargo test "${locked[@]}" --workspace 2>&1 | tee "$test_log" || status=$?
passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$test_log")
failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$test_log")
rm -f "$test_log"
summary="test: $passed passed, $failed failed"
exit "$status"
