//! Tests against golden fixtures produced by `fixtures/make_fixtures.py` (datasketch and numpy).

use assay_integrity::minhash::optimal_lsh_shape;
use assay_integrity::models::{ModelRules, ModelViolation, check_model_folder};
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

#[test]
fn lsh_shape_matches_datasketch() {
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("lsh_params.json")).unwrap()).unwrap();
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let threshold = case["threshold"].as_f64().unwrap();
        let num_perm = case["num_perm"].as_u64().unwrap() as usize;
        let expected = (
            case["bands"].as_u64().unwrap() as usize,
            case["rows"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            optimal_lsh_shape(threshold, num_perm, 0.5, 0.5),
            expected,
            "threshold {threshold} num_perm {num_perm}"
        );
    }
}

#[test]
fn tiny_model_matches_numpy() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("tiny_model_expected.json")).unwrap())
            .unwrap();
    let report = check_model_folder(&fixture("tiny_model"), &ModelRules::default());
    assert_eq!(report.parameters, expected["parameters"].as_u64().unwrap());
    let norms = expected["projection_norms"].as_object().unwrap();
    assert_eq!(report.projection_norms.len(), norms.len());
    for (name, norm) in norms {
        let norm = norm.as_f64().unwrap() as f32;
        let found = report.projection_norms[name];
        assert!(
            (found - norm).abs() <= norm * 1e-6,
            "{name}: {found} vs numpy {norm}"
        );
    }
    for (name, count) in expected["non_finite"].as_object().unwrap() {
        let violation = ModelViolation::NonFinite {
            tensor: name.clone(),
            count: count.as_u64().unwrap(),
        };
        assert!(
            report.violations.contains(&violation),
            "{:?}",
            report.violations
        );
    }
    // Layer 1 norms are ~250 (> 200) in every projection type: half the layers are "high".
    assert!(report.violations.iter().any(|v| matches!(v, ModelViolation::TooManyHighNorms { mean_fraction, .. } if *mean_fraction == 0.5)));
}
