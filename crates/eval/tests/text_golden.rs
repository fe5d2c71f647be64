//! Checks every text metric against the golden fixtures written by
//! `fixtures/text/make_text_fixtures.py` from rouge-score, NLTK, sacrebleu and the Datacomp
//! reference. Floats must agree within 1e-9 relative error (f32 embedding helpers: 1e-5).

use std::path::PathBuf;

use assay_eval::text::bleu::{BleuScore, corpus_bleu, sentence_bleu};
use assay_eval::text::embedding::{cosine, l2_normalize, mean_pool};
use assay_eval::text::porter::stem;
use assay_eval::text::recall::{mean_word_recall, word_recall};
use assay_eval::text::rouge::{
    RougeScore, RougeScores, RougeTokenizer, rouge_scores, rouge_scores_multi,
};
use assay_eval::text::tokenizer_13a::tokenize_13a;
use serde::Deserialize;
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(name: &str) -> Vec<T> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", "text", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records: Vec<T> = text
        .lines()
        .enumerate()
        .map(|(line, json)| {
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}:{}: {e}", line + 1))
        })
        .collect();
    assert!(!records.is_empty(), "{name} has no records");
    records
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    actual == expected || (actual - expected).abs() <= tolerance * actual.abs().max(expected.abs())
}

fn assert_close(actual: f64, expected: f64, what: &dyn std::fmt::Display) {
    assert!(
        close(actual, expected, 1e-9),
        "{what}: got {actual}, expected {expected}"
    );
}

#[derive(Deserialize)]
struct RecallCase {
    output: String,
    reference: String,
    recall: f64,
}

#[test]
fn word_recall_matches_datacomp_reference() {
    let cases: Vec<RecallCase> = fixture("word_recall.jsonl");
    for case in &cases {
        let got = word_recall(&case.output, &case.reference);
        assert_eq!(
            got, case.recall,
            "output {:?} reference {:?}",
            case.output, case.reference
        );
    }
    let partial = cases
        .iter()
        .filter(|c| c.recall > 0.0 && c.recall < 1.0)
        .count();
    assert!(
        partial > 100,
        "fixtures should exercise partial overlap, got {partial}"
    );
}

#[derive(Deserialize)]
struct RecallMeanCase {
    pairs: Vec<(String, String)>,
    mean: f64,
}

#[test]
fn mean_word_recall_matches_reference_aggregate() {
    for case in fixture::<RecallMeanCase>("word_recall_mean.jsonl") {
        let pairs = case.pairs.iter().map(|(o, r)| (o.as_str(), r.as_str()));
        assert_eq!(mean_word_recall(pairs), case.mean);
    }
}

#[derive(Deserialize)]
struct PorterCase {
    word: String,
    stem: String,
}

