//! Text people read, locked by insta snapshots: the grade report (its component table, the stated
//! formula and the per-row table) on hand-made rows, and error messages with their blame and hint.
//! Review a change with `cargo insta review` (or `INSTA_UPDATE=always` and `git diff`).

use std::path::Path;

use assay_errors::{Diagnose, chain};
use assay_ftchallenge::data::{LabelRow, TrainTicket, read_rows};
use assay_ftchallenge::grade::{GradeInputs, Similarity, grade, grade_files};
use assay_ftchallenge::results::{Prediction, Results, TrainingSummary};
use assay_ftchallenge::runner::{RunConfig, run};
use assay_ftchallenge::taxonomy::Taxonomy;

fn label(id: &str, intent: &str, ideal: &str, must: &[&str], probe: bool) -> LabelRow {
    LabelRow {
        id: id.into(),
        intent: intent.into(),
        ideal_reply: ideal.into(),
        must_mention: must.iter().map(|s| s.to_string()).collect(),
        must_not_mention: vec!["refund".into()],
        probe,
    }
}

fn pred(id: &str, intent: &str, reply: &str) -> Prediction {
    Prediction {
        id: id.into(),
        prediction: reply.into(),
        predicted_intent: intent.into(),
        latency_ms: 5,
        tokens_used: 40,
    }
}

#[test]
fn grade_report_markdown() {
    let taxonomy = Taxonomy::new(
        ["billing.seat_question", "account.password_reset"].map(String::from),
        [(
            "billing.seats".to_string(),
            "billing.seat_question".to_string(),
        )],
    )
    .unwrap();
    let labels = [
        label(
            "v1",
            "billing.seat_question",
            "Guests do not use a seat.",
            &["seat"],
            false,
        ),
        label(
            "v2",
            "account.password_reset",
            "Use the reset link in the email.",
            &["reset", "email"],
            false,
        ),
        label(
            "p1",
            "billing.seat_question",
            "Guests are free.",
            &["guest"],
            true,
        ),
    ];
    let results = Results {
        training: TrainingSummary {
            steps: 8,
            train_loss: Some(1.25),
            val_loss: Some(1.5),
            wall_clock_s: 900.0,
        },
        predictions: vec![
            pred("v1", "Billing.Seats", "Guests do not use a seat."),
            pred("v2", "billing.seat_question", "We will refund you | soon."),
            pred("p1", "billing.seat_question", "Guests are free of charge."),
        ],
    };
    let pairs: Vec<_> = labels.iter().zip(&results.predictions).collect();
    let report = grade(&results, &pairs, &taxonomy, Similarity::default()).unwrap();
    let md = report.to_markdown();
    assert!(
        md.contains(
            "Total = 100 × (0.40 × intent + 0.30 × reply + 0.20 × probes + 0.10 × efficiency)"
        ),
        "{md}"
    );
    insta::assert_snapshot!(md);
}

fn described(e: &assay_ftchallenge::FtError, dir: &Path) -> String {
    format!(
        "{}\nblame: {}\nhint: {}",
        chain(e),
        e.blame(),
        e.hint().unwrap_or_else(|| "-".into())
    )
    .replace(&dir.display().to_string(), "TMP")
}

#[test]
fn error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let train = write(
        "train.jsonl",
        "{\"id\":\"t1\",\"ticket\":\"hi\",\"intent\":\"a.b\"}\n",
    );
    let labels = write(
        "labels.jsonl",
        "{\"id\":\"v1\",\"intent\":\"a.b\",\"ideal_reply\":\"ok\"}\n{\"id\":\"v2\",\"intent\":\"a.b\",\"ideal_reply\":\"ok\"}\n",
    );
    let results = write(
        "results.json",
        "{\"training\":{\"steps\":1,\"train_loss\":null,\"val_loss\":null,\"wall_clock_s\":1},\"predictions\":[{\"id\":\"v1\",\"prediction\":\"ok\",\"predicted_intent\":\"a.b\"}]}",
    );
    let bad_results = write("bad.json", "{\"training\":{}}");
    let inputs = |results: &Path| GradeInputs {
        results: results.to_path_buf(),
        labels: labels.clone(),
        taxonomy: None,
    };
    let errors = [
        read_rows::<TrainTicket>(&train).unwrap_err(),
        read_rows::<TrainTicket>(&d.join("missing.jsonl")).unwrap_err(),
        grade_files(&inputs(&results), Similarity::default()).unwrap_err(),
        grade_files(&inputs(&bad_results), Similarity::default()).unwrap_err(),
        run(
            &RunConfig {
                budget_s: -1.0,
                ..RunConfig::new(train.clone(), train.clone(), d.join("w"), d.join("r.json"))
            },
            &mut |_| {},
        )
        .unwrap_err(),
    ];
    let text: Vec<String> = errors.iter().map(|e| described(e, d)).collect();
    insta::assert_snapshot!(text.join("\n\n"));
}
