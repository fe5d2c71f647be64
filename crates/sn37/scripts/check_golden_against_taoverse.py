#!/usr/bin/env python3
"""Cross-checks weights_golden.json against the reference code itself (run by hand, not in CI).

Loads taoverse's competition_tracker.py and epsilon.py and finetuning's _is_win/compute_wins from
source files extracted from the upstream repositories (logging and Competition are stubbed) and
replays every golden round through them on torch float32 tensors, as the validator does. The
golden values are f64; agreement is expected to float32 precision (1e-6).

Usage: /work/pyref/bin/python crates/sn37/scripts/check_golden_against_taoverse.py SRC_DIR
where SRC_DIR holds competition_tracker.py, epsilon.py (taoverse src/taoverse/model/competition/)
and wins.py (the _is_win and compute_wins functions of finetuning finetune/validation.py).
"""
import json
import math
import pathlib
import sys
import types
import typing

import torch

src = pathlib.Path(sys.argv[1])
logging_stub = types.SimpleNamespace(trace=lambda *a, **k: None)
for name, module in {
    "taoverse": types.ModuleType("taoverse"),
    "taoverse.utilities": types.ModuleType("taoverse.utilities"),
    "taoverse.utilities.logging": logging_stub,
    "taoverse.model": types.ModuleType("taoverse.model"),
    "taoverse.model.competition": types.ModuleType("taoverse.model.competition"),
    "taoverse.model.competition.data": types.SimpleNamespace(Competition=object),
}.items():
    sys.modules[name] = module
namespace = {}
exec((src / "epsilon.py").read_text(), namespace)
sys.modules["taoverse.model.competition.epsilon"] = types.SimpleNamespace(**namespace)
tracker_ns = {}
exec((src / "competition_tracker.py").read_text(), tracker_ns)
wins_ns = {"typing": typing, "EpsilonFunc": namespace["EpsilonFunc"]}
exec((src / "wins.py").read_text(), wins_ns)


def schedule(spec):
    if spec["kind"] == "fixed":
        return namespace["FixedEpsilon"](spec["epsilon"])
    return namespace["LinearDecay"](spec["start"], spec["end"], spec["decay_blocks"])


golden = json.loads(pathlib.Path(__file__).resolve().parent.parent.joinpath("tests/fixtures/weights_golden.json").read_text())
worst = 0.0
for case in golden["cases"]:
    neurons = 1 + max(int(c["hotkey"][2:]) for r in case["rounds"] for c in r["contenders"])
    tracker = tracker_ns["CompetitionTracker"](neurons, alpha=case["alpha"])
    comps = [types.SimpleNamespace(id=int(k), reward_percentage=v["reward_share"]) for k, v in sorted(case["competitions"].items(), key=lambda kv: int(kv[0]))]
    for r in case["rounds"]:
        uids = [int(c["hotkey"][2:]) for c in r["contenders"]]
        scores = {u: (math.inf if c["score"] is None else c["score"]) for u, c in zip(uids, r["contenders"])}
        blocks = {u: c["block"] for u, c in zip(uids, r["contenders"])}
        eps = schedule(case["competitions"][str(r["competition"])]["epsilon"])
        wins, rates = wins_ns["compute_wins"](uids, scores, blocks, eps, r["block"])
        assert [wins[u] for u in uids] == r["wins"], (case["name"], wins, r["wins"])
        best = max(rates.values())
        step = torch.tensor([1 if rates[u] == best else 0 for u in uids], dtype=torch.float32)
        full = torch.zeros(neurons, dtype=torch.float32)
        for i, u in enumerate(uids):
            full[u] = step[i]
        tracker.record_competition_weights(r["competition"], full)
        subnet = tracker.get_subnet_weights(comps, min_comp_weight_threshold=case["threshold"])
        for u in range(neurons):
            d = abs(float(subnet[u]) - r["subnet_weights"][f"hk{u:02d}"])
            if d > 1e-6:
                print(case["name"], r["block"], u, float(subnet[u]), r["subnet_weights"][f"hk{u:02d}"])
            worst = max(worst, d)
print(f"{len(golden['cases'])} cases replayed through taoverse; largest subnet-weight difference {worst:.2e}")
assert worst < 1e-6
