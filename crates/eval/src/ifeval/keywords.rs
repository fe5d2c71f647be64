//! Keyword choice for the keyword rules (SN37's `interesting_keyword`).
//!
//! **Deliberate difference.** SN37 POS-tags the answer with NLTK's averaged-perceptron
//! tagger and keeps adjectives, nouns, adverbs and verbs. That tagger's model is a data
//! download we do not ship, so content words are approximated here: a word qualifies when
//! it is longer than 2 characters, is not a number, and is not in a short list of
//! closed-class words (determiners, pronouns, prepositions, conjunctions, modals, wh-words:
//! [`CLOSED_CLASS_WORDS`]), which are the tags SN37 rejects. The approximation differs from the
//! tagger only on words whose tag depends on context (a closed-class word used as an adverb, such
//! as "over" in "the game is over", which NLTK may tag RB and SN37 could then pick). The fallbacks are SN37's: any non-forbidden word,
//! then one of "answer", "question", "response".

use rand::Rng;
use rand::seq::IndexedRandom;

use super::pytext::{is_decimal_digit, py_lower, sn37_words};

/// Words whose Penn Treebank tag is, in nearly every context, a closed class that SN37's filter
/// rejects (DT, PDT, PRP, PRP$, WP, WP$, WDT, WRB, CC, MD, TO, IN, EX): determiners, pronouns,
/// conjunctions, modals, prepositions and subordinators, wh-words. Only words longer than 2
/// characters are listed, since shorter ones never qualify. Words such as "over", "about" or
/// "since" are tagged IN by NLTK's tagger in running text, so SN37 does not pick them; words
/// the tagger mostly tags as content ("including" VBG, "such" JJ, "yet" RB, "there" RB/EX)
/// are left out.
#[rustfmt::skip]
pub const CLOSED_CLASS_WORDS: &[&str] = &[
    "the", "this", "that", "these", "those", "each", "every", "neither", "some", "any", "all",
    "both", "what", "whatever", "which", "whichever", "another", "myself", "you", "your", "yours",
    "yourself", "yourselves", "him", "his", "himself", "she", "her", "hers", "herself", "its",
    "itself", "our", "ours", "ourselves", "they", "them", "their", "theirs", "themselves", "one",
    "oneself", "who", "whom", "whose", "whoever", "whomever", "and", "but", "nor", "plus", "can",
    "could", "may", "might", "must", "shall", "should", "will", "would", "ought", "aboard", "about",
    "above", "across", "after", "against", "along", "alongside", "amid", "amidst", "among",
    "amongst", "around", "astride", "atop", "because", "before", "behind", "below", "beneath",
    "beside", "besides", "between", "beyond", "concerning", "despite", "during", "except", "for",
    "from", "inside", "into", "lest", "like", "notwithstanding", "off", "onto", "out", "outside",
    "over", "per", "regarding", "since", "than", "though", "through", "throughout", "till",
    "toward", "towards", "under", "underneath", "unless", "unlike", "until", "unto", "upon",
    "versus", "via", "whereas", "whether", "while", "whilst", "with", "within", "without",
    "although", "when", "where", "why", "how", "wherever", "whenever", "whereby", "wherein",
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
    fn never_picks_closed_class_words_when_a_content_word_is_there() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        // Issue 24 item 6: "over" (IN) was picked; SN37's POS filter never picks it.
        for _ in 0..50 {
            assert_eq!(pick_keyword("over the hills", &[], &mut rng), "hills");
        }
        let answer = "They went over to their friends because of the weather, although \
                      nobody could say whether it would rain upon them during the evening";
        let content = [
            "went", "friends", "weather", "nobody", "say", "rain", "evening",
        ];
        for _ in 0..200 {
            let word = pick_keyword(answer, &[], &mut rng);
            assert!(content.contains(&word.as_str()), "picked {word:?}");
        }
        for word in CLOSED_CLASS_WORDS {
            assert!(!is_content_word(word), "{word}");
            assert_eq!(*word, word.to_lowercase(), "the list is lower case");
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
