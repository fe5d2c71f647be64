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

//!
//! Speed: the hot path reads 16 bytes at a time (SSE2, part of the x86-64 baseline) and only
//! decodes characters in 16-byte blocks that hold non-ASCII bytes; non-ASCII characters are
//! lower-cased through tables built once from `char::to_lowercase` (so they agree with it by
//! construction); a word of up to 16 bytes is compared as two integers rather than as a byte
//! slice; and the hash table is reset by bumping a generation stamp instead of clearing it.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::python_str::is_python_whitespace;

/// Fraction of the distinct lower-cased words of `reference` that also occur in `output`.
///
/// Returns 0.0 when `reference` has no words. Uses a thread-local [`WordRecall`]; code that
/// scores many pairs can hold its own scorer, or use [`WordRecall::score_pairs`].
pub fn word_recall(output: &str, reference: &str) -> f64 {
    SCORER.with(|scorer| scorer.borrow_mut().score(output, reference))
}

thread_local! {
    /// A scorer per thread, so that [`word_recall`] allocates nothing once its buffers have grown.
    static SCORER: RefCell<WordRecall> = RefCell::new(WordRecall::new());
}

/// A reusable [`word_recall`] scorer: its buffers and hash table are kept between pairs.
pub struct WordRecall {
    tables: &'static CaseTables,
    /// The lower-cased reference, words at the byte ranges the hash table records.
    reference: Vec<u8>,
    /// The lower-cased output (only the word being looked up matters).
    output: Vec<u8>,
    /// Open-addressing table of the reference's distinct words; a slot is in use only when its
    /// stamp equals `generation`.
    slots: Vec<Slot>,
    generation: u32,
}

impl Default for WordRecall {
    fn default() -> Self {
        Self::new()
    }
}

impl WordRecall {
    /// A scorer with empty buffers (they grow to the longest text scored).
    pub fn new() -> Self {
        WordRecall {
            tables: case_tables(),
            reference: Vec::new(),
            output: Vec::new(),
            slots: Vec::new(),
            generation: 0,
        }
    }

    /// [`word_recall`] of one pair.
    pub fn score(&mut self, output: &str, reference: &str) -> f64 {
        let WordRecall {
            tables,
            reference: reference_buffer,
            output: output_buffer,
            slots,
            generation,
        } = self;
        *generation = generation.wrapping_add(1);
        if *generation == 0 {
            // Stamps from 2^32 pairs ago would look current again: forget them all, once.
            slots.iter_mut().for_each(|slot| slot.stamp = 0);
            *generation = 1;
        }
        let stamp = *generation;
        // Words are separated by at least one byte, so there are at most (len + 1) / 2 of them
        // and the table stays at most half full.
        let size = (reference.len() + 1).next_power_of_two().max(16);
        if slots.len() < size {
            slots.resize(size, Slot::default());
        }
        let mask = size - 1;
        let mut distinct = 0u32;
        scan_words(reference, tables, reference_buffer, |buffer, start, end| {
            let key = Key::new(buffer, start, end);
            let mut index = key.hash as usize & mask;
            loop {
                let slot = &mut slots[index];
                if slot.stamp != stamp {
                    *slot = Slot {
                        lo: key.lo,
                        hi: key.hi,
                        len: key.len,
                        start: start as u32,
                        stamp,
                        found: false,
                    };
                    distinct += 1;
                    return false;
                }
                if slot.holds(&key, buffer, buffer, start) {
                    return false;
                }
                index = (index + 1) & mask;
            }
        });
        if distinct == 0 {
            return 0.0;
        }
        let reference_words = &reference_buffer[..];
        let mut shared = 0u32;
        scan_words(output, tables, output_buffer, |buffer, start, end| {
            let key = Key::new(buffer, start, end);
            let mut index = key.hash as usize & mask;
            loop {
                let slot = &mut slots[index];
                if slot.stamp != stamp {
                    return false;
                }
                if slot.holds(&key, reference_words, buffer, start) {
                    if !slot.found {
                        slot.found = true;
                        shared += 1;
                    }
                    // Every reference word found: the rest of the output cannot change the score.
                    return shared == distinct;
                }
                index = (index + 1) & mask;
            }
        });
        f64::from(shared) / f64::from(distinct)
    }

