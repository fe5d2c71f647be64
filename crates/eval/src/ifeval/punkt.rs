//! Sentence counting as SN37 does it: NLTK's `PunktSentenceTokenizer()` with **no
//! training** (empty abbreviation, collocation, sentence-starter and orthography tables),
//! as in nltk 3.10.4.
//!
//! With empty tables most of Punkt collapses to a few rules, written out below:
//! - every `.`, `?`, `!` token and every token ending in a single `.` is a break candidate
//!   (so "Dr." and "e.g." split sentences, as in SN37);
//! - a candidate that is an initial ("J.") or a number ("3.") is not a break when the next
//!   token starts in lower case or is punctuation; an initial also not when the next token
//!   starts in upper case;
//! - a break is only taken when another token follows it inside the candidate context.
//!
//! Positions are counted in characters (Python string indices), not bytes.

use super::pytext::{is_decimal_digit, is_py_space, is_regex_word};

/// Number of sentences SN37's sentence-count rules see in `text`.
pub fn sentence_count(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let slices = candidate_slices(&chars);
    realigned_count(&chars, &slices)
}

/// `\s` in Python's `regex` module: the Unicode White_Space property.
fn is_regex_space(c: char) -> bool {
    c.is_whitespace()
}

/// Punctuation that cannot be inside a word (Punkt's `_re_non_word_chars`).
fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
            | '?'
            | '!'
    )
}

/// Characters that may not start a word token (Punkt's `_re_word_start`, negated).
fn cannot_start_word(c: char) -> bool {
    matches!(
        c,
        '(' | '"'
            | '`'
            | '{'
            | '['
            | ':'
            | ';'
            | '&'
            | '#'
            | '*'
            | '@'
            | ')'
            | '}'
            | ']'
            | '-'
            | ','
    )
}

/// Length of a multi-character punctuation match (`--+`, `..+`, `. . .`) at `at`, if any.
fn multi_char_len(chars: &[char], at: usize) -> Option<usize> {
    let run = |wanted: char| chars[at..].iter().take_while(|&&c| c == wanted).count();
    if run('-') >= 2 {
        return Some(run('-'));
    }
    if run('.') >= 2 {
        return Some(run('.'));
    }
    // `(?:\.\s){2,}\.` : greedy pairs, then a final period (backtracking one pair if needed).
    let mut pairs = 0;
    while at + 2 * pairs + 1 < chars.len()
        && chars[at + 2 * pairs] == '.'
        && is_regex_space(chars[at + 2 * pairs + 1])
    {
        pairs += 1;
    }
    if pairs >= 2 && chars.get(at + 2 * pairs) == Some(&'.') {
        return Some(2 * pairs + 1);
    }
    if pairs >= 3 {
        return Some(2 * pairs - 1);
    }
    None
}

/// Whether a word token may end before position `at` (the lookahead of Punkt's word regex).
fn word_may_end_at(chars: &[char], at: usize) -> bool {
    let Some(&c) = chars.get(at) else {
        return true;
    };
    if is_regex_space(c) || is_non_word(c) || multi_char_len(chars, at).is_some() {
        return true;
    }
    c == ','
        && chars.get(at + 1).is_none_or(|&next| {
            is_regex_space(next) || is_non_word(next) || multi_char_len(chars, at + 1).is_some()
        })
}

/// Punkt's word tokenizer on one line (no `\n` inside).
fn word_tokens(line: &[char]) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < line.len() {
        let c = line[at];
        if is_regex_space(c) {
            at += 1;
            continue;
        }
        let len = if let Some(len) = multi_char_len(line, at) {
            len
        } else if !cannot_start_word(c) {
            let mut end = at + 1;
            while end < line.len() && !is_regex_space(line[end]) && !word_may_end_at(line, end) {
                end += 1;
            }
            end - at
        } else {
            1
        };
        tokens.push(line[at..at + len].iter().collect());
        at += len;
    }
    tokens
}

/// Punkt's `_tokenize_words`: lines split on `\n`, blank lines skipped.
fn tokenize_words(chars: &[char]) -> Vec<String> {
    chars
        .split(|&c| c == '\n')
        .filter(|line| line.iter().any(|&c| !is_py_space(c)))
        .flat_map(word_tokens)
        .collect()
}

