//! Python `str` semantics that the SN37 checkers rely on.
//!
//! The reference checkers are Python one-liners (`text.split()`, `text.isupper()`,
//! `text.splitlines()`, ...). Their exact character classes decide edge cases, so each
//! is written out here once instead of using the nearest Rust method.

use unicode_general_category::{GeneralCategory, get_general_category};

/// Python's `str.isspace()` for one character.
///
/// Rust's `char::is_whitespace` is the Unicode `White_Space` property; CPython also counts
/// the ASCII separators U+001C..U+001F (bidirectional class B/S) as whitespace.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no argument: runs of whitespace separate words.
pub fn py_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_py_space).filter(|word| !word.is_empty())
}

/// Python's `str.strip()`, `lstrip()` and `rstrip()` with no argument.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// Python's `str.lstrip()` with no argument.
pub fn py_lstrip(text: &str) -> &str {
    text.trim_start_matches(is_py_space)
}

/// Python's `str.rstrip()` with no argument.
pub fn py_rstrip(text: &str) -> &str {
    text.trim_end_matches(is_py_space)
}

/// True for characters Python treats as line boundaries in `str.splitlines()`.
fn is_line_boundary(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}'
    ) || c == '\u{2028}'
        || c == '\u{2029}'
}

/// Python's `str.splitlines()` (without `keepends`): `\r\n` counts as one boundary and
/// a trailing boundary does not produce an empty last line.
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if !is_line_boundary(c) {
            continue;
        }
        lines.push(&text[start..index]);
        let mut end = index + c.len_utf8();
        if c == '\r' && chars.peek().map(|&(_, next)| next) == Some('\n') {
            chars.next();
            end += 1;
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// True for titlecase letters (general category Lt), which Python's `isupper`/`islower`
/// treat as disqualifying.
fn is_titlecase(c: char) -> bool {
    get_general_category(c) == GeneralCategory::TitlecaseLetter
}

/// Python's `str.isupper()`: at least one cased character and no lowercase or titlecase one.
pub fn py_isupper(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// Python's `str.islower()`: at least one cased character and no uppercase or titlecase one.
pub fn py_islower(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// Python's `str.lower()` (full case mapping, final sigma included).
pub fn py_lower(text: &str) -> String {
    text.to_lowercase()
}

/// The characters of Python's `string.punctuation` (ASCII only).
pub fn is_ascii_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// SN37's `get_words`: delete every `string.punctuation` character, then `split()`.
pub fn sn37_words(text: &str) -> Vec<String> {
    let without_punctuation: String = text.chars().filter(|&c| !is_ascii_punctuation(c)).collect();
    py_split(&without_punctuation).map(str::to_owned).collect()
}

/// Decimal digit (general category Nd), what `\d` matches in Python's `regex` module.
pub fn is_decimal_digit(c: char) -> bool {
    get_general_category(c) == GeneralCategory::DecimalNumber
}

/// A "word" character as `\w` in Python's `regex` module: alphabetic, marks,
/// decimal digits, connector punctuation and the joiners.
pub fn is_regex_word(c: char) -> bool {
    use GeneralCategory as G;
    c.is_alphabetic()
        || c == '\u{200c}'
        || c == '\u{200d}'
        || matches!(
            get_general_category(c),
            G::NonspacingMark
                | G::SpacingMark
                | G::EnclosingMark
                | G::DecimalNumber
                | G::ConnectorPunctuation
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_treats_ascii_separators_as_space() {
        assert_eq!(
            py_split("a\u{1c}b  c\u{a0}d").collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(py_splitlines("a\r\nb\rc\n"), ["a", "b", "c"]);
        assert_eq!(py_splitlines("\n\nx"), ["", "", "x"]);
        assert!(py_splitlines("").is_empty());
    }

    #[test]
    fn case_predicates_need_a_cased_character() {
        assert!(!py_isupper("123 !"));
        assert!(py_isupper("ABC 1"));
        assert!(!py_isupper("\u{1c5}")); // Dž titlecase
        assert!(py_islower("abc ß"));
        assert!(!py_islower("abC"));
    }

    #[test]
    fn words_drop_ascii_punctuation_only() {
        assert_eq!(
            sn37_words("Don't stop—now, ok?"),
            ["Dont", "stop—now", "ok"]
        );
    }
}
