//! The training loop: micro-batches with gradient accumulation, global-norm clipping, AdamW with a
//! warm-up schedule, periodic held-out loss, and stops on steps, tokens or wall-clock time.

use std::time::Instant;

use candle_core::{D, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::kernels::loss::token_nll;
use crate::models::llama::{Model, Pass};
use crate::train::backprop::{ScoredBatch, loss_and_grads};
use crate::train::data::{Example, batches};
use crate::train::optim::{AdamW, AdamWConfig, Schedule, clip_grad_norm};

/// Everything that shapes a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// AdamW hyper-parameters (its `lr` is the peak rate).
    pub optimizer: AdamWConfig,
    /// Decay after warm-up.
    pub schedule: Schedule,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Most padded tokens per micro-batch.
    pub batch_tokens: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Clip the global gradient norm to this (0 disables).
    pub max_grad_norm: f64,
    /// Passes over the data (ignored when a token budget is set: data repeats until it is spent).
    pub epochs: usize,
    /// Stop after this many optimizer steps.
    pub max_steps: Option<usize>,
    /// Stop once this many completion tokens have been trained on.
    pub token_budget: Option<usize>,
    /// Stop before starting a step once this many seconds have passed.
    pub time_budget_s: Option<f64>,
    /// Held-out loss every this many steps (and always at the end when there is held-out data).
    pub eval_every: Option<usize>,
    /// Seed of batching, dropout and anything else random.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: AdamWConfig::default(),
            schedule: Schedule::Cosine,
            warmup_steps: 0,
            batch_tokens: 2048,
            grad_accum: 1,
            max_grad_norm: 1.0,
            epochs: 1,
            max_steps: None,
            token_budget: None,
            time_budget_s: None,
            eval_every: None,
            seed: 0,
        }
    }
}

/// One optimizer step, as reported to progress callbacks and kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// 1-based step number.
    pub step: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean loss per completion token of the step.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Completion tokens trained on so far.
    pub tokens: usize,
    /// Seconds since training started.
    pub elapsed_s: f64,
    /// Planned number of steps (an estimate under token or time budgets).
    pub planned_steps: usize,
    /// Held-out loss, when measured at this step.
    pub val_loss: Option<f64>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Completion tokens trained on.
    pub tokens: usize,
    /// Mean training loss over the last (up to) 10 steps.
    pub train_loss: f64,
    /// Held-out loss before training.
    pub initial_val_loss: Option<f64>,
    /// Held-out loss at the end.
    pub val_loss: Option<f64>,
    /// Wall-clock seconds.
    pub wall_clock_s: f64,
    /// The seed.
    pub seed: u64,
    /// Why training stopped: `steps`, `epochs`, `tokens` or `time`.
    pub stopped_by: String,
    /// Every step.
    pub history: Vec<StepLog>,
}

