//! Problems in MATH-500's row format, read from JSONL, filtered by level, and subset with a seed; or
//! made from the seeded arithmetic generator so that every answer is verifiable.

use std::path::{Path, PathBuf};

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

/// Reads MATH-500-format rows from JSON lines or Parquet (by extension, through `assay-tables`);
/// blank lines are skipped, and a bad row is reported by its line or row number.
pub fn read_jsonl(path: &Path) -> Result<Vec<MathProblem>> {
    let size = std::fs::metadata(path)
        .map_err(|e| BonError::read(path, e))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(BonError::bad_file(
            path,
            format!("{size} bytes; problem files are limited to {MAX_FILE_BYTES}"),
        ));
    }
    assay_tables::read_table(path)?
        .into_iter()
        .map(|record| {
            serde_json::from_value(serde_json::Value::Object(record.row)).map_err(|e| {
                BonError::bad_file(
                    path,
                    format!(
                        "{}: {e}; a problem row has problem, solution, answer, subject, level, unique_id",
                        record.location
                    ),
                )
            })
        })
        .collect()
}

/// An inclusive range of levels, written `1-3` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRange {
    /// Lowest level kept.
    pub low: i64,
    /// Highest level kept.
    pub high: i64,
}

impl std::fmt::Display for LevelRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
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
    let rows: Vec<assay_tables::Row> = problems.iter().map(to_row).collect();
    Ok(assay_tables::write_jsonl(path, &rows)?)
}

/// A serialisable struct as a table row.
pub(crate) fn to_row(value: &impl Serialize) -> assay_tables::Row {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(row)) => row,
        // Only structs are passed here, and they serialise to objects.
        _ => unreachable!("rows are structs"),
    }
}

/// How arithmetic problems are worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithmeticStyle {
    /// Multi-step word problems (assay-eval's GSM-style generator).
    #[default]
    Word,
    /// Bare sums and products (`What is $23 + 7$?`), which a 135M model sometimes solves.
    Bare,
}

/// Where problems come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemSource {
    /// A MATH-500-format JSONL or Parquet file.
    File(PathBuf),
    /// The seeded arithmetic generator.
    Arithmetic {
        /// Generator seed.
        seed: u64,
        /// Wording.
        style: ArithmeticStyle,
    },
}

/// Which problems a run uses: a source, a level filter, and a seeded subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemSettings {
    /// Where the problems come from.
    pub source: ProblemSource,
    /// Keep only these levels.
    pub levels: Option<LevelRange>,
    /// How many problems: a seeded subset of a file; the first ones of the generator.
    pub count: usize,
    /// Seed of the subset (and, in the pipelines, of sampling).
    pub seed: u64,
}

impl Default for ProblemSettings {
    /// 20 word problems from generator seed 0, the take-home's problem count.
    fn default() -> Self {
        Self {
            source: ProblemSource::Arithmetic {
                seed: 0,
                style: ArithmeticStyle::Word,
            },
            levels: None,
            count: 20,
            seed: 0,
        }
    }
}

impl ProblemSettings {
    /// The problems, and a one-line description of them for the dataset card.
    pub fn load(&self) -> Result<(Vec<MathProblem>, String)> {
        let (all, what) = match &self.source {
            ProblemSource::File(path) => (read_jsonl(path)?, format!("`{}`", path.display())),
            ProblemSource::Arithmetic {
                seed,
                style: ArithmeticStyle::Word,
            } => (
                arithmetic_problems(*seed, self.count as u64),
                format!("the arithmetic word-problem generator (assay-eval gsm) with seed {seed}"),
            ),
            ProblemSource::Arithmetic {
                seed,
                style: ArithmeticStyle::Bare,
            } => (
                bare_arithmetic_problems(*seed, self.count as u64),
                format!("the bare arithmetic generator (assay-bon) with seed {seed}"),
            ),
        };
        let chosen = seeded_subset(all, self.levels, Some(self.count), self.seed);
        if chosen.is_empty() {
            let why = match self.levels {
                Some(l) => format!("no problems at levels {l}"),
                None => "no problems".into(),
            };
            return Err(BonError::Input(format!(
                "{why} (count {}): widen --levels or raise --count",
                self.count
            )));
        }
        let levels = self
            .levels
            .map_or("all levels".into(), |l| format!("levels {l}"));
        Ok((
            chosen,
            format!("{what}, {levels}, subset seed {}", self.seed),
        ))
    }
}
