//! A small, safe parser and numeric evaluator for answer expressions.
//!
//! It stands in for the sympy step of the reference grader (`parse_expr`, then `latex2sympy`, then
//! `simplify` / numeric `N()`), which we cannot and do not want to run: sympy can take seconds on one
//! pair and the reference needs a 3 s timeout. Here a string is parsed in two modes, as the reference
//! tries them: first as a plain expression ([`Mode::Plain`]: `**`, multi-letter names, `1e5`, no
//! implicit products), and if that fails as LaTeX ([`Mode::Latex`]: `\frac`, `\sqrt`, `\pi`,
//! implicit products, one-letter symbols, `e` as Euler's number). Two expressions are compared by
//! value: constants numerically, expressions with symbols at fixed sample points.
//!
//! Limits keep untrusted input cheap: at most [`MAX_INPUT_CHARS`] characters and [`MAX_DEPTH`] levels
//! of nesting; factorials beyond 170 are infinite. Nothing here panics on any input.

use std::collections::BTreeSet;

use thiserror::Error;

/// Longest input the parser accepts, in characters.
pub const MAX_INPUT_CHARS: usize = 2_000;
/// Deepest nesting of groups and operators the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// Largest derivative (in expression nodes) `\frac{d}{dx}` may produce.
const MAX_DERIVATIVE_NODES: usize = 10_000;

/// Why a string is not an expression we can evaluate.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExprError {
    /// The input is longer than [`MAX_INPUT_CHARS`].
    #[error("expression has {chars} characters, more than the {max} the evaluator accepts")]
    TooLong {
        /// Characters in the input.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The input nests deeper than [`MAX_DEPTH`].
    #[error("expression nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A character that no token starts with.
    #[error("unexpected character {ch:?} at character {at}")]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Its position in characters.
        at: usize,
    },
    /// A LaTeX command the evaluator does not know.
    #[error("unknown command \\{name} at character {at}")]
    UnknownCommand {
        /// The command name without the backslash.
        name: String,
        /// Its position in characters.
        at: usize,
    },
    /// A token in a place where the grammar does not allow it.
    #[error("unexpected {found} at token {at}")]
    UnexpectedToken {
        /// The token, described.
        found: String,
        /// Its index among the tokens.
        at: usize,
    },
    /// The input ended inside an expression.
    #[error("expression ends too early")]
    UnexpectedEnd,
}

/// How the text is read; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain expression syntax, as sympy's `parse_expr` reads it.
    Plain,
    /// LaTeX math, as `latex2sympy` reads it.
    Latex,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A free symbol.
    Sym(String),
    /// `-a`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A one-argument function.
    Call(Func, Box<Expr>),
    /// `log_base(arg)`.
    Log(Box<Expr>, Box<Expr>),
    /// `n!`.
    Factorial(Box<Expr>),
    /// `binom(n, k)`.
    Binom(Box<Expr>, Box<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
}

/// One-argument functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
    /// cotangent
    Cot,
    /// secant
    Sec,
    /// cosecant
    Csc,
    /// inverse sine
    Asin,
    /// inverse cosine
    Acos,
    /// inverse tangent
    Atan,
    /// natural logarithm
    Ln,
    /// exponential
    Exp,
    /// square root
    Sqrt,
    /// absolute value
    Abs,
    /// greatest integer at most the argument (`\lfloor x \rfloor`)
    Floor,
    /// least integer at least the argument (`\lceil x \rceil`)
    Ceil,
}

/// A comparison between two expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    /// `<`, `\lt`
    Lt,
    /// `<=`, `\le`, `\leq`
    Le,
    /// `>`, `\gt`
    Gt,
    /// `>=`, `\ge`, `\geq`
    Ge,
    /// `!=`, `\ne`, `\neq`
    Ne,
}

/// A parsed answer: an expression, an equation, or a bracketed list of expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A single expression.
    Expr(Expr),
    /// `lhs = rhs`.
    Equation(Expr, Expr),
    /// A plain-mode tuple `a, b, ...`.
    Tuple(Vec<Expr>),
    /// A plain-mode set literal `{a, b, ...}`, which sympy's `parse_expr` reads as a Python set.
    Set(Vec<Expr>),
    /// `lhs rel rhs`, an inequality.
    Relation(Rel, Expr, Expr),
}

/// Parses `text` as the reference would: plain syntax first, LaTeX if that fails.
pub fn parse(text: &str) -> Result<Parsed, ExprError> {
    parse_in(text, Mode::Plain).or_else(|_| parse_in(text, Mode::Latex))
}

