//! The grader's arithmetic on hand-made rows whose scores are worked out in the comments.

use assay_ftchallenge::data::LabelRow;
use assay_ftchallenge::grade::{Judge, Similarity, efficiency, grade, mentions};
use assay_ftchallenge::judge::{parse_http_response, rating_from_answer};
use assay_ftchallenge::results::{Prediction, Results, TrainingSummary};
use assay_ftchallenge::taxonomy::Taxonomy;

fn label(
    id: &str,
    intent: &str,
    ideal: &str,
    must: &[&str],
    must_not: &[&str],
    probe: bool,
) -> LabelRow {
    LabelRow {
        id: id.into(),
        intent: intent.into(),
        ideal_reply: ideal.into(),
        must_mention: must.iter().map(|s| s.to_string()).collect(),
        must_not_mention: must_not.iter().map(|s| s.to_string()).collect(),
        probe,
    }
}

fn pred(id: &str, intent: &str, reply: &str) -> Prediction {
    Prediction {
        id: id.into(),
        prediction: reply.into(),
        predicted_intent: intent.into(),
        latency_ms: 0,
        tokens_used: 0,
    }
}

fn taxonomy() -> Taxonomy {
    Taxonomy::new(
        [
            "billing.seat_question",
            "account.password_reset",
            "billing.refund_request",
        ]
        .map(String::from),
        [(
            "billing.seats".to_string(),
            "billing.seat_question".to_string(),
        )],
    )
    .unwrap()
}

const SEATS: &str = "Guests do not use a Star seat.";

fn case(with_probe: bool) -> (Vec<LabelRow>, Vec<Prediction>) {
    let mut labels = vec![
        label(
            "v1",
            "billing.seat_question",
            SEATS,
            &["seat"],
            &["refund"],
            false,
        ),
        label(
            "v2",
            "account.password_reset",
            "Use the reset link.",
            &["reset", "email"],
            &["refund"],
            false,
        ),
    ];
    let mut preds = vec![
        // A synonym of the gold intent, the ideal reply: intent right, quality 1.
        pred("v1", " Billing.Seats ", SEATS),
        // Wrong intent; both terms missing and the forbidden one present (checks 0/3); no shared
        // word with the ideal reply (ROUGE-L 0): quality 0.
        pred("v2", "billing.refund_request", "We will refund you."),
    ];
    if with_probe {
        labels.push(label(
            "p1",
            "billing.seat_question",
            SEATS,
            &["seat"],
            &[],
            true,
        ));
        preds.push(pred("p1", "billing.seat_question", SEATS));
    }
    (labels, preds)
}

fn results(preds: Vec<Prediction>, wall: f64) -> Results {
    Results {
        training: TrainingSummary {
            steps: 3,
            train_loss: Some(0.5),
            val_loss: Some(0.6),
            wall_clock_s: wall,
        },
        predictions: preds,
    }
}

