//! The reference candidate: one invocation that fine-tunes a LoRA adapter on the training tickets,
//! saves it in PEFT format, and predicts an intent and a reply for every validation ticket.
//!
//! Intents are never free text: each candidate label seen in training is scored by its
//! log-likelihood after the ticket, and the most likely one wins (ties go to the first label in
//! sorted order). Replies are greedy, so a run is a pure function of the inputs and the seed.
//!
//! Time: training may use `train_share` of the budget (counted from the start, so model loading is
//! paid from it); intents are always predicted; replies stop being generated once the whole budget
//! is spent (those rows get an empty reply and the run log counts them).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use assay_engine::candle_core::DType;
use assay_engine::candle_core::Tensor;
use assay_engine::train::{
    AdamWConfig, Example, LoraConfig, Schedule, TrainConfig, TrainReport, attach_lora,
    lora_parameters, peft, train,
};
use assay_engine::{
    GenerateOptions, KvCache, Model, ModelSource, Placement, SamplingParams, generate, load,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{TrainTicket, ValTicket, read_rows};
use crate::error::{FtError, Result};
use crate::prompt::PromptFormat;
use crate::results::{Prediction, Results, TrainingSummary, check_writable, write_json};

/// The base model used when `--model` is not given (resolved by `ModelSource::resolve(None)`).
pub const DEFAULT_BASE: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

/// Everything that shapes a run (the settings of `assay ft-challenge run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Labelled training tickets (JSONL).
    pub train: PathBuf,
    /// Validation tickets (JSONL).
    pub val: PathBuf,
    /// Folder for the PEFT adapter.
    pub weights: PathBuf,
    /// Where to write `results.json`.
    pub output: PathBuf,
    /// Base model: a folder, a GGUF file or `org/name[@rev]` in the HF cache; None is SmolLM2.
    pub model: Option<String>,
    /// Where all model work (training, intent scoring, replies) runs, and in what dtype.
    #[serde(default)]
    pub placement: Placement,
    /// Seed of the adapter init, the hold-out split, batching and dropout.
    pub seed: u64,
    /// Wall-clock budget of the whole run, in seconds.
    pub budget_s: f64,
    /// Fraction of the budget, counted from the start, after which training stops.
    pub train_share: f64,
    /// Most optimizer steps.
    pub max_steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// LoRA rank.
    pub lora_rank: usize,
    /// LoRA alpha.
    pub lora_alpha: f64,
    /// Adapt only the top this-many layers (0: all layers).
    pub lora_layers: usize,
    /// Fraction of training rows held out to measure `val_loss` (never an intent's last row).
    pub holdout_fraction: f64,
    /// Most padded tokens per micro-batch.
    pub batch_tokens: usize,
    /// Longest generated reply, in tokens.
    pub max_new_tokens: usize,
}

impl RunConfig {
    /// A configuration with the default hyper-parameters for these files.
    pub fn new(train: PathBuf, val: PathBuf, weights: PathBuf, output: PathBuf) -> Self {
        Self {
            train,
            val,
            weights,
            output,
            model: None,
            placement: Placement::cpu(),
            seed: 0,
            budget_s: 1800.0,
            train_share: 0.6,
            max_steps: 60,
            lr: 3e-3,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_layers: 0,
            holdout_fraction: 0.1,
            batch_tokens: 2048,
            max_new_tokens: 64,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(FtError::Setting(m));
        if !(self.budget_s.is_finite() && self.budget_s > 0.0) {
            return bad(format!(
                "--budget-s is {}; give a positive number of seconds",
                self.budget_s
            ));
        }
        if !(self.train_share > 0.0 && self.train_share <= 1.0) {
            return bad(format!(
                "--train-share is {}; it must be in (0, 1]",
                self.train_share
            ));
        }
        if !(0.0..0.5).contains(&self.holdout_fraction) {
            return bad(format!(
                "--holdout is {}; it must be in [0, 0.5)",
                self.holdout_fraction
            ));
        }
        if self.max_steps == 0 || self.lora_rank == 0 || self.batch_tokens == 0 {
            return bad("--steps, --lora-rank and --batch-tokens must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr is {}; it must be a positive number", self.lr));
        }
        Ok(())
    }
}

