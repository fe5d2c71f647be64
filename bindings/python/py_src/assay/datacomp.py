"""The Datacomp subnet interview's contract, on assay's engine.

``load_model``, ``forward_pass``, ``naive_string_similarity``, ``validate_and_score`` and
``fine_tune_on_chain_of_thought`` take and return what the interview's reference solution does
(CrucibleAILabs/technical-interview:reference_solution.py@ece3749), so its driver code runs
unchanged with ``from assay.datacomp import *`` in place of its own definitions:

    model, tokenizer = load_model()
    score_before = validate_and_score(model, tokenizer, SAMPLE_DATA, do_finetune=False)
    score_after = validate_and_score(model, tokenizer, SAMPLE_DATA, do_finetune=True)

``run_round`` scores a whole subnet round the way ``assay datacomp run`` does (integrity checks,
one LoRA fine-tune per miner on the same token budget, held-out evaluation, weights).

Differences from the interview's reference, on purpose: ``load_model()`` without a name loads assay's embedded default
(SmolLM2-135M-Instruct) instead of downloading Llama-3.1-8B; generation decodes only the new
tokens (the reference decodes prompt and output together and cuts the prompt's characters off,
which gives the same text whenever the prompt decodes back to itself); the one-step fine-tune
averages the loss over all tokens of the batch where the reference sums the per-item means
(AdamW's update barely depends on that scale).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from ._assay import datacomp as _native
from .engine import Model
from .metrics import mean_word_recall, word_recall

__all__ = [
    "Tokenizer",
    "fine_tune_on_chain_of_thought",
    "forward_pass",
    "load_model",
    "naive_string_similarity",
    "run_round",
    "validate_and_score",
]


class Tokenizer:
    """The tokenizer half of ``load_model``'s pair: a view of the model's own tokenizer."""

    def __init__(self, model: Model):
        self.model = model

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``."""
        return self.model.encode(text, add_special_tokens)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of token ids."""
        return self.model.decode(list(ids), skip_special_tokens)

    def __repr__(self) -> str:
        return f"Tokenizer({self.model.source})"


def load_model(
    model_name: Optional[str] = None, device: str = "cpu", dtype: Optional[str] = None
) -> tuple[Model, Tokenizer]:
    """``(model, tokenizer)``. ``model_name`` is a Hugging Face folder, a GGUF file, or
    ``org/name[@revision]`` in the local HF cache; None loads the embedded default."""
    model = Model.load(model_name, device=device, dtype=dtype)
    return model, Tokenizer(model)


def forward_pass(
    model: Model, tokenizer: Optional[Tokenizer], prompts: Iterable[str], max_length: int = 30
) -> list[str]:
    """Greedy generation of at most ``max_length`` new tokens per prompt (batched), each output
    stripped of surrounding whitespace, as the reference's ``forward_pass`` returns them."""
    outputs = model.generate(list(prompts), max_new_tokens=max_length, temperature=0.0)
    return [text.strip() for text in outputs]


def naive_string_similarity(output: str, reference: str) -> float:
    """|words(output) ∩ words(reference)| / |words(reference)| over lower-cased whitespace-split
    word sets; 0.0 for an empty reference (the reference's metric, bit for bit)."""
    return word_recall(output, reference)


def fine_tune_on_chain_of_thought(
    model: Model, tokenizer: Optional[Tokenizer], data: Sequence[dict[str, Any]], lr: float = 1e-5
) -> dict[str, Any]:
    """One AdamW step (lr 1e-5, weight decay 0.01 as torch's default) of every weight on each
    item's ``chain_of_thought + "\\nAnswer: " + final_answer``, all items in one batch, loss on
    every token after the first (the reference's mock fine-tune). Returns the training report."""
    rows = [
        {"prompt": "", "completion": item["chain_of_thought"] + "\nAnswer: " + item["final_answer"]}
        for item in data
    ]
    if not rows:
        return {"steps": 0}
    longest = max(len(model.encode(row["completion"])) for row in rows) + 2
    return model.train(
        rows,
        lora=False,
        lr=lr,
        weight_decay=0.01,
        steps=1,
        batch_tokens=longest * len(rows),
        schedule="constant",
        max_grad_norm=0.0,
    )


def validate_and_score(
    model: Model,
    tokenizer: Optional[Tokenizer],
    data: Sequence[dict[str, Any]],
    do_finetune: bool = True,
) -> float:
    """Optionally fine-tune on the data, generate an answer for each prompt, and return the mean
    word recall of the answers against ``final_answer`` (0.0 for no data)."""
    if do_finetune:
        fine_tune_on_chain_of_thought(model, tokenizer, data)
    predicted = forward_pass(model, tokenizer, [item["prompt"] for item in data])
    return mean_word_recall(predicted, [item["final_answer"] for item in data])


def run_round(
    submissions: Union[str, "os.PathLike[str]"],
    out: Union[str, "os.PathLike[str]"],
    *,
    model: Optional[str] = None,
    device: str = "cpu",
    dtype: Optional[str] = None,
    progress: Optional[Callable[[dict[str, Any]], None]] = None,
    **settings: Any,
) -> dict[str, Any]:
    """Runs a Datacomp round on ``submissions`` (``round.json`` and each miner's JSONL file) and
    writes its results, report, evaluation set, timings, plots and adapters into ``out``.

    ``model`` is the base model (None: the embedded default); further settings go as keywords
    over the CLI's defaults (``eval={"generated": {"seed": None, "count": 8}}`` or
    ``eval={"file": path}``, ``token_budget``, ``lr``, ``rank``, ``top_layers``,
    ``batch_tokens``, ``max_new_tokens``, ``generate``, ``policy``, ``seed``, ``overwrite``).
    Returns the results: ``miners`` best first (``score``, ``weight``, ``weight_u16``,
    ``penalty_multiplier``, ``reasons``, ...), ``base``, ``integrity``. Runs with the GIL
    released; ``progress`` gets one dict per stage (``assay.engine.logging_progress`` logs them).
    Bad inputs raise ``OperatorError``; a round whose every miner fails still returns results.
    """
    return _native.run_round(
        submissions, out, model=model, device=device, dtype=dtype, progress=progress, **settings
    )
