//! Intake, contract, stream budgets, leaderboard and corpus behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use assay_prism::bundle::{Bundle, BundleError, Limits, resolve_contract};
use assay_prism::cli::example_bundle;
use assay_prism::data::Documents;
use assay_prism::leaderboard::{ScoredSubmission, State};
use assay_prism::score::{Budgets, Prequential, StopReason, TrainStream, final_score};
use assay_prism::{check_bundle, corpus, fingerprint};

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, body) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(body.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn example_entries() -> Vec<(String, String)> {
    example_bundle().files.into_iter().collect()
}

#[test]
fn zip_bundle_with_a_top_folder_resolves_by_basename() {
    let entries: Vec<(String, String)> = example_entries()
        .into_iter()
        .map(|(p, t)| (format!("sub/{p}"), t))
        .collect();
    let refs: Vec<(&str, &str)> = entries
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let bundle = Bundle::from_zip_bytes("b.zip", &zip_of(&refs), &Limits::default()).unwrap();
    let contract = resolve_contract(&bundle).unwrap();
    assert_eq!(contract.architecture_entrypoint, "sub/architecture.py");
    assert_eq!(contract.training_entrypoint, "sub/training.py");
    assert_eq!(
        contract.architecture_name.as_deref(),
        Some("assay tiny byte transformer")
    );
    assert!(check_bundle(&bundle).passed());
}

#[test]
fn zip_slip_absolute_paths_and_symlinks_are_refused() {
    for bad in [
        "../evil.py",
        "a/../../evil.py",
        "/etc/evil.py",
        "C:/evil.py",
    ] {
        let err = Bundle::from_zip_bytes("b.zip", &zip_of(&[(bad, "x = 1\n")]), &Limits::default())
            .unwrap_err();
        assert!(
            matches!(err, BundleError::UnsafeEntry { .. }),
            "{bad}: {err}"
        );
    }
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(
            "architecture.py",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    let err = Bundle::from_zip_bytes("b.zip", &bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsafeEntry { why, .. } if why.contains("symbolic")),
        "{err}"
    );
}

#[test]
fn folder_symlinks_suffixes_and_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("architecture.py"),
        "def build_model(ctx):\n    pass\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("training.py")).unwrap();
    let err = Bundle::from_dir(dir.path(), &Limits::default()).unwrap_err();
    assert!(matches!(err, BundleError::UnsafeEntry { .. }), "{err}");
    std::fs::remove_file(dir.path().join("training.py")).unwrap();
    std::fs::write(dir.path().join("weights.bin"), [0u8, 1, 2]).unwrap();
    assert!(matches!(
        Bundle::from_dir(dir.path(), &Limits::default()),
        Err(BundleError::UnsupportedFile(_))
    ));
    std::fs::remove_file(dir.path().join("weights.bin")).unwrap();
    let tight = Limits {
        max_files: 1,
        ..Limits::default()
    };
    std::fs::write(
        dir.path().join("training.py"),
        "def train(ctx):\n    pass\n",
    )
    .unwrap();
    assert!(matches!(
        Bundle::from_dir(dir.path(), &tight),
        Err(BundleError::TooLarge(_))
    ));
    let small = Limits {
        max_text_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        Bundle::from_dir(dir.path(), &small),
        Err(BundleError::TooLarge(_))
    ));
    assert!(Bundle::from_dir(dir.path(), &Limits::default()).is_ok());
}

fn bundle_of(files: &[(&str, &str)]) -> Bundle {
    Bundle {
        files: files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    }
}

