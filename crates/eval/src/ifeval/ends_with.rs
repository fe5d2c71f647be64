//! The response ends with one of three fixed phrases.

use serde::{Deserialize, Serialize};

use super::pytext::py_lower;
use super::rule::{IfEvalRule, RuleError, RuleId};

/// The phrases SN37 draws from (`ENDS_WITH_PHRASES` in `start_end.py`).
pub const ENDS_WITH_PHRASES: [&str; 3] = [
    "Let me know if you have additional questions.",
    "Is there anything else I can help with?",
    "Hope that helps.",
];

/// The lower-cased response ends with the lower-cased phrase (no whitespace trimming).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndsWith {
    /// The phrase the response must end with.
    pub phrase: String,
}

impl IfEvalRule for EndsWith {
    fn id(&self) -> RuleId {
        RuleId::EndsWith
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        // SN37's prompt has no final period after the quoted phrase.
        Ok(format!(
            "End your response with the exact phrase \"{}\"",
            self.phrase
        ))
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_lower(text).ends_with(&py_lower(&self.phrase)))
    }
}
