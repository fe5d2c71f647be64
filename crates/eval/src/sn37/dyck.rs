//! SN37's DYCK_LANGUAGE task generator (`finetune/datasets/generated/dyck_loader.py`).
//!
//! Each sample is a random balanced bracket word over `<>`, `[]`, `{}`, `()` whose last 1..=3
//! characters are all closing brackets; the challenge shows the word without that tail, the
//! reference is the tail. Characters are separated by single spaces in both. SN37 scores it with
//! REFERENCE_LOSS, like WORD_SORTING (the user turn chat-templated, the reference encoded alone).
//! SN37 defines the loader but schedules it in no competition; a competition file can.
//!
//! The generator draws from a [`DyckDraws`] source in exactly the order SN37's code calls
//! Python's `random` (two `randint`s per sample, then per character a coin only where SN37 tosses
//! one, and a pair choice per opening bracket), so replaying SN37's recorded draws reproduces its
//! samples character for character (`fixtures/sn37/make_dyck_fixtures.py`). Rounds draw from a
//! seeded ChaCha20 stream: the distribution matches SN37, the exact draws for a seed do not.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// SN37's bracket pairs, in its order (`DYCK_CHARACTER_PAIRS`).
pub const DYCK_PAIRS: [(char, char); 4] = [('<', '>'), ('[', ']'), ('{', '}'), ('(', ')')];

/// The text before the brackets in every challenge (`DYCK_CHALLENGE_PROMPT`).
pub const DYCK_PROMPT: &str = "Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: ";

/// Parameters of the generator; the defaults are SN37's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DyckConfig {
    /// Fewest bracket pairs in a word (default 2).
    pub min_pairs: usize,
    /// Most bracket pairs in a word (default 20).
    pub max_pairs: usize,
    /// Shortest reference, in closing brackets (default 1).
    pub min_answer: usize,
    /// Longest reference, in closing brackets (default 3).
    pub max_answer: usize,
    /// Number of samples (default 100).
    pub samples: usize,
}

impl Default for DyckConfig {
    fn default() -> Self {
        Self {
            min_pairs: 2,
            max_pairs: 20,
            min_answer: 1,
            max_answer: 3,
            samples: 100,
        }
    }
}

/// Why a configuration cannot generate tasks (SN37's three `ValueError`s, and a zero-length
/// answer, which SN37's slicing would turn into the whole word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DyckError {
    /// `min_answer > max_answer`.
    #[error("dyck: min_answer {min} is greater than max_answer {max}")]
    AnswerRange {
        /// Configured minimum.
        min: usize,
        /// Configured maximum.
        max: usize,
    },
    /// `min_pairs > max_pairs`.
    #[error("dyck: min_pairs {min} is greater than max_pairs {max}")]
    PairRange {
        /// Configured minimum.
        min: usize,
        /// Configured maximum.
        max: usize,
    },
    /// `max_answer > max_pairs`.
    #[error("dyck: max_answer {answer} is greater than max_pairs {pairs}")]
    AnswerLongerThanWord {
        /// Configured longest answer.
        answer: usize,
        /// Configured most pairs.
        pairs: usize,
    },
    /// `min_answer == 0`.
    #[error("dyck: min_answer must be at least 1")]
    EmptyAnswer,
}

/// One task: the user message and the reference scored by REFERENCE_LOSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DyckSample {
    /// [`DYCK_PROMPT`] followed by the word's head, characters separated by spaces.
    pub challenge: String,
    /// The closing tail, characters separated by spaces.
    pub reference: String,
}

/// The random choices the generator makes, in SN37's call order.
pub trait DyckDraws {
    /// Python's `random.randint(low, high)`: uniform in `low..=high`.
    fn int(&mut self, low: usize, high: usize) -> usize;
    /// `random.choice([True, False])`.
    fn coin(&mut self) -> bool;
    /// `random.choice(pairs)`: an index below `n`.
    fn pair(&mut self, n: usize) -> usize;
}

/// Draws from a seeded ChaCha20 stream (what rounds use).
#[derive(Debug, Clone)]
pub struct SeededDraws(ChaCha20Rng);

impl SeededDraws {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha20Rng::seed_from_u64(seed))
    }
}

impl DyckDraws for SeededDraws {
    fn int(&mut self, low: usize, high: usize) -> usize {
        self.0.random_range(low..=high)
    }
    fn coin(&mut self) -> bool {
        self.0.random_bool(0.5)
    }
    fn pair(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

/// SN37's `generate_dyck`: a balanced word of `pairs` pairs whose last `ending_closes`
/// characters close brackets. It opens when nothing is open or when only the forced closing
/// tail is left to close, else tosses a coin, until every pair has been opened.
pub fn generate_dyck(pairs: usize, ending_closes: usize, draws: &mut impl DyckDraws) -> String {
    let mut opened = 0;
    let mut remaining_closes = pairs;
    let mut stack: Vec<char> = Vec::with_capacity(pairs);
    let mut word = String::with_capacity(2 * pairs);
    for _ in 0..2 * pairs {
        let open = opened < pairs
            && (stack.is_empty() || remaining_closes == ending_closes || draws.coin());
        if open {
            let (left, right) = DYCK_PAIRS[draws.pair(DYCK_PAIRS.len())];
            word.push(left);
            opened += 1;
            stack.push(right);
        } else if let Some(close) = stack.pop() {
            word.push(close);
            remaining_closes -= 1;
        }
    }
    word
}

fn spaced(chars: &[char]) -> String {
    let mut out = String::with_capacity(2 * chars.len());
    for (i, c) in chars.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

/// One sample as SN37's loader builds it from its draws.
pub fn dyck_sample(config: &DyckConfig, draws: &mut impl DyckDraws) -> DyckSample {
    let answer = draws.int(config.min_answer, config.max_answer);
    let pairs = draws.int(answer.max(config.min_pairs), config.max_pairs);
    let word: Vec<char> = generate_dyck(pairs, answer, draws).chars().collect();
    let split = word.len() - answer;
    DyckSample {
        challenge: format!("{DYCK_PROMPT}{}", spaced(&word[..split])),
        reference: spaced(&word[split..]),
    }
}

/// Checks a configuration as SN37's loader does.
pub fn validate(config: &DyckConfig) -> Result<(), DyckError> {
    if config.min_answer > config.max_answer {
        return Err(DyckError::AnswerRange {
            min: config.min_answer,
            max: config.max_answer,
        });
    }
    if config.min_pairs > config.max_pairs {
        return Err(DyckError::PairRange {
            min: config.min_pairs,
            max: config.max_pairs,
        });
    }
    if config.max_answer > config.max_pairs {
        return Err(DyckError::AnswerLongerThanWord {
            answer: config.max_answer,
            pairs: config.max_pairs,
        });
    }
    if config.min_answer == 0 {
        return Err(DyckError::EmptyAnswer);
    }
    Ok(())
}

/// Generates `config.samples` tasks from `seed`.
pub fn generate_dyck_samples(config: &DyckConfig, seed: u64) -> Result<Vec<DyckSample>, DyckError> {
    validate(config)?;
    let mut draws = SeededDraws::new(seed);
    Ok((0..config.samples)
        .map(|_| dyck_sample(config, &mut draws))
        .collect())
}
