//! Benchmark (not a test): every row check of a round of 64 miners × 1,000 chain-of-thought rows,
//! without the model stack (the full stage with file reading is `assay-datacomp`'s
//! `integrity_bench`, which needs the engine built).
//!
//! `cargo run --release -p assay-integrity --example round_bench [-- MINERS ROWS]`. Rows come from
//! eight small templates with random names and numbers (so template-mates with equal numbers
//! occur, as in real rounds), written in two styles; every eighth miner paraphrases the previous
//! one (synonyms swapped, annotations rewritten). Times intake (JSONL parsing and schema) and
//! `check_round` (canonical form, exact and near duplicates, contamination against 8 items,
//! arithmetic, same-problem signatures with alignment) three times.

use std::time::Instant;

use assay_integrity::contamination::{ContaminationIndex, EvalItem};
use assay_integrity::policy::Policy;
use assay_integrity::report::Priority;
use assay_integrity::round::{MinerSubmission, check_round};
use assay_integrity::schema::read_submission_bytes;

const NAMES: [&str; 12] = [
    "Ingrid", "Liam", "Noah", "Amara", "Kwame", "Priya", "Mateo", "Hana", "Diego", "Sofia", "Ravi",
    "Elena",
];

/// A small deterministic generator (the example must not depend on a random crate's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        low + (self.0 >> 33) % (high - low + 1)
    }
}

/// One row: (prompt, reasoning, answer), in the house style or the step style.
fn row(rng: &mut Lcg, steps: bool) -> (String, String, String) {
    let name = NAMES[rng.next(0, 11) as usize];
    let (a, b, c) = (rng.next(2, 40), rng.next(2, 30), rng.next(1, 200));
    let template = rng.next(0, 7);
    let items = [
        "pens", "mugs", "books", "hens", "boxes", "cards", "shells", "stamps",
    ];
    let item = items[template as usize];
    let product = a * b;
    let answer = product + c;
    let prompt = format!(
        "{name} buys {a} packs of {item} with {b} {item} in each pack, then finds {c} more. \
         How many {item} does {name} have?"
    );
    let reasoning = if steps {
        format!(
            "Step 1: {a} * {b} = {product}.\nStep 2: {product} + {c} = {answer}.\nThe answer is {answer}."
        )
    } else {
        format!(
            "The packs hold {a} * {b} = <<{a}*{b}={product}>>{product} {item}.\n{name} has \
             {product} + {c} = <<{product}+{c}={answer}>>{answer} {item} in total."
        )
    };
    (prompt, reasoning, answer.to_string())
}

fn paraphrase(text: &str) -> String {
    [
        ("buys", "purchases"),
        ("finds", "discovers"),
        ("each", "every"),
        ("How many", "What number of"),
        ("hold", "contain"),
        ("total", "all"),
    ]
    .iter()
    .fold(text.replace("<<", "(").replace(">>", ") "), |t, (a, b)| {
        t.replace(a, b)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let miners = args.first().copied().unwrap_or(64);
    let per_miner = args.get(1).copied().unwrap_or(1000);
    let mut files: Vec<String> = Vec::new();
    for m in 0..miners {
        let mut rng = Lcg(1000 + m as u64);
        let text: String = if m % 8 == 7 {
            paraphrase(&files[m - 1])
        } else {
            (0..per_miner)
                .map(|_| {
                    let (p, c, a) = row(&mut rng, m % 2 == 1);
                    serde_json::json!({"prompt": p, "chain_of_thought": c, "final_answer": a})
                        .to_string()
                        + "\n"
                })
                .collect()
        };
        files.push(text);
    }
    let mut rng = Lcg(7);
    let items: Vec<EvalItem> = (0..8)
        .map(|i| {
            let (p, c, a) = row(&mut rng, false);
            EvalItem {
                id: format!("eval-{i}"),
                text: format!("{p}\n{c}\n#### {a}"),
            }
        })
        .collect();
    let policy = Policy::default();
    for run in 0..3 {
        let started = Instant::now();
        let submissions: Vec<MinerSubmission> = files
            .iter()
            .enumerate()
            .map(|(m, text)| MinerSubmission {
                miner: format!("m{m}"),
                priority: Priority {
                    block: m as u64,
                    receipt_ms: 0,
                },
                intake: read_submission_bytes(
                    &format!("m{m}.jsonl"),
                    text.as_bytes(),
                    &policy.limits,
                ),
            })
            .collect();
        let intake = started.elapsed().as_secs_f64();
        let index = ContaminationIndex::new(&items, &policy.contamination)?;
        let outcome = check_round(&submissions, Some(&index), &policy)?;
        let total = started.elapsed().as_secs_f64();
        let kept: usize = outcome.kept.iter().map(|k| k.rows.len()).sum();
        let copiers_zeroed = outcome
            .report
            .miners
            .iter()
            .filter(|m| m.penalty.disqualified)
            .count();
        println!(
            "run {run}: {miners} miners x {per_miner} rows: intake {intake:.2} s, all checks \
             {total:.2} s; {kept} rows kept, {copiers_zeroed} miners disqualified"
        );
    }
    Ok(())
}
