//! The response has at most N sentences, as untrained Punkt counts them.

use serde::{Deserialize, Serialize};

use super::punkt::sentence_count;
use super::rule::{IfEvalRule, RuleError, RuleId, plural, require_count};

/// The response has at most N sentences, as untrained Punkt counts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentenceCountAtMost {
    /// The threshold N.
    pub count: u32,
}

impl SentenceCountAtMost {
    /// Builds the rule; SN37 refuses a count below 1.
    pub fn new(count: u32) -> Result<Self, RuleError> {
        Ok(Self {
            count: require_count(RuleId::SentenceCountAtMost, count, 1)?,
        })
    }
}

impl IfEvalRule for SentenceCountAtMost {
    fn id(&self) -> RuleId {
        RuleId::SentenceCountAtMost
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        let unit = plural(self.count, "sentence", "sentences");
        Ok(format!(
            "The response must be no more than {} {unit}.",
            self.count
        ))
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(sentence_count(text) <= self.count as usize)
    }
}
