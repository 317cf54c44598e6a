//! Splits a filter into tokens.

use super::FilterError;
use crate::span::Span;

/// One kind of token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// `.name`, written with no space after the dot.
    Field(String),
    /// A number literal.
    Num(f64),
    /// A string literal, its escapes decoded.
    Str(String),
    /// A name: a builtin, a keyword, or an object key.
    Ident(String),
    /// Operators and punctuation, as written.
    Op(&'static str),
    End,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Token {
    /// How to name the token in a message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Dot => "`.`".into(),
            Tok::DotDot => "`..`".into(),
            Tok::Field(name) => format!("`.{name}`"),
            Tok::Num(_) => "a number".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Op(op) => format!("`{op}`"),
            Tok::End => "the end of the filter".into(),
        }
    }

    /// True if this is the operator or punctuation `op`.
    pub fn is(&self, op: &str) -> bool {
        matches!(self.tok, Tok::Op(o) if o == op)
    }
}

/// Operators, longest first so that `//=` wins over `//` and `/`.
const OPERATORS: &[&str] = &[
    "//=", "|=", "+=", "-=", "*=", "/=", "%=", "==", "!=", "<=", ">=", "//", "|", ",", "=", "<",
    ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}", ":", ";", "?",
];

/// True for a character that may start a name.
fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// True for a character that may continue a name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The tokens of `source`, ending with [`Tok::End`].
pub(crate) fn lex(source: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '.' if next == Some('.') => {
                i += 2;
                Tok::DotDot
            }
            '.' if next.is_some_and(is_name_start) => {
                i += 1;
                let name = name(&chars, &mut i);
                Tok::Field(name)
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => Tok::Num(number(&chars, &mut i)?),
            '.' => {
                i += 1;
                Tok::Dot
            }
            '0'..='9' => Tok::Num(number(&chars, &mut i)?),
            '"' => Tok::Str(string(&chars, &mut i)?),
            c if is_name_start(c) => Tok::Ident(name(&chars, &mut i)),
            '$' => {
                return Err(FilterError::at(
                    Span::new(start, start + 1),
                    "variables (`$name`, `as $name`) are not supported",
                )
                .hint("use pipes and `.` instead, e.g. `.items[] | select(.id == 3)`"));
            }
            '@' => {
                return Err(FilterError::at(
                    Span::new(start, start + 1),
                    "formats such as `@csv` and `@base64` are not supported",
                ));
            }
            _ => {
                let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
                let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
                    return Err(FilterError::at(
                        Span::new(start, start + 1),
                        format!("unexpected character `{c}`"),
                    ));
                };
                i += op.chars().count();
                Tok::Op(op)
            }
        };
        tokens.push(Token {
            tok,
            span: Span::new(start, i),
        });
    }
    tokens.push(Token {
        tok: Tok::End,
        span: Span::new(chars.len(), chars.len()),
    });
    Ok(tokens)
}

/// The name at `*i`, moving past it.
fn name(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && is_name_char(chars[*i]) {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

/// The number at `*i` (`12`, `1.5`, `.5`, `1e-3`), moving past it.
fn number(chars: &[char], i: &mut usize) -> Result<f64, FilterError> {
    let start = *i;
    let digits = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(i);
    if chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(char::is_ascii_digit) {
        *i += 1;
        digits(i);
    }
    if matches!(chars.get(*i), Some('e' | 'E')) {
        let mut j = *i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            *i = j;
            digits(i);
        }
    }
    let text: String = chars[start..*i].iter().collect();
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(FilterError::at(
            Span::new(start, *i),
            format!("the number `{text}` is out of range"),
        )),
    }
}

