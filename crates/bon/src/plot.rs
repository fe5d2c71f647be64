//! Line charts of accuracy, as SVG (with labels) and as PNG (a plain raster of the same lines, axes
//! and grid, without text: there is no font renderer here, so the SVG carries the labels).

use std::path::Path;

use crate::error::{BonError, Result};

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// RGB colour.
    pub color: [u8; 3],
    /// One y value (0-1) per x tick; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
    /// Dashed (used for reference lines such as greedy).
    pub dashed: bool,
}

/// A chart with evenly spaced, labelled x ticks and y in 0..1.
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
    /// The lines.
    pub series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

impl Chart {
    fn x(&self, i: usize) -> f64 {
        let span = W - LEFT - RIGHT;
        match self.x_ticks.len() {
            0 | 1 => LEFT + span / 2.0,
            k => LEFT + span * i as f64 / (k - 1) as f64,
        }
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - v.clamp(0.0, 1.0))
    }

    /// Segments of each series, as pixel coordinates.
    fn segments(&self, s: &Series) -> Vec<((f64, f64), (f64, f64))> {
        let pts: Vec<Option<(f64, f64)>> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| (self.x(i), self.y(v))))
            .collect();
        pts.windows(2)
            .filter_map(|w| Some((w[0]?, w[1]?)))
            .collect()
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let mut o = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        o += &format!(
            "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
            W / 2.0,
            escape(&self.title)
        );
        for k in 0..=5 {
            let v = k as f64 / 5.0;
            let y = self.y(v);
            o += &format!(
                "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}%</text>\n",
                W - RIGHT,
                LEFT - 8.0,
                y + 4.0,
                v * 100.0
            );
        }
        for (i, t) in self.x_ticks.iter().enumerate() {
            o += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                self.x(i),
                H - BOTTOM + 18.0,
                escape(t)
            );
        }
        o += &self.svg_axes();
        for (k, s) in self.series.iter().enumerate() {
            o += &self.svg_series(k, s);
        }
        o + "</svg>\n"
    }

    fn svg_axes(&self) -> String {
        format!(
            "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"black\"/>\n<text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\">{xlab}</text>\n<text x=\"18\" y=\"{cy}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {cy})\">{ylab}</text>\n",
            b = H - BOTTOM,
            r = W - RIGHT,
            cx = (LEFT + W - RIGHT) / 2.0,
            xl = H - 15.0,
            cy = (TOP + H - BOTTOM) / 2.0,
            xlab = escape(&self.x_label),
            ylab = escape(&self.y_label),
        )
    }

    fn svg_series(&self, k: usize, s: &Series) -> String {
        let [r, g, b] = s.color;
        let color = format!("rgb({r},{g},{b})");
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let mut o = String::new();
        for ((x1, y1), (x2, y2)) in self.segments(s) {
            o += &format!(
                "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n"
            );
        }
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                o += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>{}: {:.1}%</title></circle>\n",
                    self.x(i),
                    self.y(*v),
                    escape(&s.label),
                    v * 100.0
                );
            }
        }
        let ly = TOP + 10.0 + 20.0 * k as f64;
        let lx = W - RIGHT + 15.0;
        o + &format!(
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n<text x=\"{}\" y=\"{}\">{}</text>\n",
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(&s.label)
        )
    }

    /// The chart as RGB pixels, `W x H`.
    pub fn raster(&self) -> Canvas {
        let mut c = Canvas::new(W as usize, H as usize);
        for k in 0..=5 {
            let y = self.y(k as f64 / 5.0);
            c.line((LEFT, y), (W - RIGHT, y), [221, 221, 221], 1, false);
        }
        c.line(
            (LEFT, H - BOTTOM),
            (W - RIGHT, H - BOTTOM),
            [0, 0, 0],
            1,
            false,
        );
        c.line((LEFT, TOP), (LEFT, H - BOTTOM), [0, 0, 0], 1, false);
        for i in 0..self.x_ticks.len() {
            let x = self.x(i);
            c.line((x, H - BOTTOM), (x, H - BOTTOM + 6.0), [0, 0, 0], 1, false);
        }
        for (k, s) in self.series.iter().enumerate() {
            for (a, b) in self.segments(s) {
                c.line(a, b, s.color, 2, s.dashed);
            }
            for (i, v) in s.values.iter().enumerate() {
                if let Some(v) = v {
                    c.dot((self.x(i), self.y(*v)), 4, s.color);
                }
            }
            // Legend swatch in the same order as the SVG legend.
            let ly = TOP + 10.0 + 20.0 * k as f64;
            let lx = W - RIGHT + 15.0;
            c.line((lx, ly), (lx + 22.0, ly), s.color, 3, s.dashed);
        }
        c
    }

    /// Writes `<stem>.svg` and `<stem>.png`.
    pub fn write(&self, stem: &Path) -> Result<()> {
        let svg = stem.with_extension("svg");
        std::fs::write(&svg, self.svg()).map_err(|e| BonError::io(&svg, e.to_string()))?;
        self.raster().write_png(&stem.with_extension("png"))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An RGB image.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        self.pixels[i..i + 3].copy_from_slice(&color);
    }

    fn dot(&mut self, (cx, cy): (f64, f64), r: i64, color: [u8; 3]) {
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r {
                    self.set(cx.round() as i64 + dx, cy.round() as i64 + dy, color);
                }
            }
        }
    }

    /// A line `width` pixels thick, sampled every half pixel; dashes are 6 on, 4 off.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: [u8; 3], width: i64, dashed: bool) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            if dashed && (t * len) % 10.0 >= 6.0 {
                continue;
            }
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            for d in 0..width {
                let off = d - width / 2;
                self.set(x.round() as i64 + off, y.round() as i64, color);
                self.set(x.round() as i64, y.round() as i64 + off, color);
            }
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| BonError::io(path, e.to_string()))?;
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.width as u32,
            self.height as u32,
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| BonError::io(path, e.to_string()))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| BonError::io(path, e.to_string()))
    }
}
