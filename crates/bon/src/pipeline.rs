//! The best-of-N experiment: a greedy baseline, N samples per problem at one or more temperatures,
//! reward-model scores, and weighted / majority / naive selection over the first n samples.

use assay_engine::{
    ChatMessage, Completion, GenerateOptions, LoadedModel, SamplingParams, generate,
};
use assay_eval::math::select::{
    Aggregation, aggregate_scores, majority_vote, naive_best_of_n, symbolic_key, weighted_best_of_n,
};
use assay_eval::math::{extract_answer, math_equal};
use serde::{Deserialize, Serialize};

use crate::error::{BonError, Result};
use crate::prm::RewardModel;
use crate::problems::MathProblem;

/// search-and-learn's MATH system prompt (`Config.system_prompt`), sent as the system message.
pub const SYSTEM_PROMPT: &str = "Solve the following math problem efficiently and clearly:\n\n- For simple problems (2 steps or fewer):\nProvide a concise solution with minimal explanation.\n\n- For complex problems (3 steps or more):\nUse this step-by-step format:\n\n## Step 1: [Concise description]\n[Brief explanation and calculations]\n\n## Step 2: [Concise description]\n[Brief explanation and calculations]\n\n...\n\nRegardless of the approach, always conclude with:\n\nTherefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n\nWhere [answer] is just the final number or expression that solves the problem.";

/// Settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonConfig {
    /// System message (default [`SYSTEM_PROMPT`]).
    pub system_prompt: String,
    /// Samples per problem (the largest budget).
    pub n: usize,
    /// The main sampling temperature.
    pub temperature: f32,
    /// Further temperatures for the sweep (each sampled with `n`).
    pub sweep_temperatures: Vec<f32>,
    /// Nucleus threshold (1: off, as search-and-learn's default).
    pub top_p: f32,
    /// Most new tokens per solution.
    pub max_new_tokens: usize,
    /// Seed of the sampling streams.
    pub seed: u64,
    /// How step rewards become one score.
    pub aggregation: Aggregation,
    /// Sequences decoded together.
    pub batch_rows: usize,
    /// Sequences scored together by the reward model.
    pub prm_batch: usize,
}

impl Default for BonConfig {
    /// search-and-learn's best-of-N defaults where they exist (the MATH system prompt, T = 0.8,
    /// top-p 1, `last` aggregation), the take-home's N = 16, and budgets sized for a CPU.
    fn default() -> Self {
        Self {
            system_prompt: SYSTEM_PROMPT.into(),
            n: 16,
            temperature: 0.8,
            sweep_temperatures: Vec::new(),
            top_p: 1.0,
            max_new_tokens: 512,
            seed: 0,
            aggregation: Aggregation::Last,
            batch_rows: 32,
            prm_batch: 8,
        }
    }
}

/// One solution with its answer, grade and rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The generated text.
    pub text: String,
    /// Extracted, normalised answer.
    pub pred: String,
    /// Whether `pred` equals the gold answer.
    pub correct: bool,
    /// Reward per step.
    pub step_scores: Vec<f64>,
    /// Aggregated reward.
    pub score: f64,
    /// Generated tokens.
    pub tokens: usize,
}

/// The answer a rule picked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Index of the chosen sample.
    pub index: usize,
    /// Its answer.
    pub pred: String,
    /// Whether it is right.
    pub correct: bool,
}

/// The three rules' picks over the first n samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selections {
    /// Rewards summed per answer group.
    pub weighted: Selection,
    /// Most frequent answer.
    pub majority: Selection,
    /// Highest single reward.
    pub naive: Selection,
}

/// Accuracies (0-1) at one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Samples used.
    pub n: usize,
    /// Weighted best-of-n.
    pub weighted: f64,
    /// Majority vote.
    pub majority: f64,
    /// Naive best-of-n.
    pub naive: f64,
    /// Some sample among the first n is right (oracle upper bound).
    pub pass: f64,
}