/// The string literal at `*i` (on its opening quote), decoded, moving past it.
fn string(chars: &[char], i: &mut usize) -> Result<String, FilterError> {
    let open = *i;
    *i += 1;
    let mut out = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(
                FilterError::at(Span::new(open, open + 1), "this string is never closed")
                    .hint("end it with `\"`"),
            );
        };
        *i += 1;
        match c {
            '"' => return Ok(out),
            '\\' => {
                let at = *i - 1;
                let Some(&e) = chars.get(*i) else { continue };
                *i += 1;
                match e {
                    '"' | '\\' | '/' => out.push(e),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => out.push(unicode_escape(chars, i, at)?),
                    '(' => {
                        return Err(FilterError::at(
                            Span::new(at, at + 2),
                            "string interpolation `\\(...)` is not supported",
                        )
                        .hint("join parts with `+`, e.g. `.name + \": \" + (.price | tostring)`"));
                    }
                    _ => {
                        return Err(FilterError::at(
                            Span::new(at, at + 2),
                            format!("unknown escape `\\{e}` in a string"),
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
}

/// The character of a `\uXXXX` escape (or a surrogate pair of them), with
/// `*i` just after the `u`.
fn unicode_escape(chars: &[char], i: &mut usize, at: usize) -> Result<char, FilterError> {
    let hex4 = |i: &mut usize| -> Option<u32> {
        let digits: String = chars.get(*i..*i + 4)?.iter().collect();
        let value = u32::from_str_radix(&digits, 16).ok()?;
        *i += 4;
        Some(value)
    };
    let bad = || {
        FilterError::at(
            Span::new(at, at + 2),
            "malformed `\\u` escape: expected four hex digits (and a valid surrogate pair)",
        )
    };
    let high = hex4(i).ok_or_else(bad)?;
    if (0xD800..0xDC00).contains(&high) {
        if chars.get(*i) != Some(&'\\') || chars.get(*i + 1) != Some(&'u') {
            return Err(bad());
        }
        *i += 2;
        let low = hex4(i).ok_or_else(bad)?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(bad());
        }
        return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).ok_or_else(bad);
    }
    char::from_u32(high).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(source: &str) -> Vec<Tok> {
        lex(source).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn error(source: &str) -> String {
        lex(source).unwrap_err().render(source)
    }

    #[test]
    fn paths() {
        assert_eq!(
            toks(".items[0].name"),
            [
                Tok::Field("items".into()),
                Tok::Op("["),
                Tok::Num(0.0),
                Tok::Op("]"),
                Tok::Field("name".into()),
                Tok::End
            ]
        );
        assert_eq!(toks(". .."), [Tok::Dot, Tok::DotDot, Tok::End]);
        assert_eq!(
            toks(".[\"a b\"]"),
            [
                Tok::Dot,
                Tok::Op("["),
                Tok::Str("a b".into()),
                Tok::Op("]"),
                Tok::End
            ]
        );
    }

    #[test]
    fn operators_longest_first() {
        assert_eq!(
            toks("a //= b // c / d |= e | f != g"),
            [
                Tok::Ident("a".into()),
                Tok::Op("//="),
                Tok::Ident("b".into()),
                Tok::Op("//"),
                Tok::Ident("c".into()),
                Tok::Op("/"),
                Tok::Ident("d".into()),
                Tok::Op("|="),
                Tok::Ident("e".into()),
                Tok::Op("|"),
                Tok::Ident("f".into()),
                Tok::Op("!="),
                Tok::Ident("g".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks("1.5e2 .5 3"),
            [Tok::Num(150.0), Tok::Num(0.5), Tok::Num(3.0), Tok::End]
        );
        assert_eq!(
            toks(r#""a\"\n\u00e9\ud83d\ude00""#),
            [Tok::Str("a\"\né😀".into()), Tok::End]
        );
        assert_eq!(
            toks("true # a comment\n"),
            [Tok::Ident("true".into()), Tok::End]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            error(".a | $x"),
            "variables (`$name`, `as $name`) are not supported at column 6 — use pipes and `.` instead, e.g. `.items[] | select(.id == 3)`\n  .a | $x\n       ^"
        );
        assert!(error("\"abc").starts_with("this string is never closed at column 1"));
        assert!(error("\"a\\q\"").starts_with("unknown escape `\\q` in a string at column 3"));
        assert!(error("\"\\(.a)\"").contains("string interpolation"));
        assert!(error("\"\\ud800\"").contains("malformed `\\u` escape"));
        assert!(error(".a & .b").starts_with("unexpected character `&` at column 4"));
        assert!(error("1e999").contains("out of range"));
    }
}
