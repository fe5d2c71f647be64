//! Line and bar charts laid out as [`Scene`]s.

use crate::canvas::Rgb;
use crate::scene::{Anchor, Scene, Shape, Text, fit, text_width};

const TITLE: f64 = 15.0;
const LABEL: f64 = 12.0;
const TICK: f64 = 11.0;
const GRID: Rgb = [221, 221, 221];
const AXIS: Rgb = [0, 0, 0];

/// How y tick labels are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TickFormat {
    /// The value × 100 with a `%` sign, no decimals (for fractions in 0-1).
    Percent,
    /// The value with this many decimals.
    Fixed(usize),
}

impl TickFormat {
    fn label(self, v: f64) -> String {
        match self {
            TickFormat::Percent => format!("{:.0}%", v * 100.0),
            TickFormat::Fixed(d) => format!("{v:.d$}"),
        }
    }
}

/// The y axis of a line chart: a fixed range divided into equal steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YAxis {
    /// Value at the bottom.
    pub min: f64,
    /// Value at the top.
    pub max: f64,
    /// Number of equal steps between ticks (at least 1).
    pub divisions: usize,
    /// Tick label format.
    pub format: TickFormat,
}

impl YAxis {
    /// 0 % to 100 % in steps of 20 %.
    pub fn fraction() -> Self {
        Self {
            min: 0.0,
            max: 1.0,
            divisions: 5,
            format: TickFormat::Percent,
        }
    }
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// RGB colour.
    pub color: Rgb,
    /// One y value per x tick; `None` (or a non-finite value) leaves a gap.
    pub values: Vec<Option<f64>>,
    /// Dashed (for reference lines).
    pub dashed: bool,
}

/// A line chart with evenly spaced, labelled x ticks and a legend on the right.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Labels of the x ticks.
    pub x_ticks: Vec<String>,
    /// The y axis; values outside it are drawn at its edge.
    pub y_axis: YAxis,
    /// The lines.
    pub series: Vec<Series>,
}

/// The plot area of a chart, in SVG units.
#[derive(Debug, Clone, Copy)]
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// Axes, horizontal grid lines and y tick labels for `ticks` (value, label, y position).
    fn axes(&self, scene: &mut Scene, ticks: &[(String, f64)]) {
        for (label, y) in ticks {
            scene.line((self.left, *y), (self.right, *y), GRID, 1.0);
            scene.text((self.left - 6.0, y + 4.0), label, TICK, Anchor::End);
        }
        scene.line(
            (self.left, self.bottom),
            (self.right, self.bottom),
            AXIS,
            1.0,
        );
        scene.line((self.left, self.top), (self.left, self.bottom), AXIS, 1.0);
    }

    /// Title above, x label below, y label turned on the left.
    fn labels(&self, scene: &mut Scene, title: &str, x_label: &str, y_label: &str) {
        let (w, h) = (scene.width, scene.height);
        scene.text(
            (w / 2.0, 24.0),
            &fit(title, TITLE, w - 20.0),
            TITLE,
            Anchor::Middle,
        );
        let cx = (self.left + self.right) / 2.0;
        let x_label = fit(x_label, LABEL, self.right - self.left);
        scene.text((cx, h - 14.0), &x_label, LABEL, Anchor::Middle);
        let cy = (self.top + self.bottom) / 2.0;
        scene.push(Shape::Text(Text {
            at: (20.0, cy),
            text: fit(y_label, LABEL, self.bottom - self.top),
            size: LABEL,
            anchor: Anchor::Middle,
            color: AXIS,
            vertical: true,
        }));
    }

    /// X tick marks and labels at `xs`, skipping labels so that none overlap.
    fn x_ticks(&self, scene: &mut Scene, ticks: &[(String, f64)]) {
        let gap = match ticks {
            [a, b, ..] => (b.1 - a.1).abs(),
            _ => f64::INFINITY,
        };
        let widest = ticks
            .iter()
            .map(|(t, _)| text_width(t, TICK))
            .fold(0.0, f64::max);
        let every = ((widest + 6.0) / gap).ceil().max(1.0) as usize;
        for (i, (label, x)) in ticks.iter().enumerate() {
            scene.line((*x, self.bottom), (*x, self.bottom + 5.0), AXIS, 1.0);
            if i % every == 0 {
                scene.text((*x, self.bottom + 18.0), label, TICK, Anchor::Middle);
            }
        }
    }
}

