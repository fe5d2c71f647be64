"""A Datacomp round through Python on the committed example submissions
(examples/datacomp, the data crates/datacomp/tests/round.rs uses), reduced as that test reduces
it (the tiny fixture models' 256-token context is too short for these rows)."""

import json

import pytest

import assay
from conftest import EXAMPLES


@pytest.mark.slow
def test_example_round_zeroes_the_cheaters_and_writes_its_outputs(tmp_path):
    events = []
    out = tmp_path / "round"
    results = assay.datacomp.run_round(
        EXAMPLES / "datacomp",
        out,
        eval={"generated": {"seed": 20261122, "count": 12}},
        token_budget=500,
        top_layers=2,
        generate=False,
        progress=events.append,
    )
    miners = {m["hotkey"]: m for m in results["miners"]}
    assert set(miners) == {"cheater", "honest", "low_quality", "spammer", "copier"}
    cheater, copier = miners["cheater"], miners["copier"]
    assert cheater["disqualified"] and cheater["score"] == 0.0
    assert any("evaluation data" in r for r in cheater["reasons"]), cheater["reasons"]
    assert copier["disqualified"] and copier["score"] == 0.0
    assert any("copy other miners" in r for r in copier["reasons"]), copier["reasons"]
    assert miners["spammer"]["rejected"].get("exact_duplicate", 0) >= 20
    assert miners["honest"]["trained"] is not None
    assert results["config"]["eval_source"].startswith("seed:20261122")
    saved = json.loads((out / "results.json").read_text())
    assert [m["hotkey"] for m in saved["miners"]] == [m["hotkey"] for m in results["miners"]]
    kinds = {e["event"] for e in events}
    assert {"loading", "checked", "training", "scored", "writing"} <= kinds


def test_round_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown datacomp setting `token_budgt`"):
        assay.datacomp.run_round(EXAMPLES / "datacomp", tmp_path / "o", token_budgt=5)
    with pytest.raises(assay.OperatorError):
        assay.datacomp.run_round(tmp_path / "missing", tmp_path / "o")
