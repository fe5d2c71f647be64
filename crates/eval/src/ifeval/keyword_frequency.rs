//! A per-response keyword must appear an exact number of times.

use serde::{Deserialize, Serialize};

use super::pytext::{py_lower, sn37_words};
use super::rule::{IfEvalRule, RuleError, RuleId, per_response, plural};

/// Keyword `keywords_and_counts[index].0` appears exactly `.1` times (case-insensitively)
/// among the punctuation-stripped whitespace words of response `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordFrequency {
    /// One (keyword, count) per response index.
    pub keywords_and_counts: Vec<(String, u32)>,
}

impl IfEvalRule for KeywordFrequency {
    fn id(&self) -> RuleId {
        RuleId::KeywordFrequency
    }

    fn prompt(&self, index: usize) -> Result<String, RuleError> {
        let (keyword, count) = per_response(self.id(), &self.keywords_and_counts, index)?;
        let times = plural(*count, "time", "times");
        Ok(format!("Include the word \"{keyword}\" {count} {times}."))
    }

    fn matches(&self, text: &str, index: usize) -> Result<bool, RuleError> {
        let (keyword, count) = per_response(self.id(), &self.keywords_and_counts, index)?;
        let keyword = py_lower(keyword);
        let found = sn37_words(text)
            .iter()
            .filter(|word| py_lower(word) == keyword)
            .count();
        Ok(found == *count as usize)
    }
}
