//! Word recall: the "naive string overlap" metric of the Datacomp subnet interview.
//!
//! Reference: `naive_string_similarity` in
//! `CrucibleAILabs/technical-interview:reference_solution.py@ece3749`. Both texts are lower-cased
//! (Python `str.lower()`, i.e. full Unicode lower-casing), split on whitespace (Python
//! `str.split()`), and turned into sets. The score is |output ∩ reference| / |reference|, or 0
//! when the reference has no words. Order and repeats are ignored and there is no precision term,
//! so an output that lists many words scores well: it is kept for fidelity to the seed, not as a
//! good metric.
//!
//! Deliberate difference: Rust's lower-casing follows a newer Unicode version than Python 3.11
//! (Unicode 14), so characters that gained a lower-case mapping after Unicode 14 compare
//! case-insensitively here but not in Python.

use std::cell::RefCell;
use std::hash::BuildHasher;

use super::python_str::is_python_whitespace;

/// Fraction of the distinct lower-cased words of `reference` that also occur in `output`.
///
/// Returns 0.0 when `reference` has no words.
pub fn word_recall(output: &str, reference: &str) -> f64 {
    SCRATCH.with(|scratch| scratch.borrow_mut().recall(output, reference))
}

thread_local! {
    /// Buffers reused across calls, so scoring a pair allocates nothing once they have grown.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One distinct reference word: its hash, its byte range in `Scratch::reference`, and whether
/// the output contains it.
#[derive(Clone, Copy)]
struct Word {
    hash: u64,
    start: u32,
    end: u32,
    found: bool,
}

#[derive(Default)]
struct Scratch {
    /// The lower-cased words of the reference, back to back.
    reference: Vec<u8>,
    /// The lower-cased word of the output being looked up.
    word: Vec<u8>,
    /// Lower-cased text, for the rare input that needs `str::to_lowercase` (see [`lower_words`]).
    lowered: String,
    /// Byte ranges of the words in `reference`, before de-duplication.
    ranges: Vec<(u32, u32)>,
    /// The distinct reference words.
    words: Vec<Word>,
    /// Open-addressing table over `words`: index plus one, 0 for an empty slot.
    slots: Vec<u32>,
}

impl Scratch {
    fn recall(&mut self, output: &str, reference: &str) -> f64 {
        let Scratch {
            reference: reference_bytes,
            word,
            lowered,
            ranges,
            words,
            slots,
        } = self;
        reference_bytes.clear();
        ranges.clear();
        lower_words(reference, lowered, reference_bytes, |bytes, start| {
            ranges.push((start as u32, bytes.len() as u32));
        });
        if ranges.is_empty() {
            return 0.0;
        }
        let size = (ranges.len() * 2).next_power_of_two().max(16);
        slots.clear();
        slots.resize(size, 0);
        let mask = size - 1;
        words.clear();
        for &(start, end) in ranges.iter() {
            let text = &reference_bytes[start as usize..end as usize];
            let hash = hash_word(text);
            let mut slot = hash as usize & mask;
            loop {
                let index = slots[slot];
                if index == 0 {
                    words.push(Word {
                        hash,
                        start,
                        end,
                        found: false,
                    });
                    slots[slot] = words.len() as u32;
                    break;
                }
                let existing = words[index as usize - 1];
                if existing.hash == hash
                    && &reference_bytes[existing.start as usize..existing.end as usize] == text
                {
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        let mut shared = 0usize;
        word.clear();
        lower_words(output, lowered, word, |bytes, start| {
            let text = &bytes[start..];
            let hash = hash_word(text);
            let mut slot = hash as usize & mask;
            loop {
                let index = slots[slot];
                if index == 0 {
                    break;
                }
                let entry = &mut words[index as usize - 1];
                if entry.hash == hash
                    && &reference_bytes[entry.start as usize..entry.end as usize] == text
                {
                    if !entry.found {
                        entry.found = true;
                        shared += 1;
                    }
                    break;
                }
                slot = (slot + 1) & mask;
            }
            bytes.truncate(start);
        });
        shared as f64 / words.len() as f64
    }
}

fn hash_word(word: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5EED).hash_one(word)
}

/// Splits `text` as Python's `text.lower().split()`, appending each lower-cased word to `out`
/// and calling `on_word(out, start)` with the word's first byte at `out[start..]`.
///
/// Python's whitespace lower-cases to itself and nothing else lower-cases to whitespace, so
/// splitting before lower-casing gives the same words. Lower-casing is per character
/// (`char::to_lowercase`) as `str::to_lowercase` does, except for the one context-dependent
/// mapping, capital sigma: text containing it goes through `str::to_lowercase` whole.
fn lower_words(
    text: &str,
    lowered: &mut String,
    out: &mut Vec<u8>,
    mut on_word: impl FnMut(&mut Vec<u8>, usize),
) {
    let bytes = text.as_bytes();
    if bytes.is_ascii() {
        let mut start = out.len();
        for &byte in bytes {
            if is_ascii_python_whitespace(byte) {
                if out.len() > start {
                    on_word(out, start);
                }
                start = out.len();
            } else {
                out.push(byte.to_ascii_lowercase());
            }
        }
        if out.len() > start {
            on_word(out, start);
        }
        return;
    }
    let already_lower = text.contains('\u{3a3}');
    let source = if already_lower {
        *lowered = text.to_lowercase();
        lowered.as_str()
    } else {
        text
    };
    let mut start = out.len();
    let mut utf8 = [0u8; 4];
    for c in source.chars() {
        if c.is_ascii() {
            let byte = c as u8;
            if is_ascii_python_whitespace(byte) {
                if out.len() > start {
                    on_word(out, start);
                }
                start = out.len();
            } else {
                out.push(byte.to_ascii_lowercase());
            }
        } else if is_python_whitespace(c) {
            if out.len() > start {
                on_word(out, start);
            }
            start = out.len();
        } else if already_lower {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        } else {
            for lower in c.to_lowercase() {
                out.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    if out.len() > start {
        on_word(out, start);
    }
}

/// [`is_python_whitespace`] for an ASCII byte.
fn is_ascii_python_whitespace(byte: u8) -> bool {
    matches!(byte, b'\t'..=b'\r' | 0x1c..=b' ')
}

/// Mean [`word_recall`] over `(output, reference)` pairs, or 0.0 for no pairs.
///
/// This is the reference's `validate_and_score` aggregate: a plain left-to-right sum divided by
/// the count, so it reproduces Python's float result bit for bit.
pub fn mean_word_recall<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for (output, reference) in pairs {
        sum += word_recall(output, reference);
        count += 1;
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_reference_words() {
        let score = word_recall("The SKY is blue blue", "the sky appears blue the");
        assert_eq!(score, 3.0 / 4.0);
    }

    #[test]
    fn empty_reference_scores_zero() {
        assert_eq!(word_recall("anything", " \t\u{1c} "), 0.0);
    }

    #[test]
    fn mean_of_no_pairs_is_zero() {
        assert_eq!(mean_word_recall([]), 0.0);
        assert_eq!(mean_word_recall([("a", "a b"), ("4", "4")]), 0.75);
    }
}