/// Progress events, for progress bars.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A phase starts with this many units of work (0: unknown).
    Phase {
        /// Phase name.
        name: &'static str,
        /// Units of work.
        total: u64,
    },
    /// Units of work done in the current phase.
    Advance(u64),
    /// A line worth showing.
    Note(String),
}

/// How the run spent its time and what it decided (written beside the results as `*.run.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunLog {
    /// The settings.
    pub config: RunConfig,
    /// The base model as resolved.
    pub model: String,
    /// Candidate intents (sorted), as seen in training.
    pub intents: Vec<String>,
    /// Ids of training rows held out for `val_loss`.
    pub holdout_ids: Vec<String>,
    /// Seconds training was allowed.
    pub train_budget_s: f64,
    /// Why training stopped (`steps`, `time`, ...).
    pub stopped_by: String,
    /// Held-out loss before training.
    pub initial_val_loss: Option<f64>,
    /// Seconds per phase.
    pub seconds: PhaseSeconds,
    /// Validation rows left with an empty reply because the budget was spent.
    pub replies_skipped_for_budget: usize,
    /// The adapter's shape.
    pub lora: LoraConfig,
    /// The trainer's settings.
    pub trainer: TrainConfig,
}

/// Wall-clock seconds per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSeconds {
    /// Reading data and loading the model.
    pub load: f64,
    /// Training.
    pub train: f64,
    /// Saving and merging the adapter.
    pub save: f64,
    /// Scoring intents.
    pub intents: f64,
    /// Generating replies.
    pub replies: f64,
    /// Everything.
    pub total: f64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The results as written.
    pub results: Results,
    /// How the run went.
    pub log: RunLog,
    /// Where the log was written.
    pub log_path: PathBuf,
}

/// The run log's path: `results.json` -> `results.run.json`.
pub fn log_path_for(output: &Path) -> PathBuf {
    output.with_extension("run.json")
}

