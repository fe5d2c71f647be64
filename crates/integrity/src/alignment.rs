//! Alignment of two rows that state the same problem: is the later one a copy of the earlier one?
//!
//! A row that states the same problem as an earlier row (the same numbers and arithmetic, see
//! [`crate::arithmetic::problem_signature`]) is either a copy or an honest row of a problem that
//! two miners happened to draw. The numbers cannot tell them apart; two more things can:
//!
//! - **The reasoning's alignment.** A copier keeps the earlier row's sentences and swaps some words
//!   for synonyms, reformats the equations or reorders the rows: its reasoning's tokens (words and
//!   numbers, in canonical form) still line up, in order, with the earlier row's. Two solvers
//!   writing independently share the numbers (the problem dictates them) but not the words around
//!   them nor their order. The measure is the Dice coefficient of the longest common subsequence,
//!   `2·LCS / (tokens_a + tokens_b)`: one swapped word costs one position.
//! - **The question's names.** Rows drawn from one public template (the same generator, the same
//!   numbers by chance) align perfectly, yet each draws its own people: `Ingrid has 2 hens` and
//!   `Liam has 2 hens`. A synonym swap cannot touch a name, so a copy keeps the earlier question's
//!   proper nouns ([`proper_nouns`]); rows whose questions name different
//!   people are not copies of each other, however well their template text aligns.
//!
//! A copier who renames every person and rewrites every sentence has done what an honest writer
//! of that template does; that row is indistinguishable from one, and the check lets it pass
//! (see `docs/exploits.md`).

use serde::{Deserialize, Serialize};

use crate::canonical::{canonical_form, canonical_tokens};

/// Thresholds of the paraphrase-copy check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlignmentParams {
    /// A row with the same problem signature as an earlier row, naming the same people, is a copy
    /// when the two reasonings' alignment ([`token_alignment`]) reaches this value.
    pub min_alignment: f32,
    /// Reasonings with fewer words (numbers aside) than this are not compared: too little
    /// wording to tell a copy from an independent solution (exact and near-duplicate checks still
    /// apply to them).
    pub min_words: usize,
    /// At most this many earlier rows with the same signature are compared with a row (the
    /// earliest ones), which bounds the cost of a signature shared by very many rows.
    pub max_candidates: usize,
    /// Only the first this many tokens of a reasoning are aligned (bounds the quadratic cost).
    pub max_tokens: usize,
}

impl Default for AlignmentParams {
    fn default() -> Self {
        Self {
            min_alignment: 0.6,
            min_words: 4,
            max_candidates: 64,
            max_tokens: 256,
        }
    }
}

/// A row's reasoning and question, reduced to what [`is_aligned_copy`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyEvidence {
    /// The reasoning's canonical tokens (words and numbers), at most `max_tokens`.
    pub tokens: Vec<String>,
    /// How many of `tokens` are words.
    pub words: usize,
    /// The question's proper nouns, lower-cased, sorted, distinct.
    pub names: Vec<String>,
}

impl CopyEvidence {
    /// Reads the evidence of one row.
    pub fn new(prompt: &str, chain_of_thought: &str, max_tokens: usize) -> Self {
        let tokens: Vec<String> = canonical_tokens(&canonical_form(chain_of_thought))
            .take(max_tokens)
            .map(str::to_string)
            .collect();
        let words = tokens
            .iter()
            .filter(|t| t.chars().all(char::is_alphabetic))
            .count();
        Self {
            tokens,
            words,
            names: proper_nouns(prompt),
        }
    }
}

/// The alignment of `later` with `earlier` when `later` copies it, else `None`: both reasonings
/// have enough words, the questions name the same people (the same set, or at least half of
/// their union when they name any), and the reasonings align at `params.min_alignment` or more.
pub fn is_aligned_copy(
    later: &CopyEvidence,
    earlier: &CopyEvidence,
    params: &AlignmentParams,
) -> Option<f32> {
    if later.words < params.min_words || earlier.words < params.min_words {
        return None;
    }
    if !names_agree(&later.names, &earlier.names) {
        return None;
    }
    let alignment = token_alignment(&later.tokens, &earlier.tokens);
    (alignment >= params.min_alignment).then_some(alignment)
}