/// Parses `text` in one [`Mode`].
pub fn parse_in(text: &str, mode: Mode) -> Result<Parsed, ExprError> {
    parse_with(text, mode, false)
}

/// Parses LaTeX as latex2sympy does for the grouping key: besides [`parse_in`]'s forms, digits right
/// after `\frac` are one-digit arguments (`\frac34` is 3/4), as TeX reads them. The grader's own
/// parsers reject that short form, so [`parse`] does not take it.
pub fn parse_latex_key(text: &str) -> Result<Parsed, ExprError> {
    parse_with(text, Mode::Latex, true)
}

fn parse_with(text: &str, mode: Mode, fraction_digits: bool) -> Result<Parsed, ExprError> {
    let chars = text.chars().count();
    if chars > MAX_INPUT_CHARS {
        return Err(ExprError::TooLong {
            chars,
            max: MAX_INPUT_CHARS,
        });
    }
    let tokens = tokenize(text, mode, fraction_digits)?;
    Parser {
        tokens,
        pos: 0,
        depth: 0,
        mode,
    }
    .parse_all()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Cmd(String),
    Op(char),
    Open(char),
    Close(char),
    Rel(Rel),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(x) => format!("number {x}"),
        Tok::Name(n) => format!("name {n:?}"),
        Tok::Cmd(c) => format!("command \\{c}"),
        Tok::Op(c) | Tok::Open(c) | Tok::Close(c) => format!("{c:?}"),
        Tok::Rel(r) => format!("relation {r:?}"),
    }
}

fn tokenize(text: &str, mode: Mode, fraction_digits: bool) -> Result<Vec<Tok>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        match c {
            _ if c.is_whitespace() => {}
            '0'..='9' | '.' => {
                i = start;
                tokens.push(Tok::Num(read_number(&chars, &mut i, mode)?));
            }
            'a'..='z' | 'A'..='Z' => {
                if mode == Mode::Plain {
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
                tokens.push(Tok::Name(chars[start..i].iter().collect()));
            }
            '\\' if mode == Mode::Latex => {
                if let Some(tok) = read_command(&chars, &mut i, start)? {
                    let fraction = fraction_digits && matches!(&tok, Tok::Cmd(c) if is_fraction(c));
                    tokens.push(tok);
                    if fraction {
                        split_fraction_digits(&chars, &mut i, &mut tokens);
                    }
                }
            }
            '<' | '>' => {
                let or_equal = chars.get(i) == Some(&'=');
                if or_equal {
                    i += 1;
                }
                tokens.push(Tok::Rel(match (c, or_equal) {
                    ('<', false) => Rel::Lt,
                    ('<', true) => Rel::Le,
                    (_, false) => Rel::Gt,
                    (_, true) => Rel::Ge,
                }));
            }
            '!' if mode == Mode::Plain && chars.get(i) == Some(&'=') => {
                i += 1;
                tokens.push(Tok::Rel(Rel::Ne));
            }
            '*' if mode == Mode::Plain && chars.get(i) == Some(&'*') => {
                i += 1;
                tokens.push(Tok::Op('^'));
            }
            '+' | '-' | '*' | '/' | '!' | '=' | ',' => tokens.push(Tok::Op(c)),
            // latex2sympy reads a ratio `a:b` as a division.
            ':' if mode == Mode::Latex => tokens.push(Tok::Op('/')),
            '^' | '_' | '%' if mode == Mode::Latex => tokens.push(Tok::Op(c)),
            '(' => tokens.push(Tok::Open(c)),
            ')' => tokens.push(Tok::Close(c)),
            '{' if mode == Mode::Plain && start == 0 => tokens.push(Tok::Open(c)),
            '}' if mode == Mode::Plain && i == chars.len() => tokens.push(Tok::Close(c)),
            '{' | '[' if mode == Mode::Latex => tokens.push(Tok::Open(c)),
            '}' | ']' if mode == Mode::Latex => tokens.push(Tok::Close(c)),
            '|' if mode == Mode::Latex => tokens.push(Tok::Op('|')),
            _ => return Err(ExprError::UnexpectedChar { ch: c, at: start }),
        }
    }
    Ok(tokens)
}

/// `\frac`, `\dfrac`, `\tfrac`, `\cfrac`.
fn is_fraction(name: &str) -> bool {
    matches!(name, "frac" | "dfrac" | "tfrac" | "cfrac")
}