/// Trains `params` of `model` on `train`, measuring loss on `val`.
///
/// ```
/// use assay_engine::train::{LoraConfig, TrainConfig, TrainRow, attach_lora, lora_parameters, tokenize_rows, train};
/// use assay_engine::{LoadOptions, ModelSource, load};
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-llama");
/// let mut lm = load(&ModelSource::HfFolder(dir), &LoadOptions::default())?;
/// let lora = LoraConfig { rank: 2, alpha: 4.0, ..Default::default() };
/// attach_lora(&mut lm.model, &lora, 7)?;
/// let rows = vec![TrainRow::Completion { prompt: "3 plus 4".into(), completion: " is 7".into() }];
/// let examples = tokenize_rows(&rows, &lm.tokenizer, false, 64, "inline")?;
/// let params = lora_parameters(&mut lm.model);
/// let config = TrainConfig { max_steps: Some(2), ..Default::default() };
/// let report = train(&lm.model, &params, &examples, &[], &config, |_| {})?;
/// assert_eq!(report.steps, 2);
/// # Ok::<(), assay_engine::EngineError>(())
/// ```
pub fn train(
    model: &Model,
    params: &[(String, Var)],
    train: &[Example],
    val: &[Example],
    config: &TrainConfig,
    mut on_step: impl FnMut(&StepLog),
) -> Result<TrainReport> {
    check_inputs(model, params, train, config)?;
    let start = Instant::now();
    let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
    let mut optimizer = AdamW::new(vars.clone(), config.optimizer)?;
    let epoch_steps = batches(train, config.batch_tokens, config.seed)
        .len()
        .div_ceil(config.grad_accum);
    let planned = planned_steps(config, epoch_steps, train);
    let initial_val_loss = mean_loss(model, val, config.batch_tokens)?;
    let mut history: Vec<StepLog> = Vec::new();
    let mut tokens = 0usize;
    let mut epoch = 0u64;
    let mut queue: Vec<Vec<usize>> = Vec::new();
    let stopped_by = loop {
        if let Some(reason) = stop_reason(config, history.len(), tokens, start, epoch, &queue) {
            break reason;
        }
        if queue.is_empty() {
            queue = batches(train, config.batch_tokens, config.seed.wrapping_add(epoch));
            queue.reverse();
            epoch += 1;
        }
        let micro: Vec<Vec<usize>> = (0..config.grad_accum).filter_map(|_| queue.pop()).collect();
        let step = history.len();
        let lr = config
            .schedule
            .lr(config.optimizer.lr, step, config.warmup_steps, planned);
        let (loss, step_tokens, mut grads) = accumulate(model, &vars, train, &micro)?;
        let grad_norm = clip_grad_norm(&mut grads, config.max_grad_norm)?;
        optimizer.step(&grads, lr)?;
        tokens += step_tokens;
        let log = StepLog {
            step: step + 1,
            lr,
            loss,
            grad_norm,
            tokens,
            elapsed_s: start.elapsed().as_secs_f64(),
            planned_steps: planned,
            val_loss: match config.eval_every {
                Some(every) if every > 0 && (step + 1).is_multiple_of(every) => {
                    mean_loss(model, val, config.batch_tokens)?
                }
                _ => None,
            },
        };
        on_step(&log);
        history.push(log);
    };
    let val_loss = mean_loss(model, val, config.batch_tokens)?;
    let recent = &history[history.len().saturating_sub(10)..];
    Ok(TrainReport {
        steps: history.len(),
        tokens,
        train_loss: recent.iter().map(|s| s.loss).sum::<f64>() / recent.len().max(1) as f64,
        initial_val_loss,
        val_loss,
        wall_clock_s: start.elapsed().as_secs_f64(),
        seed: config.seed,
        stopped_by,
        history,
    })
}

fn check_inputs(
    model: &Model,
    params: &[(String, Var)],
    train: &[Example],
    config: &TrainConfig,
) -> Result<()> {
    if params.is_empty() {
        return Err(EngineError::Request(
            "nothing to train: attach LoRA adapters or make the model trainable".into(),
        ));
    }
    if train.is_empty() {
        return Err(EngineError::Request("no training examples".into()));
    }
    if config.grad_accum == 0 || config.batch_tokens == 0 {
        return Err(EngineError::Request(
            "grad_accum and batch_tokens must be at least 1".into(),
        ));
    }
    let ctx = model.config().max_position_embeddings;
    if let Some(e) = train.iter().find(|e| e.tokens.len() > ctx) {
        return Err(EngineError::Request(format!(
            "an example of {} tokens exceeds the context of {ctx}",
            e.tokens.len()
        )));
    }
    Ok(())
}

fn planned_steps(config: &TrainConfig, epoch_steps: usize, train: &[Example]) -> usize {
    if let Some(max) = config.max_steps {
        return max;
    }
    if let Some(budget) = config.token_budget {
        let per_epoch: usize = train.iter().map(Example::target_count).sum();
        return (budget as f64 / per_epoch.max(1) as f64 * epoch_steps as f64).ceil() as usize;
    }
    epoch_steps * config.epochs.max(1)
}