/// Two sorted name lists ([`proper_nouns`]) agree: both name nobody, or they share at least half
/// of the names either uses.
pub fn names_agree(a: &[String], b: &[String]) -> bool {
    if a.is_empty() && b.is_empty() {
        return true;
    }
    let shared = a.iter().filter(|n| b.binary_search(n).is_ok()).count();
    let union = a.len() + b.len() - shared;
    2 * shared >= union
}

/// Function words that a sentence may start with: capitalised there, but not names.
const SENTENCE_STARTERS: &[&str] = &[
    "a", "after", "all", "an", "and", "as", "at", "before", "but", "by", "combined", "during",
    "each", "every", "finally", "first", "for", "from", "he", "her", "his", "how", "if", "in",
    "it", "its", "later", "next", "now", "of", "on", "one", "our", "she", "so", "some", "step",
    "that", "the", "their", "then", "there", "these", "they", "this", "those", "to", "together",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "we", "what", "when",
    "where", "which", "while", "who", "why", "with", "you", "your",
];

/// The capitalised words of `text` that are names (`Ingrid`, `Mr`, `Paris`), lower-cased, sorted
/// and distinct: every capitalised word inside a sentence, and a sentence's first word unless it
/// is a common function word (`The`, `How`, `Each`, …), so that `Noah orders 6 pizzas` names Noah
/// and `How many are left?` names nobody.
pub fn proper_nouns(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut sentence_start = true;
    let mut word = String::new();
    let flush = |word: &mut String, starts_sentence: bool, names: &mut Vec<String>| {
        if word.chars().next().is_some_and(char::is_uppercase) {
            let lower = word.to_lowercase();
            if !starts_sentence || !SENTENCE_STARTERS.contains(&lower.as_str()) {
                names.push(lower);
            }
        }
        word.clear();
    };
    let mut word_starts_sentence = true;
    for c in text.chars() {
        if c.is_alphabetic() {
            if word.is_empty() {
                word_starts_sentence = sentence_start;
                sentence_start = false;
            }
            word.push(c);
        } else {
            flush(&mut word, word_starts_sentence, &mut names);
            if matches!(c, '.' | '!' | '?' | '\n') {
                sentence_start = true;
            } else if c.is_ascii_digit() {
                sentence_start = false;
            }
        }
    }
    flush(&mut word, word_starts_sentence, &mut names);
    names.sort();
    names.dedup();
    names
}

