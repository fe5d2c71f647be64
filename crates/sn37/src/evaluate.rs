//! Raw task scores of one model (finetuning `finetune/eval/method.py`); lower is better.

use assay_eval::ifeval::score::{SampleOutcome, if_eval_task_score};
use assay_eval::runner::{LanguageModel, mean_and_stderr};
use assay_eval::sn37::text_loss::text_loss;
use assay_eval::task_def::GenParams;

use crate::competition::Method;
use crate::data::TaskData;

/// SN37's generation budget for MULTIPLE_CHOICE.
pub const MULTIPLE_CHOICE_MAX_NEW_TOKENS: usize = 20;

/// SN37's generation budget for IF_EVAL.
pub const IF_EVAL_MAX_NEW_TOKENS: usize = 200;

/// Whether `method` can score `data`.
pub fn method_accepts(method: Method, data: &TaskData) -> bool {
    matches!(
        (method, data),
        (Method::ReferenceLoss, TaskData::ReferencePairs(_))
            | (Method::MultipleChoice, TaskData::MultipleChoice(_))
            | (Method::IfEval, TaskData::IfEval(_))
            | (Method::TextLoss, TaskData::Text(_))
    )
}

/// The raw score of `model` on one task. An error is what SN37 turns into `+inf`.
pub fn raw_task_score(
    method: Method,
    data: &TaskData,
    max_new_tokens: Option<usize>,
    model: &dyn LanguageModel,
) -> Result<f64, String> {
    match (method, data) {
        (Method::ReferenceLoss, TaskData::ReferencePairs(pairs)) => reference_loss(pairs, model),
        (Method::MultipleChoice, TaskData::MultipleChoice(rows)) => {
            let budget = max_new_tokens.unwrap_or(MULTIPLE_CHOICE_MAX_NEW_TOKENS);
            multiple_choice(rows, budget, model)
        }
        (Method::IfEval, TaskData::IfEval(samples)) => {
            let budget = max_new_tokens.unwrap_or(IF_EVAL_MAX_NEW_TOKENS);
            if_eval(samples, budget, model)
        }
        (Method::TextLoss, TaskData::Text(documents)) => {
            let tokens = model
                .token_lm()
                .ok_or("this model has no token-level interface for TEXT_LOSS")?;
            text_loss(tokens, documents).map_err(|e| e.to_string())
        }
        _ => Err(format!("method {method:?} cannot score this data source")),
    }
}

/// Mean over samples of each sample's mean reference-token NLL.
fn reference_loss(pairs: &[(String, String)], model: &dyn LanguageModel) -> Result<f64, String> {
    let losses = model.reference_loss(pairs).map_err(|e| e.to_string())?;
    if losses.len() != pairs.len() {
        return Err(format!(
            "{} losses for {} samples",
            losses.len(),
            pairs.len()
        ));
    }
    Ok(mean_and_stderr(&losses).0)
}

fn generate(
    prompts: Vec<String>,
    max_new_tokens: usize,
    model: &dyn LanguageModel,
) -> Result<Vec<String>, String> {
    let params = GenParams {
        until: Vec::new(),
        max_new_tokens,
    };
    let requests: Vec<(String, GenParams)> = prompts
        .into_iter()
        .map(|prompt| (prompt, params.clone()))
        .collect();
    let outputs = model.generate_until(&requests).map_err(|e| e.to_string())?;
    if outputs.len() != requests.len() {
        return Err(format!(
            "{} outputs for {} prompts",
            outputs.len(),
            requests.len()
        ));
    }
    Ok(outputs)
}

/// The first standalone word `A`, `B`, `C` or `D` of a generated answer (non-word
/// characters count as spaces, as SN37's `\W` substitution does).
pub fn first_choice_letter(text: &str) -> Option<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|word| matches!(*word, "A" | "B" | "C" | "D"))
}

/// Fraction of questions whose first answer letter is not the reference.
fn multiple_choice(
    rows: &[(String, String)],
    max_new_tokens: usize,
    model: &dyn LanguageModel,
) -> Result<f64, String> {
    let prompts = rows.iter().map(|(question, _)| question.clone()).collect();
    let outputs = generate(prompts, max_new_tokens, model)?;
    let wrong = outputs
        .iter()
        .zip(rows)
        .filter(|(output, (_, reference))| first_choice_letter(output) != Some(reference.as_str()))
        .count();
    Ok(wrong as f64 / rows.len().max(1) as f64)
}

/// SN37's IF_EVAL score from both responses of every sample.
fn if_eval(
    samples: &[assay_eval::ifeval::generate::IfEvalSample],
    max_new_tokens: usize,
    model: &dyn LanguageModel,
) -> Result<f64, String> {
    let prompts = samples
        .iter()
        .flat_map(|sample| sample.prompts.clone())
        .collect();
    let outputs = generate(prompts, max_new_tokens, model)?;
    let outcomes: Vec<SampleOutcome<'_>> = samples
        .iter()
        .zip(outputs.chunks(2))
        .map(|(sample, pair)| SampleOutcome {
            rules: &sample.rules,
            responses: Some([pair[0].as_str(), pair[1].as_str()]),
        })
        .collect();
    Ok(if_eval_task_score(&outcomes))
}
