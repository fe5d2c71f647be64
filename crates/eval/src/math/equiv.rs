//! Equivalence of two answers, following the stages of the reference grader `math_equal`
//! (search-and-learn's copy of Qwen2.5-Math's `grader.py`).

use std::sync::LazyLock;

use regex::Regex;

use super::expr::{self, Expr, Parsed, Rel};
use super::extract::extract_answer;
use super::pystr::{py_float, py_strip};

/// Relative tolerance of the reference's `numeric_equal` (`math.isclose(ref, pred, rel_tol=1e-4)`).
const NUMERIC_REL_TOL: f64 = 1e-4;
/// Tolerance for expressions with symbols, compared at sample points; the reference compares those
/// exactly (`simplify(a - b) == 0`), so this is tight.
const SYMBOLIC_REL_TOL: f64 = 1e-9;
/// Deepest recursion through tuple and matrix elements; deeper input is judged unequal.
const MAX_RECURSION: usize = 8;

static CHOICE_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(A|B|C|D|E)\b").expect("static regex is valid"));
static MATRIX_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{.*,.*\}").expect("static regex is valid"));

/// Whether `prediction` and `reference` are the same answer.
///
/// Stages, in the reference's order: case-insensitive text; multiple-choice letter; both numbers
/// (commas removed, `%` divides by 100; equal within 1e-4 relative to the reference, the reference /100
/// or the reference ×100); bracket-insensitive text; element-wise tuples and intervals; element-wise
/// `pmatrix`; equations; then a symbolic check.
///
/// Deliberate differences from the reference (the fixture test lists each affected case):
/// - The symbolic check is our own [`expr`] evaluator, not sympy: expressions are compared by value
///   (constants within 1e-4 relative, expressions with symbols at fixed points within 1e-9), never
///   by simplification, and never with a timeout. Forms sympy cannot parse but we can, or the reverse,
///   are judged differently.
/// - `^` is always a power, so `10^3` equals `1000`. The reference first tries sympy's `parse_expr`,
///   which reads a plain `2^10` as Python's XOR (= 8), so it judges `2^10` unequal to `1024`.
/// - The reference evaluates symbolic equality with a 3 s timeout counted as "unequal"; we have none.
/// - An undefined value (`\sqrt{-1}`, `\frac{0}{0}`) equals nothing; inequalities keep their direction
///   and strictness (the reference compares relations by `|lhs - rhs|` alone).
///
/// The input may be raw (not extracted): `$` signs, spacing and `\le`/`\leq`-style spellings do not
/// matter. `crates/eval/DIFFERENCES.md` lists every difference and the forms not supported.
pub fn math_equal(prediction: &str, reference: &str) -> bool {
    equal_at_depth(prediction, reference, 0)
}

/// Grades a completion against a gold solution as the search-and-learn blog did: the final answer of
/// each is extracted and normalised ([`extract_answer`]), then compared with [`math_equal`]. The gold
/// answer is taken from the solution text (its last `\boxed{}`), not from a separate answer column.
pub fn grade_completion(completion: &str, gold_solution: &str) -> bool {
    math_equal(&extract_answer(completion), &extract_answer(gold_solution))
}

fn equal_at_depth(prediction: &str, reference: &str, depth: usize) -> bool {
    if depth > MAX_RECURSION {
        return false;
    }
    if py_strip(prediction).to_lowercase() == py_strip(reference).to_lowercase() {
        return true;
    }
    if ["A", "B", "C", "D", "E"].contains(&reference)
        && choice_answer_clean(prediction) == reference
    {
        return true;
    }
    if let (Some(p), Some(r)) = (parse_digits(prediction), parse_digits(reference)) {
        return [r / 100.0, r, r * 100.0]
            .iter()
            .any(|&x| is_close(x, p, NUMERIC_REL_TOL));
    }
    if prediction.is_empty() {
        return false;
    }
    let prediction = py_strip(prediction);
    let mut reference = py_strip(reference).to_string();
    if prediction.contains("pmatrix") && !reference.contains("pmatrix") {
        reference = str_to_pmatrix(&reference);
    }
    let reference = reference.as_str();
    structural_equal(prediction, reference, depth)
        || equation_equal(prediction, reference, depth)
        || symbolic_equal(prediction, reference)
}

