//! `assay prm train`: fits a value head on a backbone from the backbone's own sampled solutions,
//! labelled by verified correctness.
//!
//! Every step position of a solution (Skywork's recipe) is labelled with the solution's outcome, the
//! "hard estimation" labelling of Math-Shepherd with one rollout: a wrong final answer marks every
//! step as not leading to the answer. Only the head is trained, on detached hidden states, so the
//! backbone runs once per solution and training itself is cheap. The loss is binary cross-entropy with
//! logits, each solution weighted so that both classes count equally and every solution counts the
//! same whatever its number of lines.
//!
//! Sampling and the backbone's features run on the backbone's device (the settings' placement);
//! the head itself, a logistic regression on f32 features, is fitted on the CPU so that the same
//! features give the same head bit for bit whatever the device.

use assay_engine::LoadedModel;
use assay_engine::train::optim::{AdamW, AdamWConfig};
use candle_core::{D, DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{BonError, Result};
use crate::pipeline::{self, BonConfig, Event, Sample};
use crate::prm::{RewardKind, RewardModel, ValueHead, probabilities};
use crate::problems::MathProblem;

/// Settings of a head-training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadTrainConfig {
    /// System message of the generation prompt.
    pub system_prompt: String,
    /// Samples per problem.
    pub n: usize,
    /// Sampling temperature.
    pub temperature: f32,
    /// Most new tokens per solution.
    pub max_new_tokens: usize,
    /// Seed of sampling and of the train/validation split.
    pub seed: u64,
    /// Full-batch optimisation steps.
    pub steps: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Fraction of problems kept for validation.
    pub validation_fraction: f64,
    /// Sequences decoded together.
    pub batch_rows: usize,
    /// Sequences run together through the backbone for features.
    pub feature_batch: usize,
    /// Where to write the labelled solutions (JSONL) before training, if anywhere.
    pub dump_solutions: Option<std::path::PathBuf>,
}

impl Default for HeadTrainConfig {
    /// The `assay prm train` defaults: 8 samples per problem at T = 0.8, 384 new tokens, 300
    /// full-batch AdamW steps at lr 1e-2, a quarter of the problems held out.
    fn default() -> Self {
        Self {
            system_prompt: pipeline::SYSTEM_PROMPT.into(),
            n: 8,
            temperature: 0.8,
            max_new_tokens: 384,
            seed: 0,
            steps: 300,
            lr: 1e-2,
            weight_decay: 0.01,
            validation_fraction: 0.25,
            batch_rows: 32,
            feature_batch: 8,
            dump_solutions: None,
        }
    }
}

/// What training saw and reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadTrainReport {
    /// Settings.
    pub config: HeadTrainConfig,
    /// Problems used for training / validation.
    pub train_problems: usize,
    /// Problems held out.
    pub validation_problems: usize,
    /// Correct and incorrect training solutions.
    pub train_correct: usize,
    /// Incorrect training solutions.
    pub train_incorrect: usize,
    /// Loss at the first and last step.
    pub loss_first: f64,
    /// Loss after the last step.
    pub loss_last: f64,
    /// Validation: area under the ROC curve of the last-step reward vs correctness (None: one class).
    pub validation_auc: Option<f64>,
    /// Validation: mean last-step reward of correct / incorrect solutions.
    pub validation_mean_correct: Option<f64>,
    /// Mean last-step reward of incorrect validation solutions.
    pub validation_mean_incorrect: Option<f64>,
}

/// Labelled solutions: `samples[problem][k]` with their text and grade.
pub type Labelled = Vec<Vec<Sample>>;