/// `\frac34` and `\frac3{4}`: digits right after a fraction command are one-digit arguments, as
/// TeX (and latex2sympy) read them.
fn split_fraction_digits(chars: &[char], i: &mut usize, tokens: &mut Vec<Tok>) {
    for _ in 0..2 {
        let Some(digit) = chars.get(*i).and_then(|c| c.to_digit(10)) else {
            return;
        };
        *i += 1;
        tokens.extend([Tok::Open('{'), Tok::Num(f64::from(digit)), Tok::Close('}')]);
    }
}

/// Digits with an optional fraction; plain mode also takes an exponent (`1.5e3`), LaTeX mode groups of
/// three digits after commas (`1,000`, as latex2sympy reads them). A second `.` right after a number
/// is an error, so `1.2.3` is not read as a product.
fn read_number(chars: &[char], i: &mut usize, mode: Mode) -> Result<f64, ExprError> {
    let start = *i;
    let digits = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(i);
    if mode == Mode::Latex && (1..=3).contains(&(*i - start)) {
        while is_thousands_group(chars, *i) {
            *i += 4;
        }
    }
    if chars.get(*i) == Some(&'.') {
        *i += 1;
        digits(i);
    }
    if mode == Mode::Plain && matches!(chars.get(*i), Some('e' | 'E')) {
        let mut j = *i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            *i = j;
            digits(i);
        }
    }
    let text: String = chars[start..*i].iter().filter(|&&c| c != ',').collect();
    let bad = || ExprError::UnexpectedChar {
        ch: chars[start],
        at: start,
    };
    if chars.get(*i) == Some(&'.') || text == "." {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// `,ddd` at `at`, not followed by a further digit.
fn is_thousands_group(chars: &[char], at: usize) -> bool {
    let digit = |k: usize| chars.get(k).is_some_and(char::is_ascii_digit);
    chars.get(at) == Some(&',') && digit(at + 1) && digit(at + 2) && digit(at + 3) && !digit(at + 4)
}

/// A backslash command. Spacing commands vanish (`None`); `\{`, `\}`, `\%` become their characters.
fn read_command(chars: &[char], i: &mut usize, start: usize) -> Result<Option<Tok>, ExprError> {
    let Some(&first) = chars.get(*i) else {
        return Err(ExprError::UnexpectedEnd);
    };
    if !first.is_ascii_alphabetic() {
        *i += 1;
        return match first {
            ',' | ' ' | ';' | ':' | '!' | '>' => Ok(None),
            '{' => Ok(Some(Tok::Open('{'))),
            '}' => Ok(Some(Tok::Close('}'))),
            '%' => Ok(Some(Tok::Op('%'))),
            _ => Err(ExprError::UnexpectedChar {
                ch: first,
                at: start,
            }),
        };
    }
    let name_start = *i;
    while *i < chars.len() && chars[*i].is_ascii_alphabetic() {
        *i += 1;
    }
    let mut name: String = chars[name_start..*i].iter().collect();
    if let Some(rel) = relation_command(&name) {
        return Ok(Some(Tok::Rel(rel)));
    }
    if !is_known_command(&name) {
        // latex2sympy's lexer splits `\lne` into `\ln` and `e`: take the longest known command and
        // leave the remaining letters to be read as symbols.
        if let Some(len) = (1..name.len())
            .rev()
            .find(|&n| is_known_command(&name[..n]))
        {
            *i = name_start + len;
            name.truncate(len);
        }
    }
    Ok(match name.as_str() {
        "left" | "right" | "displaystyle" => None,
        "cdot" | "times" | "ast" => Some(Tok::Op('*')),
        "div" => Some(Tok::Op('/')),
        _ => Some(Tok::Cmd(name)),
    })
}

/// A relation command: `\lt`, `\le`, `\leq`, `\leqslant`, `\gt`, `\ge`, `\geq`, `\geqslant`,
/// `\ne`, `\neq` (matched whole, never as the prefix of a longer command).
fn relation_command(name: &str) -> Option<Rel> {
    Some(match name {
        "lt" => Rel::Lt,
        "le" | "leq" | "leqslant" => Rel::Le,
        "gt" => Rel::Gt,
        "ge" | "geq" | "geqslant" => Rel::Ge,
        "ne" | "neq" => Rel::Ne,
        _ => return None,
    })
}

/// Commands the parser understands (besides spacing, which the tokenizer drops).
fn is_known_command(name: &str) -> bool {
    const OTHERS: &[&str] = &[
        "left",
        "right",
        "displaystyle",
        "cdot",
        "times",
        "ast",
        "div",
        "pi",
        "infty",
        "frac",
        "dfrac",
        "tfrac",
        "cfrac",
        "binom",
        "dbinom",
        "tbinom",
        "sqrt",
        "log",
        "lg",
        "lfloor",
        "rfloor",
        "lceil",
        "rceil",
    ];
    OTHERS.contains(&name) || latex_function(name).is_some()
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
    mode: Mode,
}

impl Parser {
    fn parse_all(&mut self) -> Result<Parsed, ExprError> {
        if self.mode == Mode::Plain && self.eat(&Tok::Open('{')) {
            return self.plain_set();
        }
        let first = self.expr()?;
        if let Some(Tok::Rel(rel)) = self.peek() {
            let rel = *rel;
            self.pos += 1;
            let rhs = self.expr()?;
            return match self.peek() {
                None => Ok(Parsed::Relation(rel, first, rhs)),
                Some(t) => Err(self.unexpected(t.clone())),
            };
        }
        let parsed = match self.peek() {
            Some(Tok::Op('=')) if self.mode == Mode::Latex => {
                self.pos += 1;
                let rhs = self.expr()?;
                match first {
                    // latex2sympy reads `x = 5` as an assignment and returns the right side.
                    Expr::Sym(_) if self.mode == Mode::Latex => Parsed::Expr(rhs),
                    lhs => Parsed::Equation(lhs, rhs),
                }
            }
            Some(Tok::Op(',')) if self.mode == Mode::Plain => {
                let mut items = vec![first];
                while self.eat(&Tok::Op(',')) {
                    if self.peek().is_some() {
                        items.push(self.expr()?);
                    }
                }
                Parsed::Tuple(items)
            }
            _ => Parsed::Expr(first),
        };
        match self.peek() {
            None => Ok(parsed),
            Some(t) => Err(self.unexpected(t.clone())),
        }
    }

    /// `{a, b}` as a whole input in plain mode: a Python set literal.
    fn plain_set(&mut self) -> Result<Parsed, ExprError> {
        let mut items = vec![self.expr()?];
        while self.eat(&Tok::Op(',')) {
            items.push(self.expr()?);
        }
        self.expect(&Tok::Close('}'))?;
        match self.peek() {
            None => Ok(Parsed::Set(items)),
            Some(t) => Err(self.unexpected(t.clone())),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<Tok, ExprError> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or(ExprError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(t)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        let hit = self.peek() == Some(t);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, t: &Tok) -> Result<(), ExprError> {
        match self.next()? {
            got if got == *t => Ok(()),
            got => Err(self.unexpected(got)),
        }
    }

    fn unexpected(&self, t: Tok) -> ExprError {
        ExprError::UnexpectedToken {
            found: describe(&t),
            at: self.pos,
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::TooDeep { max: MAX_DEPTH });
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op('+')) => BinOp::Add,
                Some(Tok::Op('-')) => BinOp::Sub,
                _ => break,
            };
            self.pos += 1;
            let rhs = self.term()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op('*')) => BinOp::Mul,
                Some(Tok::Op('/')) => BinOp::Div,
                Some(t) if self.mode == Mode::Latex && starts_factor(t) => {
                    let rhs = self.power()?;
                    lhs = Expr::Bin(BinOp::Mul, Box::new(lhs), Box::new(rhs));
                    continue;
                }
                _ => break,
            };
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let result = if self.eat(&Tok::Op('-')) {
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else if self.eat(&Tok::Op('+')) {
            self.unary()
        } else {
            self.power()
        };
        self.depth -= 1;
        result
    }

    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.postfix()?;
        if !self.eat(&Tok::Op('^')) {
            return Ok(base);
        }
        self.enter()?;
        let exponent = if self.mode == Mode::Plain {
            self.unary()?
        } else {
            self.exponent()?
        };
        self.depth -= 1;
        Ok(Expr::Bin(BinOp::Pow, Box::new(base), Box::new(exponent)))
    }

    /// A LaTeX exponent is one group or one signed atom: `2^{10}`, `2^10`, `x^-1`.
    fn exponent(&mut self) -> Result<Expr, ExprError> {
        if self.eat(&Tok::Op('-')) {
            return Ok(Expr::Neg(Box::new(self.exponent()?)));
        }
        self.power()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(&Tok::Op('!')) {
                e = Expr::Factorial(Box::new(e));
            } else if self.mode == Mode::Latex && self.eat(&Tok::Op('%')) {
                e = Expr::Bin(BinOp::Div, Box::new(e), Box::new(Expr::Num(100.0)));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let e = match self.next()? {
            Tok::Num(x) => Ok(Expr::Num(x)),
            Tok::Name(n) => self.name(n),
            Tok::Open(open) => self.group(open),
            Tok::Op('|') => {
                let inner = self.expr()?;
                self.expect(&Tok::Op('|'))?;
                Ok(Expr::Call(Func::Abs, Box::new(inner)))
            }
            Tok::Cmd(c) => self.command(c),
            t => Err(self.unexpected(t)),
        };
        self.depth -= 1;
        e
    }

    fn name(&mut self, n: String) -> Result<Expr, ExprError> {
        if self.mode == Mode::Latex {
            return Ok(if n == "e" {
                Expr::Num(std::f64::consts::E)
            } else {
                Expr::Sym(n)
            });
        }
        if self.peek() == Some(&Tok::Open('(')) {
            let func = plain_function(&n).ok_or_else(|| self.unexpected(Tok::Name(n.clone())))?;
            self.pos += 1;
            let arg = self.expr()?;
            self.expect(&Tok::Close(')'))?;
            return Ok(func(arg));
        }
        Ok(match n.as_str() {
            "pi" => Expr::Num(std::f64::consts::PI),
            "E" => Expr::Num(std::f64::consts::E),
            "oo" => Expr::Num(f64::INFINITY),
            _ => Expr::Sym(n),
        })
    }

    fn group(&mut self, open: char) -> Result<Expr, ExprError> {
        let inner = self.expr()?;
        let close = match self.next()? {
            Tok::Close(c) => c,
            t => return Err(self.unexpected(t)),
        };
        let pair_ok = matches!((open, close), ('(', ')') | ('[', ']') | ('{', '}'));
        if !pair_ok {
            return Err(self.unexpected(Tok::Close(close)));
        }
        Ok(inner)
    }

    /// A `{...}` argument of a command.
    fn braced(&mut self) -> Result<Expr, ExprError> {
        self.expect(&Tok::Open('{'))?;
        self.group('{')
    }

    fn command(&mut self, name: String) -> Result<Expr, ExprError> {
        let constant = |x: f64| Ok(Expr::Num(x));
        match name.as_str() {
            "pi" => constant(std::f64::consts::PI),
            "infty" => constant(f64::INFINITY),
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                if let Some(var) = self.derivative_operator() {
                    let body = self.power()?;
                    // Nested derivatives grow the tree; untrusted input must stay cheap.
                    return derivative(&body, &var)
                        .map(|d| simplify_numbers(&d))
                        .filter(|d| d.size() <= MAX_DERIVATIVE_NODES)
                        .ok_or(ExprError::UnknownCommand {
                            name: "frac{d}{dx} of this expression".into(),
                            at: self.pos,
                        });
                }
                let num = self.braced()?;
                let den = self.braced()?;
                Ok(Expr::Bin(BinOp::Div, Box::new(num), Box::new(den)))
            }
            "lfloor" | "lceil" => {
                let inner = self.expr()?;
                let (close, func) = if name == "lfloor" {
                    ("rfloor", Func::Floor)
                } else {
                    ("rceil", Func::Ceil)
                };
                self.expect(&Tok::Cmd(close.into()))?;
                Ok(Expr::Call(func, Box::new(inner)))
            }
            "binom" | "dbinom" | "tbinom" => {
                let n = self.braced()?;
                let k = self.braced()?;
                Ok(Expr::Binom(Box::new(n), Box::new(k)))
            }
            "sqrt" => self.sqrt(),
            "log" | "lg" => self.log(Expr::Num(10.0)),
            _ => match latex_function(&name) {
                Some(func) => Ok(Expr::Call(func, Box::new(self.function_argument()?))),
                None => Err(ExprError::UnknownCommand { name, at: self.pos }),
            },
        }
    }

    /// `{d}{dx}` after `\frac` (a derivative operator): consumes it and returns the variable.
    fn derivative_operator(&mut self) -> Option<String> {
        let want = |t: Option<&Tok>, w: &Tok| t == Some(w);
        let at = |k: usize| self.tokens.get(self.pos + k);
        let d = Tok::Name("d".into());
        let shape = want(at(0), &Tok::Open('{'))
            && want(at(1), &d)
            && want(at(2), &Tok::Close('}'))
            && want(at(3), &Tok::Open('{'))
            && want(at(4), &d)
            && want(at(6), &Tok::Close('}'));
        match (shape, at(5)) {
            (true, Some(Tok::Name(var))) => {
                let var = var.clone();
                self.pos += 7;
                Some(var)
            }
            _ => None,
        }
    }

    fn sqrt(&mut self) -> Result<Expr, ExprError> {
        let index = if self.eat(&Tok::Open('[')) {
            Some(self.group('[')?)
        } else {
            None
        };
        let radicand = self.braced()?;
        Ok(match index {
            None => Expr::Call(Func::Sqrt, Box::new(radicand)),
            Some(n) => {
                let inv = Expr::Bin(BinOp::Div, Box::new(Expr::Num(1.0)), Box::new(n));
                Expr::Bin(BinOp::Pow, Box::new(radicand), Box::new(inv))
            }
        })
    }

    /// `\log` is base 10 as in `latex2sympy`; `\log_b x` has base `b`.
    fn log(&mut self, default_base: Expr) -> Result<Expr, ExprError> {
        let base = if self.eat(&Tok::Op('_')) {
            self.postfix()?
        } else {
            default_base
        };
        let arg = self.function_argument()?;
        Ok(Expr::Log(Box::new(base), Box::new(arg)))
    }

    /// A function's argument: a bracketed group, or the following power term (`\sin 2x` -> sin(2)·x).
    fn function_argument(&mut self) -> Result<Expr, ExprError> {
        self.power()
    }
}

