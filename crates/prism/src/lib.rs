//! PRISM (BASE / netuid 100) as an assay pipeline: a miner's two-script torch bundle is taken in
//! under limits, checked by a static Python AST sandbox, trained by a small trusted Python runner
//! under OS limits while this crate streams the locked train split and records the prequential
//! losses, and scored exactly as PRISM scores it (prequential bits per byte, held-out delta
//! against a random-init twin, gap penalty, step-0 check, near-duplicate penalty). Scores feed a
//! persistent leaderboard with PRISM's two-tier crown.
//!
//! Pipeline: [`bundle::Bundle::open`] → [`check_bundle`] → [`run_bundle`] →
//! [`leaderboard::State::record`] → [`leaderboard::State::weights`].
//!
//! The crate has no command-line dependency: the `assay prism` arguments live in the CLI crate
//! and turn into [`RunConfig`] / [`CheckSettings`]; progress comes back as [`Event`]s.
#![warn(missing_docs)]

pub mod bundle;
pub mod checkpoint;
pub mod corpus;
pub mod data;
pub mod distributed;
pub mod fingerprint;
pub mod leaderboard;
pub mod limits;
pub mod parser_limits;
pub mod pyast;
pub mod runner;
pub mod sandbox;
pub mod score;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use assay_errors::{Blame, Diagnose};
use bundle::{Bundle, BundleError, Contract};
use leaderboard::{ScoredSubmission, StateError};
use runner::{RunConfig, RunError, TrainOutcome, Workspace};

pub use runner::Event;
use sandbox::Finding;
use score::{Heldout, Score, ScoreError};

/// The static verdict on a bundle: contract, sandbox findings, fingerprints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    /// The resolved contract, or why it failed.
    pub contract: Result<Contract, String>,
    /// Sandbox findings over every `.py` file (syntax errors included as `prism:syntax`, parser
    /// limits CPython would refuse as `prism:parser-limit`), and the multi-GPU contract's
    /// findings when its policy is `reject`.
    pub findings: Vec<Finding>,
    /// The multi-GPU contract's verdict on the training script (`None` with policy `off` or
    /// without a resolved contract).
    #[serde(default)]
    pub distributed: Option<distributed::ContractReport>,
    /// Non-fatal findings (the multi-GPU contract under policy `flag`).
    #[serde(default)]
    pub flags: Vec<Finding>,
    /// Union of the files' AST fingerprints (empty when there are findings: PRISM fingerprints
    /// only code that passes).
    pub fingerprint: BTreeSet<String>,
    /// Structural fingerprint with identifiers alpha-renamed (assay's plagiarism check:
    /// renaming classes, functions and variables does not change it).
    #[serde(default)]
    pub structure: BTreeSet<String>,
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

/// Settings of the static gates beyond PRISM's fixed rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckSettings {
    /// What a training script that breaks the multi-GPU contract gets (PRISM: `reject`).
    pub distributed_policy: distributed::Policy,
    /// GPUs the submission asks for (`None`: no request); more than 8 is refused.
    pub gpu_count: Option<u32>,
    /// Nodes the submission asks for (`None`: no request); more than one is refused.
    pub num_nodes: Option<u32>,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            distributed_policy: distributed::Policy::Reject,
            gpu_count: None,
            num_nodes: None,
        }
    }
}

/// Runs every static gate on a bundle with the default settings (PRISM's: multi-GPU contract
/// enforced).
pub fn check_bundle(bundle: &Bundle) -> CheckReport {
    check_bundle_with(bundle, &CheckSettings::default())
}

