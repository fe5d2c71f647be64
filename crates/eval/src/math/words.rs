//! Spelled-out numbers to digits, as the `word2number` package (1.1) does it for `strip_string`.
//!
//! Hazard (kept on purpose, it is the reference's behaviour): the conversion keeps only the words it
//! knows and ignores every other word, so `"x plus one"` becomes `"1"` and `"the point"` becomes `"0"`.
//! A string of Unicode decimal digits is re-printed in ASCII without leading zeros (`"007"` becomes
//! `"7"`), except beyond 4300 digits, where Python's `int()` refuses and the text is kept.

use super::pystr::{decimal_value, is_py_decimal, py_float_repr, py_split_whitespace};

/// Python refuses to convert longer digit strings to `int` (`sys.int_info.default_max_str_digits`).
const PY_MAX_INT_DIGITS: usize = 4300;

fn word_value(word: &str) -> Option<i128> {
    const WORDS: [(&str, i128); 33] = [
        ("zero", 0),
        ("one", 1),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
        ("twenty", 20),
        ("thirty", 30),
        ("forty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
        ("hundred", 100),
        ("thousand", 1_000),
        ("million", 1_000_000),
        ("billion", 1_000_000_000),
        ("point", -1),
    ];
    WORDS.iter().find(|(w, _)| *w == word).map(|&(_, v)| v)
}

/// `convert_word_number`: the text converted to a number string, or unchanged where the package raises.
pub(crate) fn convert_word_number(text: &str) -> String {
    word_to_num(text).unwrap_or_else(|| text.to_string())
}

/// `w2n.word_to_num` rendered with Python's `str()`; `None` where the package raises.
fn word_to_num(sentence: &str) -> Option<String> {
    let sentence = sentence.replace('-', " ").to_lowercase();
    if !sentence.is_empty() && sentence.chars().all(is_py_decimal) {
        return digits_to_int_string(&sentence);
    }
    let mut numbers: Vec<&str> = py_split_whitespace(&sentence)
        .filter(|w| word_value(w).is_some())
        .collect();
    if numbers.is_empty() {
        return None;
    }
    let count = |w: &str, list: &[&str]| list.iter().filter(|x| **x == w).count();
    if ["thousand", "million", "billion", "point"]
        .iter()
        .any(|w| count(w, &numbers) > 1)
    {
        return None;
    }
    let mut decimals: Vec<&str> = Vec::new();
    if let Some(p) = numbers.iter().position(|w| *w == "point") {
        decimals = numbers[p + 1..].to_vec();
        numbers.truncate(p);
    }
    let total = integer_part(&numbers)?;
    let fraction = if decimals.is_empty() {
        None
    } else {
        decimal_sum(&decimals)
    };
    Some(match fraction {
        Some(f) => py_float_repr(total as f64 + f),
        None => total.to_string(),
    })
}

fn digits_to_int_string(s: &str) -> Option<String> {
    if s.chars().count() > PY_MAX_INT_DIGITS {
        return None;
    }
    let digits: String = s
        .chars()
        .filter_map(decimal_value)
        .map(|d| char::from_digit(d, 10).unwrap_or('0'))
        .collect();
    let trimmed = digits.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    })
}

fn index_of(words: &[&str], w: &str) -> Option<usize> {
    words.iter().position(|x| *x == w)
}

/// The integer before "point", following the package's index arithmetic exactly.
fn integer_part(words: &[&str]) -> Option<i128> {
    let billion = index_of(words, "billion");
    let million = index_of(words, "million");
    let thousand = index_of(words, "thousand");
    let before = |a: Option<usize>, b: Option<usize>| matches!((a, b), (Some(x), Some(y)) if x < y);
    if before(thousand, million) || before(thousand, billion) || before(million, billion) {
        return None;
    }
    match words.len() {
        0 => return Some(0),
        1 => return word_value(words[0]),
        _ => {}
    }
    let mut total = 0i128;
    if let Some(b) = billion {
        total += formation(words.get(..b)?)? * 1_000_000_000;
    }
    if let Some(m) = million {
        let start = billion.map_or(0, |b| b + 1);
        total += formation(words.get(start..m)?)? * 1_000_000;
    }
    if let Some(t) = thousand {
        let start = million.or(billion).map_or(0, |i| i + 1);
        total += formation(words.get(start..t)?)? * 1_000;
    }
    Some(total + tail_after_last_multiplier(words, thousand, million, billion)?)
}

/// The `elif` chain of the package for the part after the largest multiplier word.
fn tail_after_last_multiplier(
    words: &[&str],
    thousand: Option<usize>,
    million: Option<usize>,
    billion: Option<usize>,
) -> Option<i128> {
    let last = words.len() - 1;
    for index in [thousand, million, billion].into_iter().flatten() {
        if index != last {
            return formation(&words[index + 1..]);
        }
    }
    if thousand.is_none() && million.is_none() && billion.is_none() {
        return formation(words);
    }
    Some(0)
}

/// `number_formation`: combines up to four words; an empty list raises (IndexError) in the package.
fn formation(words: &[&str]) -> Option<i128> {
    let n: Vec<i128> = words.iter().map(|w| word_value(w)).collect::<Option<_>>()?;
    match n.len() {
        0 => None,
        4 => Some(n[0] * n[1] + n[2] + n[3]),
        3 => Some(n[0] * n[1] + n[2]),
        2 if n.contains(&100) => Some(n[0] * n[1]),
        2 => Some(n[0] + n[1]),
        _ => Some(n[0]),
    }
}

/// `get_decimal_sum`: digits after "point"; any non-digit word makes the package add an integer 0.
fn decimal_sum(words: &[&str]) -> Option<f64> {
    let digits: Option<String> = words
        .iter()
        .map(|w| match word_value(w) {
            Some(v @ 0..=9) => Some(char::from_digit(v as u32, 10).unwrap_or('0')),
            _ => None,
        })
        .collect();
    digits.and_then(|d| format!("0.{d}").parse().ok())
}

#[cfg(test)]
mod tests {
    use super::convert_word_number as c;

    #[test]
    fn package_behaviour() {
        assert_eq!(c("five"), "5");
        assert_eq!(c("twenty-one"), "21");
        assert_eq!(c("one hundred and five"), "105");
        assert_eq!(c("two point five"), "2.5");
        assert_eq!(c("one point zero"), "1.0");
        assert_eq!(c("point"), "0");
        assert_eq!(c("one point hundred"), "1");
        // The package double-counts the words after "million" here; kept as the reference does.
        assert_eq!(c("two million three thousand"), "2004003");
        assert_eq!(c("thousand million"), "thousand million");
        assert_eq!(c("x plus one"), "1");
        assert_eq!(c("007"), "7");
        assert_eq!(c("١٢"), "12");
        assert_eq!(c("²"), "²");
        assert_eq!(c("hello"), "hello");
        assert_eq!(c("thousand thousand"), "thousand thousand");
    }
}
