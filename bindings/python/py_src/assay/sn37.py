"""SN37 (finetuning subnet) scoring: a whole round from submitted model folders (``run_round``),
and its weight logic on its own: the epsilon advantage of earlier commits (``epsilon``),
pairwise wins (``wins``), winner-take-all steps (``step_weights``) and the per-competition moving
average with the subnet weights (``MovingAverage``), as taoverse/finetuning computes them."""

from ._assay.sn37 import (
    ALPHA,
    MIN_WEIGHT_THRESHOLD,
    MovingAverage,
    epsilon,
    run_round,
    step_weights,
    wins,
)

__all__ = [
    "ALPHA",
    "MIN_WEIGHT_THRESHOLD",
    "MovingAverage",
    "epsilon",
    "run_round",
    "step_weights",
    "wins",
]
