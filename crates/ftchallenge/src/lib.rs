//! The fine-tuning challenge (Northstar Workspaces support tickets), both sides:
//!
//! - [`runner`]: a reference candidate that trains a LoRA adapter on labelled tickets within a time
//!   budget, saves it in PEFT format, and predicts an intent (scored among the training intents by
//!   log-likelihood) and a reply for every validation ticket, writing the challenge's
//!   `results.json`;
//! - [`grade`]: the host's grader (intent 40%, reply quality 30%, probes 20%, efficiency 10%).
//!
//! The crate has no command-line code: `assay ft-challenge run|grade` (crates/cli) turn their flags
//! into a [`RunConfig`] for [`runner::run`] and a [`GradeSettings`] for [`grade::grade_with`].
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod grade;
pub mod judge;
pub mod prompt;
pub mod results;
pub mod runner;
pub mod taxonomy;

pub use error::{FtError, Result};
pub use grade::{GradeInputs, GradeReport, GradeSettings, JudgeSettings, grade_with};
pub use runner::{RunConfig, RunEvent, RunOutcome, run};
