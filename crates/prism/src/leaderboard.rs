//! The leaderboard and PRISM's two-tier crown (scoring.py rank key, queue.py architecture lab,
//! weights.py), kept in one JSON state file written atomically so a restart loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Scores closer than this share a leaderboard bucket; the earlier commit then wins.
pub const LEADERBOARD_TIE_EPSILON: f64 = 1e-9;
/// Share of the architecture owner.
pub const ARCHITECTURE_WEIGHT: f64 = 0.60;
/// Share of the best training variant's owner.
pub const TRAINING_WEIGHT: f64 = 0.40;
/// Version of the state file.
pub const STATE_SCHEMA: &str = "assay_prism_state.v1";

/// A scored submission as recorded: its sequence number and what it brought.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Submission {
    /// Sequence number given at recording.
    pub id: u64,
    /// The scored submission (its fields sit beside `id` in the state file).
    #[serde(flatten)]
    pub scored: ScoredSubmission,
}

/// What a new submission brings to [`State::record`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScoredSubmission {
    /// Miner hotkey.
    pub hotkey: String,
    /// Commit time or block: lower is earlier.
    pub accepted_at: u64,
    /// Stored score (final_score times the near-duplicate multiplier).
    pub score: f64,
    /// Prequential bpb.
    pub bpb: f64,
    /// Architecture component hash.
    pub family_hash: String,
    /// Training component hash.
    pub training_hash: String,
    /// AST fingerprint, for later near-duplicate checks.
    pub fingerprint: BTreeSet<String>,
    /// Alpha-renamed structural fingerprint (absent in state files written before it existed).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub structure: BTreeSet<String>,
    /// Moderated architecture name.
    pub architecture_name: Option<String>,
}

/// An architecture family: owned forever by its first submitter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Family {
    /// Architecture component hash.
    pub family_hash: String,
    /// First submitter.
    pub owner_hotkey: String,
    /// Submission that created it.
    pub owner_submission: u64,
    /// Best submission so far.
    pub canonical_submission: u64,
    /// Best score of any submission of this family.
    pub q_arch_best: f64,
    /// `accepted_at` of the creating submission.
    pub created_at: u64,
    /// Display name from the creating submission.
    pub display_name: Option<String>,
}

/// A training variant of a family: its owner moves to whoever scores higher with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    /// Family.
    pub family_hash: String,
    /// Training component hash.
    pub training_hash: String,
    /// Current owner.
    pub owner_hotkey: String,
    /// Representative submission.
    pub submission: u64,
    /// Best score with this variant.
    pub q_recipe: f64,
    /// `accepted_at` of the creating submission.
    pub created_at: u64,
    /// Creation sequence (the id tie-break).
    pub seq: u64,
    /// The family's best variant.
    pub is_current_best: bool,
}

/// The whole persistent state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// [`STATE_SCHEMA`].
    pub schema: String,
    /// Next id to give.
    pub next_id: u64,
    /// Every scored submission.
    pub submissions: Vec<Submission>,
    /// Architecture families.
    pub families: Vec<Family>,
    /// Training variants.
    pub variants: Vec<Variant>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            schema: STATE_SCHEMA.into(),
            next_id: 1,
            submissions: Vec::new(),
            families: Vec::new(),
            variants: Vec::new(),
        }
    }
}

impl assay_errors::Diagnose for StateError {
    fn blame(&self) -> assay_errors::Blame {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => {
                assay_errors::io_blame(source)
            }
            Self::Missing { .. } | Self::Format { .. } => assay_errors::Blame::Operator,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { path } => Some(format!("`assay prism run --state {path}` writes it")),
            Self::Read { .. } => Some("check the --state path and its permissions".into()),
            Self::Write { .. } => Some("check the folder of --state exists and is writable".into()),
            Self::Format { .. } => None,
        }
    }
}

/// State file problems.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file does not exist (from [`State::load_existing`]).
    #[error("{path}: no PRISM state file here")]
    Missing {
        /// File.
        path: String,
    },
    /// Reading failed.
    #[error("{path}: cannot read the state file: {source}")]
    Read {
        /// File.
        path: String,
        /// Error.
        #[source]
        source: std::io::Error,
    },
    /// Writing failed (the previous state file, if any, is untouched).
    #[error("{path}: cannot write the state file: {source}")]
    Write {
        /// File.
        path: String,
        /// Error.
        #[source]
        source: std::io::Error,
    },
    /// Not a state file of this version.
    #[error("{path}: not a PRISM state file ({detail}); move it aside or pass another --state")]
    Format {
        /// File.
        path: String,
        /// Parser message.
        detail: String,
    },
}

/// PRISM's rank key: higher 1e-9 bucket first, then earliest commit, then id.
pub fn rank_key(s: &Submission) -> (i64, u64, u64) {
    let score = s.scored.score;
    let bucket = if score.is_finite() {
        (score / LEADERBOARD_TIE_EPSILON + 0.5).floor() as i64
    } else {
        0
    };
    (-bucket, s.scored.accepted_at, s.id)
}

impl State {
    /// Loads `path`; a missing file is an empty state (what a first run wants).
    pub fn load(path: &Path) -> Result<Self, StateError> {
        match Self::load_existing(path) {
            Err(StateError::Missing { .. }) => Ok(Self::default()),
            loaded => loaded,
        }
    }

