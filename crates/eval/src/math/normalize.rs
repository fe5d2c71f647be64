//! `strip_string`: the answer normalisation of search-and-learn (`sal/utils/qwen_math_parser.py`,
//! adapted from Qwen2.5-Math), reproduced rule by rule and in the same order.
//!
//! The rules are crude string rewrites, and several of them damage real answers. They are kept as they
//! are because graded results are only comparable when the normalisation is identical. Hazards:
//! - Unit removal deletes 132 words and their plural forms wherever they stand alone, among them the
//!   single letters `t a h c s d m g l o`. A `.` in the list matches any character, as in the
//!   reference's regular expression, so `"a ."` deletes `"a +"`: `"a + b"` becomes `"b"`.
//! - Every substring `and` is deleted (`"band"` becomes `"b"`), and `j` becomes `i` when no `i` occurs.
//! - The spelled-number conversion keeps only number words and ignores the rest (`"x plus one"` -> `"1"`).
//! - `x=`, `y=`, `z=` are deleted anywhere, also inside longer equations.
//! - The rule meant to drop one outer pair of brackets tests the whole string, brackets included, for
//!   being alphanumeric; it therefore never fires and is not implemented.

use std::sync::LazyLock;

use regex::{Captures, NoExpand, Regex};

use super::pystr::{is_py_word, py_strip};
use super::words::convert_word_number;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex is valid")
}

static ARRAY_BEGIN: LazyLock<Regex> = LazyLock::new(|| regex(r"\\begin\{array\}\{.*?\}"));
static TEXT_GROUP: LazyLock<Regex> = LazyLock::new(|| regex(r"\\text\{(.*?)\}"));
static MBOX: LazyLock<Regex> = LazyLock::new(|| regex(r"\\mbox\{.*?\}"));
static ZERO_FRACTION_INNER: LazyLock<Regex> = LazyLock::new(|| regex(r"(\d+)\.0*([^\d])"));
static ZERO_FRACTION_END: LazyLock<Regex> = LazyLock::new(|| regex(r"(\d+)\.0*$"));
static SQRT_BARE: LazyLock<Regex> = LazyLock::new(|| regex(r"\\sqrt([\p{L}\p{N}_]+)"));

/// The unit and filler words of the reference (mainly from MathQA), in its order, typos included.
/// Each is removed, then its plural with `s` (the reference appends the plurals after the whole list).
const UNIT_TEXTS: &[&str] = &[
    "east",
    "degree",
    "mph",
    "kmph",
    "ft",
    "m sqaure",
    " m east",
    "sq m",
    "deg",
    "mile",
    "q .",
    "monkey",
    "prime",
    "ratio",
    "profit of rs",
    "rd",
    "o",
    "gm",
    "p . m",
    "lb",
    "tile",
    "per",
    "dm",
    "lt",
    "gain",
    "ab",
    "way",
    "west",
    "a .",
    "b .",
    "c .",
    "d .",
    "e .",
    "f .",
    "g .",
    "h .",
    "t",
    "a",
    "h",
    "no change",
    "men",
    "soldier",
    "pie",
    "bc",
    "excess",
    "st",
    "inches",
    "noon",
    "percent",
    "by",
    "gal",
    "kmh",
    "c",
    "acre",
    "rise",
    "a . m",
    "th",
    "π r 2",
    "sq",
    "mark",
    "l",
    "toy",
    "coin",
    "sq . m",
    "gallon",
    "° f",
    "profit",
    "minw",
    "yr",
    "women",
    "feet",
    "am",
    "pm",
    "hr",
    "cu cm",
    "square",
    "v â € ™",
    "are",
    "rupee",
    "rounds",
    "cubic",
    "cc",
    "mtr",
    "s",
    "ohm",
    "number",
    "kmph",
    "day",
    "hour",
    "minute",
    "min",
    "second",
    "man",
    "woman",
    "sec",
    "cube",
    "mt",
    "sq inch",
    "mp",
    "∏ cm ³",
    "hectare",
    "more",
    "sec",
    "unit",
    "cu . m",
    "cm 2",
    "rs .",
    "rs",
    "kg",
    "g",
    "month",
    "km",
    "m",
    "cm",
    "mm",
    "apple",
    "liter",
    "loss",
    "yard",
    "pure",
    "year",
    "increase",
    "decrease",
    "d",
    "less",
    "Surface",
    "litre",
    "pi sq m",
    "s .",
    "metre",
    "meter",
    "inch",
];

/// One unit pattern: its characters (`.` is a wildcard) and its longest literal run, which must occur
/// in a string for the pattern to match there (a cheap test that skips most patterns).
struct UnitPattern {
    chars: Vec<char>,
    literal: String,
}

impl UnitPattern {
    fn new(text: &str) -> Self {
        let literal = text
            .split('.')
            .max_by_key(|run| run.len())
            .unwrap_or_default()
            .to_string();
        Self {
            chars: text.chars().collect(),
            literal,
        }
    }
}

