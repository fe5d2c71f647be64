"""PRISM's validator side through Python against crates/prism's golden fixture (made with PRISM's
own Python, fixtures/make_golden.py): sandbox verdicts and fingerprints, scores of synthetic loss
records; and the leaderboard's ranking and crown as crates/prism's unit tests state them."""

import json

import pytest

import assay
from conftest import EXAMPLES, PRISM_FIXTURES


def golden():
    return json.loads((PRISM_FIXTURES / "golden.json").read_text())


def case_bundle(case):
    """A bundle of the case's file, with empty modules for its local import roots."""
    files = {f"{root}.py": "" for root in case["local_roots"]}
    files[f"{case['name']}.py"] = case["code"]
    return files


def test_example_bundle_passes_from_its_folder_and_embedded():
    embedded = assay.prism.check_bundle()
    folder = assay.prism.check_bundle(EXAMPLES / "prism" / "bundle")
    for report in (embedded, folder):
        assert report["passed"], report["findings"]
        assert report["contract"] is not None and report["contract_error"] is None
        assert report["findings"] == []
        assert report["family_hash"] and report["training_hash"]
    assert folder["fingerprint"] == embedded["fingerprint"]


def test_every_reference_rejection_is_found_with_its_rule_and_line():
    rejected = 0
    for case in golden()["sandbox"]:
        rule = case["reference_rule"]
        if rule is None:
            continue
        rejected += 1
        report = assay.prism.check_bundle(files=case_bundle(case))
        assert not report["passed"]
        assert any(
            f["rule"] == rule and f["line"] == case["reference_line"] and not f["extension"]
            for f in report["findings"]
        ), (case["name"], rule, report["findings"])
    assert rejected >= 40


def test_accepted_reference_code_has_no_findings_and_prisms_fingerprint():
    accepted = 0
    for case in golden()["sandbox"]:
        if case["reference_rule"] is not None:
            continue
        report = assay.prism.check_bundle(files=case_bundle(case))
        if report["findings"]:
            # assay's extensions reject some code PRISM lets through; all are marked as such.
            assert all(f["extension"] for f in report["findings"]), case["name"]
            continue
        accepted += 1
        assert set(report["fingerprint"]) == set(case["fingerprint"]), case["name"]
    assert accepted >= 8


def test_scores_match_prism_score_prequential_bpb():
    for case in golden()["score"]:
        held = case["heldout"]
        batches = case["batches"]  # lists, as JSON gives them
        got = assay.prism.score_run(batches, case["vocab"], heldout=held)
        score = got["score"]
        assert score["bpb"] == pytest.approx(case["bpb"], abs=1e-12), case["name"]
        assert score["final_score"] == pytest.approx(case["final_score"], abs=1e-12), case["name"]
        assert score["flags"] == case["flags"], case["name"]
        if held is not None:
            assert got["heldout"]["memorization_flag"] == case["memorization_flag"]
            assert got["heldout"]["train_heldout_gap"] == pytest.approx(
                case["train_heldout_gap"], abs=1e-12
            )
        # A finished run's record (as a run report holds it) scores the same.
        again = assay.prism.score_run(prequential=got["prequential"], heldout=held)
        assert again["score"] == score


def test_a_run_that_never_trained_is_the_miners_fault():
    with pytest.raises(assay.MinerError, match="no online loss"):
        assay.prism.score_run([], 256)
    with pytest.raises(ValueError):
        assay.prism.score_run()


def test_leaderboard_ties_go_to_the_earliest_commit_and_dedupe_per_hotkey():
    board = assay.prism.Leaderboard()

    def sub(hotkey, at, score, family, training):
        board.record(hotkey, at, score, 1.0 / score - 1.0, family, training)

    sub("late", 20, 0.5, "f1", "t1")
    sub("early", 10, 0.5 + 1e-12, "f2", "t2")
    sub("late", 30, 0.4, "f1", "t3")
    sub("best", 40, 0.6, "f3", "t4")
    rows = [(r["hotkey"], r["accepted_at"]) for r in board.ranking()]
    assert rows == [("best", 40), ("early", 10), ("late", 20)]


def test_crown_pays_architecture_and_training_owners_and_survives_a_restart(tmp_path):
    board = assay.prism.Leaderboard()
    assert board.weights() == {}
    board.record("arch", 1, 0.30, 1 / 0.30 - 1, "fam", "t-arch")
    assert board.weights() == {"arch": 1.0}
    board.record("trainer", 2, 0.35, 1 / 0.35 - 1, "fam", "t-better")
    w = board.weights()
    assert w["arch"] == pytest.approx(0.6, abs=1e-12)
    assert w["trainer"] == pytest.approx(0.4, abs=1e-12)
    board.record("copier", 3, 0.36, 1 / 0.36 - 1, "fam", "t-better")
    assert board.weights()["copier"] == pytest.approx(0.4, abs=1e-12)
    board.record("other", 4, 0.36, 1 / 0.36 - 1, "fam2", "t-x")
    assert board.best_family()["owner_hotkey"] == "arch"
    path = tmp_path / "state.json"
    board.save(path)
    back = assay.prism.Leaderboard.load(path)
    assert back.to_dict() == board.to_dict() and len(back) == 4
    assert back.weights() == board.weights()
    path.write_text("{}")
    with pytest.raises(assay.OperatorError):
        assay.prism.Leaderboard.load(path)