fn starts_factor(t: &Tok) -> bool {
    match t {
        Tok::Cmd(c) => !matches!(c.as_str(), "rfloor" | "rceil"),
        _ => matches!(t, Tok::Num(_) | Tok::Name(_) | Tok::Open('(' | '{' | '[')),
    }
}

/// The derivative of `e` in `var`, by the usual rules; `None` for what they do not cover
/// (factorials, binomials, floor, ceiling, absolute value).
fn derivative(e: &Expr, var: &str) -> Option<Expr> {
    use BinOp::*;
    let b = Box::new;
    let num = Expr::Num;
    Some(match e {
        Expr::Num(_) => num(0.0),
        Expr::Sym(s) => num(if s == var { 1.0 } else { 0.0 }),
        Expr::Neg(a) => Expr::Neg(b(derivative(a, var)?)),
        Expr::Bin(op @ (Add | Sub), l, r) => {
            Expr::Bin(*op, b(derivative(l, var)?), b(derivative(r, var)?))
        }
        Expr::Bin(Mul, l, r) => Expr::Bin(
            Add,
            b(Expr::Bin(Mul, b(derivative(l, var)?), r.clone())),
            b(Expr::Bin(Mul, l.clone(), b(derivative(r, var)?))),
        ),
        Expr::Bin(Div, l, r) => Expr::Bin(
            Div,
            b(Expr::Bin(
                Sub,
                b(Expr::Bin(Mul, b(derivative(l, var)?), r.clone())),
                b(Expr::Bin(Mul, l.clone(), b(derivative(r, var)?))),
            )),
            b(Expr::Bin(Pow, r.clone(), b(num(2.0)))),
        ),
        Expr::Bin(Pow, base, exponent) if !exponent.symbols().contains(var) => Expr::Bin(
            Mul,
            b(Expr::Bin(
                Mul,
                exponent.clone(),
                b(Expr::Bin(
                    Pow,
                    base.clone(),
                    b(Expr::Bin(Sub, exponent.clone(), b(num(1.0)))),
                )),
            )),
            b(derivative(base, var)?),
        ),
        // a^b = exp(b ln a): (a^b)' = a^b (b' ln a + b a' / a).
        Expr::Bin(Pow, base, exponent) => Expr::Bin(
            Mul,
            b(e.clone()),
            b(Expr::Bin(
                Add,
                b(Expr::Bin(
                    Mul,
                    b(derivative(exponent, var)?),
                    b(Expr::Call(Func::Ln, base.clone())),
                )),
                b(Expr::Bin(
                    Div,
                    b(Expr::Bin(Mul, exponent.clone(), b(derivative(base, var)?))),
                    base.clone(),
                )),
            )),
        ),
        Expr::Call(f, a) => {
            let inner = derivative(a, var)?;
            let outer = match f {
                Func::Sin => Expr::Call(Func::Cos, a.clone()),
                Func::Cos => Expr::Neg(b(Expr::Call(Func::Sin, a.clone()))),
                Func::Tan => Expr::Bin(
                    Div,
                    b(num(1.0)),
                    b(Expr::Bin(
                        Pow,
                        b(Expr::Call(Func::Cos, a.clone())),
                        b(num(2.0)),
                    )),
                ),
                Func::Exp => e.clone(),
                Func::Ln => Expr::Bin(Div, b(num(1.0)), a.clone()),
                Func::Sqrt => Expr::Bin(
                    Div,
                    b(num(1.0)),
                    b(Expr::Bin(Mul, b(num(2.0)), b(e.clone()))),
                ),
                _ => return None,
            };
            Expr::Bin(Mul, b(outer), b(inner))
        }
        Expr::Log(base, a) if !base.symbols().contains(var) => Expr::Bin(
            Div,
            b(derivative(a, var)?),
            b(Expr::Bin(
                Mul,
                a.clone(),
                b(Expr::Call(Func::Ln, base.clone())),
            )),
        ),
        Expr::Log(..) | Expr::Factorial(_) | Expr::Binom(..) => return None,
    })
}

