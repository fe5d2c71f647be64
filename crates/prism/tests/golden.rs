//! Tests against fixtures produced by PRISM's own Python (fixtures/make_golden.py): sandbox
//! verdicts and AST fingerprints, scores of synthetic loss records, held-out chunking and bpb.

use std::collections::{BTreeMap, BTreeSet};

use assay_prism::fingerprint;
use assay_prism::pyast::PyFile;
use assay_prism::sandbox::{self, Finding};
use assay_prism::score::{self, Heldout, Prequential};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("../fixtures/golden.json")).unwrap()
}

fn check(case: &Value) -> (PyFile, Vec<Finding>) {
    let name = case["name"].as_str().unwrap();
    let code = case["code"].as_str().unwrap();
    let roots: BTreeSet<String> = case["local_roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let file = PyFile::parse(&format!("{name}.py"), code).unwrap();
    let findings = sandbox::check_file(&file, &roots);
    (file, findings)
}

/// Red-team cases PRISM lets through and assay rejects, with the rule it uses.
fn extension_expectations() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("builtins_subscript", "prism:no-dynamic-code"),
        ("torch_from_file", "prism:no-filesystem"),
        ("torch_jit_load", "prism:no-deserialization"),
        ("torch_load_library", "prism:no-ffi"),
        ("from_torch_hub", "prism:no-torch-escape"),
        ("from_cpp_extension", "prism:no-torch-escape"),
        ("traceback_frame_globals", "prism:no-attribute-escape"),
        ("generator_frame", "prism:no-attribute-escape"),
        ("builtin_self_open", "prism:no-attribute-escape"),
        ("module_loader_read", "prism:no-filesystem"),
        ("torch_sys_modules", "prism:no-process"),
        ("torch_os_exec", "prism:no-process"),
        ("from_torch_import_os", "prism:no-process"),
        ("alias_torch_hub", "prism:no-torch-escape"),
        ("alias_torch_load", "prism:no-deserialization"),
        ("serialization_load", "prism:no-deserialization"),
        ("storage_from_file", "prism:no-filesystem"),
        ("patch_cross_entropy", "prism:no-monkeypatch"),
        ("patch_alias_setattr", "prism:no-monkeypatch"),
        ("patch_tensor_item", "prism:no-monkeypatch"),
    ])
}

#[test]
fn every_reference_rejection_is_found_with_its_rule_and_line() {
    let g = golden();
    let mut rejected = 0;
    for case in g["sandbox"].as_array().unwrap() {
        let Some(rule) = case["reference_rule"].as_str() else {
            continue;
        };
        rejected += 1;
        let line = case["reference_line"].as_u64().unwrap() as usize;
        let (_, findings) = check(case);
        assert!(
            findings
                .iter()
                .any(|f| f.rule == rule && f.line == line && !f.extension),
            "{}: expected {rule} at line {line}, got {findings:#?}",
            case["name"]
        );
    }
    assert!(rejected >= 40, "the red-team set shrank: {rejected}");
}

#[test]
fn escapes_prism_misses_are_rejected_as_extensions() {
    let g = golden();
    let expected = extension_expectations();
    let mut seen = 0;
    for case in g["sandbox"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let Some(rule) = expected.get(name) else {
            continue;
        };
        seen += 1;
        assert!(
            case["reference_rule"].is_null(),
            "{name}: PRISM now rejects it; drop the extension"
        );
        let (_, findings) = check(case);
        assert!(
            findings.iter().any(|f| f.rule == *rule && f.extension),
            "{name}: expected extension {rule}, got {findings:#?}"
        );
    }
    assert_eq!(
        seen,
        expected.len(),
        "an expected case is missing from golden.json"
    );
}

