//! Train-on-test detection: overlap of submitted rows with evaluation items.
//!
//! Two signals, both on canonical text:
//! - **long n-gram overlap**: any `ngram`-token window (13 by default, as in the GPT-3 and later
//!   decontamination reports) of any row field that also occurs in an evaluation item. Evaluation
//!   items shorter than `ngram` tokens but at least `min_short_tokens` long are matched as a whole.
//! - **near duplicate**: the row's prompt (or first user message) against each evaluation item with
//!   MinHash LSH, which catches a copied question with a word or two changed.

use crate::canonical::{canonical_form, canonical_tokens};
use crate::dedup::NearDupIndex;
use crate::minhash::{MinHashParams, ParamError, hash_bytes, mix64};
use crate::schema::RowContent;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Parameters of the contamination check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContaminationParams {
    /// Tokens per n-gram.
    pub ngram: usize,
    /// Shared n-grams with one evaluation item needed to call a row contaminated.
    pub min_ngram_hits: usize,
    /// Evaluation items shorter than `ngram` tokens are matched whole if they have at least this
    /// many tokens; shorter ones are left to the near-duplicate check.
    pub min_short_tokens: usize,
    /// Share of an item's n-grams a row must contain (0 = any `min_ngram_hits` suffice). Raise it
    /// when evaluation items come from shared templates, so that reusing a template's phrasing is
    /// not mistaken for copying an item.
    pub min_item_coverage: f32,
    /// Near-duplicate parameters for prompt-versus-item matching.
    pub near: MinHashParams,
    /// Questions protected on their own ([`ContaminationIndex::with_questions`]) match a row's
    /// prompt when both hold the same numbers (at least this many)...
    pub question_min_numbers: usize,
    /// ...and share at least this Jaccard similarity of their word sets. A question with a word
    /// or two changed keeps its numbers and most words; another problem from the same template
    /// draws other numbers.
    pub question_word_jaccard: f32,
}

impl Default for ContaminationParams {
    fn default() -> Self {
        Self {
            ngram: 13,
            min_ngram_hits: 1,
            min_short_tokens: 8,
            min_item_coverage: 0.0,
            near: MinHashParams {
                threshold: 0.6,
                ..MinHashParams::default()
            },
            question_min_numbers: 2,
            question_word_jaccard: 0.5,
        }
    }
}

/// One evaluation item: an identifier to report and the text to protect (question, and answer if wanted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalItem {
    /// Identifier shown in reports, e.g. `gsm8k/test/17`.
    pub id: String,
    /// The item's text.
    pub text: String,
}

/// Why a row counts as contaminated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContaminationMatch {
    /// The evaluation item the row matches.
    pub eval_id: String,
    /// The row field with the strongest match.
    pub field: String,
    /// Shared n-grams (or whole short items) between that field and the item.
    pub ngram_hits: usize,
    /// Estimated Jaccard similarity of the row's prompt and the item, when the near check fired.
    pub jaccard: Option<f32>,
}

/// An index of evaluation items that rows can be checked against.
pub struct ContaminationIndex {
    params: ContaminationParams,
    ids: Vec<String>,
    /// n-gram hash -> first evaluation item containing it.
    ngrams: HashMap<u64, u32>,
    /// Token lengths of the short items that were indexed whole.
    short_lengths: Vec<usize>,
    /// Windows indexed per item, the denominator of coverage.
    item_windows: Vec<usize>,
    near: NearDupIndex,
    /// Near index id -> evaluation item (items without tokens are not in the near index).
    near_items: Vec<u32>,
    /// Protected questions by their sorted numbers: (id, word set).
    questions: HashMap<Vec<String>, Vec<(String, std::collections::BTreeSet<String>)>>,
}

impl ContaminationIndex {
    /// Indexes the evaluation items; fails only on invalid parameters.
    pub fn new(items: &[EvalItem], params: &ContaminationParams) -> Result<Self, ParamError> {
        let ngram = params.ngram.max(1);
        let mut index = Self {
            params: ContaminationParams {
                ngram,
                ..params.clone()
            },
            ids: Vec::with_capacity(items.len()),
            ngrams: HashMap::new(),
            short_lengths: Vec::new(),
            item_windows: Vec::with_capacity(items.len()),
            near: NearDupIndex::new(&params.near)?,
            near_items: Vec::new(),
            questions: HashMap::new(),
        };
        let mut token_hashes = Vec::new();
        for (item_number, item) in items.iter().enumerate() {
            let canonical = canonical_form(&item.text);
            index.ids.push(item.id.clone());
            hash_tokens(&canonical, &mut token_hashes);
            let width = if token_hashes.len() >= ngram {
                ngram
            } else if token_hashes.len() >= params.min_short_tokens.max(1) {
                index.short_lengths.push(token_hashes.len());
                token_hashes.len()
            } else {
                0
            };
            index.item_windows.push(if width > 0 {
                token_hashes.len() - width + 1
            } else {
                0
            });
            if width > 0 {
                for window in token_hashes.windows(width) {
                    index
                        .ngrams
                        .entry(window_hash(window))
                        .or_insert(item_number as u32);
                }
            }
            if index.near.insert(&canonical).is_some() {
                index.near_items.push(item_number as u32);
            }
        }
        index.short_lengths.sort_unstable();
        index.short_lengths.dedup();
        Ok(index)
    }

