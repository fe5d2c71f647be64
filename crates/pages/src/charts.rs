//! The pages' charts, drawn by `assay-plot` and embedded as inline SVG with an accessible name.

use assay_plot::{BarChart, LineChart, Rgb, Series, TickFormat, YAxis};

use crate::model::Curve;

/// Points a curve is thinned to before drawing (PRISM's API returns up to 500).
pub const CURVE_POINTS: usize = 100;

/// Line colours, distinguishable and dark enough on white.
const PALETTE: [Rgb; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 140, 44],
    [148, 83, 189],
    [200, 100, 0],
    [23, 128, 140],
];

/// Indices of at most `cap` points spread evenly over `n`, always keeping the first and last.
pub fn thin(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap || cap < 2 {
        return (0..n.min(cap)).collect();
    }
    let mut out: Vec<usize> = (0..cap)
        .map(|k| ((k as f64) * (n - 1) as f64 / (cap - 1) as f64).round() as usize)
        .collect();
    out.dedup();
    out
}

/// An SVG document made accessible: `role="img"` and `aria-label` on its root.
fn labelled(svg: &str, label: &str) -> String {
    let label = assay_plot::scene::escape(label);
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{label}\" focusable=\"false\" "),
        1,
    )
}

/// A short label for a number on an axis.
fn x_label(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// The y axis that fits `values` with a little room, in five steps.
fn fit_axis(values: impl Iterator<Item = f64>) -> YAxis {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    let (min, max) = (lo - span * 0.05, hi + span * 0.05);
    let step = (max - min) / 5.0;
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize + 1;
    YAxis {
        min,
        max,
        divisions: 5,
        format: TickFormat::Fixed(decimals),
    }
}

/// A submission's curve as an SVG line chart, thinned to [`CURVE_POINTS`].
pub fn curve_svg(curve: &Curve, title: &str) -> String {
    let keep = thin(curve.points.len(), CURVE_POINTS);
    let points: Vec<(f64, f64)> = keep.iter().map(|&i| curve.points[i]).collect();
    let chart = LineChart {
        title: title.to_string(),
        x_label: curve.x_label.clone(),
        y_label: curve.y_label.clone(),
        x_ticks: points.iter().map(|p| x_label(p.0)).collect(),
        y_axis: fit_axis(points.iter().map(|p| p.1)),
        series: vec![Series {
            label: curve.y_label.clone(),
            color: PALETTE[0],
            values: points.iter().map(|p| Some(p.1)).collect(),
            dashed: false,
        }],
    };
    let label = format!(
        "{title}: {} against {}, {} points",
        curve.y_label,
        curve.x_label,
        points.len()
    );
    labelled(&chart.scene().svg(), &label)
}

/// How each hotkey's share moved since the round before, in percentage points.
pub fn movement_svg(moves: &[(String, f64)], title: &str) -> String {
    let chart = BarChart {
        title: title.to_string(),
        x_label: "hotkey".into(),
        y_label: "change (percentage points)".into(),
        bars: moves
            .iter()
            .map(|(hk, d)| (short_hotkey(hk), d * 100.0))
            .collect(),
    };
    labelled(&chart.scene().svg(), title)
}

/// Shares over recent rounds, one line per hotkey (the `top` largest in the latest round).
pub fn history_svg(history: &[(i64, Vec<(String, f64)>)], top: usize, title: &str) -> String {
    let mut latest: Vec<(String, f64)> = history.last().map(|h| h.1.clone()).unwrap_or_default();
    latest.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    latest.truncate(top.min(PALETTE.len()));
    let series = latest
        .iter()
        .enumerate()
        .map(|(k, (hk, _))| Series {
            label: short_hotkey(hk),
            color: PALETTE[k],
            values: history
                .iter()
                .map(|(_, shares)| shares.iter().find(|s| &s.0 == hk).map(|s| s.1))
                .collect(),
            dashed: false,
        })
        .collect();
    let chart = LineChart {
        title: title.to_string(),
        x_label: "round".into(),
        y_label: "weight share".into(),
        x_ticks: history.iter().map(|h| h.0.to_string()).collect(),
        y_axis: YAxis::fraction(),
        series,
    };
    labelled(&chart.scene().svg(), title)
}

/// `5F3sa…k9Zx`: the first five and last four characters of a long hotkey.
pub fn short_hotkey(hk: &str) -> String {
    let n = hk.chars().count();
    if n <= 12 {
        return hk.to_string();
    }
    let head: String = hk.chars().take(5).collect();
    let tail: String = hk.chars().skip(n - 4).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends_and_caps_the_count() {
        assert_eq!(thin(5, 100), vec![0, 1, 2, 3, 4]);
        let t = thin(500, 100);
        assert_eq!(t.len(), 100);
        assert_eq!((t[0], t[99]), (0, 499));
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        assert!(thin(0, 100).is_empty());
    }

    #[test]
    fn a_curve_is_a_labelled_svg_with_escaped_text() {
        let curve = Curve {
            y_label: "bits <per> byte".into(),
            x_label: "step".into(),
            points: (0..500)
                .map(|i| (i as f64, 3.0 - i as f64 / 500.0))
                .collect(),
        };
        let svg = curve_svg(&curve, "Loss & \"bpb\"");
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Loss &amp; &quot;bpb&quot;"));
        assert!(!svg.contains("<per>"));
        assert_eq!(svg.matches("<circle").count(), CURVE_POINTS);
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }
}
