//! Writes `examples/datacomp/`: a round of five miners written by us, one per behaviour the
//! validator must handle. Re-run after changing the generator:
//! `cargo run -p assay-datacomp --example make_example_round`.

use std::path::PathBuf;

use assay_datacomp::task::generated_problems;
use serde_json::json;

/// The round's evaluation seed (round.json's `seed`); the cheater copies the first 12 problems,
/// which cover the default `--eval-count` (8).
const EVAL_SEED: u64 = 20261122;
const EVAL_COUNT: usize = 12;

fn row(prompt: &str, cot: &str, answer: &str) -> String {
    json!({"prompt": prompt, "chain_of_thought": cot, "final_answer": answer}).to_string()
}

/// The same arithmetic with every result wrong: fluent but useless reasoning.
fn corrupt(text: &str, salt: usize) -> String {
    text.split(' ')
        .map(|w| match w.trim_end_matches(['.', ',']).parse::<i64>() {
            Ok(n) if n > 3 => {
                w.replacen(&n.to_string(), &(n + 7 + (salt as i64 % 5)).to_string(), 1)
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cosmetic variants a spammer uses to make one row look like many.
fn cosmetic(text: &str, variant: usize) -> String {
    match variant % 5 {
        0 => text.to_string(),
        1 => text.to_uppercase(),
        2 => text.replace(' ', "  "),
        3 => text.replace("e", "e\u{200b}"),
        _ => format!("  {}  ", text.to_lowercase()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/datacomp");
    std::fs::create_dir_all(&dir)?;
    let write =
        |name: &str, rows: Vec<String>| std::fs::write(dir.join(name), rows.join("\n") + "\n");
    let honest = generated_problems(101, 24);
    write(
        "honest.jsonl",
        honest
            .iter()
            .map(|p| row(&p.prompt, &p.chain_of_thought, &p.final_answer))
            .collect(),
    )?;
    let sloppy = generated_problems(202, 24);
    write(
        "low_quality.jsonl",
        sloppy
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let answer: i64 = p.final_answer.parse().unwrap_or(0);
                row(
                    &p.prompt,
                    &corrupt(&p.chain_of_thought, i),
                    &(answer + 11 + i as i64).to_string(),
                )
            })
            .collect(),
    )?;
    let spam = generated_problems(303, 4);
    write(
        "spammer.jsonl",
        (0..24)
            .map(|i| {
                let p = &spam[i % 4];
                let v = i / 4;
                row(
                    &cosmetic(&p.prompt, v),
                    &cosmetic(&p.chain_of_thought, v),
                    &p.final_answer,
                )
            })
            .collect(),
    )?;
    write(
        "copier.jsonl",
        honest
            .iter()
            .take(20)
            .map(|p| {
                row(
                    &p.prompt,
                    &p.chain_of_thought.replace("  ", " "),
                    &p.final_answer,
                )
            })
            .collect(),
    )?;
    let eval = generated_problems(EVAL_SEED, EVAL_COUNT);
    let filler = generated_problems(404, 6);
    write(
        "cheater.jsonl",
        eval.iter()
            .chain(&filler)
            .map(|p| row(&p.prompt, &p.chain_of_thought, &p.final_answer))
            .collect(),
    )?;
    let manifest = json!({
        "round": "example-1",
        "seed": EVAL_SEED,
        "miners": [
            {"hotkey": "cheater", "file": "cheater.jsonl", "block": 1000},
            {"hotkey": "honest", "file": "honest.jsonl", "block": 1001},
            {"hotkey": "low_quality", "file": "low_quality.jsonl", "block": 1002},
            {"hotkey": "spammer", "file": "spammer.jsonl", "block": 1003},
            {"hotkey": "copier", "file": "copier.jsonl", "block": 1004}
        ]
    });
    std::fs::write(
        dir.join("round.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}
