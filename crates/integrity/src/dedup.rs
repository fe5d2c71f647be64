//! Exact and near duplicate detection over canonical texts.
//!
//! Both work "in submission order": the caller passes texts sorted by priority (earliest block or
//! receipt first), and every text is compared only with texts before it, so the earliest copy is
//! the original and every later one is the duplicate.

use crate::minhash::{MinHashParams, MinHasher, ParamError, estimated_jaccard, hash_bytes, mix64};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// SHA-256 of a canonical text; equal hashes mean the same data up to cosmetic edits.
pub fn content_hash(canonical: &str) -> [u8; 32] {
    Sha256::digest(canonical.as_bytes()).into()
}

/// For each text, the index of the first earlier text with the same canonical form, if any.
pub fn exact_duplicates<S: AsRef<str> + Sync>(canonical_texts: &[S]) -> Vec<Option<usize>> {
    let hashes: Vec<[u8; 32]> = canonical_texts
        .par_iter()
        .map(|t| content_hash(t.as_ref()))
        .collect();
    let mut first_seen: HashMap<[u8; 32], usize> = HashMap::with_capacity(hashes.len());
    hashes
        .iter()
        .enumerate()
        .map(|(index, hash)| {
            let first = *first_seen.entry(*hash).or_insert(index);
            (first != index).then_some(first)
        })
        .collect()
}

/// A near-duplicate match: which indexed text, and the estimated Jaccard similarity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NearMatch {
    /// Index of the matching text in insertion order.
    pub id: usize,
    /// Estimated Jaccard similarity of the two texts' shingle sets.
    pub jaccard: f32,
}

/// Keys in the band tables are already well-mixed hashes, so hashing them again is wasted work.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(bytes, self.0);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// One LSH band: key -> the newest id with that key. Older ids with the same key are chained
/// through `previous`, so inserting never allocates per entry.
#[derive(Default)]
struct BandTable {
    newest: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    previous: Vec<u32>,
}

const NO_ID: u32 = u32::MAX;

impl BandTable {
    fn insert(&mut self, key: u64, id: u32) {
        let previous = self.newest.insert(key, id).unwrap_or(NO_ID);
        self.previous.push(previous);
    }

    /// Ids stored under `key`, newest first.
    fn ids(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let first = self.newest.get(&key).copied();
        std::iter::successors(first, |&id| {
            Some(self.previous[id as usize]).filter(|&p| p != NO_ID)
        })
    }
}

/// A MinHash LSH index: insert texts, then ask which indexed texts are near duplicates of a text.
pub struct NearDupIndex {
    hasher: MinHasher,
    bands: usize,
    rows: usize,
    threshold: f32,
    /// Signatures of every inserted text, back to back; candidates are verified against them.
    signatures: Vec<u32>,
    tables: Vec<BandTable>,
}

impl NearDupIndex {
    /// Builds an empty index; fails on invalid parameters.
    pub fn new(params: &MinHashParams) -> Result<Self, ParamError> {
        let (bands, rows) = params.lsh_shape()?;
        Ok(Self {
            hasher: MinHasher::new(params.num_perm, params.shingle_words, params.seed),
            bands,
            rows,
            threshold: params.threshold,
            signatures: Vec::new(),
            tables: (0..bands).map(|_| BandTable::default()).collect(),
        })
    }

    /// The (bands, rows) shape in use.
    pub fn lsh_shape(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }

    /// Number of texts inserted so far.
    pub fn len(&self) -> usize {
        self.signatures.len() / self.hasher.num_perm()
    }

    /// True when nothing has been inserted.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }

    /// The hasher, for computing signatures outside the index (e.g. in parallel).
    pub fn hasher(&self) -> &MinHasher {
        &self.hasher
    }

    /// Signatures of many canonical texts, computed in parallel; `None` for texts without tokens.
    pub fn signatures<S: AsRef<str> + Sync>(&self, canonical_texts: &[S]) -> Vec<Option<Vec<u32>>> {
        canonical_texts
            .par_iter()
            .map_init(Vec::new, |scratch, text| {
                let mut signature = vec![0; self.hasher.num_perm()];
                let shingles = self
                    .hasher
                    .signature_into(text.as_ref(), scratch, &mut signature);
                (shingles > 0).then_some(signature)
            })
            .collect()
    }

    /// Adds a signature and returns its id (ids count up from 0 in insertion order).
    pub fn insert_signature(&mut self, signature: &[u32]) -> usize {
        let id = self.len();
        for (band, table) in self.tables.iter_mut().enumerate() {
            let key = band_key(signature, band, self.rows);
            table.insert(key, id as u32);
        }
        self.signatures.extend_from_slice(signature);
        id
    }

    /// The indexed text most similar to `signature` with estimated Jaccard at or above the
    /// threshold; ties go to the earliest id.
    pub fn best_match(&self, signature: &[u32]) -> Option<NearMatch> {
        let num_perm = self.hasher.num_perm();
        let mut best: Option<NearMatch> = None;
        for (band, table) in self.tables.iter().enumerate() {
            for id in table.ids(band_key(signature, band, self.rows)) {
                let id = id as usize;
                let stored = &self.signatures[id * num_perm..(id + 1) * num_perm];
                let jaccard = estimated_jaccard(signature, stored);
                let better =
                    best.is_none_or(|b| jaccard > b.jaccard || (jaccard == b.jaccard && id < b.id));
                if jaccard >= self.threshold && better {
                    best = Some(NearMatch { id, jaccard });
                }
            }
        }
        best
    }

