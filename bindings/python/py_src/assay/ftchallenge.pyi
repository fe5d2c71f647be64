from os import PathLike
from typing import Any, Optional, Union

def grade(
    results: Union[str, PathLike[str]],
    labels: Union[str, PathLike[str]],
    taxonomy: Optional[Union[str, PathLike[str]]] = None,
    *,
    embedding: bool = True,
    judge_url: Optional[str] = None,
    judge_model: Optional[str] = None,
    out: Optional[Union[str, PathLike[str]]] = None,
) -> dict[str, Any]:
    """The grade report (`total`, `components`, `rows`, ...), with `markdown` and `written`."""
