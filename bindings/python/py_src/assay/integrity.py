"""Integrity checks on untrusted submissions: canonical forms, duplicates, schema, models."""

from ._assay.integrity import (
    canonical_form,
    check_model_folder,
    check_submission,
    content_hash,
    exact_duplicates,
    near_duplicates,
)

__all__ = [
    "canonical_form",
    "check_model_folder",
    "check_submission",
    "content_hash",
    "exact_duplicates",
    "near_duplicates",
]
