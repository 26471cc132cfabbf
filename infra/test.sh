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

step cargo fmt --all --check
step cargo clippy "${locked[@]}" --workspace --all-targets -- -D warnings
step cargo test "${locked[@]}" --workspace
