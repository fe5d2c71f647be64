//! A round's state and files as an operator relies on them: rounds idempotent per block, partial
//! rounds refused unless allowed (then renormalised and said so), symbolic links followed or
//! rejected with a reason, one model in memory at a time, and state files that survive kill -9.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assay_errors::{Blame, Diagnose};
use assay_eval::runner::{LanguageModel, ModelError};
use assay_eval::task_def::GenParams;
use assay_sn37::competition::Constraints;
use assay_sn37::round::{LoadError, ModelLoader, RoundError, RoundPolicy, Status};
use assay_sn37::run::{RoundSettings, RunError, run_with_loader};
use assay_sn37::state::{read_state, write_json_atomic};
use assay_sn37::tracker::EmaState;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sn37")
}

/// A constant loss per model; counts the models alive at once.
struct Lm {
    loss: f64,
    live: Arc<AtomicUsize>,
}

impl Drop for Lm {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LanguageModel for Lm {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        Ok(vec![(-self.loss, false); requests.len()])
    }
    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        Ok(vec![String::new(); requests.len()])
    }
    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        Ok(vec![self.loss; requests.len()])
    }
}

#[derive(Default)]
struct Loader {
    losses: BTreeMap<String, f64>,
    live: Arc<AtomicUsize>,
    peak: AtomicUsize,
    loads: AtomicUsize,
}

impl Loader {
    fn new(entries: &[(&str, f64)]) -> Self {
        Self {
            losses: entries.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Self::default()
        }
    }
}

impl ModelLoader for Loader {
    fn load(&self, dir: &Path, _: &Constraints) -> Result<Box<dyn LanguageModel>, LoadError> {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let loss = *self
            .losses
            .get(&name)
            .ok_or_else(|| LoadError::from(format!("no loss for {name}")))?;
        let live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(live, Ordering::SeqCst);
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Lm {
            loss,
            live: self.live.clone(),
        }))
    }
}

/// TINY_DEMO with word sorting only (no data files needed), normalisation none.
const WORD_SORTING_ONLY: &str = r#"
id = 100
name = "TINY_DEMO"
reward_share = 1.0
eval_block_delay = 100
[epsilon]
kind = "linear_decay"
start = 0.05
end = 0.01
decay_blocks = 7200
[constraints]
min_params = 0
max_params = 200_000_000
sequence_length = 256
tokenizer = { rule = "own" }
architectures = ["LlamaForCausalLM", "Qwen2ForCausalLM"]
max_bytes = 1_073_741_824
max_projection_norm = 1000.0
high_projection_norm = 200.0
max_high_norm_fraction = 0.15
[[tasks]]
name = "WORD_SORTING"
method = "reference_loss"
weight = 1.0
normalization = { method = "none" }
samples = 4
source = { reader = "word_sorting" }
"#;

fn settings(dir: &Path, competition: &str, block: u64) -> RoundSettings {
    let file = dir.join("competition.toml");
    if !file.exists() {
        std::fs::write(&file, competition).unwrap();
    }
    RoundSettings {
        competition: file.display().to_string(),
        models: examples_dir().join("models"),
        block,
        block_hash: None,
        data: examples_dir().join("data"),
        state: Some(dir.join("state/ema.json")),
        out: dir.join("out"),
        placement: Default::default(),
        policy: RoundPolicy::default(),
    }
}

#[test]
fn a_round_rerun_for_the_same_block_leaves_the_state_of_one_round() {
    let dir = tempfile::tempdir().unwrap();
    let first = Loader::new(&[("alice", 1.0), ("bob", 1.2), ("carol", 1.5), ("dave", 1.5)]);
    let second = Loader::new(&[("alice", 1.0), ("bob", 0.5), ("carol", 1.5), ("dave", 1.5)]);
    run_with_loader(
        &settings(dir.path(), WORD_SORTING_ONLY, 2000),
        &first,
        |_| {},
    )
    .unwrap();
    let once = run_with_loader(
        &settings(dir.path(), WORD_SORTING_ONLY, 2360),
        &second,
        |_| {},
    )
    .unwrap();
    let state_once = std::fs::read_to_string(dir.path().join("state/ema.json")).unwrap();
    assert!((once.results.competition_weights["bob"] - 0.1).abs() < 1e-12);
    assert!(once.results.notes.is_empty());
    for _ in 0..2 {
        let again = run_with_loader(
            &settings(dir.path(), WORD_SORTING_ONLY, 2360),
            &second,
            |_| {},
        )
        .unwrap();
        assert_eq!(
            again.results.competition_weights, once.results.competition_weights,
            "the moving average must be applied once per block"
        );
        assert!(again.results.notes[0].contains("already recorded"));
        let state_again = std::fs::read_to_string(dir.path().join("state/ema.json")).unwrap();
        assert_eq!(state_again, state_once);
    }
    // The next block moves on from the one-round state: 0.9 * 0.1 + 0.1 = 0.19.
    let next = run_with_loader(
        &settings(dir.path(), WORD_SORTING_ONLY, 2720),
        &second,
        |_| {},
    )
    .unwrap();
    assert!((next.results.competition_weights["bob"] - 0.19).abs() < 1e-12);
    // An older block is refused before any work, and the state is left alone.
    let before = std::fs::read_to_string(dir.path().join("state/ema.json")).unwrap();
    let loads = second.loads.load(Ordering::SeqCst);
    let error = run_with_loader(
        &settings(dir.path(), WORD_SORTING_ONLY, 2360),
        &second,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(error, RunError::Round(RoundError::Stale(_))),
        "{error}"
    );
    assert_eq!(error.blame(), Blame::Operator);
    assert_eq!(second.loads.load(Ordering::SeqCst), loads);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/ema.json")).unwrap(),
        before
    );
}

