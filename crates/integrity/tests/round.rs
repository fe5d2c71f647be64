//! Round-level row checks: duplicates within and across miners with first-submitter priority,
//! contamination, and the per-miner report and penalty.

use assay_integrity::contamination::{ContaminationIndex, ContaminationParams, EvalItem};
use assay_integrity::policy::Policy;
use assay_integrity::report::{Priority, RejectReason};
use assay_integrity::round::{MinerSubmission, check_round};
use assay_integrity::schema::{Limits, read_submission_bytes};

/// A ~100-word paragraph unique to `seed`, built from a fixed word list so tests are deterministic.
fn paragraph(seed: usize) -> String {
    const WORDS: [&str; 24] = [
        "river", "stone", "light", "seven", "garden", "quiet", "metal", "orbit", "paper", "violet",
        "engine", "forest", "signal", "copper", "window", "harbor", "lemon", "thunder", "marble",
        "pilot", "canvas", "ember", "falcon", "glacier",
    ];
    (0..100)
        .map(|i| WORDS[(i * 7 + seed * 13 + (i * i + seed) % 11) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
        + &format!(" item{seed}")
}

fn unique_paragraph(seed: usize) -> String {
    (0..100)
        .map(|i| format!("w{}x{}", seed, (i * 31 + seed) % 97))
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(prompt: &str, completion: &str) -> String {
    serde_json::json!({"prompt": prompt, "completion": completion}).to_string()
}

fn submission(miner: &str, block: u64, lines: &[String]) -> MinerSubmission {
    let text = lines.join("\n");
    MinerSubmission {
        miner: miner.into(),
        priority: Priority {
            block,
            receipt_ms: 0,
        },
        intake: read_submission_bytes(
            &format!("{miner}.jsonl"),
            text.as_bytes(),
            &Limits::default(),
        ),
    }
}

#[test]
fn copier_loses_even_when_listed_first_and_claims_an_earlier_time_in_the_file() {
    let original: Vec<String> = (0..4)
        .map(|i| line(&format!("question {i}"), &unique_paragraph(i)))
        .collect();
    // The copier puts a fake early timestamp in the text and arrives at a later block.
    let copied: Vec<String> = (0..4)
        .map(|i| {
            line(
                &format!("QUESTION {i} (submitted 2001-01-01, block 1)"),
                &unique_paragraph(i).to_uppercase(),
            )
        })
        .collect();
    let submissions = [
        submission("copier", 200, &copied),
        submission("original", 100, &original),
    ];
    let outcome = check_round(&submissions, None, &Policy::default()).unwrap();
    let report = &outcome.report;
    assert_eq!(report.miners[0].miner, "original");
    assert_eq!(report.miners[0].kept_lines, vec![1, 2, 3, 4]);
    assert_eq!(report.miners[0].penalty.multiplier, 1.0);
    let copier = &report.miners[1];
    assert!(copier.kept_lines.is_empty());
    assert_eq!(copier.counts.copied_from_others, 4);
    assert!(copier.penalty.disqualified);
    for row in &copier.rejected {
        let of = match &row.reasons[0] {
            RejectReason::NearDuplicate { of, .. } | RejectReason::ExactDuplicate { of } => of,
            other => panic!("unexpected reason {other:?}"),
        };
        assert_eq!((of.miner.as_str(), of.line), ("original", row.line));
    }
    assert_eq!(outcome.kept[1].rows.len(), 0);
}

#[test]
fn same_block_is_decided_by_receipt_time() {
    let rows = vec![line("q", &unique_paragraph(1))];
    let mut late = submission("aaa-late", 50, &rows);
    late.priority.receipt_ms = 2_000;
    let mut early = submission("zzz-early", 50, &rows);
    early.priority.receipt_ms = 1_000;
    let outcome = check_round(&[late, early], None, &Policy::default()).unwrap();
    assert_eq!(outcome.report.miners[0].miner, "zzz-early");
    assert_eq!(outcome.report.miners[0].kept_lines, vec![1]);
    assert!(outcome.report.miners[1].kept_lines.is_empty());
}

#[test]
fn cosmetic_edits_zero_width_and_homoglyphs_are_exact_duplicates() {
    let base = line("What is the capital of France?", &unique_paragraph(3));
    let disguised = line(
        "Whаt  is the\u{200B} саpital of France ?!", // Cyrillic а and с, a zero-width space
        &unique_paragraph(3).replace(' ', "\u{00A0} "),
    );
    let outcome = check_round(
        &[submission("m", 1, &[base, disguised])],
        None,
        &Policy::default(),
    )
    .unwrap();
    let miner = &outcome.report.miners[0];
    assert_eq!(miner.kept_lines, vec![1]);
    assert!(
        matches!(
            miner.rejected[0].reasons[0],
            RejectReason::ExactDuplicate { .. }
        ),
        "{:?}",
        miner.rejected
    );
    assert_eq!(miner.counts.duplicate, 1);
    assert_eq!(miner.counts.copied_from_others, 0);
}

#[test]
fn reordered_sentences_and_word_substitution_are_near_duplicates() {
    let sentences: Vec<String> = (0..6)
        .map(|s| format!("{}.", unique_paragraph(s)[..90].trim()))
        .collect();
    let original = sentences.join(" ");
    let mut reversed = sentences.clone();
    reversed.reverse();
    let reordered = reversed.join(" ");
    let mut words: Vec<String> = original.split(' ').map(str::to_string).collect();
    for i in [5, 40, 77] {
        words[i] = "synonym".into();
    }
    let substituted = words.join(" ");
    let lines = [
        line("p", &original),
        line("p", &reordered),
        line("p", &substituted),
        line("p", &paragraph(9)),
    ];
    let outcome = check_round(&[submission("m", 1, &lines)], None, &Policy::default()).unwrap();
    let miner = &outcome.report.miners[0];
    assert_eq!(miner.kept_lines, vec![1, 4]);
    for row in &miner.rejected {
        assert!(
            matches!(row.reasons[0], RejectReason::NearDuplicate { ref of, .. } if of.line == 1),
            "{row:?}"
        );
    }
}

#[test]
fn contaminated_rows_are_excluded_and_reported_with_the_eval_item() {
    let question = "A train leaves the station at nine in the morning travelling at sixty miles per hour \
                    towards a city that is one hundred and eighty miles away. When does it arrive?";
    let eval = ContaminationIndex::new(
        &[EvalItem {
            id: "trains/7".into(),
            text: question.into(),
        }],
        &ContaminationParams::default(),
    )
    .unwrap();
    let one_word_changed = question.replace("morning", "evening");
    let mut lines: Vec<String> = (0..30)
        .map(|i| line(&format!("own question {i}"), &unique_paragraph(100 + i)))
        .collect();
    lines.push(line(&one_word_changed, "At noon."));
    let outcome = check_round(
        &[submission("m", 1, &lines)],
        Some(&eval),
        &Policy::default(),
    )
    .unwrap();
    let miner = &outcome.report.miners[0];
    assert_eq!(miner.kept_lines.len(), 30);
    assert_eq!(miner.counts.contaminated, 1);
    match &miner.rejected[0].reasons[0] {
        RejectReason::Contaminated { evidence } => assert_eq!(evidence.eval_id, "trains/7"),
        other => panic!("expected contamination, got {other:?}"),
    }
    // 1 of 31 rows is below the 5% disqualification level: weighted penalty 3/31.
    assert!(!miner.penalty.disqualified);
    assert!((miner.penalty.multiplier - (1.0 - 3.0 / 31.0)).abs() < 1e-5);
    let table = outcome.report.to_table();
    assert!(
        table.contains("line     31: contaminated: `prompt` shares"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&outcome.report.to_json()).unwrap();
    assert_eq!(
        json["miners"][0]["rejected"][0]["reasons"][0]["kind"],
        "contaminated"
    );
}

#[test]
fn schema_failures_count_as_invalid_rows_in_the_report() {
    let lines = [
        line("a", &unique_paragraph(1)),
        "{broken".to_string(),
        line("b", &unique_paragraph(2)),
    ];
    let outcome = check_round(&[submission("m", 1, &lines)], None, &Policy::default()).unwrap();
    let miner = &outcome.report.miners[0];
    assert_eq!(miner.counts.rows, 3);
    assert_eq!(miner.counts.invalid, 1);
    assert_eq!(miner.rejected[0].line, 2);
    assert!(matches!(
        miner.rejected[0].reasons[0],
        RejectReason::Schema { .. }
    ));
    assert!(
        outcome
            .report
            .to_table()
            .contains("line      2: schema: not valid JSON")
    );
}

#[test]
fn round_is_deterministic() {
    let lines: Vec<String> = (0..20).map(|i| line("p", &paragraph(i % 7))).collect();
    let run = || {
        check_round(
            &[submission("a", 3, &lines), submission("b", 2, &lines)],
            None,
            &Policy::default(),
        )
        .unwrap()
    };
    assert_eq!(run().report, run().report);
}
