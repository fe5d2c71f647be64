//! An RGB raster with the few drawing operations charts need, and PNG encoding.

use std::path::Path;

use crate::PlotError;
use crate::font::{self, ADVANCE, DESCENT, GLYPH_H, GLYPH_W};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An 8-bit RGB image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes, row by row.
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

    /// The colour at `(x, y)`, or `None` outside the canvas.
    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * 3;
        Some([self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]])
    }

    /// Paints one pixel; anything outside the canvas is clipped.
    pub fn set(&mut self, x: i64, y: i64, color: Rgb) {
        let (Ok(x), Ok(y)) = (usize::try_from(x), usize::try_from(y)) else {
            return;
        };
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Fills the pixels whose centres lie in `[x0, x1) × [y0, y1)`.
    pub fn fill_rect(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb) {
        // Clamping before the cast keeps huge or non-finite coordinates from looping for ever.
        let clamp = |v: f64, hi: usize| {
            if v.is_nan() {
                0
            } else {
                v.round().clamp(0.0, hi as f64) as usize
            }
        };
        for y in clamp(y0, self.height)..clamp(y1, self.height) {
            for x in clamp(x0, self.width)..clamp(x1, self.width) {
                self.set(x as i64, y as i64, color);
            }
        }
    }

    /// A filled disc of radius `r` pixels.
    pub fn disc(&mut self, (cx, cy): (f64, f64), r: f64, color: Rgb) {
        let reach = r.ceil() as i64;
        let (cx, cy) = (cx.round() as i64, cy.round() as i64);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                if ((dx * dx + dy * dy) as f64) <= r * r {
                    self.set(cx + dx, cy + dy, color);
                }
            }
        }
    }

    /// A line `width` pixels thick; a dashed line draws `dash` pixels and skips `gap`.
    pub fn line(
        &mut self,
        a: (f64, f64),
        b: (f64, f64),
        color: Rgb,
        width: f64,
        dash: Option<(f64, f64)>,
    ) {
        let len = (b.0 - a.0).hypot(b.1 - a.1);
        if !len.is_finite() {
            return;
        }
        // Half-pixel steps leave no holes in steep lines; the cap keeps a wild coordinate cheap.
        let steps = (len * 2.0).ceil().clamp(1.0, 1e6) as usize;
        let half = width / 2.0;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            if dash.is_some_and(|(on, off)| (t * len) % (on + off) >= on) {
                continue;
            }
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            self.fill_rect((x - half, y - half), (x + half, y + half), color);
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `dot`×`dot` square;
    /// the baseline is `7 * dot` pixels below `y` and descending glyphs reach below it.
    /// With `vertical`, the text is turned a quarter left: it reads upwards, its glyph tops point
    /// left, and `(x, y)` is its bottom-left pixel.
    pub fn text(&mut self, (x, y): (i64, i64), text: &str, dot: usize, color: Rgb, vertical: bool) {
        let dot = dot.max(1) as i64;
        for (i, c) in text.chars().enumerate() {
            let origin = (i * ADVANCE) as i64;
            for gy in 0..GLYPH_H {
                for gx in 0..GLYPH_W {
                    if font::ink(c, gx, gy) {
                        let row = gy + if font::descends(c) { DESCENT } else { 0 };
                        let (u, v) = ((origin + gx as i64) * dot, row as i64 * dot);
                        self.square(
                            if vertical {
                                (x + v, y - u - dot + 1)
                            } else {
                                (x + u, y + v)
                            },
                            dot,
                            color,
                        );
                    }
                }
            }
        }
    }

    fn square(&mut self, (x, y): (i64, i64), size: i64, color: Rgb) {
        for dy in 0..size {
            for dx in 0..size {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// The image as PNG bytes (8-bit RGB).
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }

    /// Writes the image to `path` as PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let bytes = self
            .png()
            .map_err(|e| PlotError::new(path, std::io::Error::other(e)))?;
        std::fs::write(path, bytes).map_err(|e| PlotError::new(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INK: Rgb = [0, 0, 0];

    fn inked(c: &Canvas) -> Vec<(usize, usize)> {
        (0..c.height)
            .flat_map(|y| (0..c.width).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == Some(INK))
            .collect()
    }

    #[test]
    fn text_reproduces_the_glyph_at_every_dot_size() {
        for dot in 1..=3 {
            let mut c = Canvas::new(20, 30);
            c.text((2, 3), "F", dot, INK, false);
            for y in 0..30 {
                for x in 0..20 {
                    let inside = x >= 2 && y >= 3;
                    let want = inside && font::ink('F', (x - 2) / dot, (y - 3) / dot);
                    assert_eq!(c.get(x, y) == Some(INK), want, "dot {dot} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn descending_glyphs_hang_below_the_baseline() {
        let mut c = Canvas::new(20, 12);
        c.text((0, 0), "op", 1, INK, false);
        let lowest = |x0: usize| {
            inked(&c)
                .into_iter()
                .filter(|p| p.0 >= x0 && p.0 < x0 + 5)
                .map(|p| p.1)
                .max()
        };
        assert_eq!(lowest(0), Some(GLYPH_H - 1));
        assert_eq!(lowest(ADVANCE), Some(GLYPH_H - 1 + DESCENT));
    }

    #[test]
    fn vertical_text_is_the_horizontal_text_turned_a_quarter_left() {
        let mut h = Canvas::new(40, 40);
        h.text((0, 0), "Ab", 1, INK, false);
        let mut v = Canvas::new(40, 40);
        v.text((0, 39), "Ab", 1, INK, true);
        let turned: Vec<(usize, usize)> = inked(&h).into_iter().map(|(x, y)| (y, 39 - x)).collect();
        let mut got = inked(&v);
        let mut want = turned;
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn drawing_off_canvas_or_with_wild_coordinates_is_clipped() {
        let mut c = Canvas::new(10, 10);
        c.line((-5.0, 5.0), (50.0, 5.0), INK, 1.0, None);
        c.line((f64::NAN, 0.0), (1.0, 1.0), INK, 1.0, None);
        c.line((0.0, 0.0), (1e300, 1e300), INK, 1.0, None);
        c.fill_rect((-1e18, f64::NAN), (1e18, 2.0), INK);
        c.text((8, 8), "WW", 2, INK, false);
        c.disc((-100.0, -100.0), 3.0, INK);
        assert_eq!(c.pixels.len(), 300);
        assert!((0..10).all(|x| c.get(x, 5) == Some(INK)));
    }

    #[test]
    fn dashed_lines_leave_gaps_of_the_requested_length() {
        let mut c = Canvas::new(100, 3);
        c.line((0.0, 1.0), (99.0, 1.0), INK, 1.0, Some((6.0, 4.0)));
        let row: Vec<bool> = (0..100).map(|x| c.get(x, 1) == Some(INK)).collect();
        assert!(row[..6].iter().all(|&p| p), "{row:?}");
        assert!(row[7..10].iter().all(|&p| !p), "{row:?}");
        assert!(row[11..16].iter().all(|&p| p), "{row:?}");
    }
}
