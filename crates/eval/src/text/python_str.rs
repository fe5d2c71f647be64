//! Python `str` behaviour that the reference metrics rely on.

/// Whether `c` is whitespace for Python's `str.isspace`, `str.split()` and `str.rstrip()`.
///
/// Python counts the separators U+001C..U+001F as whitespace, Rust's `char::is_whitespace` does
/// not, so the references' `split()` needs its own predicate.
pub(crate) fn is_python_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// The words of `text` as Python's `text.split()` (no argument) returns them. Only the tests
/// use it, as the plain statement that the byte-level splitters are checked against.
#[cfg(test)]
pub(crate) fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_whitespace)
        .filter(|word| !word.is_empty())
}

/// `text` without trailing whitespace, as Python's `text.rstrip()`.
pub(crate) fn python_rstrip(text: &str) -> &str {
    text.trim_end_matches(is_python_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_python_only_separators() {
        let words: Vec<&str> = python_split("a\u{1c}b\u{3000} c\u{200b}d ").collect();
        assert_eq!(words, ["a", "b", "c\u{200b}d"]);
    }

    #[test]
    fn rstrip_keeps_leading_space() {
        assert_eq!(python_rstrip("  x \u{1f}\n"), "  x");
    }
}
