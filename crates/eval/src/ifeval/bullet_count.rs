//! Exactly N lines (Python `splitlines`) start with `*` after leading whitespace.

use serde::{Deserialize, Serialize};

use super::pytext::{py_lstrip, py_splitlines};
use super::rule::{IfEvalRule, RuleError, RuleId, plural, require_count};

/// Exactly N lines (Python `splitlines`) start with `*` after leading whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulletCountFrequency {
    /// The threshold N.
    pub count: u32,
}

impl BulletCountFrequency {
    /// Builds the rule; SN37 refuses a count below 1.
    pub fn new(count: u32) -> Result<Self, RuleError> {
        Ok(Self {
            count: require_count(RuleId::BulletCountFrequency, count, 1)?,
        })
    }
}

impl IfEvalRule for BulletCountFrequency {
    fn id(&self) -> RuleId {
        RuleId::BulletCountFrequency
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        let unit = plural(self.count, "bullet point", "bullet points");
        Ok(format!(
            "The response must contain exactly {} '*' {unit} in markdown format.",
            self.count
        ))
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_splitlines(text)
            .iter()
            .filter(|line| py_lstrip(line).starts_with('*'))
            .count()
            == self.count as usize)
    }
}
