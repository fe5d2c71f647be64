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

/// [`is_python_whitespace`] for an ASCII byte.
pub(crate) fn is_ascii_python_whitespace(byte: u8) -> bool {
    matches!(byte, b'\t'..=b'\r' | 0x1c..=b' ')
}

/// The words of `text` as Python's `text.split()` (no argument) returns them: the plain
/// statement, which the byte-level splitters are checked against.
pub(crate) fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_whitespace)
        .filter(|word| !word.is_empty())
}

/// Calls `on_word` with each word of `text` (UTF-8) as Python's `str.split()` separates them,
/// without decoding the ASCII bytes.
pub(crate) fn split_python_words(text: &[u8], mut on_word: impl FnMut(&[u8])) {
    let mut start = 0;
    let mut index = 0;
    while index < text.len() {
        let byte = text[index];
        let width = match byte {
            0x00..=0x7F => 1,
            0x80..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        let space = if width == 1 {
            is_ascii_python_whitespace(byte)
        } else {
            // Only two- and three-byte characters can be Python whitespace.
            width < 4
                && std::str::from_utf8(&text[index..index + width])
                    .ok()
                    .and_then(|c| c.chars().next())
                    .is_some_and(is_python_whitespace)
        };
        if space {
            if index > start {
                on_word(&text[start..index]);
            }
            start = index + width;
        }
        index += width;
    }
    if text.len() > start {
        on_word(&text[start..]);
    }
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
    fn byte_split_matches_python_split() {
        for text in [
            "",
            "  ",
            "a",
            " a\u{1c}b\u{3000} c\u{200b}d ",
            "x\u{85}y\u{a0}z\u{1680}w\u{2000}v\u{200a}u\u{2028}t\u{2029}s\u{202f}r\u{205f}q",
            "中文 😀\t\r\nébc\u{2009}",
        ] {
            let expected: Vec<&str> = python_split(text).collect();
            let mut got = Vec::new();
            split_python_words(text.as_bytes(), |word| got.push(word.to_vec()));
            let expected: Vec<Vec<u8>> = expected.iter().map(|w| w.as_bytes().to_vec()).collect();
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn rstrip_keeps_leading_space() {
        assert_eq!(python_rstrip("  x \u{1f}\n"), "  x");
    }
}
