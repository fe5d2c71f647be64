//! Graded miners of our own: rows whose correctness, style, size and provenance we set, so that
//! rounds can show the score follows the grades (all correct > half wrong > all wrong, in the
//! evaluation set's style and in another; more distinct correct rows beat fewer; duplicates,
//! copies and paraphrase copies earn nothing). The tests, the red-team fixtures and the benchmark
//! draw their miners from here.

use assay_eval::generators::gsm::{self, GsmProblem};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// How a row's reasoning is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The evaluation set's own phrasing (the generator's sentences with `<<a*b=c>>c` annotations).
    House,
    /// Another phrasing: `Step 1: 6 * 7 = 42.` lines and `The answer is 40.`
    Steps,
    /// A third, written as running prose whose connectives and glosses vary with the step and the
    /// operation (`Multiplying first, 6 × 7 = 42 in all. Taking away, 42 − 2 = 40 remain.`).
    Prose,
}

/// The openers and glosses of [`Style::Prose`], chosen by step and operation.
fn prose_sentence(index: usize, last: bool, step: &gsm::Step, result: i64) -> String {
    use gsm::Op;
    let opener = if last {
        "To finish"
    } else {
        [
            "To begin",
            "Working on from there",
            "Carrying on",
            "Next up",
        ][index % 4]
    };
    let (verb, tail) = match step.op {
        Op::Add => ("adding these up", "altogether"),
        Op::Sub => ("taking away", "remain"),
        Op::Mul => ("multiplying them", "in all"),
        Op::Div => ("sharing evenly", "for every part"),
    };
    let symbol = match step.op {
        Op::Add => '+',
        Op::Sub => '−',
        Op::Mul => '×',
        Op::Div => '÷',
    };
    format!(
        "{opener}, {verb}: {} {symbol} {} = {result} {tail}.",
        step.a, step.b
    )
}

/// One `{prompt, chain_of_thought, final_answer}` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradedRow {
    /// The question.
    pub prompt: String,
    /// The reasoning.
    pub chain_of_thought: String,
    /// The answer.
    pub final_answer: String,
}

impl GradedRow {
    /// The row as one JSON line.
    pub fn to_json_line(&self) -> String {
        json!({
            "prompt": self.prompt,
            "chain_of_thought": self.chain_of_thought,
            "final_answer": self.final_answer,
        })
        .to_string()
    }
}

/// A problem written in `style`; with `slip > 0` the last step's result and the final answer are
/// off by `slip` (a wrong row that reads fluently).
pub fn write_row(problem: &GsmProblem, style: Style, slip: i64) -> GradedRow {
    let answer = problem.answer + slip;
    let chain_of_thought = match style {
        Style::House => {
            let reasoning = problem
                .solution
                .rsplit_once("\n####")
                .map_or(problem.solution.as_str(), |(r, _)| r);
            if slip == 0 {
                reasoning.to_string()
            } else {
                let last = problem.answer.to_string();
                let wrong = answer.to_string();
                let from = format!("={last}>>{last}");
                match reasoning.rfind(&from) {
                    Some(at) => format!(
                        "{}={wrong}>>{wrong}{}",
                        &reasoning[..at],
                        &reasoning[at + from.len()..]
                    ),
                    None => reasoning.to_string(),
                }
            }
        }
        Style::Steps => {
            let n = problem.steps.len();
            let mut lines: Vec<String> = problem
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let result = if i + 1 == n {
                        s.result + slip
                    } else {
                        s.result
                    };
                    format!(
                        "Step {}: {} {} {} = {}.",
                        i + 1,
                        s.a,
                        s.op.symbol(),
                        s.b,
                        result
                    )
                })
                .collect();
            lines.push(format!("The answer is {answer}."));
            lines.join("\n")
        }
        Style::Prose => {
            let n = problem.steps.len();
            let mut text: Vec<String> = problem
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let last = i + 1 == n;
                    prose_sentence(i, last, s, if last { s.result + slip } else { s.result })
                })
                .collect();
            text.push(format!("Hence we get {answer}."));
            text.join(" ")
        }
    };
    GradedRow {
        prompt: problem.question.clone(),
        chain_of_thought,
        final_answer: answer.to_string(),
    }
}

