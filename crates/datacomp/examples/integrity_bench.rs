//! Benchmark (not a test): the integrity stage of a Datacomp round of 64 miners × 1,000 rows.
//!
//! `cargo run --release -p assay-datacomp --example integrity_bench [-- MINERS ROWS]` writes the
//! round into a temporary folder (graded miners: the evaluation set's style and another, 5% wrong
//! rows, one paraphrase copier in eight) and times `integrity_stage` (reading every file, schema,
//! duplicates, same-problem copies, wrong answers, contamination) three times. The result goes into
//! `crates/integrity/BENCH.md` beside the time of a miner's fine-tune and evaluation.

use std::time::Instant;

use assay_datacomp::graded::{Style, jsonl, paraphrase, rows};
use assay_datacomp::round::{default_policy, integrity_stage};
use assay_datacomp::task::generated_problems;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let miners = args.first().copied().unwrap_or(64);
    let per_miner = args.get(1).copied().unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let mut entries = Vec::new();
    let mut previous = Vec::new();
    for m in 0..miners {
        let style = if m % 2 == 0 {
            Style::House
        } else {
            Style::Steps
        };
        let data = if m % 8 == 7 {
            paraphrase(&previous, m as u64)
        } else {
            rows(10_000 + m as u64, per_miner, style, |i| i % 20 == 0)
        };
        std::fs::write(dir.path().join(format!("m{m}.jsonl")), jsonl(&data))?;
        entries.push(serde_json::json!({
            "hotkey": format!("m{m}"), "file": format!("m{m}.jsonl"), "block": m,
        }));
        previous = data;
    }
    let manifest = serde_json::json!({"round": "bench", "seed": 1, "miners": entries});
    std::fs::write(dir.path().join("round.json"), manifest.to_string())?;
    let problems = generated_problems(1, 8);
    let policy = default_policy();
    for run in 0..3 {
        let started = Instant::now();
        let (_, outcome) = integrity_stage(dir.path(), &problems, &policy)?;
        let seconds = started.elapsed().as_secs_f64();
        let kept: usize = outcome.kept.iter().map(|k| k.rows.len()).sum();
        println!(
            "run {run}: {miners} miners x {per_miner} rows: integrity stage {seconds:.2} s, \
             {kept} rows kept"
        );
    }
    Ok(())
}
