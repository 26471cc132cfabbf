#!/usr/bin/env bash
# The local AWS API emulator (moto server) that `make dev` and `make test` run against.
#
#   infra/emulator.sh start     set up .dev/venv if needed, start moto server (through
#                               infra/moto_launcher.py), wait until it answers
#   infra/emulator.sh stop      stop the server `start` launched (by its pid file); no-op otherwise
#   infra/emulator.sh running   exit 0 if something answers HTTP on the port, 1 otherwise
#   infra/emulator.sh env       print `export` lines pointing the AWS SDK at the emulator
#   infra/emulator.sh python    set up .dev/venv if needed and print its python (the tests run
#                               Airweave's Python SDK with it against the API)
#   infra/emulator.sh ts-sdk    install Airweave's TypeScript SDK into .dev/node if needed and
#                               print that directory (the tests run the SDK with node from it)
#   infra/emulator.sh schemathesis
#                               set up .dev/fuzz-venv with schemathesis if needed and print its
#                               `schemathesis` executable (the API fuzzing test runs it)
#   infra/emulator.sh webhook-verifiers
#                               set up .dev/verify-venv with the standardwebhooks and Svix
#                               packages if needed and print its python (the webhook delivery
#                               test verifies every signature with them)
#   infra/emulator.sh airweave-cli
#                               set up .dev/cli-venv with Airweave's CLI if needed and print its
#                               `airweave` executable (the CLI compatibility test runs it)
#
# Environment: EMULATOR_PORT (default 4566), DEV_DIR (default <repo>/.dev; holds the log and the
# pid file, and the venvs unless TOOLS_DIR says where they go), TOOLS_DIR (default DEV_DIR),
# PYTHON (default python3; used only to create the venvs).
# Needs only bash, curl and python3 (and npm for `ts-sdk`; `start` skips the TypeScript SDK
# without it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV_DIR="${DEV_DIR:-$ROOT/.dev}"
PORT="${EMULATOR_PORT:-4566}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"
# The Python venvs and the Node SDK: in DEV_DIR unless TOOLS_DIR puts them elsewhere (CI keeps
# them outside the clone, as it does the cargo target dir, so a fresh clone reuses them; the
# requirement stamps below still reinstall whatever changed).
TOOLS_DIR="${TOOLS_DIR:-$DEV_DIR}"
VENV="$TOOLS_DIR/venv"
FUZZ_VENV="$TOOLS_DIR/fuzz-venv"
CLI_VENV="$TOOLS_DIR/cli-venv"
VERIFY_VENV="$TOOLS_DIR/verify-venv"
NODE_DIR="$TOOLS_DIR/node"
PID_FILE="$DEV_DIR/emulator.pid"
PORT_FILE="$DEV_DIR/emulator.port"
LOG_FILE="$DEV_DIR/emulator.log"
LOCK_DIR="$DEV_DIR/emulator.lock"
# moto 5.x is what the adapters are tested against; a new major may change emulated behaviour.
# airweave-sdk is the real client the wire-compatibility test drives against our API.
# cfn-lint (+ its serverless rules) and aws-sam-cli lint template.yaml (infra/lint-template.sh);
# pinned exactly, since new releases add rules. aws-sam-cli pins boto3, which moto then uses.
REQUIREMENTS=('moto[server]>=5.1,<6' 'airweave-sdk>=0.9,<1'
    'cfn-lint==1.58.0' 'cfn-lint-serverless==0.3.6' 'aws-sam-cli==1.170.0')
# schemathesis fuzzes the API from its OpenAPI document (tests/e2e/fuzz.rs). Its own venv: its
# dependencies (hypothesis, jsonschema, requests, ...) must not fight the pins above. Pinned
# exactly, since new releases add checks and change what is generated for a seed.
FUZZ_REQUIREMENTS=('schemathesis==4.32.5')
# Airweave's CLI (what its users install), pinned exactly, in its own venv: its dependencies
# (typer, rich, httpx) must not fight the pins above.
CLI_REQUIREMENTS=('airweave-cli==0.1.15')
# The receivers' own webhook verifiers (Standard Webhooks' reference package and Svix's SDK),
# pinned exactly, in their own venv: Svix's SDK brings its own httpx and pydantic.
VERIFY_REQUIREMENTS=('standardwebhooks==1.3.0' 'svix==2.9.1')
# @airweave/sdk (npm), pinned exactly: the TypeScript wire test runs it from $NODE_DIR.
TS_SDK_VERSION=0.7.20
START_TIMEOUT_SECONDS=30
STOP_TIMEOUT_SECONDS=10

say() { printf 'emulator: %s\n' "$*"; }
die() { printf 'emulator: error: %s\n' "$*" >&2; exit 1; }

# Any HTTP response counts; --noproxy keeps a CI proxy setting from intercepting loopback.
answers() {
    curl --silent --output /dev/null --noproxy '*' --max-time 2 "$URL/" || return 1
}

