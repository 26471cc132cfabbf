#!/usr/bin/env bash
# Builds packages the way they are deployed: `cargo lambda build --release` with the pinned
# cargo-lambda and zig from the Python registry, installed into the project's venv (.dev/venv).
# cargo-lambda adds `-C target-cpu` for the target (neoverse-n1 on arm64, haswell on x86_64) and
# fills in the release settings the manifest leaves unset (the workspace sets them all).
#
#   infra/lambda-build.sh --arm64 PACKAGE...
#       arm64 zips, target/lambda/<binary>/bootstrap.zip: what `make package` and `sam build`
#       deploy
#   infra/lambda-build.sh PACKAGE...
#       the same build for this machine's architecture, target/lambda-host/<binary>/bootstrap,
#       with a link to each at target/lambda-bin/<binary>; prints that directory (the
#       benchmarks and the panic check run the binaries from it)
#
# Only the printed directory goes to standard output. Environment: DEV_DIR, CARGO_TARGET_DIR.
set -euo pipefail
exec 3>&1 1>&2

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Pinned: cargo-lambda's cross-compiling uses zig as the linker; these two are known to agree.
REQUIREMENTS=(cargo-lambda==1.9.2 ziglang==0.14.1)

deployed=false
if [[ ${1:-} == --arm64 ]]; then
    deployed=true
    shift
fi
(($# > 0)) || { echo "usage: $0 [--arm64] PACKAGE..." >&2; exit 2; }

python=$(bash infra/emulator.sh python)
venv_bin=$(dirname "$python")
stamp="$(dirname "$venv_bin")/.package-requirements"
if [[ ! -f $stamp || $(cat "$stamp") != "${REQUIREMENTS[*]}" ]]; then
    echo "lambda-build: installing ${REQUIREMENTS[*]} into the venv"
    "$python" -m pip install --quiet --no-input --disable-pip-version-check "${REQUIREMENTS[@]}"
    echo "${REQUIREMENTS[*]}" >"$stamp"
fi

if $deployed; then
    arch=arm64
else
    case $(uname -m) in
        x86_64) arch=x86-64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) echo "lambda-build: Lambda runs x86_64 and arm64, not $(uname -m)" >&2; exit 1 ;;
    esac
fi
rustup target add "$([[ $arch == arm64 ]] && echo aarch64 || echo x86_64)-unknown-linux-gnu" >/dev/null

# The target directory and each package's binaries, as cargo resolves them.
read -r target binaries < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta, wanted = json.load(sys.stdin), set(sys.argv[1:])
bins = [t["name"] for p in meta["packages"] if p["name"] in wanted
        for t in p["targets"] if "bin" in t["kind"]]
print(meta["target_directory"], " ".join(bins))' "$@")

# cargo-lambda finds `cargo-lambda` and the venv's `python3 -m ziglang` on PATH.
export PATH="$venv_bin:$PATH"
packages=()
for p in "$@"; do packages+=(--package "$p"); done
if $deployed; then
    output=(--output-format zip)
else
    output=(--output-format binary --lambda-dir "$target/lambda-host")
fi
cargo lambda build --release "--$arch" "${output[@]}" "${packages[@]}"

if ! $deployed; then
    # Beside each link, how it was built: the benchmarks write it into BENCHMARKS.md.
    cpu=$([[ $arch == arm64 ]] && echo neoverse-n1 || echo haswell)
    pins=$(printf '%s, ' "${REQUIREMENTS[@]//==/ }")
    note="\`cargo lambda build --release --$arch\` by infra/lambda-build.sh (${pins%, };"
    note+=" the workspace release profile; \`-C target-cpu=$cpu\`)"
    if [[ $arch == arm64 ]]; then
        note+=": the deployed build"
    else
        note+=": the deployed build but for x86_64 instead of arm64 (neoverse-n1), the only difference"
    fi
    overrides=$(env | grep -E '^(CARGO_PROFILE_RELEASE_[A-Z_]+|RUSTFLAGS|CARGO_ENCODED_RUSTFLAGS|CARGO_BUILD_RUSTFLAGS)=' | sort | tr '\n' ' ' || true)
    [[ -z $overrides ]] || note+="; overridden by the environment: ${overrides% }"
    mkdir -p "$target/lambda-bin"
    for b in $binaries; do
        ln -sfn "../lambda-host/$b/bootstrap" "$target/lambda-bin/$b"
        echo "$note" >"$target/lambda-bin/.$b.build"
    done
    echo "$target/lambda-bin" >&3
fi
