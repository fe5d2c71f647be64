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

/// Reads an evaluation file of `{id?, prompt, chain_of_thought, final_answer}` JSONL rows.
pub fn read_problems(path: &Path) -> Result<Vec<Problem>, DatacompError> {
    #[derive(Deserialize)]
    struct Row {
        id: Option<String>,
        prompt: String,
        chain_of_thought: String,
        final_answer: String,
    }
    let text = std::fs::read_to_string(path).map_err(|e| DatacompError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Row = serde_json::from_str(line).map_err(|e| DatacompError::BadInput {
            what: format!("{}:{}", path.display(), i + 1),
            message: format!(
                "not an evaluation row ({e}); expected prompt, chain_of_thought, final_answer"
            ),
        })?;
        out.push(Problem {
            id: row.id.unwrap_or_else(|| format!("line-{}", i + 1)),
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
    fn generated_sets_are_seeded() {
        assert_eq!(generated_problems(5, 3), generated_problems(5, 3));
        assert_ne!(generated_problems(5, 3), generated_problems(6, 3));
    }
}
