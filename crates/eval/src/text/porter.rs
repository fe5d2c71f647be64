//! The Porter stemmer, as NLTK's `PorterStemmer()` runs it in its default `NLTK_EXTENSIONS` mode.
//!
//! `rouge-score` constructs `nltk.stem.porter.PorterStemmer()` with no arguments, which selects
//! `NLTK_EXTENSIONS`: Martin Porter's published algorithm plus his later fixes and NLTK's own
//! changes (a table of irregular forms, `ies`/`ied` on four-letter words, `y -> i` only after a
//! consonant, the two-letter `*o` condition, recursive `alli`, `fulli` and `logi` in step 2).
//!
//! The steps work on a slice of letters generic over `u8` (the fast path for ASCII words, which
//! is all that ROUGE's tokenizer produces) and `char` (any other word), so Python's code-point
//! indexing is reproduced for every input. Letters other than `a e i o u y` count as consonants,
//! exactly as in NLTK, whatever script they come from.

/// A letter of a word: an ASCII byte or a Unicode scalar value.
trait Letter: Copy + PartialEq + From<u8> {}
impl<T: Copy + PartialEq + From<u8>> Letter for T {}

/// Irregular forms that NLTK maps directly to a stem, skipping every step.
const IRREGULAR_FORMS: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

/// Stems `word` exactly as NLTK's `PorterStemmer().stem(word)` does (lower-casing it first).
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some(irregular) = irregular_stem(&lower) {
        return irregular.to_owned();
    }
    // NLTK tests the length of the word as given, before lower-casing.
    if word.chars().count() <= 2 {
        return lower;
    }
    if lower.is_ascii() {
        let mut letters = lower.into_bytes();
        run_steps(&mut letters);
        // Only ASCII bytes were removed or added, so the bytes stay valid UTF-8.
        String::from_utf8(letters).unwrap_or_default()
    } else {
        let mut letters: Vec<char> = lower.chars().collect();
        run_steps(&mut letters);
        letters.into_iter().collect()
    }
}

/// Stems a word that is already lower-case ASCII, appending the stem to `out`.
///
/// This is the fast path for ROUGE tokens; it gives the same result as [`stem`].
pub(crate) fn stem_lowercase_ascii_into(word: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let irregular = std::str::from_utf8(word).ok().and_then(irregular_stem);
    if let Some(irregular) = irregular {
        out.extend_from_slice(irregular.as_bytes());
        return;
    }
    out.extend_from_slice(word);
    if word.len() > 2 {
        let mut letters = out.split_off(start);
        run_steps(&mut letters);
        out.extend_from_slice(&letters);
    }
}

fn irregular_stem(word: &str) -> Option<&'static str> {
    IRREGULAR_FORMS
        .iter()
        .find(|(form, _)| *form == word)
        .map(|(_, stem)| *stem)
}

fn run_steps<T: Letter>(word: &mut Vec<T>) {
    step1a(word);
    step1b(word);
    step1c(word);
    step2(word);
    step3(word);
    step4(word);
    step5a(word);
    step5b(word);
}

// ---- letter classes and the measure ----

fn is(letter: impl Letter, ascii: u8) -> bool {
    letter == ascii.into()
}

fn is_vowel<T: Letter>(letter: T) -> bool {
    b"aeiou".iter().any(|&vowel| is(letter, vowel))
}

/// Porter's consonant test: `y` is a consonant unless it follows a consonant.
fn is_consonant<T: Letter>(word: &[T], index: usize) -> bool {
    // A run of y's alternates starting from the letter before it; walk back iteratively so a
    // hostile "yyyy…" word cannot exhaust the stack.
    let mut start = index;
    while start > 0 && is(word[start], b'y') {
        start -= 1;
    }
    let base_is_consonant = !is_vowel(word[start]);
    let ys_after_base = index - start;
    base_is_consonant == ys_after_base.is_multiple_of(2)
}

/// Consonant (`true`) or vowel for every letter, in one left-to-right pass.
fn consonant_flags<T: Letter>(word: &[T]) -> impl Iterator<Item = bool> + '_ {
    let mut previous_is_consonant = false;
    word.iter().enumerate().map(move |(index, &letter)| {
        let consonant = if is_vowel(letter) {
            false
        } else if is(letter, b'y') {
            index == 0 || !previous_is_consonant
        } else {
            true
        };
        previous_is_consonant = consonant;
        consonant
    })
}

/// Porter's measure m: the number of vowel-to-consonant transitions in `[C](VC){m}[V]`.
fn measure<T: Letter>(stem: &[T]) -> usize {
    let mut transitions = 0;
    let mut previous_is_vowel = false;
    for consonant in consonant_flags(stem) {
        if consonant && previous_is_vowel {
            transitions += 1;
        }
        previous_is_vowel = !consonant;
    }
    transitions
}