#[test]
fn contract_rules_follow_prism() {
    let arch = "def build_model(ctx):\n    pass\n";
    let train = "def train(ctx):\n    pass\n";
    assert!(
        resolve_contract(&bundle_of(&[
            ("architecture.py", arch),
            ("training.py", train)
        ]))
        .is_ok()
    );
    let missing = resolve_contract(&bundle_of(&[("architecture.py", arch)])).unwrap_err();
    assert!(missing.to_string().contains("training.py"), "{missing}");
    let no_symbol = resolve_contract(&bundle_of(&[
        ("architecture.py", arch),
        ("training.py", "x = 1\n"),
    ]))
    .unwrap_err();
    assert!(no_symbol.to_string().contains("`train`"), "{no_symbol}");
    let same = "prism.yaml";
    let yaml = "architecture:\n  entrypoint: both.py\ntraining:\n  entrypoint: both.py\n";
    let combined = resolve_contract(&bundle_of(&[
        (same, yaml),
        ("both.py", &format!("{arch}{train}")),
    ]))
    .unwrap_err();
    assert!(combined.to_string().contains("two distinct"), "{combined}");
    let declared = "architecture:\n  entrypoint: model.py::make\ntraining:\n  entrypoint: loop.py\n  function: run\n  files: [util.py]\nkind: full\n";
    let bundle = bundle_of(&[
        ("prism.yaml", declared),
        ("model.py", "def make(ctx):\n    pass\n"),
        ("loop.py", "def run(ctx):\n    pass\n"),
        ("util.py", "x = 1\n"),
    ]);
    let c = resolve_contract(&bundle).unwrap();
    assert_eq!(
        (c.build_model_symbol.as_str(), c.train_symbol.as_str()),
        ("make", "run")
    );
    assert_eq!(
        c.training_files,
        vec!["loop.py".to_string(), "util.py".to_string()]
    );
    let strict = bundle_of(&[
        ("prism.yaml", "architecture:\n  entrypoint: nope.py\n"),
        ("architecture.py", arch),
        ("training.py", train),
    ]);
    assert!(
        resolve_contract(&strict)
            .unwrap_err()
            .to_string()
            .contains("no fallback")
    );
    let bad_kind = bundle_of(&[
        ("prism.yaml", "kind: lora\n"),
        ("architecture.py", arch),
        ("training.py", train),
    ]);
    assert!(resolve_contract(&bad_kind).is_err());
}

#[test]
fn syntax_errors_are_findings_with_positions() {
    let report = check_bundle(&bundle_of(&[
        ("architecture.py", "def build_model(ctx):\n  return (\n"),
        ("training.py", "def train(ctx):\n    pass\n"),
    ]));
    let f = &report.findings[0];
    assert_eq!(
        (f.rule.as_str(), f.path.as_str()),
        ("prism:syntax", "architecture.py")
    );
    assert!(f.line >= 2);
}

fn docs_in(texts: &[&str]) -> (tempfile::TempDir, Documents) {
    let dir = tempfile::tempdir().unwrap();
    let body: String = texts
        .iter()
        .map(|t| serde_json::json!({"text": t}).to_string() + "\n")
        .collect();
    let path = dir.path().join("train-0.jsonl");
    std::fs::write(&path, format!("\n{{bad json\n{{\"text\": \"\"}}\n{body}")).unwrap();
    (dir, Documents::new(vec![path]))
}

#[test]
fn stream_concatenates_documents_and_emits_the_trailing_partial() {
    let (_dir, docs) = docs_in(&["abcde", "fghij", "klm"]);
    let mut stream = TrainStream::new(docs, 4096, Budgets::default());
    let first = stream.next_batch(2, 3).unwrap().unwrap();
    assert_eq!((first.rows, first.cols), (2, 3));
    assert_eq!(
        first.tokens,
        b"abcdef".iter().map(|&b| u32::from(b)).collect::<Vec<_>>()
    );
    let second = stream.next_batch(2, 3).unwrap().unwrap();
    assert_eq!(
        second.tokens,
        b"ghijkl".iter().map(|&b| u32::from(b)).collect::<Vec<_>>()
    );
    // One byte left: under 2, so no trailing batch.
    assert!(stream.next_batch(2, 3).unwrap().is_none());
    assert_eq!(stream.stopped_reason, Some(StopReason::DataExhausted));
    assert_eq!(stream.consumed_documents, 3);
}