/// All unit patterns in the reference's order: the list, then the list again with `s` appended.
static UNIT_PATTERNS: LazyLock<Vec<UnitPattern>> = LazyLock::new(|| {
    let singular = UNIT_TEXTS.iter().map(|u| UnitPattern::new(u));
    let plural = UNIT_TEXTS
        .iter()
        .map(|u| UnitPattern::new(&format!("{u}s")));
    singular.chain(plural).collect()
});

/// Normalises an extracted answer exactly as search-and-learn's `strip_string(string, skip_unit)`.
///
/// `skip_unit` is `true` only for the `minerva_math` and `carp_en` datasets in the reference; MATH
/// uses `false`.
pub fn strip_string(input: &str, skip_unit: bool) -> String {
    let mut s = py_strip(input).replace('\n', "");
    s = s.trim_end_matches('.').replace("\\!", "");
    s = rewrite_matrices_and_relations(&s);
    s = drop_trailing_text(&s);
    if !skip_unit {
        s = remove_units(&s);
    }
    s = remove_degrees_dollars_parens(&s);
    s = convert_word_number(&s);
    s = TEXT_GROUP
        .replace_all(&s, |c: &Captures| c[1].to_string())
        .into_owned();
    for key in [
        "x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to",
    ] {
        s = s.replace(key, "");
    }
    s = s
        .replace("\\emptyset", "{}")
        .replace("(-\\infty,\\infty)", "\\mathbb{R}")
        .replace("\\%", "")
        .replace('%', "")
        .replace(" .", " 0.")
        .replace("{.", "{0.");
    s = rewrite_infinity(&s);
    s = s.replace("and", "").replace("\\mathbf", "");
    s = MBOX.replace_all(&s, NoExpand("")).into_owned();
    if s.contains('j') && !s.contains('i') {
        s = s.replace('j', "i");
    }
    s = ZERO_FRACTION_INNER.replace_all(&s, "${1}${2}").into_owned();
    s = ZERO_FRACTION_END.replace_all(&s, "${1}").into_owned();
    if s.is_empty() {
        return s;
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s = keep_rhs_of_short_assignment(s);
    s = SQRT_BARE.replace_all(&s, "\\sqrt{${1}}").into_owned();
    s = s.replace(' ', "");
    s = fix_fracs(&s);
    fix_a_slash_b(s)
}

fn rewrite_matrices_and_relations(s: &str) -> String {
    ARRAY_BEGIN
        .replace_all(s, NoExpand("\\begin{pmatrix}"))
        .replace("\\end{array}", "\\end{pmatrix}")
        .replace("bmatrix", "pmatrix")
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace("\\neq", "\\ne")
        .replace("\\leq", "\\le")
        .replace("\\geq", "\\ge")
        .replace("\\left", "")
        .replace("\\right", "")
        .replace("\\{", "{")
        .replace("\\}", "}")
}

/// `re.sub(r"\\text{.*?}$", "", s).strip()`, kept only when something remains.
///
/// With the anchor at the end the lazy group still runs to the final `}`, so the match starts at the
/// FIRST `\text{` and takes everything after it: `"\text{a} + 5 \text{cm}"` matches as a whole.
fn drop_trailing_text(s: &str) -> String {
    const OPEN: &str = "\\text{";
    if !s.ends_with('}') {
        return s.to_string();
    }
    let Some(start) = s.find(OPEN) else {
        return s.to_string();
    };
    if start + OPEN.len() > s.len() - 1 {
        return s.to_string();
    }
    let kept = py_strip(&s[..start]);
    if kept.is_empty() {
        s.to_string()
    } else {
        kept.to_string()
    }
}

/// Two passes over the unit list; a removal is kept only if it leaves something.
fn remove_units(s: &str) -> String {
    let mut s = s.to_string();
    let mut chars: Vec<char> = s.chars().collect();
    let mut bytes = byte_set(&s);
    for _ in 0..2 {
        for unit in UNIT_PATTERNS.iter() {
            let possible = unit.literal.bytes().all(|b| bytes[usize::from(b)]);
            if !possible || !s.contains(unit.literal.as_str()) {
                continue;
            }
            if let Some(removed) = remove_unit(&chars, &unit.chars)
                && !removed.is_empty()
            {
                chars = removed.chars().collect();
                bytes = byte_set(&removed);
                s = removed;
            }
        }
    }
    s
}

/// Which byte values occur in `s`: a quick test before searching for a unit.
fn byte_set(s: &str) -> [bool; 256] {
    let mut set = [false; 256];
    for b in s.bytes() {
        set[usize::from(b)] = true;
    }
    set
}

/// `re.sub(r"(^|\W)" + unit + r"($|\W)", r"\1\2", s)`: deletes the unit where it stands between
/// non-word characters or the ends. The boundary characters are consumed by a match, so of two units
/// separated by one space only the first goes in one pass. `.` in a unit matches any character.
/// `None` when nothing matches.
fn remove_unit(chars: &[char], unit: &[char]) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    let mut pos = 0;
    while pos < chars.len() {
        match match_unit_at(chars, pos, unit) {
            Some((unit_start, unit_end, match_end)) => {
                out.extend(&chars[copied..unit_start]);
                out.extend(&chars[unit_end..match_end]);
                copied = match_end;
                pos = match_end.max(pos + 1);
            }
            None => pos += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend(&chars[copied..]);
    Some(out)
}

/// Tries the pattern at `pos`: `(^|\W)` then the unit then `($|\W)`, alternatives in regex order.
/// Returns (unit start, unit end, match end).
fn match_unit_at(chars: &[char], pos: usize, unit: &[char]) -> Option<(usize, usize, usize)> {
    let mut starts = Vec::with_capacity(2);
    if pos == 0 {
        starts.push(0);
    }
    if chars.get(pos).is_some_and(|&c| !is_py_word(c)) {
        starts.push(pos + 1);
    }
    starts.into_iter().find_map(|start| {
        let end = start + unit.len();
        let body = chars.get(start..end)?;
        let same = body
            .iter()
            .zip(unit)
            .all(|(c, u)| *u == '.' && *c != '\n' || c == u);
        if !same {
            return None;
        }
        if end == chars.len() {
            Some((start, end, end))
        } else if !is_py_word(chars[end]) {
            Some((start, end, end + 1))
        } else {
            None
        }
    })
}

fn remove_degrees_dollars_parens(s: &str) -> String {
    s.replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("\\$", "")
        .replace('$', "")
        .replace("\\(", "")
        .replace("\\)", "")
}

fn rewrite_infinity(s: &str) -> String {
    let mut s = s.replace("infinity", "\\infty");
    if !s.contains("\\infty") {
        s = s.replace("inf", "\\infty");
    }
    s.replace("+\\inity", "\\infty")
}

/// `k = 5` -> `5`: exactly one `=` and at most two characters (spaces included) before it.
fn keep_rhs_of_short_assignment(s: String) -> String {
    match s.split_once('=') {
        Some((lhs, rhs)) if !rhs.contains('=') && lhs.chars().count() <= 2 => rhs.to_string(),
        _ => s,
    }
}

/// `\frac12` -> `\frac{1}{2}`, `\frac1{72}` -> `\frac{1}{72}`; a `\frac` followed by fewer than two
/// characters leaves the whole string unchanged, as in the reference.
fn fix_fracs(s: &str) -> String {
    let mut pieces = s.split("\\frac");
    let mut out = pieces.next().unwrap_or_default().to_string();
    for piece in pieces {
        out.push_str("\\frac");
        let mut chars = piece.chars();
        match (chars.next(), chars.next()) {
            (Some('{'), _) => out.push_str(piece),
            (Some(a), Some('{')) => {
                out.push_str(&format!("{{{a}}}{{{}", chars.as_str()));
            }
            (Some(a), Some(b)) => {
                out.push_str(&format!("{{{a}}}{{{b}}}{}", chars.as_str()));
            }
            _ => return s.to_string(),
        }
    }
    out
}

/// `a/b` with two integers (or sides containing `sqrt`) -> `\frac{a}{b}`. Python's `int()` plus the
/// round-trip check accept exactly the canonical decimal forms `0` and `-?[1-9][0-9]*`.
fn fix_a_slash_b(s: String) -> String {
    let mut parts = s.split('/');
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return s;
    };
    let side_ok = |x: &str| x.contains("sqrt") || is_canonical_int(x);
    if side_ok(a) && side_ok(b) {
        format!("\\frac{{{a}}}{{{b}}}")
    } else {
        s
    }
}

fn is_canonical_int(x: &str) -> bool {
    let digits = x.strip_prefix('-').unwrap_or(x);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical && x != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_boundaries_are_consumed() {
        let remove = |s: &str, unit: &str| {
            let chars: Vec<char> = s.chars().collect();
            let unit: Vec<char> = unit.chars().collect();
            remove_unit(&chars, &unit).unwrap_or_else(|| s.to_string())
        };
        assert_eq!(remove("m m", "m"), " m");
        assert_eq!(remove("5 m", "m"), "5 ");
        assert_eq!(remove("mm", "m"), "mm");
        assert_eq!(remove("q x 5", "q ."), " 5");
        assert_eq!(remove("m", "m"), "");
    }

    #[test]
    fn representative_rules() {
        assert_eq!(strip_string("\\dfrac12", false), "\\frac{1}{2}");
        assert_eq!(strip_string("12.000", false), "12");
        assert_eq!(strip_string("x = 5", false), "5");
        assert_eq!(strip_string("band", false), "b");
        assert_eq!(strip_string("3/4", false), "\\frac{3}{4}");
        assert_eq!(strip_string("03/4", false), "03/4");
        assert_eq!(strip_string("5 \\text{ cm}", false), "5");
    }
}
