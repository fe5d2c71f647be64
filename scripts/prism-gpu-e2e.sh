#!/usr/bin/env bash
# PRISM end to end with a prebuilt `assay` binary, for a machine that has a Python with torch but
# no Rust toolchain and no network (the GPU machine): the repo's example bundle
# (examples/prism/bundle) is checked, trained and scored on the pydoc corpus, which
# `assay prism corpus` builds from the interpreter's own standard library. It prints the score
# JSON, then checks the run: the bpb equals the hand computation from the recorded losses and
# batch shapes, the model learned, and torch ran on the GPU when the interpreter sees one.
#
# Usage: scripts/prism-gpu-e2e.sh ASSAY_BINARY [STEP_BUDGET]   (default 60 batches)
# Environment:
#   ASSAY_PRISM_PYTHON  interpreter with torch (default: python3)
#   PRISM_E2E_OUT       folder to keep the corpus, report and logs in (default: a temp folder,
#                       removed at exit)
#   PRISM_E2E_MEMORY_MB address-space cap of the runner (default 262144 = 256 GiB; 0 = none).
#                       CUDA needs far more address space than memory: on an H100 it fails to
#                       initialise under 12 GiB (assay's CPU default) and works under 32 GiB.
#   PRISM_E2E_ARGS      extra arguments for `assay prism run` (e.g. "--threads 4")
# Exit status: 0 when the run was scored and every check holds, non-zero otherwise.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 ASSAY_BINARY [STEP_BUDGET]" >&2
    exit 2
fi
assay=$(realpath "$1")
steps=${2:-60}
# An absolute path: the runner's environment is cleared, so a bare name would be looked up on
# a fixed PATH and could find another interpreter (a venv's python3 is not /usr/bin/python3).
python=$(command -v "${ASSAY_PRISM_PYTHON:-python3}") || {
    echo "prism-gpu-e2e: FAILED: no interpreter ${ASSAY_PRISM_PYTHON:-python3}" >&2
    exit 1
}
memory_mb=${PRISM_E2E_MEMORY_MB:-262144}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle="$repo/examples/prism/bundle"

fail() {
    echo "prism-gpu-e2e: FAILED: $*" >&2
    exit 1
}

[[ -x "$assay" ]] || fail "$1 is not an executable"
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || fail "STEP_BUDGET must be a positive integer, got '$steps'"
[[ -d "$bundle" ]] || fail "no example bundle at $bundle"

if [[ -n "${PRISM_E2E_OUT:-}" ]]; then
    out=$PRISM_E2E_OUT
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
rm -rf "$out/corpus" "$out/report.json"

echo "== interpreter"
# Whether torch sees a GPU here decides what the run must report below.
cuda=$("$python" -c 'import torch; print(int(torch.cuda.is_available()))') ||
    fail "$python cannot import torch"
"$python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'

echo "== assay prism check"
"$assay" prism check "$bundle" || fail "the static checks refused the example bundle"

echo "== assay prism corpus"
"$assay" prism corpus --out "$out/corpus" --python "$python" || fail "corpus"

echo "== assay prism run ($steps batches)"
# PRISM_E2E_ARGS is split on spaces on purpose: it holds extra options.
# shellcheck disable=SC2086
"$assay" prism run "$bundle" --data "$out/corpus" --python "$python" \
    --step-budget "$steps" --memory-mb "$memory_mb" --report "$out/report.json" ${PRISM_E2E_ARGS:-} ||
    fail "assay prism run"

echo "== score"
"$python" - "$out/report.json" "$steps" "$cuda" <<'PY' || fail "the report does not hold up"
import json
import math
import sys

report_path, steps, cuda = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
report = json.load(open(report_path))
print(json.dumps(report["score"], indent=2))

train = report["train"]
preq = train["prequential"]
losses = preq["online_loss"]
shapes = preq["batch_shapes"]
problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


check(len(losses) == len(shapes) == steps, f"{len(losses)} losses, {len(shapes)} shapes, {steps} batches asked")
check(train["stopped_reason"] == "step_budget", f"stopped: {train['stopped_reason']}")
# Hand computation: each batch's mean loss weighs its predicted positions rows*(cols-1); the
# denominator is every byte handed out, each row's first byte included.
nll = sum(loss * rows * (cols - 1) for loss, (rows, cols) in zip(losses, shapes))
covered = sum(rows * cols for rows, cols in shapes)
hand = nll / math.log(2) / covered
check(abs(report["score"]["bpb"] - hand) <= 1e-9 * hand, f"bpb {report['score']['bpb']} != hand {hand}")
check(preq["covered_bytes_cumulative"][-1] == covered, "covered bytes")
ln_v = math.log(4096)
check(abs(losses[0] - ln_v) < 0.5, f"first loss {losses[0]} is not near ln V = {ln_v:.3f} (random init)")
check(losses[-1] < losses[0] - 1.0, f"no learning: {losses[0]:.3f} -> {losses[-1]:.3f}")
check(report["score"]["final_score"] > 0, "final_score")
torch_version, device = train["torch"]
check(device.startswith("cuda") == cuda, f"torch ran on {device} but the interpreter sees a GPU: {cuda}")
print(f"torch {torch_version} on {device}; {len(losses)} batches; loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
      f"bpb {hand:.6f} (hand) = {report['score']['bpb']:.6f} (assay)")
if report.get("heldout"):
    h = report["heldout"]
    print(f"held-out delta {h['heldout_delta']:.6f} (val bpb twin {h['val_bpb_random_init']:.4f}, trained {h['val_bpb_trained']:.4f})")
if problems:
    print("\n".join("check failed: " + p for p in problems), file=sys.stderr)
    sys.exit(1)
PY
echo "prism-gpu-e2e: OK"