    /// [`word_recall`] of each `(output, reference)` pair, in order.
    pub fn score_pairs<O: AsRef<str>, R: AsRef<str>>(&mut self, pairs: &[(O, R)]) -> Vec<f64> {
        pairs
            .iter()
            .map(|(output, reference)| self.score(output.as_ref(), reference.as_ref()))
            .collect()
    }
}

/// [`word_recall`] of each `(output, reference)` pair, in order, split over `threads` scoped
/// threads (at least one), each with its own [`WordRecall`]. The scores are the same as the
/// single-threaded ones; only the wall time changes.
pub fn word_recall_parallel<O: AsRef<str> + Sync, R: AsRef<str> + Sync>(
    pairs: &[(O, R)],
    threads: usize,
) -> Vec<f64> {
    let chunk = pairs.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| scope.spawn(move || WordRecall::new().score_pairs(part)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(scores) => scores,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// One slot of the reference word table.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// The word's first 16 bytes, as in [`Key`].
    lo: u64,
    hi: u64,
    len: u32,
    /// Where the word starts in the lower-cased reference (compared only for words over 16 bytes).
    start: u32,
    stamp: u32,
    found: bool,
}

impl Slot {
    /// Whether this slot holds `key`, whose bytes are at `key_bytes[key_start..]`; the slot's word
    /// is in `slot_bytes`.
    fn holds(&self, key: &Key, slot_bytes: &[u8], key_bytes: &[u8], key_start: usize) -> bool {
        if self.lo != key.lo || self.hi != key.hi || self.len != key.len {
            return false;
        }
        let len = key.len as usize;
        len <= 16 || {
            let start = self.start as usize;
            slot_bytes[start..start + len] == key_bytes[key_start..key_start + len]
        }
    }
}

/// A lower-cased word's identity: its first 16 bytes as two little-endian integers (zero past
/// the end), its length, and a hash of all its bytes. Words of up to 16 bytes are equal exactly
/// when `lo`, `hi` and `len` are.
struct Key {
    lo: u64,
    hi: u64,
    len: u32,
    hash: u64,
}

impl Key {
    /// The key of `buffer[start..end]`; `buffer` must hold [`PAD`] readable bytes past `end`.
    fn new(buffer: &[u8], start: usize, end: usize) -> Key {
        let len = end - start;
        let lo = read_u64(buffer, start) & low_bytes_mask(len);
        let hi = read_u64(buffer, start + 8) & low_bytes_mask(len.saturating_sub(8));
        let mut hash = short_word_hash(lo, hi, len);
        let mut position = start + 16;
        while position < end {
            let chunk = read_u64(buffer, position) & low_bytes_mask(end - position);
            hash = fold_multiply(hash ^ chunk, 0xA409_3822_299F_31D0);
            position += 8;
        }
        Key {
            lo,
            hi,
            len: len as u32,
            hash,
        }
    }
}

/// The hash of a word's first 16 bytes and length (all of it for words of up to 16 bytes).
fn short_word_hash(lo: u64, hi: u64, len: usize) -> u64 {
    fold_multiply(
        lo ^ 0x243F_6A88_85A3_08D3,
        hi ^ 0x1319_8A2E_0370_7344 ^ len as u64,
    )
}

fn read_u64(buffer: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buffer[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// A mask of the low `count` bytes of a u64 (all of them for `count >= 8`).
fn low_bytes_mask(count: usize) -> u64 {
    1u64.checked_shl(8 * count as u32)
        .unwrap_or(0)
        .wrapping_sub(1)
}

/// The two halves of the 128-bit product xored: one multiplication mixes every input bit.
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    product as u64 ^ (product >> 64) as u64
}

/// Readable bytes kept past the lower-cased text, so [`Key::new`] can read 16 bytes at any word
/// start and a 16-byte block store never runs off the buffer.
const PAD: usize = 32;

/// Lower-cases and splits `text` as Python's `text.lower().split()`, calling
/// `on_word(buffer, start, end)` for each word, whose lower-cased bytes are
/// `buffer[start..end]`; stops early when `on_word` returns true.
///
/// Python's whitespace lower-cases to itself and nothing else lower-cases to whitespace, so
/// splitting before lower-casing gives the same words. Lower-casing is per character as
/// `str::to_lowercase` does, except for the one context-dependent mapping, capital sigma: a word
/// containing it goes through `str::to_lowercase` whole. That is the same as lower-casing the
/// whole text, since the sigma rule looks only through cased and case-ignorable characters, and
/// Python's whitespace is neither.
// The last `end_word!` resets `sigma` although nothing reads it afterwards.
#[allow(unused_assignments)]
fn scan_words(
    text: &str,
    tables: &CaseTables,
    buffer: &mut Vec<u8>,
    mut on_word: impl FnMut(&[u8], usize, usize) -> bool,
) {
    let bytes = text.as_bytes();
    // Lower-casing at most doubles a character's UTF-8 length (U+0130 goes from 2 to 3 bytes).
    let needed = bytes.len() * 2 + PAD;
    if buffer.len() < needed {
        buffer.resize(needed, 0);
    }
    let mut read = 0;
    let mut write = 0;
    // The current word starts at `buffer[start]`, from `text[source_start]`.
    let mut start = 0;
    let mut source_start = 0;
    let mut sigma = false;

    macro_rules! end_word {
        ($end:expr, $source_end:expr) => {
            let end = $end;
            if end > start {
                if sigma {
                    lower_sigma_word(&text[source_start..$source_end], &mut buffer[start..end]);
                    sigma = false;
                }
                if on_word(buffer, start, end) {
                    return;
                }
            }
        };
    }

    // One character from `bytes[read]`, which starts one.
    macro_rules! step {
        () => {
            let byte = bytes[read];
            if byte < 0x80 {
                if is_ascii_python_whitespace(byte) {
                    end_word!(write, read);
                    read += 1;
                    start = write;
                    source_start = read;
                } else {
                    buffer[write] = byte.to_ascii_lowercase();
                    write += 1;
                    read += 1;
                }
            } else if byte < 0xE0 {
                let code = (usize::from(byte & 0x1F) << 6) | usize::from(bytes[read + 1] & 0x3F);
                let entry = tables.two_byte[code - 0x80];
                match entry >> 24 {
                    TWO_BYTE_SPACE => {
                        end_word!(write, read);
                        read += 2;
                        start = write;
                        source_start = read;
                    }
                    length @ 1..=3 => {
                        buffer[write..write + 4].copy_from_slice(&entry.to_le_bytes());
                        write += length as usize;
                        read += 2;
                    }
                    _ => {
                        // Capital sigma (or a mapping too long for the table): the source
                        // bytes hold the place; `lower_sigma_word` rewrites the whole word.
                        sigma = true;
                        buffer[write..write + 2].copy_from_slice(&bytes[read..read + 2]);
                        write += 2;
                        read += 2;
                    }
                }
            } else {
                let width = if byte < 0xF0 { 3 } else { 4 };
                let same = width == 3 && {
                    let code = (usize::from(byte & 0x0F) << 12)
                        | (usize::from(bytes[read + 1] & 0x3F) << 6)
                        | usize::from(bytes[read + 2] & 0x3F);
                    tables.three_byte_same[code >> 6] >> (code & 63) & 1 == 1
                };
                if same {
                    buffer[write..write + 3].copy_from_slice(&bytes[read..read + 3]);
                    write += 3;
                    read += 3;
                } else {
                    let c = text[read..].chars().next().unwrap_or_default();
                    if is_python_whitespace(c) {
                        end_word!(write, read);
                        read += width;
                        start = write;
                        source_start = read;
                    } else {
                        for lower in c.to_lowercase() {
                            write += lower.encode_utf8(&mut buffer[write..write + 4]).len();
                        }
                        read += width;
                    }
                }
            }
        };
    }

    // Blocks of 16 bytes: the ASCII bytes before the block's first non-ASCII byte are handled
    // together, that one character alone, and the next block starts right after it, so a
    // stray non-ASCII character costs one character step rather than a block of them.
    #[cfg(target_arch = "x86_64")]
    while read + 16 <= bytes.len() {
        let (lowered, spaces, non_ascii) = ascii_block(&bytes[read..read + 16]);
        // Bytes from the first non-ASCII one on are stored too, and overwritten below.
        buffer[write..write + 16].copy_from_slice(&lowered);
        let ascii = non_ascii.trailing_zeros() as usize;
        let mut spaces = spaces & non_ascii.wrapping_sub(1) & 0xFFFF;
        while spaces != 0 {
            let offset = spaces.trailing_zeros() as usize;
            end_word!(write + offset, read + offset);
            start = write + offset + 1;
            source_start = read + offset + 1;
            spaces &= spaces - 1;
        }
        if ascii >= 16 {
            read += 16;
            write += 16;
        } else {
            read += ascii;
            write += ascii;
            step!();
        }
    }
    while read < bytes.len() {
        step!();
    }
    end_word!(write, bytes.len());
}

/// For the first 16 bytes of `block`: the bytes with ASCII capitals lower-cased, a bit mask of
/// the ASCII Python whitespace among them, and a bit mask of the non-ASCII bytes with bit 16
/// also set (so its trailing zeros count the leading ASCII bytes, 16 when all are).
#[cfg(target_arch = "x86_64")]
fn ascii_block(block: &[u8]) -> ([u8; 16], u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_storeu_si128,
    };
    assert!(block.len() >= 16);
    // SAFETY: SSE2 is part of the x86-64 baseline, so its intrinsics are always available; the
    // load reads 16 bytes that the assert above guarantees are in `block`, and the store writes
    // the 16 bytes of `out`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        // Signed comparisons: bytes from 0x80 up are negative, so they fall in neither range.
        let between = |low: i8, high: i8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(bytes, _mm_set1_epi8(low - 1)),
                _mm_cmplt_epi8(bytes, _mm_set1_epi8(high + 1)),
            )
        };
        let upper = between(b'A' as i8, b'Z' as i8);
        let lowered = _mm_or_si128(bytes, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        let spaces = _mm_or_si128(between(0x09, 0x0D), between(0x1C, 0x20));
        let mut out = [0u8; 16];
        _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), lowered);
        (
            out,
            _mm_movemask_epi8(spaces) as u32,
            _mm_movemask_epi8(bytes) as u32 | 1 << 16,
        )
    }
}

