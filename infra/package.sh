#!/usr/bin/env bash
# `make package`: every function's arm64 release bootstrap, zipped for Lambda (provided.al2023),
# built by infra/lambda-build.sh (cargo-lambda and zig, pinned, from the Python registry in the
# project's venv). Prints each zip's size and fails when one is over the limit. `sam build`
# builds the same way.
#
# Then the panic check: the panic probe, built the same way for this machine's architecture,
# must answer a handler panic on the Runtime API's error route and serve the next event in the
# same process (infra/bench/panic_check.py); it fails for a build that aborts on panic.
#
# Environment: DEV_DIR (default .dev), CARGO_TARGET_DIR, PACKAGE_LIMIT_BYTES (default 4.5 MiB: see README, "How the functions are built").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FUNCTIONS=(create-connection api oauth-callback sync-worker scheduler webhook-sender)
LIMIT=${PACKAGE_LIMIT_BYTES:-4718592}

bash infra/lambda-build.sh --arm64 "${FUNCTIONS[@]}"

target=${CARGO_TARGET_DIR:-target}
status=0
printf '%-18s %10s\n' function "zip bytes"
for f in "${FUNCTIONS[@]}"; do
    zip="$target/lambda/$f/bootstrap.zip"
    bytes=$(stat -c %s "$zip")
    verdict=""
    if ((bytes > LIMIT)); then
        verdict="  over the limit of $LIMIT bytes"
        status=1
    fi
    # The bootstrap inside the zip: its ELF header's e_machine (offset 18; 183 is aarch64).
    machine=$(python3 -c 'import sys, zipfile; d = zipfile.ZipFile(sys.argv[1]).open("bootstrap").read(20); print({183: "aarch64", 62: "x86_64"}.get(int.from_bytes(d[18:20], "little"), "other"))' "$zip")
    printf '%-18s %10d  %s MiB  %s%s\n' "$f" "$bytes" "$(awk "BEGIN {printf \"%.2f\", $bytes / 1048576}")" "$machine" "$verdict"
done

probe=$(bash infra/lambda-build.sh panic-probe)
python3 infra/bench/panic_check.py "$probe" || status=1
exit $status
