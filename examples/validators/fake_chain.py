"""An in-process stand-in for `bittensor.Subtensor` (11.x sync client): the surface the neurons
use (see common.py), backed by plain data, recording every intent sent instead of signing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Optional


@dataclass
class FakeNeuron:
    uid: int
    hotkey: str


@dataclass
class FakeSubtensor:
    netuid: int
    neurons_list: list[FakeNeuron]
    commitment_rows: list[dict] = field(default_factory=list)
    current_block: int = 1000
    rate_limit: int = 100
    last_update: dict[int, int] = field(default_factory=dict)
    sent: list[tuple[Any, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.identity = SimpleNamespace(commitments=self._commitments)
        self.neurons = SimpleNamespace(neurons=self._neurons)
        self.hyperparameters = SimpleNamespace(weights_rate_limit=self._rate_limit)
        self.epochs = SimpleNamespace(blocks_since_last_update=self._since)

    def commit(self, hotkey: str, data: str, block: int) -> None:
        uid = next(n.uid for n in self.neurons_list if n.hotkey == hotkey)
        self.commitment_rows.insert(
            0, {"hotkey": hotkey, "uid": uid, "commitment": data, "block": block, "status": "revealed"}
        )

    def block(self) -> int:
        return self.current_block

    def _check(self, netuid: int) -> None:
        assert netuid == self.netuid, f"asked about netuid {netuid}, the fake chain is {self.netuid}"

    def _commitments(self, netuid: int, *, block: Optional[int] = None) -> list[dict]:
        self._check(netuid)
        return [dict(r) for r in self.commitment_rows]

    def _neurons(self, netuid: int, lite: bool = True, *, block: Optional[int] = None) -> list[FakeNeuron]:
        self._check(netuid)
        return list(self.neurons_list)

    def _rate_limit(self, netuid: Optional[int] = None, *, block: Optional[int] = None) -> int:
        return self.rate_limit

    def _since(self, netuid: int, uid: int, *, block: Optional[int] = None) -> Optional[int]:
        self._check(netuid)
        if uid not in self.last_update:
            return None
        return self.current_block - self.last_update[uid]

    def execute(self, intent: Any, wallet: Any, **kwargs: Any) -> dict:
        """Records the intent; like the chain, refuses a set inside the rate limit."""
        self._check(intent.netuid)
        uid = next(n.uid for n in self.neurons_list if n.hotkey == wallet.hotkey.ss58_address)
        since = self._since(intent.netuid, uid)
        if since is not None and since < self.rate_limit:
            raise RuntimeError("SettingWeightsTooFast")
        self.sent.append((intent, wallet))
        self.last_update[uid] = self.current_block
        return {"success": True, "block": self.current_block}


def fake_wallet(hotkey: str) -> Any:
    return SimpleNamespace(hotkey=SimpleNamespace(ss58_address=hotkey))
