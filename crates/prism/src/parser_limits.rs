//! Limits CPython's parser and compiler enforce but ruff's parser does not: source that ruff
//! accepts and CPython refuses would pass every static rule and fail only at import time, with
//! an error of any size. These are checked on the raw text, before ruff parses it (so a
//! pathological file never reaches a recursive parser either), and refused with the rule
//! `prism:parser-limit` and a short message.
//!
//! Measured on CPython 3.11: more than 200 nested brackets ("too many nested parentheses"),
//! 100 indentation levels ("too many levels of indentation"), 21 statically nested
//! `for`/`while`/`try`/`with` blocks ("too many statically nested blocks"), and expressions
//! about 2,990 levels deep (`1+1+...`, `--...-1`, `a.b.b...`, `a()()...`, chained ternaries or
//! lambdas: "maximum recursion depth exceeded during compilation"). assay refuses expressions
//! past [`MAX_EXPRESSION_DEPTH`], an estimate that never undercounts the depth.

use crate::sandbox::Finding;

/// The rule id of every finding here.
pub const RULE: &str = "prism:parser-limit";
/// Deepest bracket nesting CPython's tokenizer accepts.
pub const MAX_BRACKET_DEPTH: usize = 200;
/// Most indentation levels CPython's tokenizer accepts (the 100th is refused).
pub const MAX_INDENT_LEVELS: usize = 99;
/// Most statically nested `for`/`while`/`try`/`with` blocks CPython's compiler accepts.
pub const MAX_NESTED_BLOCKS: usize = 20;
/// Deepest expression assay accepts (CPython 3.11 fails near 2,990; honest code stays far
/// below 100).
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

const BLOCK_WORDS: &[&str] = &["for", "while", "try", "with", "async"];
const DEPTH_WORDS: &[&str] = &["not", "lambda", "if", "await"];
const STRING_PREFIXES: &[&str] = &["r", "u", "b", "f", "br", "rb", "fr", "rf"];

struct Scan<'a> {
    path: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    findings: Vec<Finding>,
    reported: [bool; 4],
}

impl Scan<'_> {
    fn report(&mut self, kind: usize, at: usize, message: String) {
        if self.reported[kind] {
            return;
        }
        self.reported[kind] = true;
        let col = String::from_utf8_lossy(&self.bytes[self.line_start..at.max(self.line_start)])
            .chars()
            .count()
            + 1;
        self.findings.push(Finding {
            path: self.path.to_string(),
            line: self.line,
            col,
            rule: RULE.into(),
            message,
            extension: true,
        });
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start = self.i + 1;
    }

    /// Skips a string literal whose opening quote is at `self.i`.
    fn string(&mut self) {
        let quote = self.bytes[self.i];
        let triple = self.bytes.get(self.i + 1) == Some(&quote)
            && self.bytes.get(self.i + 2) == Some(&quote);
        self.i += if triple { 3 } else { 1 };
        while self.i < self.bytes.len() {
            let c = self.bytes[self.i];
            if c == b'\\' {
                if self.bytes.get(self.i + 1) == Some(&b'\n') {
                    self.i += 1;
                    self.newline();
                }
                self.i += 2;
                continue;
            }
            if c == b'\n' {
                if !triple {
                    return;
                }
                self.newline();
            }
            if c == quote
                && (!triple
                    || (self.bytes.get(self.i + 1) == Some(&quote)
                        && self.bytes.get(self.i + 2) == Some(&quote)))
            {
                self.i += if triple { 3 } else { 1 };
                return;
            }
            self.i += 1;
        }
    }
}

