//! PRISM (BASE / netuid 100) as an assay pipeline: a miner's two-script torch bundle is taken in
//! under limits, checked by a static Python AST sandbox, trained by a small trusted Python runner
//! under OS limits while this crate streams the locked train split and records the prequential
//! losses, and scored exactly as PRISM scores it (prequential bits per byte, held-out delta
//! against a random-init twin, gap penalty, step-0 check, near-duplicate penalty). Scores feed a
//! persistent leaderboard with PRISM's two-tier crown.
//!
//! Pipeline: [`bundle::Bundle::open`] → [`check_bundle`] → [`run_bundle`] →
//! [`leaderboard::State::record`] → [`leaderboard::State::weights`].
#![warn(missing_docs)]

pub mod bundle;
pub mod cli;
pub mod corpus;
pub mod data;
pub mod fingerprint;
pub mod leaderboard;
pub mod limits;
pub mod pyast;
pub mod runner;
pub mod sandbox;
pub mod score;

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use bundle::{Bundle, BundleError, Contract};
use runner::{Progress, RunConfig, RunError, TrainOutcome, Workspace};
use sandbox::Finding;
use score::{Heldout, Score, ScoreError};

/// The static verdict on a bundle: contract, sandbox findings, fingerprints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    /// The resolved contract, or why it failed.
    pub contract: Result<Contract, String>,
    /// Sandbox findings over every `.py` file (syntax errors included as `prism:syntax`).
    pub findings: Vec<Finding>,
    /// Union of the files' AST fingerprints (empty when there are findings: PRISM fingerprints
    /// only code that passes).
    pub fingerprint: BTreeSet<String>,
    /// Architecture component hash.
    pub family_hash: Option<String>,
    /// Training component hash.
    pub training_hash: Option<String>,
}

impl CheckReport {
    /// True when the bundle may run.
    pub fn passed(&self) -> bool {
        self.contract.is_ok() && self.findings.is_empty()
    }
}

/// Runs every static gate on a bundle.
pub fn check_bundle(bundle: &Bundle) -> CheckReport {
    let roots = bundle.local_import_roots();
    let mut findings = Vec::new();
    let mut parsed = Vec::new();
    for path in bundle.python_paths() {
        match pyast::PyFile::parse(path, &bundle.files[path]) {
            Ok(file) => {
                findings.extend(sandbox::check_file(&file, &roots));
                parsed.push(file);
            }
            Err(e) => findings.push(Finding {
                path: e.path,
                line: e.line,
                col: e.col,
                rule: "prism:syntax".into(),
                message: e.message,
                extension: false,
            }),
        }
    }
    let contract = bundle::resolve_contract(bundle).map_err(|e| e.to_string());
    let hash = |paths: &[String]| {
        let files: Vec<(&str, &str)> = paths
            .iter()
            .map(|p| (p.as_str(), bundle.files[p].as_str()))
            .collect();
        fingerprint::component_hash(&files)
    };
    let (family_hash, training_hash) = match &contract {
        Ok(c) => (
            Some(hash(&c.architecture_files)),
            Some(hash(&c.training_files)),
        ),
        Err(_) => (None, None),
    };
    let fingerprint = if findings.is_empty() {
        fingerprint::bundle_fingerprint(&parsed)
    } else {
        BTreeSet::new()
    };
    CheckReport {
        contract,
        findings,
        fingerprint,
        family_hash,
        training_hash,
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Static verdict.
    pub check: CheckReport,
    /// Parameters of `build_model` in the static gate.
    pub instantiation_params: u64,
    /// Training stage outcome (losses, stop reason, limits applied).
    pub train: TrainOutcome,
    /// Held-out metrics, when a val split and a trained state exist.
    pub heldout: Option<Heldout>,
    /// Highest AST similarity against earlier submissions.
    pub max_similarity: f64,
    /// The score.
    pub score: Score,
}

/// Why a run produced no score.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Intake failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The contract failed.
    #[error("contract: {0}")]
    Contract(String),
    /// The static sandbox refused the bundle.
    #[error("the static sandbox refused the bundle:\n{}", .0.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Sandbox(Vec<Finding>),
    /// The runner failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The run cannot be scored.
    #[error(transparent)]
    Score(#[from] ScoreError),
}

/// Checks, instantiates, trains, runs the held-out step and scores one bundle against the data
/// in `data_dir` (`train/` and optionally `val/`). `previous` are earlier submissions'
/// fingerprints for the near-duplicate penalty.
pub fn run_bundle<'a>(
    bundle: &Bundle,
    data_dir: &Path,
    config: &RunConfig,
    previous: impl IntoIterator<Item = &'a BTreeSet<String>>,
    progress: &mut dyn FnMut(Progress),
) -> Result<RunReport, PipelineError> {
    progress(Progress::Stage("static checks"));
    let check = check_bundle(bundle);
    let contract = check.contract.clone().map_err(PipelineError::Contract)?;
    if !check.findings.is_empty() {
        return Err(PipelineError::Sandbox(check.findings));
    }
    let ws = Workspace::new(bundle)?;
    progress(Progress::Stage("instantiating build_model"));
    let instantiation_params = runner::instantiate(&ws, &contract, config)?;
    progress(Progress::Stage("training"));
    let train = runner::train(&ws, &contract, config, data_dir, progress)?;
    progress(Progress::Stage("held-out"));
    let heldout = runner::heldout(&ws, &contract, config, data_dir, &train)?;
    let (near_dup, max_similarity) =
        fingerprint::near_duplicate_multiplier(&check.fingerprint, previous);
    let score = score::final_score(&train.prequential, heldout.as_ref(), near_dup)?;
    Ok(RunReport {
        check,
        instantiation_params,
        train,
        heldout,
        max_similarity,
        score,
    })
}
