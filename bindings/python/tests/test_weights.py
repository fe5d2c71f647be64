"""Weights: sum-to-1 normalisation and Bittensor's u16 quantisation, identical to the SDK.

The u16 check runs against two references:
- bittensor 11.x's own `bittensor.intents.weights.normalize` (when bittensor is installed: the
  venv of scripts/python-venv.sh installs it; otherwise those cases say SKIPPED);
- a restatement, in this file, of SDK 9.x/10.x's `convert_weights_and_uids_for_emit`
  (opentensor/bittensor:bittensor/utils/weight_utils.py@00f0b69, identical at bb526e6): float
  lists, refuse negatives and length mismatch, nothing when the sum is 0, each value divided by
  the max, times 65535, Python `round` (half to even), zeros dropped with their uid.
"""

import random

import numpy as np
import pytest

import assay
from assay import weights

U16_MAX = 65535


def sdk10_emit(uids, values):
    """SDK 10.x's convert_weights_and_uids_for_emit, restated (see the module docstring)."""
    values = [float(v) for v in np.asarray(values).tolist()]
    uids = [int(u) for u in np.asarray(uids).tolist()]
    if min(values) < 0 or min(uids) < 0 or len(uids) != len(values):
        raise ValueError("refused")
    if sum(values) == 0:
        return [], []
    top = float(max(values))
    kept_uids, kept = [], []
    for uid, value in zip(uids, values):
        q = round(float(value / top) * int(U16_MAX))
        if q != 0:
            kept_uids.append(uid)
            kept.append(q)
    return kept_uids, kept


def cases():
    rng = random.Random(20261207)
    out = []
    for n in (1, 2, 3, 7, 64, 256, 1024):
        # Random float64 and float32 weights, some exact zeros.
        w = [rng.random() if rng.random() > 0.2 else 0.0 for _ in range(n)]
        out.append((list(range(n)), np.array(w)))
        out.append((list(range(n)), np.array(w, dtype=np.float32)))
        # Tie-heavy: values on half-steps of 1/65535 of the max, so x.5 ties are everywhere.
        top = rng.choice([1.0, 3.0, 65535.0, 0.37])
        steps = [rng.randrange(0, 2 * U16_MAX + 1) / 2 for _ in range(n)]
        w = [top * s / U16_MAX for s in steps]
        w[rng.randrange(n)] = top
        out.append((rng.sample(range(4096), n), np.array(w)))
        # Few distinct values, many exact ties, and tiny weights that round to 0.
        w = [rng.choice([0.0, 1e-9, 0.25, 0.5, 1.0, 2.5 / U16_MAX, 0.5 / U16_MAX]) for _ in range(n)]
        out.append((list(range(n)), np.array(w)))
    out.append(([0, 1, 2], np.array([0.0, 0.0, 0.0])))
    out.append(([5, 9], np.array([1e-300, 3e-300])))
    out.append(([1, 2, 3], np.array([U16_MAX, 2.5, 3.5])))
    return out


@pytest.mark.parametrize("index", range(len(cases())))
def test_emit_u16_matches_sdk10(index):
    uids, w = cases()[index]
    assert weights.emit_u16(uids, w) == sdk10_emit(uids, w)


@pytest.mark.parametrize("index", range(len(cases())))
def test_emit_u16_matches_the_installed_sdk(index):
    sdk = pytest.importorskip("bittensor.intents.weights")
    uids, w = cases()[index]
    # SDK 11 takes Python lists (what its SetWeights intent holds after `_as_pairs`).
    want = sdk.normalize([int(u) for u in uids], [float(x) for x in np.asarray(w).tolist()])
    assert weights.emit_u16(uids, w) == want


def test_emit_u16_refuses_what_the_chain_cannot_take():
    with pytest.raises(assay.OperatorError, match="finite and non-negative"):
        weights.emit_u16([0, 1], [1.0, -0.1])
    with pytest.raises(assay.OperatorError, match="equal length"):
        weights.emit_u16([0], [1.0, 2.0])
    with pytest.raises(assay.OperatorError, match="outside 0..65535"):
        weights.emit_u16([70000], [1.0])
    with pytest.raises(assay.AssayError):
        weights.emit_u16([0], [float("nan")])


def test_normalize_and_to_u16_match_the_rust_crate():
    assert weights.normalize([1.0, 3.0, -2.0, float("nan")]).tolist() == [0.25, 0.75, 0.0, 0.0]
    assert weights.normalize([0.0, -1.0]).tolist() == [0.0, 0.0]
    u = weights.to_u16([0.5, 0.25, 0.0])
    assert u.dtype == np.uint16 and u.tolist() == [65535, 32768, 0]
