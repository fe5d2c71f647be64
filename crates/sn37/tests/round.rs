//! Rounds end to end: on the committed demo submissions with the real engine, and with a fake
//! model loader whose losses are set per folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_eval::runner::{LanguageModel, ModelError};
use assay_eval::task_def::GenParams;
use assay_sn37::competition::{Competition, Constraints, TaskSpec, find_competition};
use assay_sn37::engine_loader::EngineLoader;
use assay_sn37::round::{LoadError, ModelLoader, RoundInputs, RoundResults, Status, run_round};
use assay_sn37::tracker::EmaState;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sn37")
}

fn demo_inputs(block: u64) -> RoundInputs {
    RoundInputs {
        competition: find_competition("TINY_DEMO").expect("built-in"),
        models_dir: examples_dir().join("models"),
        data_dir: examples_dir().join("data"),
        block,
        block_hash: None,
    }
}

fn model<'a>(results: &'a RoundResults, hotkey: &str) -> &'a assay_sn37::round::ModelResult {
    results
        .models
        .iter()
        .find(|m| m.hotkey == hotkey)
        .expect("hotkey in results")
}

fn weight(results: &RoundResults, hotkey: &str) -> f64 {
    results
        .weights
        .iter()
        .find(|w| w.hotkey == hotkey)
        .map_or(0.0, |w| w.weight)
}