    /// Inserts a canonical text; returns its id, or `None` (and inserts nothing) when it has no tokens.
    pub fn insert(&mut self, canonical: &str) -> Option<usize> {
        let signature = self.signature_of(canonical)?;
        Some(self.insert_signature(&signature))
    }

    /// The best near-duplicate of a canonical text among those inserted.
    pub fn query(&self, canonical: &str) -> Option<NearMatch> {
        self.best_match(&self.signature_of(canonical)?)
    }

    fn signature_of(&self, canonical: &str) -> Option<Vec<u32>> {
        let mut signature = vec![0; self.hasher.num_perm()];
        (self
            .hasher
            .signature_into(canonical, &mut Vec::new(), &mut signature)
            > 0)
        .then_some(signature)
    }
}

fn band_key(signature: &[u32], band: usize, rows: usize) -> u64 {
    let values = &signature[band * rows..(band + 1) * rows];
    values.iter().fold(mix64(band as u64 + 1), |h, &v| {
        mix64(h.rotate_left(29) ^ u64::from(v))
    })
}

/// For each canonical text (in priority order), the best near duplicate among the texts before it.
/// Signatures are computed in parallel; the index is then filled in order.
pub fn near_duplicates<S: AsRef<str> + Sync>(
    canonical_texts: &[S],
    params: &MinHashParams,
) -> Result<Vec<Option<NearMatch>>, ParamError> {
    let mut index = NearDupIndex::new(params)?;
    let signatures = index.signatures(canonical_texts);
    // Ids in the index skip token-less texts, so map them back to positions in the input.
    let mut positions = Vec::with_capacity(signatures.len());
    let mut matches = Vec::with_capacity(signatures.len());
    for (position, signature) in signatures.iter().enumerate() {
        let Some(signature) = signature else {
            matches.push(None);
            continue;
        };
        let found = index.best_match(signature).map(|m| NearMatch {
            id: positions[m.id],
            ..m
        });
        matches.push(found);
        index.insert_signature(signature);
        positions.push(position);
    }
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonical_form;

    fn words(n: usize, tag: &str) -> Vec<String> {
        (0..n)
            .map(|i| format!("{tag}{}", (i * 7919) % 1009))
            .collect()
    }

    #[test]
    fn exact_duplicates_point_to_first_occurrence() {
        let texts = ["a b", "c", "a b", "a b", "d"];
        assert_eq!(
            exact_duplicates(&texts),
            vec![None, None, Some(0), Some(0), None]
        );
    }

    #[test]
    fn cosmetic_edits_are_exact_duplicates_after_canonical_form() {
        let texts: Vec<String> = [
            "The answer is 1,000.",
            "the  ANSWER is 1000",
            "the answer is 100",
        ]
        .iter()
        .map(|t| canonical_form(t))
        .collect();
        assert_eq!(exact_duplicates(&texts), vec![None, Some(0), None]);
    }

    #[test]
    fn near_duplicates_find_small_edits_and_not_unrelated_text() {
        let original = words(100, "w");
        let mut edited = original.clone();
        edited[10] = "changed".into();
        edited[60] = "other".into();
        let unrelated = words(100, "u");
        let texts = [original.join(" "), unrelated.join(" "), edited.join(" ")];
        let found = near_duplicates(&texts, &MinHashParams::default()).unwrap();
        assert_eq!(found[0], None);
        assert_eq!(found[1], None);
        let hit = found[2].expect("edited copy must match");
        assert_eq!(hit.id, 0);
        assert!(hit.jaccard > 0.8, "{hit:?}");
    }

    #[test]
    fn reordered_sentences_are_near_duplicates() {
        let sentences: Vec<String> = (0..8)
            .map(|s| words(14, &format!("s{s}x")).join(" "))
            .collect();
        let mut reordered = sentences.clone();
        reordered.reverse();
        let texts = [sentences.join(" "), reordered.join(" ")];
        let found = near_duplicates(&texts, &MinHashParams::default()).unwrap();
        assert_eq!(found[1].map(|m| m.id), Some(0));
    }

    #[test]
    fn heavy_rewrite_is_not_a_near_duplicate() {
        let original = words(100, "w");
        let mut edited = original.clone();
        for i in (0..100).step_by(3) {
            edited[i] = format!("new{i}");
        }
        let texts = [original.join(" "), edited.join(" ")];
        assert_eq!(
            near_duplicates(&texts, &MinHashParams::default()).unwrap()[1],
            None
        );
    }

    #[test]
    fn empty_texts_are_skipped_and_positions_stay_aligned() {
        let text = words(50, "w").join(" ");
        let texts = ["".to_string(), text.clone(), "".to_string(), text];
        let found = near_duplicates(&texts, &MinHashParams::default()).unwrap();
        assert_eq!(found[0], None);
        assert_eq!(found[2], None);
        assert_eq!(found[3].map(|m| m.id), Some(1));
    }
}
