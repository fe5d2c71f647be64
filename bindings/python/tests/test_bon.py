"""Best-of-N through Python: the reward model's step rewards against transformers
(crates/bon/fixtures/prm-golden.json, made by fixtures/make_prm_fixtures.py), the selection
rules on the hand-made cases crates/bon/tests/e2e.rs states, and a tiny whole run (tiny Qwen2 as
generator, the tiny PRM) whose selections `evaluate` recomputes exactly."""

import json

import pytest

import assay
from conftest import BON_FIXTURES, ENGINE_FIXTURES


@pytest.fixture(scope="module")
def tiny_prm():
    return assay.bon.RewardModel.load(str(BON_FIXTURES / "tiny-prm"))


def test_step_rewards_match_transformers(tiny_prm):
    assert tiny_prm.kind == "process"
    cases = json.loads((BON_FIXTURES / "prm-golden.json").read_text())["rewards"]
    assert len(cases) >= 12
    by_problem = {}
    for case in cases:
        by_problem.setdefault(case["problem"], []).append(case)
    for problem, group in by_problem.items():
        # All responses of a problem in one call, 3 per pass (the reference used 4): padding
        # must not matter.
        got = tiny_prm.score(problem, [c["response"] for c in group], batch=3)
        for rewards, case in zip(got, group):
            assert rewards == pytest.approx(case["step_rewards"], abs=1e-5), problem


def test_unknown_reward_kind_and_missing_model():
    with pytest.raises(ValueError, match="process or outcome"):
        assay.bon.RewardModel.load(str(BON_FIXTURES / "tiny-prm"), kind="best")
    with pytest.raises(assay.AssayError):
        assay.bon.RewardModel.load(str(BON_FIXTURES / "no-such-prm"))


def sample(pred, score):
    return {"text": f"\\boxed{{{pred}}}", "score": score}


def test_weighted_majority_and_naive_differ_as_expected():
    # Two low-reward "3"s outvote one "5" in majority; "5" has the larger reward sum and top score.
    run = assay.bon.evaluate([[sample("3", 0.2), sample("3", 0.2), sample("5", 0.9)]], ["5"])
    s = run["selections"][0]
    assert (s["weighted"]["index"], s["majority"]["index"], s["naive"]["index"]) == (2, 0, 2)
    assert s["weighted"]["correct"] and not s["majority"]["correct"] and s["naive"]["correct"]
    assert [p["n"] for p in run["curve"]] == [1, 2, 3]
    assert run["sample_accuracy"] == pytest.approx(1 / 3)
    # `0.5` and `\frac{1}{2}` are one answer group; step rewards aggregate by the last step.
    halves = [
        {"pred": "0.5", "step_scores": [0.9, 0.3]},
        {"pred": "\\frac{1}{2}", "step_scores": [0.1, 0.3]},
        {"pred": "2", "step_scores": [0.2, 0.5]},
    ]
    run = assay.bon.evaluate([halves], ["0.5"])
    assert run["selections"][0]["weighted"]["index"] == 0
    assert run["selections"][0]["naive"]["index"] == 2
    assert [s["correct"] for s in run["samples"][0]] == [True, True, False]
    with pytest.raises(ValueError, match="fewest samples"):
        assay.bon.evaluate([halves], ["0.5"], n=4)
    with pytest.raises(ValueError, match="aggregation"):
        assay.bon.evaluate([halves], ["0.5"], aggregation="mean")


def test_tiny_run_writes_its_outputs_and_its_selections_recompute(tmp_path):
    events = []
    out = tmp_path / "bon"
    report = assay.bon.run(
        str(BON_FIXTURES / "tiny-prm"),
        out,
        model=str(ENGINE_FIXTURES / "tiny-qwen2"),
        problems={"count": 3, "seed": 1},
        sampling={
            # The tiny model's context is 256 tokens: a short system prompt.
            "system_prompt": "Answer in \\boxed{}.",
            "n": 4,
            "temperature": 0.8,
            "sweep_temperatures": [1.2],
            "max_new_tokens": 16,
            "seed": 3,
            "batch_rows": 8,
            "prm_batch": 4,
        },
        progress=events.append,
    )
    assert {e["event"] for e in events} >= {"loading", "stage", "advance"}
    assert len(report["runs"]) == 2 and len(report["gold"]) == 3
    main = report["runs"][0]
    assert [p["n"] for p in main["curve"]] == [1, 2, 4]
    first = main["curve"][0]
    assert first["weighted"] == first["majority"] == first["naive"] == first["pass"]
    for s in (s for group in main["samples"] for s in group):
        assert s["tokens"] <= 16 and s["step_scores"]
        assert s["score"] == s["step_scores"][-1] and 0.0 < s["score"] < 1.0
    # Grading and selection from the samples alone give the run's own numbers.
    again = assay.bon.evaluate(
        main["samples"], report["gold"], n=4, temperature=main["temperature"]
    )
    assert again == main
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"][1]["temperature"] == pytest.approx(1.2)
    assert (out / "analysis.md").is_file() and (out / "data" / "samples.jsonl").is_file()
    with pytest.raises(ValueError, match="unknown best-of-N setting `sampels`"):
        assay.bon.run(str(BON_FIXTURES / "tiny-prm"), out, sampels={})