/// Folds the constant subterms a derivative leaves (`0 * x`, `x^(2 - 1)`), so its symbols are
/// only those it really depends on.
fn simplify_numbers(e: &Expr) -> Expr {
    let b = Box::new;
    match e {
        Expr::Bin(op, l, r) => {
            let (l, r) = (simplify_numbers(l), simplify_numbers(r));
            match (&l, &r, op) {
                (Expr::Num(x), Expr::Num(y), _) => Expr::Num(apply(*op, *x, *y)),
                (Expr::Num(z), _, BinOp::Mul) | (_, Expr::Num(z), BinOp::Mul) if *z == 0.0 => {
                    Expr::Num(0.0)
                }
                (Expr::Num(z), _, BinOp::Add) if *z == 0.0 => r,
                (_, Expr::Num(z), BinOp::Add | BinOp::Sub) if *z == 0.0 => l,
                (Expr::Num(one), _, BinOp::Mul) if *one == 1.0 => r,
                (_, Expr::Num(one), BinOp::Mul | BinOp::Div | BinOp::Pow) if *one == 1.0 => l,
                _ => Expr::Bin(*op, b(l), b(r)),
            }
        }
        Expr::Neg(a) => match simplify_numbers(a) {
            Expr::Num(x) => Expr::Num(-x),
            a => Expr::Neg(b(a)),
        },
        Expr::Call(f, a) => Expr::Call(*f, b(simplify_numbers(a))),
        other => other.clone(),
    }
}

