"""Integrity checks against crates/integrity's golden fixtures (numpy-made) and honest variants."""

import json

import pytest

from assay import integrity
from conftest import INTEGRITY_FIXTURES


def test_model_folder_report_matches_numpy():
    expected = json.loads((INTEGRITY_FIXTURES / "tiny_model_expected.json").read_text())
    report = integrity.check_model_folder(INTEGRITY_FIXTURES / "tiny_model")
    assert report["accepted"] is False
    assert report["parameters"] == expected["parameters"]
    assert set(report["projection_norms"]) == set(expected["projection_norms"])
    for name, norm in expected["projection_norms"].items():
        assert report["projection_norms"][name] == pytest.approx(norm, rel=1e-6)
    violations = json.dumps(report["violations"])
    for tensor in expected["non_finite"]:
        assert tensor in violations


def test_model_folder_that_does_not_exist_is_a_violation_not_an_exception(tmp_path):
    report = integrity.check_model_folder(tmp_path / "missing")
    assert report["accepted"] is False and report["violations"]


def test_cosmetic_copies_are_exact_duplicates_and_honest_rows_are_not():
    texts = [
        "The sky is blue because of Rayleigh scattering.",
        "What is 2 + 2? It is 4.",
        "  THE SKY is blue   because of Rayleigh scattering!! ",
        "The sea is blue because it reflects the sky.",
        "What is 2 + 3? It is 5.",
    ]
    assert integrity.canonical_form(texts[0]) == integrity.canonical_form(texts[2])
    assert integrity.content_hash(texts[0]) == integrity.content_hash(texts[2])
    assert integrity.exact_duplicates(texts) == [None, None, 0, None, None]


def test_near_duplicates_find_a_reworded_copy_only():
    base = (
        "To compute the area of a circle we square the radius and multiply by pi, so a radius "
        "of three gives nine pi, which is about twenty eight point two seven square units."
    )
    copy = base.replace("about", "roughly")
    other = (
        "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen inside "
        "the chloroplasts of plant cells, storing the sun's energy as chemical bonds."
    )
    found = integrity.near_duplicates([base, other, copy])
    assert found[0] is None and found[1] is None
    index, jaccard = found[2]
    assert index == 0 and jaccard > 0.5


def test_submission_schema_lists_every_problem_without_raising():
    good = {"prompt": "What is 2 + 2?", "chain_of_thought": "2 + 2 = 4.", "final_answer": "4"}
    data = (json.dumps(good) + "\n" + "{not json\n" + json.dumps({"prompt": 3}) + "\n").encode()
    intake = integrity.check_submission("miner.jsonl", data)
    assert len(intake["rows"]) == 1
    assert len(intake["problems"]) == 2
    assert all("line" in json.dumps(p) for p in intake["problems"])
