//! Runs that survive a crash (PRISM C.18, issue #26 item 2): the training stage is killed with
//! SIGKILL at several points (before the first checkpoint, mid-way, while a checkpoint's state or
//! record is being written, and from outside at an arbitrary moment); every resumed run ends
//! with the uninterrupted run's prequential record and score, bit for bit on the CPU. A corrupt
//! checkpoint is refused with its reason and the run resumes from the previous good one.
//!
//! The killed runs are this test binary re-executed as a child (`crash_child` below), so the
//! kill takes down the whole orchestrator, as a lost machine would. Needs a Python with torch
//! (`ASSAY_PRISM_PYTHON`); without one the tests print `SKIPPED ...` and pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assay_prism::checkpoint::{self, CheckpointConfig};
use assay_prism::runner::{self, RunConfig, TrainOutcome, Workspace};
use assay_prism::{check_bundle, example_bundle, score};

const CHILD_ENV: &str = "ASSAY_PRISM_CRASH_CHILD";

/// A deterministic bundle with state beyond the weights: AdamW moments, a step LR schedule,
/// dropout (torch RNG) and a Python-RNG coin deciding whether to clip.
const STATEFUL_TRAINING: &str = r#"
import random

import torch
import torch.nn.functional as F

from architecture import build_model


def train(ctx):
    model = build_model(ctx).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.7)
    for batch in ctx.iter_train_batches(model, batch_size=4, seq_len=96):
        tokens = batch.tokens
        logits = F.dropout(model(tokens), p=0.1, training=True)
        vocab = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1) % vocab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if random.random() < 0.5:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        schedule.step()
"#;

fn python() -> Option<PathBuf> {
    match std::env::var_os(runner::PYTHON_ENV) {
        Some(named) => {
            let named = PathBuf::from(named);
            assert!(
                runner::has_torch(&named),
                "{}={} cannot import torch",
                runner::PYTHON_ENV,
                named.display()
            );
            Some(named)
        }
        None => {
            let fallback = PathBuf::from("python3");
            runner::has_torch(&fallback).then_some(fallback)
        }
    }
}

fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no Python with torch (set {})",
        runner::PYTHON_ENV
    );
}

fn bundle() -> assay_prism::bundle::Bundle {
    let mut bundle = example_bundle();
    bundle
        .files
        .insert("training.py".into(), STATEFUL_TRAINING.into());
    bundle
}

/// 14 batches of 4 x 96 and a partial one.
fn corpus(dir: &Path) {
    std::fs::create_dir_all(dir.join("train")).unwrap();
    let mut lines = String::new();
    for i in 0..6 {
        let text =
            format!("document {i}: the quick brown fox jumps over the lazy dog. ").repeat(16);
        lines += &(serde_json::json!({ "text": text }).to_string() + "\n");
    }
    std::fs::write(dir.join("train/train-0.jsonl"), lines).unwrap();
}

fn config(python: &Path, checkpoints: Option<&Path>) -> RunConfig {
    let mut config = RunConfig::new(python.to_path_buf());
    config.threads = 1;
    config.checkpoint = checkpoints.map(|dir| CheckpointConfig {
        dir: dir.to_path_buf(),
        every_seconds: None,
        every_batches: Some(3),
        keep: 2,
    });
    config
}

fn train(python: &Path, data: &Path, checkpoints: Option<&Path>) -> TrainOutcome {
    let bundle = bundle();
    let contract = check_bundle(&bundle).contract.unwrap();
    let ws = Workspace::new(&bundle).unwrap();
    runner::train(
        &ws,
        &contract,
        &config(python, checkpoints),
        data,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The killed run: only does something when the parent test set [`CHILD_ENV`] (to
/// `python|data|checkpoints`); `ASSAY_PRISM_CRASH_AT` then picks where it dies, or, with
/// `slow` as a fourth field, each batch takes a while so the parent can kill it from outside.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (python, data, checkpoints) = (Path::new(parts[0]), Path::new(parts[1]), parts[2]);
    let slow = parts.get(3) == Some(&"slow");
    let bundle = bundle();
    let contract = check_bundle(&bundle).contract.unwrap();
    let ws = Workspace::new(&bundle).unwrap();
    let config = config(python, Some(Path::new(checkpoints)));
    let mut progress = |_: runner::Event| {
        if slow {
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    runner::train(&ws, &contract, &config, data, &mut progress).unwrap();
}

fn child(python: &Path, data: &Path, checkpoints: &Path, crash: Option<&str>) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "crash_child", "--test-threads=1", "--nocapture"])
        .env(
            CHILD_ENV,
            format!(
                "{}|{}|{}{}",
                python.display(),
                data.display(),
                checkpoints.display(),
                if crash.is_none() { "|slow" } else { "" }
            ),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match crash {
        Some(point) => command.env(checkpoint::CRASH_ENV, point),
        None => command.env_remove(checkpoint::CRASH_ENV),
    };
    command
}

fn killed_at(python: &Path, data: &Path, checkpoints: &Path, point: &str) {
    let status = child(python, data, checkpoints, Some(point))
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child must die by SIGKILL at {point}: {status}"
    );
}

fn checkpoints_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ckpt-") && n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_same_run(resumed: &TrainOutcome, reference: &TrainOutcome, what: &str) {
    // Bit for bit: every recorded loss, the sums, and so the score.
    let bits = |o: &TrainOutcome| -> Vec<u64> {
        o.prequential
            .online_loss
            .iter()
            .map(|l| l.to_bits())
            .collect()
    };
    assert_eq!(bits(resumed), bits(reference), "{what}: losses differ");
    assert_eq!(resumed.prequential, reference.prequential, "{what}");
    assert_eq!(resumed.stopped_reason, reference.stopped_reason, "{what}");
    assert_eq!(resumed.consumed_tokens, reference.consumed_tokens, "{what}");
    assert_eq!(
        resumed.consumed_documents, reference.consumed_documents,
        "{what}"
    );
    assert_eq!(resumed.no_learning, reference.no_learning, "{what}");
    let score = |o: &TrainOutcome| score::final_score(&o.prequential, None, 1.0).unwrap();
    assert_eq!(
        score(resumed).final_score.to_bits(),
        score(reference).final_score.to_bits(),
        "{what}"
    );
}

