//! Pairwise comparison with the epsilon advantage, win rates and the winner-take-all step
//! (finetuning `finetune/validation.py::compute_wins` and `neurons/validator.py`).

use serde::{Deserialize, Serialize};

use crate::epsilon::EpsilonSchedule;

/// One evaluated model in the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    /// The miner's hotkey.
    pub hotkey: String,
    /// Combined score; lower is better, `+inf` when evaluation failed.
    pub score: f64,
    /// Block of the on-chain commit (the model's timestamp).
    pub block: u64,
}

/// A contender's record against the others.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WinRecord {
    /// Pairwise wins.
    pub wins: usize,
    /// `wins / (n - 1)`, 0 when the contender is alone.
    pub win_rate: f64,
}

/// Whether `i` beats `j`: only the strictly earlier commit has its score multiplied by
/// `1 - epsilon`; equal blocks compare raw scores; a tie is not a win. NaN never wins and
/// is never beaten, as with Python's comparisons.
pub fn is_win(i: &Contender, j: &Contender, epsilon: &EpsilonSchedule, current_block: u64) -> bool {
    let adjusted = |model: &Contender, other: &Contender| {
        if model.block < other.block {
            (1.0 - epsilon.epsilon(current_block, model.block)) * model.score
        } else {
            model.score
        }
    };
    adjusted(i, j) < adjusted(j, i)
}

/// Every contender's wins and win rate against all the others.
pub fn win_records(
    contenders: &[Contender],
    epsilon: &EpsilonSchedule,
    current_block: u64,
) -> Vec<WinRecord> {
    contenders
        .iter()
        .enumerate()
        .map(|(index, model)| {
            let wins = contenders
                .iter()
                .enumerate()
                .filter(|&(other_index, other)| {
                    other_index != index && is_win(model, other, epsilon, current_block)
                })
                .count();
            let matches = contenders.len().saturating_sub(1);
            let win_rate = if matches > 0 {
                wins as f64 / matches as f64
            } else {
                0.0
            };
            WinRecord { wins, win_rate }
        })
        .collect()
}

/// Winner-take-all step weights: 1 for every contender whose win rate equals the best one
/// (ties share), 0 for the others. Empty input gives an empty vector.
pub fn winner_take_all(records: &[WinRecord]) -> Vec<f64> {
    let best = records
        .iter()
        .map(|record| record.win_rate)
        .fold(f64::NEG_INFINITY, f64::max);
    records
        .iter()
        .map(|record| f64::from(u8::from(record.win_rate == best)))
        .collect()
}
