#!/usr/bin/env bash
# Prints the path of a Python interpreter for assay's Python bindings: a venv with maturin,
# pytest and numpy (scripts/python-requirements.txt) and, when it installs within the time
# allowed, the bittensor SDK (scripts/python-bittensor-requirements.txt).
#
# The venv is cached per machine and built once (about 2 minutes with bittensor); a later call
# reuses it in seconds when both requirement files and the base Python are unchanged and a
# smoke test passes, otherwise it is rebuilt from scratch.
#
# stdout: the interpreter path, and nothing else. stderr: progress and timings.
# Exit status: 0 when the core venv works (bittensor may be missing), non-zero otherwise.
#
# Environment:
#   ASSAY_PYTHON_VENV             venv folder (default: ${XDG_CACHE_HOME:-~/.cache}/assay/python-venv)
#   ASSAY_PYTHON_BASE_PYTHON      interpreter the venv is made from (default: python3, >= 3.10)
#   ASSAY_PYTHON_INSTALL_TIMEOUT  seconds for waiting on the lock plus the core install (default: 600)
#   ASSAY_BITTENSOR_TIMEOUT       seconds allowed for installing bittensor (default: 600; 0 skips it)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
core="$here/python-requirements.txt"
optional="$here/python-bittensor-requirements.txt"
venv="${ASSAY_PYTHON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/assay/python-venv}"
base_python="${ASSAY_PYTHON_BASE_PYTHON:-python3}"
install_timeout="${ASSAY_PYTHON_INSTALL_TIMEOUT:-600}"
bittensor_timeout="${ASSAY_BITTENSOR_TIMEOUT:-600}"
stamp="$venv/.assay-python-stamp"
started=$SECONDS

log() { echo "python-venv: $*" >&2; }

smoke_test() {
    "$venv/bin/python" - <<'PY' >&2
import sys
import numpy, pytest  # noqa: F401
assert sys.version_info >= (3, 10), sys.version
try:
    import bittensor
    extra = f", bittensor {bittensor.__version__}"
except Exception:
    extra = ", no bittensor"
print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}{extra}")
PY
    [[ -x "$venv/bin/maturin" ]]
}

if ! base_version=$("$base_python" -c 'import sys; assert sys.version_info >= (3, 10); print(sys.version)' 2>/dev/null); then
    log "no base interpreter '$base_python' of Python >= 3.10"
    exit 1
fi
key=$({ cat "$core" "$optional"; echo "$base_version"; } | sha256sum | cut -d' ' -f1)

is_current() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]] && smoke_test
}

if is_current; then
    log "cached venv $venv is current ($((SECONDS - started)) s)"
    echo "$venv/bin/python"
    exit 0
fi

# One builder at a time per venv: engineers and CI on one machine share the cache.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
if ! flock -w "$install_timeout" 9; then
    log "timed out waiting for another build of $venv"
    exit 1
fi
if is_current; then
    log "venv $venv was built by another process ($((SECONDS - started)) s)"
    echo "$venv/bin/python"
    exit 0
fi

log "building $venv (python $base_version)"
rm -rf "$venv"
"$base_python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off
    --timeout 60 --retries 2)
remaining=$((install_timeout - (SECONDS - started)))
if ((remaining <= 0)) || ! timeout "$remaining" "${pip[@]}" -r "$core" >&2; then
    log "core install failed or timed out after $((SECONDS - started)) s; removing the partial venv"
    rm -rf "$venv"
    exit 1
fi
if ((bittensor_timeout > 0)); then
    if ! timeout "$bittensor_timeout" "${pip[@]}" -r "$optional" >&2; then
        log "bittensor did not install within ${bittensor_timeout} s; its tests will be skipped"
        "$venv/bin/python" -m pip uninstall -y -q bittensor >&2 2>/dev/null || true
    fi
fi
if ! smoke_test; then
    log "the new venv fails its smoke test; removing it"
    rm -rf "$venv"
    exit 1
fi
# Written last: a venv without a matching stamp is never trusted.
echo "$key" >"$stamp"
log "built $venv in $((SECONDS - started)) s"
echo "$venv/bin/python"
