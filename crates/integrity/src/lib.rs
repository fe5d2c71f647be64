//! Integrity checks for untrusted submissions: schema, canonical form, duplicates, contamination, models.
#![warn(missing_docs)]

pub mod canonical;
pub mod dedup;
pub mod minhash;
pub mod schema;
