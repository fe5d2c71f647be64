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
//! Speed: each pass over a text avoids data-dependent branches (a mispredicted branch costs
//! more than the work of a word here). Lower-casing keeps the text byte for byte in place: 16
//! bytes at a time the ASCII capitals are lowered and ASCII whitespace blanked (SSE2, part of the
//! x86-64 baseline), then every non-ASCII character is replaced through a table built once from
//! `char::to_lowercase` when its lower case has the same UTF-8 length (Python whitespace by
//! spaces); for the rare others (U+0130, the Kelvin sign, ...) only their own word is copied
//! again with the lower case from the same table, and a word with a capital sigma goes through
//! `str::to_lowercase`. Word boundaries come from bit masks of the spaces, 64 bytes at a time.
//! Words are hashed with up to 16 bytes compared as two integers, in a table reset by bumping a
//! generation stamp. On CPUs with AVX2/BMI2 the same code is compiled for them too
//! (one-instruction bit counts and shifts); the scores are the same either way.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::interner::{Generation, fold_multiply, hash_halves};

#[cfg(not(target_arch = "x86_64"))]
use super::python_str::is_ascii_python_whitespace;
use super::python_str::{is_python_whitespace, python_split};

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
    table: &'static CaseTable,
    /// The reference, lower-cased; the hash table's words point into it.
    reference: LoweredText,
    output: LoweredText,
    /// Open-addressing table of the reference's distinct words; a slot is in use only when its
    /// stamp equals `generation`.
    slots: Vec<Slot>,
    generation: Generation,
    /// Whether this CPU runs [`WordRecall::score_x86_64_v3`].
    #[cfg(target_arch = "x86_64")]
    x86_64_v3: bool,
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
            table: case_table(),
            reference: LoweredText::default(),
            output: LoweredText::default(),
            slots: Vec::new(),
            generation: Generation::default(),
            #[cfg(target_arch = "x86_64")]
            x86_64_v3: std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("bmi1")
                && std::is_x86_feature_detected!("bmi2")
                && std::is_x86_feature_detected!("lzcnt")
                && std::is_x86_feature_detected!("popcnt"),
        }
    }

    /// [`word_recall`] of one pair.
    pub fn score(&mut self, output: &str, reference: &str) -> f64 {
        if output.len().max(reference.len()) > LONGEST_FAST_TEXT {
            return word_recall_of_sets(output, reference);
        }
        #[cfg(target_arch = "x86_64")]
        if self.x86_64_v3 {
            // SAFETY: `new` saw that this CPU has every feature that `score_x86_64_v3` enables.
            return unsafe { self.score_x86_64_v3(output, reference) };
        }
        self.score_portable(output, reference)
    }

    /// [`Self::score`] compiled for the x86-64-v3 level (AVX2, BMI1/2, LZCNT, POPCNT): the same
    /// integer work in fewer instructions (one-instruction bit counts and shifts), so the same
    /// scores.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
    fn score_x86_64_v3(&mut self, output: &str, reference: &str) -> f64 {
        self.score_portable(output, reference)
    }

    #[inline(always)]
    fn score_portable(&mut self, output: &str, reference: &str) -> f64 {
        let stamp = self.next_stamp();
        self.reference.split(reference, self.table);
        // At least four slots a word: few collisions, so few probes.
        let size = (2 * self.reference.bound_count).next_power_of_two().max(16);
        if self.slots.len() < size {
            self.slots.resize(size, Slot::default());
        }
        let reference_bytes = &self.reference.lowered[..];
        let mut table = WordTable {
            slots: &mut self.slots[..],
            mask: size - 1,
            stamp,
            words: reference_bytes,
        };
        let mut distinct = 0u32;
        for (start, end) in self.reference.words() {
            let key = Key::new(reference_bytes, start, end);
            let slot = table.slot(&key, reference_bytes, start);
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
            }
        }
        if distinct == 0 {
            return 0.0;
        }
        self.output.split(output, self.table);
        let output_bytes = &self.output.lowered[..];
        let mut shared = 0u32;
        for (start, end) in self.output.words() {
            let key = Key::new(output_bytes, start, end);
            let slot = table.slot(&key, output_bytes, start);
            if slot.stamp == stamp && !slot.found {
                slot.found = true;
                shared += 1;
            }
        }
        f64::from(shared) / f64::from(distinct)
    }

    /// A stamp no slot holds yet.
    #[inline(always)]
    fn next_stamp(&mut self) -> u32 {
        let slots = &mut self.slots;
        self.generation
            .advance(|| slots.iter_mut().for_each(|slot| slot.stamp = 0))
    }

    /// [`word_recall`] of each `(output, reference)` pair, in order.
    pub fn score_pairs<O: AsRef<str>, R: AsRef<str>>(&mut self, pairs: &[(O, R)]) -> Vec<f64> {
        let mut scores = vec![0.0; pairs.len()];
        self.score_pairs_into(pairs, &mut scores);
        scores
    }

    /// [`Self::score_pairs`] into `scores`, which is as long as `pairs`.
    fn score_pairs_into<O: AsRef<str>, R: AsRef<str>>(
        &mut self,
        pairs: &[(O, R)],
        scores: &mut [f64],
    ) {
        for (index, score) in scores.iter_mut().enumerate() {
            // The texts of the pair after next start coming from memory now: they are
            // separate allocations that the hardware prefetcher does not foresee.
            if let Some((output, reference)) = pairs.get(index + 2) {
                prefetch(output.as_ref().as_bytes());
                prefetch(reference.as_ref().as_bytes());
            }
            let (output, reference) = &pairs[index];
            *score = self.score(output.as_ref(), reference.as_ref());
        }
    }
}

