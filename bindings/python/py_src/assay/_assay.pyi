"""The native half of the package (Rust, PyO3). Use it through `assay` and its submodules."""

from typing import Optional

__version__: str

class AssayError(Exception):
    """Base class of every error assay raises."""

    blame: str
    """Whose fault it is: "miner", "operator", "transient" or "bug"."""
    hint: Optional[str]
    """What to do about it, when there is something to say."""

class MinerError(AssayError):
    """The submission is at fault: score it zero; retrying cannot help."""

class OperatorError(AssayError):
    """The validator's own configuration or inputs are wrong."""

class TransientError(AssayError):
    """A passing condition: the same work may succeed if retried."""

class BugError(AssayError):
    """An internal invariant failed: a bug in assay."""
