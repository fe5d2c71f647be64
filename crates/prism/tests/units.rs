//! Intake, contract, stream budgets, leaderboard and corpus behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use assay_prism::bundle::{Bundle, BundleError, Limits, resolve_contract};
use assay_prism::data::Documents;
use assay_prism::example_bundle;
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
        structure: BTreeSet::new(),
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
fn a_missing_state_file_is_empty_for_a_run_and_an_error_for_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.json");
    assert_eq!(State::load(&path).unwrap(), State::default());
    let err = State::load_existing(&path).unwrap_err();
    assert!(
        matches!(err, assay_prism::leaderboard::StateError::Missing { .. }),
        "{err}"
    );
    let mut s = State::default();
    s.record(sub("miner", 7, 0.5, "fam", "train"));
    s.save(&path).unwrap();
    assert_eq!(State::load_existing(&path).unwrap(), s);
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

/// PRISM's own contract cases (tests/test_prism_distributed_contract.py @bb5e599), restated.
mod distributed_contract {
    use assay_prism::distributed::{self, Policy};
    use assay_prism::pyast::PyFile;
    use assay_prism::{CheckSettings, check_bundle_with};

    const COMPLIANT: &str = "import torch\nimport torch.distributed as dist\nfrom torch.nn.parallel import DistributedDataParallel as DDP\nfrom torch.utils.data import DistributedSampler\nfrom architecture import build_model\n\n\ndef train(ctx):\n    dist.init_process_group(backend=\"gloo\")\n    torch.cuda.set_device(ctx.local_rank)\n    model = build_model(ctx)\n    model = DDP(model)\n    sampler = DistributedSampler(range(64), num_replicas=ctx.world_size, rank=ctx.rank)\n    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n    for _ in sampler:\n        optimizer.zero_grad()\n    if ctx.rank == 0:\n        torch.save(model.state_dict(), ctx.artifacts_dir + \"/ckpt.pt\")\n    dist.barrier()\n    dist.destroy_process_group()\n    return None\n";
    const NON_DISTRIBUTED: &str = "import torch\nfrom architecture import build_model\n\n\ndef train(ctx):\n    model = build_model(ctx)\n    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n    for _ in range(2):\n        optimizer.zero_grad()\n    return None\n";

    fn report(code: &str) -> distributed::ContractReport {
        distributed::check(&PyFile::parse("training.py", code).unwrap())
    }

    fn rules(code: &str) -> Vec<String> {
        report(code).findings.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn compliant_fsdp_and_hardcoded_device_scripts_pass() {
        assert!(report(COMPLIANT).compliant, "{:?}", report(COMPLIANT));
        let fsdp = COMPLIANT
            .replace(
                "from torch.nn.parallel import DistributedDataParallel as DDP",
                "from torch.distributed.fsdp import FullyShardedDataParallel as FSDP",
            )
            .replace("    model = DDP(model)\n", "    model = FSDP(model)\n")
            .replace("if ctx.rank == 0:", "if ctx.local_rank == 0:");
        assert!(report(&fsdp).compliant, "{:?}", report(&fsdp));
        let hardcoded = COMPLIANT
            .replace(
                "    torch.cuda.set_device(ctx.local_rank)\n",
                "    model = None\n",
            )
            .replace(
                "    model = DDP(model)\n",
                "    model = DDP(model.to(torch.device(\"cuda:0\")))\n",
            );
        assert!(report(&hardcoded).compliant, "{:?}", report(&hardcoded));
    }

    #[test]
    fn each_missing_piece_has_its_own_rule() {
        assert_eq!(
            rules(NON_DISTRIBUTED).len(),
            6,
            "{:?}",
            rules(NON_DISTRIBUTED)
        );
        for (removed, rule) in [
            (
                "dist.init_process_group(backend=\"gloo\")",
                "prism:distributed-init-process-group",
            ),
            ("    model = DDP(model)\n", "prism:distributed-wrap"),
            (
                "    dist.destroy_process_group()\n",
                "prism:distributed-destroy-process-group",
            ),
            (
                "    torch.cuda.set_device(ctx.local_rank)\n",
                "prism:distributed-device-binding",
            ),
            (
                "    sampler = DistributedSampler(range(64), num_replicas=ctx.world_size, rank=ctx.rank)\n",
                "prism:distributed-data-sharding",
            ),
        ] {
            let code = COMPLIANT
                .replace(removed, "")
                .replace("    for _ in sampler:\n        optimizer.zero_grad()\n", "");
            assert_eq!(rules(&code), vec![rule.to_string()], "removed {removed:?}");
        }
        // Rank-strided windows shard too.
        let strided = COMPLIANT.replace(
            "    sampler = DistributedSampler(range(64), num_replicas=ctx.world_size, rank=ctx.rank)\n    optimizer",
            "    sampler = list(range(64))[ctx.rank::ctx.world_size]\n    optimizer",
        );
        assert!(report(&strided).compliant, "{:?}", report(&strided));
    }

    #[test]
    fn unguarded_writes_are_refused() {
        let unguarded = COMPLIANT.replace(
            "    if ctx.rank == 0:\n        torch.save(",
            "    if ctx.rank == 0:\n        pass\n    torch.save(",
        );
        let r = report(&unguarded);
        assert_eq!(r.unguarded_writes, 1);
        assert_eq!(
            rules(&unguarded),
            vec!["prism:distributed-unguarded-write".to_string()]
        );
        assert_eq!(r.findings[0].line, 19);
    }

    #[test]
    fn policies_reject_flag_and_off() {
        let mut bundle = assay_prism::example_bundle();
        bundle
            .files
            .insert("training.py".into(), NON_DISTRIBUTED.into());
        let with = |policy| {
            check_bundle_with(
                &bundle,
                &CheckSettings {
                    distributed_policy: policy,
                    ..CheckSettings::default()
                },
            )
        };
        let reject = with(Policy::Reject);
        assert!(!reject.passed());
        assert_eq!(reject.findings.len(), 6);
        let flag = with(Policy::Flag);
        assert!(flag.passed());
        assert_eq!(flag.flags.len(), 6);
        assert!(!flag.distributed.as_ref().unwrap().compliant);
        let off = with(Policy::Off);
        assert!(off.passed() && off.flags.is_empty() && off.distributed.is_none());
        // The example bundle carries the contract.
        assert!(assay_prism::check_bundle(&assay_prism::example_bundle()).passed());
    }

    #[test]
    fn single_node_bound() {
        for gpus in [None, Some(1), Some(2), Some(4), Some(8)] {
            assert!(distributed::single_node_bound(gpus, Some(1)).is_none());
        }
        let nine = distributed::single_node_bound(Some(9), None).unwrap();
        assert_eq!(nine.rule, distributed::SINGLE_NODE_RULE);
        assert!(distributed::single_node_bound(Some(2), Some(2)).is_some());
        let settings = CheckSettings {
            gpu_count: Some(9),
            ..CheckSettings::default()
        };
        assert!(!check_bundle_with(&assay_prism::example_bundle(), &settings).passed());
    }
}

mod locked_data {
    use assay_prism::corpus::{self, DOCS_PER_SHARD, MANIFEST_SCHEMA, SourcePin};
    use assay_prism::data::{DataError, LockedManifest};
    use assay_prism::runner::{RunConfig, RunError};
    use assay_prism::{PipelineError, example_bundle, run_bundle};

