"""assay: a validator engine for decentralized LLM-training competitions, from Python.

The heavy work runs in Rust (the `assay._assay` extension) with the GIL released:

- ``assay.engine``: load a model (HF folder, HF cache, GGUF, embedded default), generate, score,
  fine-tune with LoRA;
- ``assay.metrics``: word recall, ROUGE, BLEU, math answers, IF-eval rules;
- ``assay.integrity``: canonical forms, duplicates, submission and model checks;
- ``assay.weights``: scores to weights, and Bittensor's u16 ``(uids, weights)``;
- ``assay.signing``: sr25519 hotkeys, SS58, PRISM's signed request message;
- ``assay.datacomp``: the Datacomp interview's ``forward_pass`` / ``validate_and_score`` contract,
  and a whole Datacomp round (``run_round``);
- ``assay.sn37``: an SN37 round, and its wins, epsilon and moving-average weights;
- ``assay.ftchallenge``: the fine-tuning challenge's grader;
- ``assay.bon``: best-of-N with a process reward model (rewards, selection, whole runs);
- ``assay.prism``: PRISM's bundle check, run score and leaderboard, and signing and uploading a
  bundle to ``assay serve``.

Errors are ``AssayError`` subclasses named after whose fault they are: ``MinerError`` (score the
submission zero), ``OperatorError`` (fix the validator's setup), ``TransientError`` (retry),
``BugError`` (report it). Bad arguments raise ``ValueError``.
"""

from ._assay import (
    AssayError,
    BugError,
    MinerError,
    OperatorError,
    TransientError,
    __version__,
)
from . import bon, datacomp, engine, ftchallenge, integrity, metrics, prism, signing, sn37, weights
from .engine import Model

__all__ = [
    "AssayError",
    "BugError",
    "MinerError",
    "Model",
    "OperatorError",
    "TransientError",
    "__version__",
    "bon",
    "datacomp",
    "engine",
    "ftchallenge",
    "integrity",
    "metrics",
    "prism",
    "signing",
    "sn37",
    "weights",
]
