//! Accuracy charts: a thin layer over [`assay_plot`] that fixes the y axis to 0-100 % and writes
//! each chart as SVG and as PNG (both with title, axis labels, tick labels and legend).

use std::path::Path;

pub use assay_plot::{Canvas, Series};
use assay_plot::{LineChart, YAxis};

use crate::error::{BonError, Result};

/// A chart with evenly spaced, labelled x ticks and y in 0..1 (drawn as percentages).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Labels of the x ticks.
    pub x_ticks: Vec<String>,
    /// The lines; values are fractions in 0..1.
    pub series: Vec<Series>,
}

impl Chart {
    /// The chart as a generic line chart on a 0-100 % axis.
    pub fn line_chart(&self) -> LineChart {
        LineChart {
            title: self.title.clone(),
            x_label: self.x_label.clone(),
            y_label: self.y_label.clone(),
            x_ticks: self.x_ticks.clone(),
            y_axis: YAxis::fraction(),
            series: self.series.clone(),
        }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        self.line_chart().scene().svg()
    }

    /// The chart as RGB pixels.
    pub fn raster(&self) -> Canvas {
        self.line_chart().scene().raster()
    }

    /// Writes `<stem>.svg` and `<stem>.png`.
    pub fn write(&self, stem: &Path) -> Result<()> {
        self.line_chart()
            .scene()
            .write(stem)
            .map_err(|e| BonError::write(&e.path, e.source))
    }
}
