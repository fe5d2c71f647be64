//! Checks a chain-of-thought row against its own arithmetic, and fingerprints a problem by its
//! numbers and equations.
//!
//! **Verification.** Every equation the reasoning writes (`5 * 10 = 50`, a calculator annotation
//! `<<5*10=50>>`, `3 x 4 = 12`) is recomputed; a row whose equation does not hold, or whose numeric
//! final answer appears nowhere in reasoning that does compute something, is wrong. Rows without
//! equations cannot be verified this way and are left alone (no false positive on prose).
//!
//! **Signature.** A copied problem keeps its numbers and its arithmetic even when every word is
//! swapped for a synonym and the sentences are reordered; an honest row written from the same
//! template draws other numbers. [`problem_signature`] is the multiset of the prompt's numbers
//! together with the equations of the reasoning, normalised, so paraphrase copies and one-word
//! edits of evaluation questions match exactly while template-mates do not.

use serde::{Deserialize, Serialize};

/// A token of an arithmetic expression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Num { value: f64, decimals: u32 },
    Op(char),
    Open,
    Close,
    Eq,
    Other,
}

/// Splits text into numbers, operators, parentheses, `=` and everything else (one `Other` per
/// run of other characters, so words break expressions apart).
fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut j = i;
            let mut digits = String::new();
            let mut decimals = 0u32;
            let mut seen_point = false;
            while j < chars.len() {
                let d = chars[j];
                if d.is_ascii_digit() {
                    digits.push(d);
                    if seen_point {
                        decimals += 1;
                    }
                } else if d == ',' && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                    // thousands separator
                } else if d == '.'
                    && !seen_point
                    && chars.get(j + 1).is_some_and(char::is_ascii_digit)
                {
                    digits.push('.');
                    seen_point = true;
                } else {
                    break;
                }
                j += 1;
            }
            let mut value: f64 = digits.parse().unwrap_or(f64::NAN);
            if chars.get(j) == Some(&'%') {
                value /= 100.0;
                j += 1;
            }
            out.push(Tok::Num { value, decimals });
            i = j;
            continue;
        }
        match c {
            '+' | '-' | '*' | '/' | '×' | '÷' | '−' => {
                out.push(Tok::Op(match c {
                    '×' => '*',
                    '÷' => '/',
                    '−' => '-',
                    other => other,
                }));
            }
            'x' | 'X'
                if matches!(out.last(), Some(Tok::Num { .. }))
                    && !chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_alphabetic() || *n == '_')
                    && (i == 0 || !chars[i - 1].is_alphabetic()) =>
            {
                out.push(Tok::Op('*'));
            }
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '=' => out.push(Tok::Eq),
            '$' | ' ' | '\t' => {}
            _ => {
                if out.last() != Some(&Tok::Other) {
                    out.push(Tok::Other);
                }
            }
        }
        i += 1;
    }
    out
}

/// One equation found in a text: the expression, its value and the stated result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Equation {
    /// The left side, normalised (`5*10`).
    pub expression: String,
    /// Its value.
    pub computed: f64,
    /// The number written after `=`.
    pub stated: f64,
    /// Whether the stated number equals the value (to the stated number's decimals when the
    /// expression divides or takes a percentage).
    pub holds: bool,
}

