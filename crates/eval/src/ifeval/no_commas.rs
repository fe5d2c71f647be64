//! No ASCII comma anywhere in the response.

use serde::{Deserialize, Serialize};

use super::rule::{IfEvalRule, RuleError, RuleId};

/// No ASCII comma anywhere in the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCommas {}

impl IfEvalRule for NoCommas {
    fn id(&self) -> RuleId {
        RuleId::NoCommas
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        Ok("Do not use any commas in your response.".to_owned())
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(!text.contains(','))
    }
}
