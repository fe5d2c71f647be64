//! The problems of a round and how they are written for the model: one place for the prompt and
//! the training text, so training and evaluation can never drift apart.

use std::path::Path;

use assay_eval::generators::gsm;
use assay_integrity::contamination::EvalItem;
use serde::{Deserialize, Serialize};

use crate::error::DatacompError;

/// A held-out problem with its gold chain of thought and answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable identifier, reported in contamination findings.
    pub id: String,
    /// The question.
    pub prompt: String,
    /// The gold reasoning.
    pub chain_of_thought: String,
    /// The gold final answer.
    pub final_answer: String,
}

/// The instruction that wraps every question, in training and in evaluation alike.
pub fn user_turn(question: &str) -> String {
    format!(
        "Solve the problem. Reason step by step, then give the final answer after ####.\n\n{question}"
    )
}

/// The text a model should produce for a problem: the reasoning, then `#### answer`.
pub fn target_text(chain_of_thought: &str, final_answer: &str) -> String {
    format!(
        "{}\n#### {}",
        chain_of_thought.trim_end(),
        final_answer.trim()
    )
}

/// Splits a target text into segments to score or not: the number after each `=` (an equation's
/// result, with any spaces before it as context) and the number after `####` are scored; the rest
/// (the phrasing) is context. Concatenated, the segments are the text again.
pub fn result_segments(text: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut push = |piece: &str, scored: bool| {
        if piece.is_empty() {
            return;
        }
        match out.last_mut() {
            Some((last, s)) if *s == scored => last.push_str(piece),
            _ => out.push((piece.to_string(), scored)),
        }
    };
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let after_marker = if bytes[i] == b'=' {
            Some(i + 1)
        } else if text[i..].starts_with("####") {
            Some(i + 4)
        } else {
            None
        };
        let Some(mut j) = after_marker else {
            i += 1;
            continue;
        };
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let mut k = j;
        if k < bytes.len() && (bytes[k] == b'-' || bytes[k] == b'$') {
            k += 1;
        }
        let digits_start = k;
        while k < bytes.len()
            && (bytes[k].is_ascii_digit()
                || ((bytes[k] == b'.' || bytes[k] == b',')
                    && bytes.get(k + 1).is_some_and(u8::is_ascii_digit)))
        {
            k += 1;
        }
        if k > digits_start {
            push(&text[start..j], false);
            push(&text[j..k], true);
            start = k;
            i = k;
        } else {
            i = j.max(i + 1);
        }
    }
    push(&text[start..], false);
    out
}

/// A fresh evaluation set drawn from `seed`: nobody can have trained on it before the round.
pub fn generated_problems(seed: u64, count: usize) -> Vec<Problem> {
    gsm::generate_batch(seed, count as u64)
        .into_iter()
        .map(|p| {
            let item = p.cot_item();
            Problem {
                id: p.id,
                prompt: item.prompt,
                chain_of_thought: item.chain_of_thought,
                final_answer: item.final_answer,
            }
        })
        .collect()
}

/// Reads an evaluation file of `{id?, prompt, chain_of_thought, final_answer}` rows (JSONL or
/// Parquet, through `assay-tables`).
pub fn read_problems(path: &Path) -> Result<Vec<Problem>, DatacompError> {
    #[derive(Deserialize)]
    struct Row {
        id: Option<String>,
        prompt: String,
        chain_of_thought: String,
        final_answer: String,
    }
    let records = assay_tables::read_table(path).map_err(|e| DatacompError::BadInput {
        what: path.display().to_string(),
        message: format!(
            "not a readable evaluation file: {}",
            assay_errors::chain(&e)
        ),
    })?;
    let mut out = Vec::new();
    for record in records {
        let row: Row = serde_json::from_value(serde_json::Value::Object(record.row)).map_err(
            |e| DatacompError::BadInput {
                what: format!("{} ({})", path.display(), record.location),
                message: format!(
                    "not an evaluation row ({e}); expected prompt, chain_of_thought, final_answer"
                ),
            },
        )?;
        out.push(Problem {
            id: row.id.unwrap_or_else(|| match record.location {
                assay_tables::Location::Line(n) => format!("line-{n}"),
                assay_tables::Location::Row(n) => format!("row-{n}"),
            }),
            prompt: row.prompt,
            chain_of_thought: row.chain_of_thought,
            final_answer: row.final_answer,
        });
    }
    if out.is_empty() {
        return Err(DatacompError::BadInput {
            what: path.display().to_string(),
            message: "holds no evaluation rows".into(),
        });
    }
    Ok(out)
}

/// The evaluation items the contamination check protects: each question with its gold reasoning.
pub fn protected_items(problems: &[Problem]) -> Vec<EvalItem> {
    problems
        .iter()
        .map(|p| EvalItem {
            id: p.id.clone(),
            text: format!("{}\n{}", p.prompt, p.chain_of_thought),
        })
        .collect()
}

/// The integer or decimal answer a generation ends with: after the last `####`, else its last number.
pub fn extract_answer(generation: &str) -> Option<String> {
    let tail = generation
        .rsplit_once("####")
        .map_or(generation, |(_, t)| t);
    let number: String = tail
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == ','))
        .rfind(|t| t.chars().any(|c| c.is_ascii_digit()))?
        .chars()
        .filter(|&c| c != ',')
        .collect();
    Some(number.trim_end_matches('.').to_string())
}

/// Whether a generated answer equals the gold one as a number (or as text when not numeric).
pub fn answers_match(generated: Option<&str>, gold: &str) -> bool {
    let Some(g) = generated else { return false };
    match (
        g.parse::<f64>(),
        gold.trim().replace(',', "").parse::<f64>(),
    ) {
        (Ok(a), Ok(b)) => (a - b).abs() < 1e-9,
        _ => g.trim() == gold.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_final_number() {
        assert_eq!(extract_answer("so 3*4=12\n#### 12").as_deref(), Some("12"));
        assert_eq!(
            extract_answer("The answer is 1,250.").as_deref(),
            Some("1250")
        );
        assert_eq!(extract_answer("#### -7 apples").as_deref(), Some("-7"));
        assert_eq!(extract_answer("no number here"), None);
        assert!(answers_match(Some("12.0"), "12"));
        assert!(!answers_match(Some("13"), "12"));
        assert!(!answers_match(None, "12"));
    }

    #[test]
    fn result_segments_score_only_results() {
        let text = "5 mugs cost 5 * 10 = <<5*10=50>>50 dollars.\nSo 50 - 8 = 42 left.\n#### 42";
        let segments = result_segments(text);
        let joined: String = segments.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(joined, text);
        let scored: Vec<&str> = segments
            .iter()
            .filter(|(_, s)| *s)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(scored, ["50", "42", "42"]);
        assert!(result_segments("no equations here").iter().all(|(_, s)| !s));
        assert_eq!(result_segments("x = -1,250.5 =")[1].0, "-1,250.5");
    }

    #[test]
    fn generated_sets_are_seeded() {
        assert_eq!(generated_problems(5, 3), generated_problems(5, 3));
        assert_ne!(generated_problems(5, 3), generated_problems(6, 3));
    }
}
