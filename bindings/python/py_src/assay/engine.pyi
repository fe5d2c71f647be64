import logging
from os import PathLike
from typing import Any, Callable, Literal, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

Progress = Callable[[dict[str, Any]], None]

class Model:
    """A loaded model with its tokenizer and chat template. Calls on one model run one at a
    time, each with the GIL released."""

    @staticmethod
    def load(
        source: Optional[str] = None, device: str = "cpu", dtype: Optional[str] = None
    ) -> Model:
        """A Hugging Face folder, a `.gguf` file, `org/name[@revision]` from the local HF cache,
        or None for the embedded default (SmolLM2-135M-Instruct). `device`: cpu, cuda, cuda:N;
        `dtype`: f32, bf16, f16 (default f32 on the CPU, bf16 on a GPU)."""
    @property
    def source(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...
    def apply_chat_template(
        self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True
    ) -> str: ...
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: Optional[int] = None,
        n: int = 1,
        stop: Optional[Sequence[str]] = None,
        repetition_penalty: float = 1.0,
        seed: int = 0,
        chat: bool = False,
        system: Optional[str] = None,
        max_batch_rows: int = 32,
        progress: Optional[Progress] = None,
    ) -> Union[list[str], list[list[str]]]:
        """One text per prompt when `n == 1`, else `n` texts per prompt."""
    def score(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        *,
        max_batch_tokens: int = 4096,
        progress: Optional[Progress] = None,
    ) -> list[dict[str, Any]]:
        """Per pair: `logprobs` (float32 array), `sum_logprob`, `mean_nll`, `is_greedy`."""
    def score_tokens(
        self, sequences: Sequence[Sequence[int]], *, max_batch_tokens: int = 4096
    ) -> list[npt.NDArray[np.float32]]: ...
    def train(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        lora: bool = True,
        rank: int = 16,
        alpha: float = 32.0,
        targets: Optional[Sequence[str]] = None,
        layers: Optional[Sequence[int]] = None,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        steps: Optional[int] = None,
        epochs: int = 1,
        batch_tokens: int = 2048,
        grad_accum: int = 1,
        warmup_steps: int = 0,
        schedule: Literal["constant", "linear", "cosine"] = "cosine",
        max_grad_norm: float = 1.0,
        token_budget: Optional[int] = None,
        time_budget_s: Optional[float] = None,
        seed: int = 0,
        chat: bool = False,
        max_len: int = 4096,
        progress: Optional[Progress] = None,
    ) -> dict[str, Any]:
        """Fine-tunes in place; returns the report (steps, tokens, train_loss, history, ...)."""
    def save_adapter(
        self, path: Union[str, PathLike[str]], base_model: Optional[str] = None
    ) -> None: ...

def logging_progress(
    what: str, logger: Optional[logging.Logger] = None, every_s: float = 5.0
) -> Progress: ...
