//! ROUGE-N, ROUGE-L and ROUGE-Lsum as Google's `rouge-score` package (0.1.2) computes them.
//!
//! Tokenisation ([`RougeTokenizer`]) follows `rouge_score.tokenize.tokenize`: lower-case the
//! text (Python `str.lower()`), replace every run of characters outside `[a-z0-9]` with a space,
//! split, and, with stemming on, stem only tokens longer than three characters with NLTK's Porter
//! stemmer (see [`super::porter`]). Non-ASCII letters are therefore separators: a text in Chinese
//! or Greek has no tokens at all, and "İ" lower-cases to "i" plus a combining dot, so it yields
//! the token "i".
//!
//! Scores use `rouge-score`'s argument order, target (reference) first. Precision divides by
//! the prediction's count, recall by the target's, and F = 2PR / (P + R) (0 when both are 0).
//! ROUGE-N counts clipped n-gram matches and divides by `max(count, 1)`. ROUGE-L uses the longest
//! common subsequence and is 0 when either side has no tokens. ROUGE-Lsum splits both texts on
//! `"\n"` (the `split_summaries=False` default), drops empty lines, and takes the union LCS of
//! each target line against every prediction line, picking the same LCS as `rouge-score` when
//! several exist, so it matches exactly.
//!
//! Lower-casing uses Rust's Unicode tables; only `İ` (U+0130) and the Kelvin sign lower-case to
//! ASCII in Python 3.11, and both are handled the same way here.
//!
//! Cost: ROUGE-L is O(|target| · |prediction|) time; ROUGE-Lsum also keeps one table of that
//! size per pair of lines. Callers that score untrusted text should cap its length first.

use std::hash::Hash;

use super::interner::{FastMap, Interner};
use super::porter;

/// Precision, recall and F-measure of one ROUGE variant.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RougeScore {
    /// Matches divided by the prediction's size.
    pub precision: f64,
    /// Matches divided by the target's size.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub fmeasure: f64,
}

impl RougeScore {
    fn from_matches(matches: usize, prediction_size: usize, target_size: usize) -> Self {
        Self::from_precision_recall(
            matches as f64 / prediction_size as f64,
            matches as f64 / target_size as f64,
        )
    }

    fn from_precision_recall(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        RougeScore {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// The four variants `rouge-score` users usually ask for, computed together.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RougeScores {
    /// ROUGE-1 (unigrams).
    pub rouge1: RougeScore,
    /// ROUGE-2 (bigrams).
    pub rouge2: RougeScore,
    /// ROUGE-L over the whole texts.
    pub rouge_l: RougeScore,
    /// ROUGE-Lsum: summary-level LCS over `"\n"`-separated lines.
    pub rouge_lsum: RougeScore,
}

/// Errors from ROUGE scoring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RougeError {
    /// ROUGE-N needs n >= 1.
    #[error("ROUGE-N needs an n-gram order of at least 1, got 0")]
    ZeroOrder,
}

/// `rouge-score`'s default tokenizer, with or without Porter stemming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RougeTokenizer {
    use_stemmer: bool,
}

impl RougeTokenizer {
    /// Tokens longer than three characters that stemming applies to; shorter ones are kept.
    const MIN_STEMMED_LEN: usize = 4;

    /// A tokenizer that stems tokens when `use_stemmer` is true.
    pub fn new(use_stemmer: bool) -> Self {
        RougeTokenizer { use_stemmer }
    }

    /// The lower-case `[a-z0-9]+` tokens of `text`, stemmed when stemming is on.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut current = Vec::new();
        for c in text.chars() {
            if c.is_ascii() {
                self.push_lowered(c.to_ascii_lowercase(), &mut current, &mut tokens);
            } else {
                // A few non-ASCII letters lower-case to ASCII ("İ" -> "i" + U+0307, Kelvin "K").
                for lowered in c.to_lowercase() {
                    self.push_lowered(lowered, &mut current, &mut tokens);
                }
            }
        }
        self.finish_token(&mut current, &mut tokens);
        tokens
    }

    fn push_lowered(&self, lowered: char, current: &mut Vec<u8>, tokens: &mut Vec<String>) {
        if lowered.is_ascii_lowercase() || lowered.is_ascii_digit() {
            current.push(lowered as u8);
        } else {
            self.finish_token(current, tokens);
        }
    }

    fn finish_token(&self, current: &mut Vec<u8>, tokens: &mut Vec<String>) {
        if current.is_empty() {
            return;
        }
        let mut token = Vec::with_capacity(current.len());
        if self.use_stemmer && current.len() >= Self::MIN_STEMMED_LEN {
            porter::stem_lowercase_ascii_into(current, &mut token);
        } else {
            token.extend_from_slice(current);
        }
        current.clear();
        // Tokens hold only ASCII letters and digits, so this conversion cannot fail.
        if let Ok(token) = String::from_utf8(token) {
            tokens.push(token);
        }
    }
}