/// Trains, saves the adapter, predicts, and writes `results.json` and its run log.
pub fn run(config: &RunConfig, on_event: &mut dyn FnMut(RunEvent)) -> Result<RunOutcome> {
    config.validate()?;
    let start = Instant::now();
    let mut seconds = PhaseSeconds::default();
    let train_rows = read_rows::<TrainTicket>(&config.train)?.rows;
    let val_rows = read_rows::<ValTicket>(&config.val)?.rows;
    // Outputs are checked before the work, so an unwritable folder fails in a second, not after it.
    check_writable(&config.output)?;
    check_writable(&config.weights.join("adapter_config.json"))?;
    let options = config.placement.load_options()?;
    let source = ModelSource::resolve(config.model.as_deref())?;
    on_event(RunEvent::Note(format!(
        "loading {source} on {}",
        config.placement
    )));
    let mut lm = load(&source, &options)?;
    seconds.load = start.elapsed().as_secs_f64();

    let intents: Vec<String> = train_rows
        .iter()
        .map(|r| r.intent.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (fit_idx, holdout_idx) = split_holdout(&train_rows, config.holdout_fraction, config.seed);
    let lora = lora_config(config, lm.model.config().num_hidden_layers);
    attach_lora(&mut lm.model, &lora, config.seed)?;
    let train_budget_s =
        (config.budget_s * config.train_share - start.elapsed().as_secs_f64()).max(0.0);
    let trainer = trainer_config(config, train_budget_s);
    let report = {
        let format = PromptFormat::new(&lm.tokenizer);
        let ctx = lm.model.config().max_position_embeddings;
        let fit = examples(&format, &train_rows, &fit_idx, ctx, &config.train)?;
        let held = examples(&format, &train_rows, &holdout_idx, ctx, &config.train)?;
        let params = lora_parameters(&mut lm.model);
        on_event(RunEvent::Phase {
            name: "train",
            total: config.max_steps as u64,
        });
        train(&lm.model, &params, &fit, &held, &trainer, |_| {
            on_event(RunEvent::Advance(1))
        })?
    };
    seconds.train = report.wall_clock_s;

    let t = Instant::now();
    let base_name = peft_base_name(config.model.as_deref());
    peft::save_adapter(&mut lm.model, &lora, &base_name, &config.weights)?;
    // Inference runs on merged weights: same function, no adapter matmuls per token.
    peft::merge_adapters(&mut lm.model)?;
    seconds.save = t.elapsed().as_secs_f64();

    let format = PromptFormat::new(&lm.tokenizer);
    let predictor = Predictor {
        model: &lm.model,
        tokenizer: &lm.tokenizer,
        format: &format,
        config,
    };
    let t = Instant::now();
    let scored = predictor.intents(&val_rows, &intents, on_event)?;
    seconds.intents = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let deadline = config.budget_s;
    let replies = predictor.replies(
        &scored,
        &intents,
        || start.elapsed().as_secs_f64() >= deadline,
        on_event,
    )?;
    seconds.replies = t.elapsed().as_secs_f64();
    seconds.total = start.elapsed().as_secs_f64();

    let replies_skipped_for_budget = replies.iter().filter(|r| r.skipped).count();
    let results = assemble(&val_rows, &intents, &scored, &replies, &report);
    results.write(&config.output)?;
    let log = RunLog {
        config: config.clone(),
        model: source.to_string(),
        intents,
        holdout_ids: holdout_idx
            .iter()
            .map(|&i| train_rows[i].id.clone())
            .collect(),
        train_budget_s,
        stopped_by: report.stopped_by.clone(),
        initial_val_loss: report.initial_val_loss,
        seconds,
        replies_skipped_for_budget,
        lora,
        trainer,
    };
    let log_path = log_path_for(&config.output);
    write_json(&log_path, &log)?;
    Ok(RunOutcome {
        results,
        log,
        log_path,
    })
}

/// What the adapter's `base_model_name_or_path` says, so that PEFT's `AutoPeftModelForCausalLM`
/// can load the base: the hub id of the embedded default without `--model`; an existing folder or
/// file as an absolute path (a relative one would depend on the loader's working directory); a
/// cached `org/name@revision` as the hub id `org/name` (PEFT keeps the revision apart).
pub fn peft_base_name(model: Option<&str>) -> String {
    let Some(spec) = model else {
        return DEFAULT_BASE.to_string();
    };
    if Path::new(spec).exists() {
        return std::fs::canonicalize(spec)
            .map_or_else(|_| spec.to_string(), |p| p.display().to_string());
    }
    spec.split_once('@')
        .map_or(spec, |(repo, _)| repo)
        .to_string()
}

fn lora_config(config: &RunConfig, num_layers: usize) -> LoraConfig {
    let top = if config.lora_layers == 0 {
        num_layers
    } else {
        config.lora_layers.min(num_layers)
    };
    LoraConfig {
        rank: config.lora_rank,
        alpha: config.lora_alpha,
        layers: Some((num_layers - top..num_layers).collect()),
        ..Default::default()
    }
}

fn trainer_config(config: &RunConfig, time_budget_s: f64) -> TrainConfig {
    TrainConfig {
        optimizer: AdamWConfig {
            lr: config.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
        schedule: Schedule::Cosine,
        warmup_steps: 0,
        batch_tokens: config.batch_tokens,
        grad_accum: 1,
        max_grad_norm: 1.0,
        // Ignored with max_steps set: the data repeats until steps or time run out.
        epochs: 1,
        max_steps: Some(config.max_steps),
        token_budget: None,
        time_budget_s: Some(time_budget_s),
        eval_every: None,
        seed: config.seed,
    }
}

/// Picks about `fraction` of the rows, in a seeded order, to hold out, never taking an intent's
/// last remaining training row. Returns (training indices, held-out indices), both sorted.
pub fn split_holdout(rows: &[TrainTicket], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let want = (rows.len() as f64 * fraction).floor() as usize;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut left: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *left.entry(r.intent.as_str()).or_default() += 1;
    }
    let mut held = Vec::new();
    for i in order {
        if held.len() == want {
            break;
        }
        let count = left
            .get_mut(rows[i].intent.as_str())
            .expect("counted above");
        if *count >= 2 {
            *count -= 1;
            held.push(i);
        }
    }
    held.sort_unstable();
    let fit = (0..rows.len())
        .filter(|i| held.binary_search(i).is_err())
        .collect();
    (fit, held)
}

/// Tokenises the chosen rows; a row longer than the model's context is an error naming it.
fn examples(
    format: &PromptFormat,
    rows: &[TrainTicket],
    chosen: &[usize],
    ctx: usize,
    path: &Path,
) -> Result<Vec<Example>> {
    chosen
        .iter()
        .map(|&i| {
            let row = &rows[i];
            let prompt = format.prompt_ids(&row.ticket)?;
            let mut tokens = prompt.clone();
            tokens.extend(format.intent_ids(&row.intent)?);
            tokens.extend(format.reply_prefix_ids()?);
            tokens.extend(format.reply_ids(&row.ideal_reply)?);
            if tokens.len() > ctx {
                return Err(FtError::file(
                    path,
                    format!(
                        "row `{}`: {} tokens exceed the model's context of {ctx}; shorten it",
                        row.id,
                        tokens.len()
                    ),
                ));
            }
            Ok(Example {
                tokens,
                prompt_len: prompt.len(),
            })
        })
        .collect()
}

/// The intent chosen for one row and what it cost.
#[derive(Debug, Clone)]
struct ScoredRow {
    prompt: Vec<u32>,
    intent: usize,
    tokens: u64,
    millis: f64,
}

/// One generated reply.
#[derive(Debug, Clone)]
struct Reply {
    text: String,
    tokens: u64,
    millis: f64,
    skipped: bool,
}

struct Predictor<'a> {
    model: &'a Model,
    tokenizer: &'a assay_engine::TextTokenizer,
    format: &'a PromptFormat<'a>,
    config: &'a RunConfig,
}

