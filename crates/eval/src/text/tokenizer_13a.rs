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

use super::python_str::split_python_words;

/// Tokenizes `line` as sacrebleu's `Tokenizer13a()(line)`: tokens joined by single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut scratch = Scratch13a::default();
    let mut tokens = Vec::new();
    split_python_words(tokenize_13a_spaced(line, &mut scratch), |token| {
        tokens.push(String::from_utf8_lossy(token).into_owned())
    });
    tokens.join(" ")
}

/// Buffers reused by [`tokenize_13a_spaced`].
#[derive(Default)]
pub(crate) struct Scratch13a {
    front: Vec<u8>,
    back: Vec<u8>,
    /// The line after the `-\n` and `\n` replacements, when it has a newline.
    unescaped: Vec<u8>,
}

/// The 13a tokenization of `line` before whitespace is collapsed, as UTF-8 bytes: its Python
/// `split()` words (see `split_python_words`) are the tokens of [`tokenize_13a`]. Works in
/// `scratch`, so it allocates only while the buffers grow.
pub(crate) fn tokenize_13a_spaced<'s>(line: &str, scratch: &'s mut Scratch13a) -> &'s [u8] {
    let Scratch13a {
        front,
        back,
        unescaped,
    } = scratch;
    let unescaped = unescape(line, unescaped);
    front.clear();
    front.reserve(unescaped.len() * 3 + 2);
    front.push(b' ');
    // Copy runs of unpadded bytes whole; only the symbols are written one by one.
    let mut run = 0;
    for (index, &byte) in unescaped.iter().enumerate() {
        if is_padded_symbol(byte) {
            front.extend_from_slice(&unescaped[run..index]);
            front.extend_from_slice(&[b' ', byte, b' ']);
            run = index + 1;
        }
    }
    front.extend_from_slice(&unescaped[run..]);
    front.push(b' ');
    // Each pass looks only where its fixed punctuation occurs: the pair's second byte for the
    // first and third regexes, its first byte for the second.
    split_pairs(
        front,
        back,
        ([b'.', b','], 1),
        |a, _| !a.is_ascii_digit(),
        true,
    );
    split_pairs(
        back,
        front,
        ([b'.', b','], 0),
        |_, b| !b.is_ascii_digit(),
        false,
    );
    split_pairs(
        front,
        back,
        ([b'-', b'-'], 1),
        |a, _| a.is_ascii_digit(),
        true,
    );
    back
}

/// Step 1 on the bytes of `line`: `<skipped>` removed, `-\n` removed, `\n` made a space, then
/// the four entities unescaped in order. Borrows `line` when there is nothing to replace.
fn unescape<'a>(line: &'a str, newlines: &'a mut Vec<u8>) -> Cow<'a, [u8]> {
    let mut text = Cow::Borrowed(line);
    // `str::contains` with a string pattern sets up a substring searcher each call; a byte
    // search first skips it on the lines (nearly all) without a `<`.
    if line.as_bytes().contains(&b'<') {
        replace_in_place(&mut text, "<skipped>", "");
    }
    let mut bytes: Cow<'a, [u8]> = match text {
        Cow::Borrowed(text) if !text.as_bytes().contains(&b'\n') => Cow::Borrowed(text.as_bytes()),
        text => {
            // One pass for the two newline replacements: str::replace does not rescan what it
            // wrote, and a `\n` is left for the second exactly when it is not the end of a
            // `-\n`, which a left-to-right scan sees the same way.
            newlines.clear();
            let source = text.as_bytes();
            let mut index = 0;
            while index < source.len() {
                match (source[index], source.get(index + 1)) {
                    (b'-', Some(b'\n')) => index += 2,
                    (b'\n', _) => {
                        newlines.push(b' ');
                        index += 1;
                    }
                    (byte, _) => {
                        newlines.push(byte);
                        index += 1;
                    }
                }
            }
            Cow::Borrowed(&newlines[..])
        }
    };
    if bytes.contains(&b'&') {
        // Rare: go through `str` (the bytes are UTF-8: only ASCII was removed or replaced).
        let mut text = Cow::Owned(String::from_utf8_lossy(&bytes).into_owned());
        for (entity, plain) in [
            ("&quot;", "\""),
            ("&amp;", "&"),
            ("&lt;", "<"),
            ("&gt;", ">"),
        ] {
            replace_in_place(&mut text, entity, plain);
        }
        bytes = Cow::Owned(text.into_owned().into_bytes());
    }
    bytes
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

/// Writes `bytes` to `out`, rewriting each non-overlapping adjacent pair `a b` that matches as
/// `a b ` (when `space_after_pair`, i.e. `\1 \2 `) or ` a b` (i.e. ` \1 \2`). A pair matches
/// when its byte at `anchor.1` (0 or 1) is one of `anchor.0` and `rest(a, b)` holds; pairs are
/// taken left to right as a regex scan does. Bytes between matches are copied as whole runs.
fn split_pairs(
    bytes: &[u8],
    out: &mut Vec<u8>,
    anchor: ([u8; 2], usize),
    rest: impl Fn(u8, u8) -> bool,
    space_after_pair: bool,
) {
    let (targets, offset) = anchor;
    out.clear();
    out.reserve(bytes.len() + bytes.len() / 2);
    let mut run = 0;
    // First position that may still start a match.
    let mut index = 0;
    while let Some(found) = find_either(bytes, index + offset, targets) {
        let start = found - offset;
        if start + 1 < bytes.len() && rest(bytes[start], bytes[start + 1]) {
            let (first, second) = (bytes[start], bytes[start + 1]);
            out.extend_from_slice(&bytes[run..start]);
            if space_after_pair {
                out.extend_from_slice(&[first, b' ', second, b' ']);
            } else {
                out.extend_from_slice(&[b' ', first, b' ', second]);
            }
            index = start + 2;
            run = index;
        } else {
            index = start + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

/// The first index from `from` on where `bytes` holds `targets[0]` or `targets[1]`.
fn find_either(bytes: &[u8], from: usize, targets: [u8; 2]) -> Option<usize> {
    let mut index = from;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        while index + 16 <= bytes.len() {
            let block = &bytes[index..index + 16];
            // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the 16 bytes of
            // `block`.
            let mask = unsafe {
                let data = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(data, _mm_set1_epi8(targets[0] as i8)),
                    _mm_cmpeq_epi8(data, _mm_set1_epi8(targets[1] as i8)),
                ))
            };
            if mask != 0 {
                return Some(index + mask.trailing_zeros() as usize);
            }
            index += 16;
        }
    }
    bytes
        .get(index..)?
        .iter()
        .position(|&byte| byte == targets[0] || byte == targets[1])
        .map(|position| index + position)
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
    fn newline_replacements_in_one_pass() {
        assert_eq!(tokenize_13a("--\n\nx"), "- x");
        assert_eq!(tokenize_13a("a-<skipped>\nb"), "ab");
        assert_eq!(tokenize_13a("a-\n-\n\nb"), "a b");
    }

    #[test]
    fn non_overlapping_matches_like_python_re() {
        assert_eq!(tokenize_13a("a..b"), "a . . b");
        assert_eq!(tokenize_13a("é.,"), "é . ,");
    }
}
