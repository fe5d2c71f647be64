from os import PathLike
from typing import Any, Callable, Mapping, Optional, Sequence, Union

class RewardModel:
    """A process (or outcome) reward model."""

    @staticmethod
    def load(
        spec: str, kind: Optional[str] = None, device: str = "cpu", dtype: Optional[str] = None
    ) -> RewardModel: ...
    def score(
        self, problem: str, responses: Sequence[str], *, batch: int = 8
    ) -> list[list[float]]:
        """Step rewards of each response (one per line for a process model)."""
    @property
    def kind(self) -> str: ...

def evaluate(
    samples: Sequence[Sequence[Mapping[str, Any]]],
    gold: Sequence[str],
    *,
    n: Optional[int] = None,
    aggregation: str = "last",
    temperature: float = 0.0,
) -> dict[str, Any]:
    """Graded samples, the three rules' selections and the accuracy curve."""

def run(
    prm: str,
    out: Union[str, PathLike[str]],
    *,
    model: Optional[str] = None,
    device: str = "cpu",
    dtype: Optional[str] = None,
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
    **settings: Any,
) -> dict[str, Any]:
    """A whole best-of-N run; the report, with the output folder written."""
