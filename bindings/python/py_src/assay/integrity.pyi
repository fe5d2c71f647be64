from os import PathLike
from typing import Any, Optional, Sequence, Union

def canonical_form(text: str) -> str: ...
def content_hash(text: str) -> str: ...
def exact_duplicates(texts: Sequence[str]) -> list[Optional[int]]: ...
def near_duplicates(
    texts: Sequence[str], params: Optional[dict[str, Any]] = None
) -> list[Optional[tuple[int, float]]]: ...
def check_submission(
    file: str, data: bytes, limits: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """`{"rows": [...], "problems": [...]}`; never raises for bad data."""
def check_model_folder(
    path: Union[str, PathLike[str]], rules: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """The report, with `accepted`; never raises for a bad model."""