/// Rewrites `lowered`, the per-character lower-casing of `word` (which contains a capital
/// sigma), with `word.to_lowercase()`, which picks final or medial sigma from the context.
fn lower_sigma_word(word: &str, lowered: &mut [u8]) {
    let whole = word.to_lowercase();
    // Both sigmas are two bytes like the capital, and every other character is lower-cased the
    // same way, so the lengths always agree.
    if whole.len() == lowered.len() {
        lowered.copy_from_slice(whole.as_bytes());
    }
}

/// `entry >> 24` of a [`CaseTables::two_byte`] entry for Python whitespace.
const TWO_BYTE_SPACE: u32 = 0;
/// `entry >> 24` of a [`CaseTables::two_byte`] entry for capital sigma.
const TWO_BYTE_SIGMA: u32 = 4;

/// Lower-casing tables, built once from `char::to_lowercase`.
struct CaseTables {
    /// For U+0080..U+07FF: the lower-cased UTF-8 bytes in the low three bytes and their count
    /// in the top byte, or [`TWO_BYTE_SPACE`] / [`TWO_BYTE_SIGMA`] there.
    two_byte: Vec<u32>,
    /// One bit per code point below U+10000: set when the character lower-cases to itself
    /// and is not Python whitespace (consulted for three-byte characters only).
    three_byte_same: Vec<u64>,
}