fn contains_vowel<T: Letter>(stem: &[T]) -> bool {
    consonant_flags(stem).any(|consonant| !consonant)
}

/// Condition `*d`: the word ends with a double consonant.
fn ends_double_consonant<T: Letter>(word: &[T]) -> bool {
    let len = word.len();
    len >= 2 && word[len - 1] == word[len - 2] && is_consonant(word, len - 1)
}

/// Condition `*o`: the word ends consonant-vowel-consonant (last not w, x, y), or, as an NLTK
/// extension, is a two-letter vowel-consonant word.
fn ends_cvc<T: Letter>(word: &[T]) -> bool {
    let len = word.len();
    let classic = len >= 3
        && is_consonant(word, len - 3)
        && !is_consonant(word, len - 2)
        && is_consonant(word, len - 1)
        && !b"wxy".iter().any(|&letter| is(word[len - 1], letter));
    let two_letter = len == 2 && !is_consonant(word, 0) && is_consonant(word, 1);
    classic || two_letter
}

fn ends_with<T: Letter>(word: &[T], suffix: &[u8]) -> bool {
    word.len() >= suffix.len()
        && word[word.len() - suffix.len()..]
            .iter()
            .zip(suffix)
            .all(|(&letter, &ascii)| is(letter, ascii))
}

fn replace_suffix<T: Letter>(word: &mut Vec<T>, suffix_len: usize, replacement: &[u8]) {
    word.truncate(word.len() - suffix_len);
    word.extend(replacement.iter().map(|&ascii| T::from(ascii)));
}

// ---- rule lists ----

/// When a suffix rule may fire, given the stem left after removing the suffix.
#[derive(Clone, Copy)]
enum Condition {
    Always,
    MeasureAbove0,
    MeasureAbove1,
    /// m > 1 and the stem ends in `s` or `t` (step 4's `ion`).
    MeasureAbove1EndsSOrT,
    /// NLTK's `logi`: m > 0 of the word minus its last three letters (the stem plus `l`).
    MeasureAbove0KeepingL,
}

impl Condition {
    fn holds<T: Letter>(self, stem: &[T], word: &[T]) -> bool {
        match self {
            Condition::Always => true,
            Condition::MeasureAbove0 => measure(stem) > 0,
            Condition::MeasureAbove1 => measure(stem) > 1,
            Condition::MeasureAbove1EndsSOrT => {
                measure(stem) > 1
                    && stem
                        .last()
                        .is_some_and(|&last| is(last, b's') || is(last, b't'))
            }
            Condition::MeasureAbove0KeepingL => measure(&word[..word.len() - 3]) > 0,
        }
    }
}

type Rule = (&'static [u8], &'static [u8], Condition);

/// Applies the first rule whose suffix the word ends with, if its condition holds.
///
/// Like NLTK, a matching suffix whose condition fails stops the search.
fn apply_rule_list<T: Letter>(word: &mut Vec<T>, rules: &[Rule]) {
    for &(suffix, replacement, condition) in rules {
        if ends_with(word, suffix) {
            let stem = &word[..word.len() - suffix.len()];
            if condition.holds(stem, word) {
                replace_suffix(word, suffix.len(), replacement);
            }
            return;
        }
    }
}

// ---- the steps ----

fn step1a<T: Letter>(word: &mut Vec<T>) {
    if ends_with(word, b"ies") && word.len() == 4 {
        replace_suffix(word, 3, b"ie");
        return;
    }
    use Condition::Always;
    apply_rule_list(
        word,
        &[
            (b"sses", b"ss", Always),
            (b"ies", b"i", Always),
            (b"ss", b"ss", Always),
            (b"s", b"", Always),
        ],
    );
}

fn step1b<T: Letter>(word: &mut Vec<T>) {
    if ends_with(word, b"ied") {
        let replacement: &[u8] = if word.len() == 4 { b"ie" } else { b"i" };
        replace_suffix(word, 3, replacement);
        return;
    }
    if ends_with(word, b"eed") {
        if measure(&word[..word.len() - 3]) > 0 {
            replace_suffix(word, 3, b"ee");
        }
        return;
    }
    let removed = [b"ed".as_slice(), b"ing"].into_iter().find(|suffix| {
        ends_with(word, suffix) && contains_vowel(&word[..word.len() - suffix.len()])
    });
    let Some(removed) = removed else {
        return;
    };
    word.truncate(word.len() - removed.len());
    tidy_after_step1b(word);
}

