//! The files a chart writes: a PNG that an independent decoder reads back pixel for pixel, with
//! valid chunk CRCs and the text drawn in, and an SVG that parses as XML and carries every label.

use assay_plot::scene::PNG_SCALE;
use assay_plot::{BarChart, Canvas, LineChart, Series, YAxis};

fn line_chart() -> LineChart {
    LineChart {
        title: "Accuracy <vs> n & more".into(),
        x_label: "n (first n samples)".into(),
        y_label: "accuracy".into(),
        x_ticks: ["1", "2", "4", "8"].map(String::from).to_vec(),
        y_axis: YAxis::fraction(),
        series: vec![
            Series {
                label: "weighted BoN".into(),
                color: [214, 39, 40],
                values: vec![Some(0.25), Some(0.5), None, Some(1.0)],
                dashed: false,
            },
            Series {
                label: "greedy".into(),
                color: [90, 90, 90],
                values: vec![Some(0.4); 4],
                dashed: true,
            },
        ],
    }
}

fn bar_chart() -> BarChart {
    BarChart {
        title: "score per miner".into(),
        x_label: "miner".into(),
        y_label: "score".into(),
        bars: vec![
            ("alice".into(), 0.04),
            ("bob".into(), -0.02),
            ("carol".into(), f64::NAN),
        ],
    }
}

/// The chunks of a PNG: (type, data), after checking the signature and every CRC.
fn chunks(png: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut out = Vec::new();
    let mut rest = &png[8..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let (kind, data) = (&rest[4..8], &rest[8..8 + len]);
        let crc = u32::from_be_bytes(rest[8 + len..12 + len].try_into().unwrap());
        let mut h = crc32fast::Hasher::new();
        h.update(kind);
        h.update(data);
        assert_eq!(
            h.finalize(),
            crc,
            "CRC of chunk {}",
            String::from_utf8_lossy(kind)
        );
        out.push((String::from_utf8_lossy(kind).into_owned(), data.to_vec()));
        rest = &rest[12 + len..];
    }
    out
}

fn decode(png: &[u8]) -> Canvas {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Rgb, png::BitDepth::Eight)
    );
    pixels.truncate(info.buffer_size());
    Canvas {
        width: info.width as usize,
        height: info.height as usize,
        pixels,
    }
}

#[test]
fn png_is_well_formed_and_decodes_to_the_raster() {
    let scene = line_chart().scene();
    let raster = scene.raster();
    let bytes = raster.png().unwrap();
    let chunks = chunks(&bytes);
    let kinds: Vec<&str> = chunks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"IHDR"));
    assert_eq!(kinds.last(), Some(&"IEND"));
    assert!(kinds.contains(&"IDAT"));
    let ihdr = &chunks[0].1;
    let dim = |i: usize| u32::from_be_bytes(ihdr[i..i + 4].try_into().unwrap()) as f64;
    assert_eq!(
        (dim(0), dim(4)),
        (scene.width * PNG_SCALE, scene.height * PNG_SCALE)
    );
    assert_eq!(decode(&bytes), raster);
}

/// Whether any pixel in the rectangle (SVG units) is darker than the grid.
fn has_ink(c: &Canvas, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) -> bool {
    let px = |v: f64| (v * PNG_SCALE) as usize;
    (px(y0)..px(y1))
        .any(|y| (px(x0)..px(x1)).any(|x| c.get(x, y).is_some_and(|p| p.iter().all(|&v| v < 100))))
}

#[test]
fn png_draws_title_tick_labels_axis_labels_and_legend() {
    let chart = line_chart();
    let full = chart.scene().raster();
    let bare = LineChart {
        title: String::new(),
        x_label: String::new(),
        y_label: String::new(),
        x_ticks: vec![String::new(); 4],
        series: chart
            .series
            .iter()
            .map(|s| Series {
                label: String::new(),
                ..s.clone()
            })
            .collect(),
        ..chart.clone()
    }
    .scene()
    .raster();
    // Title band, x label band, y label strip, legend text column.
    let regions = [
        ((0.0, 0.0), (720.0, 30.0)),
        ((0.0, 420.0), (720.0, 460.0)),
        ((0.0, 40.0), (30.0, 400.0)),
        ((590.0, 40.0), (720.0, 100.0)),
    ];
    for (a, b) in regions {
        assert!(has_ink(&full, a, b), "no text in {a:?}-{b:?}");
        assert!(!has_ink(&bare, a, b), "ink without text in {a:?}-{b:?}");
    }
    // The y tick labels stay in both (they come from the axis, not from the labels).
    assert!(has_ink(&bare, (30.0, 35.0), (66.0, 405.0)));
}

