//! The whole round as one call: check the inputs and outputs, load the model where it was asked to
//! run, score the round, and write every output into a fresh folder that is moved into place only
//! when complete (an interrupted round never leaves a mix of old and new files).

use std::path::{Path, PathBuf};

use assay_engine::train::{AdamWConfig, LoraConfig, Schedule, TrainConfig};
use assay_engine::{ModelSource, Placement};
use assay_integrity::policy::Policy;
use serde::{Deserialize, Serialize};

use crate::error::DatacompError;
use crate::round::{
    Manifest, RoundConfig, RoundEvent, RoundResults, StageTiming, default_policy, run_round,
};
use crate::score::{EvalOptions, ScoreWeights, TrainingPlan};
use crate::task::{Problem, generated_problems, read_problems};

/// Where the round's held-out problems come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSet {
    /// Generated fresh for the round. The seed is `seed` when given, else derived from
    /// `round.json` (its `block_hash`, else its `seed`); a round with neither is refused, so an
    /// evaluation set is never silently reused.
    Generated {
        /// An explicit seed (overrides round.json).
        seed: Option<u64>,
        /// Problems to generate.
        count: usize,
    },
    /// A JSONL or Parquet file of `{id?, prompt, chain_of_thought, final_answer}` rows.
    File(PathBuf),
}

/// Everything `assay datacomp run` needs, as plain data (the CLI, the service and Python fill it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundSettings {
    /// The base model: HF folder, .gguf, or `org/name` in the HF cache; `None` is the embedded
    /// SmolLM2-135M-Instruct.
    pub model: Option<String>,
    /// Where every fine-tune and evaluation runs, and in which dtype.
    pub placement: Placement,
    /// Folder with `round.json` and the miners' JSONL files.
    pub submissions: PathBuf,
    /// Output folder (created; replaced only with `overwrite`).
    pub out: PathBuf,
    /// The evaluation set.
    pub eval: EvalSet,
    /// Completion tokens each miner's fine-tune trains on.
    pub token_budget: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// LoRA rank.
    pub rank: usize,
    /// Adapt only the top N layers (0: all).
    pub top_layers: usize,
    /// Padded tokens per micro-batch.
    pub batch_tokens: usize,
    /// Greedy tokens per evaluation answer.
    pub max_new_tokens: usize,
    /// Whether to generate answers (accuracy) besides the losses.
    pub generate: bool,
    /// Integrity policy; `None` is [`default_policy`].
    pub policy: Option<Policy>,
    /// Training seed.
    pub seed: u64,
    /// Replace an output folder that already holds a finished round.
    pub overwrite: bool,
}

impl Default for RoundSettings {
    /// The CPU default of the README's main job: 8 generated problems, 128 new tokens (enough
    /// for the fine-tuned model to reach its `####` answer), top 2 layers, 1,200 tokens a miner.
    fn default() -> Self {
        Self {
            model: None,
            placement: Placement::cpu(),
            submissions: PathBuf::new(),
            out: PathBuf::new(),
            eval: EvalSet::Generated {
                seed: None,
                count: 8,
            },
            token_budget: 1200,
            lr: 3e-3,
            rank: 8,
            top_layers: 2,
            batch_tokens: 1024,
            max_new_tokens: 128,
            generate: true,
            policy: None,
            seed: 0,
            overwrite: false,
        }
    }
}

/// Runs a round from `settings` and writes `results.json`, `report.md`, `eval_set.jsonl`,
/// `timings.json`, `scores.svg/.png` and `adapters/<hotkey>/` into `settings.out`.
///
/// Inputs and the output folder are checked before any model work; the outputs are written into
/// a fresh sibling folder and moved into place when complete.
pub fn run(
    settings: &RoundSettings,
    mut on_event: impl FnMut(RoundEvent),
) -> Result<RoundResults, DatacompError> {
    // Everything that can be wrong with the inputs is found before the model loads.
    let manifest = Manifest::read(&settings.submissions)?;
    let (problems, eval_source) = eval_problems(&settings.eval, &manifest)?;
    let source = ModelSource::resolve(settings.model.as_deref())?;
    let staging = Staging::prepare(&settings.out, settings.overwrite)?;
    let options = settings.placement.load_options()?;
    on_event(RoundEvent::Loading {
        model: source.to_string(),
        placement: settings.placement.to_string(),
    });
    let mut timings = Vec::new();
    let mut model = StageTiming::record(&mut timings, "load", &options.device, || {
        assay_engine::load(&source, &options)
    })?;
    let config = round_config(settings, &model, eval_source);
    let results = run_round(
        &mut model,
        &settings.submissions,
        &problems,
        &config,
        Some(&staging.dir.join("adapters")),
        &mut timings,
        &mut on_event,
    )?;
    on_event(RoundEvent::Writing);
    crate::report::write_outputs(&staging.dir, &results, &problems, &timings)?;
    staging.commit()?;
    Ok(results)
}

