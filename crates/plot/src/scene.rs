//! A chart as a list of shapes in SVG user units, rendered either as an SVG document or as a
//! raster at [`PNG_SCALE`] pixels per unit, so both files share one layout.

use std::fmt::Write as _;
use std::path::Path;

use crate::PlotError;
use crate::canvas::{Canvas, Rgb};
use crate::font::{ADVANCE, GLYPH_H};

/// PNG pixels per SVG unit: twice the SVG size keeps the bitmap font's strokes crisp.
pub const PNG_SCALE: f64 = 2.0;

/// Where a text's anchor point sits along the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The anchor is the text's start.
    Start,
    /// The anchor is the text's middle.
    Middle,
    /// The anchor is the text's end.
    End,
}

/// A run of text whose baseline passes through `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// The anchor point (on the baseline), in SVG units.
    pub at: (f64, f64),
    /// The characters.
    pub text: String,
    /// Font size in SVG units.
    pub size: f64,
    /// Where `at` sits along the text.
    pub anchor: Anchor,
    /// Colour.
    pub color: Rgb,
    /// Turned a quarter left, reading upwards (for y-axis labels).
    pub vertical: bool,
}

/// One drawing primitive.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A straight line, optionally dashed (6 units on, 4 off).
    Line {
        /// Start point.
        from: (f64, f64),
        /// End point.
        to: (f64, f64),
        /// Colour.
        color: Rgb,
        /// Stroke width.
        width: f64,
        /// Whether the line is dashed.
        dashed: bool,
    },
    /// A filled axis-aligned rectangle.
    Rect {
        /// Top-left corner.
        at: (f64, f64),
        /// Width and height (non-negative).
        size: (f64, f64),
        /// Colour.
        color: Rgb,
    },
    /// A filled circle with an optional tooltip (SVG only).
    Circle {
        /// Centre.
        center: (f64, f64),
        /// Radius.
        r: f64,
        /// Colour.
        color: Rgb,
        /// Tooltip text.
        tooltip: Option<String>,
    },
    /// Text.
    Text(Text),
}

/// A picture: a white background of `width × height` units and shapes painted in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Width in SVG units.
    pub width: f64,
    /// Height in SVG units.
    pub height: f64,
    /// Shapes, back to front.
    pub shapes: Vec<Shape>,
}

const DASH: (f64, f64) = (6.0, 4.0);

/// Font pixels per glyph pixel in the PNG for a font of `size` units.
fn dot(size: f64) -> usize {
    (size * PNG_SCALE / 10.0).round().max(1.0) as usize
}

/// The width of `text` at `size`, in SVG units, as the PNG draws it (SVG fonts are narrower).
pub fn text_width(text: &str, size: f64) -> f64 {
    let n = text.chars().count();
    (n * ADVANCE).saturating_sub(1) as f64 * dot(size) as f64 / PNG_SCALE
}

/// `text` cut to at most `max_width` units at `size`, ending in `…` when cut.
pub fn fit(text: &str, size: f64, max_width: f64) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    // Characters that fit, less one for the ellipsis; counted, not searched, so long labels are cheap.
    let per_char = (ADVANCE * dot(size)) as f64 / PNG_SCALE;
    let room = ((max_width + per_char / ADVANCE as f64) / per_char)
        .floor()
        .max(1.0) as usize;
    let mut out: String = text.chars().take(room - 1).collect();
    out.push('…');
    out
}

/// Escapes text for SVG character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

impl Scene {
    /// An empty scene.
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            shapes: Vec::new(),
        }
    }

    /// Adds a shape.
    pub fn push(&mut self, shape: Shape) {
        self.shapes.push(shape);
    }

    /// Adds a text.
    pub fn text(&mut self, at: (f64, f64), text: &str, size: f64, anchor: Anchor) {
        self.push(Shape::Text(Text {
            at,
            text: text.to_string(),
            size,
            anchor,
            color: [0, 0, 0],
            vertical: false,
        }));
    }

    /// Adds a solid line.
    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), color: Rgb, width: f64) {
        self.push(Shape::Line {
            from,
            to,
            color,
            width,
            dashed: false,
        });
    }

    /// The scene as an SVG document.
    pub fn svg(&self) -> String {
        let (w, h) = (self.width, self.height);
        let mut o = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        for shape in &self.shapes {
            svg_shape(&mut o, shape);
        }
        o + "</svg>\n"
    }

    /// The scene as pixels, [`PNG_SCALE`] per unit.
    pub fn raster(&self) -> Canvas {
        let px = |v: f64| (v * PNG_SCALE).round().max(1.0) as usize;
        let mut c = Canvas::new(px(self.width), px(self.height));
        for shape in &self.shapes {
            raster_shape(&mut c, shape);
        }
        c
    }

    /// Writes `<stem>.svg` and `<stem>.png`.
    pub fn write(&self, stem: &Path) -> Result<(), PlotError> {
        let svg = stem.with_extension("svg");
        std::fs::write(&svg, self.svg()).map_err(|e| PlotError::new(&svg, e))?;
        self.raster().write_png(&stem.with_extension("png"))
    }
}