fn plain_function(name: &str) -> Option<fn(Expr) -> Expr> {
    let f: fn(Expr) -> Expr = match name {
        "sin" => |a| Expr::Call(Func::Sin, Box::new(a)),
        "cos" => |a| Expr::Call(Func::Cos, Box::new(a)),
        "tan" => |a| Expr::Call(Func::Tan, Box::new(a)),
        "exp" => |a| Expr::Call(Func::Exp, Box::new(a)),
        "log" | "ln" => |a| Expr::Call(Func::Ln, Box::new(a)),
        "sqrt" => |a| Expr::Call(Func::Sqrt, Box::new(a)),
        "Abs" => |a| Expr::Call(Func::Abs, Box::new(a)),
        "floor" => |a| Expr::Call(Func::Floor, Box::new(a)),
        "ceiling" => |a| Expr::Call(Func::Ceil, Box::new(a)),
        "factorial" => |a| Expr::Factorial(Box::new(a)),
        _ => return None,
    };
    Some(f)
}

fn latex_function(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "cot" => Func::Cot,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" => Func::Atan,
        "ln" => Func::Ln,
        "exp" => Func::Exp,
        _ => return None,
    })
}

impl Expr {
    /// Number of nodes in the expression tree.
    pub fn size(&self) -> usize {
        1 + match self {
            Expr::Num(_) | Expr::Sym(_) => 0,
            Expr::Neg(a) | Expr::Call(_, a) | Expr::Factorial(a) => a.size(),
            Expr::Bin(_, a, b) | Expr::Log(a, b) | Expr::Binom(a, b) => a.size() + b.size(),
        }
    }

