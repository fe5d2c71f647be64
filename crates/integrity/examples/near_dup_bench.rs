//! Near-duplicate benchmark: a synthetic corpus of ~100-word rows with planted near copies, run
//! through canonical form + MinHash + LSH. Writes the corpus as JSONL so `bench/datasketch_bench.py`
//! runs the same rows with the same parameters.
//!
//! Usage: cargo run --release -p assay-integrity --example near_dup_bench -- \
//!            --rows 100000 [--words 100] [--dup-fraction 0.1] [--substitutions 3] \
//!            [--num-perm 128] [--shingle 3] [--threshold 0.7] [--seed 1] [--corpus PATH]

use assay_integrity::canonical::canonical_form;
use assay_integrity::dedup::NearDupIndex;
use assay_integrity::minhash::MinHashParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::io::Write;
use std::time::Instant;

struct Options {
    rows: usize,
    words: usize,
    dup_fraction: f64,
    substitutions: usize,
    params: MinHashParams,
    seed: u64,
    corpus: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        rows: 100_000,
        words: 100,
        dup_fraction: 0.1,
        substitutions: 3,
        params: MinHashParams::default(),
        seed: 1,
        corpus: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("flag {} needs a value", pair[0]));
        };
        let number = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--rows" => options.rows = number()? as usize,
            "--words" => options.words = number()? as usize,
            "--dup-fraction" => options.dup_fraction = number()?,
            "--substitutions" => options.substitutions = number()? as usize,
            "--num-perm" => options.params.num_perm = number()? as usize,
            "--shingle" => options.params.shingle_words = number()? as usize,
            "--threshold" => options.params.threshold = number()? as f32,
            "--seed" => options.seed = number()? as u64,
            "--corpus" => options.corpus = Some(value.clone()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

/// Rows of random words from a random vocabulary; a `dup_fraction` of rows copy an earlier
/// original with `substitutions` words replaced. Returns texts and, per row, its original's index.
fn make_corpus(options: &Options) -> (Vec<String>, Vec<Option<usize>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let vocabulary: Vec<String> = (0..20_000)
        .map(|_| {
            (0..rng.random_range(3..10))
                .map(|_| rng.random_range(b'a'..=b'z') as char)
                .collect()
        })
        .collect();
    let mut texts: Vec<Vec<usize>> = Vec::with_capacity(options.rows);
    let mut origin = Vec::with_capacity(options.rows);
    let mut originals = Vec::new();
    for i in 0..options.rows {
        if i > 0 && !originals.is_empty() && rng.random_bool(options.dup_fraction) {
            let source: usize = originals[rng.random_range(0..originals.len())];
            let mut words = texts[source].clone();
            for _ in 0..options.substitutions {
                let at = rng.random_range(0..words.len());
                words[at] = rng.random_range(0..vocabulary.len());
            }
            texts.push(words);
            origin.push(Some(source));
        } else {
            texts.push(
                (0..options.words)
                    .map(|_| rng.random_range(0..vocabulary.len()))
                    .collect(),
            );
            origin.push(None);
            originals.push(i);
        }
    }
    let texts = texts
        .iter()
        .map(|words| {
            words
                .iter()
                .map(|&w| vocabulary[w].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (texts, origin)
}

fn write_corpus(
    path: &str,
    texts: &[String],
    origin: &[Option<usize>],
    options: &Options,
    shape: (usize, usize),
) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {path}: {e}"));
    let mut out = std::io::BufWriter::new(file);
    let header = serde_json::json!({
        "num_perm": options.params.num_perm, "shingle": options.params.shingle_words,
        "threshold": options.params.threshold, "bands": shape.0, "rows_per_band": shape.1,
    });
    writeln!(out, "{header}").expect("write corpus");
    for (text, source) in texts.iter().zip(origin) {
        writeln!(
            out,
            "{}",
            serde_json::json!({"text": text, "copy_of": source})
        )
        .expect("write corpus");
    }
}

fn main() {
    let options = parse_options().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let (texts, origin) = make_corpus(&options);
    let mut index =
        NearDupIndex::new(&options.params).unwrap_or_else(|e| panic!("bad parameters: {e}"));
    if let Some(path) = &options.corpus {
        write_corpus(path, &texts, &origin, &options, index.lsh_shape());
    }

    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    let canonical: Vec<String> = texts.par_iter().map(|t| canonical_form(t)).collect();
    let canonical_s = start.elapsed().as_secs_f64();
    let signatures = index.signatures(&canonical);
    let signature_s = start.elapsed().as_secs_f64() - canonical_s;
    let mut found = Vec::with_capacity(texts.len());
    for signature in &signatures {
        let signature = signature.as_ref().expect("every row has words");
        found.push(index.best_match(signature).map(|m| m.id));
        index.insert_signature(signature);
    }
    let total_s = start.elapsed().as_secs_f64();
    let cpu_s = process_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, start)| end - start);

    let root = |i: usize| origin[i].unwrap_or(i);
    let planted = origin.iter().filter(|o| o.is_some()).count();
    let hits = (0..texts.len())
        .filter(|&i| origin[i].is_some() && found[i].is_some_and(|m| root(m) == root(i)))
        .count();
    let false_positives = (0..texts.len())
        .filter(|&i| found[i].is_some_and(|m| root(m) != root(i)))
        .count();
    let report = serde_json::json!({
        "implementation": "assay-integrity (Rust)",
        "threads": rayon::current_num_threads(),
        "rows": texts.len(), "planted": planted, "bands": index.lsh_shape().0, "rows_per_band": index.lsh_shape().1,
        "canonical_s": canonical_s, "signatures_s": signature_s, "lsh_s": total_s - canonical_s - signature_s,
        "total_s": total_s, "cpu_s": cpu_s, "recall": hits as f64 / planted.max(1) as f64, "false_positives": false_positives,
    });
    println!("{report}");
}

/// User plus system CPU time of the whole process (all threads) from /proc, in seconds; `None`
/// where /proc is unavailable. Linux reports it in clock ticks of 1/100 s on x86_64.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}