/// `count` distinct problems from `seed`, written in `style`; the rows at positions where
/// `wrong(i)` holds carry a slip of 1 to 3.
pub fn rows(
    seed: u64,
    count: usize,
    style: Style,
    wrong: impl Fn(usize) -> bool,
) -> Vec<GradedRow> {
    gsm::generate_batch(seed, count as u64)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let slip = if wrong(i) { 1 + (i as i64 % 3) } else { 0 };
            write_row(p, style, slip)
        })
        .collect()
}

/// Word swaps a paraphrasing copier uses: near-synonyms that keep the problem's meaning.
const SYNONYMS: &[(&str, &str)] = &[
    ("buys", "purchases"),
    ("has", "owns"),
    ("each", "every"),
    ("How many", "What number of"),
    ("left", "remaining"),
    ("cost", "price"),
    ("total", "sum"),
    ("gets", "receives"),
    ("bakes", "makes"),
    ("sells", "sold"),
    ("There are", "We have"),
    ("Together", "Combined"),
    ("dollars", "bucks"),
    ("pages", "sheets"),
    ("cookies", "biscuits"),
    ("friends", "pals"),
];

/// Another miner's rows with words swapped for near-synonyms and the row order shuffled: what a
/// paraphrasing copier submits. The numbers and equations stay, as they must for the rows to
/// stay correct.
pub fn paraphrase(rows: &[GradedRow], seed: u64) -> Vec<GradedRow> {
    let swap = |text: &str| {
        SYNONYMS
            .iter()
            .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
    };
    let mut out: Vec<GradedRow> = rows
        .iter()
        .map(|r| GradedRow {
            prompt: swap(&r.prompt),
            chain_of_thought: swap(&r.chain_of_thought.replace("<<", "(").replace(">>", ") ")),
            final_answer: r.final_answer.clone(),
        })
        .collect();
    out.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    out
}

/// A held-out question with one word changed and reasoning of the miner's own: train-on-test
/// that copies only the question.
pub fn one_word_changed(problem: &GsmProblem, seed: u64) -> GradedRow {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let words: Vec<&str> = problem.question.split(' ').collect();
    let candidates: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() > 3 && w.chars().all(char::is_alphabetic))
        .map(|(i, _)| i)
        .collect();
    let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if !candidates.is_empty() {
        let at = candidates[rng.random_range(0..candidates.len())];
        words[at] = "certain".into();
    }
    let mut row = write_row(problem, Style::Steps, 0);
    row.prompt = words.join(" ");
    row
}

/// The rows as a JSONL file's text.
pub fn jsonl(rows: &[GradedRow]) -> String {
    rows.iter()
        .map(|r| r.to_json_line() + "\n")
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_integrity::arithmetic::verify_row;

    #[test]
    fn correct_rows_verify_and_slipped_rows_do_not() {
        for style in [Style::House, Style::Steps, Style::Prose] {
            let good = rows(7, 40, style, |_| false);
            let bad = rows(7, 40, style, |_| true);
            for (g, b) in good.iter().zip(&bad) {
                assert!(
                    verify_row(&g.chain_of_thought, &g.final_answer).is_ok(),
                    "{g:?}"
                );
                assert!(
                    verify_row(&b.chain_of_thought, &b.final_answer).is_err(),
                    "{b:?}"
                );
                assert_ne!(g.final_answer, b.final_answer);
            }
        }
    }

    #[test]
    fn paraphrases_change_words_but_keep_arithmetic() {
        let original = rows(9, 24, Style::House, |_| false);
        let copy = paraphrase(&original, 1);
        assert_eq!(copy.len(), original.len());
        let changed = copy.iter().filter(|c| !original.contains(c)).count();
        assert!(changed >= 20, "{changed}");
        for c in &copy {
            assert!(
                verify_row(&c.chain_of_thought, &c.final_answer).is_ok(),
                "{c:?}"
            );
        }
    }
}