/// ROUGE-N between tokenised texts: clipped n-gram overlap.
pub fn rouge_n<T: Eq + Hash>(
    target: &[T],
    prediction: &[T],
    n: usize,
) -> Result<RougeScore, RougeError> {
    if n == 0 {
        return Err(RougeError::ZeroOrder);
    }
    let target_ngrams = count_ngrams(target, n);
    let prediction_ngrams = count_ngrams(prediction, n);
    let matches: usize = target_ngrams
        .iter()
        .map(|(ngram, &count)| count.min(prediction_ngrams.get(ngram).copied().unwrap_or(0)))
        .sum();
    let prediction_count = prediction.len().saturating_sub(n - 1);
    let target_count = target.len().saturating_sub(n - 1);
    Ok(RougeScore::from_matches(
        matches,
        prediction_count.max(1),
        target_count.max(1),
    ))
}

fn count_ngrams<T: Eq + Hash>(tokens: &[T], n: usize) -> FastMap<&[T], usize> {
    let mut counts = FastMap::default();
    for ngram in tokens.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// ROUGE-L between tokenised texts: longest common subsequence over the whole sequences.
pub fn rouge_l<T: Eq>(target: &[T], prediction: &[T]) -> RougeScore {
    if target.is_empty() || prediction.is_empty() {
        return RougeScore::default();
    }
    let lcs = lcs_length(target, prediction);
    RougeScore::from_matches(lcs, prediction.len(), target.len())
}

/// Length of the longest common subsequence, in O(|b|) memory.
fn lcs_length<T: Eq>(a: &[T], b: &[T]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for item_a in a {
        for (j, item_b) in b.iter().enumerate() {
            current[j + 1] = if item_a == item_b {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// ROUGE-Lsum between two texts whose summary lines are separated by `"\n"`.
pub fn rouge_lsum(target: &str, prediction: &str, tokenizer: &RougeTokenizer) -> RougeScore {
    let target_lines = tokenize_lines(target, tokenizer);
    let prediction_lines = tokenize_lines(prediction, tokenizer);
    rouge_lsum_tokens(&target_lines, &prediction_lines)
}

fn tokenize_lines(text: &str, tokenizer: &RougeTokenizer) -> Vec<Vec<String>> {
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| tokenizer.tokenize(line))
        .collect()
}

/// ROUGE-Lsum between texts already split into lines of tokens (summary-level union LCS).
pub fn rouge_lsum_tokens<T: Eq + Hash>(target: &[Vec<T>], prediction: &[Vec<T>]) -> RougeScore {
    let target_size: usize = target.iter().map(Vec::len).sum();
    let prediction_size: usize = prediction.iter().map(Vec::len).sum();
    if target_size == 0 || prediction_size == 0 {
        return RougeScore::default();
    }
    let mut target_left = token_counts(target);
    let mut prediction_left = token_counts(prediction);
    let mut hits = 0;
    for target_line in target {
        for token in union_lcs(target_line, prediction) {
            let in_prediction = prediction_left.get_mut(token);
            let in_target = target_left.get_mut(token);
            if let (Some(p), Some(t)) = (in_prediction, in_target)
                && *p > 0
                && *t > 0
            {
                hits += 1;
                *p -= 1;
                *t -= 1;
            }
        }
    }
    RougeScore::from_matches(hits, prediction_size, target_size)
}

fn token_counts<T: Eq + Hash>(lines: &[Vec<T>]) -> FastMap<&T, usize> {
    let mut counts = FastMap::default();
    for token in lines.iter().flatten() {
        *counts.entry(token).or_insert(0) += 1;
    }
    counts
}

/// Tokens of `target_line` that lie on the chosen LCS with any prediction line, in line order.
fn union_lcs<'a, T: Eq>(target_line: &'a [T], prediction: &[Vec<T>]) -> Vec<&'a T> {
    let mut on_some_lcs = vec![false; target_line.len()];
    for prediction_line in prediction {
        for index in lcs_indices(target_line, prediction_line) {
            on_some_lcs[index] = true;
        }
    }
    target_line
        .iter()
        .zip(on_some_lcs)
        .filter_map(|(token, on_lcs)| on_lcs.then_some(token))
        .collect()
}

/// Indices into `a` of one LCS of `a` and `b`, chosen by the same backtracking as `rouge-score`.
fn lcs_indices<T: Eq>(a: &[T], b: &[T]) -> Vec<usize> {
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let (mut i, mut j) = (a.len(), b.len());
    let mut indices = Vec::new();
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            indices.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i * width + j - 1] > table[(i - 1) * width + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    indices
}

/// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of `prediction` against `target`.
pub fn rouge_scores(target: &str, prediction: &str, tokenizer: &RougeTokenizer) -> RougeScores {
    // "\n" separates tokens, so the whole text's tokens are its lines' tokens end to end: tokenise
    // once, and compare interned ids rather than strings.
    let target_lines = tokenize_lines(target, tokenizer);
    let prediction_lines = tokenize_lines(prediction, tokenizer);
    let mut interner = Interner::default();
    let target_ids = intern_lines(&mut interner, &target_lines);
    let prediction_ids = intern_lines(&mut interner, &prediction_lines);
    let target_all = target_ids.concat();
    let prediction_all = prediction_ids.concat();
    let rouge_n_of = |n| rouge_n(&target_all, &prediction_all, n).unwrap_or_default();
    RougeScores {
        rouge1: rouge_n_of(1),
        rouge2: rouge_n_of(2),
        rouge_l: rouge_l(&target_all, &prediction_all),
        rouge_lsum: rouge_lsum_tokens(&target_ids, &prediction_ids),
    }
}

fn intern_lines<'a>(interner: &mut Interner<'a>, lines: &'a [Vec<String>]) -> Vec<Vec<u32>> {
    lines
        .iter()
        .map(|line| interner.ids(line.iter().map(String::as_str)))
        .collect()
}

/// Scores against several targets, keeping for each variant the target with the highest F
/// (the first one on ties), like `RougeScorer.score_multi`. `None` when there are no targets.
pub fn rouge_scores_multi<S: AsRef<str>>(
    targets: &[S],
    prediction: &str,
    tokenizer: &RougeTokenizer,
) -> Option<RougeScores> {
    let all: Vec<RougeScores> = targets
        .iter()
        .map(|target| rouge_scores(target.as_ref(), prediction, tokenizer))
        .collect();
    let best = |variant: fn(&RougeScores) -> RougeScore| {
        all.iter().map(variant).reduce(|best, candidate| {
            if candidate.fmeasure > best.fmeasure {
                candidate
            } else {
                best
            }
        })
    };
    Some(RougeScores {
        rouge1: best(|s| s.rouge1)?,
        rouge2: best(|s| s.rouge2)?,
        rouge_l: best(|s| s.rouge_l)?,
        rouge_lsum: best(|s| s.rouge_lsum)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    #[test]
    fn tokenizer_keeps_ascii_alphanumerics_only() {
        let tokens = RougeTokenizer::new(false).tokenize("Héllo, WORLD-42! İx \u{212a}m 中文");
        assert_eq!(tokens, ["h", "llo", "world", "42", "i", "x", "km"]);
    }

    #[test]
    fn tokenizer_stems_only_long_tokens() {
        // "was" would stem to "wa", but three-letter tokens are left alone.
        let tokens = RougeTokenizer::new(true).tokenize("was running ties");
        assert_eq!(tokens, ["was", "run", "tie"]);
    }

    #[test]
    fn rouge_n_clips_repeated_ngrams() {
        let score = rouge_n(&words("the the cat"), &words("the the the the"), 1).unwrap();
        assert_eq!(score.precision, 0.5);
        assert_eq!(score.recall, 2.0 / 3.0);
        assert_eq!(
            rouge_n(&words("a"), &words("a"), 0),
            Err(RougeError::ZeroOrder)
        );
    }

    #[test]
    fn rouge_l_uses_subsequence_not_substring() {
        let score = rouge_l(&words("a b c d"), &words("a x c y d"));
        assert_eq!((score.precision, score.recall), (0.6, 0.75));
        assert_eq!(rouge_l::<&str>(&[], &words("a")), RougeScore::default());
    }

    #[test]
    fn multi_needs_a_target() {
        let tokenizer = RougeTokenizer::default();
        assert_eq!(rouge_scores_multi::<&str>(&[], "x", &tokenizer), None);
    }
}
