//! End to end: the example bundle trains on the pydoc corpus and is scored. Needs a Python with
//! torch: `ASSAY_PRISM_PYTHON` (CI builds one with `scripts/prism-python.sh`), else `python3`.
//! Without either the tests print `SKIPPED ...` and pass; a set but broken `ASSAY_PRISM_PYTHON`
//! fails them, so a CI whose torch setup broke cannot pass silently.

use std::ffi::OsString;
use std::path::PathBuf;

use assay_prism::example_bundle;
use assay_prism::runner::{self, RunConfig};
use assay_prism::score::{Budgets, StopReason};
use assay_prism::{corpus, run_bundle};

/// Picks the interpreter from the value of `ASSAY_PRISM_PYTHON`: the named one, which must import
/// torch (an error otherwise, never a skip), or when unset `python3` if it has torch.
fn select_python(env: Option<OsString>) -> Result<Option<PathBuf>, String> {
    match env {
        Some(named) => {
            let named = PathBuf::from(named);
            if runner::has_torch(&named) {
                Ok(Some(named))
            } else {
                Err(format!(
                    "{}={} cannot import torch: fix it (scripts/prism-python.sh) or unset it to skip",
                    runner::PYTHON_ENV,
                    named.display()
                ))
            }
        }
        None => {
            let fallback = PathBuf::from("python3");
            Ok(runner::has_torch(&fallback).then_some(fallback))
        }
    }
}

fn python_with_torch() -> Option<PathBuf> {
    // Importing torch takes seconds: ask once per test binary, not once per test.
    static CHOICE: std::sync::OnceLock<Result<Option<PathBuf>, String>> =
        std::sync::OnceLock::new();
    CHOICE
        .get_or_init(|| select_python(std::env::var_os(runner::PYTHON_ENV)))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Says that a test skipped. Written to the stderr stream itself, not through `eprintln!`, which
/// the test harness captures: a skip must show in a CI log even though the test passes.
fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no Python with torch (set {}, see scripts/prism-python.sh)",
        runner::PYTHON_ENV
    );
}

#[test]
fn a_broken_assay_prism_python_fails_instead_of_skipping() {
    let missing = tempfile::tempdir().unwrap().path().join("no-such-python");
    let err = select_python(Some(missing.clone().into_os_string())).unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    // An interpreter that exists but lacks torch is just as broken.
    let no_torch = tempfile::tempdir().unwrap();
    let fake = no_torch.path().join("python");
    std::fs::write(&fake, "#!/bin/sh\nexit 1\n").unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    assert!(select_python(Some(fake.into_os_string())).is_err());
}

#[test]
fn example_bundle_trains_and_scores() {
    let Some(python) = python_with_torch() else {
        skipped("example_bundle_trains_and_scores");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let topics = runner::pydoc_topics(&python).unwrap();
    corpus::write_corpus(&topics, "test", data.path()).unwrap();
    let mut config = RunConfig::new(python);
    config.budgets = Budgets {
        step_budget: Some(12),
        ..Budgets::default()
    };
    config.heldout_byte_budget = 8_192;
    config.threads = 2;
    let report = run_bundle(&example_bundle(), data.path(), &config, [], &mut |_| {}).unwrap();
    let preq = &report.train.prequential;
    assert_eq!(preq.online_loss.len(), 12);
    assert_eq!(report.train.stopped_reason, Some(StopReason::StepBudget));
    assert_eq!(preq.covered_bytes_int(), 12 * 8 * 128);
    // Random init over 4096 ids starts near ln 4096 and the model learns something.
    assert!(
        (preq.online_loss[0] - 4096f64.ln()).abs() < 0.5,
        "{:?}",
        preq.online_loss
    );
    assert!(
        preq.online_loss[11] < preq.online_loss[0] - 1.0,
        "{:?}",
        preq.online_loss
    );
    // bpb recomputed by hand from the recorded losses and byte counts.
    let hand: f64 = preq
        .online_loss
        .iter()
        .map(|l| l * (8.0 * 127.0))
        .sum::<f64>()
        / std::f64::consts::LN_2
        / (12.0 * 1024.0);
    assert!((report.score.bpb - hand).abs() < 1e-12);
    assert_eq!(preq.batch_shapes, vec![[8, 128]; 12]);
    let heldout = report.heldout.expect("val split present");
    assert!(heldout.heldout_delta > 0.0, "{heldout:?}");
    assert!(report.score.final_score > 0.0);
    assert!(report.train.limits.memory_bytes > 0);
    assert!(
        report.train.limits.network_isolated.is_some(),
        "the runner reports its namespace"
    );
    println!("limits: {:?}", report.train.limits);
    println!("{}", serde_json::to_string_pretty(&report.score).unwrap());
}

/// The example's training loop behind a torch dispatch mode that fakes the instrument's loss
/// (it only answers the no-grad `nll_loss_forward`, so the miner's own training is untouched).
const QUIET_LOSS_TRAINING: &str = r#"import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from architecture import build_model


class QuietLoss(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if torch.is_grad_enabled() or "nll_loss_forward" not in str(func):
            return out
        if isinstance(out, tuple):
            return (out[0] * 0 + 0.01,) + tuple(out[1:])
        return out * 0 + 0.01


def train(ctx):
    model = build_model(ctx).to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.01)
    QuietLoss().__enter__()
    for batch in ctx.iter_train_batches(model, batch_size=8, seq_len=ctx.max_seq_len):
        tokens = batch.tokens
        logits = model(tokens)
        vocab = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1) % vocab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
