//! Bittensor SN37 ("finetuning", macrocosm-os) competitions for assay.
//!
//! A competition is data ([`competition`]): tasks with weights and normalisation, model
//! constraints, a reward share and an epsilon schedule. A round ([`round`]) checks every
//! submitted model folder, evaluates the accepted ones on data drawn from a seed derived from
//! the block hash ([`seed`], [`data`]), combines the task scores, compares models pairwise with
//! the epsilon advantage of earlier commits ([`wins`], [`epsilon`]), gives the winner(s) the
//! step weight and folds it into the persisted moving average ([`tracker`]). Each model's
//! evaluation runs under a wall-clock limit ([`time_limit`]). [`run`] takes plain settings,
//! checks inputs first and writes every file atomically ([`state`]).
#![warn(missing_docs)]

pub mod competition;
pub mod data;
pub mod engine_loader;
pub mod epsilon;
pub mod evaluate;
pub mod report;
pub mod round;
pub mod run;
pub mod seed;
pub mod state;
pub mod submission;
pub mod time_limit;
pub mod tracker;
pub mod wins;
