//! SN37's WORD_SORTING task generator (`finetune/datasets/generated/word_sorting_loader.py`).
//!
//! Each sample asks to sort 2..=20 distinct list entries of the Basic English word list; the
//! reference is the same words sorted and joined by single spaces. SN37 scores it with
//! REFERENCE_LOSS on the reference, never by checking the generated order.
//!
//! The word list (`basic_english_words.txt`) is C. K. Ogden's Basic English 850-word list
//! (1930, public domain) in the order and spelling of NLTK's `words` corpus file `en-basic`,
//! which SN37 reads. We transcribed it from a public copy of that file that lacked one entry;
//! we restored "a" (an Ogden operation word). Words shorter than 3 characters, such as "a",
//! are dropped by SN37's length filter, so this does not change the generated tasks. The
//! file keeps NLTK's duplicates ("cup", "through"): SN37 samples list positions, so a
//! duplicated word is twice as likely and can appear twice in one sample.
//!
//! Seeds drive a ChaCha20 stream, not Python's Mersenne Twister: the distribution of tasks
//! matches SN37, the exact draws for a seed do not.

use rand::Rng;
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// The Basic English list, one word a line, as shipped in NLTK's `en-basic`.
const BASIC_ENGLISH_WORDS: &str = include_str!("basic_english_words.txt");

/// The text before the words in every prompt.
pub const WORD_SORTING_PROMPT: &str = "Sort the following words alphabetically: ";

/// Parameters of the generator; the defaults are SN37's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordSortingConfig {
    /// Fewest words in one sample (default 2).
    pub min_word_count: usize,
    /// Most words in one sample (default 20).
    pub max_word_count: usize,
    /// Shortest word kept from the list (default 3).
    pub min_word_length: usize,
    /// Number of samples (default 400).
    pub samples: usize,
}

impl Default for WordSortingConfig {
    fn default() -> Self {
        Self {
            min_word_count: 2,
            max_word_count: 20,
            min_word_length: 3,
            samples: 400,
        }
    }
}

/// One task: the user message and the reference answer scored by REFERENCE_LOSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordSortingSample {
    /// `"Sort the following words alphabetically: w1 w2 ... wn. "`
    pub challenge: String,
    /// The same words sorted by code point, joined by single spaces.
    pub reference: String,
}

/// Why a configuration cannot generate tasks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordSortingError {
    /// The word-count range is empty.
    #[error("word sorting: min_word_count {min} is greater than max_word_count {max}; swap them")]
    EmptyRange {
        /// Configured minimum.
        min: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A sample would need more words than the filtered list has.
    #[error(
        "word sorting: max_word_count {wanted} exceeds the {available} words of length >= {min_length}; lower max_word_count or min_word_length"
    )]
    NotEnoughWords {
        /// Configured maximum word count.
        wanted: usize,
        /// Words left after the length filter.
        available: usize,
        /// Configured minimum word length.
        min_length: usize,
    },
}

/// The list entries SN37 samples from: lower-cased, at least `min_length` characters long.
pub fn basic_english_words(min_length: usize) -> Vec<String> {
    BASIC_ENGLISH_WORDS
        .lines()
        .filter(|word| word.chars().count() >= min_length)
        .map(str::to_lowercase)
        .collect()
}

/// Builds one sample from words in their drawn order.
pub fn word_sorting_sample(words: &[&str]) -> WordSortingSample {
    let mut sorted = words.to_vec();
    sorted.sort_unstable();
    WordSortingSample {
        challenge: format!("{WORD_SORTING_PROMPT}{}. ", words.join(" ")),
        reference: sorted.join(" "),
    }
}

/// Generates `config.samples` tasks from `seed`.
pub fn generate_word_sorting(
    config: &WordSortingConfig,
    seed: u64,
) -> Result<Vec<WordSortingSample>, WordSortingError> {
    let (min, max) = (config.min_word_count, config.max_word_count);
    if min > max {
        return Err(WordSortingError::EmptyRange { min, max });
    }
    let words = basic_english_words(config.min_word_length);
    if max > words.len() {
        return Err(WordSortingError::NotEnoughWords {
            wanted: max,
            available: words.len(),
            min_length: config.min_word_length,
        });
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let samples = (0..config.samples)
        .map(|_| {
            let count = rng.random_range(min..=max);
            let drawn: Vec<&str> = index::sample(&mut rng, words.len(), count)
                .iter()
                .map(|at| words[at].as_str())
                .collect();
            word_sorting_sample(&drawn)
        })
        .collect();
    Ok(samples)
}
