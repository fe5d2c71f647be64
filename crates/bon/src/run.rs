//! The entry points every front end calls (the CLI, the validator service, Python): plain settings
//! in, progress as [`Event`]s, files written here.
//!
//! - [`run`]: best-of-N (`assay bon`): loads the generator and the reward model on the settings'
//!   placement, runs [`pipeline::run`] and writes the dataset folder ([`crate::output::write_all`]);
//! - [`train_prm`]: trains a value head (`assay prm train`) and writes a reward-model folder;
//! - [`score_pairs`]: step rewards of (problem, response) rows (`assay prm score`).
//!
//! Inputs and the output folder are checked before any model is loaded.

use std::path::{Path, PathBuf};

use assay_engine::{LoadOptions, ModelSource, Placement, load};
use serde::{Deserialize, Serialize};

use crate::error::{BonError, Result};
use crate::output::{Provenance, write_all};
use crate::pipeline::{self, BonConfig, BonReport, Event};
use crate::prm::{HEAD_FILE, PRM_MANIFEST, PrmManifest, RewardKind, RewardModel};
use crate::problems::{ProblemSettings, to_row};
use crate::train::{HeadTrainConfig, HeadTrainReport, train_head};

/// What the generator is called in reports when none is named (the engine's embedded default).
pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct (default)";

/// Settings of a best-of-N run (`assay bon`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BonSettings {
    /// Generator: a model folder, a `.gguf` file or `org/name[@rev]` in the HF cache; `None`: the
    /// embedded default (SmolLM2-135M-Instruct).
    pub model: Option<String>,
    /// Reward model: a Skywork-layout folder, a HF cache id, or a `prm.json` folder from
    /// [`train_prm`].
    pub prm: String,
    /// Read rewards per step or once at the end; `None`: the reward model's own kind.
    pub prm_kind: Option<RewardKind>,
    /// Which problems.
    pub problems: ProblemSettings,
    /// Sampling, scoring and selection.
    pub sampling: BonConfig,
    /// Where both models run, and in what dtype.
    pub placement: Placement,
    /// Output folder (dataset, plots, analysis, `results.json`).
    pub out: PathBuf,
    /// The command line, recorded in the dataset card (empty: not recorded).
    #[serde(default)]
    pub command: String,
}

impl BonSettings {
    /// Default sampling and problems for this reward model and output folder.
    pub fn new(prm: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        Self {
            model: None,
            prm: prm.into(),
            prm_kind: None,
            problems: ProblemSettings::default(),
            sampling: BonConfig::default(),
            placement: Placement::cpu(),
            out: out.into(),
            command: String::new(),
        }
    }
}

/// Runs best-of-N end to end and writes the output folder; returns the report.
pub fn run(settings: &BonSettings, mut on_event: impl FnMut(Event)) -> Result<BonReport> {
    prepare_output_dir(&settings.out)?;
    let (problems, described) = settings.problems.load()?;
    let options = settings.placement.load_options()?;
    let generator = load_model(
        settings.model.as_deref(),
        &options,
        "generator",
        &settings.placement,
        &mut on_event,
    )?;
    on_event(Event::Loading {
        what: format!("reward model {} on {}", settings.prm, settings.placement),
    });
    let prm = RewardModel::load(&settings.prm, settings.prm_kind, &options)?;
    let report = pipeline::run(
        &generator,
        &prm,
        &problems,
        &settings.sampling,
        &mut on_event,
    )?;
    let provenance = Provenance {
        generator: settings
            .model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL_NAME.into()),
        prm: settings.prm.clone(),
        problems: described,
        command: settings.command.clone(),
        placement: settings.placement.to_string(),
    };
    write_all(&settings.out, &report, &provenance)?;
    Ok(report)
}

/// One line for people: greedy and the three rules at the largest budget, and pass@n.
pub fn summary(report: &BonReport) -> String {
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    match report.runs.first().and_then(|run| run.curve.last()) {
        Some(last) => format!(
            "greedy {}  weighted@{n} {}  majority@{n} {}  naive@{n} {}  pass@{n} {}",
            pct(report.greedy_accuracy),
            pct(last.weighted),
            pct(last.majority),
            pct(last.naive),
            pct(last.pass),
            n = last.n,
        ),
        None => format!("greedy {}", pct(report.greedy_accuracy)),
    }
}

/// Settings of value-head training (`assay prm train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmTrainSettings {
    /// Backbone, also the generator of the training solutions; `None`: the embedded default.
    pub model: Option<String>,
    /// Training problems (use other seeds than the evaluation problems').
    pub problems: ProblemSettings,
    /// Sampling and optimisation. `dump_solutions` is set to `<out>/solutions.jsonl` by
    /// [`train_prm`].
    pub training: HeadTrainConfig,
    /// Where the backbone runs, and in what dtype.
    pub placement: Placement,
    /// Output folder: `prm.json`, `value_head.safetensors`, `training.json`, `solutions.jsonl`.
    pub out: PathBuf,
}