/// Every `expression = number` in `text` whose left side has at least one operator.
pub fn equations(text: &str) -> Vec<Equation> {
    let toks = tokens(text);
    let mut out = Vec::new();
    for (eq, _) in toks.iter().enumerate().filter(|(_, t)| **t == Tok::Eq) {
        // A minus right after `=` belongs to the result.
        let (negative, at) = match toks.get(eq + 1) {
            Some(Tok::Op('-')) => (true, eq + 2),
            _ => (false, eq + 1),
        };
        let Some(Tok::Num {
            value: stated,
            decimals,
        }) = toks.get(at).copied()
        else {
            continue;
        };
        let stated = if negative { -stated } else { stated };
        let mut start = eq;
        while start > 0
            && matches!(
                toks[start - 1],
                Tok::Num { .. } | Tok::Op(_) | Tok::Open | Tok::Close
            )
        {
            start -= 1;
        }
        let mut lhs = &toks[start..eq];
        // An opening parenthesis that the left side never closes wraps the whole equation
        // (`(6*4=24)`, `so (3 + 4 = 7)`): it is not part of the expression.
        while lhs.first() == Some(&Tok::Open) && unclosed(lhs) > 0 {
            lhs = &lhs[1..];
        }
        if !lhs.iter().any(|t| matches!(t, Tok::Op(_))) {
            continue;
        }
        let Some(computed) = evaluate(lhs) else {
            continue;
        };
        let approximate =
            lhs.iter().any(|t| matches!(t, Tok::Op('/'))) || text.contains('%') || decimals > 0;
        let tolerance = if approximate {
            0.5 * 10f64.powi(-(decimals as i32)) + 1e-9
        } else {
            1e-9 * computed.abs().max(1.0)
        };
        out.push(Equation {
            expression: render(lhs),
            computed,
            stated,
            holds: (computed - stated).abs() <= tolerance,
        });
    }
    out
}

/// Opening parentheses of `toks` left without a closing one.
fn unclosed(toks: &[Tok]) -> usize {
    let opens = toks.iter().filter(|t| **t == Tok::Open).count();
    let closes = toks.iter().filter(|t| **t == Tok::Close).count();
    opens.saturating_sub(closes)
}

fn render(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Num { value, .. } => format!("{value}"),
            Tok::Op(c) => c.to_string(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Eq => "=".into(),
            Tok::Other => " ".into(),
        })
        .collect()
}

/// Evaluates `+ - * /` with precedence and parentheses; `None` when malformed.
fn evaluate(toks: &[Tok]) -> Option<f64> {
    let mut pos = 0;
    let value = sum(toks, &mut pos)?;
    (pos == toks.len() && value.is_finite()).then_some(value)
}

fn sum(toks: &[Tok], pos: &mut usize) -> Option<f64> {
    let mut acc = product(toks, pos)?;
    while let Some(Tok::Op(op @ ('+' | '-'))) = toks.get(*pos).copied() {
        *pos += 1;
        let rhs = product(toks, pos)?;
        acc = if op == '+' { acc + rhs } else { acc - rhs };
    }
    Some(acc)
}

fn product(toks: &[Tok], pos: &mut usize) -> Option<f64> {
    let mut acc = atom(toks, pos)?;
    while let Some(Tok::Op(op @ ('*' | '/'))) = toks.get(*pos).copied() {
        *pos += 1;
        let rhs = atom(toks, pos)?;
        acc = if op == '*' { acc * rhs } else { acc / rhs };
    }
    Some(acc)
}

fn atom(toks: &[Tok], pos: &mut usize) -> Option<f64> {
    match toks.get(*pos).copied()? {
        Tok::Num { value, .. } => {
            *pos += 1;
            Some(value)
        }
        Tok::Op('-') => {
            *pos += 1;
            atom(toks, pos).map(|v| -v)
        }
        Tok::Open => {
            *pos += 1;
            let v = sum(toks, pos)?;
            (toks.get(*pos) == Some(&Tok::Close)).then(|| {
                *pos += 1;
                v
            })
        }
        _ => None,
    }
}

/// Why a row's arithmetic is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArithmeticError {
    /// An equation of the reasoning does not hold.
    WrongStep {
        /// The expression.
        expression: String,
        /// What it evaluates to.
        computed: f64,
        /// What the row says it is.
        stated: f64,
    },
    /// The final answer is a number that the reasoning never reaches.
    AnswerNotReached {
        /// The final answer.
        answer: String,
    },
}

impl ArithmeticError {
    /// One line for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::WrongStep {
                expression,
                computed,
                stated,
            } => format!("wrong arithmetic: {expression} is {computed}, the row says {stated}"),
            Self::AnswerNotReached { answer } => {
                format!("final answer {answer} appears nowhere in the reasoning's results")
            }
        }
    }
}

