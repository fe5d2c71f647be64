"""Best-of-N with a process reward model: step rewards (``RewardModel``), grading and the three
selection rules over budgets (``evaluate``), and the whole sampled, scored run (``run``)."""

from ._assay.bon import RewardModel, evaluate, run

__all__ = ["RewardModel", "evaluate", "run"]
