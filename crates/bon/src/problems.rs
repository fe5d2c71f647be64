//! Problems in MATH-500's row format, read from JSONL, filtered by level, and subset with a seed; or
//! made from the seeded arithmetic generator so that every answer is verifiable.

use std::path::Path;

use assay_eval::generators::gsm;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{BonError, Result};

/// Largest problem file read (MATH-500 is about 400 KB).
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// One problem, with MATH-500's columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MathProblem {
    /// LaTeX problem statement.
    pub problem: String,
    /// Worked solution ending in `\boxed{answer}`; the gold answer is extracted from it.
    pub solution: String,
    /// Short final answer.
    pub answer: String,
    /// MATH subject.
    pub subject: String,
    /// Difficulty 1-5.
    pub level: i64,
    /// Stable id, e.g. `test/algebra/1265.json`.
    pub unique_id: String,
}

/// Reads MATH-500-format JSONL; blank lines are skipped, and a bad line is reported by number.
pub fn read_jsonl(path: &Path) -> Result<Vec<MathProblem>> {
    let size = std::fs::metadata(path)
        .map_err(|e| BonError::io(path, e.to_string()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(BonError::bad_file(
            path,
            format!("{size} bytes; problem files are limited to {MAX_FILE_BYTES}"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| BonError::io(path, e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: MathProblem = serde_json::from_str(line)
            .map_err(|e| BonError::bad_file(path, format!("line {}: {e}", i + 1)))?;
        out.push(row);
    }
    Ok(out)
}

/// An inclusive range of levels, written `1-3` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRange {
    /// Lowest level kept.
    pub low: i64,
    /// Highest level kept.
    pub high: i64,
}

impl std::str::FromStr for LevelRange {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let parse = |x: &str| {
            x.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{s}` is not a level range like `1-3`"))
        };
        let (low, high) = (parse(a)?, parse(b)?);
        if low > high {
            return Err(format!("level range `{s}` is empty"));
        }
        Ok(Self { low, high })
    }
}

/// Keeps the problems within `levels`, shuffles them with `seed` and takes `count` (all if fewer).
/// The order of the result is the shuffled order, so the chosen ids record the subset exactly.
pub fn seeded_subset(
    problems: Vec<MathProblem>,
    levels: Option<LevelRange>,
    count: Option<usize>,
    seed: u64,
) -> Vec<MathProblem> {
    let mut kept: Vec<MathProblem> = problems
        .into_iter()
        .filter(|p| levels.is_none_or(|r| (r.low..=r.high).contains(&p.level)))
        .collect();
    kept.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    kept.truncate(count.unwrap_or(usize::MAX));
    kept
}

/// Problem `index` of the arithmetic generator as a MATH-500 row: the chain of thought becomes a
/// solution ending in the search-and-learn sentence with `\boxed{}`, level = number of steps (capped at 5).
pub fn arithmetic_problem(seed: u64, index: u64) -> MathProblem {
    let p = gsm::generate(seed, index);
    let reasoning = p
        .solution
        .rsplit_once("\n####")
        .map_or(p.solution.as_str(), |(r, _)| r);
    MathProblem {
        problem: p.question.clone(),
        solution: format!(
            "{}\n\nTherefore, the final answer is: $\\boxed{{{}}}$.",
            strip_calculator_notes(reasoning),
            p.answer
        ),
        answer: p.answer.to_string(),
        subject: format!("Arithmetic ({})", p.template),
        level: p.steps.len().clamp(1, 5) as i64,
        unique_id: p.id,
    }
}

/// Removes GSM8K's `<<a*b=c>>` calculator annotations, which MATH-style solutions do not have.
fn strip_calculator_notes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        out.push_str(&rest[..start]);
        match rest[start..].find(">>") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Problems `0..count` of the arithmetic generator with `seed`.
pub fn arithmetic_problems(seed: u64, count: u64) -> Vec<MathProblem> {
    (0..count).map(|i| arithmetic_problem(seed, i)).collect()
}

/// A bare arithmetic problem that a 135M model sometimes solves: level 1 `a + b` (1-2 digits),
/// level 2 `a - b` or `a + b + c` (2 digits), level 3 `a * b` (1 by 2 digits). Deterministic in
/// (`seed`, `index`).
pub fn bare_arithmetic_problem(seed: u64, index: u64) -> MathProblem {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let level = rng.random_range(1..=3i64);
    let (text, answer) = match level {
        1 => {
            let (a, b) = (rng.random_range(1..100i64), rng.random_range(1..10i64));
            (format!("{a} + {b}"), a + b)
        }
        2 if rng.random_bool(0.5) => {
            let (a, b) = (rng.random_range(20..100i64), rng.random_range(10..20i64));
            (format!("{a} - {b}"), a - b)
        }
        2 => {
            let (a, b, c) = (
                rng.random_range(10..50i64),
                rng.random_range(10..50i64),
                rng.random_range(1..10i64),
            );
            (format!("{a} + {b} + {c}"), a + b + c)
        }
        _ => {
            let (a, b) = (rng.random_range(2..10i64), rng.random_range(11..30i64));
            (format!("{a} \\times {b}"), a * b)
        }
    };
    MathProblem {
        problem: format!("What is ${text}$?"),
        solution: format!("${text} = {answer}$, so the answer is $\\boxed{{{answer}}}$."),
        answer: answer.to_string(),
        subject: "Arithmetic".into(),
        level,
        unique_id: format!("arith-{seed:x}-{index}"),
    }
}

/// Problems `0..count` of [`bare_arithmetic_problem`].
pub fn bare_arithmetic_problems(seed: u64, count: u64) -> Vec<MathProblem> {
    (0..count)
        .map(|i| bare_arithmetic_problem(seed, i))
        .collect()
}

/// Writes problems as JSONL (the format [`read_jsonl`] reads).
pub fn write_jsonl(path: &Path, problems: &[MathProblem]) -> Result<()> {
    let mut text = String::new();
    for p in problems {
        text.push_str(&serde_json::to_string(p).expect("plain struct serialises"));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| BonError::io(path, e.to_string()))
}
