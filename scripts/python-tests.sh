#!/usr/bin/env bash
# Builds assay's Python package into the cached venv (scripts/python-venv.sh) with
# `maturin develop` (dev profile: it compiles the engine once, then only what changed) and runs
# its pytest suite (bindings/python/tests) and the validator neurons' tests (examples/validators).
#
# Usage: scripts/python-tests.sh [pytest arguments...]
# CARGO_TARGET_DIR is honoured (maturin builds there like cargo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$root/scripts/python-venv.sh")
venv=$(dirname "$(dirname "$python")")
started=$SECONDS
echo "python-tests: maturin develop into $venv" >&2
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --quiet \
    --manifest-path "$root/bindings/python/Cargo.toml" >&2
echo "python-tests: built in $((SECONDS - started)) s" >&2
cd "$root"
# Two runs: each folder has its own conftest.py, imported by the tests as `conftest`.
"$python" -m pytest -q bindings/python/tests "$@"
"$python" -m pytest -q examples/validators "$@"
