#!/usr/bin/env bash
# Builds assay's Python package into the cached venv (scripts/python-venv.sh) and runs its pytest
# suite (bindings/python/tests) and the validator neurons' tests (examples/validators).
#
# Usage: scripts/python-tests.sh [--prebuilt] [pytest arguments...]
#
# By default the package is built with `maturin develop` (dev profile). maturin builds the bindings
# crate on its own, so cargo resolves features for it alone and recompiles most dependencies a
# workspace build already has (about 5 minutes on 2 cores). With --prebuilt the native module is
# the one `cargo build --workspace --all-targets` made (target/debug/lib_assay.so: the workspace's
# feature set, so after `cargo test --workspace` only the bindings crate itself compiles), placed
# beside the Python sources as maturin develop places it, with a .pth file naming that folder;
# `.ci/run` uses this. CARGO_TARGET_DIR is honoured either way.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prebuilt=false
if [[ "${1:-}" == "--prebuilt" ]]; then
    prebuilt=true
    shift
fi
python=$("$root/scripts/python-venv.sh")
venv=$(dirname "$(dirname "$python")")
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
started=$SECONDS
if $prebuilt; then
    target="${CARGO_TARGET_DIR:-$root/target}"
    echo "python-tests: cargo build --workspace --all-targets (the native module)" >&2
    (cd "$root" && cargo build --quiet --workspace --all-targets) >&2
    package="$root/bindings/python/py_src"
    cp "$target/debug/lib_assay.so" "$package/assay/_assay.abi3.so"
    # An earlier `maturin develop` (maybe of another checkout) would shadow this one.
    "$python" -m pip uninstall --yes --quiet assay >/dev/null 2>&1 || true
    echo "$package" >"$site/assay-prebuilt.pth"
else
    rm -f "$site/assay-prebuilt.pth"
    echo "python-tests: maturin develop into $venv" >&2
    VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet \
        --manifest-path "$root/bindings/python/Cargo.toml" >&2
fi
echo "python-tests: built in $((SECONDS - started)) s" >&2
"$python" -c 'import assay, sys; print(f"python-tests: assay {assay.__version__} from {assay.__file__}", file=sys.stderr)'
cd "$root"
# Two runs: each folder has its own conftest.py, imported by the tests as `conftest`.
"$python" -m pytest -q bindings/python/tests "$@"
"$python" -m pytest -q examples/validators "$@"