#[test]
fn accepted_code_passes_and_fingerprints_match_prism() {
    let g = golden();
    let extensions = extension_expectations();
    let mut accepted = 0;
    for case in g["sandbox"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if !case["reference_rule"].is_null() || extensions.contains_key(name) {
            continue;
        }
        accepted += 1;
        let (file, findings) = check(case);
        assert!(findings.is_empty(), "{name}: {findings:#?}");
        let ours = fingerprint::file_fingerprint(&file);
        let theirs: BTreeSet<String> = case["fingerprint"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let missing: Vec<_> = theirs.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: missing {missing:?}, extra {extra:?}"
        );
    }
    assert!(accepted >= 8);
}

#[test]
fn scores_match_prism_score_prequential_bpb() {
    let g = golden();
    for case in g["score"].as_array().unwrap() {
        let vocab = case["vocab"].as_u64().unwrap() as u32;
        let mut preq = Prequential::new(vocab);
        for b in case["batches"].as_array().unwrap() {
            preq.record(
                b[0].as_u64().unwrap() as usize,
                b[1].as_u64().unwrap() as usize,
                b[2].as_f64(),
            );
        }
        let heldout = case["heldout"].as_object().map(|h| {
            let f = |k: &str| h[k].as_f64().unwrap();
            Heldout::new(
                f("val_bpb_random_init"),
                f("val_bpb_trained"),
                Some(f("train_bpb_converged")),
                preq.bpb(),
                0,
            )
        });
        let score = score::final_score(&preq, heldout.as_ref(), 1.0).unwrap();
        let name = &case["name"];
        assert!(
            (score.bpb - case["bpb"].as_f64().unwrap()).abs() < 1e-12,
            "{name} bpb"
        );
        assert!(
            (score.final_score - case["final_score"].as_f64().unwrap()).abs() < 1e-12,
            "{name} final"
        );
        let flags: Vec<String> = case["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().into())
            .collect();
        assert_eq!(score.flags, flags, "{name} flags");
        if let Some(h) = &heldout {
            assert_eq!(
                h.memorization_flag,
                case["memorization_flag"].as_bool().unwrap(),
                "{name}"
            );
            let gap = case["train_heldout_gap"].as_f64().unwrap();
            assert!(
                (h.train_heldout_gap.unwrap() - gap).abs() < 1e-12,
                "{name} gap"
            );
        }
    }
}

/// Mean loss of the fixture's fixed model (logit 1.5 on id 7, 0 elsewhere) on a chunk.
fn fixed_model_loss(chunk: &score::Batch, vocab: u32) -> f64 {
    let lse = ((f64::from(vocab) - 1.0) + 1.5f64.exp()).ln();
    let mut total = 0.0;
    let mut n = 0.0;
    for row in chunk.tokens.chunks(chunk.cols) {
        for &target in &row[1..] {
            total += lse - if target % vocab == 7 { 1.5 } else { 0.0 };
            n += 1.0;
        }
    }
    total / n
}

#[test]
fn heldout_chunks_and_bpb_match_prism() {
    let g = golden();
    for case in g["heldout"].as_array().unwrap() {
        let texts: Vec<String> = case["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().into())
            .collect();
        let vocab = case["vocab"].as_u64().unwrap() as u32;
        let seq = case["seq_len"].as_u64().unwrap() as usize;
        let batch = case["batch_size"].as_u64().unwrap() as usize;
        let chunks = score::heldout_chunks(&texts, vocab, seq, batch);
        let shapes: Vec<[usize; 2]> = chunks.iter().map(|c| [c.rows, c.cols]).collect();
        let expected: Vec<[usize; 2]> = serde_json::from_value(case["shapes"].clone()).unwrap();
        assert_eq!(shapes, expected);
        let losses: Vec<Option<f64>> = chunks
            .iter()
            .map(|c| Some(fixed_model_loss(c, vocab)))
            .collect();
        let bpb = score::fixed_model_bpb(&chunks, &losses, vocab).unwrap();
        // The reference loss is torch f32 cross-entropy; ours is exact f64.
        assert!(
            (bpb - case["bpb"].as_f64().unwrap()).abs() < 1e-6,
            "{bpb} vs {}",
            case["bpb"]
        );
    }
}
