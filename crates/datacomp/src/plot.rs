//! The score-per-miner bar chart, drawn by [`assay_plot`] as SVG and PNG (both fully labelled).

use std::path::Path;

use assay_plot::BarChart;

use crate::error::DatacompError;

/// One bar: a label and a value (may be negative).
pub type Bar = (String, f64);

/// Writes `stem.svg` and `stem.png`: one bar per miner, green above zero and red below.
pub fn bar_chart(bars: &[Bar], title: &str, stem: &Path) -> Result<(), DatacompError> {
    let chart = BarChart {
        title: title.to_string(),
        x_label: "miner".into(),
        y_label: "score".into(),
        bars: bars.to_vec(),
    };
    chart
        .scene()
        .write(stem)
        .map_err(|e| DatacompError::write(&e.path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_labelled_svg_and_a_png_per_stem() {
        let dir = tempfile::tempdir().unwrap();
        let bars = vec![("hk-a".to_string(), 0.25), ("hk-b".to_string(), -0.5)];
        bar_chart(&bars, "scores", &dir.path().join("scores")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("scores.svg")).unwrap();
        for label in [">scores<", ">hk-a<", ">hk-b<", ">miner<"] {
            assert!(svg.contains(label), "{label} missing");
        }
        let png = std::fs::read(dir.path().join("scores.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let err = bar_chart(&bars, "t", &dir.path().join("no/such/dir/scores")).unwrap_err();
        assert!(err.to_string().contains("scores.svg"), "{err}");
    }
}