/// Rows generated together (one KV-cached batch).
const REPLY_CHUNK: usize = 8;

impl Predictor<'_> {
    /// Scores every candidate intent after each ticket; the highest log-likelihood wins.
    fn intents(
        &self,
        rows: &[ValTicket],
        intents: &[String],
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Vec<ScoredRow>> {
        let candidates: Vec<Vec<u32>> = intents
            .iter()
            .map(|i| self.format.intent_ids(i))
            .collect::<Result<_>>()?;
        on_event(RunEvent::Phase {
            name: "intents",
            total: rows.len() as u64,
        });
        rows.iter()
            .map(|row| {
                let t = Instant::now();
                let prompt = self.format.prompt_ids(&row.ticket)?;
                let scores = score_labels(self.model, &prompt, &candidates)?;
                let intent = best_index(scores.into_iter());
                let tokens = (prompt.len() + candidates.iter().map(Vec::len).sum::<usize>()) as u64;
                on_event(RunEvent::Advance(1));
                Ok(ScoredRow {
                    prompt,
                    intent,
                    tokens,
                    millis: t.elapsed().as_secs_f64() * 1e3,
                })
            })
            .collect()
    }

    /// Greedy replies after each ticket and its predicted intent, in chunks, until the budget is spent.
    fn replies(
        &self,
        scored: &[ScoredRow],
        intents: &[String],
        over_budget: impl Fn() -> bool,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<Vec<Reply>> {
        let params = SamplingParams {
            temperature: 0.0,
            max_new_tokens: self.config.max_new_tokens,
            ..Default::default()
        };
        let options = GenerateOptions {
            seed: self.config.seed,
            max_batch_rows: REPLY_CHUNK,
        };
        let prefix = self.format.reply_prefix_ids()?;
        on_event(RunEvent::Phase {
            name: "replies",
            total: scored.len() as u64,
        });
        let mut out = Vec::with_capacity(scored.len());
        for chunk in scored.chunks(REPLY_CHUNK) {
            if over_budget() || self.config.max_new_tokens == 0 {
                out.extend(chunk.iter().map(|_| Reply {
                    text: String::new(),
                    tokens: 0,
                    millis: 0.0,
                    skipped: self.config.max_new_tokens > 0,
                }));
                continue;
            }
            let t = Instant::now();
            let prompts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|s| {
                    Ok([
                        s.prompt.as_slice(),
                        &self.format.intent_ids(&intents[s.intent])?,
                        &prefix,
                    ]
                    .concat())
                })
                .collect::<Result<_>>()?;
            let done = generate(
                self.model,
                self.tokenizer,
                &prompts,
                &params,
                options,
                |_| {},
            )?;
            let millis = t.elapsed().as_secs_f64() * 1e3 / chunk.len() as f64;
            for (prompt, samples) in prompts.iter().zip(done) {
                let sample = &samples[0];
                out.push(Reply {
                    text: self.format.decode(&sample.token_ids)?,
                    tokens: (prompt.len() + sample.token_ids.len()) as u64,
                    millis,
                    skipped: false,
                });
            }
            on_event(RunEvent::Advance(chunk.len() as u64));
        }
        Ok(out)
    }
}