/// `^-?[\.,]?\d[\d,\.-]*\.?$` on the lower-cased token: Punkt's "number" type.
fn is_number_token(token: &str) -> bool {
    let lower: Vec<char> = token.to_lowercase().chars().collect();
    let mut at = 0;
    if lower.get(at) == Some(&'-') {
        at += 1;
    }
    if matches!(lower.get(at), Some('.' | ',')) {
        at += 1;
    }
    if !lower.get(at).is_some_and(|&c| is_decimal_digit(c)) {
        return false;
    }
    // The tail class `[\d,\.-]` already contains the optional final period.
    lower[at + 1..]
        .iter()
        .all(|&c| is_decimal_digit(c) || matches!(c, ',' | '.' | '-'))
}

/// `[^\W\d]\.$`: a single letter followed by a period ("J.").
fn is_initial(token: &[char]) -> bool {
    token.len() == 2 && token[1] == '.' && is_regex_word(token[0]) && !is_decimal_digit(token[0])
}

/// First-pass annotation: is this token a sentence break candidate?
fn first_pass_sentbreak(token: &str) -> bool {
    let is_end_char = matches!(token, "." | "?" | "!");
    let is_ellipsis = token.len() >= 2 && token.chars().all(|c| c == '.');
    is_end_char || (!is_ellipsis && token.ends_with('.') && !token.ends_with(".."))
}

/// Second pass with empty parameters: initials and numbers followed by a lower-case word or
/// punctuation are abbreviations; initials followed by an upper-case word too.
fn second_pass_keeps_break(token: &str, next: &str) -> bool {
    let chars: Vec<char> = token.chars().collect();
    let initial = is_initial(&chars);
    if !(initial || is_number_token(token)) {
        return true;
    }
    let Some(first) = next.chars().next() else {
        return true;
    };
    let next_is_punctuation = matches!(next, ";" | ":" | "," | "." | "!" | "?");
    let first_lower = first.is_lowercase() && !first.is_uppercase();
    let first_upper = first.is_uppercase() && !first.is_lowercase();
    if next_is_punctuation || first_lower {
        return false;
    }
    !(initial && first_upper)
}

/// Punkt's `text_contains_sentbreak`: a break token followed by any other token.
fn contains_sentbreak(context: &[char]) -> bool {
    let tokens = tokenize_words(context);
    tokens.windows(2).any(|pair| {
        first_pass_sentbreak(&pair[0])
            && (!pair[0].ends_with('.') || second_pass_keeps_break(&pair[0], &pair[1]))
    })
}

/// One match of Punkt's period-context regex: an end character and what follows it.
struct EndContext {
    start: usize,
    /// End of the text the lookahead saw (`after_tok`).
    after_end: usize,
    /// Start of the next whitespace-separated token, when the lookahead took that branch.
    next_token_start: Option<usize>,
}

/// Finds `[.?!]` followed by non-word punctuation or by whitespace and another token.
fn end_contexts(chars: &[char]) -> Vec<EndContext> {
    let mut found = Vec::new();
    for (at, &c) in chars.iter().enumerate() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let after = at + 1;
        if chars.get(after).is_some_and(|&c| is_non_word(c)) {
            found.push(EndContext {
                start: at,
                after_end: after + 1,
                next_token_start: None,
            });
            continue;
        }
        let spaces = chars[after..]
            .iter()
            .take_while(|&&c| is_regex_space(c))
            .count();
        let token_start = after + spaces;
        let token_len = chars[token_start..]
            .iter()
            .take_while(|&&c| !is_regex_space(c))
            .count();
        if spaces > 0 && token_len > 0 {
            found.push(EndContext {
                start: at,
                after_end: token_start + token_len,
                next_token_start: Some(token_start),
            });
        }
    }
    found
}

