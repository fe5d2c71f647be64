//! The results file a candidate writes (`results.json`), exactly in the challenge's schema.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FtError, Result};

/// The whole results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// How training went.
    pub training: TrainingSummary,
    /// One prediction per validation row, in val order.
    pub predictions: Vec<Prediction>,
}

/// The `training` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Mean training loss over the last steps (null when no step was taken).
    pub train_loss: Option<f64>,
    /// Loss on held-out training rows (null when none were held out).
    pub val_loss: Option<f64>,
    /// Seconds spent training.
    pub wall_clock_s: f64,
}

/// One entry of `predictions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The validation row's id.
    pub id: String,
    /// The generated reply.
    pub prediction: String,
    /// The predicted intent.
    pub predicted_intent: String,
    /// Milliseconds spent on this row (self-reported; the grader ignores it).
    #[serde(default)]
    pub latency_ms: u64,
    /// Tokens processed for this row (self-reported; the grader ignores it).
    #[serde(default)]
    pub tokens_used: u64,
}

impl Results {
    /// Reads and checks a results file: JSON in the schema, a finite non-negative wall clock, and
    /// unique prediction ids.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| FtError::read(path, e))?;
        let results: Results = serde_json::from_str(&text).map_err(|e| {
            FtError::results(
                path,
                format!(
                    "not a results file ({e}); expected {{\"training\": {{steps, train_loss, val_loss, wall_clock_s}}, \"predictions\": [{{id, prediction, predicted_intent, latency_ms, tokens_used}}]}}"
                ),
            )
        })?;
        let wall = results.training.wall_clock_s;
        if !(wall.is_finite() && wall >= 0.0) {
            return Err(FtError::results(
                path,
                format!(
                    "training.wall_clock_s is {wall}; it must be a finite number of seconds >= 0"
                ),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (index, p) in results.predictions.iter().enumerate() {
            if let Some(first) = seen.insert(p.id.as_str(), index) {
                return Err(FtError::results(
                    path,
                    format!(
                        "predictions[{index}]: duplicate id `{}` (first at predictions[{first}])",
                        p.id
                    ),
                ));
            }
        }
        Ok(results)
    }

    /// Writes the file as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}

/// Writes `value` as pretty JSON with a final newline, creating parent folders.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FtError::write(parent, e))?;
    }
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| FtError::file(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| FtError::write(path, e))
}

/// Creates the folder `path` will be written in and proves it writable (a probe file, removed
/// again), so that an unwritable output fails before the work rather than after.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| FtError::write(&dir, e))?;
    let probe = dir.join(".assay-write-probe");
    std::fs::write(&probe, b"").map_err(|e| FtError::write(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| FtError::write(&probe, e))
}
