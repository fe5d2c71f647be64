"""Text and answer metrics, computed in Rust exactly as assay's golden fixtures check them."""

from ._assay.metrics import (
    corpus_bleu,
    extract_answer,
    grade_completion,
    ifeval_check,
    ifeval_prompt,
    math_equal,
    mean_word_recall,
    rouge,
    rouge_batch,
    sentence_bleu,
    sentence_count,
    strip_string,
    word_recall,
    word_recall_batch,
)

__all__ = [
    "corpus_bleu",
    "extract_answer",
    "grade_completion",
    "ifeval_check",
    "ifeval_prompt",
    "math_equal",
    "mean_word_recall",
    "rouge",
    "rouge_batch",
    "sentence_bleu",
    "sentence_count",
    "strip_string",
    "word_recall",
    "word_recall_batch",
]