#[test]
fn stream_budgets_bind_first_reached_and_reduce_ids() {
    let (_dir, docs) = docs_in(&["abcdefghijklmnopqrstuvwxyz"]);
    let mut stream = TrainStream::new(
        docs,
        50,
        Budgets {
            token_budget: Some(10),
            ..Budgets::default()
        },
    );
    let b = stream.next_batch(1, 4).unwrap().unwrap();
    assert_eq!(b.tokens, vec![97 % 50, 98 % 50, 99 % 50, 100 % 50]);
    assert!(stream.next_batch(1, 4).unwrap().is_some());
    // 8 tokens taken, 2 more allowed: the third batch cannot fill and the budget binds.
    assert!(stream.next_batch(1, 4).unwrap().is_none());
    assert_eq!(stream.stopped_reason, Some(StopReason::TokenBudget));
    assert_eq!(stream.consumed_tokens, 10);
    let (_dir2, docs) = docs_in(&["abcdefghijklmnopqrstuvwxyz"]);
    let mut steps = TrainStream::new(
        docs,
        4096,
        Budgets {
            step_budget: Some(2),
            ..Budgets::default()
        },
    );
    assert!(steps.next_batch(2, 2).unwrap().is_some() && steps.next_batch(2, 2).unwrap().is_some());
    assert!(steps.next_batch(2, 2).unwrap().is_none());
    assert_eq!(steps.stopped_reason, Some(StopReason::StepBudget));
}

#[test]
fn prequential_bpb_is_the_hand_computation() {
    let mut p = Prequential::new(256);
    p.record(8, 128, Some(5.0));
    p.record(1, 50, Some(3.0));
    p.record(8, 128, None);
    let nll = 5.0 * 8.0 * 127.0 + 3.0 * 49.0 + 2.0 * 256f64.ln() * 8.0 * 127.0;
    let bytes = 8.0 * 128.0 * 2.0 + 50.0;
    assert!((p.bpb().unwrap() - nll / std::f64::consts::LN_2 / bytes).abs() < 1e-12);
    assert_eq!(p.nan_inf_batches, 1);
    assert_eq!(p.batch_shapes, vec![[8, 128], [1, 50], [8, 128]]);
    assert_eq!(p.covered_bytes_cumulative, vec![1024.0, 1074.0, 2098.0]);
    assert!(!p.step0_anomaly());
    assert!(final_score(&Prequential::new(256), None, 1.0).is_err());
    let s = final_score(&p, None, 0.2).unwrap();
    assert!((s.stored_score - 0.2 * s.final_score).abs() < 1e-15);
}

