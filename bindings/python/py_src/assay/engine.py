"""Models: load, tokenise, generate, score and fine-tune (see ``Model``)."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from ._assay.engine import Model

__all__ = ["Model", "logging_progress"]


def logging_progress(
    what: str,
    logger: Optional[logging.Logger] = None,
    every_s: float = 5.0,
) -> Callable[[dict[str, Any]], None]:
    """A ``progress=`` callback that logs the latest event at INFO at most every ``every_s``
    seconds (and the first one at once), through the ``assay`` logger by default.

    Example: ``model.train(rows, progress=logging_progress("train"))``.
    """
    log = logger or logging.getLogger("assay")
    last = [float("-inf")]

    def report(event: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            log.info("%s: %s", what, ", ".join(f"{k}={v}" for k, v in event.items()))

    return report
