"""A PRISM validator on assay: the weights come from `assay serve` (or PRISM itself), which
scores the signed bundle submissions; the validator reads them from
`GET /internal/v1/get_weights` (Bearer token) as BASE's master reads PRISM's, maps each hotkey
to its uid on the subnet, and sets weights (rate limit honoured; the SDK picks commit-reveal
when the subnet uses it). An empty weights map (no crown yet: PRISM burns the share) sets
nothing.

Run (next to `assay serve --token $TOKEN`):

    python examples/validators/prism_validator.py --netuid 100 --network finney \\
        --wallet-name validator --wallet-hotkey default --server http://127.0.0.1:8080 --token $TOKEN
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

from common import WeightSetter

log = logging.getLogger("assay.validator.prism")

# assay's PRISM weights version (PRISM itself sets no version key of its own).
PRISM_VERSION_KEY = 1


def fetch_weights(server: str, token: str, timeout: float = 30.0) -> dict[str, float]:
    """`{hotkey: weight}` from a server's `/internal/v1/get_weights`."""
    request = urllib.request.Request(
        server.rstrip("/") + "/internal/v1/get_weights",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    weights = body.get("weights") or {}
    if not isinstance(weights, dict):
        raise ValueError(f"get_weights returned {type(weights).__name__}, not a hotkey map")
    return {str(k): float(v) for k, v in weights.items()}


@dataclass
class PrismValidator:
    """One validator: call `run_round()` once per epoch (or more often: the rate limit holds)."""

    subtensor: Any
    wallet: Any
    netuid: int
    weights_source: Callable[[], dict[str, float]]
    weights_version: int = PRISM_VERSION_KEY

    def __post_init__(self) -> None:
        self.setter = WeightSetter(self.subtensor, self.wallet, self.netuid, self.weights_version)

    def run_round(self) -> Optional[tuple[list[int], list[int]]]:
        by_hotkey = self.weights_source()
        uid_of = {n.hotkey: int(n.uid) for n in self.subtensor.neurons.neurons(self.netuid)}
        uids, weights = [], []
        for hotkey, weight in sorted(by_hotkey.items()):
            if hotkey not in uid_of:
                log.warning("%s has weight %s but is not registered on netuid %s: its share is dropped",
                            hotkey, weight, self.netuid)
                continue
            uids.append(uid_of[hotkey])
            weights.append(max(weight, 0.0))
        if not uids:
            log.info("no weights to set (no crown yet)")
            return None
        pairs = sorted(zip(uids, weights))  # by uid, as the chain lists them
        return self.setter.set([u for u, _ in pairs], [w for _, w in pairs])


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netuid", type=int, required=True)
    parser.add_argument("--network", default="finney")
    parser.add_argument("--wallet-name", default="default")
    parser.add_argument("--wallet-hotkey", default="default")
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--token", default=os.environ.get("ASSAY_TOKEN", ""))
    parser.add_argument("--every-s", type=float, default=600.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import bittensor as bt

    validator = PrismValidator(
        bt.Subtensor(args.network),
        bt.Wallet(args.wallet_name, args.wallet_hotkey),
        args.netuid,
        lambda: fetch_weights(args.server, args.token),
    )
    while True:
        validator.run_round()
        time.sleep(args.every_s)


if __name__ == "__main__":
    main()
