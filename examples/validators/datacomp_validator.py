"""A Datacomp subnet validator on assay: miners commit where their chain-of-thought data lives;
the validator checks it, fine-tunes a LoRA on each miner's data (same base, seed and budget for
all), and weights miners by how much their data lowers the loss on the validator's held-out
problems.

Round: read commitments (oldest first) -> fetch each miner's JSONL -> schema checks
(`assay.integrity.check_submission`) -> drop rows an earlier committer already submitted (up to
cosmetic edits: canonical-form hashes) and rows that copy a held-out prompt -> LoRA fine-tune
per miner -> score = max(0, base loss - fine-tuned loss) on the held-out answers -> weights
proportional to the scores -> `set_weights` (rate limit honoured, u16 exactly as the chain).

Run (a wallet registered on the subnet; held-out problems as JSONL with prompt and
final_answer):

    python examples/validators/datacomp_validator.py --netuid 1 --network finney \\
        --wallet-name validator --wallet-hotkey default --eval heldout.jsonl [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import assay
from common import Commitment, WeightSetter, read_commitments, version_key

log = logging.getLogger("assay.validator.datacomp")


def fetch_source(location: str, limit: int = 64 << 20) -> bytes:
    """A miner's data: an http(s) URL or a local path, at most `limit` bytes."""
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=60) as response:
            data = response.read(limit + 1)
    else:
        with open(location, "rb") as f:
            data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{location}: more than {limit} bytes")
    return data


def training_row(row: dict) -> dict:
    """An accepted row as a training row: chain-of-thought rows learn
    `chain_of_thought + "\\nAnswer: " + final_answer` after the prompt (the interview's format)."""
    if row["shape"] == "chain_of_thought":
        return {
            "prompt": row["prompt"],
            "completion": " " + row["chain_of_thought"] + "\nAnswer: " + row["final_answer"],
        }
    if row["shape"] == "completion":
        return {"prompt": row["prompt"], "completion": row["completion"]}
    return {"messages": row["messages"]}


def row_key(row: dict) -> str:
    """Content hash of a row up to cosmetic edits."""
    return assay.integrity.content_hash(json.dumps(training_row(row), sort_keys=True))


@dataclass
class MinerResult:
    """What the round found for one miner."""

    uid: int
    hotkey: str
    score: float = 0.0
    rows: int = 0
    reason: str = ""


@dataclass
class DatacompValidator:
    """One validator: call `run_round()` once per round."""

    subtensor: Any
    wallet: Any
    netuid: int
    eval_items: Sequence[dict]
    base_model: Optional[str] = None
    device: str = "cpu"
    train_steps: int = 8
    lr: float = 1e-3
    lora_rank: int = 8
    seed: int = 0
    min_rows: int = 1
    fetch: Callable[[str], bytes] = fetch_source
    weights_version: int = field(default_factory=lambda: version_key(assay.__version__))

    def __post_init__(self) -> None:
        self.setter = WeightSetter(self.subtensor, self.wallet, self.netuid, self.weights_version)

    def _heldout_loss(self, model: assay.Model) -> float:
        prompts = [item["prompt"] for item in self.eval_items]
        answers = [" " + item["final_answer"] for item in self.eval_items]
        scores = model.score(prompts, answers)
        return sum(s["mean_nll"] for s in scores) / len(scores)

    def evaluate(self, commitments: Sequence[Commitment]) -> list[MinerResult]:
        """Scores every committed miner (in commitment order: earlier committers own their rows)."""
        base_loss = self._heldout_loss(assay.Model.load(self.base_model, device=self.device))
        heldout = {assay.integrity.content_hash(item["prompt"]) for item in self.eval_items}
        seen: set[str] = set()
        results = []
        for c in commitments:
            result = MinerResult(c.uid, c.hotkey)
            results.append(result)
            try:
                data = self.fetch(c.data)
            except Exception as error:  # an unreachable or oversized source is the miner's problem
                result.reason = f"cannot fetch {c.data}: {error}"
                continue
            intake = assay.integrity.check_submission(c.hotkey, data)
            rows = []
            for row in intake["rows"]:
                key = row_key(row)
                if key in seen or assay.integrity.content_hash(row.get("prompt", "")) in heldout:
                    continue
                seen.add(key)
                rows.append(training_row(row))
            result.rows = len(rows)
            if len(rows) < self.min_rows:
                result.reason = (
                    f"{len(intake['rows'])} valid rows, {len(intake['problems'])} problems, "
                    f"{len(rows)} new: nothing to train on"
                )
                continue
            model = assay.Model.load(self.base_model, device=self.device)
            try:
                model.train(
                    rows, rank=self.lora_rank, alpha=2.0 * self.lora_rank, lr=self.lr,
                    steps=self.train_steps, seed=self.seed, schedule="constant",
                )
            except assay.MinerError as error:
                result.reason = str(error)
                continue
            result.score = max(0.0, base_loss - self._heldout_loss(model))
            result.reason = f"held-out loss {base_loss:.4f} -> {base_loss - result.score:.4f}"
        return results

    def run_round(self) -> Optional[tuple[list[int], list[int]]]:
        """Evaluates the current commitments and sets weights; returns what was sent, or None."""
        commitments = read_commitments(self.subtensor, self.netuid)
        results = self.evaluate(commitments)
        for r in results:
            log.info("uid %s (%s): score %.5f, %s rows; %s", r.uid, r.hotkey, r.score, r.rows, r.reason)
        weights = assay.weights.normalize([r.score for r in results])
        return self.setter.set([r.uid for r in results], weights)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netuid", type=int, required=True)
    parser.add_argument("--network", default="finney")
    parser.add_argument("--wallet-name", default="default")
    parser.add_argument("--wallet-hotkey", default="default")
    parser.add_argument("--eval", required=True, help="held-out JSONL: prompt, final_answer")
    parser.add_argument("--model", default=None, help="base model (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--every-s", type=float, default=3600.0, help="seconds between rounds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import bittensor as bt

    items = [json.loads(line) for line in Path(args.eval).read_text().splitlines() if line.strip()]
    validator = DatacompValidator(
        bt.Subtensor(args.network),
        bt.Wallet(name=args.wallet_name, hotkey=args.wallet_hotkey),
        args.netuid,
        items,
        base_model=args.model,
        device=args.device,
    )
    while True:
        validator.run_round()
        time.sleep(args.every_s)


if __name__ == "__main__":
    main()
