//! The policy every pipeline shares: limits, thresholds and penalties, with serde defaults so a
//! policy file only needs the values it changes.

use crate::alignment::AlignmentParams;
use crate::contamination::ContaminationParams;
use crate::minhash::MinHashParams;
use crate::models::ModelRules;
use crate::schema::Limits;
use serde::{Deserialize, Serialize};

/// All integrity settings in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Schema limits for submitted rows.
    pub limits: Limits,
    /// Near-duplicate detection between rows (within and across miners).
    pub near_duplicates: MinHashParams,
    /// Train-on-test detection against evaluation items.
    pub contamination: ContaminationParams,
    /// Paraphrase-copy detection: rows with the same problem whose reasoning aligns.
    pub alignment: AlignmentParams,
    /// How rejected rows turn into a score multiplier.
    pub penalties: Penalties,
    /// Rules for model submissions.
    pub models: ModelRules,
}

/// Weights that turn rejected rows into a score multiplier in [0, 1].
///
/// `multiplier = 1 − (invalid·w_invalid + duplicate·w_duplicate + contaminated·w_contaminated +
/// wrong·w_wrong) / rows`, clamped to [0, 1], and 0 when a disqualification fraction is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Penalties {
    /// Weight of a row that failed the schema checks.
    pub invalid_row_weight: f32,
    /// Weight of a row that duplicates an earlier row (own or another miner's).
    pub duplicate_row_weight: f32,
    /// Weight of a row that overlaps an evaluation item.
    pub contaminated_row_weight: f32,
    /// Weight of a row whose arithmetic or final answer is wrong by its own reasoning.
    pub wrong_row_weight: f32,
    /// Fraction of contaminated rows at which the miner gets multiplier 0.
    pub disqualify_contaminated_fraction: f32,
    /// Fraction of rows copied from other miners at which the miner gets multiplier 0.
    pub disqualify_copied_fraction: f32,
}

impl Default for Penalties {
    fn default() -> Self {
        Self {
            invalid_row_weight: 0.5,
            duplicate_row_weight: 1.0,
            contaminated_row_weight: 3.0,
            wrong_row_weight: 1.0,
            disqualify_contaminated_fraction: 0.05,
            disqualify_copied_fraction: 0.5,
        }
    }
}

/// Counts of a miner's rows by outcome, the input to [`Penalties::multiplier`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Non-blank lines read (kept plus rejected).
    pub rows: usize,
    /// Lines rejected by the schema checks.
    pub invalid: usize,
    /// Rows duplicating an earlier row of any miner.
    pub duplicate: usize,
    /// Rows duplicating an earlier row of another miner.
    pub copied_from_others: usize,
    /// Rows overlapping an evaluation item.
    pub contaminated: usize,
    /// Rows whose arithmetic or final answer is wrong by their own reasoning.
    #[serde(default)]
    pub wrong: usize,
}

/// The penalty decided for one miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    /// Factor to multiply the miner's score by, in [0, 1].
    pub multiplier: f32,
    /// True when a disqualification fraction was reached.
    pub disqualified: bool,
    /// A sentence explaining the number.
    pub explanation: String,
}

impl Penalties {
    /// The multiplier for a miner with these row counts.
    pub fn multiplier(&self, counts: &RowCounts) -> Penalty {
        if counts.rows == 0 {
            return Penalty {
                multiplier: 0.0,
                disqualified: false,
                explanation: "no rows were submitted".into(),
            };
        }
        let rows = counts.rows as f32;
        let contaminated = counts.contaminated as f32 / rows;
        let copied = counts.copied_from_others as f32 / rows;
        if contaminated >= self.disqualify_contaminated_fraction {
            let explanation = format!(
                "{:.1}% of rows overlap evaluation data (limit {:.1}%)",
                contaminated * 100.0,
                self.disqualify_contaminated_fraction * 100.0
            );
            return Penalty {
                multiplier: 0.0,
                disqualified: true,
                explanation,
            };
        }
        if copied >= self.disqualify_copied_fraction {
            let explanation = format!(
                "{:.1}% of rows copy other miners' earlier rows (limit {:.1}%)",
                copied * 100.0,
                self.disqualify_copied_fraction * 100.0
            );
            return Penalty {
                multiplier: 0.0,
                disqualified: true,
                explanation,
            };
        }
        let weighted = counts.invalid as f32 * self.invalid_row_weight
            + counts.duplicate as f32 * self.duplicate_row_weight
            + counts.contaminated as f32 * self.contaminated_row_weight
            + counts.wrong as f32 * self.wrong_row_weight;
        let multiplier = (1.0 - weighted / rows).clamp(0.0, 1.0);
        let explanation = format!(
            "{} invalid, {} duplicate, {} contaminated, {} wrong of {} rows",
            counts.invalid, counts.duplicate, counts.contaminated, counts.wrong, counts.rows
        );
        Penalty {
            multiplier,
            disqualified: false,
            explanation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_partial_files_fill_defaults() {
        let policy = Policy::default();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
        let partial: Policy =
            serde_json::from_str(r#"{"near_duplicates": {"threshold": 0.8}}"#).unwrap();
        assert_eq!(partial.near_duplicates.threshold, 0.8);
        assert_eq!(partial.near_duplicates.num_perm, 128);
        assert!(serde_json::from_str::<Policy>(r#"{"typo": 1}"#).is_err());
    }

    #[test]
    fn multiplier_follows_the_formula_and_disqualifies() {
        let penalties = Penalties::default();
        let clean = RowCounts {
            rows: 100,
            ..Default::default()
        };
        assert_eq!(penalties.multiplier(&clean).multiplier, 1.0);
        let some = RowCounts {
            rows: 100,
            invalid: 2,
            duplicate: 3,
            contaminated: 1,
            ..Default::default()
        };
        let penalty = penalties.multiplier(&some);
        assert!((penalty.multiplier - (1.0 - (1.0 + 3.0 + 3.0) / 100.0)).abs() < 1e-6);
        let dirty = RowCounts {
            rows: 100,
            contaminated: 5,
            ..Default::default()
        };
        assert!(penalties.multiplier(&dirty).disqualified);
        let copier = RowCounts {
            rows: 10,
            duplicate: 5,
            copied_from_others: 5,
            ..Default::default()
        };
        assert_eq!(penalties.multiplier(&copier).multiplier, 0.0);
    }
}
