//! Seeded generators of fresh, verifiable evaluation problems.

pub mod gsm;
