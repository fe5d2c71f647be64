//! Canonical form of text, under which cosmetic edits of the same data compare equal.
//!
//! Steps, in order:
//! 1. Unicode NFKC (full-width letters, ligatures, superscripts, math alphabets become plain forms).
//! 2. Invisible format characters (zero-width space/joiners, BOM, soft hyphen, word joiner) are removed.
//! 3. Common Cyrillic and Greek look-alikes of Latin letters become the Latin letter.
//! 4. Lower case; decimal digits of other scripts become ASCII digits.
//! 5. Tokens: runs of letters form words; numbers are parsed with their grouping separators
//!    (`1,000`, `1_000`, `1'000`: a separator followed by exactly three digits), leading zeros and trailing fractional zeros removed, and a leading
//!    minus kept. Every other character (punctuation, symbols, whitespace) separates tokens.
//! 6. Tokens are joined by single spaces.
//!
//! Deliberate limits: a decimal comma (`1,5`) is read as two numbers, spaces never group digits, and
//! letters glued to digits are split (`2nd` becomes `2 nd`); both sides of a comparison get the same
//! treatment, so this only matters for how much two different numbers can collide.

use unicode_normalization::UnicodeNormalization;

/// Returns the canonical form of `text` (see the module docs).
pub fn canonical_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    canonical_form_into(text, &mut out);
    out
}

/// Writes the canonical form of `text` into `out` (cleared first), reusing its allocation.
pub fn canonical_form_into(text: &str, out: &mut String) {
    out.clear();
    CHAR_BUFFER.with_borrow_mut(|chars| {
        chars.clear();
        if text.is_ascii() {
            // NFKC, the invisible-character filter and the folding are all identity on ASCII.
            chars.extend(text.chars());
        } else {
            chars.extend(text.nfkc().filter(|&c| !is_invisible(c)).map(fold_char));
        }
        tokenize(chars, out);
    });
}

thread_local! {
    /// Reused per thread so canonicalising many rows does not allocate a buffer per row.
    static CHAR_BUFFER: std::cell::RefCell<Vec<char>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn tokenize(chars: &[char], out: &mut String) {
    let mut tokenizer = Tokenizer {
        out,
        pending_minus: false,
        after_separator: true,
        previous_was_separator: true,
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            i = tokenizer.number(chars, i);
            continue;
        }
        if c.is_ascii_alphabetic() || c.is_alphabetic() || is_combining_mark(c) {
            tokenizer.letter(c);
        } else {
            tokenizer.separator(c);
        }
        i += 1;
    }
}

/// Splits a canonical string into its tokens.
pub fn canonical_tokens(canonical: &str) -> impl Iterator<Item = &str> {
    canonical.split(' ').filter(|t| !t.is_empty())
}

struct Tokenizer<'a> {
    out: &'a mut String,
    /// A minus sign was seen directly after a separator; it belongs to a number if one follows.
    pending_minus: bool,
    /// The next letter or number starts a new token.
    after_separator: bool,
    /// The previous character was punctuation or space (not the end of a word or number).
    previous_was_separator: bool,
}

impl Tokenizer<'_> {
    fn start_token(&mut self) {
        if self.after_separator && !self.out.is_empty() {
            self.out.push(' ');
        }
        self.after_separator = false;
    }

    fn letter(&mut self, c: char) {
        self.pending_minus = false;
        self.previous_was_separator = false;
        self.start_token();
        if c.is_ascii() {
            self.out.push(c.to_ascii_lowercase());
        } else {
            self.out.extend(c.to_lowercase());
        }
    }

    fn separator(&mut self, c: char) {
        self.pending_minus = matches!(c, '-' | '\u{2212}') && self.previous_was_separator;
        self.after_separator = true;
        self.previous_was_separator = true;
    }

    /// Reads the number starting at `chars[start]`, writes its normalised form as its own token and
    /// returns the index after it.
    fn number(&mut self, chars: &[char], start: usize) -> usize {
        let negative = std::mem::take(&mut self.pending_minus);
        self.previous_was_separator = false;
        self.after_separator = true;
        self.start_token();
        self.after_separator = true;
        let mut integer = String::new();
        let mut i = start;
        loop {
            while i < chars.len() && chars[i].is_ascii_digit() {
                integer.push(chars[i]);
                i += 1;
            }
            if is_group_separator_at(chars, i) {
                i += 1;
            } else {
                break;
            }
        }
        let mut fraction = String::new();
        if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                fraction.push(chars[i]);
                i += 1;
            }
        }
        let integer = integer.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if negative && !(integer.is_empty() && fraction.is_empty()) {
            self.out.push('-');
        }
        self.out
            .push_str(if integer.is_empty() { "0" } else { integer });
        if !fraction.is_empty() {
            self.out.push('.');
            self.out.push_str(fraction);
        }
        i
    }
}