/// Asks for the first two cache lines of `bytes` ahead of their use (a hint only).
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64).take(2) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86-64 baseline, and a prefetch of a valid address has no
        // effect but on the caches.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
    }
}

/// Texts longer than this are scored by [`word_recall_of_sets`]: the fast path keeps byte
/// positions in `u32`, and a gigabyte text is no time to save nanoseconds.
const LONGEST_FAST_TEXT: usize = 1 << 30;

/// The metric stated plainly: lower-case, split on Python whitespace, count the overlap of the
/// two sets. Slow (a `String` and a set per text); the tests check the fast path against it.
fn word_recall_of_sets(output: &str, reference: &str) -> f64 {
    use std::collections::HashSet;
    let words = |text: &str| -> HashSet<String> {
        python_split(&text.to_lowercase())
            .map(str::to_owned)
            .collect()
    };
    let (output, reference) = (words(output), words(reference));
    if reference.is_empty() {
        return 0.0;
    }
    output.intersection(&reference).count() as f64 / reference.len() as f64
}

/// [`word_recall`] of each `(output, reference)` pair, in order, on `threads` threads (at
/// least one; the calling thread is one of them), each with its own [`WordRecall`]. The scores
/// are the same as the single-threaded ones; only the wall time changes.
///
/// The pairs are handed out in blocks, one at a time, so that on a busy machine a thread that
/// gets no core for a while leaves its share to the others instead of holding up the end.
pub fn word_recall_parallel<O: AsRef<str> + Sync, R: AsRef<str> + Sync>(
    pairs: &[(O, R)],
    threads: usize,
) -> Vec<f64> {
    const BLOCK: usize = 1024;
    let mut scores = vec![0.0; pairs.len()];
    let blocks = std::sync::Mutex::new(pairs.chunks(BLOCK).zip(scores.chunks_mut(BLOCK)));
    let work = || {
        let mut scorer = WordRecall::new();
        loop {
            let next = blocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next();
            let Some((block, block_scores)) = next else {
                break;
            };
            scorer.score_pairs_into(block, block_scores);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.max(1) {
            scope.spawn(work);
        }
        work();
    });
    scores
}

/// The reference's distinct words in open addressing: a slot is in use only when its stamp is
/// `stamp`, and the words of the slots are in `words`.
struct WordTable<'a> {
    slots: &'a mut [Slot],
    /// The slot count less one (the count is a power of two).
    mask: usize,
    stamp: u32,
    words: &'a [u8],
}

