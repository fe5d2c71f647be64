#!/usr/bin/env python3
"""Golden fixtures for assay-sn37's weight logic, from a plain-Python restatement of the
reference algorithm (run by hand, not in CI):

- taoverse model/competition/epsilon.py (FixedEpsilon, LinearDecay)
- finetuning finetune/validation.py (_is_win, compute_wins)
- finetuning neurons/validator.py (winner-take-all step weights over the evaluated uids,
  written into a metagraph-sized zero vector)
- taoverse model/competition/competition_tracker.py (record_competition_weights,
  get_subnet_weights with min_comp_weight_threshold, including the in-place normalisation of
  the tracked tensor)

The reference runs on float32 torch tensors; this script uses Python floats (f64) with the same
operation order, which is what the Rust code does. Hotkeys stand for UIDs: "hk00" is uid 0.
check_golden_against_taoverse.py replays these cases through the upstream code itself (float32).

Usage: python3 crates/sn37/scripts/golden_weights.py > crates/sn37/tests/fixtures/weights_golden.json
"""
import json
import math
import random


def epsilon(schedule, current_block, model_block):
    if schedule["kind"] == "fixed":
        return schedule["epsilon"]
    age = max(current_block - model_block, 0)
    progress = min(age / schedule["decay_blocks"], 1)
    return schedule["start"] - progress * (schedule["start"] - schedule["end"])


def is_win(score_i, score_j, block_i, block_j, schedule, current_block):
    if block_i < block_j:
        score_i = (1 - epsilon(schedule, current_block, block_i)) * score_i
    if block_j < block_i:
        score_j = (1 - epsilon(schedule, current_block, block_j)) * score_j
    return score_i < score_j


def compute_wins(contenders, schedule, current_block):
    wins, rates = [], []
    for i, (_, score_i, block_i) in enumerate(contenders):
        count, matches = 0, 0
        for j, (_, score_j, block_j) in enumerate(contenders):
            if i == j:
                continue
            count += 1 if is_win(score_i, score_j, block_i, block_j, schedule, current_block) else 0
            matches += 1
        wins.append(count)
        rates.append(count / matches if matches > 0 else 0)
    return wins, rates


def normalized(values):
    total = sum(values)
    out = []
    for v in values:
        try:
            x = v / total
        except ZeroDivisionError:
            x = math.nan
        out.append(0.0 if math.isnan(x) else x)
    return out


class Tracker:
    def __init__(self, neurons, alpha):
        self.neurons, self.alpha, self.weights = neurons, alpha, {}

    def record(self, comp, new):
        new = normalized(new)
        if comp not in self.weights:
            self.weights[comp] = new
        else:
            old = self.weights[comp]
            self.weights[comp] = [self.alpha * o + (1 - self.alpha) * n for o, n in zip(old, new)]

    def subnet(self, competitions, threshold):
        total = [0.0] * self.neurons
        for comp_id, share in competitions:
            if comp_id not in self.weights:
                continue
            w = self.weights[comp_id]
            if threshold > 0:
                self.weights[comp_id] = normalized(w)  # in place in taoverse
                w = [0.0 if x < threshold else x for x in self.weights[comp_id]]
                w = normalized(w)
            total = [t + x * share for t, x in zip(total, w)]
        return normalized(total)


def hk(uid):
    return f"hk{uid:02d}"


def run_case(name, competitions, rounds, alpha=0.9, threshold=0.18):
    neurons = 1 + max(c[0] for r in rounds for c in r["contenders"])
    tracker = Tracker(neurons, alpha)
    out_rounds = []
    for r in rounds:
        comp = r["competition"]
        schedule = competitions[comp]["epsilon"]
        contenders = [(uid, score, block) for uid, score, block in r["contenders"]]
        wins, rates = compute_wins(contenders, schedule, r["block"])
        best = max(rates)
        step = [1 if rate == best else 0 for rate in rates]
        full = [0.0] * neurons
        for (uid, _, _), s in zip(contenders, step):
            full[uid] = float(s)
        tracker.record(comp, full)
        active = [(c, competitions[c]["reward_share"]) for c in sorted(competitions)]
        subnet = tracker.subnet(active, threshold)
        out_rounds.append({
            "competition": comp,
            "block": r["block"],
            "contenders": [
                {"hotkey": hk(uid), "score": None if math.isinf(score) else score, "block": block}
                for uid, score, block in contenders
            ],
            "wins": wins,
            "win_rates": rates,
            "step_weights": step,
            "ema": {str(c): {hk(u): w for u, w in enumerate(ws)} for c, ws in tracker.weights.items()},
            "subnet_weights": {hk(u): w for u, w in enumerate(subnet)},
        })
    return {
        "name": name,
        "alpha": alpha,
        "threshold": threshold,
        "competitions": {str(c): v for c, v in competitions.items()},
        "rounds": out_rounds,
    }


