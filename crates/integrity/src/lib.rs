//! Integrity checks for untrusted submissions: schema, canonical form, duplicates, contamination, models.
#![warn(missing_docs)]
