//! The response starts and ends with an ASCII double quote (a lone `"` satisfies both).

use serde::{Deserialize, Serialize};

use super::rule::{IfEvalRule, RuleError, RuleId};

/// The response starts and ends with an ASCII double quote (a lone `"` satisfies both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotation {}

impl IfEvalRule for Quotation {
    fn id(&self) -> RuleId {
        RuleId::Quotation
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        Ok("Wrap your entire response in double quotation marks.".to_owned())
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(text.starts_with('"') && text.ends_with('"'))
    }
}