impl WordTable<'_> {
    /// The slot that holds `key` (whose bytes are at `key_bytes[key_start..]`) or, when none
    /// does, the free slot where it belongs (linear probing).
    #[inline(always)]
    fn slot(&mut self, key: &Key, key_bytes: &[u8], key_start: usize) -> &mut Slot {
        let mut index = key.hash as usize & self.mask;
        while self.slots[index].stamp == self.stamp
            && !self.slots[index].holds(key, self.words, key_bytes, key_start)
        {
            index = (index + 1) & self.mask;
        }
        &mut self.slots[index]
    }
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
    #[inline(always)]
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
    /// The key of `buffer[start..end]`; `buffer` must hold 16 readable bytes from `start`.
    #[inline(always)]
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
#[inline(always)]
fn short_word_hash(lo: u64, hi: u64, len: usize) -> u64 {
    hash_halves(lo, hi ^ len as u64)
}

#[inline(always)]
fn read_u64(buffer: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buffer[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[inline(always)]
fn read_u32(buffer: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buffer[at..at + 4]);
    u32::from_le_bytes(bytes)
}

/// Four bytes of `source` from `at`, spaces past its end.
#[inline(always)]
fn read_u32_padded(source: &[u8], at: usize) -> u32 {
    match source.get(at..at + 4) {
        Some(bytes) => read_u32(bytes, 0),
        None => {
            let mut bytes = [b' '; 4];
            let tail = &source[at..];
            bytes[..tail.len()].copy_from_slice(tail);
            u32::from_le_bytes(bytes)
        }
    }
}

/// [`ascii_block`]'s lowering of four bytes at once (SWAR): ASCII capitals lower-cased, ASCII
/// Python whitespace turned into spaces, every byte from 0x80 up unchanged.
#[inline(always)]
fn lower_ascii_bytes(bytes: u32) -> u32 {
    const ONES: u32 = 0x0101_0101;
    const HIGH: u32 = 0x8080_8080;
    let seven_bits = bytes & !HIGH;
    let ascii = !bytes & HIGH;
    // The high bit of each byte: set when its low seven bits are at least `low` (no carry
    // crosses a byte, since 0x7F + 0x80 - low stays below 0x100).
    let at_least = |low: u32| (seven_bits + ONES * (0x80 - low)) & HIGH;
    let capitals = at_least(b'A'.into()) & !at_least(u32::from(b'Z') + 1) & ascii;
    let spaces = ((at_least(0x09) & !at_least(0x0E)) | (at_least(0x1C) & !at_least(0x21))) & ascii;
    let lowered = bytes | capitals >> 2;
    let space_bytes = (spaces >> 7) * 0xFF;
    (lowered & !space_bytes) | (space_bytes & 0x2020_2020)
}

/// A mask of the low `count` bytes of a u64 (all of them for `count >= 8`).
#[inline(always)]
fn low_bytes_mask(count: usize) -> u64 {
    1u64.checked_shl(8 * count as u32)
        .unwrap_or(0)
        .wrapping_sub(1)
}

/// Spaces kept past the end of a lowered text (and of each word copied after it): the passes
/// read whole 64-byte chunks, and a key reads 16 bytes from a word's start.
const PAD: usize = 64;

/// One text as Python's `text.lower().split()` sees it, in reused buffers.
#[derive(Default)]
struct LoweredText {
    /// Byte for byte in step with the source: each character that lower-cases to one of the
    /// same UTF-8 length is replaced by it, Python whitespace by spaces, and any other character
    /// is left as it is and its word is redone (see [`Self::redo_special_words`]). Followed by
    /// [`PAD`] spaces, then by the redone words, each followed by [`PAD`] spaces.
    lowered: Vec<u8>,
    /// Bit masks of the non-ASCII lead bytes, one per 64 bytes of the text.
    leads: Vec<u64>,
    /// The positions of the set bits of `leads`, in order.
    lead_positions: Vec<u32>,
    /// Bit masks of the bytes where a word starts or ends, one per 64 bytes of the text.
    edges: Vec<u64>,
    /// The number of set bits in `edges` before each of its masks.
    edges_before: Vec<u32>,
    /// Start and end of each word in `lowered`, alternately (the first `bound_count`; the rest
    /// is scratch).
    bounds: Vec<u32>,
    bound_count: usize,
    /// Positions of the characters left as they are, in order; each slot past `special_count`
    /// is scratch.
    specials: Vec<u32>,
    special_count: usize,
}

impl LoweredText {
    /// Lower-cases `text` and finds its words.
    ///
    /// Python's whitespace lower-cases to itself and nothing else lower-cases to whitespace, so
    /// the word boundaries of the source are those of the lowered text, and a word can be
    /// lower-cased on its own.
    #[inline(always)]
    fn split(&mut self, text: &str, table: &CaseTable) {
        self.lower_ascii(text);
        self.lower_non_ascii(text, table);
        self.find_bounds(text.len());
        self.redo_special_words(text, table);
    }

    /// The words found by [`Self::split`], as byte ranges of `lowered`.
    #[inline(always)]
    fn words(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.bounds[..self.bound_count]
            .chunks_exact(2)
            .map(|word| (word[0] as usize, word[1] as usize))
    }

    /// Copies `text` into `lowered` with ASCII capitals lower-cased and ASCII whitespace
    /// turned into spaces, 16 bytes at a time, and records where the non-ASCII characters start.
    #[inline(always)]
    fn lower_ascii(&mut self, text: &str) {
        let source = text.as_bytes();
        let len = source.len();
        let chunks = len.div_ceil(64);
        let area = chunks * 64 + PAD;
        if self.lowered.len() < area {
            self.lowered.resize(area, b' ');
        }
        // Drops the words redone for the text before; capacity is kept.
        self.lowered.truncate(area);
        self.leads.clear();
        self.leads.resize(chunks, 0);
        let mut store = |at: usize, block: &[u8]| {
            let (lowered, leads) = ascii_block(block);
            self.lowered[at..at + 16].copy_from_slice(&lowered);
            // Bits of a block may fall in two masks only for the last, unaligned block.
            let (mask, shift) = (at / 64, at % 64);
            self.leads[mask] |= u64::from(leads) << shift;
            if shift > 48 {
                self.leads[mask + 1] |= u64::from(leads) >> (64 - shift);
            }
        };
        for at in (0..len / 16).map(|block| 16 * block) {
            store(at, &source[at..at + 16]);
        }
        if !len.is_multiple_of(16) {
            if len >= 16 {
                // The last 16 bytes, overlapping the block before: its bytes come out the same
                // again, and its lead bits are or-ed in again.
                store(len - 16, &source[len - 16..]);
            } else {
                let mut padded = [b' '; 16];
                padded[..len].copy_from_slice(source);
                store(0, &padded);
            }
        }
        self.lowered[len..area].fill(b' ');
    }

    /// Replaces each non-ASCII character whose lower case has its UTF-8 length, and each
    /// whitespace character by spaces; records the others in `specials`. Every character is
    /// handled the same way, without branching on its kind.
    #[inline(always)]
    fn lower_non_ascii(&mut self, text: &str, table: &CaseTable) {
        let count = set_bit_positions::<8>(&self.leads, &mut self.lead_positions);
        if self.specials.len() < count + 1 {
            self.specials.resize(count + 1, 0);
        }
        let source = text.as_bytes();
        // Local slices: a byte store through `self.lowered` could otherwise alias the other
        // buffers' fields, which would be loaded again after every store.
        let (lowered, special_positions) = (&mut self.lowered[..], &mut self.specials[..]);
        let mut specials = 0;
        for &at in &self.lead_positions[..count] {
            let at = at as usize;
            // Four bytes from the source, not from `lowered`: no load waits for the store of the
            // character before. The bytes after the character are lowered as `ascii_block` did;
            // a non-ASCII character there is stored over next.
            let raw = read_u32_padded(source, at);
            let (width, entry) = table.entry(raw);
            // Four-byte characters and special ones keep their bytes.
            let changes = u32::from(entry >> 24 != 0 && width < 4);
            let mask = low_bytes_mask(width) as u32 & 0u32.wrapping_sub(changes);
            let new = (lower_ascii_bytes(raw) & !mask) | (entry & mask);
            lowered[at..at + 4].copy_from_slice(&new.to_le_bytes());
            special_positions[specials] = at as u32;
            specials += usize::from(entry >> 24 == 0);
        }
        self.special_count = specials;
    }

    /// Fills `bounds` from the spaces of `lowered`, 64 bytes at a time: a word starts where a
    /// byte that is not a space follows a space, and ends at the next space.
    #[inline(always)]
    fn find_bounds(&mut self, len: usize) {
        self.edges.clear();
        self.edges_before.clear();
        // Before the text counts as a space, so a word at position 0 starts there.
        let (mut previous_is_word, mut count) = (0u64, 0u32);
        // The chunk holding position `len`, a space, ends the last word.
        for base in (0..=len).step_by(64) {
            let word_bytes = !space_mask(&self.lowered[base..base + 64]);
            let edges = word_bytes ^ (word_bytes << 1 | previous_is_word);
            self.edges.push(edges);
            self.edges_before.push(count);
            count += edges.count_ones();
            previous_is_word = word_bytes >> 63;
        }
        self.bound_count = set_bit_positions::<24>(&self.edges, &mut self.bounds);
    }

    /// Lower-cases each word holding a special character into the end of `lowered`, and points
    /// its bounds there: its other characters are copied from `lowered`, each special one is
    /// replaced by its lower case (from the table, or `char::to_lowercase` for a cased
    /// four-byte letter), and a word with a capital sigma goes through `str::to_lowercase`
    /// whole. Doing that per word equals doing it for the whole text: capital sigma's rule looks
    /// only through cased and case-ignorable characters, and Python's whitespace is neither.
    fn redo_special_words(&mut self, text: &str, table: &CaseTable) {
        let source = text.as_bytes();
        let mut next = 0;
        while next < self.special_count {
            let word = self.word_holding(self.specials[next] as usize);
            let (start, end) = (self.bounds[word] as usize, self.bounds[word + 1] as usize);
            let first = next;
            while next < self.special_count && (self.specials[next] as usize) < end {
                next += 1;
            }
            let word_specials = &self.specials[first..next];
            let copy_start = self.lowered.len();
            let has_sigma = word_specials
                .iter()
                .any(|&at| source[at as usize..at as usize + 2] == *"\u{3a3}".as_bytes());
            if has_sigma {
                self.lowered
                    .extend_from_slice(text[start..end].to_lowercase().as_bytes());
            } else {
                let mut copied = start;
                for &at in word_specials {
                    let at = at as usize;
                    self.lowered.extend_from_within(copied..at);
                    let (width, entry) = table.entry(read_u32_padded(source, at));
                    if entry != 0 {
                        let lower = entry.to_le_bytes();
                        let length = (32 - entry.leading_zeros()).div_ceil(8) as usize;
                        self.lowered.extend_from_slice(&lower[..length]);
                    } else {
                        let c = text[at..].chars().next().unwrap_or(' ');
                        for lower in c.to_lowercase() {
                            let mut bytes = [0u8; 4];
                            self.lowered
                                .extend_from_slice(lower.encode_utf8(&mut bytes).as_bytes());
                        }
                    }
                    copied = at + width;
                }
                self.lowered.extend_from_within(copied..end);
            }
            self.bounds[word] = copy_start as u32;
            self.bounds[word + 1] = self.lowered.len() as u32;
            self.lowered.extend_from_slice(&[b' '; PAD]);
        }
    }

    /// The index in `bounds` of the start of the word that holds byte `at` (not a space): the
    /// number of word edges at or before it, less one. Edges are counted in `edges`, not read
    /// from `bounds`, whose redone words point past the text.
    #[inline(always)]
    fn word_holding(&self, at: usize) -> usize {
        let (chunk, bit) = (at / 64, at % 64);
        let up_to_here = self.edges[chunk] & (u64::MAX >> (63 - bit));
        self.edges_before[chunk] as usize + up_to_here.count_ones() as usize - 1
    }
}

/// Writes the positions of the set bits of `masks` (bit `i` of mask `k` is position
/// `64 k + i`) to the start of `positions` in increasing order, and returns their count.
///
/// The first `UNROLLED` bits of each mask are written whether they exist or not (and then
/// counted or overwritten), so that the number of bits in a mask, which varies, costs no
/// mispredicted branch unless it exceeds `UNROLLED`.
#[inline(always)]
fn set_bit_positions<const UNROLLED: usize>(masks: &[u64], positions: &mut Vec<u32>) -> usize {
    let needed = masks.len() * 64 + UNROLLED;
    if positions.len() < needed {
        positions.resize(needed, 0);
    }
    let mut count = 0;
    for (index, &mask) in masks.iter().enumerate() {
        let base = 64 * index as u32;
        let ones = mask.count_ones() as usize;
        let mut rest = mask;
        for slot in &mut positions[count..count + UNROLLED] {
            *slot = base + rest.trailing_zeros();
            rest &= rest.wrapping_sub(1);
        }
        let mut at = count + UNROLLED;
        while rest != 0 {
            positions[at] = base + rest.trailing_zeros();
            rest &= rest - 1;
            at += 1;
        }
        count += ones;
    }
    count
}

/// For the first 16 bytes of `block`: the bytes with ASCII capitals lower-cased and ASCII
/// Python whitespace turned into spaces (others unchanged), and a bit mask of the bytes that
/// start a non-ASCII character.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ascii_block(block: &[u8]) -> ([u8; 16], u32) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_storeu_si128,
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
        let blanked = _mm_or_si128(
            _mm_andnot_si128(spaces, lowered),
            _mm_and_si128(spaces, _mm_set1_epi8(b' ' as i8)),
        );
        let top_two = _mm_set1_epi8(0xC0u8 as i8);
        let leads = _mm_cmpeq_epi8(_mm_and_si128(bytes, top_two), top_two);
        let mut out = [0u8; 16];
        _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), blanked);
        (out, _mm_movemask_epi8(leads) as u32)
    }
}