/// The numeric value of a final answer (`1,250`, `$12`, `-3.5`, `12 apples`), if it is a number.
pub fn answer_value(answer: &str) -> Option<f64> {
    let toks = tokens(answer.trim());
    let mut nums = toks.iter().filter_map(|t| match t {
        Tok::Num { value, .. } => Some(*value),
        _ => None,
    });
    let first = nums.next()?;
    if nums.next().is_some() {
        return None; // "3/4", "2 to 3": not a single number
    }
    let negative = answer.trim_start().starts_with(['-', '−']);
    Some(if negative { -first } else { first })
}

/// Checks a row's reasoning and final answer against its own arithmetic. `Ok` also for rows with
/// nothing to check.
pub fn verify_row(chain_of_thought: &str, final_answer: &str) -> Result<(), ArithmeticError> {
    let found = equations(chain_of_thought);
    if let Some(bad) = found.iter().find(|e| !e.holds) {
        return Err(ArithmeticError::WrongStep {
            expression: bad.expression.clone(),
            computed: bad.computed,
            stated: bad.stated,
        });
    }
    if found.is_empty() {
        return Ok(());
    }
    let Some(answer) = answer_value(final_answer) else {
        return Ok(());
    };
    let reached = tokens(chain_of_thought).iter().any(|t| match t {
        Tok::Num { value, .. } => (value - answer.abs()).abs() <= 1e-6 * answer.abs().max(1.0),
        _ => false,
    });
    if reached {
        Ok(())
    } else {
        Err(ArithmeticError::AnswerNotReached {
            answer: final_answer.trim().to_string(),
        })
    }
}

/// A problem's numbers-and-arithmetic fingerprint (see the module docs): the prompt's numbers,
/// sorted, and the reasoning's equations with their layout forgotten (operands and operators
/// sorted, then the stated result), sorted. `None` when the
/// prompt has fewer than `min_numbers` numbers (too little to tell problems apart).
pub fn problem_signature(
    prompt: &str,
    chain_of_thought: &str,
    min_numbers: usize,
) -> Option<String> {
    let numbers = prompt_numbers(prompt);
    if numbers.len() < min_numbers {
        return None;
    }
    let mut eqs: Vec<String> = equations(chain_of_thought)
        .iter()
        .map(equation_key)
        .collect();
    eqs.sort();
    eqs.dedup();
    Some(format!("{}|{}", numbers.join(","), eqs.join(";")))
}

/// An equation with its layout forgotten: the operands sorted, the operators sorted, and the
/// stated result (`4 * 6 = 24`, `(6*4) = 24` and `6 x 4 = 24` all give `4,6*=24`). A copier can
/// commute operands and add parentheses; the arithmetic stays.
fn equation_key(equation: &Equation) -> String {
    let toks = tokens(&equation.expression);
    let mut operands: Vec<String> = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Num { value, .. } => Some(format!("{value}")),
            _ => None,
        })
        .collect();
    operands.sort();
    let mut operators: Vec<char> = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Op(c) => Some(*c),
            _ => None,
        })
        .collect();
    operators.sort_unstable();
    let operators: String = operators.into_iter().collect();
    format!("{}{operators}={}", operands.join(","), equation.stated)
}