fn fp(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn near_duplicates_get_the_0_2_multiplier() {
    let base: Vec<String> = (0..50).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = base.iter().map(String::as_str).collect();
    let a = fp(&refs);
    let mut b = a.clone();
    b.insert("extra".into());
    // PRISM computes 1 - 0.8 in floating point; so do we.
    assert_eq!(
        fingerprint::near_duplicate_multiplier(&b, [&a]).0,
        1.0 - 0.8
    );
    let c = fp(&refs[..40]);
    assert_eq!(fingerprint::near_duplicate_multiplier(&c, [&a]).0, 1.0);
    assert_eq!(fingerprint::near_duplicate_multiplier(&c, []).0, 1.0);
}

#[test]
fn component_hash_ignores_comments_and_layout_only() {
    let a =
        fingerprint::component_hash(&[("x/architecture.py", "def f(a):  # c\n    return a+1\n")]);
    let b = fingerprint::component_hash(&[("architecture.py", "def f(a):\n\n    return a + 1\n")]);
    let c = fingerprint::component_hash(&[("architecture.py", "def f(a):\n    return a + 2\n")]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(
        fingerprint::moderate_name("  My\tNet<script>  v2!! "),
        Some("My Netscript v2".into())
    );
}

fn sub(hotkey: &str, at: u64, score: f64, family: &str, training: &str) -> ScoredSubmission {
    ScoredSubmission {
        hotkey: hotkey.into(),
        accepted_at: at,
        score,
        bpb: 1.0 / score - 1.0,
        family_hash: family.into(),
        training_hash: training.into(),
        fingerprint: BTreeSet::new(),
        architecture_name: None,
    }
}

#[test]
fn leaderboard_ties_go_to_the_earliest_commit_and_dedupe_per_hotkey() {
    let mut s = State::default();
    s.record(sub("late", 20, 0.5, "f1", "t1"));
    s.record(sub("early", 10, 0.5 + 1e-12, "f2", "t2"));
    s.record(sub("late", 30, 0.4, "f1", "t3"));
    s.record(sub("best", 40, 0.6, "f3", "t4"));
    let rows: Vec<(&str, u64)> = s
        .leaderboard()
        .iter()
        .map(|r| (r.scored.hotkey.as_str(), r.scored.accepted_at))
        .collect();
    assert_eq!(rows, vec![("best", 40), ("early", 10), ("late", 20)]);
}

#[test]
fn crown_pays_architecture_and_training_owners_and_survives_a_restart() {
    let mut s = State::default();
    assert!(s.weights().is_empty(), "burn before anything scores");
    s.record(sub("arch", 1, 0.30, "fam", "t-arch"));
    assert_eq!(s.weights(), BTreeMap::from([("arch".to_string(), 1.0)]));
    // A better training script on the same architecture: the family stays with its creator.
    s.record(sub("trainer", 2, 0.35, "fam", "t-better"));
    let w = s.weights();
    assert!(
        (w["arch"] - 0.6).abs() < 1e-12 && (w["trainer"] - 0.4).abs() < 1e-12,
        "{w:?}"
    );
    // Someone re-submits the same training script with a higher score: the variant moves.
    s.record(sub("copier", 3, 0.36, "fam", "t-better"));
    assert!((s.weights()["copier"] - 0.4).abs() < 1e-12);
    // A later family with the same best score does not take the crown (earliest wins).
    s.record(sub("other", 4, 0.36, "fam2", "t-x"));
    assert_eq!(s.best_family().unwrap().owner_hotkey, "arch");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    s.save(&path).unwrap();
    let back = State::load(&path).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.weights(), s.weights());
    std::fs::write(&path, "{}").unwrap();
    assert!(State::load(&path).is_err());
}

#[test]
fn a_state_file_lists_each_submission_as_one_flat_object() {
    // The v1 state file: a submission's fields sit beside its id, as earlier versions wrote them.
    let mut s = State::default();
    s.record(sub("miner", 7, 0.5, "fam", "train"));
    let json = serde_json::to_value(&s).unwrap();
    let keys: BTreeSet<&str> = json["submissions"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "id",
        "hotkey",
        "accepted_at",
        "score",
        "bpb",
        "family_hash",
        "training_hash",
        "fingerprint",
        "architecture_name",
    ];
    assert_eq!(keys, BTreeSet::from(expected));
    assert_eq!(json["submissions"][0]["hotkey"], "miner");
    let back: State = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn corpus_is_deterministic_and_partitioned() {
    let topics: BTreeMap<String, String> = (0..60)
        .map(|i| {
            (
                format!("topic{i}"),
                format!("Para one of {i}.\n\nPara two of {i}.\n\n\n"),
            )
        })
        .collect();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ma = corpus::write_corpus(&topics, "t", a.path()).unwrap();
    let mb = corpus::write_corpus(&topics, "t", b.path()).unwrap();
    assert_eq!(ma, mb);
    assert_eq!(ma.documents.values().sum::<usize>(), 120);
    assert!(ma.documents["train"] > ma.documents.get("val").copied().unwrap_or(0));
    assert_eq!(corpus::split_of("topic3#1"), corpus::split_of("topic3#1"));
}

#[test]
fn bare_interpreter_names_resolve_on_our_path_before_the_environment_is_cleared() {
    use assay_prism::runner::locate_program;
    use std::path::Path;
    let sh = locate_program(Path::new("sh"));
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
    // Paths are taken as given, and so is a name found nowhere (spawning it then fails).
    assert_eq!(
        locate_program(Path::new("./python3")),
        Path::new("./python3")
    );
    assert_eq!(
        locate_program(Path::new("no-such-interpreter-here")),
        Path::new("no-such-interpreter-here")
    );
}

#[test]
fn a_zero_memory_cap_means_no_address_space_limit_and_says_so() {
    use assay_prism::limits::{ProcessLimits, apply};
    let mut command = std::process::Command::new("true");
    let capped = apply(&mut command, &ProcessLimits::default(), 10.0);
    assert_eq!(capped.memory_bytes, 12 << 30);
    assert!(!capped.not_enforced.iter().any(|n| n.starts_with("memory")));
    let uncapped = ProcessLimits {
        memory_bytes: 0,
        ..ProcessLimits::default()
    };
    let applied = apply(&mut command, &uncapped, 10.0);
    assert_eq!(applied.memory_bytes, u64::MAX);
    assert!(applied.not_enforced.iter().any(|n| n.starts_with("memory")));
}