/// Runs every static gate on a bundle.
pub fn check_bundle_with(bundle: &Bundle, settings: &CheckSettings) -> CheckReport {
    let roots = bundle.local_import_roots();
    let mut findings = Vec::new();
    let mut parsed = Vec::new();
    for path in bundle.python_paths() {
        let source = &bundle.files[path];
        // CPython refuses some sources ruff accepts (deep nesting): refused here, boundedly.
        let limits = parser_limits::check(path, source);
        if !limits.is_empty() {
            findings.extend(limits);
            continue;
        }
        match pyast::PyFile::parse(path, source) {
            Ok(file) => {
                findings.extend(sandbox::check_file(&file, &roots));
                parsed.push(file);
            }
            Err(e) => findings.push(Finding {
                path: e.path,
                line: e.line,
                col: e.col,
                rule: "prism:syntax".into(),
                message: bounded(&e.message, 300),
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
    let mut flags = Vec::new();
    findings.extend(distributed::single_node_bound(
        settings.gpu_count,
        settings.num_nodes,
    ));
    let distributed = match (&contract, settings.distributed_policy) {
        (_, distributed::Policy::Off) | (Err(_), _) => None,
        (Ok(c), policy) => parsed
            .iter()
            .find(|f| f.path == c.training_entrypoint)
            .map(|file| {
                let report = distributed::check(file);
                match policy {
                    distributed::Policy::Reject => findings.extend(report.findings.clone()),
                    _ => flags.extend(report.findings.clone()),
                }
                report
            }),
    };
    let (fingerprint, structure) = if findings.is_empty() {
        (
            fingerprint::bundle_fingerprint(&parsed),
            fingerprint::structural_fingerprint(&parsed),
        )
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    CheckReport {
        contract,
        findings,
        distributed,
        flags,
        fingerprint,
        structure,
        family_hash,
        training_hash,
    }
}

/// `text` cut to at most `max` characters, saying how much was left out.
pub fn bounded(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}... ({} more characters)", count - max)
}

/// An earlier submission's fingerprints, for the near-duplicate check.
#[derive(Debug, Clone, Copy)]
pub struct Prior<'a> {
    /// PRISM's AST fingerprint.
    pub fingerprint: &'a BTreeSet<String>,
    /// The alpha-renamed structural fingerprint (may be empty for old state files).
    pub structure: &'a BTreeSet<String>,
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
    /// Highest AST similarity against earlier submissions (PRISM's fingerprint).
    pub max_similarity: f64,
    /// Highest structural (alpha-renamed) similarity against earlier submissions.
    #[serde(default)]
    pub max_structural_similarity: f64,
    /// The score.
    pub score: Score,
}

impl RunReport {
    /// The leaderboard entry for this run. `accepted_at` defaults to now (unix seconds).
    pub fn submission(&self, hotkey: &str, accepted_at: Option<u64>) -> ScoredSubmission {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ScoredSubmission {
            hotkey: hotkey.to_string(),
            accepted_at: accepted_at.unwrap_or(now),
            score: self.score.stored_score,
            bpb: self.score.bpb,
            family_hash: self.check.family_hash.clone().unwrap_or_default(),
            training_hash: self.check.training_hash.clone().unwrap_or_default(),
            fingerprint: self.check.fingerprint.clone(),
            structure: self.check.structure.clone(),
            architecture_name: self
                .check
                .contract
                .as_ref()
                .ok()
                .and_then(|c| c.architecture_name.clone()),
        }
    }

    /// Writes the report as pretty JSON, atomically (temp file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), PipelineError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| PipelineError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(path, (text + "\n").as_bytes()).map_err(|source| PipelineError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes `bytes` to a temp file beside `path`, syncs it and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
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
    /// The leaderboard state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The corpus could not be written.
    #[error(transparent)]
    Corpus(#[from] corpus::CorpusError),
    /// A report could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for PipelineError {
    fn blame(&self) -> Blame {
        match self {
            Self::Bundle(e) => e.blame(),
            Self::Contract(_) | Self::Sandbox(_) => Blame::Miner,
            Self::Run(e) => e.blame(),
            Self::Score(e) => e.blame(),
            Self::State(e) => e.blame(),
            Self::Corpus(e) => e.blame(),
            Self::Write { source, .. } => assay_errors::io_blame(source),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Bundle(e) => e.hint(),
            Self::Contract(_) => Some(
                "a bundle needs two distinct scripts: one defining build_model(ctx), one defining train(ctx) (see prism.yaml in the example bundle)".into(),
            ),
            Self::Sandbox(_) => Some(
                "each finding names its rule; `assay prism check BUNDLE` lists them before any run".into(),
            ),
            Self::Run(e) => e.hint(),
            Self::Score(e) => e.hint(),
            Self::State(e) => e.hint(),
            Self::Corpus(e) => e.hint(),
            Self::Write { .. } => Some("check the folder exists and is writable".into()),
        }
    }
}

/// Checks, instantiates, trains, runs the held-out step and scores one bundle against the data
/// in `data_dir` (`train/` and optionally `val/`). `previous` are earlier submissions'
/// fingerprints for the near-duplicate penalty. Progress comes back as [`Event`]s.
pub fn run_bundle<'a>(
    bundle: &Bundle,
    data_dir: &Path,
    config: &RunConfig,
    previous: impl IntoIterator<Item = Prior<'a>>,
    progress: &mut dyn FnMut(Event),
) -> Result<RunReport, PipelineError> {
    progress(Event::Stage("static checks"));
    let check = check_bundle_with(bundle, &config.check);
    let contract = check.contract.clone().map_err(PipelineError::Contract)?;
    if !check.findings.is_empty() {
        return Err(PipelineError::Sandbox(check.findings));
    }
    if let Some(lock) = data::LockedManifest::find(data_dir).map_err(RunError::from)? {
        progress(Event::Stage("verifying the locked data"));
        lock.verify(data_dir).map_err(RunError::from)?;
    }
    let ws = Workspace::new(bundle)?;
    progress(Event::Stage("instantiating build_model"));
    let instantiation_params = runner::instantiate(&ws, &contract, config)?;
    progress(Event::Stage("training"));
    let train = runner::train(&ws, &contract, config, data_dir, progress)?;
    progress(Event::Stage("held-out"));
    let heldout = runner::heldout(&ws, &contract, config, data_dir, &train)?;
    let (near_dup, max_similarity, max_structural_similarity) =
        fingerprint::near_duplicate(&check.fingerprint, &check.structure, previous);
    let mut score = score::final_score(&train.prequential, heldout.as_ref(), near_dup)?;
    if train.no_learning || heldout.as_ref().is_some_and(|h| h.heldout_delta == 0.0) {
        score.apply_no_learning();
    }
    Ok(RunReport {
        check,
        instantiation_params,
        train,
        heldout,
        max_similarity,
        max_structural_similarity,
        score,
    })
}

/// The example bundle shipped with assay (`examples/prism/bundle/`).
pub const EXAMPLE_BUNDLE: &[(&str, &str)] = &[
    (
        "architecture.py",
        include_str!("../../../examples/prism/bundle/architecture.py"),
    ),
    (
        "training.py",
        include_str!("../../../examples/prism/bundle/training.py"),
    ),
    (
        "prism.yaml",
        include_str!("../../../examples/prism/bundle/prism.yaml"),
    ),
];

/// The embedded example bundle.
pub fn example_bundle() -> Bundle {
    Bundle {
        files: EXAMPLE_BUNDLE
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    }
}

/// Opens a bundle folder or zip with the default intake limits, or the example without a path.
pub fn load_bundle(path: Option<&Path>) -> Result<Bundle, BundleError> {
    match path {
        None => Ok(example_bundle()),
        Some(p) => Bundle::open(p, &bundle::Limits::default()),
    }
}

/// Builds the default locked corpus from the interpreter's `pydoc_data.topics` into `out`.
pub fn build_corpus(python: &Path, out: &Path) -> Result<corpus::CorpusManifest, PipelineError> {
    let topics = runner::pydoc_topics(python)?;
    Ok(corpus::write_corpus(
        &topics,
        &format!("pydoc_data.topics of {}", python.display()),
        out,
    )?)
}