# A zombie (exited, not yet reaped by whoever adopted it) counts as gone.
alive() {
    local pid=$1 stat
    kill -0 "$pid" 2>/dev/null || return 1
    stat="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
    [[ -n $stat && $stat != Z* ]]
}

# True when $1 is a moto server process, so a recycled pid is never signalled. moto_server
# still matches one started by this script before it ran infra/moto_launcher.py.
is_moto() {
    alive "$1" && ps -o args= -p "$1" 2>/dev/null | grep -qE 'moto_launcher\.py|moto_server'
}

recorded_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [[ -n $pid ]] || return 1
    printf '%s\n' "$pid"
}

forget_pid() { rm -f "$PID_FILE" "$PORT_FILE"; }

# Serialises set-up and launch between concurrent `start`s of this checkout (mkdir is atomic).
lock() {
    local waited=0 holder
    mkdir -p "$DEV_DIR"
    until mkdir "$LOCK_DIR" 2>/dev/null; do
        holder="$(cat "$LOCK_DIR/pid" 2>/dev/null || true)"
        if [[ -n $holder ]] && ! kill -0 "$holder" 2>/dev/null; then
            rm -rf "$LOCK_DIR"
            continue
        fi
        ((waited++ < 600)) || die "timed out waiting for $LOCK_DIR (remove it if no start is running)"
        sleep 0.5
    done
    echo $$ >"$LOCK_DIR/pid"
    trap 'rm -rf "$LOCK_DIR"' EXIT
}

venv_usable() {
    local venv=$1
    [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import pip' >/dev/null 2>&1
}

# Creates the venv at $1 unless a usable one is there (a broken one is recreated).
make_venv() {
    local venv=$1
    venv_usable "$venv" && return 0
    if [[ -e $venv ]]; then
        say "recreating the broken venv at $venv"
        rm -rf "$venv"
    fi
    local python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || die "$python not found; install Python 3.9+"
    "$python" -m venv "$venv" || die "could not create a venv with $python -m venv"
}

# Makes the venv at $1 hold the requirements after `--`, checked by the Python statement $2. A
# stamp records which requirements were installed, so later starts skip pip entirely.
install_requirements() {
    local venv=$1 check=$2
    shift 3
    make_venv "$venv"
    local stamp="$venv/.requirements"
    if [[ "$(cat "$stamp" 2>/dev/null || true)" == "$*" ]] &&
        "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        return 0
    fi
    say "installing $* into $venv"
    "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check "$@" ||
        die "pip install $* failed"
    printf '%s\n' "$*" >"$stamp"
}

ensure_venv() {
    install_requirements "$VENV" 'import moto.server, airweave, cfn_lint_serverless, samcli' \
        -- "${REQUIREMENTS[@]}"
}

# The fuzzing venv: the module and its command.
ensure_fuzz_venv() {
    install_requirements "$FUZZ_VENV" 'import os, sys, schemathesis
assert os.access(os.path.join(os.path.dirname(sys.executable), "schemathesis"), os.X_OK)' \
        -- "${FUZZ_REQUIREMENTS[@]}"
}

# The CLI's venv: its `airweave` command.
ensure_cli_venv() {
    install_requirements "$CLI_VENV" 'import os, sys, airweave_cli
assert os.access(os.path.join(os.path.dirname(sys.executable), "airweave"), os.X_OK)' \
        -- "${CLI_REQUIREMENTS[@]}"
}

# The verifiers' venv: both packages importable.
ensure_verify_venv() {
    install_requirements "$VERIFY_VENV" 'import standardwebhooks, svix.webhooks' \
        -- "${VERIFY_REQUIREMENTS[@]}"
}

# Installs @airweave/sdk@$TS_SDK_VERSION into $NODE_DIR/node_modules when missing or when the pin
# changed; a stamp records the installed pin, as for the venv.
ensure_ts_sdk() {
    local stamp="$NODE_DIR/.requirements" want="@airweave/sdk@$TS_SDK_VERSION"
    if [[ "$(cat "$stamp" 2>/dev/null || true)" == "$want" ]] &&
        [[ -f $NODE_DIR/node_modules/@airweave/sdk/package.json ]]; then
        return 0
    fi
    command -v npm >/dev/null || die "npm not found; install Node.js 18+ (the tests run $want)"
    mkdir -p "$NODE_DIR"
    printf '{\n  "private": true,\n  "dependencies": { "@airweave/sdk": "%s" }\n}\n' \
        "$TS_SDK_VERSION" >"$NODE_DIR/package.json"
    rm -f "$stamp"
    say "installing $want into $NODE_DIR"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >&2) ||
        die "npm install $want failed"
    printf '%s\n' "$want" >"$stamp"
}

