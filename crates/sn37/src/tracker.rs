//! The per-competition moving average of step weights and the subnet weights across
//! competitions (taoverse `model/competition/competition_tracker.py`).
//!
//! Weights are keyed by hotkey rather than by UID, and computed in f64 where taoverse uses
//! float32 tensors; the arithmetic and its order are otherwise the same. Replaying the golden
//! cases through taoverse itself (`scripts/check_golden_against_taoverse.py`) agrees to 6e-8.
//! One visible consequence of f64: a weight that lands exactly on the cut (e.g. `1 - 0.9` against
//! a 0.1 threshold) is 0.0999... here and dropped, while float32 rounds it to 0.1000000015 and
//! keeps it. SN37's 0.18 cut is not reachable exactly by `1 - 0.9^k` steps, so this does not
//! arise with its constants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// SN37's moving-average factor (`constants.ALPHA`).
pub const ALPHA: f64 = 0.9;

/// SN37's cut below which a normalised competition weight is dropped
/// (`constants.MIN_WEIGHT_THRESHOLD`).
pub const MIN_WEIGHT_THRESHOLD: f64 = 0.18;

/// Version of the persisted state layout.
pub const STATE_VERSION: u32 = 1;

/// One competition's moving-average weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetitionWeights {
    /// The competition's share of the subnet's reward, as of its last round.
    pub reward_share: f64,
    /// Moving-average weight by hotkey (sums to 1).
    pub weights: BTreeMap<String, f64>,
    /// Block of the last round recorded with [`EmaState::record_round`]; a round for the same
    /// block replaces that step instead of applying the average twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_block: Option<u64>,
    /// The weights before the last recorded round (`None` when that round was the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_last: Option<BTreeMap<String, f64>>,
}

/// A round older than the state's last one for the same competition (the state is ahead of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "competition {competition}: block {block} is older than the last round recorded in the state (block {last_block})"
)]
pub struct StaleRound {
    /// The competition.
    pub competition: u32,
    /// The round's block.
    pub block: u64,
    /// The last block the state recorded.
    pub last_block: u64,
}

/// What persists between rounds: the moving averages of every competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmaState {
    /// Layout version ([`STATE_VERSION`]).
    pub version: u32,
    /// Moving-average factor used for updates.
    pub alpha: f64,
    /// Competition id -> its weights.
    pub competitions: BTreeMap<u32, CompetitionWeights>,
}

impl Default for EmaState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            alpha: ALPHA,
            competitions: BTreeMap::new(),
        }
    }
}

/// Divides every value by the sum; a zero or non-finite sum gives zeros (torch's
/// `x /= x.sum(); x.nan_to_num(0.0)`).
fn normalize_in_place(weights: &mut BTreeMap<String, f64>) {
    let total: f64 = weights.values().sum();
    for value in weights.values_mut() {
        let scaled = *value / total;
        *value = if scaled.is_nan() { 0.0 } else { scaled };
    }
}

impl EmaState {
    /// Records one step of a competition: the step weights are normalised to sum 1, then
    /// `W <- alpha * W + (1 - alpha) * step` (hotkeys absent on either side count as 0);
    /// the first step of a competition initialises `W`.
    pub fn record_step(
        &mut self,
        competition: u32,
        reward_share: f64,
        step: &BTreeMap<String, f64>,
    ) {
        let mut step = step.clone();
        normalize_in_place(&mut step);
        let alpha = self.alpha;
        match self.competitions.get_mut(&competition) {
            None => {
                self.competitions.insert(
                    competition,
                    CompetitionWeights {
                        reward_share,
                        weights: step,
                        last_block: None,
                        before_last: None,
                    },
                );
            }
            Some(tracked) => {
                tracked.reward_share = reward_share;
                for hotkey in step.keys() {
                    tracked.weights.entry(hotkey.clone()).or_insert(0.0);
                }
                for (hotkey, value) in tracked.weights.iter_mut() {
                    let new = step.get(hotkey).copied().unwrap_or(0.0);
                    *value = alpha * *value + (1.0 - alpha) * new;
                }
            }
        }
    }

    /// Records the step of the round at `block`, idempotently: a second round for the same block
    /// first undoes the step the first one recorded, so rerunning a round (after a crash, say)
    /// gives the state one round gives. A block older than the last one recorded is refused.
    pub fn record_round(
        &mut self,
        competition: u32,
        block: u64,
        reward_share: f64,
        step: &BTreeMap<String, f64>,
    ) -> Result<(), StaleRound> {
        let before = match self.competitions.get(&competition) {
            Some(tracked) => match tracked.last_block {
                Some(last_block) if block < last_block => {
                    return Err(StaleRound {
                        competition,
                        block,
                        last_block,
                    });
                }
                Some(last_block) if block == last_block => tracked.before_last.clone(),
                _ => Some(tracked.weights.clone()),
            },
            None => None,
        };
        match &before {
            Some(weights) => {
                if let Some(tracked) = self.competitions.get_mut(&competition) {
                    tracked.weights = weights.clone();
                }
            }
            None => {
                self.competitions.remove(&competition);
            }
        }
        self.record_step(competition, reward_share, step);
        if let Some(tracked) = self.competitions.get_mut(&competition) {
            tracked.last_block = Some(block);
            tracked.before_last = before;
        }
        Ok(())
    }

    /// The weights to set on the subnet: for each competition, normalise its moving average
    /// (kept, as taoverse normalises the tracked tensor in place), zero entries below
    /// `threshold`, renormalise, scale by the reward share, sum over competitions, and
    /// normalise the total (all zeros when nothing is left).
    pub fn subnet_weights(&mut self, threshold: f64) -> BTreeMap<String, f64> {
        let mut total: BTreeMap<String, f64> = BTreeMap::new();
        for tracked in self.competitions.values_mut() {
            let mut weights = tracked.weights.clone();
            if threshold > 0.0 {
                normalize_in_place(&mut tracked.weights);
                weights = tracked.weights.clone();
                for value in weights.values_mut() {
                    if *value < threshold {
                        *value = 0.0;
                    }
                }
                normalize_in_place(&mut weights);
            }
            for (hotkey, value) in weights {
                *total.entry(hotkey).or_insert(0.0) += value * tracked.reward_share;
            }
        }
        normalize_in_place(&mut total);
        total
    }
}
