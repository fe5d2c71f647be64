"""An SN37 ("finetuning") validator on assay: miners commit
`namespace:name:commit:secure_hash:competition_id` for a model on the Hugging Face Hub; the
validator checks the hotkey-salted hash, scores each model's loss on the round's evaluation
texts, turns scores into pairwise win rates with the epsilon advantage of earlier commits,
gives the round to the best win rate (winner takes all), keeps an EMA per competition and sets
weights (SN37's rules, macrocosm-os/finetuning@afd4403 and taoverse@e350d5e; see
shared/spec/seeds-subnets.md B.2, B.3, B.8).

Models are read from the local Hugging Face cache at the committed revision (download them with
`huggingface-cli download ns/name --revision COMMIT`, or let a fetcher do it); a model that is
missing, fails its hash or fails to load is skipped for the round.

Run:

    python examples/validators/sn37_validator.py --netuid 37 --network finney \\
        --wallet-name validator --wallet-hotkey default --eval eval_texts.jsonl
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import assay
from common import Commitment, WeightSetter, read_commitments

log = logging.getLogger("assay.validator.sn37")

# SN37 3.1.0's weights version key (constants.weights_version_key = 1000*3 + 10*1 + 0).
SN37_VERSION_KEY = 3010
ALPHA = 0.9  # EMA factor of a competition's weights
MIN_WEIGHT_THRESHOLD = 0.18


@dataclass(frozen=True)
class ModelId:
    """A parsed SN37 commitment."""

    namespace: str
    name: str
    commit: str
    secure_hash: str
    competition_id: int

    @staticmethod
    def parse(text: str) -> Optional["ModelId"]:
        """`namespace:name:commit:secure_hash:competition_id` (at most 128 bytes), else None."""
        parts = text.split(":")
        if len(text.encode()) > 128 or len(parts) != 5 or not all(parts[:4]):
            return None
        try:
            competition = int(parts[4])
        except ValueError:
            return None
        return ModelId(parts[0], parts[1], parts[2], parts[3], competition)


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub finds it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "huggingface" / "hub"


def snapshot_dir(model: ModelId) -> Path:
    return hub_cache() / f"models--{model.namespace}--{model.name}" / "snapshots" / model.commit


def directory_hash(folder: Path) -> str:
    """taoverse's model-folder hash: files in sorted walk order, each as base64(sha256(bytes)),
    all those strings into one SHA-256, base64."""
    outer = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            digest = hashlib.sha256(Path(root, name).read_bytes()).digest()
            outer.update(base64.b64encode(digest))
    return base64.b64encode(outer.digest()).decode()


def secure_hash(folder: Path, hotkey: str) -> str:
    """base64(sha256(directory hash + hotkey)): binds a commitment to the miner's hotkey."""
    return base64.b64encode(hashlib.sha256((directory_hash(folder) + hotkey).encode()).digest()).decode()


def epsilon(current_block: int, model_block: int, start: float, end: float, decay_blocks: int) -> float:
    """taoverse's LinearDecay epsilon: `start` falling to `end` over `decay_blocks` of age."""
    age = max(current_block - model_block, 0)
    return start - min(age / decay_blocks, 1.0) * (start - end)


def win_rates(losses: Sequence[float], blocks: Sequence[int], current_block: int,
              eps: tuple[float, float, int]) -> list[float]:
    """Pairwise win rates (lower loss wins); in each pair only the earlier commit's loss is
    discounted by (1 - epsilon); equal blocks get no discount."""
    n = len(losses)
    if n == 1:
        return [1.0]
    rates = []
    for i in range(n):
        wins = 0
        for j in range(n):
            if i == j:
                continue
            si, sj = losses[i], losses[j]
            if blocks[i] < blocks[j]:
                si *= 1 - epsilon(current_block, blocks[i], *eps)
            elif blocks[j] < blocks[i]:
                sj *= 1 - epsilon(current_block, blocks[j], *eps)
            wins += si < sj
        rates.append(wins / (n - 1))
    return rates