impl LineChart {
    const W: f64 = 720.0;
    const H: f64 = 460.0;
    const FRAME: Frame = Frame {
        left: 70.0,
        right: 720.0 - 170.0,
        top: 40.0,
        bottom: 460.0 - 60.0,
    };

    fn x(&self, i: usize) -> f64 {
        let f = Self::FRAME;
        match self.x_ticks.len() {
            0 | 1 => (f.left + f.right) / 2.0,
            k => f.left + (f.right - f.left) * i as f64 / (k - 1) as f64,
        }
    }

    fn y(&self, v: f64) -> f64 {
        let (f, a) = (Self::FRAME, self.y_axis);
        let span = a.max - a.min;
        let t = if span > 0.0 {
            ((v - a.min) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        f.top + (f.bottom - f.top) * (1.0 - t)
    }

    /// The chart laid out as a scene.
    pub fn scene(&self) -> Scene {
        let f = Self::FRAME;
        let mut scene = Scene::new(Self::W, Self::H);
        let a = self.y_axis;
        let steps = a.divisions.max(1);
        let y_ticks: Vec<(String, f64)> = (0..=steps)
            .map(|k| a.min + (a.max - a.min) * k as f64 / steps as f64)
            .map(|v| (a.format.label(v), self.y(v)))
            .collect();
        f.axes(&mut scene, &y_ticks);
        let x_ticks: Vec<(String, f64)> = self
            .x_ticks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), self.x(i)))
            .collect();
        f.x_ticks(&mut scene, &x_ticks);
        f.labels(&mut scene, &self.title, &self.x_label, &self.y_label);
        for (k, s) in self.series.iter().enumerate() {
            self.draw_series(&mut scene, s);
            legend(&mut scene, k, s);
        }
        scene
    }

    fn points(&self, s: &Series) -> Vec<Option<(f64, f64)>> {
        s.values
            .iter()
            .enumerate()
            .map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (self.x(i), self.y(v))))
            .collect()
    }

    fn draw_series(&self, scene: &mut Scene, s: &Series) {
        let points = self.points(s);
        for w in points.windows(2) {
            if let [Some(from), Some(to)] = *w {
                scene.push(Shape::Line {
                    from,
                    to,
                    color: s.color,
                    width: 2.0,
                    dashed: s.dashed,
                });
            }
        }
        let values = s.values.iter().flatten();
        for (p, v) in points
            .iter()
            .flatten()
            .zip(values.filter(|v| v.is_finite()))
        {
            let tooltip = format!("{}: {}", s.label, self.y_axis.format.label(*v));
            scene.push(Shape::Circle {
                center: *p,
                r: 3.5,
                color: s.color,
                tooltip: Some(tooltip),
            });
        }
    }
}

/// The legend entry of series `k`: a swatch and the label, right of the plot area.
fn legend(scene: &mut Scene, k: usize, s: &Series) {
    let x = LineChart::FRAME.right + 15.0;
    let y = LineChart::FRAME.top + 10.0 + 20.0 * k as f64;
    scene.push(Shape::Line {
        from: (x, y),
        to: (x + 22.0, y),
        color: s.color,
        width: 3.0,
        dashed: s.dashed,
    });
    let room = scene.width - x - 28.0 - 4.0;
    scene.text(
        (x + 28.0, y + 4.0),
        &fit(&s.label, LABEL, room),
        LABEL,
        Anchor::Start,
    );
}

/// A bar chart of signed values: green above zero, red below, grey at zero.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Title.
    pub title: String,
    /// X axis label (may be empty).
    pub x_label: String,
    /// Y axis label (may be empty).
    pub y_label: String,
    /// One bar per entry: its label and value; a non-finite value is drawn as an empty `n/a` bar.
    pub bars: Vec<(String, f64)>,
}