/// Step 1b's second half, after `ed` or `ing` was removed: restore an `e` or undouble a letter.
fn tidy_after_step1b<T: Letter>(stem: &mut Vec<T>) {
    if [b"at".as_slice(), b"bl", b"iz"]
        .iter()
        .any(|suffix| ends_with(stem, suffix))
    {
        stem.push(T::from(b'e'));
    } else if ends_double_consonant(stem) {
        let last = stem[stem.len() - 1];
        if !b"lsz".iter().any(|&letter| is(last, letter)) {
            stem.pop();
        }
    } else if measure(stem) == 1 && ends_cvc(stem) {
        stem.push(T::from(b'e'));
    }
}

fn step1c<T: Letter>(word: &mut Vec<T>) {
    // NLTK: y -> i only after a consonant that is not the whole stem ("happy" but not "by").
    if ends_with(word, b"y") {
        let stem_len = word.len() - 1;
        if stem_len > 1 && is_consonant(word, stem_len - 1) {
            replace_suffix(word, 1, b"i");
        }
    }
}

fn step2<T: Letter>(word: &mut Vec<T>) {
    if ends_with(word, b"alli") && measure(&word[..word.len() - 4]) > 0 {
        replace_suffix(word, 4, b"al");
        step2(word);
        return;
    }
    use Condition::{MeasureAbove0 as M0, MeasureAbove0KeepingL};
    apply_rule_list(
        word,
        &[
            (b"ational", b"ate", M0),
            (b"tional", b"tion", M0),
            (b"enci", b"ence", M0),
            (b"anci", b"ance", M0),
            (b"izer", b"ize", M0),
            (b"bli", b"ble", M0),
            (b"alli", b"al", M0),
            (b"entli", b"ent", M0),
            (b"eli", b"e", M0),
            (b"ousli", b"ous", M0),
            (b"ization", b"ize", M0),
            (b"ation", b"ate", M0),
            (b"ator", b"ate", M0),
            (b"alism", b"al", M0),
            (b"iveness", b"ive", M0),
            (b"fulness", b"ful", M0),
            (b"ousness", b"ous", M0),
            (b"aliti", b"al", M0),
            (b"iviti", b"ive", M0),
            (b"biliti", b"ble", M0),
            (b"fulli", b"ful", M0),
            (b"logi", b"log", MeasureAbove0KeepingL),
        ],
    );
}

fn step3<T: Letter>(word: &mut Vec<T>) {
    use Condition::MeasureAbove0 as M0;
    apply_rule_list(
        word,
        &[
            (b"icate", b"ic", M0),
            (b"ative", b"", M0),
            (b"alize", b"al", M0),
            (b"iciti", b"ic", M0),
            (b"ical", b"ic", M0),
            (b"ful", b"", M0),
            (b"ness", b"", M0),
        ],
    );
}

fn step4<T: Letter>(word: &mut Vec<T>) {
    use Condition::{MeasureAbove1 as M1, MeasureAbove1EndsSOrT};
    apply_rule_list(
        word,
        &[
            (b"al", b"", M1),
            (b"ance", b"", M1),
            (b"ence", b"", M1),
            (b"er", b"", M1),
            (b"ic", b"", M1),
            (b"able", b"", M1),
            (b"ible", b"", M1),
            (b"ant", b"", M1),
            (b"ement", b"", M1),
            (b"ment", b"", M1),
            (b"ent", b"", M1),
            (b"ion", b"", MeasureAbove1EndsSOrT),
            (b"ou", b"", M1),
            (b"ism", b"", M1),
            (b"ate", b"", M1),
            (b"iti", b"", M1),
            (b"ous", b"", M1),
            (b"ive", b"", M1),
            (b"ize", b"", M1),
        ],
    );
}

fn step5a<T: Letter>(word: &mut Vec<T>) {
    if !ends_with(word, b"e") {
        return;
    }
    let stem = &word[..word.len() - 1];
    let m = measure(stem);
    if m > 1 || (m == 1 && !ends_cvc(stem)) {
        word.pop();
    }
}

fn step5b<T: Letter>(word: &mut Vec<T>) {
    // "ll" -> "l" when the word without its last letter has m > 1.
    if ends_with(word, b"ll") && measure(&word[..word.len() - 1]) > 1 {
        word.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_porter_paper_examples() {
        let cases = [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("agreed", "agre"),
            ("hopping", "hop"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("controll", "control"),
            ("skies", "sky"),
        ];
        for (word, expected) in cases {
            assert_eq!(stem(word), expected, "stem({word})");
        }
    }

    #[test]
    fn ascii_fast_path_agrees_with_stem() {
        for word in ["running", "yyyyy", "ab", "abc1ing", "news", "analogousli"] {
            let mut out = Vec::new();
            stem_lowercase_ascii_into(word.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), stem(word));
        }
    }

    #[test]
    fn non_ascii_words_do_not_panic() {
        assert_eq!(stem("ÉTÉS"), "été");
        assert_eq!(stem("İ"), "i\u{307}");
    }
}
