#!/usr/bin/env bash
# `make dev`: the whole platform on this machine. Starts the emulator unless one already answers,
# then runs the dev gateway (every route, worker and scheduler in-process) in the foreground.
# Ctrl-C, SIGTERM or the gateway exiting stops everything this script started.
#
# Environment: PORT (gateway, default 3000), EMULATOR_PORT (default 4566), DEV_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EMULATOR=(bash "$ROOT/infra/emulator.sh")

started_emulator=false
gateway_pid=

# shellcheck disable=SC2329 # invoked by the traps below
cleanup() {
    local status=$?
    # Ignore, not reset: make passes its own SIGTERM/SIGINT on, and that must not cut this short.
    trap - EXIT
    trap '' INT TERM
    if [[ -n $gateway_pid ]]; then
        # The gateway runs in its own process group: this reaches cargo, rustc and the binary.
        kill -TERM -- "-$gateway_pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$gateway_pid" 2>/dev/null && ((waited++ < 100)); do
            sleep 0.1
        done
        kill -KILL -- "-$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    if $started_emulator; then
        "${EMULATOR[@]}" stop || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! "${EMULATOR[@]}" running; then
    "${EMULATOR[@]}" start
    started_emulator=true
else
    echo "dev: using the emulator already answering on port ${EMULATOR_PORT:-4566}"
fi
eval "$("${EMULATOR[@]}" env)"

# The gateway writes the key there (relative paths are relative to the repository root).
echo "dev: API on http://127.0.0.1:${PORT:-3000} once built; API key in ${DEV_DIR:-.dev}/api-key (send it as x-api-key)"
if $started_emulator; then
    echo "dev: Ctrl-C stops the gateway and the emulator"
fi

# A job of its own (set -m) so the cleanup can signal the whole build-and-run tree at once,
# and `wait` returns as soon as a signal arrives instead of after the gateway exits.
set -m
cargo run -p local-stack --bin dev-gateway &
gateway_pid=$!
set +m

set +e
wait "$gateway_pid"
status=$?
set -e
gateway_pid=
echo "dev: gateway exited with status $status"
exit "$status"
