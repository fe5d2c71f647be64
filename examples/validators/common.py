"""What the three validator neurons share: reading commitments, honouring the weights rate
limit, and sending weights through the bittensor SDK (11.x).

The subtensor is a parameter everywhere (a `bittensor.Subtensor` in production, the in-process
`fake_chain.FakeSubtensor` in the tests), and only this surface of it is used:

    subtensor.block()                                       current block
    subtensor.identity.commitments(netuid)                  [{hotkey, uid, commitment, block, status}]
    subtensor.neurons.neurons(netuid)                       [Neuron(uid, hotkey, ...)]
    subtensor.hyperparameters.weights_rate_limit(netuid)    blocks between two weight-sets
    subtensor.epochs.blocks_since_last_update(netuid, uid)  blocks since our last weight-set
    subtensor.execute(SetWeights(...), wallet)              sign and send

`SetWeights` picks plain `set_mechanism_weights` or a timelocked commit-reveal by itself, from
the subnet's `CommitRevealWeightsEnabled`, so the neurons work on subnets with and without
commit-reveal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import assay

log = logging.getLogger("assay.validator")


@dataclass(frozen=True)
class Commitment:
    """A miner's on-chain commitment: its uid and hotkey, the committed string, and the block it
    was committed at (the timestamp every "first committer wins" rule uses)."""

    uid: int
    hotkey: str
    data: str
    block: int


def read_commitments(subtensor: Any, netuid: int) -> list[Commitment]:
    """Every readable commitment of the subnet, oldest first (ties by uid). Sealed timelocked
    commitments and failed reveals have no content yet and are left out."""
    out = []
    for row in subtensor.identity.commitments(netuid):
        content = row.get("commitment")
        if row.get("status") in ("sealed", "failed") or not isinstance(content, str) or not content:
            continue
        out.append(Commitment(int(row["uid"]), str(row["hotkey"]), content, int(row["block"])))
    return sorted(out, key=lambda c: (c.block, c.uid))


def uid_of(subtensor: Any, netuid: int, hotkey: str) -> Optional[int]:
    """The uid of `hotkey` on the subnet, or None when it is not registered."""
    for neuron in subtensor.neurons.neurons(netuid):
        if neuron.hotkey == hotkey:
            return int(neuron.uid)
    return None


def version_key(version: str) -> int:
    """The weights version key of a `major.minor.patch` version: 1000·major + 10·minor + patch
    (SN37's convention: 3.1.0 -> 3010)."""
    major, minor, patch = (int(part) for part in version.split(".")[:3])
    return 1000 * major + 10 * minor + patch


def set_weights_intent(netuid: int, uids: list[int], weights: list[float], version_key: int) -> Any:
    """bittensor's `SetWeights` intent (a stand-in with the same fields when the SDK is not
    installed, so the neurons' logic can be tested anywhere)."""
    try:
        from bittensor.intents.weights import SetWeights
    except ImportError:
        return _SetWeights(netuid=netuid, uids=uids, weights=weights, version_key=version_key)
    return SetWeights(netuid=netuid, uids=uids, weights=weights, version_key=version_key)


@dataclass
class _SetWeights:
    netuid: int
    uids: list[int]
    weights: list[float]
    version_key: int = 0
    mechid: int = 0


@dataclass
class WeightSetter:
    """Sends weights, at most once per `weights_rate_limit` blocks (the chain accepts a set when
    `blocks_since_last_update >= limit`; the first set is free)."""

    subtensor: Any
    wallet: Any
    netuid: int
    version_key: int
    sent: list[Any] = field(default_factory=list)

    def my_uid(self) -> Optional[int]:
        return uid_of(self.subtensor, self.netuid, self.wallet.hotkey.ss58_address)

    def ready(self) -> bool:
        """Whether the chain would accept a weight-set now."""
        uid = self.my_uid()
        if uid is None:
            log.error("hotkey %s is not registered on netuid %s", self.wallet.hotkey.ss58_address, self.netuid)
            return False
        limit = int(self.subtensor.hyperparameters.weights_rate_limit(self.netuid) or 0)
        since = self.subtensor.epochs.blocks_since_last_update(self.netuid, uid)
        if since is not None and since < limit:
            log.info("weights rate limit: %s of %s blocks since the last set; waiting", since, limit)
            return False
        return True

    def set(self, uids: Sequence[int], weights: Sequence[float]) -> Optional[tuple[list[int], list[int]]]:
        """Quantises `weights` exactly as the chain will store them (`assay.weights.emit_u16`) and
        sends them. Returns the `(uids, u16 weights)` sent, or None when nothing was sent (rate
        limit, unregistered hotkey, or all weights zero)."""
        chain_uids, chain_values = assay.weights.emit_u16(list(uids), list(weights))
        if not chain_uids:
            log.warning("every weight is zero: nothing to set")
            return None
        if not self.ready():
            return None
        # The u16 values are sent as the weights: the SDK's own max-upscale maps them to
        # themselves, so what is logged here is what the chain stores.
        intent = set_weights_intent(
            self.netuid, chain_uids, [float(v) for v in chain_values], self.version_key
        )
        result = self.subtensor.execute(intent, self.wallet)
        self.sent.append(result)
        log.info("set weights on netuid %s: %s", self.netuid, dict(zip(chain_uids, chain_values)))
        return chain_uids, chain_values