    /// The free symbols of the expression.
    pub fn symbols(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_symbols(&mut out);
        out
    }

    fn collect_symbols(&self, out: &mut BTreeSet<String>) {
        match self {
            Expr::Num(_) => {}
            Expr::Sym(s) => {
                out.insert(s.clone());
            }
            Expr::Neg(a) | Expr::Call(_, a) | Expr::Factorial(a) => a.collect_symbols(out),
            Expr::Bin(_, a, b) | Expr::Log(a, b) | Expr::Binom(a, b) => {
                a.collect_symbols(out);
                b.collect_symbols(out);
            }
        }
    }

    /// The value with each symbol replaced by `value_of(name)`; NaN where undefined.
    pub fn eval(&self, value_of: &dyn Fn(&str) -> f64) -> f64 {
        match self {
            Expr::Num(x) => *x,
            Expr::Sym(s) => value_of(s),
            Expr::Neg(a) => -a.eval(value_of),
            Expr::Bin(op, a, b) => apply(*op, a.eval(value_of), b.eval(value_of)),
            Expr::Call(f, a) => call(*f, a.eval(value_of)),
            Expr::Log(base, a) => log_defined(a.eval(value_of)) / log_defined(base.eval(value_of)),
            Expr::Factorial(a) => factorial(a.eval(value_of)),
            Expr::Binom(n, k) => binomial(n.eval(value_of), k.eval(value_of)),
        }
    }
}