#[test]
fn porter_matches_nltk_default_mode() {
    let cases: Vec<PorterCase> = fixture("porter.jsonl");
    let mismatches: Vec<String> = cases
        .iter()
        .filter(|case| stem(&case.word) != case.stem)
        .map(|case| {
            format!(
                "{:?}: got {:?}, NLTK {:?}",
                case.word,
                stem(&case.word),
                case.stem
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

type Triple = [f64; 3];

#[derive(Deserialize)]
struct RougeCase {
    target: String,
    prediction: String,
    stem: bool,
    target_tokens: Option<Vec<String>>,
    rouge1: Triple,
    rouge2: Triple,
    #[serde(rename = "rougeL")]
    rouge_l: Triple,
    #[serde(rename = "rougeLsum")]
    rouge_lsum: Triple,
}

fn assert_rouge_close(actual: RougeScore, expected: Triple, what: &str) {
    let got = [actual.precision, actual.recall, actual.fmeasure];
    for (field, (a, e)) in ["precision", "recall", "fmeasure"]
        .iter()
        .zip(got.iter().zip(expected))
    {
        assert_close(*a, e, &format!("{what} {field}"));
    }
}

fn assert_all_rouge(scores: &RougeScores, expected: [Triple; 4], context: &str) {
    let names = ["rouge1", "rouge2", "rougeL", "rougeLsum"];
    let actual = [
        scores.rouge1,
        scores.rouge2,
        scores.rouge_l,
        scores.rouge_lsum,
    ];
    for ((name, score), want) in names.iter().zip(actual).zip(expected) {
        assert_rouge_close(score, want, &format!("{name} for {context}"));
    }
}

#[test]
fn rouge_matches_rouge_score() {
    let cases: Vec<RougeCase> = fixture("rouge.jsonl");
    for case in &cases {
        let tokenizer = RougeTokenizer::new(case.stem);
        let context = format!(
            "target {:?} prediction {:?} stem {}",
            case.target, case.prediction, case.stem
        );
        if let Some(tokens) = &case.target_tokens {
            assert_eq!(
                &tokenizer.tokenize(&case.target),
                tokens,
                "tokens of {context}"
            );
        }
        let scores = rouge_scores(&case.target, &case.prediction, &tokenizer);
        assert_all_rouge(
            &scores,
            [case.rouge1, case.rouge2, case.rouge_l, case.rouge_lsum],
            &context,
        );
    }
    let lsum_differs = cases.iter().filter(|c| c.rouge_lsum != c.rouge_l).count();
    assert!(
        lsum_differs > 20,
        "fixtures should make ROUGE-Lsum differ from ROUGE-L"
    );
    assert!(
        cases
            .iter()
            .filter(|c| c.rouge2[2] > 0.0 && c.rouge2[2] < 1.0)
            .count()
            > 100
    );
}

#[derive(Deserialize)]
struct RougeMultiCase {
    targets: Vec<String>,
    prediction: String,
    stem: bool,
    rouge1: Triple,
    rouge2: Triple,
    #[serde(rename = "rougeL")]
    rouge_l: Triple,
    #[serde(rename = "rougeLsum")]
    rouge_lsum: Triple,
}

#[test]
fn rouge_multi_matches_score_multi() {
    for case in fixture::<RougeMultiCase>("rouge_multi.jsonl") {
        let tokenizer = RougeTokenizer::new(case.stem);
        let scores = rouge_scores_multi(&case.targets, &case.prediction, &tokenizer)
            .expect("fixtures always have a target");
        let context = format!(
            "targets {:?} prediction {:?}",
            case.targets, case.prediction
        );
        assert_all_rouge(
            &scores,
            [case.rouge1, case.rouge2, case.rouge_l, case.rouge_lsum],
            &context,
        );
    }
}

#[derive(Deserialize)]
struct ExpectedBleu {
    score: f64,
    counts: [u64; 4],
    totals: [u64; 4],
    precisions: [f64; 4],
    bp: f64,
    sys_len: u64,
    ref_len: u64,
}

fn assert_bleu(actual: &BleuScore, expected: &ExpectedBleu, context: &str) {
    assert_eq!(actual.counts, expected.counts, "counts for {context}");
    assert_eq!(actual.totals, expected.totals, "totals for {context}");
    assert_eq!(
        (actual.sys_len, actual.ref_len),
        (expected.sys_len, expected.ref_len),
        "{context}"
    );
    assert_close(
        actual.score,
        expected.score,
        &format!("score for {context}"),
    );
    assert_close(actual.bp, expected.bp, &format!("bp for {context}"));
    for (a, e) in actual.precisions.iter().zip(expected.precisions) {
        assert_close(*a, e, &format!("precisions for {context}"));
    }
}

#[derive(Deserialize)]
struct SentenceBleuCase {
    hypothesis: String,
    references: Vec<String>,
    #[serde(flatten)]
    expected: ExpectedBleu,
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    let cases: Vec<SentenceBleuCase> = fixture("bleu_sentence.jsonl");
    for case in &cases {
        let score = sentence_bleu(&case.hypothesis, &case.references).expect("has references");
        let context = format!(
            "hypothesis {:?} references {:?}",
            case.hypothesis, case.references
        );
        assert_bleu(&score, &case.expected, &context);
    }
    let partial = cases
        .iter()
        .filter(|c| c.expected.score > 0.0 && c.expected.score < 100.0)
        .count();
    assert!(
        partial > 100,
        "fixtures should exercise partial matches, got {partial}"
    );
}

#[derive(Deserialize)]
struct CorpusBleuCase {
    hypotheses: Vec<String>,
    references: Vec<Vec<String>>,
    #[serde(flatten)]
    expected: ExpectedBleu,
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    for (index, case) in fixture::<CorpusBleuCase>("bleu_corpus.jsonl")
        .iter()
        .enumerate()
    {
        let score = corpus_bleu(&case.hypotheses, &case.references).expect("well-formed corpus");
        assert_bleu(&score, &case.expected, &format!("corpus {index}"));
    }
}

#[derive(Deserialize)]
struct TokenizerCase {
    line: String,
    tokenized: String,
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    for case in fixture::<TokenizerCase>("tokenizer_13a.jsonl") {
        assert_eq!(
            tokenize_13a(&case.line),
            case.tokenized,
            "line {:?}",
            case.line
        );
    }
}

#[derive(Deserialize)]
struct EmbeddingCase {
    a: Vec<f32>,
    b: Vec<f32>,
    cosine: f64,
    a_normalized: Vec<f32>,
    hidden_size: usize,
    token_embeddings: Vec<f32>,
    attention_mask: Vec<u32>,
    mean_pooled: Vec<f32>,
}

fn assert_f32_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what} length");
    for (a, e) in actual.iter().zip(expected) {
        let ok = (a - e).abs() <= 1e-5 * a.abs().max(e.abs()).max(1e-3);
        assert!(ok, "{what}: got {actual:?}, expected {expected:?}");
    }
}

#[test]
fn embedding_helpers_match_numpy() {
    for case in fixture::<EmbeddingCase>("embedding.jsonl") {
        let got = cosine(&case.a, &case.b).expect("same length");
        assert_f32_close(&[got], &[case.cosine as f32], "cosine");
        assert_f32_close(&l2_normalize(&case.a), &case.a_normalized, "l2_normalize");
        let pooled = mean_pool(
            &case.token_embeddings,
            &case.attention_mask,
            case.hidden_size,
        )
        .expect("well-shaped");
        assert_f32_close(&pooled, &case.mean_pooled, "mean_pool");
    }
}
