//! All letters upper case: Python `str.isupper()` (needs at least one cased character).

use serde::{Deserialize, Serialize};

use super::pytext::py_isupper;
use super::rule::{IfEvalRule, RuleError, RuleId};

/// All letters upper case: Python `str.isupper()` (needs at least one cased character).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllUpperCase {}

impl IfEvalRule for AllUpperCase {
    fn id(&self) -> RuleId {
        RuleId::AllUpperCase
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        Ok("All letters in the response must be uppercase.".to_owned())
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_isupper(text))
    }
}
