"""Scores to weights: sum-to-1 weights, and the u16 ``(uids, weights)`` a Bittensor validator
sends on chain (identical to the bittensor SDK's own quantisation)."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from ._assay import weights as _native

__all__ = ["emit_u16", "normalize", "to_u16"]

ArrayLike = Union[Sequence[float], np.ndarray]


def normalize(scores: ArrayLike) -> np.ndarray:
    """Scores scaled to sum 1 (float64). Negative, NaN and infinite scores count as 0; when
    nothing is positive every weight is 0."""
    return _native.normalize(np.ascontiguousarray(scores, dtype=np.float64))


def to_u16(scores: ArrayLike) -> np.ndarray:
    """One u16 weight per score (zeros kept): the largest becomes 65535, the others scale with
    it, rounded half to even."""
    return _native.to_u16(np.ascontiguousarray(scores, dtype=np.float64))


def emit_u16(uids: Sequence[int], weights: ArrayLike) -> tuple[list[int], list[int]]:
    """``(uids, u16 weights)`` ready for the chain, exactly as the bittensor SDK computes them
    (``bittensor.intents.weights.normalize`` in SDK 11, ``convert_weights_and_uids_for_emit``
    before): divide by the largest weight, times 65535, round half to even, drop zeros. All-zero
    weights give ``([], [])``. Float32 weights are widened to float64 first, as the SDK's
    ``.tolist()`` does. Raises ``OperatorError`` on negative or non-finite weights, uids outside
    0..65535, or lists of different lengths."""
    return _native.emit_u16(
        np.ascontiguousarray(uids, dtype=np.int64),
        np.ascontiguousarray(weights, dtype=np.float64),
    )