/// Log-likelihood of each candidate label after `prompt`. The prompt is run once into a KV cache
/// that every candidate then extends, one token at a time, all candidates together; rows whose
/// label is already complete are fed a repeat of their last token, whose output is ignored.
pub fn score_labels(model: &Model, prompt: &[u32], candidates: &[Vec<u32>]) -> Result<Vec<f64>> {
    let longest = candidates.iter().map(Vec::len).max().unwrap_or(0);
    if prompt.is_empty() || candidates.iter().any(Vec::is_empty) {
        return Err(FtError::Setting(
            "intent scoring needs a prompt and non-empty labels".into(),
        ));
    }
    let device = model.device();
    let mut cache = KvCache::new(model.config().num_hidden_layers);
    cache.add_row(
        model.config(),
        prompt.len() + longest,
        model.dtype(),
        device,
    )?;
    let ids = Tensor::new(prompt, device)?.unsqueeze(0)?;
    let mut logits = model.forward_cached(&ids, &mut cache)?;
    for _ in 1..candidates.len() {
        cache.duplicate_row(0)?;
    }
    logits = logits
        .broadcast_as((candidates.len(), logits.dim(1)?))?
        .contiguous()?;
    let mut totals = vec![0.0f64; candidates.len()];
    for step in 0..longest {
        // Scores are summed in f64 on the host whatever the model's dtype.
        let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        for (k, label) in candidates.iter().enumerate() {
            if let Some(&token) = label.get(step) {
                totals[k] += log_softmax_at(&rows[k], token as usize);
            }
        }
        if step + 1 == longest {
            break;
        }
        let next: Vec<u32> = candidates
            .iter()
            .map(|l| l[step.min(l.len() - 1)])
            .collect();
        let ids = Tensor::new(next.as_slice(), device)?.unsqueeze(1)?;
        logits = model.forward_cached(&ids, &mut cache)?;
    }
    Ok(totals)
}

/// `log softmax(logits)[index]`, in f64 for a stable sum.
fn log_softmax_at(logits: &[f32], index: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    logits[index] as f64 - max - sum.ln()
}

/// Index of the largest value; the first one on ties, so the choice never depends on float noise
/// in ordering.
fn best_index(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

fn assemble(
    val: &[ValTicket],
    intents: &[String],
    scored: &[ScoredRow],
    replies: &[Reply],
    report: &TrainReport,
) -> Results {
    let predictions = val
        .iter()
        .zip(scored.iter().zip(replies))
        .map(|(row, (s, r))| Prediction {
            id: row.id.clone(),
            prediction: r.text.clone(),
            predicted_intent: intents[s.intent].clone(),
            latency_ms: (s.millis + r.millis).round() as u64,
            tokens_used: s.tokens + r.tokens,
        })
        .collect();
    Results {
        training: TrainingSummary {
            steps: report.steps,
            train_loss: (report.steps > 0 && report.train_loss.is_finite())
                .then_some(report.train_loss),
            val_loss: report.val_loss.filter(|v| v.is_finite()),
            wall_clock_s: report.wall_clock_s,
        },
        predictions,
    }
}
