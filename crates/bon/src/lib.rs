//! Best-of-N sampling with a process reward model, after Hugging Face's post-training take-home
//! (search-and-learn's best-of-N with Skywork's PRM): reward models with Skywork's input recipe
//! ([`prm`]), MATH-500-format problems ([`problems`]), the experiment ([`pipeline`]), its dataset,
//! plots and analysis ([`output`], [`plot`]), training a value head on our own samples ([`train`]),
//! and the entry points the front ends call with plain settings ([`run()`]).
//!
//! The crate has no command-line code: `assay bon` and `assay prm` (crates/cli) turn their flags into
//! [`BonSettings`], [`PrmTrainSettings`] and [`PrmScoreSettings`].
#![warn(missing_docs)]

pub mod error;
pub mod output;
pub mod pipeline;
pub mod plot;
pub mod prm;
pub mod problems;
pub mod run;
pub mod train;

pub use error::{BonError, Result};
pub use pipeline::{BonConfig, BonReport, Event};
pub use problems::{ArithmeticStyle, LevelRange, ProblemSettings, ProblemSource};
pub use run::{BonSettings, PrmScoreSettings, PrmTrainSettings, run, score_pairs, train_prm};