/// Trains a value head and writes a reward-model folder that [`RewardModel::load`] (and
/// [`BonSettings::prm`]) accepts; returns the training report.
pub fn train_prm(
    settings: &PrmTrainSettings,
    mut on_event: impl FnMut(Event),
) -> Result<HeadTrainReport> {
    let out = &settings.out;
    prepare_output_dir(out)?;
    let (problems, described) = settings.problems.load()?;
    if problems.len() < 2 {
        return Err(BonError::Input(format!(
            "{} problem(s) chosen; training needs at least 2 (train and validation): raise --count",
            problems.len()
        )));
    }
    let options = settings.placement.load_options()?;
    let backbone = load_model(
        settings.model.as_deref(),
        &options,
        "backbone",
        &settings.placement,
        &mut on_event,
    )?;
    let config = HeadTrainConfig {
        dump_solutions: Some(out.join("solutions.jsonl")),
        ..settings.training.clone()
    };
    let (prm, report, _) = train_head(backbone, &problems, &config, &mut on_event)?;
    prm.head.save(&out.join(HEAD_FILE))?;
    let manifest = PrmManifest {
        backbone: settings.model.as_deref().map(stable_model_spec),
        kind: RewardKind::Process,
        notes: serde_json::json!({ "problems": described, "training": &report }),
    };
    write_json(&out.join(PRM_MANIFEST), &manifest)?;
    write_json(&out.join("training.json"), &report)?;
    Ok(report)
}

/// One line for people on a training report.
pub fn train_summary(report: &HeadTrainReport) -> String {
    format!(
        "trained on {} correct / {} incorrect solutions; loss {:.4} -> {:.4}; validation AUC {}",
        report.train_correct,
        report.train_incorrect,
        report.loss_first,
        report.loss_last,
        report
            .validation_auc
            .map_or("n/a (one class)".into(), |a| format!("{a:.3}"))
    )
}

/// Settings of `assay prm score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmScoreSettings {
    /// Reward model (as [`BonSettings::prm`]).
    pub prm: String,
    /// Process or outcome reading; `None`: the model's own kind.
    pub prm_kind: Option<RewardKind>,
    /// JSON lines (or Parquet) of `{"problem": ..., "response": ...}`.
    pub input: PathBuf,
    /// Where the reward model runs, and in what dtype.
    pub placement: Placement,
}

/// One scored row of [`score_pairs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    /// The reward of every step (line) of the response, or one reward for an outcome model.
    pub step_scores: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct PairRow {
    problem: String,
    response: String,
}

/// Step rewards of every (problem, response) row of the input, in order. The whole input is read
/// and checked before the reward model is loaded.
pub fn score_pairs(
    settings: &PrmScoreSettings,
    mut on_event: impl FnMut(Event),
) -> Result<Vec<ScoredPair>> {
    let path = &settings.input;
    let rows: Vec<PairRow> = assay_tables::read_table(path)?
        .into_iter()
        .map(|record| {
            serde_json::from_value(serde_json::Value::Object(record.row)).map_err(|e| {
                BonError::bad_file(
                    path,
                    format!(
                        "{}: {e}; each row is {{\"problem\": ..., \"response\": ...}}",
                        record.location
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    if rows.is_empty() {
        return Err(BonError::bad_file(
            path,
            "holds no rows; give one {\"problem\": ..., \"response\": ...} object a line",
        ));
    }
    on_event(Event::Loading {
        what: format!("reward model {} on {}", settings.prm, settings.placement),
    });
    let options = settings.placement.load_options()?;
    let prm = RewardModel::load(&settings.prm, settings.prm_kind, &options)?;
    on_event(Event::Stage {
        name: "reward model".into(),
        total: rows.len() as u64,
    });
    rows.iter()
        .map(|row| {
            let steps = prm.score(&row.problem, std::slice::from_ref(&row.response), 1)?;
            on_event(Event::Advance(1));
            Ok(ScoredPair {
                step_scores: steps.into_iter().next().unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes scored rows as JSON lines.
pub fn write_scores(path: &Path, scores: &[ScoredPair]) -> Result<()> {
    let rows: Vec<assay_tables::Row> = scores.iter().map(to_row).collect();
    Ok(assay_tables::write_jsonl(path, &rows)?)
}

/// Creates `dir` and proves it writable (a probe file, removed again), so that an unwritable
/// output fails before minutes of work rather than after.
pub fn prepare_output_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| BonError::write(dir, e))?;
    let probe = dir.join(".assay-write-probe");
    std::fs::write(&probe, b"").map_err(|e| BonError::write(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| BonError::write(&probe, e))
}

fn load_model(
    spec: Option<&str>,
    options: &LoadOptions,
    role: &str,
    placement: &Placement,
    on_event: &mut impl FnMut(Event),
) -> Result<assay_engine::LoadedModel> {
    let source = ModelSource::resolve(spec)?;
    on_event(Event::Loading {
        what: format!("{role} {source} on {placement}"),
    });
    Ok(load(&source, options)?)
}

/// A model spec that still names the same model from another working directory: an existing path
/// made absolute, anything else (a hub id) as given.
fn stable_model_spec(spec: &str) -> String {
    match std::fs::canonicalize(spec) {
        Ok(path) => path.display().to_string(),
        Err(_) => spec.to_string(),
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| BonError::bad_file(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| BonError::write(path, e))
}