#[test]
fn a_round_with_a_task_that_cannot_load_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-data");
    std::fs::create_dir(&empty).unwrap();
    let tiny = assay_sn37::competition::find_competition("TINY_DEMO")
        .unwrap()
        .to_toml();
    let loader = Loader::new(&[("alice", 1.0), ("bob", 1.2), ("carol", 1.5), ("dave", 1.5)]);
    let mut settings = settings(dir.path(), &tiny, 2000);
    settings.data = empty;
    let error = run_with_loader(&settings, &loader, |_| {}).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("2 of 3 tasks cannot be evaluated")
            && text.contains("SYNTHETIC_1_SFT")
            && text.contains("IF_EVAL_V2"),
        "{text}"
    );
    assert_eq!(error.blame(), Blame::Operator);
    assert!(error.hint().unwrap().contains("--allow-missing-tasks"));
    assert_eq!(
        loader.loads.load(Ordering::SeqCst),
        0,
        "refused before any model"
    );
    assert!(!dir.path().join("state/ema.json").exists());
    assert!(!dir.path().join("out/results.json").exists());

    settings.policy.allow_missing_tasks = true;
    let output = run_with_loader(&settings, &loader, |_| {}).unwrap();
    let results = output.results;
    assert!(
        results.notes.iter().any(|n| n.contains("SYNTHETIC_1_SFT")
            && n.contains("IF_EVAL_V2")
            && n.contains("renormalised")),
        "{:?}",
        results.notes
    );
    let alice = results.models.iter().find(|m| m.hotkey == "alice").unwrap();
    // Word sorting alone carries the whole weight: 0.4 renormalised to 1.
    assert_eq!(alice.tasks.len(), 1);
    assert!((alice.tasks[0].weighted - alice.tasks[0].normalized).abs() < 1e-15);
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    assert!(
        written["notes"][0]
            .as_str()
            .unwrap()
            .contains("renormalised")
    );
}

#[cfg(unix)]
#[test]
fn symbolic_links_to_folders_are_followed_and_broken_ones_rejected_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let real = examples_dir().join("models").canonicalize().unwrap();
    std::os::unix::fs::symlink(real.join("alice"), models.join("alice")).unwrap();
    std::os::unix::fs::symlink(real.join("bob"), models.join("bob")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone"), models.join("zed")).unwrap();
    let mut settings = settings(dir.path(), WORD_SORTING_ONLY, 2000);
    settings.models = models;
    let loader = Loader::new(&[("alice", 1.0), ("bob", 1.2)]);
    let results = run_with_loader(&settings, &loader, |_| {}).unwrap().results;
    let status: Vec<(&str, Status)> = results
        .models
        .iter()
        .map(|m| (m.hotkey.as_str(), m.status))
        .collect();
    assert_eq!(
        status,
        [
            ("alice", Status::Evaluated),
            ("bob", Status::Evaluated),
            ("zed", Status::Rejected)
        ]
    );
    let zed = &results.models[2];
    assert!(
        zed.reasons[0].contains("symbolic link") && zed.reasons[0].contains("gone"),
        "{:?}",
        zed.reasons
    );
}

#[test]
fn models_are_evaluated_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::new(&[("alice", 1.0), ("bob", 1.2), ("carol", 1.5), ("dave", 1.5)]);
    run_with_loader(
        &settings(dir.path(), WORD_SORTING_ONLY, 2000),
        &loader,
        |_| {},
    )
    .unwrap();
    assert_eq!(loader.loads.load(Ordering::SeqCst), 4);
    assert_eq!(
        loader.peak.load(Ordering::SeqCst),
        1,
        "one model in memory at a time"
    );
    assert_eq!(loader.live.load(Ordering::SeqCst), 0, "every model freed");
}

#[test]
fn a_model_that_fails_to_load_is_the_miners_fault_and_a_missing_models_folder_the_operators() {
    assert_eq!(
        LoadError::from("bad weights".to_owned()).blame(),
        Blame::Miner
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), WORD_SORTING_ONLY, 2000);
    settings.models = dir.path().join("missing");
    let error = run_with_loader(&settings, &Loader::default(), |_| {}).unwrap_err();
    assert_eq!(error.blame(), Blame::Operator);
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(!dir.path().join("out/results.json").exists());
}

/// Env var that turns [`writer_child`] into a process writing the state in a loop.
const CHILD_ENV: &str = "ASSAY_SN37_STATE_WRITER";

fn big_state(tag: &str) -> EmaState {
    let mut state = EmaState::default();
    let step: BTreeMap<String, f64> = (0..4000)
        .map(|i| (format!("{tag}-hotkey-{i:05}"), 1.0))
        .collect();
    state.record_step(1, 1.0, &step);
    state
}

/// Not a test on its own: run by the kill -9 test as a child process.
#[test]
fn writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let states = [big_state("a"), big_state("b")];
    for i in 0.. {
        write_json_atomic(Path::new(&path), &states[i % 2]).unwrap();
    }
}

#[test]
fn a_state_file_survives_kill_9_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ema.json");
    let expected = [big_state("a"), big_state("b")];
    for round in 0..6u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "writer_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !path.exists() && started.elapsed().as_secs() < 30 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(20 + 37 * round));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let state = read_state(&path).expect("a whole state after kill -9");
        assert!(
            expected.contains(&state),
            "the state is one of the two written"
        );
    }
}