/// The prompt's numbers, normalised and sorted: the question's part of [`problem_signature`].
pub fn prompt_numbers(prompt: &str) -> Vec<String> {
    let mut numbers: Vec<String> = tokens(prompt)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Num { value, .. } => Some(format!("{value}")),
            _ => None,
        })
        .collect();
    numbers.sort();
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equations_in_many_styles_are_recomputed() {
        for text in [
            "5 mugs cost 5 * 10 = <<5*10=50>>50 dollars.",
            "Step 1: 3 x 4 = 12 eggs.",
            "Total: (3 + 4) × 2 = 14.",
            "Each gets 10 / 3 = 3.33 cookies.",
            "That is $1,200 - $200 = $1,000.",
            "20% of the class: 0.2 * 30 = 6 students.",
            "She has 5 - 8 = -3 left.",
        ] {
            let found = equations(text);
            assert!(!found.is_empty(), "{text}");
            assert!(found.iter().all(|e| e.holds), "{text}: {found:?}");
        }
        let wrong = equations("So 16 + 9 = 26 years.");
        assert_eq!(wrong.len(), 1);
        assert!(!wrong[0].holds);
        // Not equations: no operator on the left, or words in between.
        assert!(equations("x = 5, and the total = 12.").is_empty());
        assert!(equations("Let the price be 3 dollars = cheap").is_empty());
    }

    #[test]
    fn rows_are_checked_against_their_own_arithmetic() {
        assert!(verify_row("6 * 7 = 42 cookies.\n42 - 2 = 40.", "40").is_ok());
        assert!(matches!(
            verify_row("6 * 7 = 42 cookies.\n42 - 2 = 41.", "41"),
            Err(ArithmeticError::WrongStep { .. })
        ));
        assert!(matches!(
            verify_row("6 * 7 = 42 cookies.\n42 - 2 = 40.", "38"),
            Err(ArithmeticError::AnswerNotReached { .. })
        ));
        // Prose without equations, and non-numeric answers, are not judged.
        assert!(verify_row("The sky scatters blue light.", "blue").is_ok());
        assert!(verify_row("It takes 2 + 2 = 4 hours.", "four hours").is_ok());
        assert_eq!(answer_value("$1,250"), Some(1250.0));
        assert_eq!(answer_value("-7 apples"), Some(-7.0));
        assert_eq!(answer_value("3/4"), None);
    }

    #[test]
    fn signatures_survive_paraphrase_but_not_new_numbers() {
        let a = problem_signature(
            "Omar bakes 6 trays of cookies with 7 on each tray. He eats 2.",
            "Omar bakes 6 * 7 = <<6*7=42>>42 cookies.\n42 - 2 = 40 left.",
            2,
        );
        let paraphrase = problem_signature(
            "He eats 2. Omar cooks 6 pans of biscuits with 7 on every pan.",
            "There are 6*7 = 42 biscuits. After eating, 42 - 2 = 40 remain.",
            2,
        );
        let template_mate = problem_signature(
            "Omar bakes 5 trays of cookies with 8 on each tray. He eats 3.",
            "Omar bakes 5 * 8 = <<5*8=40>>40 cookies.\n40 - 3 = 37 left.",
            2,
        );
        assert!(a.is_some());
        assert_eq!(a, paraphrase);
        assert_ne!(a, template_mate);
        assert_eq!(problem_signature("What is two plus 2?", "", 2), None);
    }

    #[test]
    fn parenthesised_and_commuted_equations_keep_the_signature() {
        let prompt = "Noah orders 6 pizzas cut into 6 slices each. 9 guests each eat 1 slices.";
        let house = "There are 6 * 6 = <<6*6=36>>36 slices.\n36 - 9 = <<36-9=27>>27 left.";
        let wrapped = [
            "We have 6 * 6 = (6*6=36) 36 slices.\n36 - 9 = (36-9=27) 27 remaining.",
            "So (6 * 6 = 36) slices, and (36 - 9) = 27 remain.",
            "We have [6*6=36] slices; 36 − 9 = 27 remain.",
            "6 x 6 = 36 slices, then 36 - 9 = 27.",
        ];
        let original = problem_signature(prompt, house, 2).unwrap();
        assert!(!original.ends_with('|'), "{original}");
        for text in wrapped {
            assert_eq!(
                problem_signature(prompt, text, 2).as_ref(),
                Some(&original),
                "{text}"
            );
        }
        assert!(equations("so (3 + 4 = 7)")[0].holds);
        assert!(!equations("so (3 + 4 = 8)")[0].holds);
        // Parentheses that belong to the expression stay: (2 + 3) * 4 is 20, not 14.
        assert!(equations("(2 + 3) * 4 = 20")[0].holds);
        assert!(!equations("(2 + 3) * 4 = 14")[0].holds);
    }
}