    /// Also protects each `(id, question)` on its own: a row whose prompt has the question's
    /// numbers and most of its words is contaminated, whatever its reasoning (a held-out question
    /// copied with a word changed and new reasoning written for it).
    pub fn with_questions(mut self, questions: &[(String, String)]) -> Self {
        for (id, question) in questions {
            let numbers = crate::arithmetic::prompt_numbers(question);
            if numbers.len() >= self.params.question_min_numbers.max(1) {
                self.questions
                    .entry(numbers)
                    .or_default()
                    .push((id.clone(), word_set(question)));
            }
        }
        self
    }

    /// Number of evaluation items indexed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no evaluation items were given.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Checks one row; `None` when it does not match any evaluation item.
    pub fn check_row(&self, row: &RowContent) -> Option<ContaminationMatch> {
        let mut token_hashes = Vec::new();
        let mut best: Option<ContaminationMatch> = None;
        let mut fields: Vec<(String, String)> = row
            .text_fields()
            .into_iter()
            .map(|(f, t)| (f, t.to_string()))
            .collect();
        // The whole row too, which catches an item split across fields; reported only when no
        // single field is enough.
        fields.push(("row".to_string(), row.joined_text()));
        for (field, text) in fields {
            if field == "row" && best.is_some() {
                break;
            }
            hash_tokens(&canonical_form(&text), &mut token_hashes);
            let Some((item, hits)) = self.best_ngram_item(&token_hashes) else {
                continue;
            };
            let coverage = hits as f32 / self.item_windows[item].max(1) as f32;
            if hits >= self.params.min_ngram_hits.max(1)
                && coverage >= self.params.min_item_coverage
                && best.as_ref().is_none_or(|b| hits > b.ngram_hits)
            {
                best = Some(ContaminationMatch {
                    eval_id: self.ids[item].clone(),
                    field,
                    ngram_hits: hits,
                    jaccard: None,
                });
            }
        }
        best.or_else(|| self.near_match(row))
            .or_else(|| self.question_match(row))
    }

    /// A protected question with the prompt's numbers and most of its words.
    fn question_match(&self, row: &RowContent) -> Option<ContaminationMatch> {
        let prompt = row.prompt_text();
        let candidates = self
            .questions
            .get(&crate::arithmetic::prompt_numbers(prompt))?;
        let words = word_set(prompt);
        candidates.iter().find_map(|(id, item_words)| {
            let shared = words.intersection(item_words).count();
            let union = words.union(item_words).count().max(1);
            let jaccard = shared as f32 / union as f32;
            (jaccard >= self.params.question_word_jaccard).then(|| ContaminationMatch {
                eval_id: id.clone(),
                field: "prompt".to_string(),
                ngram_hits: 0,
                jaccard: Some(jaccard),
            })
        })
    }

    /// The evaluation item sharing the most n-grams with a field, and how many.
    fn best_ngram_item(&self, token_hashes: &[u64]) -> Option<(usize, usize)> {
        let mut hits: HashMap<u32, usize> = HashMap::new();
        let lengths = std::iter::once(self.params.ngram).chain(self.short_lengths.iter().copied());
        for width in lengths.filter(|&w| w <= token_hashes.len()) {
            for window in token_hashes.windows(width) {
                if let Some(&item) = self.ngrams.get(&window_hash(window)) {
                    *hits.entry(item).or_default() += 1;
                }
            }
        }
        hits.into_iter()
            .map(|(item, n)| (item as usize, n))
            .max_by_key(|&(item, n)| (n, std::cmp::Reverse(item)))
    }

    fn near_match(&self, row: &RowContent) -> Option<ContaminationMatch> {
        let found = self.near.query(&canonical_form(row.prompt_text()))?;
        let item = self.near_items[found.id] as usize;
        Some(ContaminationMatch {
            eval_id: self.ids[item].clone(),
            field: "prompt".to_string(),
            ngram_hits: 0,
            jaccard: Some(found.jaccard),
        })
    }
}