/// Bracket-insensitive text, tuples / intervals and matrices.
fn structural_equal(prediction: &str, reference: &str, depth: usize) -> bool {
    if bracket_insensitive_equal(prediction, reference) {
        return true;
    }
    if looks_bracketed(prediction) && looks_bracketed(reference) {
        let inner = |s: &str| -> String {
            let mut chars = s.chars();
            chars.next();
            chars.next_back();
            chars.as_str().to_string()
        };
        let (p, r) = (inner(prediction), inner(reference));
        let (p_parts, r_parts): (Vec<&str>, Vec<&str>) =
            (p.split(',').collect(), r.split(',').collect());
        if p_parts.len() == r_parts.len()
            && p_parts
                .iter()
                .zip(&r_parts)
                .all(|(a, b)| equal_at_depth(a, b, depth + 1))
        {
            return true;
        }
    }
    matrices_equal(prediction, reference, depth)
}

/// `\b(A|B|C|D|E)\b` on the upper-cased text, last hit; else the stripped text (reference
/// `choice_answer_clean`, its second definition, which is the one in effect).
pub fn choice_answer_clean(prediction: &str) -> String {
    let p = prediction
        .trim_matches('\n')
        .trim_end_matches('.')
        .trim_end_matches('/');
    let p = p.trim_matches(' ').trim_start_matches(':');
    let upper = p.to_uppercase();
    let picked = match CHOICE_LETTER.find_iter(&upper).last() {
        Some(m) => m.as_str().to_string(),
        None => py_strip(p).trim_matches('.').to_string(),
    };
    picked
        .trim_end_matches('.')
        .trim_end_matches('/')
        .to_string()
}

/// `parse_digits`: commas removed, then a float, or a float followed by `%` / `\%` divided by 100.
fn parse_digits(s: &str) -> Option<f64> {
    let s = s.replace(',', "");
    if let Some(x) = py_float(&s) {
        return Some(x);
    }
    let body = s.strip_suffix('%')?;
    let body = body.strip_suffix('\\').unwrap_or(body);
    py_float(body).map(|x| x / 100.0)
}

/// Python's `math.isclose(a, b, rel_tol=tol)` with no absolute tolerance.
fn is_close(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs())
}

/// The reference's `str_to_pmatrix`: each `{..,..}` group becomes a one-row pmatrix.
fn str_to_pmatrix(s: &str) -> String {
    let groups: Vec<String> = MATRIX_LIKE
        .find_iter(py_strip(s))
        .map(|m| {
            let inner = m.as_str().trim_matches(|c| c == '{' || c == '}');
            format!(
                "\\begin{{pmatrix}}{}\\end{{pmatrix}}",
                inner.replace(',', "\\")
            )
        })
        .collect();
    groups.join(", ")
}

fn bracket_insensitive_equal(prediction: &str, reference: &str) -> bool {
    let strip_outer =
        (prediction.starts_with('[') && prediction.ends_with(']') && !reference.starts_with('('))
            || (prediction.starts_with('(')
                && prediction.ends_with(')')
                && !reference.starts_with('['));
    let brackets = |c: char| matches!(c, '[' | ']' | '(' | ')');
    let (mut p, mut r) = (prediction, reference);
    if strip_outer {
        p = p.trim_matches(brackets);
        r = r.trim_matches(brackets);
    }
    let drop = |s: &str| s.replace(['{', '}', '(', ')'], "").to_lowercase();
    drop(p) == drop(r)
}

/// `regex.match(r"(\(|\[).+(\)|\])", s)`: opens with a bracket and closes one later on the same line.
fn looks_bracketed(s: &str) -> bool {
    let mut chars = s.chars();
    if !matches!(chars.next(), Some('(' | '[')) {
        return false;
    }
    let rest: Vec<char> = chars.take_while(|&c| c != '\n').collect();
    rest.iter().skip(1).any(|&c| c == ')' || c == ']')
}

fn matrix_body(s: &str) -> Option<&str> {
    let begins = s.starts_with("\\begin{pmatrix}") || s.starts_with("\\begin{bmatrix}");
    let ends = s.ends_with("\\end{pmatrix}") || s.ends_with("\\end{bmatrix}");
    let (start, end) = (
        "\\begin{pmatrix}".len(),
        s.len().checked_sub("\\end{pmatrix}".len())?,
    );
    (begins && ends && start <= end).then(|| &s[start..end])
}