#[test]
fn kill_9_at_any_point_resumes_to_the_uninterrupted_score() {
    let Some(python) = python() else {
        skipped("crash/resume");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    corpus(data.path());
    let reference = train(&python, data.path(), None);
    assert_eq!(reference.prequential.online_loss.len(), 15);
    assert!(reference.resume.is_none());
    // Checkpointing itself changes nothing.
    let ckpt = tempfile::tempdir().unwrap();
    let with_checkpoints = train(&python, data.path(), Some(ckpt.path()));
    assert_same_run(&with_checkpoints, &reference, "checkpointed run");
    assert_eq!(
        with_checkpoints.checkpoints_written, 4,
        "after batches 3, 6, 9, 12"
    );
    assert_eq!(
        checkpoints_in(ckpt.path()),
        ["ckpt-000003.json", "ckpt-000004.json"],
        "the two newest are kept"
    );

    // (point where the child dies, the checkpoint the run must resume from)
    let cases = [
        ("batch:2", None),
        ("batch:8", Some(2)),
        ("state:3", Some(2)),
        ("record:2", Some(1)),
        ("batch:14", Some(4)),
    ];
    for (point, from) in cases {
        let dir = tempfile::tempdir().unwrap();
        killed_at(&python, data.path(), dir.path(), point);
        let resumed = train(&python, data.path(), Some(dir.path()));
        let info = resumed.resume.clone().unwrap();
        assert_eq!(info.from_checkpoint, from, "{point}");
        assert!(info.refused.is_empty(), "{point}: {:?}", info.refused);
        assert_eq!(info.restored_batches, from.map_or(0, |i| 3 * i), "{point}");
        assert_same_run(&resumed, &reference, point);
    }

    // Killed from outside while it runs, wherever it happens to be.
    let dir = tempfile::tempdir().unwrap();
    let mut running = child(&python, data.path(), dir.path(), None)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.path().join("ckpt-000002.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no second checkpoint"
        );
        assert!(running.try_wait().unwrap().is_none(), "finished too early");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill().unwrap();
    running.wait().unwrap();
    let resumed = train(&python, data.path(), Some(dir.path()));
    assert!(resumed.resume.as_ref().unwrap().from_checkpoint >= Some(2));
    assert_same_run(&resumed, &reference, "external kill -9");
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_the_previous_one_used() {
    let Some(python) = python() else {
        skipped("corrupt checkpoint");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    corpus(data.path());
    let reference = train(&python, data.path(), None);
    let crashed = tempfile::tempdir().unwrap();
    killed_at(&python, data.path(), crashed.path(), "batch:14");
    assert_eq!(
        checkpoints_in(crashed.path()),
        ["ckpt-000003.json", "ckpt-000004.json"]
    );
    let copy = |tweak: &dyn Fn(&Path)| {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(crashed.path()).unwrap().flatten() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        tweak(dir.path());
        dir
    };
    // A flipped byte in the newest state, a torn newest record, an edited loss in the record.
    let flip = |dir: &Path| {
        let path = dir.join("ckpt-000004.state");
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    };
    let tear = |dir: &Path| {
        let path = dir.join("ckpt-000004.json");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    };
    let edit = |dir: &Path| {
        let path = dir.join("ckpt-000004.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let (sum, body) = text.split_once('\n').unwrap();
        let mut record: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap();
        record["prequential"]["online_loss"][1] = serde_json::json!(0.5);
        std::fs::write(&path, format!("{sum}\n{record}\n")).unwrap();
    };
    /// What is broken, how, and the reason the resume must give.
    type Case<'a> = (&'a str, &'a dyn Fn(&Path), &'a str);
    let cases: [Case; 3] = [
        ("flipped state byte", &flip, "state file hash mismatch"),
        ("torn record", &tear, "checksum mismatch"),
        ("edited loss", &edit, "checksum mismatch"),
    ];
    for (what, tweak, reason) in cases {
        let dir = copy(tweak);
        let resumed = train(&python, data.path(), Some(dir.path()));
        let info = resumed.resume.clone().unwrap();
        assert_eq!(info.from_checkpoint, Some(3), "{what}");
        assert_eq!(info.refused.len(), 1, "{what}: {:?}", info.refused);
        assert!(
            info.refused[0].starts_with("checkpoint 4 refused: ")
                && info.refused[0].contains(reason),
            "{what}: {}",
            info.refused[0]
        );
        assert!(resumed.notes.iter().any(|n| n == &info.refused[0]));
        assert_same_run(&resumed, &reference, what);
    }
    // Another run's checkpoints (another seed) are never used: it starts afresh.
    let bundle = bundle();
    let contract = check_bundle(&bundle).contract.unwrap();
    let ws = Workspace::new(&bundle).unwrap();
    let dir = copy(&|_| {});
    let mut other = config(&python, Some(dir.path()));
    other.seed = 7;
    let fresh = runner::train(&ws, &contract, &other, data.path(), &mut |_| {}).unwrap();
    let info = fresh.resume.unwrap();
    assert_eq!(info.from_checkpoint, None);
    assert_eq!(info.refused.len(), 2);
    assert!(
        info.refused.iter().all(|r| r.contains("another run")),
        "{:?}",
        info.refused
    );
}

/// The checkpoint folder without torch: records sealed by their checksum, the state hash, the
/// run key, the newest good one chosen, the two newest kept, stray temp files ignored.
#[test]
fn checkpoint_records_are_sealed_verified_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let config = CheckpointConfig {
        dir: dir.path().join("ck"),
        every_seconds: None,
        every_batches: Some(2),
        keep: 2,
    };
    assert!(!config.due(0, 1e9), "never before a batch");
    assert!(!config.due(1, 0.0));
    assert!(config.due(2, 0.0));
    assert!(CheckpointConfig::hourly(PathBuf::new()).due(1, 3600.0));
    assert!(!CheckpointConfig::hourly(PathBuf::new()).due(1, 3599.0));
    let staged = dir.path().join("state.pt");
    let mut preq = score::Prequential::new(256);
    for index in 1..=3u64 {
        preq.record(2, 8, Some(5.0 / index as f64 + 0.1));
        std::fs::write(&staged, format!("state {index}")).unwrap();
        let record = checkpoint::Record {
            schema: checkpoint::SCHEMA.into(),
            index,
            run_key: "run-a".into(),
            prequential: preq.clone(),
            consumed_tokens: 16 * index,
            consumed_documents: 1,
            elapsed_seconds: 0.25 * index as f64,
            batch_shape: (2, 8),
            scored_model_params: Default::default(),
            state_file: String::new(),
            state_sha256: String::new(),
            state_bytes: 0,
        };
        let written = checkpoint::write(&config, &staged, record).unwrap();
        assert_eq!(written.state_bytes, 7);
    }
    // A stray temp file (a write killed before its rename) is not a checkpoint.
    std::fs::write(config.dir.join(".tmpXYZ"), "half").unwrap();
    assert_eq!(
        checkpoints_in(&config.dir),
        ["ckpt-000002.json", "ckpt-000003.json"]
    );
    assert!(!config.dir.join("ckpt-000001.state").exists());
    let (good, refused) = checkpoint::latest_good(&config.dir, "run-a");
    let good = good.unwrap();
    assert_eq!((good.index, good.batches()), (3, 3));
    assert_eq!(good.prequential, preq, "f64s round-trip exactly");
    assert!(refused.is_empty());
    let (none, refused) = checkpoint::latest_good(&config.dir, "run-b");
    assert!(none.is_none());
    assert_eq!(refused.len(), 2);
    // A state that no longer matches its record: the previous checkpoint is used.
    std::fs::write(config.dir.join("ckpt-000003.state"), "state 9").unwrap();
    let (good, refused) = checkpoint::latest_good(&config.dir, "run-a");
    assert_eq!(good.unwrap().index, 2);
    assert!(
        refused[0].contains("state file hash mismatch"),
        "{refused:?}"
    );
    // A record whose state file is gone, and one whose checksum line is missing.
    std::fs::remove_file(config.dir.join("ckpt-000002.state")).unwrap();
    let (good, refused) = checkpoint::latest_good(&config.dir, "run-a");
    assert!(good.is_none());
    assert!(
        refused[1].contains("state file ckpt-000002.state"),
        "{refused:?}"
    );
    std::fs::write(config.dir.join("ckpt-000003.json"), "{}").unwrap();
    assert!(
        checkpoint::verify(&config.dir, 3, "run-a")
            .unwrap_err()
            .contains("no checksum line")
    );
}