fn case_tables() -> &'static CaseTables {
    static TABLES: OnceLock<CaseTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let two_byte = (0x80..0x800u32)
            .map(|code| {
                let c = char::from_u32(code).unwrap_or_default();
                if is_python_whitespace(c) {
                    return TWO_BYTE_SPACE << 24;
                }
                let lowered: String = c.to_lowercase().collect();
                if c == '\u{3a3}' || lowered.len() > 3 {
                    return TWO_BYTE_SIGMA << 24;
                }
                let mut bytes = [0u8; 4];
                bytes[..lowered.len()].copy_from_slice(lowered.as_bytes());
                bytes[3] = lowered.len() as u8;
                u32::from_le_bytes(bytes)
            })
            .collect();
        let mut three_byte_same = vec![0u64; 0x10000 / 64];
        for code in 0x800..0x10000u32 {
            if let Some(c) = char::from_u32(code) {
                let mut lower = c.to_lowercase();
                if lower.next() == Some(c) && lower.next().is_none() && !is_python_whitespace(c) {
                    three_byte_same[code as usize / 64] |= 1 << (code % 64);
                }
            }
        }
        CaseTables {
            two_byte,
            three_byte_same,
        }
    })
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

    /// The metric restated the slow, obvious way.
    fn naive(output: &str, reference: &str) -> f64 {
        use std::collections::HashSet;
        let words = |text: &str| -> HashSet<String> {
            text.to_lowercase()
                .split(is_python_whitespace)
                .filter(|word| !word.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let (output, reference) = (words(output), words(reference));
        if reference.is_empty() {
            return 0.0;
        }
        output.intersection(&reference).count() as f64 / reference.len() as f64
    }

    #[test]
    fn matches_naive_lowercase_split_sets() {
        // Pieces that exercise each path: ASCII blocks, two- and three-byte tables, the
        // `to_lowercase` fallback, both sigmas, growing lengths, words over 16 bytes and every
        // kind of Python whitespace.
        let pieces = [
            "the",
            "THE",
            "Cat",
            "cAt",
            "a",
            "Generalizations",
            "GENERALIZATIONSANDMORE",
            "generalizationsandmore",
            "ΟΔΟΣ",
            "οδος",
            "ΣΑΣ",
            "σας",
            "Σ",
            "ΣΣ",
            "A.Σ",
            "İstanbul",
            "i\u{307}stanbul",
            "Ⱥ",
            "ⱥ",
            "Straße",
            "ＡＢＣ",
            "ａｂｃ",
            "Ⅻ",
            "ⅻ",
            "\u{212a}elvin",
            "kelvin",
            "中文",
            "😀",
            "𐐀",
            "𐐨",
            "e\u{301}te",
            "ǅemal",
            "ǆemal",
            "x",
            "X",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\u{1c}",
            "\u{1f}",
            "\u{85}",
            "\u{a0}",
            "\u{1680}",
            "\u{2000}",
            "\u{200a}",
            "\u{200b}",
            "\u{2028}",
            "\u{2029}",
            "\u{202f}",
            "\u{205f}",
            "\u{3000}",
            "0123456789abcdef",
            "ABCDEFGHIJKLMNOPQ",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut scorer = WordRecall::new();
        for case in 0..3000 {
            let mut text = || -> String {
                let count = next(40);
                (0..count)
                    .map(|_| pieces[next(pieces.len())])
                    .collect::<Vec<_>>()
                    .join(if next(2) == 0 { " " } else { "" })
            };
            let (output, reference) = (text(), text());
            let expected = naive(&output, &reference);
            assert_eq!(
                scorer.score(&output, &reference),
                expected,
                "case {case}: {output:?} / {reference:?}"
            );
            assert_eq!(
                scorer.score(&reference, &reference),
                naive(&reference, &reference)
            );
        }
    }

    #[test]
    fn two_byte_table_marks_only_capital_sigma() {
        let tables = case_tables();
        for (offset, &entry) in tables.two_byte.iter().enumerate() {
            let c = char::from_u32(offset as u32 + 0x80).unwrap();
            assert_eq!(entry >> 24 == TWO_BYTE_SIGMA, c == '\u{3a3}', "{c:?}");
        }
    }

    #[test]
    fn batch_and_parallel_agree_with_single_pairs() {
        let pairs = [("a b", "b c"), ("ΣΑΣ x", "σας"), ("", "x"), ("Y", "y Y")];
        let single: Vec<f64> = pairs.iter().map(|(o, r)| word_recall(o, r)).collect();
        assert_eq!(WordRecall::new().score_pairs(&pairs), single);
        assert_eq!(word_recall_parallel(&pairs, 3), single);
        assert_eq!(word_recall_parallel(&pairs, 0), single);
    }

    #[test]
    fn mean_of_no_pairs_is_zero() {
        assert_eq!(mean_word_recall([]), 0.0);
        assert_eq!(mean_word_recall([("a", "a b"), ("4", "4")]), 0.75);
    }
}