/// [`ascii_block`] without SIMD, for other architectures.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ascii_block(block: &[u8]) -> ([u8; 16], u32) {
    let mut out = [0u8; 16];
    let mut leads = 0;
    for (index, (&byte, lowered)) in block.iter().zip(&mut out).enumerate() {
        *lowered = if is_ascii_python_whitespace(byte) {
            b' '
        } else {
            byte.to_ascii_lowercase()
        };
        leads |= u32::from(byte >= 0xC0) << index;
    }
    (out, leads)
}

/// A bit per byte of the first 64 bytes of `chunk`: set for a space.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn space_mask(chunk: &[u8]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert!(chunk.len() >= 64);
    let mut mask = 0u64;
    for quarter in 0..4 {
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads bytes 16 * quarter ..
        // 16 * quarter + 16 of `chunk`, which the assert above guarantees exist.
        let bits = unsafe {
            let bytes = _mm_loadu_si128(chunk.as_ptr().add(16 * quarter).cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b' ' as i8))) as u32
        };
        mask |= u64::from(bits & 0xFFFF) << (16 * quarter);
    }
    mask
}

/// [`space_mask`] without SIMD, for other architectures.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn space_mask(chunk: &[u8]) -> u64 {
    chunk[..64]
        .iter()
        .enumerate()
        .fold(0, |mask, (index, &byte)| {
            mask | u64::from(byte == b' ') << index
        })
}

