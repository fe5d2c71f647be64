//! Evaluation library for assay: tasks, metrics, generators and the task registry.
#![warn(missing_docs)]
pub mod bpb;
pub mod docs;
pub mod engine_lm;
pub mod generators;
pub mod ifeval;
pub mod intent;
pub mod math;
pub mod registry;
pub mod results;
pub mod run;
pub mod runner;
pub mod sn37;
pub mod task_def;
pub mod text;
