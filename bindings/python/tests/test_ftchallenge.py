"""The fine-tuning challenge's grader through Python, against crates/ftchallenge's insta
snapshots: the same hand-made candidate graded to the same Markdown report, and the same bad
files reported with the same messages and blame."""

import json

import pytest

import assay
from conftest import FT_SNAPSHOTS, insta_snapshot


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def label(id, intent, ideal, must, probe):
    # As snapshots.rs's `label`: every row forbids "refund".
    return {
        "id": id,
        "intent": intent,
        "ideal_reply": ideal,
        "must_mention": must,
        "must_not_mention": ["refund"],
        "probe": probe,
    }


def pred(id, intent, reply):
    return {
        "id": id,
        "prediction": reply,
        "predicted_intent": intent,
        "latency_ms": 5,
        "tokens_used": 40,
    }


def test_grade_report_matches_the_rust_snapshot(tmp_path):
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(
        json.dumps(
            {
                "intents": ["billing.seat_question", "account.password_reset"],
                "synonyms": {"billing.seats": "billing.seat_question"},
            }
        )
    )
    labels = write_jsonl(
        tmp_path / "labels.jsonl",
        [
            label("v1", "billing.seat_question", "Guests do not use a seat.", ["seat"], False),
            label(
                "v2",
                "account.password_reset",
                "Use the reset link in the email.",
                ["reset", "email"],
                False,
            ),
            label("p1", "billing.seat_question", "Guests are free.", ["guest"], True),
        ],
    )
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps(
            {
                "training": {
                    "steps": 8,
                    "train_loss": 1.25,
                    "val_loss": 1.5,
                    "wall_clock_s": 900.0,
                },
                "predictions": [
                    pred("v1", "Billing.Seats", "Guests do not use a seat."),
                    pred("v2", "billing.seat_question", "We will refund you | soon."),
                    pred("p1", "billing.seat_question", "Guests are free of charge."),
                ],
            }
        )
    )
    out = tmp_path / "grade"
    report = assay.ftchallenge.grade(results, labels, taxonomy, embedding=False, out=out)
    want = insta_snapshot(FT_SNAPSHOTS / "snapshots__grade_report_markdown.snap")
    assert report["markdown"].rstrip("\n") == want
    assert report["total"] == pytest.approx(61.25, abs=0.05)  # the snapshot's "61.3 / 100"
    assert report["components"]["efficiency"]["score"] == pytest.approx(0.75)
    assert [r["id"] for r in report["rows"]] == ["v1", "v2", "p1"]
    json_path, md_path = report["written"]
    assert json.loads(open(json_path).read())["total"] == report["total"]
    assert open(md_path).read().rstrip("\n") == want


def snapshot_errors():
    """The error snapshot's blocks: (message, blame)."""
    blocks = insta_snapshot(FT_SNAPSHOTS / "snapshots__error_messages.snap").split("\n\n")
    out = []
    for block in blocks:
        message, blame, _hint = block.rsplit("\n", 2)
        out.append((message, blame.removeprefix("blame: ")))
    return out


def test_bad_results_raise_the_rust_messages_with_their_blame(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"id":"v1","intent":"a.b","ideal_reply":"ok"}\n{"id":"v2","intent":"a.b","ideal_reply":"ok"}\n'
    )
    results = tmp_path / "results.json"
    results.write_text(
        '{"training":{"steps":1,"train_loss":null,"val_loss":null,"wall_clock_s":1},'
        '"predictions":[{"id":"v1","prediction":"ok","predicted_intent":"a.b"}]}'
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"training":{}}')
    # Blocks 3 and 4 of the snapshot are these two grades (snapshots.rs `error_messages`).
    expected = snapshot_errors()[2:4]
    for path, (message, blame) in zip([results, bad], expected):
        with pytest.raises(assay.AssayError) as info:
            assay.ftchallenge.grade(path, labels, embedding=False)
        assert str(info.value).replace(str(tmp_path), "TMP") == message
        assert info.value.blame == blame
        assert isinstance(info.value, assay.MinerError)
    with pytest.raises(assay.OperatorError):
        assay.ftchallenge.grade(results, tmp_path / "missing.jsonl", embedding=False)
    with pytest.raises(ValueError, match="judge"):
        assay.ftchallenge.grade(results, labels, judge_url="http://127.0.0.1:1/v1")
