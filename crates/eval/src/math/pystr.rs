//! Small Python `str` semantics that the reference code relies on.
//!
//! The reference normaliser is Python; where Python and Rust disagree on a character class, the result
//! of a rule changes. These helpers reproduce the Python behaviour closely enough for every golden case
//! in `fixtures/math`; remaining gaps are named on each function.

use std::sync::LazyLock;

use regex::Regex;

/// Python's `str.isspace` for one character: Rust's `White_Space` plus the four information separators
/// U+001C..U+001F, which Python counts as whitespace and Rust does not.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip()` with no argument.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `s.split()` with no argument: runs of whitespace separate words, no empty words.
pub(crate) fn py_split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|w| !w.is_empty())
}

static UNICODE_DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d$").expect("static regex is valid"));
static UNICODE_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").expect("static regex is valid"));

/// Python's `str.isdecimal` for one character (general category Nd), which is what `\d` matches in
/// Python's `re` for `str` patterns.
pub(crate) fn is_py_decimal(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    let mut buf = [0u8; 4];
    UNICODE_DECIMAL.is_match(c.encode_utf8(&mut buf))
}

/// Python's `\w` for `str` patterns: letters, numbers and `_`.
///
/// Hazard: Python also counts a few characters that carry a numeric value but are letters of another
/// category; they are letters here too, so the two agree in practice.
pub(crate) fn is_py_word(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let mut buf = [0u8; 4];
    UNICODE_WORD.is_match(c.encode_utf8(&mut buf))
}

/// The value 0..=9 of a Unicode decimal digit (category Nd).
///
/// Unicode guarantees that Nd characters come in contiguous runs of ten, 0 to 9, so the value is the
/// distance from the start of the contiguous Nd block, modulo 10.
pub(crate) fn decimal_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return c.to_digit(10);
    }
    if !is_py_decimal(c) {
        return None;
    }
    let mut start = c as u32;
    while let Some(prev) = start.checked_sub(1).and_then(char::from_u32) {
        if !is_py_decimal(prev) {
            break;
        }
        start -= 1;
    }
    Some((c as u32 - start) % 10)
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents -4..16, otherwise
/// scientific with a two-digit exponent, and always a `.0` on integral values in fixed notation.
pub(crate) fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let fixed = format!("{x}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `float(s)` for the forms answers take: optional whitespace and sign, digits (any Unicode
/// decimal digit, as Python accepts) with single `_` between them, optional fraction and exponent,
/// `inf`/`infinity`/`nan` in any case.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let ascii: String = py_strip(s)
        .chars()
        .map(|c| match decimal_value(c) {
            Some(d) if !c.is_ascii() => char::from_digit(d, 10).unwrap_or(c),
            _ => c,
        })
        .collect();
    let t = ascii.as_str();
    if t.is_empty() || !t.is_ascii() {
        return None;
    }
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t.to_ascii_lowercase().parse().ok();
    }
    if !underscores_between_digits(body) {
        return None;
    }
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    if !cleaned.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if !cleaned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    cleaned.parse().ok()
}

fn underscores_between_digits(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'_'
            || (i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_digit()
                && bytes[i + 1].is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python_forms() {
        assert_eq!(py_float_repr(5.0), "5.0");
        assert_eq!(py_float_repr(2.5), "2.5");
        assert_eq!(py_float_repr(1e-6), "1e-06");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn python_float_parsing() {
        assert_eq!(py_float(" 1_000.5 "), Some(1000.5));
        assert_eq!(py_float("1__0"), None);
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("1e3"), Some(1000.0));
        assert_eq!(py_float("e3"), None);
        assert_eq!(py_float("0x10"), None);
        assert_eq!(py_float("١٢.٥"), Some(12.5));
    }

    #[test]
    fn unicode_digit_values() {
        assert_eq!(decimal_value('٣'), Some(3));
        assert_eq!(decimal_value('１'), Some(1));
        assert_eq!(decimal_value('²'), None);
        assert!(is_py_space('\u{1f}'));
        assert!(!is_py_word('-'));
        assert!(is_py_word('é'));
    }
}