/// One miner's fine-tune and evaluation within the round in `settings.submissions`, without
/// writing any file (the validator service's job per miner; `settings.out` is not used): the
/// integrity checks see the whole round, only `hotkey` is trained. The returned results hold
/// every miner's integrity outcome and `hotkey`'s score.
pub fn score_miner(
    settings: &RoundSettings,
    hotkey: &str,
    mut on_event: impl FnMut(RoundEvent),
) -> Result<RoundResults, DatacompError> {
    let manifest = Manifest::read(&settings.submissions)?;
    if !manifest.miners.iter().any(|m| m.hotkey == hotkey) {
        return Err(DatacompError::BadInput {
            what: settings
                .submissions
                .join("round.json")
                .display()
                .to_string(),
            message: format!("does not list the miner `{hotkey}` to score"),
        });
    }
    let (problems, eval_source) = eval_problems(&settings.eval, &manifest)?;
    let source = ModelSource::resolve(settings.model.as_deref())?;
    let options = settings.placement.load_options()?;
    on_event(RoundEvent::Loading {
        model: source.to_string(),
        placement: settings.placement.to_string(),
    });
    let mut model = assay_engine::load(&source, &options)?;
    let config = round_config(settings, &model, eval_source);
    crate::round::run_round_for(
        &mut model,
        &settings.submissions,
        &problems,
        &config,
        Some(hotkey),
        None,
        &mut Vec::new(),
        &mut on_event,
    )
}

/// The round's configuration from the settings and the loaded model.
fn round_config(
    settings: &RoundSettings,
    model: &assay_engine::LoadedModel,
    eval_source: String,
) -> RoundConfig {
    let layers = model.model.config().num_hidden_layers;
    let lora = LoraConfig {
        rank: settings.rank,
        alpha: 2.0 * settings.rank as f64,
        layers: (settings.top_layers > 0)
            .then(|| (layers.saturating_sub(settings.top_layers)..layers).collect()),
        ..Default::default()
    };
    let train = TrainConfig {
        optimizer: AdamWConfig {
            lr: settings.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
        schedule: Schedule::Constant,
        batch_tokens: settings.batch_tokens,
        token_budget: Some(settings.token_budget),
        seed: settings.seed,
        ..Default::default()
    };
    RoundConfig {
        base_model: settings
            .model
            .clone()
            .unwrap_or_else(|| "SmolLM2-135M-Instruct (embedded default)".into()),
        placement: settings.placement,
        plan: TrainingPlan {
            lora,
            train,
            max_len: 1024,
        },
        eval: EvalOptions {
            max_new_tokens: settings.max_new_tokens,
            batch_rows: 16,
            generate: settings.generate,
        },
        weights: ScoreWeights::default(),
        policy: settings.policy.clone().unwrap_or_else(default_policy),
        eval_source,
    }
}

/// The round's evaluation problems and a description of their source.
pub fn eval_problems(
    eval: &EvalSet,
    manifest: &Manifest,
) -> Result<(Vec<Problem>, String), DatacompError> {
    match eval {
        EvalSet::File(path) => Ok((read_problems(path)?, path.display().to_string())),
        EvalSet::Generated { count: 0, .. } => Err(DatacompError::BadInput {
            what: "evaluation set".into(),
            message: "asks for 0 problems; give at least 1".into(),
        }),
        EvalSet::Generated { seed, count } => {
            let (seed, from) = match (seed, manifest.eval_seed()) {
                (Some(s), _) => (*s, "given seed".to_string()),
                (None, Some(derived)) => derived,
                (None, None) => {
                    return Err(DatacompError::BadInput {
                        what: "evaluation set".into(),
                        message: "round.json has no `block_hash` or `seed` to derive a fresh \
                                  evaluation set from; add one (the block hash that closed the \
                                  round's commitments), or pass an explicit eval seed"
                            .into(),
                    });
                }
            };
            Ok((
                generated_problems(seed, *count),
                format!("seed:{seed}:{count} ({from})"),
            ))
        }
    }
}

/// A fresh folder beside the output folder that becomes it when the round is complete.
struct Staging {
    dir: PathBuf,
    out: PathBuf,
}

impl Staging {
    /// Checks the output folder and creates the staging folder (so an unwritable place fails
    /// before any work).
    fn prepare(out: &Path, overwrite: bool) -> Result<Self, DatacompError> {
        if out.join("results.json").exists() && !overwrite {
            return Err(DatacompError::OutputExists {
                path: out.to_path_buf(),
            });
        }
        if out.exists() && !out.is_dir() {
            return Err(DatacompError::BadInput {
                what: out.display().to_string(),
                message: "exists and is not a folder; choose another --out".into(),
            });
        }
        let name = out
            .file_name()
            .ok_or_else(|| DatacompError::BadInput {
                what: out.display().to_string(),
                message: "names no folder; give a folder path".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| DatacompError::write(&parent, e))?;
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| DatacompError::write(&dir, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| DatacompError::write(&dir, e))?;
        Ok(Self {
            dir,
            out: out.to_path_buf(),
        })
    }

    /// Moves the complete round into place (an older output folder is replaced).
    fn commit(self) -> Result<(), DatacompError> {
        if let Ok(file) = std::fs::File::open(&self.dir) {
            let _ = file.sync_all();
        }
        if self.out.exists() {
            let old = self.dir.with_extension("old");
            std::fs::rename(&self.out, &old).map_err(|e| DatacompError::write(&self.out, e))?;
            std::fs::rename(&self.dir, &self.out)
                .map_err(|e| DatacompError::write(&self.out, e))?;
            std::fs::remove_dir_all(&old).map_err(|e| DatacompError::write(&old, e))?;
        } else {
            std::fs::rename(&self.dir, &self.out)
                .map_err(|e| DatacompError::write(&self.out, e))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    /// A round that stopped early leaves no partial folder behind.
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