/// Checks one file's text; empty when CPython would accept it as far as these limits go.
pub fn check(path: &str, source: &str) -> Vec<Finding> {
    let mut s = Scan {
        path,
        bytes: source.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        findings: Vec::new(),
        reported: [false; 4],
    };
    // Open brackets: (depth accumulated before the bracket, the enclosing level's counter).
    let mut brackets: Vec<(usize, usize)> = Vec::new();
    let mut base = 0usize;
    let mut count = 0usize;
    // Ancestors of the current logical line: (indent width, opens a loop/try/with block).
    let mut indents: Vec<(usize, bool)> = Vec::new();
    let mut at_line_start = true;
    let n = s.bytes.len();
    while s.i < n {
        if at_line_start && brackets.is_empty() {
            at_line_start = false;
            let mut width = 0;
            while s.i < n && matches!(s.bytes[s.i], b' ' | b'\t' | b'\x0c') {
                width = if s.bytes[s.i] == b'\t' {
                    (width / 8 + 1) * 8
                } else {
                    width + 1
                };
                s.i += 1;
            }
            if s.i >= n || matches!(s.bytes[s.i], b'\n' | b'\r' | b'#') {
                at_line_start = true;
                while s.i < n && s.bytes[s.i] != b'\n' {
                    s.i += 1;
                }
                if s.i < n {
                    s.newline();
                    s.i += 1;
                }
                continue;
            }
            while indents.last().is_some_and(|(w, _)| *w >= width) {
                indents.pop();
            }
            if indents.len() >= MAX_INDENT_LEVELS {
                let at = s.i;
                s.report(
                    0,
                    at,
                    format!("{} levels of indentation: CPython refuses {} or more (\"too many levels of indentation\")", indents.len() + 1, MAX_INDENT_LEVELS + 1),
                );
            }
            let word_end = s.bytes[s.i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .map_or(n, |p| s.i + p);
            let word = &source[s.i..word_end];
            let opens_block = BLOCK_WORDS.contains(&word);
            let blocks = indents.iter().filter(|(_, b)| *b).count();
            if opens_block && blocks >= MAX_NESTED_BLOCKS {
                let at = s.i;
                s.report(
                    1,
                    at,
                    format!("more than {MAX_NESTED_BLOCKS} statically nested for/while/try/with blocks: CPython refuses them (\"too many statically nested blocks\")"),
                );
            }
            indents.push((width, opens_block));
            base = 0;
            count = 0;
            continue;
        }
        let c = s.bytes[s.i];
        match c {
            b'#' => {
                while s.i < n && s.bytes[s.i] != b'\n' {
                    s.i += 1;
                }
                continue;
            }
            b'\n' => {
                s.newline();
                s.i += 1;
                if brackets.is_empty() {
                    at_line_start = true;
                }
                continue;
            }
            b'\\' if s.bytes.get(s.i + 1) == Some(&b'\n') => {
                s.i += 1;
                s.newline();
                s.i += 1;
                continue;
            }
            b'\\' if s.bytes.get(s.i + 1) == Some(&b'\r') => {
                s.i += 2;
                continue;
            }
            b'\'' | b'"' => {
                s.string();
                continue;
            }
            b'(' | b'[' | b'{' => {
                count += 1;
                brackets.push((base, count));
                base += count;
                count = 0;
                if brackets.len() > MAX_BRACKET_DEPTH {
                    let at = s.i;
                    s.report(
                        2,
                        at,
                        format!("brackets nested more than {MAX_BRACKET_DEPTH} deep: CPython refuses them (\"too many nested parentheses\")"),
                    );
                }
            }
            b')' | b']' | b'}' => {
                if let Some((b, c)) = brackets.pop() {
                    base = b;
                    count = c;
                }
                if brackets.is_empty() && s.bytes.get(s.i + 1).is_none() {
                    at_line_start = false;
                }
            }
            b',' | b';' => count = 0,
            b'=' if !matches!(s.bytes.get(s.i + 1), Some(b'=')) => {
                count = 0;
            }
            b'=' => s.i += 1,
            b'0'..=b'9' => {
                while s.i < n {
                    let d = s.bytes[s.i];
                    let exponent_sign = matches!(d, b'+' | b'-')
                        && matches!(s.bytes[s.i - 1], b'e' | b'E')
                        && !source[..s.i].ends_with("0x");
                    if d.is_ascii_alphanumeric() || d == b'_' || d == b'.' || exponent_sign {
                        s.i += 1;
                    } else {
                        break;
                    }
                }
                continue;
            }
            b'.' if s.bytes.get(s.i + 1).is_some_and(u8::is_ascii_digit) => {
                s.i += 1;
                continue;
            }
            b'.' | b'+' | b'-' | b'*' | b'/' | b'%' | b'@' | b'&' | b'|' | b'^' | b'~' | b'<'
            | b'>' => count += 1,
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = s.i;
                while s.i < n
                    && (s.bytes[s.i].is_ascii_alphanumeric()
                        || s.bytes[s.i] == b'_'
                        || s.bytes[s.i] >= 0x80)
                {
                    s.i += 1;
                }
                let word = &s.bytes[start..s.i];
                let word = std::str::from_utf8(word).unwrap_or("");
                if s.i < n
                    && matches!(s.bytes[s.i], b'\'' | b'"')
                    && STRING_PREFIXES.contains(&word.to_ascii_lowercase().as_str())
                {
                    s.string();
                    continue;
                }
                if DEPTH_WORDS.contains(&word) {
                    count += 1;
                }
                if base + count > MAX_EXPRESSION_DEPTH {
                    s.report(
                        3,
                        start,
                        format!("an expression nested over {MAX_EXPRESSION_DEPTH} levels deep (chained operators, attributes, calls, `not`, ternaries or lambdas): CPython's compiler fails near 3,000 and assay refuses it past {MAX_EXPRESSION_DEPTH}"),
                    );
                }
                continue;
            }
            _ => {}
        }
        if base + count > MAX_EXPRESSION_DEPTH {
            let at = s.i;
            s.report(
                3,
                at,
                format!("an expression nested over {MAX_EXPRESSION_DEPTH} levels deep (chained operators, attributes, calls, `not`, ternaries or lambdas): CPython's compiler fails near 3,000 and assay refuses it past {MAX_EXPRESSION_DEPTH}"),
            );
        }
        s.i += 1;
    }
    s.findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(source: &str) -> Vec<String> {
        check("t.py", source)
            .into_iter()
            .map(|f| f.message)
            .collect()
    }

    #[test]
    fn cpython_limits_are_refused_and_ordinary_code_is_not() {
        assert!(rules(&format!("x = {}1{}\n", "(".repeat(200), ")".repeat(200))).is_empty());
        assert_eq!(
            rules(&format!("x = {}1{}\n", "(".repeat(201), ")".repeat(201))).len(),
            1
        );
        assert_eq!(
            rules(&format!("x = {}\n", vec!["1"; 3000].join("+"))).len(),
            1
        );
        assert_eq!(rules(&format!("x = {}1\n", "-".repeat(3000))).len(), 1);
        assert_eq!(rules(&format!("x = a{}\n", ".b".repeat(3000))).len(), 1);
        assert_eq!(rules(&format!("x = {}1\n", "not ".repeat(3000))).len(), 1);
        let blocks: String = (0..21)
            .map(|i| format!("{}for a in b:\n", " ".repeat(i)))
            .collect();
        assert_eq!(rules(&format!("{blocks}{}pass\n", " ".repeat(21))).len(), 1);
        let blocks: String = (0..20)
            .map(|i| format!("{}for a in b:\n", " ".repeat(i)))
            .collect();
        assert!(rules(&format!("{blocks}{}pass\n", " ".repeat(20))).is_empty());
        let ifs: String = (0..101)
            .map(|i| format!("{}if 1:\n", " ".repeat(i)))
            .collect();
        assert_eq!(rules(&format!("{ifs}{}pass\n", " ".repeat(101))).len(), 1);
        // Flat long lines are fine: a 10,000-item list of negative numbers, string literals
        // holding brackets, comparison chains.
        let items: Vec<String> = (0..10_000).map(|i| format!("-{i}")).collect();
        assert!(rules(&format!("x = [{}]\n", items.join(", "))).is_empty());
        assert!(
            rules(&format!(
                "x = '{}' + \"\"\"{}\"\"\"\n",
                "(".repeat(500),
                "[".repeat(500)
            ))
            .is_empty()
        );
        assert!(
            rules("# ((((((\nx = 1e-5 + 0x1e - 2.5e+3\ny = f'{a}' if b else r'\\('\n").is_empty()
        );
    }

    #[test]
    fn messages_are_short() {
        let source = format!("x = {}1{}\n", "(".repeat(100_000), ")".repeat(100_000));
        let findings = check("t.py", &source);
        assert_eq!(findings.len(), 2, "brackets and depth, once each");
        assert!(findings.iter().all(|f| f.message.len() < 300));
    }
}