fn stop_reason(
    config: &TrainConfig,
    steps: usize,
    tokens: usize,
    start: Instant,
    epochs_started: u64,
    queue: &[Vec<usize>],
) -> Option<String> {
    if config.max_steps.is_some_and(|m| steps >= m) {
        return Some("steps".into());
    }
    if config.token_budget.is_some_and(|b| tokens >= b) {
        return Some("tokens".into());
    }
    if config
        .time_budget_s
        .is_some_and(|t| start.elapsed().as_secs_f64() >= t)
    {
        return Some("time".into());
    }
    let epochs_done = queue.is_empty() && epochs_started >= config.epochs.max(1) as u64;
    (config.token_budget.is_none() && config.max_steps.is_none() && epochs_done)
        .then(|| "epochs".into())
}

/// Forward and backward over the micro-batches of one step; gradients summed so that the step's
/// loss is the mean over all its completion tokens.
fn accumulate(
    model: &Model,
    vars: &[Var],
    train: &[Example],
    micro: &[Vec<usize>],
) -> Result<(f64, usize, Vec<Option<Tensor>>)> {
    let step_tokens: usize = micro
        .iter()
        .flatten()
        .map(|&i| train[i].target_count())
        .sum();
    let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
    let mut total_nll = 0.0;
    for batch in micro {
        let examples: Vec<&Example> = batch.iter().map(|&i| &train[i]).collect();
        let scored = ScoredBatch::new(&examples, model.device())?;
        let (nll, store) = loss_and_grads(model, &scored, step_tokens as f64)?;
        total_nll += nll.to_scalar::<f32>()? as f64;
        for (slot, var) in grads.iter_mut().zip(vars) {
            if let Some(g) = store.get(var.as_tensor()) {
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + g)?,
                    None => g.clone(),
                });
            }
        }
    }
    Ok((total_nll / step_tokens.max(1) as f64, step_tokens, grads))
}

/// Sum of completion-token negative log-likelihoods divided by `denominator`, as a scalar tensor,
/// and the plain sum, through [`Model::hidden_states`] in `pass` (differentiable by candle's
/// autograd in a training pass; the trainer itself uses [`loss_and_grads`]). Logits are computed
/// only at positions that predict a completion token.
pub fn batch_loss(
    model: &Model,
    examples: &[&Example],
    denominator: f64,
    pass: Pass,
) -> Result<(Tensor, f64)> {
    let batch = ScoredBatch::new(examples, model.device())?;
    let (b, width) = batch.ids.dims2()?;
    let hidden = model.hidden_states(&batch.ids, pass)?;
    let h = hidden.dim(D::Minus1)?;
    let picked = hidden
        .reshape((b * width, h))?
        .index_select(&batch.positions, 0)?;
    // Logits stay in the model's dtype; the loss reads them in f32 without a log-softmax copy.
    let logits = model.raw_logits(&picked.unsqueeze(0)?)?.squeeze(0)?;
    let nll = token_nll(&logits, &batch.targets)?
        .narrow(1, 0, 1)?
        .sum_all()?;
    let sum = nll.to_scalar::<f32>()? as f64;
    Ok(((nll / denominator)?, sum))
}

/// Mean completion-token loss over `examples` (None when there are none), without gradients.
pub fn mean_loss(model: &Model, examples: &[Example], batch_tokens: usize) -> Result<Option<f64>> {
    if examples.is_empty() {
        return Ok(None);
    }
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].tokens.len());
    let (mut nll, mut count) = (0.0, 0usize);
    let mut start = 0;
    while start < order.len() {
        let longest = examples[order[(start + 1).min(order.len()) - 1]]
            .tokens
            .len();
        let mut end = start + 1;
        while end < order.len()
            && examples[order[end]].tokens.len() * (end - start + 1) <= batch_tokens.max(longest)
        {
            end += 1;
        }
        let batch: Vec<&Example> = order[start..end].iter().map(|&i| &examples[i]).collect();
        let (_, sum) = batch_loss(model, &batch, 1.0, Pass::Inference)?;
        nll += sum;
        count += batch.iter().map(|e| e.target_count()).sum::<usize>();
        start = end;
    }
    Ok(Some(nll / count.max(1) as f64))
}