@dataclass
class Sn37Validator:
    """One validator: call `run_round()` at each sync block."""

    subtensor: Any
    wallet: Any
    netuid: int
    eval_texts: Sequence[dict]  # {"prompt", "completion"}: the completion's loss is the score
    competition_id: int = 4
    epsilon_schedule: tuple[float, float, int] = (0.05, 0.01, 21_600)
    device: str = "cpu"
    weights_version: int = SN37_VERSION_KEY
    ema: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.setter = WeightSetter(self.subtensor, self.wallet, self.netuid, self.weights_version)

    def loss(self, model: ModelId) -> float:
        lm = assay.Model.load(f"{model.namespace}/{model.name}@{model.commit}", device=self.device)
        scores = lm.score([t["prompt"] for t in self.eval_texts], [t["completion"] for t in self.eval_texts])
        return sum(s["mean_nll"] for s in scores) / len(scores)

    def evaluate(self, commitments: Sequence[Commitment]) -> dict[int, tuple[float, int]]:
        """`{uid: (loss, commit block)}` of every valid model of the competition."""
        out = {}
        for c in commitments:
            model = ModelId.parse(c.data)
            if model is None or model.competition_id != self.competition_id:
                log.info("uid %s: commitment %r skipped", c.uid, c.data)
                continue
            folder = snapshot_dir(model)
            if not folder.is_dir():
                log.info("uid %s: %s/%s@%s is not in the HF cache", c.uid, model.namespace, model.name, model.commit)
                continue
            if secure_hash(folder, c.hotkey) != model.secure_hash:
                log.warning("uid %s: secure hash mismatch (copied commitment?)", c.uid)
                continue
            try:
                out[c.uid] = (self.loss(model), c.block)
            except assay.AssayError as error:
                log.warning("uid %s: %s", c.uid, error)
        return out

    def run_round(self) -> Optional[tuple[list[int], list[int]]]:
        block = int(self.subtensor.block())
        scored = self.evaluate(read_commitments(self.subtensor, self.netuid))
        if not scored:
            log.warning("no valid model this round")
            return None
        uids = sorted(scored)
        rates = win_rates([scored[u][0] for u in uids], [scored[u][1] for u in uids], block,
                          self.epsilon_schedule)
        best = max(rates)
        step = [1.0 if r == best else 0.0 for r in rates]
        total = sum(step)
        new = {u: s / total for u, s in zip(uids, step)}
        if not self.ema:
            self.ema = new
        else:
            self.ema = {u: ALPHA * self.ema.get(u, 0.0) + (1 - ALPHA) * new.get(u, 0.0)
                        for u in set(self.ema) | set(new)}
        total = sum(self.ema.values())
        kept = {u: w / total for u, w in self.ema.items() if w / total >= MIN_WEIGHT_THRESHOLD}
        for uid in uids:
            log.info("uid %s: loss %.5f, block %s, win rate %.3f", uid, scored[uid][0], scored[uid][1],
                     rates[uids.index(uid)])
        ordered = sorted(kept)
        return self.setter.set(ordered, [kept[u] for u in ordered])


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netuid", type=int, default=37)
    parser.add_argument("--network", default="finney")
    parser.add_argument("--wallet-name", default="default")
    parser.add_argument("--wallet-hotkey", default="default")
    parser.add_argument("--eval", required=True, help="JSONL of {prompt, completion}")
    parser.add_argument("--competition", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import bittensor as bt

    texts = [json.loads(line) for line in Path(args.eval).read_text().splitlines() if line.strip()]
    validator = Sn37Validator(bt.Subtensor(args.network), bt.Wallet(args.wallet_name, args.wallet_hotkey),
                              args.netuid, texts, competition_id=args.competition, device=args.device)
    while True:
        validator.run_round()
        # SN37 evaluates once per sync block (360 blocks of ~12 s).
        time.sleep(360 * 12)


if __name__ == "__main__":
    main()
