#!/usr/bin/env bash
# `make package`: every function's arm64 release bootstrap, zipped for Lambda
# (provided.al2023), with cargo-lambda and zig from the Python registry installed into the
# project's venv (.dev/venv) and the aarch64 standard library added with rustup. Prints each
# zip's size and fails when one is over the limit. `sam build` builds the same way.
#
# Environment: DEV_DIR (default .dev), CARGO_TARGET_DIR, PACKAGE_LIMIT_BYTES (default 4 MiB).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FUNCTIONS=(create-connection api oauth-callback sync-worker scheduler)
LIMIT=${PACKAGE_LIMIT_BYTES:-4194304}
# Pinned: cargo-lambda's cross-compiling uses zig as the linker; these two are known to agree.
REQUIREMENTS=(cargo-lambda==1.9.2 ziglang==0.14.1)

python=$(bash infra/emulator.sh python)
venv_bin=$(dirname "$python")
stamp="$(dirname "$venv_bin")/.package-requirements"
if [[ ! -f $stamp || $(cat "$stamp") != "${REQUIREMENTS[*]}" ]]; then
    echo "package: installing ${REQUIREMENTS[*]} into the venv"
    "$python" -m pip install --quiet --no-input --disable-pip-version-check "${REQUIREMENTS[@]}"
    echo "${REQUIREMENTS[*]}" >"$stamp"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null

# cargo-lambda finds `cargo-lambda` and the venv's `python3 -m ziglang` on PATH.
export PATH="$venv_bin:$PATH"
packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(--package "$f"); done
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"

target=${CARGO_TARGET_DIR:-target}
status=0
printf '%-18s %10s\n' function "zip bytes"
for f in "${FUNCTIONS[@]}"; do
    zip="$target/lambda/$f/bootstrap.zip"
    bytes=$(stat -c %s "$zip")
    verdict=""
    if ((bytes > LIMIT)); then
        verdict="  over the $((LIMIT / 1048576)) MiB limit"
        status=1
    fi
    # The bootstrap inside the zip: its ELF header's e_machine (offset 18; 183 is aarch64).
    machine=$(python3 -c 'import sys, zipfile; d = zipfile.ZipFile(sys.argv[1]).open("bootstrap").read(20); print({183: "aarch64", 62: "x86_64"}.get(int.from_bytes(d[18:20], "little"), "other"))' "$zip")
    printf '%-18s %10d  %s MiB  %s%s\n' "$f" "$bytes" "$(awk "BEGIN {printf \"%.2f\", $bytes / 1048576}")" "$machine" "$verdict"
done
exit $status