DECAY = {"kind": "linear_decay", "start": 0.05, "end": 0.01, "decay_blocks": 7200}
FIXED = {"kind": "fixed", "epsilon": 0.005}
ONE = {3: {"reward_share": 1.0, "epsilon": DECAY}}
INF = math.inf


def handmade():
    cases = [
        run_case("exact copy committed later loses to the original", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, 0.5, 5_000), (1, 0.5, 6_000)]}]),
        run_case("copy slightly better but inside epsilon still loses", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, 0.50, 5_000), (1, 0.49, 6_000)]}]),
        run_case("clearly better later model beats epsilon", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, 0.50, 5_000), (1, 0.40, 6_000)]}]),
        run_case("equal blocks and equal scores tie and share", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, 0.5, 5_000), (1, 0.5, 5_000), (2, 0.9, 4_000)]}]),
        run_case("failed evaluations score +inf", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, INF, 1_000), (1, 0.7, 9_000), (2, INF, 9_500)]}]),
        run_case("all failed: everyone ties at win rate 0", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(0, INF, 1_000), (1, INF, 2_000)]}]),
        run_case("single contender takes the step", ONE,
                 [{"competition": 3, "block": 10_000, "contenders": [(4, 0.3, 9_000)]}]),
        run_case("fixed epsilon", {1: {"reward_share": 1.0, "epsilon": FIXED}},
                 [{"competition": 1, "block": 50, "contenders": [(0, 1.0, 10), (1, 0.996, 20), (2, 0.994, 30)]}]),
    ]
    # A newcomer needs two consecutive wins to cross the 0.18 threshold.
    rounds = [{"competition": 3, "block": 10_000 + 360 * k, "contenders": [(0, 0.5, 1_000), (1, 0.5, 1_000)]} for k in range(3)]
    rounds += [{"competition": 3, "block": 11_080 + 360 * k, "contenders": [(0, 0.5, 1_000), (1, 0.5, 1_000), (2, 0.1, 11_000)]} for k in range(1, 5)]
    cases.append(run_case("ema: newcomer crosses the threshold after two wins", ONE, rounds))
    two = {3: {"reward_share": 0.6, "epsilon": DECAY}, 4: {"reward_share": 0.4, "epsilon": {"kind": "linear_decay", "start": 0.05, "end": 0.01, "decay_blocks": 21_600}}}
    rounds = []
    for k in range(6):
        rounds.append({"competition": 3, "block": 20_000 + 720 * k, "contenders": [(0, 0.6, 15_000), (1, 0.55 - 0.01 * k, 19_000)]})
        rounds.append({"competition": 4, "block": 20_360 + 720 * k, "contenders": [(2, 1.2, 15_000), (3, 1.3, 16_000), (4, 1.1 + 0.02 * k, 20_000)]})
    cases.append(run_case("two competitions with reward shares", two, rounds))
    cases.append(run_case("two competitions, no threshold", two, rounds, threshold=0.0))
    cases.append(run_case("alpha 0.5", ONE, rounds[::2][:4], alpha=0.5))
    return cases


def randomized(rng, count):
    cases = []
    scores = [0.1, 0.2, 0.25, 0.3, 0.3, 0.5, 1.0, INF]
    for index in range(count):
        comps = {3: {"reward_share": 0.7, "epsilon": DECAY}, 4: {"reward_share": 0.3, "epsilon": {"kind": "linear_decay", "start": 0.1, "end": 0.02, "decay_blocks": 1_000}}}
        rounds = []
        block = 5_000
        for _ in range(rng.randint(1, 6)):
            block += rng.choice([0, 360, 720])
            uids = rng.sample(range(10), rng.randint(1, 7))
            contenders = [(u, rng.choice(scores) * rng.choice([1.0, 1.0, 0.97, 1.03]), rng.choice([1_000, 4_000, 4_500, 4_990, block])) for u in uids]
            rounds.append({"competition": rng.choice([3, 4]), "block": block, "contenders": contenders})
        cases.append(run_case(f"random {index}", comps, rounds, threshold=rng.choice([0.18, 0.18, 0.0, 0.12])))
    return cases


def epsilon_table():
    rows = []
    schedules = [DECAY, FIXED, {"kind": "linear_decay", "start": 0.05, "end": 0.01, "decay_blocks": 21_600}]
    for schedule in schedules:
        for current, model in [(10_000, 10_000), (10_000, 12_000), (17_200, 10_000), (13_600, 10_000), (7_200 + 1, 0), (1_000_000, 3)]:
            rows.append({"schedule": schedule, "current_block": current, "model_block": model,
                         "epsilon": epsilon(schedule, current, model)})
    return rows


def main():
    rng = random.Random(37)
    print(json.dumps({"epsilon": epsilon_table(), "cases": handmade() + randomized(rng, 25)}, indent=1))


if __name__ == "__main__":
    main()