fn svg_shape(o: &mut String, shape: &Shape) {
    // `write!` into a String cannot fail.
    let _ = match shape {
        Shape::Line {
            from,
            to,
            color,
            width,
            dashed,
        } => writeln!(
            o,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{width}\"{}/>",
            from.0,
            from.1,
            to.0,
            to.1,
            hex(*color),
            if *dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            }
        ),
        Shape::Rect { at, size, color } => writeln!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
            at.0,
            at.1,
            size.0,
            size.1,
            hex(*color)
        ),
        Shape::Circle {
            center,
            r,
            color,
            tooltip,
        } => writeln!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{}\">{}</circle>",
            center.0,
            center.1,
            hex(*color),
            tooltip
                .as_deref()
                .map_or(String::new(), |t| format!("<title>{}</title>", escape(t)))
        ),
        Shape::Text(t) => svg_text(o, t),
    };
}

fn svg_text(o: &mut String, t: &Text) -> std::fmt::Result {
    let anchor = match t.anchor {
        Anchor::Start => "start",
        Anchor::Middle => "middle",
        Anchor::End => "end",
    };
    let (x, y) = t.at;
    let turn = if t.vertical {
        format!(" transform=\"rotate(-90 {x:.1} {y:.1})\"")
    } else {
        String::new()
    };
    writeln!(
        o,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"{}\"{turn}>{}</text>",
        t.size,
        hex(t.color),
        escape(&t.text)
    )
}

fn raster_shape(c: &mut Canvas, shape: &Shape) {
    let s = |p: (f64, f64)| (p.0 * PNG_SCALE, p.1 * PNG_SCALE);
    match shape {
        Shape::Line {
            from,
            to,
            color,
            width,
            dashed,
        } => {
            let dash = dashed.then_some((DASH.0 * PNG_SCALE, DASH.1 * PNG_SCALE));
            c.line(s(*from), s(*to), *color, width * PNG_SCALE, dash);
        }
        Shape::Rect { at, size, color } => {
            c.fill_rect(s(*at), s((at.0 + size.0, at.1 + size.1)), *color);
        }
        Shape::Circle {
            center, r, color, ..
        } => c.disc(s(*center), r * PNG_SCALE, *color),
        Shape::Text(t) => raster_text(c, t),
    }
}

fn raster_text(c: &mut Canvas, t: &Text) {
    let d = dot(t.size);
    let len = text_width(&t.text, t.size) * PNG_SCALE;
    let lead = match t.anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => len / 2.0,
        Anchor::End => len,
    };
    let (x, y) = (t.at.0 * PNG_SCALE, t.at.1 * PNG_SCALE);
    let cap = (GLYPH_H * d) as f64;
    // The glyphs stand on the baseline; turned, their tops point left of it.
    let corner = if t.vertical {
        (x - cap, y + lead - 1.0)
    } else {
        (x - lead, y - cap)
    };
    let corner = (corner.0.round() as i64, corner.1.round() as i64);
    c.text(corner, &t.text, d, t.color, t.vertical);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_short_text_and_cuts_long_text_to_the_width() {
        assert_eq!(fit("miner-b", 11.0, 200.0), "miner-b");
        for width in [10.0, 33.0, 47.5, 100.0] {
            let cut = fit(&"x".repeat(500), 11.0, width);
            assert!(cut.ends_with('…'));
            assert!(text_width(&cut, 11.0) <= width, "{cut} at {width}");
            // One more character would not have fitted.
            let longer = format!("x{cut}");
            assert!(text_width(&longer, 11.0) > width, "{cut} at {width}");
        }
    }

    #[test]
    fn escape_makes_text_safe_for_xml() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}"
        );
    }
}
