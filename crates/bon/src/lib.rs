//! Best-of-N sampling with a process reward model, after Hugging Face's post-training take-home
//! (search-and-learn's best-of-N with Skywork's PRM): reward models with Skywork's input recipe
//! ([`prm`]), MATH-500-format problems ([`problems`]), the experiment ([`pipeline`]), its dataset,
//! plots and analysis ([`output`], [`plot`]), training a value head on our own samples ([`train`]),
//! and the command-line front end ([`cli`]).
#![warn(missing_docs)]

pub mod cli;
pub mod error;
pub mod output;
pub mod pipeline;
pub mod plot;
pub mod prm;
pub mod problems;
pub mod train;

pub use error::{BonError, Result};