/// All samples of one temperature, and its curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureRun {
    /// The temperature.
    pub temperature: f32,
    /// `samples[problem][k]`.
    pub samples: Vec<Vec<Sample>>,
    /// Selections over all n samples, per problem.
    pub selections: Vec<Selections>,
    /// Accuracy per budget.
    pub curve: Vec<CurvePoint>,
    /// Mean accuracy of single samples.
    pub sample_accuracy: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonReport {
    /// Settings.
    pub config: BonConfig,
    /// The problems, in the order used.
    pub problems: Vec<MathProblem>,
    /// Gold answer per problem (extracted from its solution).
    pub gold: Vec<String>,
    /// Greedy solution per problem.
    pub greedy: Vec<Sample>,
    /// Greedy accuracy.
    pub greedy_accuracy: f64,
    /// The main temperature first, then the sweep.
    pub runs: Vec<TemperatureRun>,
}

/// Progress of a run, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum Event {
    /// A model is being loaded (no count: a spinner).
    Loading {
        /// What is loaded, and from where.
        what: String,
    },
    /// A stage begins, with its number of units.
    Stage {
        /// What is being done.
        name: String,
        /// Units of work (tokens or sequences).
        total: u64,
    },
    /// Units done.
    Advance(u64),
}

/// Budgets 1, 2, 4, ... up to `n`, and `n` itself.
pub fn budgets(n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k <= n)
        .collect();
    if out.last() != Some(&n) && n > 0 {
        out.push(n);
    }
    out
}

/// The chat prompt of a problem: the system prompt (search-and-learn's by default) and the problem as
/// the user turn.
pub fn chat_prompt(model: &LoadedModel, system: &str, problem: &str) -> Result<Vec<u32>> {
    let messages = [
        ChatMessage::new("system", system),
        ChatMessage::new("user", problem),
    ];
    let text = model.tokenizer.apply_chat_template(&messages, true)?;
    Ok(model.tokenizer.encode(&text, false)?)
}

