//! The seed's two functions, done for real: [`forward_pass`] (batched greedy generation) and
//! [`validate_and_score`] (LoRA fine-tune on a miner's rows, then the held-out improvement).

use assay_engine::train::{
    LoraConfig, TrainConfig, TrainReport, TrainRow, attach_lora, detach_lora, lora_parameters,
    tokenize_rows, train,
};
use assay_engine::{BatchLimits, ChatMessage, GenerateOptions, LoadedModel, SamplingParams};
use assay_eval::text::recall::word_recall;
use serde::{Deserialize, Serialize};

use crate::error::DatacompError;
use crate::round::RoundConfig;
use crate::task::{
    Problem, answers_match, extract_answer, result_segments, target_text, user_turn,
};

/// How models are evaluated on the held-out problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Greedy tokens per answer.
    pub max_new_tokens: usize,
    /// Sequences decoded together.
    pub batch_rows: usize,
    /// Whether to generate answers (accuracy, word recall) besides the reference loss.
    pub generate: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 96,
            batch_rows: 16,
            generate: true,
        }
    }
}

/// One held-out problem's result for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemResult {
    /// The problem.
    pub id: String,
    /// Mean negative log-likelihood per token of the gold solution.
    pub reference_loss: f64,
    /// Mean negative log-likelihood per token of the gold solution's results only (each
    /// equation's result and the final answer), with the gold reasoning as context.
    pub answer_loss: f64,
    /// The greedy generation (empty when generation is off).
    pub generation: String,
    /// The answer read from the generation.
    pub predicted: Option<String>,
    /// Whether it equals the gold answer.
    pub correct: bool,
    /// The seed's naive overlap: share of the gold answer's words found in the generation.
    pub word_recall: f64,
}

/// A model's held-out results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEval {
    /// Mean over problems of the gold solution's per-token loss (lower is better).
    pub reference_loss: f64,
    /// Mean over problems of the loss on the gold results only (lower is better).
    pub answer_loss: f64,
    /// Share of problems answered correctly.
    pub accuracy: f64,
    /// Mean word recall of the final answers.
    pub word_recall: f64,
    /// Per problem.
    pub problems: Vec<ProblemResult>,
}

/// Renders the chat prompt of a question.
fn chat_prompt(model: &LoadedModel, user: &str) -> Result<String, DatacompError> {
    Ok(model
        .tokenizer
        .apply_chat_template(&[ChatMessage::new("user", user)], true)?)
}

/// Greedy answers to `prompts`, batched. With `chain_of_thought` each prompt asks the model to
/// reason step by step before its `####` answer, as in training.
pub fn forward_pass(
    model: &LoadedModel,
    prompts: &[String],
    chain_of_thought: bool,
    options: &EvalOptions,
) -> Result<Vec<String>, DatacompError> {
    let ids = prompts
        .iter()
        .map(|p| {
            let user = if chain_of_thought {
                user_turn(p)
            } else {
                p.clone()
            };
            Ok(model.tokenizer.encode(&chat_prompt(model, &user)?, false)?)
        })
        .collect::<Result<Vec<_>, DatacompError>>()?;
    let params = SamplingParams {
        max_new_tokens: options.max_new_tokens,
        ..Default::default()
    };
    let opts = GenerateOptions {
        seed: 0,
        max_batch_rows: options.batch_rows,
    };
    let out = assay_engine::generate(&model.model, &model.tokenizer, &ids, &params, opts, |_| {})?;
    Ok(out
        .into_iter()
        .map(|mut samples| samples.remove(0).text)
        .collect())
}

/// Reference loss of every gold solution and, when enabled, greedy accuracy and word recall.
pub fn evaluate(
    model: &LoadedModel,
    problems: &[Problem],
    options: &EvalOptions,
) -> Result<ModelEval, DatacompError> {
    let eos = model.tokenizer.eos_token_ids.first().copied();
    let mut masks = Vec::with_capacity(problems.len());
    let pairs = problems
        .iter()
        .map(|p| {
            let prompt = model
                .tokenizer
                .encode(&chat_prompt(model, &user_turn(&p.prompt))?, false)?;
            let mut target = Vec::new();
            let mut mask = Vec::new();
            for (text, scored) in
                result_segments(&target_text(&p.chain_of_thought, &p.final_answer))
            {
                let ids = model.tokenizer.encode(&text, false)?;
                mask.extend(std::iter::repeat_n(scored, ids.len()));
                target.extend(ids);
            }
            if let Some(eos) = eos {
                target.push(eos);
                mask.push(false);
            }
            masks.push(mask);
            Ok((prompt, target))
        })
        .collect::<Result<Vec<_>, DatacompError>>()?;
    let losses =
        assay_engine::score_completions(&model.model, &pairs, BatchLimits::default(), |_| {})?;
    let answer_losses: Vec<f64> = losses
        .iter()
        .zip(&masks)
        .map(|(loss, mask)| {
            let scored: Vec<f64> = loss
                .logprobs
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(lp, _)| -f64::from(*lp))
                .collect();
            if scored.is_empty() {
                loss.mean_nll
            } else {
                scored.iter().sum::<f64>() / scored.len() as f64
            }
        })
        .collect();
    let generations = if options.generate {
        let questions: Vec<String> = problems.iter().map(|p| p.prompt.clone()).collect();
        forward_pass(model, &questions, true, options)?
    } else {
        vec![String::new(); problems.len()]
    };
    let results: Vec<ProblemResult> = problems
        .iter()
        .zip(losses)
        .zip(answer_losses)
        .zip(generations)
        .map(|(((p, loss), answer_loss), generation)| {
            let predicted = extract_answer(&generation);
            ProblemResult {
                id: p.id.clone(),
                reference_loss: loss.mean_nll,
                answer_loss,
                correct: answers_match(predicted.as_deref(), &p.final_answer),
                word_recall: word_recall(&generation, &p.final_answer),
                predicted,
                generation,
            }
        })
        .collect();
    let n = results.len().max(1) as f64;
    Ok(ModelEval {
        reference_loss: results.iter().map(|r| r.reference_loss).sum::<f64>() / n,
        answer_loss: results.iter().map(|r| r.answer_loss).sum::<f64>() / n,
        accuracy: results.iter().filter(|r| r.correct).count() as f64 / n,
        word_recall: results.iter().map(|r| r.word_recall).sum::<f64>() / n,
        problems: results,
    })
}

