from os import PathLike
from typing import Any, Callable, Mapping, Optional, Sequence, Union

ALPHA: float
MIN_WEIGHT_THRESHOLD: float

def run_round(
    competition: str,
    models: Union[str, PathLike[str]],
    data: Union[str, PathLike[str]],
    out: Union[str, PathLike[str]],
    block: int,
    *,
    block_hash: Optional[str] = None,
    state: Optional[Union[str, PathLike[str]]] = None,
    device: str = "cpu",
    dtype: Optional[str] = None,
    allow_missing_tasks: bool = False,
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
) -> dict[str, Any]:
    """One round: `{"results", "leaderboard", "state_path"}`; files written into `out`."""

def epsilon(schedule: Mapping[str, Any], current_block: int, model_block: int) -> float: ...
def wins(
    contenders: Sequence[Mapping[str, Any]], schedule: Mapping[str, Any], current_block: int
) -> list[dict[str, Any]]:
    """`{"wins", "win_rate"}` per contender (`{"hotkey", "score", "block"}`; lower is better)."""

def step_weights(win_rates: Sequence[float]) -> list[float]: ...

class MovingAverage:
    """Per-competition moving averages of step weights, and the subnet weights."""

    def __init__(self, alpha: float = ...) -> None: ...
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> MovingAverage: ...
    @staticmethod
    def from_dict(state: Mapping[str, Any]) -> MovingAverage: ...
    def to_dict(self) -> dict[str, Any]: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    def record_step(
        self, competition: int, reward_share: float, step: Mapping[str, float]
    ) -> None: ...
    def record_round(
        self, competition: int, block: int, reward_share: float, step: Mapping[str, float]
    ) -> None: ...
    def subnet_weights(self, threshold: float = ...) -> dict[str, float]: ...
    def weights(self, competition: int) -> dict[str, float]: ...
    @property
    def alpha(self) -> float: ...
