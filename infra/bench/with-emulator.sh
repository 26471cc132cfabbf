#!/usr/bin/env bash
# Runs a benchmark command against the emulator: starts it unless one already answers (and then
# stops it afterwards, on failure too), exports its AWS settings and BENCH_PYTHON (the emulator
# venv's Python, which has boto3), then runs "$@".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EMULATOR=(bash "$ROOT/infra/emulator.sh")

started=false
trap 'if $started; then "${EMULATOR[@]}" stop; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! "${EMULATOR[@]}" running; then
    "${EMULATOR[@]}" start
    started=true
fi
eval "$("${EMULATOR[@]}" env)"
BENCH_PYTHON="$("${EMULATOR[@]}" python)"
export BENCH_PYTHON
mkdir -p "$ROOT/.dev"
"$@"
