//! The response starts with a given phrase.
//!
//! SN37 defines `RuleId.STARTS_WITH` (12) but puts it in no version's rule set and builds it as a
//! `DummyRule` (`rule_factory.py`), which has no prompt of its own and passes every response.
//! Here it is a real rule, the mirror of [`super::ends_with::EndsWith`], so a hand-written
//! competition can use every rule SN37 defines: the prompt asks for the exact phrase, and the
//! lower-cased response must start with the lower-cased phrase (no whitespace trimming, as
//! ENDS_WITH does not trim).

use serde::{Deserialize, Serialize};

use super::pytext::py_lower;
use super::rule::{IfEvalRule, RuleError, RuleId};

/// The phrases drawn when a sample gets this rule (ours; SN37 has none).
pub const STARTS_WITH_PHRASES: [&str; 3] = ["Sure.", "Here is my answer:", "Good question."];

/// The lower-cased response starts with the lower-cased phrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartsWith {
    /// The phrase the response must start with.
    pub phrase: String,
}

impl IfEvalRule for StartsWith {
    fn id(&self) -> RuleId {
        RuleId::StartsWith
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        // Worded as SN37's ENDS_WITH prompt, with no final period after the quoted phrase.
        Ok(format!(
            "Start your response with the exact phrase \"{}\"",
            self.phrase
        ))
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_lower(text).starts_with(&py_lower(&self.phrase)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(phrase: &str) -> StartsWith {
        StartsWith {
            phrase: phrase.into(),
        }
    }

    #[test]
    fn checks_the_start_ignoring_case_only() {
        let sure = rule("Sure.");
        assert!(sure.matches("Sure. The answer is 4.", 0).unwrap());
        assert!(sure.matches("SURE. the answer is 4.", 1).unwrap());
        assert!(sure.matches("Sure.", 0).unwrap());
        assert!(
            !sure.matches(" Sure. The answer is 4.", 0).unwrap(),
            "no trimming"
        );
        assert!(!sure.matches("Sure, the answer is 4.", 0).unwrap());
        assert!(!sure.matches("The answer is 4. Sure.", 0).unwrap());
        assert!(!sure.matches("", 0).unwrap());
        // Python's str.lower: the Kelvin sign lowers to "k".
        assert!(rule("ok").matches("O\u{212A} then", 0).unwrap());
    }

    #[test]
    fn prompt_names_the_phrase() {
        assert_eq!(
            rule("Hope that helps.").prompt(0).unwrap(),
            "Start your response with the exact phrase \"Hope that helps.\""
        );
    }
}