wait_until_answering() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT_SECONDS))
    until answers; do
        if ! alive "$pid"; then
            tail -n 20 "$LOG_FILE" >&2 || true
            forget_pid
            die "moto server exited during start-up (log: $LOG_FILE)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$LOG_FILE" >&2 || true
            die "moto server (pid $pid) did not answer on $URL within ${START_TIMEOUT_SECONDS}s (log: $LOG_FILE)"
        fi
        sleep 0.25
    done
}

cmd_start() {
    if answers; then
        say "something already answers on $URL; using it, not starting another"
        return 0
    fi
    lock
    if answers; then
        say "something already answers on $URL; using it, not starting another"
        return 0
    fi

    local pid
    if pid="$(recorded_pid)" && is_moto "$pid"; then
        local port
        port="$(cat "$PORT_FILE" 2>/dev/null || echo '?')"
        [[ $port == "$PORT" ]] ||
            die "this checkout's emulator (pid $pid) runs on port $port; run 'infra/emulator.sh stop' first"
        # Launched but not answering yet (another start is still waiting for it).
        wait_until_answering "$pid"
        say "moto server already started on $URL (pid $pid)"
        return 0
    fi
    forget_pid

    ensure_venv
    if command -v npm >/dev/null; then
        ensure_ts_sdk
    else
        say "npm not found; skipping Airweave's TypeScript SDK (only its wire test needs it)"
    fi
    # Background jobs of a script ignore SIGINT: only `stop` (SIGTERM) ends the server, so a
    # Ctrl-C meant for a foreground command cannot take the emulator down half-way.
    # moto_launcher.py is moto_server with DynamoDB requests serialised (see its docstring).
    nohup "$VENV/bin/python" "$ROOT/infra/moto_launcher.py" -H "$HOST" -p "$PORT" \
        >"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$PORT" >"$PORT_FILE"
    wait_until_answering "$pid"
    say "moto server listening on $URL (pid $pid, log ${LOG_FILE#"$ROOT"/})"
}

cmd_stop() {
    local pid
    if ! pid="$(recorded_pid)"; then
        forget_pid
        say "no emulator started by this checkout; nothing to stop"
        return 0
    fi
    if ! alive "$pid"; then
        forget_pid
        say "moto server (pid $pid) had already exited"
        return 0
    fi
    if ! is_moto "$pid"; then
        forget_pid
        say "pid $pid is no longer a moto server; left it alone and removed the stale pid file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    forget_pid
    say "moto server stopped (pid $pid)"
}

cmd_running() {
    answers
}

cmd_env() {
    printf 'export AWS_ENDPOINT_URL=%q\n' "$URL"
    # Values the caller already chose win; moto accepts any credentials.
    [[ -n ${AWS_REGION:-} ]] || printf 'export AWS_REGION=us-east-1\n'
    # Python and CLI tooling (boto3, aws) read AWS_DEFAULT_REGION rather than AWS_REGION.
    [[ -n ${AWS_DEFAULT_REGION:-} ]] || printf 'export AWS_DEFAULT_REGION=%q\n' "${AWS_REGION:-us-east-1}"
    [[ -n ${AWS_ACCESS_KEY_ID:-} ]] || printf 'export AWS_ACCESS_KEY_ID=test\n'
    [[ -n ${AWS_SECRET_ACCESS_KEY:-} ]] || printf 'export AWS_SECRET_ACCESS_KEY=test\n'
    printf 'export AWS_EC2_METADATA_DISABLED=true\n'
}

cmd_python() {
    mkdir -p "$DEV_DIR"
    lock
    ensure_venv >&2
    printf '%s\n' "$VENV/bin/python"
}

cmd_schemathesis() {
    mkdir -p "$DEV_DIR"
    lock
    ensure_fuzz_venv >&2
    printf '%s\n' "$FUZZ_VENV/bin/schemathesis"
}

cmd_airweave_cli() {
    mkdir -p "$DEV_DIR"
    lock
    ensure_cli_venv >&2
    printf '%s\n' "$CLI_VENV/bin/airweave"
}

cmd_webhook_verifiers() {
    mkdir -p "$DEV_DIR"
    lock
    ensure_verify_venv >&2
    printf '%s\n' "$VERIFY_VENV/bin/python"
}

cmd_ts_sdk() {
    mkdir -p "$DEV_DIR"
    lock
    ensure_ts_sdk >&2
    printf '%s\n' "$NODE_DIR"
}

case "${1:-}" in
start) cmd_start ;;
python) cmd_python ;;
ts-sdk) cmd_ts_sdk ;;
schemathesis) cmd_schemathesis ;;
airweave-cli) cmd_airweave_cli ;;
webhook-verifiers) cmd_webhook_verifiers ;;
stop) cmd_stop ;;
running) cmd_running ;;
env) cmd_env ;;
*)
    echo "usage: $0 start|stop|running|env|python|ts-sdk|schemathesis|airweave-cli|webhook-verifiers" >&2
    exit 2
    ;;
esac
