//! The rule catalogue: identifiers, the common interface, and the enum holding any rule.

use serde::{Deserialize, Serialize};

use super::{
    all_lower_case::AllLowerCase, all_upper_case::AllUpperCase, bullet_count::BulletCountFrequency,
    ends_with::EndsWith, keyword_forbidden::KeywordForbidden, keyword_frequency::KeywordFrequency,
    keyword_inclusion::KeywordInclusion, no_commas::NoCommas, quotation::Quotation,
    sentence_count_at_least::SentenceCountAtLeast, sentence_count_at_most::SentenceCountAtMost,
    starts_with::StartsWith, word_count_at_least::WordCountAtLeast,
    word_count_at_most::WordCountAtMost,
};

/// SN37's rule identifiers (`RuleId` in `finetune/eval/if_eval/rule.py`), same numbers.
///
/// `StartsWith` (12) exists in SN37 but is in no version's rule set, so SN37 never draws it;
/// here it has a checker ([`super::starts_with::StartsWith`]) for hand-written rule sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// Whitespace word count at most N.
    WordCountAtMost = 1,
    /// Whitespace word count at least N.
    WordCountAtLeast = 2,
    /// Punkt sentence count at most N.
    SentenceCountAtMost = 3,
    /// Punkt sentence count at least N.
    SentenceCountAtLeast = 4,
    /// Every cased character is upper case.
    AllUpperCase = 5,
    /// Every cased character is lower case.
    AllLowerCase = 6,
    /// No `,` anywhere.
    NoCommas = 7,
    /// A keyword appears.
    KeywordInclusion = 8,
    /// A keyword appears exactly N times.
    KeywordFrequency = 9,
    /// A keyword does not appear.
    KeywordForbidden = 10,
    /// Exactly N lines start with `*`.
    BulletCountFrequency = 11,
    /// Starts with a given phrase (defined by SN37, in no version's rule set).
    StartsWith = 12,
    /// Ends with a fixed phrase.
    EndsWith = 13,
    /// Starts and ends with `"`.
    Quotation = 14,
}

/// Why a rule could not be built or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A count parameter is below the rule's minimum.
    #[error("rule {rule:?}: count {count} is below the minimum of {minimum}; use a larger count")]
    CountTooSmall {
        /// The rule being built.
        rule: RuleId,
        /// The count given.
        count: u32,
        /// The smallest allowed count.
        minimum: u32,
    },
    /// A per-response rule was asked about a response index it has no keyword for.
    #[error(
        "rule {rule:?}: response index {index} is out of range (the rule has {available} keywords)"
    )]
    IndexOutOfRange {
        /// The rule being applied.
        rule: RuleId,
        /// The response index asked for.
        index: usize,
        /// How many per-response keywords the rule holds.
        available: usize,
    },
}

/// What every rule provides: the instruction added to the prompt and the checker.
///
/// `index` is the response index within a sample (0 or 1): keyword rules hold one keyword
/// per response, the other rules ignore it.
pub trait IfEvalRule {
    /// The rule's identifier.
    fn id(&self) -> RuleId;
    /// The instruction text added to the prompt of response `index`.
    fn prompt(&self, index: usize) -> Result<String, RuleError>;
    /// Whether `text` (response `index`) satisfies the rule.
    fn matches(&self, text: &str, index: usize) -> Result<bool, RuleError>;
}

/// Checks a count parameter against its minimum, as the SN37 constructors do.
pub(crate) fn require_count(rule: RuleId, count: u32, minimum: u32) -> Result<u32, RuleError> {
    if count < minimum {
        return Err(RuleError::CountTooSmall {
            rule,
            count,
            minimum,
        });
    }
    Ok(count)
}

/// Looks up the per-response entry of a keyword rule.
pub(crate) fn per_response<T>(rule: RuleId, entries: &[T], index: usize) -> Result<&T, RuleError> {
    entries.get(index).ok_or(RuleError::IndexOutOfRange {
        rule,
        index,
        available: entries.len(),
    })
}

/// `singular` when `count == 1`, else `plural` (SN37 pluralises its prompts this way).
pub(crate) fn plural(count: u32, singular: &'static str, plural: &'static str) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// Any of the 14 rules (SN37's 13 active ones and STARTS_WITH), with its parameters. Serialised with a `rule` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// See [`WordCountAtMost`].
    WordCountAtMost(WordCountAtMost),
    /// See [`WordCountAtLeast`].
    WordCountAtLeast(WordCountAtLeast),
    /// See [`SentenceCountAtMost`].
    SentenceCountAtMost(SentenceCountAtMost),
    /// See [`SentenceCountAtLeast`].
    SentenceCountAtLeast(SentenceCountAtLeast),
    /// See [`AllUpperCase`].
    AllUpperCase(AllUpperCase),
    /// See [`AllLowerCase`].
    AllLowerCase(AllLowerCase),
    /// See [`NoCommas`].
    NoCommas(NoCommas),
    /// See [`KeywordInclusion`].
    KeywordInclusion(KeywordInclusion),
    /// See [`KeywordFrequency`].
    KeywordFrequency(KeywordFrequency),
    /// See [`KeywordForbidden`].
    KeywordForbidden(KeywordForbidden),
    /// See [`BulletCountFrequency`].
    BulletCountFrequency(BulletCountFrequency),
    /// See [`StartsWith`].
    StartsWith(StartsWith),
    /// See [`EndsWith`].
    EndsWith(EndsWith),
    /// See [`Quotation`].
    Quotation(Quotation),
}

impl Rule {
    /// The rule inside, through the common interface.
    pub fn as_rule(&self) -> &dyn IfEvalRule {
        match self {
            Rule::WordCountAtMost(rule) => rule,
            Rule::WordCountAtLeast(rule) => rule,
            Rule::SentenceCountAtMost(rule) => rule,
            Rule::SentenceCountAtLeast(rule) => rule,
            Rule::AllUpperCase(rule) => rule,
            Rule::AllLowerCase(rule) => rule,
            Rule::NoCommas(rule) => rule,
            Rule::KeywordInclusion(rule) => rule,
            Rule::KeywordFrequency(rule) => rule,
            Rule::KeywordForbidden(rule) => rule,
            Rule::BulletCountFrequency(rule) => rule,
            Rule::StartsWith(rule) => rule,
            Rule::EndsWith(rule) => rule,
            Rule::Quotation(rule) => rule,
        }
    }

    /// Keywords this rule uses (empty for non-keyword rules); generation avoids reusing them.
    pub fn keywords(&self) -> Vec<&str> {
        match self {
            Rule::KeywordInclusion(rule) => rule.keywords.iter().map(String::as_str).collect(),
            Rule::KeywordForbidden(rule) => rule.keywords.iter().map(String::as_str).collect(),
            Rule::KeywordFrequency(rule) => rule
                .keywords_and_counts
                .iter()
                .map(|(word, _)| word.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl IfEvalRule for Rule {
    fn id(&self) -> RuleId {
        self.as_rule().id()
    }

    fn prompt(&self, index: usize) -> Result<String, RuleError> {
        self.as_rule().prompt(index)
    }

    fn matches(&self, text: &str, index: usize) -> Result<bool, RuleError> {
        self.as_rule().matches(text, index)
    }
}
