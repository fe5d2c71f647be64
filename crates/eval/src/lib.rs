//! Evaluation library for assay: tasks, metrics, generators and the task registry.
#![warn(missing_docs)]

pub mod bpb;
pub mod generators;
pub mod intent;
pub mod math;