fn apply(op: BinOp, a: f64, b: f64) -> f64 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        // sympy's 1/0 is complex infinity, equal to no number; NaN compares unequal the same way.
        BinOp::Div if b == 0.0 => f64::NAN,
        BinOp::Div => a / b,
        BinOp::Pow => real_power(a, b),
    }
}

/// Powers over the reals. A negative base with a fractional exponent has no real principal value
/// (sympy gives a complex number, so `(-8)^{1/3}` is not `-2`), and is NaN here.
fn real_power(a: f64, b: f64) -> f64 {
    a.powf(b)
}

fn call(f: Func, x: f64) -> f64 {
    match f {
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Cot => 1.0 / x.tan(),
        Func::Sec => 1.0 / x.cos(),
        Func::Csc => 1.0 / x.sin(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Ln => log_defined(x),
        Func::Exp => x.exp(),
        Func::Sqrt => x.sqrt(),
        Func::Abs => x.abs(),
        Func::Floor => x.floor(),
        Func::Ceil => x.ceil(),
    }
}

/// The natural logarithm where it is a real number: sympy's `log(0)` is complex infinity, equal to
/// nothing, so it is NaN here like the logarithm of a negative number.
fn log_defined(x: f64) -> f64 {
    if x == 0.0 { f64::NAN } else { x.ln() }
}

/// n! for whole numbers (infinite above 170); NaN otherwise.
fn factorial(n: f64) -> f64 {
    if n < 0.0 || n.fract() != 0.0 {
        return f64::NAN;
    }
    if n > 170.0 {
        return f64::INFINITY;
    }
    (1..=n as u32).map(f64::from).product()
}

fn binomial(n: f64, k: f64) -> f64 {
    if n.fract() != 0.0 || k.fract() != 0.0 || !(0.0..=1e6).contains(&n) {
        return f64::NAN;
    }
    if k < 0.0 || k > n {
        return 0.0;
    }
    let k = k.min(n - k) as u32;
    (0..k).fold(1.0, |acc, i| acc * (n - f64::from(i)) / f64::from(i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> f64 {
        match parse(s) {
            Ok(Parsed::Expr(e)) => e.eval(&|_| f64::NAN),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn evaluates_latex() {
        assert_eq!(value("\\frac{1}{2}"), 0.5);
        assert!((value("2\\sqrt{3}") - 12f64.sqrt()).abs() < 1e-12);
        assert_eq!(value("2^{10}"), 1024.0);
        assert_eq!(value("\\binom{10}{3}"), 120.0);
        assert!((value("\\log_2 8") - 3.0).abs() < 1e-12);
        assert!((value("\\sqrt[3]{8}") - 2.0).abs() < 1e-12);
        assert!(value("\\sqrt[3]{-8}").is_nan());
        assert!(value("\\frac{1}{0}").is_nan());
        assert_eq!(value("6!"), 720.0);
        assert_eq!(value("1.2e1"), 12.0);
        // Plain syntax reads `1,000` as a tuple, as sympy's parse_expr does; LaTeX as one number.
        assert!(matches!(parse("1,000"), Ok(Parsed::Tuple(_))));
        let latex = parse_in("1,000,000", Mode::Latex);
        assert!(matches!(latex, Ok(Parsed::Expr(Expr::Num(x))) if x == 1e6));
        assert_eq!(value("3:30"), 0.1);
        assert!(parse_in("1,0000", Mode::Latex).is_err());
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(parse("1.2.3").is_err());
        assert!(parse("\\frac12").is_err());
        assert!(parse(&"(".repeat(5000)).is_err());
        assert!(matches!(
            parse(&"{".repeat(500)),
            Err(ExprError::TooDeep { .. })
        ));
        assert!(parse("\\unknown{2}").is_err());
        assert!(parse("").is_err());
    }
}