fn matrices_equal(prediction: &str, reference: &str, depth: usize) -> bool {
    let (Some(p), Some(r)) = (matrix_body(prediction), matrix_body(reference)) else {
        return false;
    };
    let rows = |body: &str| -> Vec<String> {
        body.split("\\\\")
            .map(|l| py_strip(l).to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let (p_rows, r_rows) = (rows(p), rows(r));
    p_rows.len() == r_rows.len()
        && p_rows.iter().zip(&r_rows).all(|(pl, rl)| {
            let (pc, rc): (Vec<&str>, Vec<&str>) =
                (pl.split('&').collect(), rl.split('&').collect());
            pc.len() == rc.len()
                && pc
                    .iter()
                    .zip(&rc)
                    .all(|(a, b)| equal_at_depth(a, b, depth + 1))
        })
}

/// Two equations compare as `lhs - (rhs)`, also negated; `x = v` against a plain value compares `v`.
fn equation_equal(prediction: &str, reference: &str, depth: usize) -> bool {
    let (p_eq, r_eq) = (
        prediction.matches('=').count(),
        reference.matches('=').count(),
    );
    let split = |s: &str| {
        s.split_once('=')
            .map(|(l, r)| (l.to_string(), r.to_string()))
    };
    if p_eq == 1 && r_eq == 1 {
        let (Some((pl, pr)), Some((rl, rr))) = (split(prediction), split(reference)) else {
            return false;
        };
        let p = format!("{} - ({})", py_strip(&pl), py_strip(&pr));
        let r = format!("{} - ({})", py_strip(&rl), py_strip(&rr));
        return symbolic_equal(&p, &r) || symbolic_equal(&format!("-({p})"), &r);
    }
    let short_lhs = |s: &str| split(s).is_some_and(|(l, _)| py_strip(&l).chars().count() <= 2);
    if p_eq == 1 && short_lhs(prediction) && r_eq == 0 {
        let rhs = split(prediction).map(|(_, r)| r).unwrap_or_default();
        return equal_at_depth(&rhs, reference, depth + 1);
    }
    if r_eq == 1 && short_lhs(reference) && p_eq == 0 {
        let rhs = split(reference).map(|(_, r)| r).unwrap_or_default();
        return equal_at_depth(prediction, &rhs, depth + 1);
    }
    false
}

/// The symbolic stage: both sides parsed by [`expr::parse`] and compared by value. Math-mode
/// dollar signs are dropped first (latex2sympy reads `$5$` as 5; an escaped `\$` stays and fails).
fn symbolic_equal(a: &str, b: &str) -> bool {
    let unescape = |s: &str| s.replace("\\\\", "\\");
    let parse = |s: &str| {
        let s = drop_math_dollars(s);
        expr::parse(&unescape(&s)).or_else(|_| expr::parse(&s))
    };
    match (parse(a), parse(b)) {
        (Ok(Parsed::Expr(x)), Ok(Parsed::Expr(y))) => values_equal(&x, &y),
        (Ok(Parsed::Equation(xl, xr)), Ok(Parsed::Equation(yl, yr))) => {
            let diff = |l: Expr, r: Expr| Expr::Bin(expr::BinOp::Sub, Box::new(l), Box::new(r));
            let abs = |e: Expr| Expr::Call(expr::Func::Abs, Box::new(e));
            values_equal(&abs(diff(xl, xr)), &abs(diff(yl, yr)))
        }
        (Ok(Parsed::Tuple(xs)), Ok(Parsed::Tuple(ys))) => {
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|(x, y)| values_equal(x, y))
        }
        (Ok(Parsed::Set(xs)), Ok(Parsed::Set(ys))) => set_covers(&xs, &ys) && set_covers(&ys, &xs),
        (Ok(Parsed::Relation(xr, xl, xh)), Ok(Parsed::Relation(yr, yl, yh))) => {
            relations_equal((xr, xl, xh), (yr, yl, yh))
        }
        _ => false,
    }
}

/// `$` signs that are not escaped as `\$`, removed.
fn drop_math_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if c == '$' && !escaped {
            continue;
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

/// Two inequalities are the same when, written with `>` or `>=` (`a < b` is `b > a`), they have
/// the same relation and the same difference `lhs - rhs` (by value); `!=` is symmetric, so its
/// differences are compared up to sign.
///
/// Deliberate difference: the reference compares any two relations by `|lhs - rhs|` alone, so it
/// calls `x > 2` equal to `x < 2` and to `x >= 2`; a grader must not.
fn relations_equal(a: (Rel, Expr, Expr), b: (Rel, Expr, Expr)) -> bool {
    fn canonical((rel, lhs, rhs): (Rel, Expr, Expr)) -> (Rel, Expr) {
        let diff = |l: Expr, r: Expr| Expr::Bin(expr::BinOp::Sub, Box::new(l), Box::new(r));
        match rel {
            Rel::Lt => (Rel::Gt, diff(rhs, lhs)),
            Rel::Le => (Rel::Ge, diff(rhs, lhs)),
            Rel::Ne => (
                Rel::Ne,
                Expr::Call(expr::Func::Abs, Box::new(diff(lhs, rhs))),
            ),
            other => (other, diff(lhs, rhs)),
        }
    }
    let ((ra, da), (rb, db)) = (canonical(a), canonical(b));
    ra == rb && values_equal(&da, &db)
}

/// Every element of `from` equals some element of `to` (Python set equality, duplicates ignored).
fn set_covers(from: &[Expr], to: &[Expr]) -> bool {
    from.iter().all(|x| to.iter().any(|y| values_equal(x, y)))
}

/// Constants: equal within the numeric tolerance, and never when either is undefined (NaN). With
/// symbols: at every sample point both sides are undefined or both are defined and equal, and both
/// are defined at one point at least. An undefined value (`\sqrt{-1}`, `\log(-1)`, `\frac{0}{0}`)
/// therefore equals nothing, as sympy's complex and undefined values equal no real expression.
fn values_equal(a: &Expr, b: &Expr) -> bool {
    let mut symbols = a.symbols();
    symbols.extend(b.symbols());
    if symbols.is_empty() {
        let (x, y) = (a.eval(&|_| f64::NAN), b.eval(&|_| f64::NAN));
        return !x.is_nan() && !y.is_nan() && is_close(y, x, NUMERIC_REL_TOL);
    }
    let names: Vec<String> = symbols.into_iter().collect();
    let mut compared = 0;
    for point in 0..4 {
        let value_of = |name: &str| sample_value(&names, name, point);
        let (x, y) = (a.eval(&value_of), b.eval(&value_of));
        if x.is_nan() && y.is_nan() {
            continue;
        }
        if x.is_nan() || y.is_nan() {
            return false;
        }
        if !is_close(x, y, SYMBOLIC_REL_TOL) && (x - y).abs() > 1e-12 {
            return false;
        }
        compared += 1;
    }
    compared > 0
}

/// Fixed, irregular sample values so that distinct polynomials are unlikely to agree by chance.
fn sample_value(names: &[String], name: &str, point: usize) -> f64 {
    let index = names.iter().position(|n| n == name).unwrap_or(0) as f64;
    0.377 + 0.731 * point as f64 + 0.1913 * index + 0.0517 * (point as f64 * index).sin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_percentages() {
        assert!(math_equal("0.5", "\\frac{1}{2}"));
        assert!(math_equal("50", "0.5"));
        assert!(math_equal("12\\%", "0.12"));
        assert!(!math_equal("3", "4"));
    }

    #[test]
    fn grading_extracts_both_sides() {
        let gold = "Adding gives $\\boxed{\\dfrac{1}{2}}$.";
        assert!(grade_completion(
            "so the answer is: $\\boxed{0.5}$. I hope",
            gold
        ));
        assert!(grade_completion("The answer is 1/2.", gold));
        // strip_string deletes `%` before comparison, so 50% becomes 50 (the reference does the same).
        assert!(!grade_completion("The answer is 50%", gold));
        assert!(!grade_completion("The answer is 3", gold));
    }

    #[test]
    fn symbols_compare_at_points() {
        assert!(math_equal("x^2+2x+1", "(x+1)^2"));
        assert!(!math_equal("x^2+1", "(x+1)^2"));
        assert!(math_equal("y - 2x = 1", "2x - y = -1"));
    }
}