/// Samples solutions, labels them, extracts features and trains a head. Returns the reward model
/// (the backbone with the trained head), the report and the labelled solutions.
pub fn train_head(
    backbone: LoadedModel,
    problems: &[MathProblem],
    config: &HeadTrainConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<(RewardModel, HeadTrainReport, Labelled)> {
    if problems.len() < 2 {
        return Err(BonError::Input(
            "need at least 2 problems (train and validation)".into(),
        ));
    }
    let hidden = backbone.model.config().hidden_size;
    let zero = ValueHead {
        weight: Tensor::zeros(hidden, DType::F32, &Device::Cpu)?,
        bias: 0.0,
    };
    let mut prm = RewardModel::new(backbone, zero, RewardKind::Process)?;
    let labelled = sample_and_label(&prm, problems, config, progress)?;
    if let Some(dump) = &config.dump_solutions {
        write_solutions(dump, problems, &labelled)?;
    }
    let split = ((problems.len() as f64) * (1.0 - config.validation_fraction)).round() as usize;
    let split = split.clamp(1, problems.len() - 1);
    progress(Event::Stage {
        name: "features".into(),
        total: labelled.iter().map(Vec::len).sum::<usize>() as u64,
    });
    let features = features(&prm, problems, &labelled, config, progress)?;
    let (train_x, train_y, train_w) = design(&features[..split], &labelled[..split])?;
    progress(Event::Stage {
        name: "training the head".into(),
        total: config.steps as u64,
    });
    let (head, loss_first, loss_last) = fit(&train_x, &train_y, &train_w, config, progress)?;
    let (auc, mean_ok, mean_bad) = validate(&head, &features[split..], &labelled[split..])?;
    prm.head = head;
    let count = |ok: bool| {
        labelled[..split]
            .iter()
            .flatten()
            .filter(|s| s.correct == ok)
            .count()
    };
    let report = HeadTrainReport {
        config: config.clone(),
        train_problems: split,
        validation_problems: problems.len() - split,
        train_correct: count(true),
        train_incorrect: count(false),
        loss_first,
        loss_last,
        validation_auc: auc,
        validation_mean_correct: mean_ok,
        validation_mean_incorrect: mean_bad,
    };
    Ok((prm, report, labelled))
}

/// Writes `{unique_id, completion, answer, correct}` rows.
fn write_solutions(
    path: &std::path::Path,
    problems: &[MathProblem],
    labelled: &Labelled,
) -> Result<()> {
    let mut rows = Vec::new();
    for (p, samples) in problems.iter().zip(labelled) {
        for s in samples {
            let row = serde_json::json!({"unique_id": p.unique_id, "completion": s.text, "answer": s.pred, "correct": s.correct});
            if let serde_json::Value::Object(row) = row {
                rows.push(row);
            }
        }
    }
    Ok(assay_tables::write_jsonl(path, &rows)?)
}

fn sample_and_label(
    prm: &RewardModel,
    problems: &[MathProblem],
    config: &HeadTrainConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<Labelled> {
    // The best-of-N pipeline's sampling and grading, with the (still zero) head's scores unused.
    let bon = BonConfig {
        system_prompt: config.system_prompt.clone(),
        n: config.n,
        temperature: config.temperature,
        sweep_temperatures: vec![],
        top_p: 1.0,
        max_new_tokens: config.max_new_tokens,
        seed: config.seed,
        aggregation: assay_eval::math::select::Aggregation::Last,
        batch_rows: config.batch_rows,
        prm_batch: config.feature_batch,
    };
    pipeline::sample_graded(&prm.backbone, problems, &bon, progress)
}

fn features(
    prm: &RewardModel,
    problems: &[MathProblem],
    labelled: &Labelled,
    config: &HeadTrainConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<Vec<Tensor>>> {
    let mut out = Vec::with_capacity(problems.len());
    for (p, samples) in problems.iter().zip(labelled) {
        let inputs = samples
            .iter()
            .map(|s| prm.input(&p.problem, &s.text))
            .collect::<Result<Vec<_>>>()?;
        out.push(prm.features(&inputs, config.feature_batch)?);
        progress(Event::Advance(samples.len() as u64));
    }
    Ok(out)
}

/// Stacks step features `[N, H]`, labels `[N]` and weights `[N]` (class-balanced, per solution).
fn design(features: &[Vec<Tensor>], labelled: &[Vec<Sample>]) -> Result<(Tensor, Tensor, Tensor)> {
    let all: Vec<&Sample> = labelled.iter().flatten().collect();
    let positives = all.iter().filter(|s| s.correct).count();
    let negatives = all.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(BonError::Input(format!(
            "the training solutions are {positives} correct and {negatives} incorrect; both classes are needed \
             (more problems, more samples, or a higher temperature)"
        )));
    }
    let (mut xs, mut ys, mut ws) = (Vec::new(), Vec::new(), Vec::new());
    for (f, s) in features.iter().flatten().zip(all) {
        let steps = f.dim(0)?;
        let class = if s.correct { positives } else { negatives };
        let weight = 1.0 / (2.0 * class as f32 * steps as f32);
        xs.push(f.clone());
        ys.extend(std::iter::repeat_n(s.correct as u8 as f32, steps));
        ws.extend(std::iter::repeat_n(weight, steps));
    }
    let n = ys.len();
    Ok((
        Tensor::cat(&xs, 0)?,
        Tensor::from_vec(ys, n, &Device::Cpu)?,
        Tensor::from_vec(ws, n, &Device::Cpu)?,
    ))
}

/// Weighted BCE with logits, `sum w * (max(z,0) - z*y + log(1 + exp(-|z|)))`, stable for any z.
fn bce(z: &Tensor, y: &Tensor, w: &Tensor) -> Result<Tensor> {
    let per = ((z.relu()? - (z * y)?)? + ((z.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
    Ok((per * w)?.sum_all()?)
}

fn fit(
    x: &Tensor,
    y: &Tensor,
    w: &Tensor,
    config: &HeadTrainConfig,
    progress: &mut dyn FnMut(Event),
) -> Result<(ValueHead, f64, f64)> {
    let device = Device::Cpu;
    let x = x.to_device(&device)?;
    let hidden = x.dim(1)?;
    let weight = Var::zeros(hidden, DType::F32, &device)?;
    let bias = Var::zeros(1, DType::F32, &device)?;
    let mut optim = AdamW::new(
        vec![weight.clone(), bias.clone()],
        AdamWConfig {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..AdamWConfig::default()
        },
    )?;
    let (mut first, mut last) = (f64::NAN, f64::NAN);
    for step in 0..config.steps {
        let z = x
            .broadcast_mul(&weight.as_tensor().unsqueeze(0)?)?
            .sum(D::Minus1)?
            .broadcast_add(bias.as_tensor())?;
        let loss = bce(&z, y, w)?;
        let value = loss.to_scalar::<f32>()? as f64;
        if step == 0 {
            first = value;
        }
        last = value;
        let grads = loss.backward()?;
        let g = vec![grads.get(&weight).cloned(), grads.get(&bias).cloned()];
        optim.step(&g, config.lr)?;
        progress(Event::Advance(1));
    }
    let head = ValueHead {
        weight: weight.as_tensor().clone(),
        bias: bias.as_tensor().to_vec1::<f32>()?[0],
    };
    Ok((head, first, last))
}

type Validation = (Option<f64>, Option<f64>, Option<f64>);

/// AUC and class means of the last-step reward on held-out problems.
fn validate(
    head: &ValueHead,
    features: &[Vec<Tensor>],
    labelled: &[Vec<Sample>],
) -> Result<Validation> {
    let mut scored = Vec::new();
    for (f, s) in features.iter().flatten().zip(labelled.iter().flatten()) {
        let probs = probabilities(head, f)?;
        scored.push((*probs.last().unwrap_or(&0.5), s.correct));
    }
    let ok: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let bad: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Ok((auc(&ok, &bad), mean(&ok), mean(&bad)))
}

/// P(score of a random positive > score of a random negative), ties counting one half.
pub fn auc(positives: &[f64], negatives: &[f64]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in positives {
        for n in negatives {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (positives.len() * negatives.len()) as f64)
}
