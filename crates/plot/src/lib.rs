//! Small charts for assay reports: line charts (accuracy curves) and signed bar charts (scores per
//! miner), each laid out once as a [`Scene`] and written both as SVG and as PNG. The PNG carries
//! the same text as the SVG (title, axis and tick labels, legend) through a built-in bitmap font.

#![warn(missing_docs)]

pub mod canvas;
pub mod chart;
pub mod font;
pub mod scene;

use std::path::{Path, PathBuf};

pub use canvas::{Canvas, Rgb};
pub use chart::{BarChart, LineChart, Series, TickFormat, YAxis};
pub use scene::{Anchor, Scene, Shape, Text};

/// A chart file could not be written.
#[derive(Debug)]
pub struct PlotError {
    /// The file being written.
    pub path: PathBuf,
    /// Why it failed.
    pub source: std::io::Error,
}

impl PlotError {
    fn new(path: &Path, source: std::io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