    /// Loads `path`, which must exist (a reader of the board, where an empty state from a
    /// mistyped path would hide the mistake).
    pub fn load_existing(path: &Path) -> Result<Self, StateError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Missing { path: shown });
            }
            Err(source) => {
                return Err(StateError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| StateError::Format {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        if state.schema != STATE_SCHEMA {
            return Err(StateError::Format {
                path: shown,
                detail: format!("schema {}", state.schema),
            });
        }
        Ok(state)
    }

    /// Writes to a temp file beside `path`, syncs it, then renames it over `path`.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Write {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        crate::write_atomic(path, text.as_bytes()).map_err(io)
    }

    /// Earlier submissions' fingerprints, for [`crate::run_bundle`]'s near-duplicate check.
    pub fn priors(&self) -> impl Iterator<Item = crate::Prior<'_>> {
        self.submissions.iter().map(|s| crate::Prior {
            fingerprint: &s.scored.fingerprint,
            structure: &s.scored.structure,
        })
    }

    /// Fingerprints of every earlier submission (for the near-duplicate check).
    pub fn fingerprints(&self) -> impl Iterator<Item = &BTreeSet<String>> {
        self.submissions.iter().map(|s| &s.scored.fingerprint)
    }

    /// Records a scored submission, updating its family and variant; returns its id.
    pub fn record(&mut self, new: ScoredSubmission) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.upsert_family(id, &new);
        self.upsert_variant(id, &new);
        self.submissions.push(Submission { id, scored: new });
        id
    }

    fn upsert_family(&mut self, id: u64, new: &ScoredSubmission) {
        match self
            .families
            .iter_mut()
            .find(|f| f.family_hash == new.family_hash)
        {
            Some(family) if new.score > family.q_arch_best => {
                family.q_arch_best = new.score;
                family.canonical_submission = id;
            }
            Some(_) => {}
            None => self.families.push(Family {
                family_hash: new.family_hash.clone(),
                owner_hotkey: new.hotkey.clone(),
                owner_submission: id,
                canonical_submission: id,
                q_arch_best: new.score,
                created_at: new.accepted_at,
                display_name: new.architecture_name.clone(),
            }),
        }
    }

    fn upsert_variant(&mut self, id: u64, new: &ScoredSubmission) {
        let existing = self
            .variants
            .iter_mut()
            .find(|v| v.family_hash == new.family_hash && v.training_hash == new.training_hash);
        match existing {
            Some(v) if new.score > v.q_recipe => {
                v.owner_hotkey = new.hotkey.clone();
                v.submission = id;
                v.q_recipe = new.score;
            }
            Some(_) => {}
            None => self.variants.push(Variant {
                family_hash: new.family_hash.clone(),
                training_hash: new.training_hash.clone(),
                owner_hotkey: new.hotkey.clone(),
                submission: id,
                q_recipe: new.score,
                created_at: new.accepted_at,
                seq: id,
                is_current_best: false,
            }),
        }
        let best = self
            .variants
            .iter()
            .filter(|v| v.family_hash == new.family_hash)
            .min_by(|a, b| variant_order(a, b))
            .map(|v| v.training_hash.clone());
        for v in self
            .variants
            .iter_mut()
            .filter(|v| v.family_hash == new.family_hash)
        {
            v.is_current_best = Some(&v.training_hash) == best.as_ref();
        }
    }

    /// The leaderboard: one row per hotkey (its best by the rank key), best first.
    pub fn leaderboard(&self) -> Vec<&Submission> {
        let mut best: BTreeMap<&str, &Submission> = BTreeMap::new();
        for s in &self.submissions {
            let keep = best
                .get(s.scored.hotkey.as_str())
                .is_none_or(|cur| rank_key(s) < rank_key(cur));
            if keep {
                best.insert(&s.scored.hotkey, s);
            }
        }
        let mut rows: Vec<&Submission> = best.into_values().collect();
        rows.sort_by_key(|s| rank_key(s));
        rows
    }

    /// The crowned family: highest `q_arch_best`, then earliest, then first created.
    pub fn best_family(&self) -> Option<&Family> {
        self.families.iter().min_by(|a, b| {
            b.q_arch_best
                .total_cmp(&a.q_arch_best)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.owner_submission.cmp(&b.owner_submission))
        })
    }

    /// Two-tier weights by hotkey: 0.6 to the crowned family's owner, 0.4 to the owner of its
    /// best variant, normalised to sum 1; empty (burn) when nothing scored above 0.
    pub fn weights(&self) -> BTreeMap<String, f64> {
        let Some(family) = self.best_family().filter(|f| f.q_arch_best > 0.0) else {
            return BTreeMap::new();
        };
        let mut raw: BTreeMap<String, f64> = BTreeMap::new();
        *raw.entry(family.owner_hotkey.clone()).or_default() += ARCHITECTURE_WEIGHT;
        let variant = self
            .variants
            .iter()
            .filter(|v| v.family_hash == family.family_hash)
            .min_by(|a, b| {
                b.is_current_best
                    .cmp(&a.is_current_best)
                    .then(variant_order(a, b))
            });
        if let Some(v) = variant {
            *raw.entry(v.owner_hotkey.clone()).or_default() += TRAINING_WEIGHT;
        }
        let values: Vec<f64> = raw.values().copied().collect();
        raw.keys()
            .cloned()
            .zip(assay_weights::normalize(&values))
            .collect()
    }
}

fn variant_order(a: &Variant, b: &Variant) -> std::cmp::Ordering {
    b.q_recipe
        .total_cmp(&a.q_recipe)
        .then(a.created_at.cmp(&b.created_at))
        .then(a.seq.cmp(&b.seq))
}
