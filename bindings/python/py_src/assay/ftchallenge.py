"""The fine-tuning challenge's grader: a candidate's ``results.json`` against the hidden labels
(intent with synonyms 40%, reply quality 30%, regression probes 20%, training efficiency 10%)."""

from ._assay.ftchallenge import grade

__all__ = ["grade"]
