//! Datacomp: score miners' chain-of-thought data by really fine-tuning a model on it.
//!
//! For a round: every miner's JSONL goes through the integrity checks (schema, canonical-form and
//! near duplicates, cross-miner copies with first-submitter priority, contamination against the
//! round's evaluation set); the base model gets a LoRA fine-tune per miner on the kept rows (same
//! adapters, seed and token budget for everyone); base and fine-tunes are evaluated on held-out
//! problems (reference loss of the gold solution, greedy answer accuracy, the seed's word recall);
//! the improvement over the base, times the integrity penalty and the data's volume, becomes the
//! miner's weight ([`report::SCORE_FORMULA`] states it; every report repeats it).
//!
//! Front ends fill a [`RoundSettings`] and call [`run`]; progress arrives as [`RoundEvent`]s.
//!
//! ```no_run
//! use assay_datacomp::{EvalOptions, forward_pass};
//! use assay_engine::{ModelSource, Placement, load};
//! let model = load(&ModelSource::resolve(None)?, &Placement::cpu().load_options()?)?;
//! let answers = forward_pass(&model, &["What is 12 * 7?".to_string()], true, &EvalOptions::default())?;
//! println!("{}", answers[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod graded;
pub mod graded_round;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod round;
pub mod score;
pub mod task;

pub use error::DatacompError;
pub use pipeline::{EvalSet, RoundSettings, run, score_miner};
pub use round::{
    Manifest, MinerResult, RoundConfig, RoundEvent, RoundResults, StageTiming, run_round,
};
pub use score::{
    CotRow, EvalOptions, Improvement, MinerScore, ModelEval, ScoreWeights, TrainingPlan, evaluate,
    forward_pass, validate_and_score,
};
