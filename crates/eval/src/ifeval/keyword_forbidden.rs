//! A per-response keyword must not appear among the response's words.

use serde::{Deserialize, Serialize};

use super::pytext::{py_lower, sn37_words};
use super::rule::{IfEvalRule, RuleError, RuleId, per_response};

/// Keyword `keywords[index]` does not appear (case-insensitively) among the
/// punctuation-stripped whitespace words of response `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordForbidden {
    /// One keyword per response index.
    pub keywords: Vec<String>,
}

impl IfEvalRule for KeywordForbidden {
    fn id(&self) -> RuleId {
        RuleId::KeywordForbidden
    }

    fn prompt(&self, index: usize) -> Result<String, RuleError> {
        let keyword = per_response(self.id(), &self.keywords, index)?;
        Ok(format!(
            "The word \"{keyword}\" must not be included in the response."
        ))
    }

    fn matches(&self, text: &str, index: usize) -> Result<bool, RuleError> {
        let keyword = py_lower(per_response(self.id(), &self.keywords, index)?);
        Ok(!sn37_words(text)
            .iter()
            .any(|word| py_lower(word) == keyword))
    }
}