/// `2·LCS(a, b) / (|a| + |b|)` over token sequences, in [0, 1]; 0 when both are empty.
pub fn token_alignment<S: AsRef<str>>(a: &[S], b: &[S]) -> f32 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    // One row of the dynamic programme at a time: O(|a|·|b|) time, O(|b|) memory.
    let mut previous = vec![0u32; b.len() + 1];
    let mut current = vec![0u32; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x.as_ref() == y.as_ref() {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let lcs = previous[b.len()] as f32;
    2.0 * lcs / (a.len() + b.len()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "Noah orders 6 pizzas cut into 6 slices each. 9 guests each eat 1 slices. \
                          How many slices are left over?";
    const HOUSE: &str = "There are 6 * 6 = <<6*6=36>>36 slices.\nThe guests eat 9 * 1 = \
                         <<9*1=9>>9 slices.\n36 - 9 = <<36-9=27>>27 slices are left over.";

    fn copy_of(later: (&str, &str), earlier: (&str, &str)) -> Option<f32> {
        let params = AlignmentParams::default();
        is_aligned_copy(
            &CopyEvidence::new(later.0, later.1, 256),
            &CopyEvidence::new(earlier.0, earlier.1, 256),
            &params,
        )
    }

    #[test]
    fn synonym_swaps_and_reformatted_equations_are_copies() {
        let prompt = "Noah orders 6 pizzas cut into 6 slices every. 9 guests every eat 1 slices. \
                      What number of slices are remaining over?";
        let copies = [
            "We have 6 * 6 = (6*6=36) 36 slices.\nThe guests eat 9 * 1 = (9*1=9) 9 \
             slices.\n36 - 9 = (36-9=27) 27 slices are remaining over.",
            "There exist 6 * 6 = [6*6=36] 36 pieces.\nThe visitors consume 9 * 1 = [9*1=9] 9 \
             pieces.\n36 - 9 = [36-9=27] 27 pieces are left over.",
        ];
        for copy in copies {
            let found = copy_of((prompt, copy), (PROMPT, HOUSE));
            assert!(found.is_some_and(|a| a >= 0.6), "{copy}: {found:?}");
        }
    }

    #[test]
    fn independent_solutions_of_one_problem_are_not_copies() {
        let steps = "Step 1: 6 * 6 = 36.\nStep 2: 9 * 1 = 9.\nStep 3: 36 - 9 = 27.\n\
                     The answer is 27.";
        let prose = "Six pizzas of six slices make 36 slices; nine guests take one slice \
                     each, so 36 - 9 = 27 remain.";
        let running = "To begin, multiplying them: 6 × 6 = 36 in all. Carrying on, multiplying \
                       them: 9 × 1 = 9 in all. To finish, taking away: 36 − 9 = 27 remain. \
                       Hence we get 27.";
        for (a, b) in [
            (HOUSE, steps),
            (HOUSE, prose),
            (steps, prose),
            (HOUSE, running),
            (steps, running),
        ] {
            assert_eq!(copy_of((PROMPT, a), (PROMPT, b)), None, "{a} / {b}");
            assert_eq!(copy_of((PROMPT, b), (PROMPT, a)), None, "{b} / {a}");
        }
    }

    #[test]
    fn template_mates_naming_other_people_are_not_copies() {
        let other = PROMPT.replace("Noah", "Liam");
        let house = HOUSE.replace("Noah", "Liam");
        assert_eq!(copy_of((&other, &house), (PROMPT, HOUSE)), None);
        // The same people, the same text: a copy.
        assert!(copy_of((PROMPT, HOUSE), (PROMPT, HOUSE)).is_some());
        // Terse reasoning has too few words to judge.
        assert_eq!(
            copy_of((PROMPT, "6*6=36, 36-9=27"), (PROMPT, "6*6=36, 36-9=27")),
            None
        );
    }

    #[test]
    fn proper_nouns_skip_sentence_starts() {
        assert_eq!(
            proper_nouns("Kwame is 6. Amara, Kwame's parent, is 4 times as old. How old is Amara?"),
            vec!["amara", "kwame"]
        );
        assert_eq!(proper_nouns(PROMPT), vec!["noah"]);
        assert_eq!(
            proper_nouns("What number of slices are left? We have 3."),
            Vec::<String>::new()
        );
        assert_eq!(
            proper_nouns("A shop sells 3 pens. Each costs $2."),
            Vec::<String>::new()
        );
        assert_eq!(
            proper_nouns("5 Mugs cost $3 in Paris"),
            vec!["mugs", "paris"]
        );
        assert!(names_agree(&[], &[]));
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(names_agree(
            &names(&["a", "b", "c"]),
            &names(&["a", "b", "c"])
        ));
        assert!(names_agree(
            &names(&["a", "b", "c"]),
            &names(&["a", "b", "d"])
        ));
        assert!(!names_agree(
            &names(&["a", "b", "c"]),
            &names(&["a", "d", "e"])
        ));
        assert!(!names_agree(&names(&["a"]), &[]));
    }

    #[test]
    fn alignment_is_a_bounded_symmetric_score() {
        let a: Vec<&str> = "the cat sat on the mat".split(' ').collect();
        let b: Vec<&str> = "on the mat the cat sat".split(' ').collect();
        assert_eq!(token_alignment(&a, &a), 1.0);
        assert_eq!(token_alignment(&a, &b), token_alignment(&b, &a));
        assert!(token_alignment(&a, &b) < 1.0);
        let empty: Vec<&str> = Vec::new();
        assert_eq!(token_alignment(&empty, &empty), 0.0);
        assert_eq!(token_alignment(&a, &empty), 0.0);
        assert_eq!(CopyEvidence::new("", "a b c d e", 3).tokens.len(), 3);
    }
}
