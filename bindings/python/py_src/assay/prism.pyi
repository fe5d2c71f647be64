from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .signing import Signer

class SubmissionRejected(Exception):
    status: int
    detail: Any
    def __init__(self, status: int, detail: Any) -> None: ...

def zip_folder(folder: Union[str, Path]) -> bytes: ...
def submission_body(
    bundle: Union[bytes, str, Path], filename: str = "project.zip", metadata: Optional[dict] = None
) -> bytes: ...
def submit_bundle(
    url: str,
    signer: Signer,
    bundle: Union[bytes, str, Path],
    *,
    filename: str = "project.zip",
    metadata: Optional[dict] = None,
    timeout: float = 60.0,
    nonce: Optional[str] = None,
    timestamp: Optional[int] = None,
) -> dict: ...
def check_bundle(
    path: Optional[Union[str, PathLike[str]]] = None,
    *,
    files: Optional[Mapping[str, str]] = None,
    distributed_policy: str = "reject",
    gpu_count: Optional[int] = None,
    num_nodes: Optional[int] = None,
) -> dict[str, Any]:
    """The static verdict: `passed`, `contract`, `findings`, `fingerprint`, hashes, ..."""

def score_run(
    batches: Optional[Sequence[tuple[int, int, Optional[float]]]] = None,
    vocab_size: Optional[int] = None,
    *,
    prequential: Optional[Mapping[str, Any]] = None,
    heldout: Optional[Mapping[str, Any]] = None,
    near_duplicate: float = 1.0,
) -> dict[str, Any]:
    """`{"score": {...}, "prequential": {...}, "heldout": {...} | None}`."""

class Leaderboard:
    """PRISM's leaderboard, crown and weights (one JSON state file)."""

    def __init__(self) -> None: ...
    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> Leaderboard: ...
    def save(self, path: Union[str, PathLike[str]]) -> None: ...
    def record(
        self,
        hotkey: str,
        accepted_at: int,
        score: float,
        bpb: float,
        family_hash: str,
        training_hash: str,
        *,
        fingerprint: Optional[set[str]] = None,
        structure: Optional[set[str]] = None,
        architecture_name: Optional[str] = None,
    ) -> int: ...
    def ranking(self) -> list[dict[str, Any]]: ...
    def best_family(self) -> Optional[dict[str, Any]]: ...
    def weights(self) -> dict[str, float]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...