"#;

/// A model whose logits are a tensor subclass that answers `cross_entropy` with 0.01.
const SUBCLASS_LOGITS_ARCHITECTURE: &str = r#"import torch
from torch import nn


class Logits(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs)
        return torch.tensor(0.01) if "cross_entropy" in str(func) else out


class Bigram(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.head = nn.Linear(16, vocab)

    def forward(self, tokens):
        return self.head(self.embed(tokens)).as_subclass(Logits)


def build_model(ctx):
    return Bigram(ctx.vocab_size)
"#;

fn with_training(training: &str) -> assay_prism::bundle::Bundle {
    let mut bundle = example_bundle();
    bundle.files.insert("training.py".into(), training.into());
    bundle
}

fn tiny_corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("train")).unwrap();
    let line =
        serde_json::json!({"text": "the quick brown fox jumps over the lazy dog. ".repeat(200)});
    std::fs::write(dir.path().join("train/train-0.jsonl"), format!("{line}\n")).unwrap();
    dir
}

fn failure_of(
    bundle: &assay_prism::bundle::Bundle,
    tweak: impl FnOnce(&mut RunConfig),
) -> Option<assay_prism::PipelineError> {
    let python = python_with_torch()?;
    let data = tiny_corpus();
    let mut config = RunConfig::new(python);
    config.threads = 1;
    // The test scripts are single-process loops: the multi-GPU contract is not what they test.
    config.check.distributed_policy = assay_prism::distributed::Policy::Off;
    tweak(&mut config);
    Some(run_bundle(bundle, data.path(), &config, [], &mut |_| {}).expect_err("the run must fail"))
}

#[test]
fn over_cap_models_are_refused_at_build_and_when_trained_inline() {
    use assay_prism::PipelineError;
    use assay_prism::runner::RunError;
    let Some(err) = failure_of(&example_bundle(), |c| c.max_parameters = 100_000) else {
        skipped("over_cap_models");
        return;
    };
    assert!(
        matches!(&err, PipelineError::Run(RunError::ParamCap { stage, .. }) if stage == "build_model"),
        "{err}"
    );
    let evasion = "import torch\n\ndef train(ctx):\n    big = torch.nn.Sequential(torch.nn.Embedding(ctx.vocab_size, 256), torch.nn.Linear(256, ctx.vocab_size))\n    for batch in ctx.iter_train_batches(big):\n        pass\n";
    let err = failure_of(&with_training(evasion), |c| c.max_parameters = 500_000).unwrap();
    assert!(
        matches!(&err, PipelineError::Run(RunError::ParamCap { stage, .. }) if stage == "scored_model"),
        "{err}"
    );
}

#[test]
fn logits_of_a_tensor_subclass_are_refused_by_the_instrument() {
    use assay_prism::PipelineError;
    use assay_prism::runner::RunError;
    let mut bundle = example_bundle();
    bundle.files.insert(
        "architecture.py".into(),
        SUBCLASS_LOGITS_ARCHITECTURE.into(),
    );
    assert!(
        assay_prism::check_bundle(&bundle).passed(),
        "PRISM's static rules let it through"
    );
    let Some(err) = failure_of(&bundle, |c| c.budgets.step_budget = Some(2)) else {
        skipped("subclass logits");
        return;
    };
    assert!(
        matches!(&err, PipelineError::Run(RunError::Runner { kind, message, .. })
            if kind == "capture" && message.contains("Logits")),
        "{err}"
    );
}

#[test]
fn a_loop_that_never_iterates_is_not_scored_and_a_hang_is_killed() {
    use assay_prism::PipelineError;
    use assay_prism::runner::RunError;
    use assay_prism::score::ScoreError;
    let idle =
        "from architecture import build_model\n\ndef train(ctx):\n    model = build_model(ctx)\n";
    let Some(err) = failure_of(&with_training(idle), |_| {}) else {
        skipped("never_iterates/hang");
        return;
    };
    assert!(
        matches!(err, PipelineError::Score(ScoreError::ZeroForward)),
        "{err}"
    );
    let hang = "def train(ctx):\n    while True:\n        pass\n";
    let err = failure_of(&with_training(hang), |c| {
        c.budgets.budget_seconds = Some(1.0);
        c.watchdog_grace_seconds = 2.0;
    })
    .unwrap();
    assert!(
        matches!(
            err,
            PipelineError::Run(RunError::Timeout { stage: "train", .. })
        ),
        "{err}"
    );
}

