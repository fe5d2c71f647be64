//! Intent metrics against scikit-learn's `classification_report`, `accuracy_score` and
//! `confusion_matrix` (fixture `fixtures/math/intent_sklearn.json`, made by `make_math_fixtures.py`).

use assay_eval::intent::{IntentReport, SynonymTable, evaluate};
use serde_json::Value;

fn fixture() -> Value {
    let path = format!(
        "{}/fixtures/math/intent_sklearn.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read fixture"))
        .expect("parse fixture")
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).expect("list of strings")
}

fn close(a: f64, b: &Value, what: &str) {
    let b = b.as_f64().unwrap_or_else(|| panic!("{what} missing"));
    assert!((a - b).abs() < 1e-12, "{what}: {a} vs scikit-learn {b}");
}

fn check_against_sklearn(report: &IntentReport, sk: &Value) {
    assert_eq!(report.labels, strings(&sk["labels"]));
    close(report.accuracy, &sk["accuracy"], "accuracy");
    let confusion: Vec<Vec<u64>> =
        serde_json::from_value(sk["confusion"].clone()).expect("confusion");
    assert_eq!(report.confusion, confusion);
    for (label, scores) in &report.per_label {
        let want = &sk["per_label"][label];
        close(
            scores.precision,
            &want["precision"],
            &format!("{label} precision"),
        );
        close(scores.recall, &want["recall"], &format!("{label} recall"));
        close(scores.f1, &want["f1-score"], &format!("{label} f1"));
        close(
            scores.support as f64,
            &want["support"],
            &format!("{label} support"),
        );
    }
    for (ours, key) in [
        (&report.macro_avg, "macro_avg"),
        (&report.weighted_avg, "weighted_avg"),
    ] {
        close(
            ours.precision,
            &sk[key]["precision"],
            &format!("{key} precision"),
        );
        close(ours.recall, &sk[key]["recall"], &format!("{key} recall"));
        close(ours.f1, &sk[key]["f1-score"], &format!("{key} f1"));
    }
}

#[test]
fn report_matches_scikit_learn() {
    let sk = fixture();
    let report = evaluate(
        &strings(&sk["gold"]),
        &strings(&sk["pred"]),
        &SynonymTable::default(),
    )
    .expect("report");
    check_against_sklearn(&report, &sk);
}

#[test]
fn synonyms_and_spelling_variants_do_not_change_the_report() {
    let sk = fixture();
    let synonyms = SynonymTable::new([
        ("refund request", "billing.refund"),
        ("login issue", "account.login"),
    ]);
    let disguised: Vec<String> = strings(&sk["pred"])
        .iter()
        .enumerate()
        .map(|(i, p)| match (p.as_str(), i % 3) {
            ("billing.refund", 0) => "Refund   Request".to_string(),
            ("account.login", 0) => " LOGIN issue".to_string(),
            (_, 1) => format!("  {}\t", p.to_uppercase()),
            _ => p.clone(),
        })
        .collect();
    let report = evaluate(&strings(&sk["gold"]), &disguised, &synonyms).expect("report");
    check_against_sklearn(&report, &sk);
    let json = serde_json::to_string(&report).expect("serialise");
    let back: IntentReport = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, report);
}
