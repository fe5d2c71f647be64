//! sacrebleu's default `13a` tokenizer (mteval-v13a, as used by WMT).
//!
//! Reference: `sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a` and the `TokenizerRegexp` it
//! delegates to (sacrebleu 2.6.0). In order:
//!
//! 1. remove `<skipped>` and `-\n`, turn `\n` into a space, and unescape `&quot;`, `&amp;`,
//!    `&lt;`, `&gt;` (one after another, so `&amp;lt;` becomes `<`);
//! 2. surround every ASCII symbol except `'`, `,`, `-`, `.` with spaces;
//! 3. split a `.` or `,` from a preceding non-digit, then from a following non-digit;
//! 4. split a `-` that follows a digit;
//! 5. collapse whitespace (Python's definition) to single spaces and trim.
//!
//! Steps 3 and 4 are regex substitutions whose matches do not overlap; they are reproduced here
//! as left-to-right scans that skip past each match, which gives the same output. Working on
//! UTF-8 bytes is safe because every pattern fixes its ASCII characters and treats any other
//! byte as "not a digit", so spaces are only inserted at character boundaries.

use std::borrow::Cow;

use super::python_str::python_split;

/// Tokenizes `line` as sacrebleu's `Tokenizer13a()(line)`: tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut scratch = Scratch13a::default();
    python_split(tokenize_13a_spaced(line, &mut scratch))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Buffers reused by [`tokenize_13a_spaced`].
#[derive(Default)]
pub(crate) struct Scratch13a {
    front: Vec<u8>,
    back: Vec<u8>,
}

/// The 13a tokenization of `line` before whitespace is collapsed: its Python `split()` words
/// are the tokens of [`tokenize_13a`]. Works in `scratch`, so it allocates only while the
/// buffers grow.
pub(crate) fn tokenize_13a_spaced<'s>(line: &str, scratch: &'s mut Scratch13a) -> &'s str {
    let unescaped = unescape(line);
    let Scratch13a { front, back } = scratch;
    front.clear();
    front.reserve(unescaped.len() * 2 + 2);
    front.push(b' ');
    for &byte in unescaped.as_bytes() {
        if is_padded_symbol(byte) {
            front.extend_from_slice(&[b' ', byte, b' ']);
        } else {
            front.push(byte);
        }
    }
    front.push(b' ');
    split_pairs(
        front,
        back,
        |a, b| !a.is_ascii_digit() && is_period_or_comma(b),
        true,
    );
    split_pairs(
        back,
        front,
        |a, b| is_period_or_comma(a) && !b.is_ascii_digit(),
        false,
    );
    split_pairs(front, back, |a, b| a.is_ascii_digit() && b == b'-', true);
    // Always valid: `line` is UTF-8 and spaces are inserted only next to ASCII bytes (see the
    // module documentation), so the empty fallback is unreachable.
    std::str::from_utf8(back).unwrap_or_default()
}

fn unescape(line: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(line);
    for (pattern, replacement) in [("<skipped>", ""), ("-\n", ""), ("\n", " ")] {
        replace_in_place(&mut text, pattern, replacement);
    }
    if text.contains('&') {
        for (entity, plain) in [
            ("&quot;", "\""),
            ("&amp;", "&"),
            ("&lt;", "<"),
            ("&gt;", ">"),
        ] {
            replace_in_place(&mut text, entity, plain);
        }
    }
    text
}

/// `str::replace`, allocating only when `pattern` occurs.
fn replace_in_place(text: &mut Cow<'_, str>, pattern: &str, replacement: &str) {
    if text.contains(pattern) {
        *text = Cow::Owned(text.replace(pattern, replacement));
    }
}

/// The first regex's class: `{|}~`, `[\]^_` and backtick, space to `&`, `(` to `+`, `:` to `@`, `/`.
fn is_padded_symbol(byte: u8) -> bool {
    matches!(byte, b'{'..=b'~' | b'['..=b'`' | b' '..=b'&' | b'('..=b'+' | b':'..=b'@' | b'/')
}

fn is_period_or_comma(byte: u8) -> bool {
    byte == b'.' || byte == b','
}

/// Writes `bytes` to `out`, rewriting each non-overlapping adjacent pair `a b` that `matches` as
/// `a b ` (when `space_after_pair`, i.e. `\1 \2 `) or ` a b` (i.e. ` \1 \2`).
fn split_pairs(
    bytes: &[u8],
    out: &mut Vec<u8>,
    matches: impl Fn(u8, u8) -> bool,
    space_after_pair: bool,
) {
    out.clear();
    out.reserve(bytes.len() + bytes.len() / 2);
    let mut index = 0;
    while index < bytes.len() {
        let first = bytes[index];
        match bytes.get(index + 1) {
            Some(&second) if matches(first, second) => {
                if space_after_pair {
                    out.extend_from_slice(&[first, b' ', second, b' ']);
                } else {
                    out.extend_from_slice(&[b' ', first, b' ', second]);
                }
                index += 2;
            }
            _ => {
                out.push(first);
                index += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world! It costs $3.50."),
            "Hello , world ! It costs $ 3.50 ."
        );
        assert_eq!(
            tokenize_13a("1,000 items in 10-20 days"),
            "1,000 items in 10 - 20 days"
        );
    }

    #[test]
    fn unescapes_entities_in_order() {
        assert_eq!(tokenize_13a("a &amp;lt; b<skipped>"), "a < b");
        assert_eq!(tokenize_13a("hy-\nphen\nnext"), "hyphen next");
    }

    #[test]
    fn non_overlapping_matches_like_python_re() {
        assert_eq!(tokenize_13a("a..b"), "a . . b");
        assert_eq!(tokenize_13a("é.,"), "é . ,");
    }
}