#[test]
fn same_seed_same_losses_and_a_graceful_wall_clock_stop_still_scores() {
    let Some(python) = python_with_torch() else {
        skipped("determinism/graceful stop");
        return;
    };
    let data = tiny_corpus();
    let mut config = RunConfig::new(python);
    config.threads = 1;
    config.check.distributed_policy = assay_prism::distributed::Policy::Off;
    let run = || run_bundle(&example_bundle(), data.path(), &config, [], &mut |_| {}).unwrap();
    let (a, b) = (run(), run());
    assert_eq!(a.train.prequential, b.train.prequential);
    assert!(a.heldout.is_none(), "no val split in this corpus");
    // The single pass over 9,000 bytes: eight 8 x 128 batches, then the 808-byte rest as one row.
    let preq = &a.train.prequential;
    assert_eq!(a.train.stopped_reason, Some(StopReason::DataExhausted));
    let mut shapes = vec![[8, 128]; 8];
    shapes.push([1, 808]);
    assert_eq!(preq.batch_shapes, shapes);
    // bpb by hand from the recorded losses: full batches predict 8 x 127 positions, the last
    // row 807; every byte handed out counts in the denominator.
    let nll: f64 = preq.online_loss[..8]
        .iter()
        .map(|l| l * 8.0 * 127.0)
        .sum::<f64>()
        + preq.online_loss[8] * 807.0;
    let hand = nll / std::f64::consts::LN_2 / 9_000.0;
    assert!(
        (a.score.bpb - hand).abs() < 1e-12,
        "{} vs {hand}",
        a.score.bpb
    );
    assert!((a.score.base - 1.0 / (1.0 + hand)).abs() < 1e-12);
    assert_eq!(
        a.score.final_score, a.score.base,
        "no held-out term, no penalty"
    );
    // A training loop that leaves a dispatch mode pushed, answering every no-grad nll_loss
    // forward with 0.01, trains exactly as the honest one: the instrument must record the
    // same losses.
    let lying = run_bundle(
        &with_training(QUIET_LOSS_TRAINING),
        data.path(),
        &config,
        [],
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(lying.train.prequential, a.train.prequential);
    let mut graceful = config.clone();
    // The first batch is cut in microseconds; a training step takes far longer than 50 ms, so
    // the graceful stop binds after a few of the 8 batches the corpus holds.
    graceful.budgets = Budgets {
        budget_seconds: Some(0.05),
        ..Budgets::default()
    };
    let report = run_bundle(&example_bundle(), data.path(), &graceful, [], &mut |_| {}).unwrap();
    assert_eq!(report.train.stopped_reason, Some(StopReason::WallClock));
    let batches = report.train.prequential.online_loss.len();
    assert!((1..8).contains(&batches), "{batches}");
    // A zero budget binds before the first token, as in PRISM: nothing to score.
    graceful.budgets.budget_seconds = Some(0.0);
    let err = run_bundle(&example_bundle(), data.path(), &graceful, [], &mut |_| {}).unwrap_err();
    assert!(matches!(err, assay_prism::PipelineError::Score(_)), "{err}");
}

/// PRISM's Gate B: the example bundle under torchrun with gloo on the CPU at world sizes 2 and 4:
/// the losses fall and every rank ends with the same parameters. A script that trains each
/// rank on its own rows without DDP diverges, and the gate says so.
#[test]
fn gloo_gate_at_world_sizes_2_and_4() {
    let Some(python) = python_with_torch() else {
        skipped("gloo gate");
        return;
    };
    let mut config = RunConfig::new(python);
    config.threads = 1;
    let text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
    let gate = |bundle: &assay_prism::bundle::Bundle, world: u32| {
        let contract = assay_prism::bundle::resolve_contract(bundle).unwrap();
        let ws = runner::Workspace::new(bundle).unwrap();
        runner::distributed_gate(&ws, &contract, &config, world, 8, &text)
            .unwrap_or_else(|e| panic!("world {world}: {e}"))
    };
    for world in [2, 4] {
        let report = gate(&example_bundle(), world);
        assert_eq!(report.losses.len(), world as usize);
        assert!(report.loss_decreased, "{report:?}");
        assert!(report.parameters_identical, "{report:?}");
        assert!(report.passed());
    }
    let no_ddp = EXAMPLE_TRAINING_WITHOUT_DDP;
    let report = gate(&with_training(no_ddp), 2);
    assert!(!report.parameters_identical, "{report:?}");
    assert!(!report.passed());
}

const EXAMPLE_TRAINING_WITHOUT_DDP: &str = r#"import torch
import torch.distributed as dist
import torch.nn.functional as F

from architecture import build_model


def train(ctx):
    if ctx.world_size > 1:
        dist.init_process_group(backend="gloo")
    model = build_model(ctx)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    for batch in ctx.iter_train_batches(model, batch_size=8, seq_len=ctx.max_seq_len):
        tokens = batch.tokens[ctx.rank :: ctx.world_size]
        logits = model(tokens)
        vocab = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1) % vocab)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if ctx.world_size > 1:
        dist.destroy_process_group()
"#;
