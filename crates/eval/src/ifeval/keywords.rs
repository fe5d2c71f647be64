//! Keyword choice for the keyword rules (SN37's `interesting_keyword`).
//!
//! **Deliberate difference.** SN37 POS-tags the answer with NLTK's averaged-perceptron
//! tagger and keeps adjectives, nouns, adverbs and verbs. That tagger's model is a data
//! download we do not ship, so content words are approximated here: a word qualifies when
//! it is longer than 2 characters, is not a number, and is not in a short list of
//! closed-class words (determiners, pronouns, prepositions, conjunctions, modals), which
//! are exactly the tags SN37 rejects. The fallbacks are SN37's: any non-forbidden word,
//! then one of "answer", "question", "response".

use rand::Rng;
use rand::seq::IndexedRandom;

use super::pytext::{is_decimal_digit, py_lower, sn37_words};

/// Words whose Penn Treebank tag is never JJ*, NN*, RB* or VB* (so SN37 never picks them).
const CLOSED_CLASS_WORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "that",
    "this",
    "these",
    "those",
    "which",
    "who",
    "whom",
    "whose",
    "what",
    "from",
    "into",
    "onto",
    "upon",
    "about",
    "after",
    "before",
    "between",
    "through",
    "during",
    "under",
    "without",
    "within",
    "among",
    "against",
    "across",
    "toward",
    "towards",
    "since",
    "until",
    "than",
    "because",
    "although",
    "though",
    "while",
    "whether",
    "they",
    "them",
    "their",
    "theirs",
    "she",
    "her",
    "hers",
    "his",
    "him",
    "its",
    "our",
    "ours",
    "you",
    "your",
    "yours",
    "can",
    "could",
    "will",
    "would",
    "shall",
    "should",
    "may",
    "might",
    "must",
    "but",
    "nor",
    "both",
    "either",
    "neither",
    "each",
    "every",
    "any",
    "some",
    "all",
    "itself",
    "himself",
    "herself",
    "themselves",
    "ourselves",
    "yourself",
    "myself",
    "there",
    "via",
    "per",
    "unless",
    "whereas",
    "whatever",
    "whichever",
    "whoever",
];

/// The last-resort keywords SN37 uses when the answer offers no usable word.
const FALLBACK_KEYWORDS: [&str; 3] = ["answer", "question", "response"];

/// Picks a keyword from `answer` that is not in `forbidden` (compared lower-cased).
pub fn pick_keyword<R: Rng + ?Sized>(answer: &str, forbidden: &[&str], rng: &mut R) -> String {
    let forbidden: Vec<String> = forbidden.iter().map(|word| py_lower(word)).collect();
    let allowed: Vec<String> = sn37_words(answer)
        .into_iter()
        .filter(|word| !forbidden.contains(&py_lower(word)))
        .collect();
    let interesting: Vec<&String> = allowed
        .iter()
        .filter(|word| is_content_word(word))
        .collect();
    if let Some(word) = interesting.choose(rng) {
        return (*word).clone();
    }
    match allowed.choose(rng) {
        Some(word) => word.clone(),
        None => FALLBACK_KEYWORDS
            .choose(rng)
            .copied()
            .unwrap_or("answer")
            .to_owned(),
    }
}

/// Our stand-in for "tagged adjective, noun, adverb or verb, and longer than 2 characters".
fn is_content_word(word: &str) -> bool {
    let lower = py_lower(word);
    word.chars().count() > 2
        && !word
            .chars()
            .all(|c| is_decimal_digit(c) || c == '.' || c == ',')
        && !CLOSED_CLASS_WORDS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn prefers_content_words_and_respects_forbidden() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..50 {
            let word = pick_keyword("The mitochondria of a cell", &["cell"], &mut rng);
            assert_eq!(word, "mitochondria");
        }
    }

    #[test]
    fn falls_back_to_short_words_then_fixed_list() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        assert_eq!(pick_keyword("of an", &["of"], &mut rng), "an");
        let word = pick_keyword("!!", &[], &mut rng);
        assert!(FALLBACK_KEYWORDS.contains(&word.as_str()));
    }
}
