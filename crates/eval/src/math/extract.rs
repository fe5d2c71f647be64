//! The final answer of a solution, as search-and-learn's `extract_answer(text, "math")` finds it.
//!
//! Branches, in the reference's order (the first that applies wins):
//! 1. Minerva style: `final answer is $` and `$. I hope` both present -> the text between the first
//!    `final answer is $` and the next `$. I hope`. A `\boxed{..}` inside is kept as it is.
//! 2. The substring `boxed` (not `\boxed{`) -> after its LAST occurrence: a `{...}` group with nested
//!    braces (an unclosed group runs to the end), or else the text up to the first `$`, trimmed.
//! 3. `he answer is` -> the text after its last occurrence. 4. `final answer is` -> likewise.
//! 5. `答案是` -> the text after its FIRST occurrence, up to a blank line.
//! 6. The last number `-?\d*\.?\d+` after deleting commas, or `""`.
//!
//! Then: newlines with the whitespace after them are deleted, one leading `:` and one trailing `.` and
//! one trailing `/` are dropped, and [`strip_string`](super::strip_string) normalises the rest.

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::strip_string;
use super::pystr::{is_py_space, py_strip};

static LAST_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d*\.?\d+").expect("static regex is valid"));

/// Choices that change extraction away from the reference; the default is the reference exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Also anchor on `fbox` (LaTeX's `\fbox{..}`), in the same branch as `boxed`, taking whichever of
    /// the two occurs last. The reference does not know `\fbox` and falls through to the last number.
    pub accept_fbox: bool,
}

/// The normalised final answer of `text`, exactly as the reference extracts it for MATH.
pub fn extract_answer(text: &str) -> String {
    extract_answer_with(text, ExtractOptions::default())
}

/// [`extract_answer`] with [`ExtractOptions`].
pub fn extract_answer_with(text: &str, options: ExtractOptions) -> String {
    let raw = extract_raw_answer(text, options);
    strip_string(&trim_answer_edges(&raw), false)
}

/// The answer text before cleaning and normalisation (branches 1 to 6 of the module docs).
pub fn extract_raw_answer(text: &str, options: ExtractOptions) -> String {
    let text = text.replace("ки", "");
    if let Some(minerva) = minerva_answer(&text) {
        return minerva;
    }
    if let Some(boxed) = boxed_answer(&text, options) {
        return boxed;
    }
    for marker in ["he answer is", "final answer is"] {
        if let Some(i) = text.rfind(marker) {
            return py_strip(&text[i + marker.len()..]).to_string();
        }
    }
    if let Some(i) = text.find("答案是") {
        let tail = py_strip(&text[i + "答案是".len()..]);
        let first_block = tail.split("\n\n").next().unwrap_or_default();
        return py_strip(first_block).to_string();
    }
    last_number(&text)
}

fn minerva_answer(text: &str) -> Option<String> {
    const OPEN: &str = "final answer is $";
    const CLOSE: &str = "$. I hope";
    if !text.contains(CLOSE) {
        return None;
    }
    let (_, tail) = text.split_once(OPEN)?;
    let inner = tail.split_once(CLOSE).map_or(tail, |(inner, _)| inner);
    Some(py_strip(inner).to_string())
}

fn boxed_answer(text: &str, options: ExtractOptions) -> Option<String> {
    let boxed = text.rfind("boxed").map(|i| i + "boxed".len());
    let fbox = if options.accept_fbox {
        text.rfind("fbox").map(|i| i + "fbox".len())
    } else {
        None
    };
    let tail_start = boxed.max(fbox)?;
    let tail = &text[tail_start..];
    Some(match tail.strip_prefix('{') {
        Some(inside) => balanced_group(inside).to_string(),
        None => py_strip(tail.split('$').next().unwrap_or_default()).to_string(),
    })
}

/// The text up to the `}` that closes an already opened `{`, nested groups included; all of `inside`
/// if the group never closes.
fn balanced_group(inside: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in inside.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &inside[..i];
                }
            }
            _ => {}
        }
    }
    inside
}

fn last_number(text: &str) -> String {
    let without_commas = text.replace(',', "");
    LAST_NUMBER
        .find_iter(&without_commas)
        .last()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
}

/// Deletes each newline with the whitespace after it (`re.sub(r"\n\s*", "", pred)`), then drops one
/// leading `:`, one trailing `.` and one trailing `/`.
fn trim_answer_edges(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.next_if(|&n| is_py_space(n)).is_some() {}
        } else {
            out.push(c);
        }
    }
    let mut s = out.as_str();
    s = s.strip_prefix(':').unwrap_or(s);
    s = s.strip_suffix('.').unwrap_or(s);
    s = s.strip_suffix('/').unwrap_or(s);
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fbox_is_opt_in() {
        let text = "so \\fbox{\\frac{1}{2}} and 3";
        assert_eq!(extract_answer(text), "3");
        let with = ExtractOptions { accept_fbox: true };
        assert_eq!(extract_answer_with(text, with), "\\frac{1}{2}");
    }

    #[test]
    fn minerva_branch_keeps_boxed_wrapper() {
        let text = "The final answer is $\\boxed{7}$. I hope it is correct.";
        assert_eq!(
            extract_raw_answer(text, ExtractOptions::default()),
            "\\boxed{7}"
        );
    }
}