const POSITIVE: Rgb = [46, 139, 87];
const NEGATIVE: Rgb = [200, 60, 60];
const ZERO: Rgb = [150, 150, 150];

/// Tick values covering `lo..=hi` (which must contain 0) at a 1-2-5 step, about five of them.
fn nice_ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    // All-zero bars still get a unit axis to stand on.
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = ((hi / step).ceil() as i64).max(first + 1);
    // Capped so absurdly small values cannot ask for hundreds of digits.
    let decimals = (-step.log10().floor()).clamp(0.0, 12.0) as usize;
    ((first..=last).map(|k| k as f64 * step).collect(), decimals)
}

impl BarChart {
    const W: f64 = 640.0;
    const H: f64 = 380.0;
    const FRAME: Frame = Frame {
        left: 70.0,
        right: 640.0 - 20.0,
        top: 40.0,
        bottom: 380.0 - 64.0,
    };

    /// The chart laid out as a scene.
    pub fn scene(&self) -> Scene {
        let f = Self::FRAME;
        let mut scene = Scene::new(Self::W, Self::H);
        let finite = || self.bars.iter().map(|b| b.1).filter(|v| v.is_finite());
        let hi = finite().fold(0.0, f64::max);
        let lo = finite().fold(0.0, f64::min);
        let (ticks, decimals) = nice_ticks(lo, hi);
        let (bottom_v, top_v) = (ticks[0], ticks[ticks.len() - 1]);
        let y = |v: f64| f.bottom - (f.bottom - f.top) * (v - bottom_v) / (top_v - bottom_v);
        let labelled: Vec<(String, f64)> = ticks
            .iter()
            .map(|&v| (format!("{v:.decimals$}"), y(v)))
            .collect();
        f.axes(&mut scene, &labelled);
        let slot = (f.right - f.left) / self.bars.len().max(1) as f64;
        for (i, (label, v)) in self.bars.iter().enumerate() {
            let cx = f.left + slot * (i as f64 + 0.5);
            bar(&mut scene, (cx, slot * 0.7), *v, y, decimals + 2);
            let label = fit(label, TICK, slot - 4.0);
            scene.text((cx, f.bottom + 16.0), &label, TICK, Anchor::Middle);
        }
        scene.line((f.left, y(0.0)), (f.right, y(0.0)), AXIS, 1.0);
        f.labels(&mut scene, &self.title, &self.x_label, &self.y_label);
        scene
    }
}

/// One bar centred at `cx` and `width` wide, with its value written beyond its end.
fn bar(
    scene: &mut Scene,
    (cx, width): (f64, f64),
    v: f64,
    y: impl Fn(f64) -> f64,
    decimals: usize,
) {
    let (zero, end) = (y(0.0), y(if v.is_finite() { v } else { 0.0 }));
    let color = match v {
        v if v > 0.0 => POSITIVE,
        v if v < 0.0 => NEGATIVE,
        _ => ZERO,
    };
    let (top, h) = (zero.min(end), (zero - end).abs().max(1.0));
    scene.push(Shape::Rect {
        at: (cx - width / 2.0, top),
        size: (width, h),
        color,
    });
    let text = if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".into()
    };
    let at = if v < 0.0 {
        (cx, top + h + 13.0)
    } else {
        (cx, top - 4.0)
    };
    let text = fit(&text, TICK, width + 8.0);
    scene.text(at, &text, TICK, Anchor::Middle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_cover_the_range_with_round_steps() {
        let (t, d) = nice_ticks(-0.013, 0.047); // span 0.06: step 0.02
        assert_eq!(d, 2);
        assert!(
            (t[0] + 0.02).abs() < 1e-12 && (t[t.len() - 1] - 0.06).abs() < 1e-12,
            "{t:?}"
        );
        let (t, d) = nice_ticks(0.0, 0.0);
        assert_eq!((t.len(), d), (6, 1));
        let (t, _) = nice_ticks(0.0, 730.0);
        assert_eq!(t, vec![0.0, 200.0, 400.0, 600.0, 800.0]);
    }
}