    fn docs(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                (
                    format!("id-{:05}", (i * 7919) % n),
                    format!("document {i} says {}", i % 97),
                )
            })
            .collect()
    }

    #[test]
    fn lock_partitions_dedups_sorts_and_shards() {
        let mut input = docs(2600);
        input.push((
            "id-00001".into(),
            "a second text under a repeated id".into(),
        ));
        input.push(("extra".into(), input[5].1.clone()));
        let dir = tempfile::tempdir().unwrap();
        let pin = SourcePin {
            name: corpus::FINEWEB_EDU.0.into(),
            revision: corpus::FINEWEB_EDU.1.into(),
        };
        let m = corpus::lock_corpus(input, pin.clone(), dir.path()).unwrap();
        assert_eq!(m.schema, MANIFEST_SCHEMA);
        assert_eq!(m.source, pin);
        assert_eq!(m.documents.values().sum::<usize>(), 2600);
        assert_eq!(m.duplicates_dropped.values().sum::<usize>(), 2);
        for shard in &m.shards {
            assert!(shard.documents <= DOCS_PER_SHARD);
            let text = std::fs::read_to_string(dir.path().join(&shard.path)).unwrap();
            let ids: Vec<String> = text
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "sorted by id, no repeats"
            );
            assert!(ids.iter().all(|id| corpus::split_of(id) == shard.split));
            assert_eq!(
                shard.tokens,
                text.lines()
                    .map(
                        |l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                            .as_str()
                            .unwrap()
                            .len() as u64
                    )
                    .sum::<u64>()
            );
        }
        let train: Vec<_> = m.shards.iter().filter(|s| s.split == "train").collect();
        assert_eq!(train.len(), m.documents["train"].div_ceil(DOCS_PER_SHARD));
        assert_eq!(train[0].documents, DOCS_PER_SHARD);
        let lock = LockedManifest::find(dir.path()).unwrap().unwrap();
        lock.verify(dir.path()).unwrap();
    }

    #[test]
    fn changed_or_planted_shards_are_refused_before_any_run() {
        let dir = tempfile::tempdir().unwrap();
        let pin = SourcePin {
            name: "t".into(),
            revision: "1".into(),
        };
        let m = corpus::lock_corpus(docs(300), pin, dir.path()).unwrap();
        let shard = dir.path().join(&m.shards[0].path);
        let mut bytes = std::fs::read(&shard).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&shard, &bytes).unwrap();
        let lock = LockedManifest::find(dir.path()).unwrap().unwrap();
        assert!(matches!(
            lock.verify(dir.path()),
            Err(DataError::ShardMismatch { .. })
        ));
        // The run stops at the data, before starting any interpreter (this one does not exist).
        let config = RunConfig::new("/nonexistent/python".into());
        let err = run_bundle(&example_bundle(), dir.path(), &config, [], &mut |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                PipelineError::Run(RunError::Data(DataError::ShardMismatch { .. }))
            ),
            "{err}"
        );
        bytes[10] ^= 1;
        std::fs::write(&shard, &bytes).unwrap();
        lock.verify(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("train/train-99999.jsonl"),
            "{\"text\": \"planted\"}\n",
        )
        .unwrap();
        assert!(matches!(
            lock.verify(dir.path()),
            Err(DataError::Unlisted { .. })
        ));
    }
}

#[test]
fn errors_say_whose_fault_they_are() {
    use assay_errors::{Blame, Diagnose};
    let err = Bundle::from_zip_bytes("b.zip", b"not a zip", &Limits::default()).unwrap_err();
    assert_eq!(err.blame(), Blame::Miner);
    let missing =
        Bundle::open(std::path::Path::new("/no/such/bundle"), &Limits::default()).unwrap_err();
    assert_eq!(missing.blame(), Blame::Operator);
    let preq = Prequential::new(4096);
    let score = final_score(&preq, None, 1.0).unwrap_err();
    assert_eq!(score.blame(), Blame::Miner);
    let state = State::load(std::path::Path::new("/proc/version")).unwrap_err();
    assert_eq!(state.blame(), Blame::Operator);
}
