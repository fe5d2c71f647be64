"""SN37 through Python: the weight logic against crates/sn37's golden fixture (a plain-Python
restatement of taoverse/finetuning, scripts/golden_weights.py), and a round on the committed demo
submissions with the real engine, as crates/sn37/tests/round.rs runs it."""

import json

import pytest

import assay
from conftest import EXAMPLES, SN37_FIXTURES

TOL = 1e-9


def golden():
    return json.loads((SN37_FIXTURES / "weights_golden.json").read_text())


def assert_map_close(got, want, what):
    # Hotkeys missing on our side count as 0 (the reference keeps a metagraph-sized vector).
    for hotkey, value in want.items():
        assert got.get(hotkey, 0.0) == pytest.approx(value, abs=TOL), f"{what} {hotkey}"
    assert set(got) <= set(want), f"{what}: unexpected {set(got) - set(want)}"


def test_epsilon_matches_reference():
    rows = golden()["epsilon"]
    assert len(rows) >= 10
    for row in rows:
        got = assay.sn37.epsilon(row["schedule"], row["current_block"], row["model_block"])
        assert got == pytest.approx(row["epsilon"], abs=TOL), row


def test_rounds_match_reference():
    cases = golden()["cases"]
    assert len(cases) > 30
    for case in cases:
        average = assay.sn37.MovingAverage(case["alpha"])
        for index, rnd in enumerate(case["rounds"]):
            what = f"{case['name']} / round {index}"
            spec = case["competitions"][str(rnd["competition"])]
            records = assay.sn37.wins(rnd["contenders"], spec["epsilon"], rnd["block"])
            assert [r["wins"] for r in records] == rnd["wins"], what
            for record, want in zip(records, rnd["win_rates"]):
                assert record["win_rate"] == pytest.approx(want, abs=TOL), what
            step = assay.sn37.step_weights([r["win_rate"] for r in records])
            assert step == rnd["step_weights"], what
            step_map = {c["hotkey"]: w for c, w in zip(rnd["contenders"], step)}
            average.record_step(rnd["competition"], spec["reward_share"], step_map)
            subnet = average.subnet_weights(case["threshold"])
            assert_map_close(subnet, rnd["subnet_weights"], f"{what} subnet")
            for competition, want in rnd["ema"].items():
                assert_map_close(average.weights(int(competition)), want, f"{what} ema")
        # The state survives its dict form.
        back = assay.sn37.MovingAverage.from_dict(average.to_dict())
        assert back.to_dict() == average.to_dict()


def test_bad_schedule_and_stale_round_are_refused():
    with pytest.raises(ValueError, match="epsilon schedule"):
        assay.sn37.epsilon({"kind": "nope"}, 10, 1)
    average = assay.sn37.MovingAverage()
    average.record_round(1, 100, 1.0, {"a": 1.0})
    average.record_round(1, 100, 1.0, {"b": 1.0})  # same block: replaces the step
    assert average.weights(1) == {"b": 1.0}
    with pytest.raises(assay.OperatorError, match="older than the last round"):
        average.record_round(1, 99, 1.0, {"a": 1.0})


def weight(results, hotkey):
    return next((w["weight"] for w in results["weights"] if w["hotkey"] == hotkey), 0.0)


def test_demo_round_copy_never_wins_and_violator_gets_zero(tmp_path):
    events = []
    state = tmp_path / "state.json"
    for block in (2000, 2360):
        out = assay.sn37.run_round(
            "TINY_DEMO",
            EXAMPLES / "sn37" / "models",
            EXAMPLES / "sn37" / "data",
            tmp_path / f"out{block}",
            block,
            state=state,
            progress=events.append,
        )
        results = out["results"]
        models = {m["hotkey"]: m for m in results["models"]}
        alice, carol, mallory = models["alice"], models["carol"], models["mallory"]
        assert alice["score"] == carol["score"], "an exact copy scores the same"
        assert carol["win_rate"] < alice["win_rate"], "the later copy loses to its original"
        assert carol["step_weight"] == 0.0 and weight(results, "carol") == 0.0
        assert mallory["status"] == "rejected"
        assert any("norm" in r for r in mallory["reasons"]), mallory["reasons"]
        assert weight(results, "mallory") == 0.0
        assert sum(w["weight"] for w in results["weights"]) == pytest.approx(1.0, abs=1e-12)
        assert str(out["state_path"]) == str(state)
        for name in ("results.json", "weights.json", "leaderboard.md"):
            assert (tmp_path / f"out{block}" / name).is_file()
        assert "alice" in out["leaderboard"]
        # The persisted average gives the subnet weights the round reported.
        average = assay.sn37.MovingAverage.load(state)
        subnet = average.subnet_weights()
        for w in results["weights"]:
            assert subnet.get(w["hotkey"], 0.0) == pytest.approx(w["weight"], abs=1e-12)
    kinds = {e["event"] for e in events}
    assert {"submissions", "checked", "evaluating", "task_scored"} <= kinds


def test_missing_models_folder_is_the_operators_fault(tmp_path):
    with pytest.raises(assay.OperatorError) as info:
        assay.sn37.run_round(
            "TINY_DEMO", tmp_path / "nope", EXAMPLES / "sn37" / "data", tmp_path / "out", 2000
        )
    assert info.value.blame == "operator"
    assert "nope" in str(info.value)