/// A thousands separator (`,`, `_` or `'`) directly followed by exactly three digits, so that lists
/// like `1,2,3` stay three numbers while `1,000` is one.
fn is_group_separator_at(chars: &[char], i: usize) -> bool {
    let is_separator = matches!(chars.get(i), Some(',' | '_' | '\''));
    let three_digits = (1..=3).all(|k| chars.get(i + k).is_some_and(char::is_ascii_digit));
    let then_no_digit = !chars.get(i + 4).is_some_and(char::is_ascii_digit);
    is_separator && three_digits && then_no_digit
}

/// Invisible characters that change the bytes but not what a reader sees.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}'
    )
}

/// Combining marks stay inside a word (NFKC has already composed the common ones).
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}')
}

/// Maps confusable letters to Latin and foreign decimal digits to ASCII.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    confusable_to_latin(c)
        .or_else(|| foreign_digit(c))
        .unwrap_or(c)
}

/// Cyrillic and Greek letters that render like a Latin letter in common fonts.
fn confusable_to_latin(c: char) -> Option<char> {
    let latin = match c {
        // Cyrillic capitals and small letters.
        'А' | 'а' => 'a',
        'В' => 'b',
        'С' | 'с' | 'Ϲ' | 'ϲ' => 'c',
        'Е' | 'е' | 'Ё' | 'ё' => 'e',
        'Н' => 'h',
        'І' | 'і' | 'Ӏ' | 'ӏ' => 'i',
        'Ј' | 'ј' => 'j',
        'К' | 'к' => 'k',
        'М' => 'm',
        'О' | 'о' => 'o',
        'Р' | 'р' => 'p',
        'Ѕ' | 'ѕ' => 's',
        'Т' => 't',
        'Х' | 'х' => 'x',
        'У' | 'у' | 'Ү' | 'ү' => 'y',
        'Ԁ' | 'ԁ' => 'd',
        'Ԛ' | 'ԛ' => 'q',
        'Ԝ' | 'ԝ' => 'w',
        // Greek capitals and small letters.
        'Α' | 'α' => 'a',
        'Β' => 'b',
        'Ε' | 'ε' => 'e',
        'Ζ' => 'z',
        'Η' => 'h',
        'Ι' | 'ι' => 'i',
        'Κ' | 'κ' => 'k',
        'Μ' => 'm',
        'Ν' | 'ν' => 'v',
        'Ο' | 'ο' => 'o',
        'Ρ' | 'ρ' => 'p',
        'Τ' => 't',
        'Υ' | 'υ' => 'y',
        'Χ' | 'χ' => 'x',
        _ => return None,
    };
    Some(latin)
}

/// Decimal digits of scripts that NFKC leaves alone (Arabic-Indic, Devanagari, Thai, ...).
fn foreign_digit(c: char) -> Option<char> {
    const ZEROS: [u32; 18] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810,
    ];
    let code = c as u32;
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|&zero| char::from_digit(code - zero, 10))
}

#[cfg(test)]
mod tests {
    use super::canonical_form as cf;

    #[test]
    fn case_whitespace_and_punctuation_are_ignored() {
        assert_eq!(cf("  Hello,   WORLD!! "), "hello world");
        assert_eq!(cf("hello world"), cf("Hello — world…"));
        assert_ne!(cf("hello world"), cf("hello word"));
    }

    #[test]
    fn zero_width_and_soft_hyphen_are_removed() {
        assert_eq!(cf("pa\u{200B}ss\u{00AD}word\u{FEFF}"), "password");
        assert_eq!(cf("the\u{200D} cat"), cf("the cat"));
    }

    #[test]
    fn homoglyphs_map_to_latin() {
        // Cyrillic а, е, о, р, с and Greek ο, ν in an otherwise Latin sentence.
        assert_eq!(cf("Тhе сat sаt оn thе mаt"), "the cat sat on the mat");
        assert_eq!(cf("gοοd mονe"), "good move");
        assert_eq!(cf("ｆｕｌｌｗｉｄｔｈ"), "fullwidth");
    }

    #[test]
    fn number_formats_normalise() {
        assert_eq!(cf("1,000,000 apples"), cf("1000000 apples"));
        assert_eq!(cf("costs 3.50 dollars"), cf("costs 3.5 dollars"));
        assert_eq!(cf("007"), "7");
        assert_eq!(cf("x = -4."), "x -4");
        assert_eq!(cf("x = −4"), "x -4");
        assert_eq!(cf("٣٤"), "34");
        assert_eq!(cf("1,2,3"), "1 2 3");
        assert_eq!(cf("12,5"), "12 5");
        assert_eq!(cf("1_000'000"), "1000000");
        assert_eq!(cf("0.0"), "0");
        assert_ne!(cf("3.5"), cf("35"));
        assert_ne!(cf("12"), cf("-12"));
    }

    #[test]
    fn hyphenated_words_are_not_negative_numbers() {
        assert_eq!(cf("covid-19"), "covid 19");
        assert_eq!(cf("2-3"), "2 3");
    }

    #[test]
    fn different_scripts_stay_different() {
        // Only the look-alike letters change: р and е become Latin, п, и, в and т stay Cyrillic.
        assert_eq!(cf("Привет"), "п\u{70}ив\u{65}т");
        assert_ne!(cf("日本語"), cf("中国語"));
    }
}
