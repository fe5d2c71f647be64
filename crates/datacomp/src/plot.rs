//! A bar chart of each miner's score, as SVG (with labels) and PNG (bars only, for quick viewing).

use std::path::Path;

use crate::error::DatacompError;

/// One bar: a label and a value (may be negative).
pub type Bar = (String, f64);

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const MARGIN: f64 = 48.0;

fn layout(bars: &[Bar]) -> (f64, f64, f64) {
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let min = bars.iter().map(|b| b.1).fold(0.0f64, f64::min);
    let span = (max - min).max(1e-12);
    let plot_h = HEIGHT as f64 - 2.0 * MARGIN;
    let zero_y = MARGIN + plot_h * max / span;
    (
        zero_y,
        plot_h / span,
        (WIDTH as f64 - 2.0 * MARGIN) / bars.len().max(1) as f64,
    )
}

fn colour(v: f64) -> [u8; 3] {
    if v > 0.0 {
        [46, 139, 87]
    } else if v < 0.0 {
        [200, 60, 60]
    } else {
        [150, 150, 150]
    }
}

/// Writes `stem.svg` and `stem.png`.
pub fn bar_chart(bars: &[Bar], title: &str, stem: &Path) -> Result<(), DatacompError> {
    let svg = svg(bars, title);
    let svg_path = stem.with_extension("svg");
    std::fs::write(&svg_path, svg).map_err(|e| DatacompError::io(&svg_path, e))?;
    let png_path = stem.with_extension("png");
    let file = std::fs::File::create(&png_path).map_err(|e| DatacompError::io(&png_path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let to_io = |e: png::EncodingError| DatacompError::io(&png_path, std::io::Error::other(e));
    let mut writer = encoder.write_header().map_err(to_io)?;
    writer.write_image_data(&raster(bars)).map_err(to_io)?;
    Ok(())
}

fn svg(bars: &[Bar], title: &str) -> String {
    let (zero_y, scale, slot) = layout(bars);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
        WIDTH / 2,
        escape(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let x = MARGIN + slot * (i as f64 + 0.15);
        let h = (v * scale).abs();
        let y = if *v >= 0.0 { zero_y - h } else { zero_y };
        let [r, g, b] = colour(*v);
        s += &format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"rgb({r},{g},{b})\"/>\n\
             <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{v:.4}</text>\n",
            slot * 0.7,
            x + slot * 0.35,
            HEIGHT as f64 - MARGIN + 18.0,
            escape(label),
            x + slot * 0.35,
            if *v >= 0.0 { y - 4.0 } else { y + h + 12.0 },
        );
    }
    s += &format!(
        "<line x1=\"{MARGIN}\" x2=\"{}\" y1=\"{zero_y:.1}\" y2=\"{zero_y:.1}\" stroke=\"black\"/>\n</svg>\n",
        WIDTH as f64 - MARGIN
    );
    s
}

fn raster(bars: &[Bar]) -> Vec<u8> {
    let (zero_y, scale, slot) = layout(bars);
    let mut img = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    let mut fill = |x0: f64, x1: f64, y0: f64, y1: f64, c: [u8; 3]| {
        let clamp = |v: f64, hi: u32| v.round().clamp(0.0, hi as f64) as u32;
        for y in clamp(y0, HEIGHT)..clamp(y1, HEIGHT) {
            for x in clamp(x0, WIDTH)..clamp(x1, WIDTH) {
                let i = ((y * WIDTH + x) * 3) as usize;
                img[i..i + 3].copy_from_slice(&c);
            }
        }
    };
    for (i, (_, v)) in bars.iter().enumerate() {
        let x = MARGIN + slot * (i as f64 + 0.15);
        let h = (v * scale).abs().max(1.0);
        let (y0, y1) = if *v >= 0.0 {
            (zero_y - h, zero_y)
        } else {
            (zero_y, zero_y + h)
        };
        fill(x, x + slot * 0.7, y0, y1, colour(*v));
    }
    fill(
        MARGIN,
        WIDTH as f64 - MARGIN,
        zero_y - 0.5,
        zero_y + 1.0,
        [0, 0, 0],
    );
    img
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