#[test]
fn png_marks_points_in_their_series_colour() {
    let raster = line_chart().scene().raster();
    // x ticks at 70..550 evenly; y = 40 + 360 * (1 - v).
    let at = |x: f64, y: f64| raster.get((x * PNG_SCALE) as usize, (y * PNG_SCALE) as usize);
    assert_eq!(at(70.0, 40.0 + 360.0 * 0.75), Some([214, 39, 40]));
    assert_eq!(at(550.0, 40.0), Some([214, 39, 40]));
    // The gap at x tick 3 leaves the middle of the would-be segment unpainted by the series.
    assert_ne!(
        at(310.0 + 60.0, 40.0 + 360.0 * 0.5 - 60.0),
        Some([214, 39, 40])
    );
}

/// The text inside every `tag` element of an SVG document.
fn contents<'a>(doc: &'a roxmltree::Document, tag: &str) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter_map(|n| n.text())
        .collect()
}

#[test]
fn svg_parses_as_xml_and_carries_every_label() {
    let svg = line_chart().scene().svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().name(), root.attribute("width")),
        ("svg", Some("720"))
    );
    let texts = contents(&doc, "text");
    for want in [
        "Accuracy <vs> n & more",
        "n (first n samples)",
        "accuracy",
        "weighted BoN",
        "greedy",
        "0%",
        "100%",
        "1",
        "8",
    ] {
        assert!(texts.contains(&want), "missing {want:?} in {texts:?}");
    }
    let y_label = doc
        .descendants()
        .find(|n| n.text() == Some("accuracy"))
        .unwrap();
    assert!(
        y_label
            .attribute("transform")
            .unwrap()
            .starts_with("rotate(-90")
    );
    let tooltips = contents(&doc, "title");
    assert!(tooltips.contains(&"weighted BoN: 25%"), "{tooltips:?}");
    // Three of four points for the series with a gap, four for the other.
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count(),
        7
    );
}

#[test]
fn bar_chart_colours_by_sign_and_labels_values() {
    let scene = bar_chart().scene();
    let doc_text = scene.svg();
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    let texts = contents(&doc, "text");
    for want in [
        "score per miner",
        "alice",
        "bob",
        "carol",
        "0.0400",
        "-0.0200",
        "n/a",
        "score",
        "miner",
    ] {
        assert!(texts.contains(&want), "missing {want:?} in {texts:?}");
    }
    let fills: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| n.attribute("fill"))
        .collect();
    assert_eq!(fills, ["white", "#2e8b57", "#c83c3c", "#969696"]);
    let raster = scene.raster();
    // Three slots across 70..620: the bar centres.
    let slot = 550.0 / 3.0;
    let px = |x: f64, y: f64| raster.get((x * PNG_SCALE) as usize, (y * PNG_SCALE) as usize);
    let zero_y = doc
        .descendants()
        .find(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#c83c3c"))
        .unwrap()
        .attribute("y")
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert_eq!(px(70.0 + slot * 0.5, zero_y - 5.0), Some([46, 139, 87]));
    assert_eq!(px(70.0 + slot * 1.5, zero_y + 5.0), Some([200, 60, 60]));
}

#[test]
fn degenerate_charts_still_render() {
    let empty = BarChart {
        title: String::new(),
        x_label: String::new(),
        y_label: String::new(),
        bars: vec![],
    };
    let wild = BarChart {
        bars: vec![
            ("x".into(), f64::INFINITY),
            ("y".into(), -1e300),
            ("\u{0}<z>".into(), 0.0),
            ("w".into(), f64::MAX),
            ("v".into(), -f64::MAX),
        ],
        ..empty.clone()
    };
    let flat = LineChart {
        x_ticks: vec![],
        y_axis: YAxis {
            min: 1.0,
            max: 1.0,
            divisions: 0,
            format: assay_plot::TickFormat::Fixed(2),
        },
        series: vec![Series {
            label: "s".into(),
            color: [0, 0, 0],
            values: vec![Some(f64::NAN), Some(5.0)],
            dashed: false,
        }],
        ..line_chart()
    };
    let tiny = BarChart {
        bars: vec![("t".into(), 1e-300), ("long".repeat(100_000), 1.0)],
        ..empty.clone()
    };
    for scene in [empty.scene(), wild.scene(), flat.scene(), tiny.scene()] {
        roxmltree::Document::parse(&scene.svg()).unwrap();
        let png = scene.raster().png().unwrap();
        assert_eq!(decode(&png), scene.raster());
    }
}

#[test]
fn write_puts_both_files_next_to_the_stem_and_names_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let scene = bar_chart().scene();
    scene.write(&dir.path().join("scores")).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("scores.svg")).unwrap();
    assert_eq!(svg, scene.svg());
    let png = std::fs::read(dir.path().join("scores.png")).unwrap();
    assert_eq!(decode(&png), scene.raster());
    let err = scene.write(&dir.path().join("missing/scores")).unwrap_err();
    assert!(err.to_string().contains("missing/scores.svg"), "{err}");
}
