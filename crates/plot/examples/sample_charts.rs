//! Writes a sample line chart and bar chart (SVG and PNG) into the folder given as the first
//! argument, to look at how the charts and the bitmap font read.

use assay_plot::{BarChart, LineChart, Series, YAxis};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let line = LineChart {
        title: "Accuracy vs n (T = 0.7)".into(),
        x_label: "n (first n samples)".into(),
        y_label: "accuracy".into(),
        x_ticks: ["1", "2", "4", "8", "16"].map(String::from).to_vec(),
        y_axis: YAxis::fraction(),
        series: vec![
            series(
                "weighted BoN",
                [214, 39, 40],
                &[0.35, 0.45, 0.55, 0.6, 0.65],
                false,
            ),
            series(
                "majority",
                [31, 119, 180],
                &[0.35, 0.4, 0.5, 0.55, 0.6],
                false,
            ),
            series(
                "pass@n (oracle)",
                [148, 103, 189],
                &[0.35, 0.55, 0.7, 0.8, 0.9],
                true,
            ),
            series("greedy", [90, 90, 90], &[0.4; 5], true),
        ],
    };
    line.scene().write(&dir.join("line"))?;
    let bars = BarChart {
        title: "Datacomp: score per miner (improvement x penalty)".into(),
        x_label: "miner".into(),
        y_label: "score".into(),
        bars: vec![
            (
                "5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX".into(),
                0.0421,
            ),
            ("miner-b".into(), -0.0135),
            ("miner-c".into(), 0.0),
            ("miner-d".into(), f64::NAN),
        ],
    };
    bars.scene().write(&dir.join("bars"))?;
    Ok(())
}

fn series(label: &str, color: [u8; 3], values: &[f64], dashed: bool) -> Series {
    Series {
        label: label.into(),
        color,
        values: values.iter().copied().map(Some).collect(),
        dashed,
    }
}
