//! Throughput of math answer grading: extraction + normalisation of a completion and of a gold
//! solution, then equivalence, on 100k synthetic (completion, gold) pairs.
//!
//! ```text
//! cargo run --release -p assay-eval --example math_bench -- [N] [--write PATH]
//! ```
//! `--distinct PATH` instead times `math_equal` on the distinct pairs of `fixtures/math/equal.jsonl`.
//! `--write PATH` also writes the pairs with our verdicts as JSONL, for the Python reference timing
//! (`fixtures/math/bench_math_reference.py`), which reports its own speed and any disagreement.

use std::io::Write;
use std::time::Instant;

use assay_eval::math::{extract_answer, math_equal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Gold answers with forms a model might write for them (first entry is the gold form).
const ANSWER_FORMS: &[&[&str]] = &[
    &["\\frac{1}{2}", "0.5", "1/2", "\\dfrac12", "50\\%"],
    &["12", "12.0", "12 \\text{ cm}", "\\$12", "twelve"],
    &["\\sqrt{2}", "\\sqrt2", "1.41421", "2^{1/2}"],
    &["2\\pi", "6.28318", "2 \\pi", "\\pi \\cdot 2"],
    &["(1,2)", "(1, 2)", "\\left(1,2\\right)", "(2,1)"],
    &["[0,1)", "[0, 1)", "(0,1)"],
    &["x^2+2x+1", "(x+1)^2", "x^{2}+2x+1"],
    &["\\frac{7}{3}", "2\\frac{1}{3}", "7/3", "2.3333"],
    &["1000", "1,000", "10^3", "1000.0"],
    &["-\\frac{7}{3}", "\\frac{-7}{3}", "-7/3"],
    &[
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
    ],
    &["\\text{(B)}", "B", "(B)"],
    &["y=2x+1", "2x+1", "y = 2x + 1"],
    &["5", "5.", "x = 5", "6"],
];

const WRAPPERS: &[&str] = &[
    "## Step 1: Work it out\nWe compute carefully.\n\nTherefore, the final answer is: $\\boxed{ANS}$. I hope it is correct.",
    "Let me think. The value follows, so the answer is \\boxed{ANS}.",
    "Therefore, the final answer is $ANS$. I hope it is correct.",
    "The answer is ANS",
];

struct Case {
    completion: String,
    gold_solution: String,
}

fn make_cases(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let forms = ANSWER_FORMS[rng.random_range(0..ANSWER_FORMS.len())];
            let other = ANSWER_FORMS[rng.random_range(0..ANSWER_FORMS.len())];
            let answer = if rng.random_bool(0.7) {
                forms[rng.random_range(0..forms.len())]
            } else {
                other[0]
            };
            let wrapper = WRAPPERS[rng.random_range(0..WRAPPERS.len())];
            Case {
                completion: wrapper.replace("ANS", answer),
                gold_solution: format!("So the result is $\\boxed{{{}}}$.", forms[0]),
            }
        })
        .collect()
}

/// `math_equal` over every (pred, reference) pair of the equivalence fixture, repeated 100 times.
fn time_distinct_pairs(path: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["pred"].as_str().unwrap_or("").to_string(),
                v["reference"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let rounds = 100;
    let start = Instant::now();
    let mut equal = 0;
    for _ in 0..rounds {
        equal += pairs.iter().filter(|(p, r)| math_equal(p, r)).count();
    }
    let s = start.elapsed().as_secs_f64();
    let n = pairs.len() * rounds;
    println!(
        "math_equal on {} distinct pairs x {rounds}: {s:.3} s ({:.0} pairs/s); equal {}",
        pairs.len(),
        n as f64 / s,
        equal / rounds
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(path) = flag("--distinct") {
        return time_distinct_pairs(path);
    }
    let write_path = flag("--write");
    let cases = make_cases(n, 20261122);

    let start = Instant::now();
    let extracted: Vec<(String, String)> = cases
        .iter()
        .map(|c| {
            (
                extract_answer(&c.completion),
                extract_answer(&c.gold_solution),
            )
        })
        .collect();
    let extract_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let verdicts: Vec<bool> = extracted.iter().map(|(p, g)| math_equal(p, g)).collect();
    let equal_s = start.elapsed().as_secs_f64();

    let correct = verdicts.iter().filter(|v| **v).count();
    println!("pairs: {n}");
    println!(
        "extract+normalise (2 per pair): {extract_s:.3} s ({:.0} pairs/s)",
        n as f64 / extract_s
    );
    println!(
        "math_equal: {equal_s:.3} s ({:.0} pairs/s)",
        n as f64 / equal_s
    );
    println!(
        "total: {:.3} s; judged equal: {correct}",
        extract_s + equal_s
    );

    if let Some(path) = write_path {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (case, verdict) in cases.iter().zip(&verdicts) {
            let row = serde_json::json!({
                "completion": case.completion,
                "gold_solution": case.gold_solution,
                "rust_equal": verdict,
            });
            writeln!(out, "{row}")?;
        }
        println!("wrote {path}");
    }
    Ok(())
}