/// Runs the whole experiment.
pub fn run(
    generator: &LoadedModel,
    prm: &RewardModel,
    problems: &[MathProblem],
    config: &BonConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<BonReport> {
    if config.n == 0 || problems.is_empty() {
        return Err(BonError::Input(
            "need at least one problem and n >= 1".into(),
        ));
    }
    let prompts = problems
        .iter()
        .map(|p| chat_prompt(generator, &config.system_prompt, &p.problem))
        .collect::<Result<Vec<_>>>()?;
    let gold: Vec<String> = problems
        .iter()
        .map(|p| extract_answer(&p.solution))
        .collect();
    let greedy_raw = sample(generator, &prompts, config, 0.0, 1, progress)?;
    let greedy: Vec<Sample> = score_all(prm, problems, &gold, greedy_raw, config, progress)?
        .into_iter()
        .map(|mut s| s.remove(0))
        .collect();
    let greedy_accuracy = mean(greedy.iter().map(|s| s.correct));
    let mut runs = Vec::new();
    let mut temperatures = vec![config.temperature];
    temperatures.extend(
        config
            .sweep_temperatures
            .iter()
            .filter(|&&t| t != config.temperature),
    );
    for t in temperatures {
        let raw = sample(generator, &prompts, config, t, config.n, progress)?;
        let samples = score_all(prm, problems, &gold, raw, config, progress)?;
        runs.push(evaluate(t, samples, &gold, config.n)?);
    }
    Ok(BonReport {
        config: config.clone(),
        problems: problems.to_vec(),
        gold,
        greedy,
        greedy_accuracy,
        runs,
    })
}

fn sample(
    generator: &LoadedModel,
    prompts: &[Vec<u32>],
    config: &BonConfig,
    temperature: f32,
    n: usize,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<Vec<Completion>>> {
    let name = if temperature == 0.0 {
        "greedy baseline".to_string()
    } else {
        format!("sampling n={n} at T={temperature}")
    };
    let total = (prompts.len() * n * config.max_new_tokens) as u64;
    progress(Event::Stage { name, total });
    let params = SamplingParams {
        temperature,
        top_p: config.top_p,
        max_new_tokens: config.max_new_tokens,
        n,
        ..SamplingParams::default()
    };
    let options = GenerateOptions {
        seed: config.seed,
        max_batch_rows: config.batch_rows,
    };
    let out = generate(
        &generator.model,
        &generator.tokenizer,
        prompts,
        &params,
        options,
        |k| progress(Event::Advance(k as u64)),
    )?;
    Ok(out)
}

/// Grades and scores every completion.
fn score_all(
    prm: &RewardModel,
    problems: &[MathProblem],
    gold: &[String],
    completions: Vec<Vec<Completion>>,
    config: &BonConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<Vec<Sample>>> {
    let total = completions.iter().map(Vec::len).sum::<usize>() as u64;
    progress(Event::Stage {
        name: "reward model".into(),
        total,
    });
    let mut out = Vec::with_capacity(problems.len());
    for ((problem, gold), group) in problems.iter().zip(gold).zip(completions) {
        let texts: Vec<String> = group.iter().map(|c| c.text.clone()).collect();
        let steps = prm.score(&problem.problem, &texts, config.prm_batch)?;
        let samples = group
            .into_iter()
            .zip(steps)
            .map(|(c, step_scores)| {
                // Every response has at least one step (one piece per line), so this never falls back.
                let score = aggregate_scores(&step_scores, config.aggregation).unwrap_or(0.0);
                graded(c, gold, step_scores, score)
            })
            .collect();
        progress(Event::Advance(texts.len() as u64));
        out.push(samples);
    }
    Ok(out)
}

fn graded(c: Completion, gold: &str, step_scores: Vec<f64>, score: f64) -> Sample {
    let pred = extract_answer(&c.text);
    Sample {
        correct: math_equal(&pred, gold),
        pred,
        step_scores,
        score,
        tokens: c.token_ids.len(),
        text: c.text,
    }
}

/// `config.n` samples per problem at `config.temperature`, graded but not scored (scores are 0).
pub fn sample_graded(
    generator: &LoadedModel,
    problems: &[MathProblem],
    config: &BonConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<Vec<Sample>>> {
    let prompts = problems
        .iter()
        .map(|p| chat_prompt(generator, &config.system_prompt, &p.problem))
        .collect::<Result<Vec<_>>>()?;
    let raw = sample(
        generator,
        &prompts,
        config,
        config.temperature,
        config.n,
        progress,
    )?;
    Ok(raw
        .into_iter()
        .zip(problems)
        .map(|(group, p)| {
            let gold = extract_answer(&p.solution);
            group
                .into_iter()
                .map(|c| graded(c, &gold, vec![], 0.0))
                .collect()
        })
        .collect())
}

/// The three rules over the first `n` samples.
pub fn select_first_n(samples: &[Sample], n: usize, gold: &str) -> Result<Selections> {
    let first = &samples[..n.min(samples.len())];
    let preds: Vec<&str> = first.iter().map(|s| s.pred.as_str()).collect();
    let scores: Vec<f64> = first.iter().map(|s| s.score).collect();
    let pick = |index: usize| Selection {
        index,
        pred: preds[index].to_string(),
        correct: math_equal(preds[index], gold),
    };
    Ok(Selections {
        weighted: pick(weighted_best_of_n(&preds, &scores, symbolic_key)?),
        majority: pick(majority_vote(&preds, symbolic_key)?),
        naive: pick(naive_best_of_n(&scores)?),
    })
}

/// Selections and the accuracy curve of one temperature's graded, scored samples
/// (`samples[problem][k]`, at least `n` per problem).
pub fn evaluate(
    temperature: f32,
    samples: Vec<Vec<Sample>>,
    gold: &[String],
    n: usize,
) -> Result<TemperatureRun> {
    let mut curve = Vec::new();
    for k in budgets(n) {
        let picks = samples
            .iter()
            .zip(gold)
            .map(|(s, g)| select_first_n(s, k, g))
            .collect::<Result<Vec<_>>>()?;
        curve.push(CurvePoint {
            n: k,
            weighted: mean(picks.iter().map(|p| p.weighted.correct)),
            majority: mean(picks.iter().map(|p| p.majority.correct)),
            naive: mean(picks.iter().map(|p| p.naive.correct)),
            pass: mean(samples.iter().map(|s| s[..k].iter().any(|x| x.correct))),
        });
    }
    let selections = samples
        .iter()
        .zip(gold)
        .map(|(s, g)| select_first_n(s, n, g))
        .collect::<Result<Vec<_>>>()?;
    let sample_accuracy = mean(samples.iter().flatten().map(|s| s.correct));
    Ok(TemperatureRun {
        temperature,
        samples,
        selections,
        curve,
        sample_accuracy,
    })
}

/// Fraction of `true`s (0 for none).
pub fn mean(flags: impl Iterator<Item = bool>) -> f64 {
    let (mut yes, mut all) = (0usize, 0usize);
    for f in flags {
        yes += f as usize;
        all += 1;
    }
    if all == 0 {
        0.0
    } else {
        yes as f64 / all as f64
    }
}
