#!/usr/bin/env bash
# Prints the path of a Python interpreter that can import torch and train on CPU, for PRISM's
# end-to-end tests (crates/prism/tests/e2e.rs reads it from ASSAY_PRISM_PYTHON).
#
# The interpreter lives in a venv cached per machine, built on first use from
# scripts/prism-requirements.txt (PyPI only, pinned, --no-deps). A later call reuses it when the
# requirements and the base Python are unchanged and a smoke test (import torch, a few SGD steps
# that must lower the loss) passes; otherwise the venv is rebuilt from scratch.
#
# stdout: the interpreter path, and nothing else. stderr: progress and timings.
# Exit status: 0 when the interpreter works, non-zero otherwise (offline, install timed out, ...).
#
# Environment:
#   ASSAY_PRISM_VENV             venv folder (default: ${XDG_CACHE_HOME:-~/.cache}/assay/prism-venv)
#   ASSAY_PRISM_BASE_PYTHON      interpreter the venv is made from (default: python3)
#   ASSAY_PRISM_INSTALL_TIMEOUT  seconds allowed for waiting on the lock plus the install (default: 900)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements="$here/prism-requirements.txt"
venv="${ASSAY_PRISM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/assay/prism-venv}"
base_python="${ASSAY_PRISM_BASE_PYTHON:-python3}"
install_timeout="${ASSAY_PRISM_INSTALL_TIMEOUT:-900}"
stamp="$venv/.assay-prism-stamp"
started=$SECONDS

log() { echo "prism-python: $*" >&2; }

# The smoke test the cached venv must pass: torch imports, trains on CPU, and the corpus source
# (pydoc_data, part of the standard library) is there.
smoke_test() {
    "$venv/bin/python" - <<'PY' >&2
import pydoc_data.topics
import torch

torch.manual_seed(0)
model = torch.nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(64, 8)
y = x.sum(dim=1, keepdim=True)
losses = []
for _ in range(20):
    loss = torch.nn.functional.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
assert losses[-1] < losses[0] / 2, losses
print(f"torch {torch.__version__} trains on cpu (loss {losses[0]:.3f} -> {losses[-1]:.3f})")
PY
}

# What the venv was built from: a change to either means a rebuild.
if ! base_version=$("$base_python" -c 'import sys; print(sys.version)' 2>/dev/null); then
    log "no base interpreter '$base_python'"
    exit 1
fi
key=$({ cat "$requirements"; echo "$base_version"; } | sha256sum | cut -d' ' -f1)

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

log "building $venv from $requirements (python $base_version)"
rm -rf "$venv"
"$base_python" -m venv "$venv"
remaining=$((install_timeout - (SECONDS - started)))
if ((remaining <= 0)) || ! timeout "$remaining" "$venv/bin/python" -m pip install \
    --no-deps --no-cache-dir --disable-pip-version-check --no-input --progress-bar off \
    --timeout 60 --retries 2 -r "$requirements" >&2; then
    log "pip install failed or timed out after $((SECONDS - started)) s; removing the partial venv"
    rm -rf "$venv"
    exit 1
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
