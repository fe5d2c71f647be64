//! The response has at least N whitespace-separated words (Python `str.split()`).

use serde::{Deserialize, Serialize};

use super::pytext::py_split;
use super::rule::{IfEvalRule, RuleError, RuleId, plural, require_count};

/// The response has at least N whitespace-separated words (Python `str.split()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordCountAtLeast {
    /// The threshold N.
    pub count: u32,
}

impl WordCountAtLeast {
    /// Builds the rule; SN37 refuses a count below 1.
    pub fn new(count: u32) -> Result<Self, RuleError> {
        Ok(Self {
            count: require_count(RuleId::WordCountAtLeast, count, 1)?,
        })
    }
}

impl IfEvalRule for WordCountAtLeast {
    fn id(&self) -> RuleId {
        RuleId::WordCountAtLeast
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        let unit = plural(self.count, "word", "words");
        Ok(format!(
            "The response must be at least {} {unit}.",
            self.count
        ))
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_split(text).count() >= self.count as usize)
    }
}