/// The lower-case alphabetic words of a text, as a set.
fn word_set(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn hash_tokens(canonical: &str, out: &mut Vec<u64>) {
    out.clear();
    out.extend(canonical_tokens(canonical).map(|t| hash_bytes(t.as_bytes(), 0x00C0_47A3)));
}

/// Order-sensitive hash of a window of token hashes; the length is mixed in so a short item
/// indexed whole cannot collide with a 13-gram by construction.
fn window_hash(window: &[u64]) -> u64 {
    window.iter().fold(mix64(window.len() as u64), |h, &t| {
        mix64(h.rotate_left(17) ^ t)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, text: &str) -> EvalItem {
        EvalItem {
            id: id.into(),
            text: text.into(),
        }
    }

    fn row(prompt: &str, completion: &str) -> RowContent {
        RowContent::Completion {
            prompt: prompt.into(),
            completion: completion.into(),
        }
    }

    const LONG: &str = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips \
                        in May. How many clips did Natalia sell altogether in April and May?";

    fn index() -> ContaminationIndex {
        let items = [
            item("gsm8k/0", LONG),
            item(
                "short/1",
                "Which planet in our solar system has the most moons today?",
            ),
            item("tiny/2", "What is 2+2?"),
        ];
        ContaminationIndex::new(&items, &ContaminationParams::default()).unwrap()
    }

    #[test]
    fn coverage_separates_shared_phrasing_from_copies() {
        let params = ContaminationParams {
            min_item_coverage: 0.5,
            ..Default::default()
        };
        let long = [item("gsm8k/0", LONG)];
        let index = ContaminationIndex::new(&long, &params).unwrap();
        // A new question that reuses the item's closing phrase shares a few 13-grams only.
        let reuse = "Omar sold pens to 12 of his friends in June, and then he sold half as many clips \
                     in May. How many clips did Natalia sell altogether in April and May?";
        assert!(index.check_row(&row(reuse, "18")).is_none());
        let loose = ContaminationIndex::new(&long, &ContaminationParams::default()).unwrap();
        assert!(
            loose.check_row(&row(reuse, "18")).is_some(),
            "any shared 13-gram counts by default"
        );
        // The item split across two fields is still caught through the whole row.
        let (a, b) = LONG.split_at(LONG.find("How many").unwrap());
        let split = index.check_row(&row(a, b)).unwrap();
        assert_eq!(
            (split.eval_id.as_str(), split.field.as_str()),
            ("gsm8k/0", "row")
        );
    }

    #[test]
    fn verbatim_copy_is_found_with_its_item() {
        let found = index().check_row(&row(LONG, "72")).unwrap();
        assert_eq!(found.eval_id, "gsm8k/0");
        assert_eq!(found.field, "prompt");
        assert!(found.ngram_hits >= 10);
    }

    #[test]
    fn one_word_changed_and_cosmetic_edits_still_match() {
        let edited = LONG
            .replace("friends", "pals")
            .to_uppercase()
            .replace(' ', "  ");
        let found = index().check_row(&row(&edited, "72")).unwrap();
        assert_eq!(found.eval_id, "gsm8k/0");
        assert!(found.ngram_hits >= 1);
    }

    #[test]
    fn copy_hidden_in_the_answer_field_is_found() {
        let answer = format!("Reasoning aside, here is a question: {LONG}");
        let found = index().check_row(&row("Solve it.", &answer)).unwrap();
        assert_eq!(found.field, "completion");
    }

    #[test]
    fn short_item_is_matched_whole() {
        let found = index()
            .check_row(&row(
                "Quiz: which planet in our solar system has the most moons today? Think.",
                "Saturn",
            ))
            .unwrap();
        assert_eq!(found.eval_id, "short/1");
    }

    #[test]
    fn unrelated_rows_and_tiny_items_do_not_match() {
        let index = index();
        assert_eq!(
            index.check_row(&row(
                "Write a haiku about autumn leaves falling.",
                "Leaves drift down"
            )),
            None
        );
        // "what is 2 2" is below min_short_tokens: a row merely containing it is not flagged.
        assert_eq!(
            index.check_row(&row(
                "Explain what is 2+2? in binary arithmetic to a child",
                "4"
            )),
            None
        );
    }

    #[test]
    fn near_duplicate_prompt_of_tiny_item_matches() {
        let found = index().check_row(&row("what is 2 + 2 ?", "4")).unwrap();
        assert_eq!(found.eval_id, "tiny/2");
        assert!(found.jaccard.unwrap() >= 0.6);
    }
}
