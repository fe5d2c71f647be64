//! All letters lower case: Python `str.islower()` (needs at least one cased character).

use serde::{Deserialize, Serialize};

use super::pytext::py_islower;
use super::rule::{IfEvalRule, RuleError, RuleId};

/// All letters lower case: Python `str.islower()` (needs at least one cased character).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllLowerCase {}

impl IfEvalRule for AllLowerCase {
    fn id(&self) -> RuleId {
        RuleId::AllLowerCase
    }

    fn prompt(&self, _index: usize) -> Result<String, RuleError> {
        Ok("All letters in the response must be lowercase.".to_owned())
    }

    fn matches(&self, text: &str, _index: usize) -> Result<bool, RuleError> {
        Ok(py_islower(text))
    }
}
