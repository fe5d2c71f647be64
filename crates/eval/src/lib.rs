//! Evaluation library for assay: tasks, metrics, generators and the task registry.
#![warn(missing_docs)]
pub mod text;