/// Lower-casing of every character below U+10000, built once from `char::to_lowercase`.
struct CaseTable {
    /// Per code point: the lower-cased UTF-8 bytes in the low three bytes (spaces for Python
    /// whitespace), and in the top byte a 1 when they are as long as the character's own. A 0
    /// top byte marks a special character, whose word is redone: its lower case has another
    /// length (such as U+0130's), or the whole entry is 0 for capital sigma, whose lower case
    /// depends on its neighbours.
    entries: Box<[u32; 0x10000]>,
}

/// UTF-8 sequence length by the high four bits of its first byte (continuation bytes never
/// start a character here).
const WIDTHS: [u8; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];

/// Four-byte characters from here on lower-case to themselves and are not whitespace (a test
/// checks it); those below may be cased letters (Deseret, Adlam, ...) and are lower-cased per
/// word.
const FOUR_BYTE_CASELESS: u32 = 0x1F000;

/// The [`CaseTable`] entry that leaves a character as it is.
const UNCHANGED: u32 = 1 << 24;

impl CaseTable {
    /// The width of the non-ASCII character whose UTF-8 bytes start `raw` (little-endian) and
    /// its entry. Decodes every form and picks one, so that the kind of character costs no
    /// branch.
    #[inline(always)]
    fn entry(&self, raw: u32) -> (usize, u32) {
        let (first, second, third, fourth) = (
            raw & 0xFF,
            raw >> 8 & 0x3F,
            raw >> 16 & 0x3F,
            raw >> 24 & 0x3F,
        );
        let width = WIDTHS[(first >> 4) as usize];
        let two = (first & 0x1F) << 6 | second;
        let three = (first & 0x0F) << 12 | second << 6 | third;
        let four = (first & 0x07) << 18 | second << 12 | third << 6 | fourth;
        let code = if width == 2 { two } else { three };
        let entry = self.entries[code as usize & 0xFFFF];
        let four_byte = if four >= FOUR_BYTE_CASELESS {
            UNCHANGED
        } else {
            0
        };
        (
            usize::from(width),
            if width == 4 { four_byte } else { entry },
        )
    }
}