#[test]
fn components_and_total_follow_the_weights() {
    let (labels, preds) = case(true);
    let r = results(preds, 1200.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let report = grade(&r, &pairs, &taxonomy(), Similarity::default()).unwrap();
    let c = &report.components;
    assert_eq!(c["intent"].score, 0.5);
    assert_eq!(c["reply"].score, 0.5);
    assert_eq!(c["probes"].score, 1.0);
    assert_eq!(
        c["efficiency"].score, 0.5,
        "1200 s is halfway from 600 to 1800"
    );
    // 100 * (0.4 * 0.5 + 0.3 * 0.5 + 0.2 * 1 + 0.1 * 0.5)
    assert!((report.total - 60.0).abs() < 1e-9, "{}", report.total);
    assert_eq!(report.majority_baseline, 0.5);
    let v2 = &report.rows[1];
    assert_eq!(v2.missing_terms, ["reset", "email"]);
    assert_eq!(v2.forbidden_terms, ["refund"]);
    assert_eq!(
        (v2.checks, v2.rouge_l, v2.intent_correct),
        (0.0, 0.0, false)
    );
    assert_eq!(report.rows[0].canonical_prediction, "billing.seat_question");
}

#[test]
fn without_probe_rows_the_other_weights_are_rescaled() {
    let (labels, preds) = case(false);
    let r = results(preds, 100.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let report = grade(&r, &pairs, &taxonomy(), Similarity::default()).unwrap();
    assert!(!report.components.contains_key("probes"));
    assert!((report.components["intent"].weight - 0.5).abs() < 1e-12);
    // (0.4 * 0.5 + 0.3 * 0.5 + 0.1 * 1) / 0.8
    assert!((report.total - 56.25).abs() < 1e-9, "{}", report.total);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no rows for probes"))
    );
}

struct Constant(f64);

impl Judge for Constant {
    fn name(&self) -> String {
        "constant".into()
    }
    fn rate(&mut self, _: &str, _: &str) -> assay_ftchallenge::Result<f64> {
        Ok(self.0)
    }
}

#[test]
fn a_judge_is_averaged_with_rouge() {
    let (labels, preds) = case(false);
    let r = results(preds, 0.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let mut judge = Constant(0.8);
    let report = grade(
        &r,
        &pairs,
        &taxonomy(),
        Similarity {
            embedder: None,
            judge: Some(&mut judge),
        },
    )
    .unwrap();
    // v2: checks 0, similarity (0 + 0.8) / 2 = 0.4, quality 0.5 * 0.4.
    assert!((report.rows[1].reply_quality - 0.2).abs() < 1e-12);
    assert_eq!(report.rows[1].judge, Some(0.8));
}

#[test]
fn a_prediction_outside_the_taxonomy_is_wrong_and_noted() {
    let (labels, mut preds) = case(false);
    preds[0].predicted_intent = "seat stuff".into();
    let r = results(preds, 0.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let report = grade(&r, &pairs, &taxonomy(), Similarity::default()).unwrap();
    assert!(!report.rows[0].intent_correct && !report.rows[0].in_taxonomy);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("1 predicted intents are not in the taxonomy"))
    );
}

#[test]
fn markdown_has_every_row_and_escapes_pipes() {
    let (labels, mut preds) = case(true);
    preds[1].predicted_intent = "a|b".into();
    let r = results(preds, 0.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let md = grade(&r, &pairs, &taxonomy(), Similarity::default())
        .unwrap()
        .to_markdown();
    for id in ["| v1 |", "| v2 |", "| p1 | yes |", "a\\|b"] {
        assert!(md.contains(id), "missing {id} in\n{md}");
    }
}

#[test]
fn terms_match_at_word_starts_case_insensitively() {
    assert!(mentions("Two Seats left", "seat"));
    assert!(mentions("see the Billing page.", "billing PAGE"));
    assert!(!mentions("we unseat nobody", "seat"));
    assert!(!mentions("", "seat"));
}

#[test]
fn efficiency_is_linear_between_ideal_and_ceiling() {
    assert_eq!(efficiency(0.0), 1.0);
    assert_eq!(efficiency(600.0), 1.0);
    assert_eq!(efficiency(900.0), 0.75);
    assert_eq!(efficiency(1800.0), 0.0);
    assert_eq!(efficiency(5000.0), 0.0);
}

#[test]
fn judge_answers_are_parsed() {
    assert_eq!(rating_from_answer("8"), Some(0.8));
    assert_eq!(rating_from_answer("Rating: 7.5/10"), Some(0.75));
    assert_eq!(rating_from_answer("none"), None);
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(parse_http_response(plain).unwrap(), "{}");
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\n\r\n";
    assert_eq!(parse_http_response(chunked).unwrap(), "{\"a\":1}");
    let err = parse_http_response(b"HTTP/1.1 401 Unauthorized\r\n\r\nno key")
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && err.contains("no key"), "{err}");
}

/// A sentence embedder on the engine's tiny random BERT fixture (fast; the real grader uses
/// all-MiniLM-L6-v2, whose numbers the eval crate's tests check).
fn tiny_embedder() -> assay_eval::text::embedder::SentenceEmbedder {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../engine/fixtures/tiny-bert");
    let model = assay_engine::bert::BertModel::from_files(
        &dir.join("config.json"),
        &dir.join("model.safetensors"),
    )
    .unwrap();
    let encoder =
        assay_engine::bert::BertEncoder::new(model, &dir.join("tokenizer.json"), 16).unwrap();
    assay_eval::text::embedder::SentenceEmbedder::new(encoder)
}

#[test]
fn embedding_cosine_is_averaged_with_rouge() {
    let (labels, preds) = case(false);
    let r = results(preds, 0.0);
    let pairs: Vec<_> = labels.iter().zip(&r.predictions).collect();
    let embedder = tiny_embedder();
    let similarity = Similarity {
        embedder: Some(&embedder),
        judge: None,
    };
    let report = grade(&r, &pairs, &taxonomy(), similarity).unwrap();
    assert!(report.similarity.iter().any(|s| s.contains("embedding")));
    // v1 replies with the ideal text itself: cosine 1, ROUGE-L 1, checks 1, quality 1.
    let v1 = &report.rows[0];
    assert!((v1.embedding_cosine.unwrap() - 1.0).abs() < 1e-6);
    assert!((v1.reply_quality - 1.0).abs() < 1e-6);
    // v2: checks 0 and ROUGE-L 0, so quality is half the mean of 0 and the (non-negative) cosine.
    let v2 = &report.rows[1];
    let cosine = embedder
        .cosines(&[("We will refund you.", "Use the reset link.")])
        .unwrap()[0] as f64;
    assert_eq!(v2.embedding_cosine, Some(cosine));
    let expected = 0.5 * (0.0 + cosine.max(0.0)) / 2.0;
    assert!(
        (v2.reply_quality - expected).abs() < 1e-12,
        "{}",
        v2.reply_quality
    );
    assert!(cosine.abs() > 1e-3, "the tiny model tells the texts apart");
}