/// Index of the last ASCII whitespace in `chars`, or 0 when none (NLTK's quirk: a
/// whitespace at index 0 also reads as "none").
fn last_ascii_whitespace(chars: &[char]) -> usize {
    chars
        .iter()
        .rposition(|&c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{0b}' | '\u{0c}'))
        .unwrap_or(0)
}

/// Punkt's `_match_potential_end_contexts`: each end context with the word before it,
/// dropping a context whose word overlaps the next one's.
fn contexts_with_words(chars: &[char]) -> Vec<(EndContext, Vec<char>)> {
    let mut kept = Vec::new();
    let mut previous: Option<(EndContext, (usize, usize))> = None;
    let mut previous_word = (0usize, 0usize);
    for context in end_contexts(chars) {
        let before = &chars[previous_word.1..context.start];
        let last_space = last_ascii_whitespace(before);
        let word_start = if last_space > 0 {
            last_space + previous_word.1 + 1
        } else {
            previous_word.0
        };
        let word = (word_start, context.start);
        if let Some((prev_context, prev_word)) = previous.take()
            && prev_word.1 <= word.0
        {
            kept.push(with_text(chars, prev_context, prev_word));
        }
        previous = Some((context, word));
        previous_word = word;
    }
    if let Some((context, word)) = previous {
        kept.push(with_text(chars, context, word));
    }
    kept
}

/// The text Punkt tests for a break: previous word + end character + lookahead text.
fn with_text(chars: &[char], context: EndContext, word: (usize, usize)) -> (EndContext, Vec<char>) {
    let mut text: Vec<char> = chars[word.0..word.1.max(word.0)].to_vec();
    text.extend_from_slice(&chars[context.start..context.after_end]);
    (context, text)
}

/// Punkt's `_slices_from_text`: sentence spans before boundary realignment.
fn candidate_slices(chars: &[char]) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (context, text) in contexts_with_words(chars) {
        if contains_sentbreak(&text) {
            slices.push((last_break, context.start + 1));
            last_break = context.next_token_start.unwrap_or(context.start + 1);
        }
    }
    let trimmed_len = chars
        .iter()
        .rposition(|&c| !is_py_space(c))
        .map_or(0, |i| i + 1);
    slices.push((last_break, trimmed_len));
    slices
}

/// Length of the closing-punctuation prefix that realignment moves onto the previous
/// sentence: `["')\]}‘’“”«»]+?(?:\s+|(?=--)|$)` (multiline), or `None`.
fn realignment_match(sentence: &[char]) -> Option<(usize, usize)> {
    let is_closer = |c: char| {
        matches!(
            c,
            '"' | '\''
                | ')'
                | ']'
                | '}'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201c}'
                | '\u{201d}'
                | '\u{ab}'
                | '\u{bb}'
        )
    };
    let closers = sentence.iter().take_while(|&&c| is_closer(c)).count();
    // Lazy `+?`: the shortest run of closers after which the tail matches.
    (1..=closers).find_map(|len| {
        let rest = &sentence[len..];
        let spaces = rest.iter().take_while(|&&c| is_regex_space(c)).count();
        if spaces > 0 {
            return Some((len, len + spaces));
        }
        let at_line_end = rest.first().is_none_or(|&c| c == '\n');
        let before_dashes = rest.starts_with(&['-', '-']);
        (at_line_end || before_dashes).then_some((len, len))
    })
}

/// Punkt's `_realign_boundaries`, counting the sentences it yields.
fn realigned_count(chars: &[char], slices: &[(usize, usize)]) -> usize {
    let text_of = |(start, stop): (usize, usize)| &chars[start.min(stop)..stop];
    let mut count = 0;
    let mut realign = 0;
    for (index, &(start, stop)) in slices.iter().enumerate() {
        let sentence = (start + realign, stop);
        let Some(&next) = slices.get(index + 1) else {
            count += usize::from(!text_of(sentence).is_empty());
            continue;
        };
        match realignment_match(text_of(next)) {
            Some((_, match_end)) => {
                count += 1;
                realign = match_end;
            }
            None => {
                realign = 0;
                count += usize::from(!text_of(sentence).is_empty());
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrained_punkt_splits_after_abbreviations() {
        assert_eq!(sentence_count("Dr. Smith went home. He slept."), 3);
        assert_eq!(sentence_count("e.g. this"), 2);
        assert_eq!(sentence_count("U.S.A. is big"), 2);
    }

    #[test]
    fn initials_and_numbers_do_not_split() {
        assert_eq!(sentence_count("A. Bach. and 3. then"), 2);
    }

    #[test]
    fn repeated_marks_and_closing_brackets() {
        assert_eq!(sentence_count("Hi!!! There."), 2);
        assert_eq!(sentence_count("(Sent1.) Sent2."), 2);
    }

    #[test]
    fn empty_and_blank_texts_have_no_sentence() {
        assert_eq!(sentence_count(""), 0);
        assert_eq!(sentence_count(" \n\t"), 0);
        assert_eq!(sentence_count("xxxxxxxxxx"), 1);
    }
}
