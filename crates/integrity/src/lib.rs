//! Integrity checks for untrusted submissions: schema, canonical form, duplicates, contamination, models.
//!
//! Entry points: [`schema::read_submission`] for a miner's JSONL file, [`round::check_round`] for all
//! row checks of a round, [`models::check_model_folder`] and [`round::check_model_round`] for model
//! submissions, [`policy::Policy`] for every threshold, and [`report::IntegrityReport`] for the result.
#![warn(missing_docs)]

pub mod alignment;
pub mod arithmetic;
pub mod canonical;
pub mod contamination;
pub mod dedup;
pub mod minhash;
pub mod models;
pub mod policy;
pub mod report;
pub mod round;
pub mod schema;
