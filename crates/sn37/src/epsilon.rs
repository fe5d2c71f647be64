//! The epsilon advantage of earlier commits (taoverse `model/competition/epsilon.py`).

use serde::{Deserialize, Serialize};

/// How much a model committed earlier is favoured: its score is multiplied by `1 - epsilon`
/// when compared with a later model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EpsilonSchedule {
    /// The same epsilon whatever the model's age (SN9_MODEL used 0.005).
    Fixed {
        /// The epsilon.
        epsilon: f64,
    },
    /// Falls linearly from `start` to `end` over `decay_blocks` blocks after the commit, then stays
    /// at `end` (INSTRUCT_8B: 0.05 to 0.01 over 7,200 blocks).
    LinearDecay {
        /// Epsilon of a model committed at the current block.
        start: f64,
        /// Epsilon once fully decayed.
        end: f64,
        /// Blocks over which it decays (must be at least 1).
        decay_blocks: u64,
    },
}

impl EpsilonSchedule {
    /// Epsilon at `current_block` for a model committed at `model_block`. A commit "in the
    /// future" (metagraph divergence) counts as age 0, as in taoverse.
    pub fn epsilon(&self, current_block: u64, model_block: u64) -> f64 {
        match *self {
            EpsilonSchedule::Fixed { epsilon } => epsilon,
            EpsilonSchedule::LinearDecay {
                start,
                end,
                decay_blocks,
            } => {
                let age = current_block.saturating_sub(model_block) as f64;
                let progress = (age / decay_blocks as f64).min(1.0);
                start - progress * (start - end)
            }
        }
    }

    /// Checks the parameters: epsilons in [0, 1) and a decay of at least one block.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |value: f64| (0.0..1.0).contains(&value);
        match *self {
            EpsilonSchedule::Fixed { epsilon } if !in_range(epsilon) => {
                Err(format!("epsilon {epsilon} must be in [0, 1)"))
            }
            EpsilonSchedule::LinearDecay { start, end, .. }
                if !in_range(start) || !in_range(end) =>
            {
                Err(format!(
                    "start {start} and end {end} must both be in [0, 1)"
                ))
            }
            EpsilonSchedule::LinearDecay {
                decay_blocks: 0, ..
            } => Err("decay_blocks must be at least 1".to_owned()),
            _ => Ok(()),
        }
    }
}