fn case_table() -> &'static CaseTable {
    static TABLE: OnceLock<CaseTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let entries: Vec<u32> = (0..0x10000u32)
            .map(|code| {
                // Surrogates never occur in a `str`.
                let Some(c) = char::from_u32(code) else {
                    return 0;
                };
                let width = c.len_utf8();
                if is_python_whitespace(c) {
                    return 0x0020_2020 | 1 << 24;
                }
                let lowered: String = c.to_lowercase().collect();
                let mut bytes = [0u8; 4];
                if c == '\u{3a3}' || lowered.len() > 3 {
                    return 0;
                }
                bytes[..lowered.len()].copy_from_slice(lowered.as_bytes());
                bytes[3] = u8::from(lowered.len() == width);
                u32::from_le_bytes(bytes)
            })
            .collect();
        let entries = entries
            .into_boxed_slice()
            .try_into()
            .expect("one entry per code point below U+10000");
        CaseTable { entries }
    })
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
        // The scorer as this CPU runs it, and the portable build of the same code.
        let mut scorer = WordRecall::new();
        let mut portable = WordRecall::new();
        for case in 0..3000 {
            // Mostly short texts; every tenth one long enough for many 64-byte chunks.
            let most = if case % 10 == 0 { 400 } else { 40 };
            let mut text = || -> String {
                let count = next(most);
                (0..count)
                    .map(|_| pieces[next(pieces.len())])
                    .collect::<Vec<_>>()
                    .join(if next(2) == 0 { " " } else { "" })
            };
            let (output, reference) = (text(), text());
            let expected = word_recall_of_sets(&output, &reference);
            assert_eq!(
                scorer.score(&output, &reference),
                expected,
                "case {case}: {output:?} / {reference:?}"
            );
            assert_eq!(portable.score_portable(&output, &reference), expected);
            assert_eq!(
                scorer.score(&reference, &reference),
                word_recall_of_sets(&reference, &reference)
            );
        }
    }

    #[test]
    fn matches_the_set_statement_on_random_code_points() {
        // Any character at all, half of them from below U+0800 where most case pairs are, and
        // one in eight a space, so that words of every length meet every kind of character.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |bound: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(bound)) as u32
        };
        let mut scorer = WordRecall::new();
        let mut portable = WordRecall::new();
        for case in 0..2000 {
            let mut text = || -> String {
                let count = next(300);
                (0..count)
                    .map(|_| match next(16) {
                        0 | 1 => ' ',
                        2..=9 => char::from_u32(next(0x800)).unwrap_or('a'),
                        _ => char::from_u32(next(0x11_0000)).unwrap_or('\u{3a3}'),
                    })
                    .collect()
            };
            let (output, reference) = (text(), text());
            let expected = word_recall_of_sets(&output, &reference);
            assert_eq!(scorer.score(&output, &reference), expected, "case {case}");
            assert_eq!(portable.score_portable(&output, &reference), expected);
            // The reference against a case-changed copy of itself: most words must match.
            let upper = reference.to_uppercase();
            assert_eq!(
                scorer.score(&upper, &reference),
                word_recall_of_sets(&upper, &reference),
                "case {case}, upper-cased"
            );
        }
    }

    #[test]
    fn case_table_sends_only_sigma_and_length_changes_to_the_word_path_with_their_lower_case() {
        let table = case_table();
        for (code, &entry) in table.entries.iter().enumerate() {
            if let Some(c) = char::from_u32(code as u32) {
                let lower = c.to_lowercase().collect::<String>();
                let same_length = lower.len() == c.len_utf8();
                let special = c == '\u{3a3}' || !same_length;
                assert_eq!(entry >> 24 == 0, special, "{c:?}");
                if c == '\u{3a3}' {
                    assert_eq!(entry, 0);
                } else if !is_python_whitespace(c) {
                    let bytes = entry.to_le_bytes();
                    assert_eq!(&bytes[..lower.len()], lower.as_bytes(), "{c:?}");
                    assert!(bytes[lower.len()..3].iter().all(|&byte| byte == 0), "{c:?}");
                }
            }
        }
        let caseless = (FOUR_BYTE_CASELESS..=0x10FFFF).filter_map(char::from_u32);
        for c in caseless {
            let mut lower = c.to_lowercase();
            assert!(lower.next() == Some(c) && lower.next().is_none(), "{c:?}");
            assert!(!is_python_whitespace(c));
        }
    }

    #[test]
    fn swar_lowering_matches_the_block_lowering_on_every_byte() {
        for byte in 0..=255u8 {
            let mut block = [b'x'; 16];
            block[1] = byte;
            let (lowered, _) = ascii_block(&block);
            let swar = lower_ascii_bytes(u32::from_le_bytes([b'Q', byte, 0xC3, b'\t']));
            assert_eq!(
                swar.to_le_bytes(),
                [b'q', lowered[1], 0xC3, b' '],
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn batch_and_parallel_agree_with_single_pairs() {
        let pairs = [("a b", "b c"), ("ΣΑΣ x", "σας"), ("", "x"), ("Y", "y Y")];
        let single: Vec<f64> = pairs.iter().map(|(o, r)| word_recall(o, r)).collect();
        assert_eq!(WordRecall::new().score_pairs(&pairs), single);
        assert_eq!(word_recall_parallel(&pairs, 3), single);
        assert_eq!(word_recall_parallel(&pairs, 0), single);
        // Enough pairs for several blocks, each scored where it belongs.
        let many: Vec<(String, String)> = (0..3500)
            .map(|i| (format!("w{} x{}", i % 7, i % 3), format!("w{} Y{i}", i % 5)))
            .collect();
        let single: Vec<f64> = many.iter().map(|(o, r)| word_recall(o, r)).collect();
        assert!(single.iter().any(|&score| score > 0.0));
        assert_eq!(word_recall_parallel(&many, 2), single);
        assert_eq!(word_recall_parallel(&many, 5), single);
    }

    #[test]
    fn mean_of_no_pairs_is_zero() {
        assert_eq!(mean_word_recall([]), 0.0);
        assert_eq!(mean_word_recall([("a", "a b"), ("4", "4")]), 0.75);
    }
}