/// A miner's data row once it passed the integrity checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CotRow {
    /// The question.
    pub prompt: String,
    /// The reasoning.
    pub chain_of_thought: String,
    /// The answer.
    pub final_answer: String,
}

/// How much each held-out measure counts in the combined improvement Δ (see
/// [`crate::report::SCORE_FORMULA`]).
///
/// The defaults count correctness only: accuracy, and the loss on the gold *results* (equation
/// results and the final answer). The whole-solution reference loss and word recall are reported
/// but weigh 0: measured on graded rounds, the reference loss rewards imitating the evaluation
/// set's phrasing (wrong data in its house style beat correct data in another style).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreWeights {
    /// Per nat/token of answer-loss decrease.
    pub answer_loss: f64,
    /// Per nat/token of reference-loss decrease.
    pub reference_loss: f64,
    /// Per unit of accuracy gained (1.0 = from 0% to 100%).
    pub accuracy: f64,
    /// Per unit of mean word recall gained.
    pub word_recall: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            answer_loss: 1.0,
            reference_loss: 0.0,
            accuracy: 1.0,
            word_recall: 0.0,
        }
    }
}

/// How one miner's fine-tune compares with the base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    /// Base answer loss minus the fine-tune's (positive is better).
    pub answer_loss: f64,
    /// Base reference loss minus the fine-tune's (positive is better).
    pub reference_loss: f64,
    /// Accuracy gained.
    pub accuracy: f64,
    /// Word recall gained.
    pub word_recall: f64,
    /// The weighted sum, before penalties.
    pub combined: f64,
}

/// Everything [`validate_and_score`] measured for one miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerScore {
    /// Steps, tokens and losses of the fine-tune.
    pub training: TrainReport,
    /// The fine-tuned model's held-out results.
    pub eval: ModelEval,
    /// The improvement over the base.
    pub improvement: Improvement,
}

/// The fine-tune every miner gets: same adapters, seed and token budget for all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingPlan {
    /// Which projections get adapters.
    pub lora: LoraConfig,
    /// Optimizer, schedule, budget and seed.
    pub train: TrainConfig,
    /// Longest training row in tokens.
    pub max_len: usize,
}

/// Fine-tunes `model` on `rows` with the round's adapters and budget, evaluates it on `problems`,
/// compares with `base`, and removes the adapters again. `after_training` sees the adapted model
/// (to save the adapter, for instance) before they are removed.
pub fn validate_and_score(
    model: &mut LoadedModel,
    rows: &[CotRow],
    problems: &[Problem],
    base: &ModelEval,
    config: &RoundConfig,
    after_training: impl FnOnce(&mut LoadedModel) -> Result<(), DatacompError>,
) -> Result<MinerScore, DatacompError> {
    let (plan, options) = (&config.plan, &config.eval);
    let train_rows: Vec<TrainRow> = rows
        .iter()
        .map(|r| TrainRow::Completion {
            prompt: user_turn(&r.prompt),
            completion: target_text(&r.chain_of_thought, &r.final_answer),
        })
        .collect();
    let examples = tokenize_rows(
        &train_rows,
        &model.tokenizer,
        true,
        plan.max_len,
        "kept rows",
    )?;
    attach_lora(&mut model.model, &plan.lora, plan.train.seed)?;
    let result = (|| {
        let params = lora_parameters(&mut model.model);
        let training = train(&model.model, &params, &examples, &[], &plan.train, |_| {})?;
        let eval = evaluate(model, problems, options)?;
        after_training(model)?;
        Ok::<_, DatacompError>((training, eval))
    })();
    detach_lora(&mut model.model);
    let (training, eval) = result?;
    let improvement = improvement(base, &eval, &config.weights);
    Ok(MinerScore {
        training,
        eval,
        improvement,
    })
}

fn improvement(base: &ModelEval, tuned: &ModelEval, w: &ScoreWeights) -> Improvement {
    let answer_loss = base.answer_loss - tuned.answer_loss;
    let reference_loss = base.reference_loss - tuned.reference_loss;
    let accuracy = tuned.accuracy - base.accuracy;
    let word_recall = tuned.word_recall - base.word_recall;
    Improvement {
        combined: w.answer_loss * answer_loss
            + w.reference_loss * reference_loss
            + w.accuracy * accuracy
            + w.word_recall * word_recall,
        answer_loss,
        reference_loss,
        accuracy,
        word_recall,
    }
}