#[test]
fn demo_round_copy_never_wins_and_violator_gets_zero() {
    let mut state = EmaState::default();
    for block in [2000, 2360, 2720] {
        let results = run_round(
            &demo_inputs(block),
            &mut state,
            &EngineLoader::default(),
            &mut |_| {},
        )
        .expect("round runs");
        let (alice, carol) = (model(&results, "alice"), model(&results, "carol"));
        assert_eq!(alice.score, carol.score, "an exact copy scores the same");
        assert!(
            carol.win_rate < alice.win_rate,
            "block {block}: the later copy must lose to its original"
        );
        assert_eq!(carol.step_weight, 0.0);
        assert_eq!(weight(&results, "carol"), 0.0);
        let mallory = model(&results, "mallory");
        assert_eq!(mallory.status, Status::Rejected);
        assert!(
            mallory.reasons.iter().any(|r| r.contains("norm")),
            "{:?}",
            mallory.reasons
        );
        assert_eq!(weight(&results, "mallory"), 0.0);
        assert!(
            mallory.tasks.is_empty(),
            "a rejected model is not evaluated"
        );
        let total: f64 = results.weights.iter().map(|w| w.weight).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}

#[test]
fn demo_round_twice_gives_identical_results() {
    let run = || {
        let mut state = EmaState::default();
        let results = run_round(
            &demo_inputs(2000),
            &mut state,
            &EngineLoader::default(),
            &mut |_| {},
        )
        .expect("round runs");
        (
            serde_json::to_string(&results).unwrap(),
            serde_json::to_string(&state).unwrap(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn demo_round_waits_for_the_eval_delay() {
    let mut state = EmaState::default();
    let early = run_round(
        &demo_inputs(2000),
        &mut state,
        &EngineLoader::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(model(&early, "erin").status, Status::Waiting);
    let later = run_round(
        &demo_inputs(2050),
        &mut state,
        &EngineLoader::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(model(&later, "erin").status, Status::Waiting);
}

/// Scores each folder with a fixed loss; folders absent from the table fail to load.
struct TableLoader(BTreeMap<String, f64>);

struct ConstantLm(f64);

impl LanguageModel for ConstantLm {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        Ok(vec![(-self.0, false); requests.len()])
    }
    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        Ok(vec![String::new(); requests.len()])
    }
    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        Ok(vec![self.0; requests.len()])
    }
}

impl ModelLoader for TableLoader {
    fn load(&self, dir: &Path, _: &Constraints) -> Result<Box<dyn LanguageModel>, LoadError> {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match self.0.get(&name) {
            Some(&loss) => Ok(Box::new(ConstantLm(loss))),
            None => Err(format!("no loss for {name}").into()),
        }
    }
}

/// Word sorting only, normalisation none: a model's score is its loss.
fn loss_only_inputs(block: u64) -> RoundInputs {
    let mut competition: Competition = find_competition("TINY_DEMO").unwrap();
    competition.tasks.retain(|t| t.name == "WORD_SORTING");
    competition.tasks[0].weight = 1.0;
    competition.tasks[0].normalization = assay_eval::sn37::normalize::Normalization::None;
    RoundInputs {
        competition,
        ..demo_inputs(block)
    }
}

fn table(entries: &[(&str, f64)]) -> TableLoader {
    TableLoader(entries.iter().map(|(k, v)| (k.to_string(), *v)).collect())
}

#[test]
fn copy_inside_epsilon_loses_and_a_clear_improvement_wins() {
    let mut state = EmaState::default();
    // Epsilon for alice (block 1000) at block 2000 is 0.05 - 1000/7200 * 0.04 ~ 0.0444.
    let loader = table(&[("alice", 1.0), ("bob", 1.2), ("carol", 0.96), ("dave", 1.3)]);
    let results = run_round(&loss_only_inputs(2000), &mut state, &loader, &mut |_| {}).unwrap();
    assert_eq!(model(&results, "alice").step_weight, 1.0);
    assert_eq!(model(&results, "carol").step_weight, 0.0);
    let loader = table(&[("alice", 1.0), ("bob", 1.2), ("carol", 0.95), ("dave", 1.3)]);
    let results = run_round(
        &loss_only_inputs(2000),
        &mut EmaState::default(),
        &loader,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        model(&results, "carol").step_weight,
        1.0,
        "0.95 < 1.0 * (1 - 0.0444)"
    );
}

#[test]
fn ema_state_persists_and_threshold_holds_back_a_newcomer() {
    let mut state = EmaState::default();
    let first = table(&[("alice", 1.0), ("bob", 1.2), ("carol", 1.5), ("dave", 1.5)]);
    run_round(&loss_only_inputs(2000), &mut state, &first, &mut |_| {}).unwrap();
    // The state goes through its JSON form, as between two CLI runs.
    let mut state: EmaState =
        serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let second = table(&[("alice", 1.0), ("bob", 0.5), ("carol", 1.5), ("dave", 1.5)]);
    let results = run_round(&loss_only_inputs(2360), &mut state, &second, &mut |_| {}).unwrap();
    assert_eq!(model(&results, "bob").step_weight, 1.0);
    assert!((results.competition_weights["alice"] - 0.9).abs() < 1e-12);
    assert!((results.competition_weights["bob"] - 0.1).abs() < 1e-12);
    assert_eq!(weight(&results, "bob"), 0.0, "0.1 is below the 0.18 cut");
    assert_eq!(weight(&results, "alice"), 1.0);
    let results = run_round(&loss_only_inputs(2720), &mut state, &second, &mut |_| {}).unwrap();
    assert!((results.competition_weights["bob"] - 0.19).abs() < 1e-12);
    assert!(weight(&results, "bob") > 0.0, "two wins cross the cut");
}

#[test]
fn a_model_that_fails_to_load_scores_infinity_and_stays_compared() {
    let loader = table(&[("alice", 1.0), ("bob", 1.2), ("carol", 1.5)]);
    let results = run_round(
        &loss_only_inputs(2000),
        &mut EmaState::default(),
        &loader,
        &mut |_| {},
    )
    .unwrap();
    let dave = model(&results, "dave");
    assert_eq!(dave.status, Status::Failed);
    assert_eq!(dave.score, None);
    assert!(dave.reasons.iter().any(|r| r.contains("cannot load")));
    assert_eq!(dave.win_rate, 0.0);
    assert_eq!(
        model(&results, "carol").wins,
        1,
        "carol beats only the failed model"
    );
}

/// Sleeps on every call, as a model far too slow for the competition's time limit.
struct SlowLm;

impl LanguageModel for SlowLm {
    fn loglikelihood(&self, requests: &[(String, String)]) -> Result<Vec<(f64, bool)>, ModelError> {
        Ok(vec![(0.0, false); requests.len()])
    }
    fn generate_until(&self, requests: &[(String, GenParams)]) -> Result<Vec<String>, ModelError> {
        Ok(vec![String::new(); requests.len()])
    }
    fn reference_loss(&self, requests: &[(String, String)]) -> Result<Vec<f64>, ModelError> {
        std::thread::sleep(std::time::Duration::from_millis(40));
        Ok(vec![0.1; requests.len()])
    }
}

/// `slow` gets [`SlowLm`]; the others a constant loss of 1.
struct SlowLoader(&'static str);

impl ModelLoader for SlowLoader {
    fn load(&self, dir: &Path, _: &Constraints) -> Result<Box<dyn LanguageModel>, LoadError> {
        if dir.ends_with(self.0) {
            Ok(Box::new(SlowLm))
        } else {
            Ok(Box::new(ConstantLm(1.0)))
        }
    }
}

#[test]
fn a_model_past_the_time_limit_is_stopped_and_scores_infinity() {
    let mut inputs = loss_only_inputs(2000);
    // 400 samples would take 50 calls x 40 ms = 2 s; the limit stops bob after about 0.1 s.
    inputs.competition.tasks[0].samples = 400;
    inputs.competition.eval_time_limit_s = 0.1;
    let started = std::time::Instant::now();
    let results = run_round(
        &inputs,
        &mut EmaState::default(),
        &SlowLoader("bob"),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        started.elapsed().as_secs_f64() < 1.5,
        "the slow model was not stopped"
    );
    let bob = model(&results, "bob");
    assert_eq!(bob.status, Status::Failed);
    assert_eq!(bob.score, None);
    assert!(
        bob.reasons
            .iter()
            .any(|r| r.contains("allows 0.1 s per model") && r.contains("+inf")),
        "{:?}",
        bob.reasons
    );
    assert_eq!(bob.step_weight, 0.0);
    let alice = model(&results, "alice");
    assert_eq!((alice.status, alice.score), (Status::Evaluated, Some(1.0)));
}

/// TINY_DEMO with only a FINEWEB-style TEXT_LOSS task over Parquet documents in `data`.
fn text_loss_inputs(data: &Path) -> RoundInputs {
    let docs = [
        "Water boils at one hundred degrees Celsius at sea level, and lower on mountains.",
        "The library opens at nine in the morning and closes at six in the evening.",
        "Bees collect nectar from flowers and turn it into honey inside the hive.",
        "A triangle has three sides, and its angles always add up to half a turn.",
        "Rivers carry sand and stones from the hills down to the sea over many years.",
    ];
    let rows: Vec<assay_tables::Row> = docs
        .iter()
        .map(|text| {
            let mut row = assay_tables::Row::new();
            row.insert("text".into(), (*text).into());
            row
        })
        .collect();
    assay_tables::write_parquet(
        &data.join("fineweb.parquet"),
        &rows,
        &assay_tables::ParquetOptions::default(),
    )
    .unwrap();
    let mut competition: Competition = find_competition("TINY_DEMO").unwrap();
    let text: TaskSpec = toml::from_str(
        r#"
name = "FINEWEB"
method = "text_loss"
weight = 1.0
normalization = { method = "inverse_exponential", ceiling = 20.0 }
samples = 4
source = { reader = "text", file = "fineweb.parquet" }
"#,
    )
    .unwrap();
    competition.tasks = vec![text];
    RoundInputs {
        competition,
        data_dir: data.to_path_buf(),
        ..demo_inputs(2000)
    }
}

#[test]
fn demo_models_are_scored_with_text_loss() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = text_loss_inputs(dir.path());
    let run = || {
        run_round(
            &inputs,
            &mut EmaState::default(),
            &EngineLoader::default(),
            &mut |_| {},
        )
        .unwrap()
    };
    let results = run();
    assert_eq!(results.tasks[0].samples, 4);
    assert_eq!(results.tasks[0].dropped, None);
    for hotkey in ["alice", "bob", "carol", "dave"] {
        let entry = model(&results, hotkey);
        let raw = entry.tasks[0].raw;
        // A random model over a 320-token vocabulary: a loss near ln(320) ~ 5.77, or +inf with
        // the sanity check's reason.
        let failed_sanity = entry
            .reasons
            .iter()
            .any(|r| r.contains("sanity check failed"));
        assert!(
            (raw > 4.0 && raw < 8.0) || (raw.is_infinite() && failed_sanity),
            "{hotkey}: {raw} {:?}",
            entry.reasons
        );
    }
    assert_eq!(
        model(&results, "alice").score,
        model(&results, "carol").score
    );
    assert_eq!(
        serde_json::to_string(&results).unwrap(),
        serde_json::to_string(&run()).unwrap()
    );
}
