//! The weight logic against fixtures from `scripts/golden_weights.py` (a plain-Python
//! restatement of taoverse/finetuning's epsilon, compute_wins, winner-take-all and
//! CompetitionTracker), to 1e-9.

use std::collections::BTreeMap;

use assay_sn37::epsilon::EpsilonSchedule;
use assay_sn37::tracker::EmaState;
use assay_sn37::wins::{Contender, win_records, winner_take_all};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Golden {
    epsilon: Vec<EpsilonRow>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct EpsilonRow {
    schedule: EpsilonSchedule,
    current_block: u64,
    model_block: u64,
    epsilon: f64,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    alpha: f64,
    threshold: f64,
    competitions: BTreeMap<u32, CompetitionSpec>,
    rounds: Vec<Round>,
}

#[derive(Deserialize)]
struct CompetitionSpec {
    reward_share: f64,
    epsilon: EpsilonSchedule,
}

#[derive(Deserialize)]
struct GoldenContender {
    hotkey: String,
    /// `null` stands for +inf (JSON has no infinity).
    score: Option<f64>,
    block: u64,
}

#[derive(Deserialize)]
struct Round {
    competition: u32,
    block: u64,
    contenders: Vec<GoldenContender>,
    wins: Vec<usize>,
    win_rates: Vec<f64>,
    step_weights: Vec<f64>,
    ema: BTreeMap<u32, BTreeMap<String, f64>>,
    subnet_weights: BTreeMap<String, f64>,
}

fn golden() -> Golden {
    let text = include_str!("fixtures/weights_golden.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: got {got}, want {want}"
    );
}

/// Compares a hotkey map; hotkeys missing on the Rust side count as 0 (the reference keeps a
/// metagraph-sized vector).
fn assert_map_close(what: &str, got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>) {
    for (hotkey, value) in want {
        let found = got.get(hotkey).copied().unwrap_or(0.0);
        assert_close(&format!("{what} {hotkey}"), found, *value);
    }
    for hotkey in got.keys() {
        assert!(
            want.contains_key(hotkey),
            "{what}: unexpected hotkey {hotkey}"
        );
    }
}

#[test]
fn epsilon_matches_reference() {
    let golden = golden();
    assert!(golden.epsilon.len() >= 10);
    for row in golden.epsilon {
        let got = row.schedule.epsilon(row.current_block, row.model_block);
        assert_close(&format!("{:?}", row.schedule), got, row.epsilon);
    }
}

#[test]
fn rounds_match_reference() {
    let golden = golden();
    assert!(golden.cases.len() > 30);
    for case in golden.cases {
        let mut state = EmaState {
            alpha: case.alpha,
            ..EmaState::default()
        };
        // The reference sums over every scheduled competition, tracked or not.
        for (index, round) in case.rounds.iter().enumerate() {
            let what = format!("{} / round {index}", case.name);
            let spec = &case.competitions[&round.competition];
            let contenders: Vec<Contender> = round
                .contenders
                .iter()
                .map(|c| Contender {
                    hotkey: c.hotkey.clone(),
                    score: c.score.unwrap_or(f64::INFINITY),
                    block: c.block,
                })
                .collect();
            let records = win_records(&contenders, &spec.epsilon, round.block);
            let wins: Vec<usize> = records.iter().map(|r| r.wins).collect();
            assert_eq!(wins, round.wins, "{what}: wins");
            for (record, want) in records.iter().zip(&round.win_rates) {
                assert_close(&format!("{what} win rate"), record.win_rate, *want);
            }
            let step = winner_take_all(&records);
            assert_eq!(step, round.step_weights, "{what}: step weights");
            let step_map: BTreeMap<String, f64> = contenders
                .iter()
                .map(|c| c.hotkey.clone())
                .zip(step)
                .collect();
            state.record_step(round.competition, spec.reward_share, &step_map);
            let subnet = state.subnet_weights(case.threshold);
            assert_map_close(&format!("{what} subnet"), &subnet, &round.subnet_weights);
            for (competition, want) in &round.ema {
                let got = &state.competitions[competition].weights;
                assert_map_close(&format!("{what} ema {competition}"), got, want);
            }
        }
    }
}
