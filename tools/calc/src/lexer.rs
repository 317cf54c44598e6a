//! Splits an expression into tokens.

use crate::error::{CalcError, Span};

/// One kind of token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Bang,
    LParen,
    RParen,
    Comma,
    Semi,
    Assign,
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
            Tok::Num(_) => "a number".to_string(),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::End => "the end of the expression".to_string(),
            tok => format!("`{}`", symbol(tok)),
        }
    }
}

/// The text of an operator or punctuation token.
pub(crate) fn symbol(tok: &Tok) -> &'static str {
    match tok {
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Caret => "^",
        Tok::Bang => "!",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Semi => ";",
        Tok::Assign => "=",
        Tok::Num(_) | Tok::Ident(_) | Tok::End => "",
    }
}

/// True for a character that may start a name.
pub(crate) fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// True for a character that may continue a name.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tokens of `source`, ending with [`Tok::End`].
pub(crate) fn lex(source: &str) -> Result<Vec<Token>, CalcError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let tok = if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let (value, end) = number(&chars, i)?;
            i = end;
            Tok::Num(value)
        } else if is_name_start(c) {
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else {
            i += 1;
            match c {
                '+' => Tok::Plus,
                '-' | '−' => Tok::Minus,
                '*' if next == Some('*') => {
                    i += 1;
                    Tok::Caret
                }
                '*' | '×' => Tok::Star,
                '/' | '÷' => Tok::Slash,
                '%' => Tok::Percent,
                '^' => Tok::Caret,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '<' | '>' | '=' | '!' if c != '!' && c != '=' || next == Some('=') => {
                    let end = if next == Some('=') { i + 1 } else { i };
                    return Err(CalcError::at(
                        Span::new(start, end),
                        "comparison operators are not supported",
                    )
                    .hint("calc evaluates arithmetic only; `=` assigns, as in `r = 2; r ^ 2`"));
                }
                '!' => Tok::Bang,
                '=' => Tok::Assign,
                '[' | ']' | '{' | '}' => {
                    return Err(
                        CalcError::at(Span::new(start, i), format!("unexpected `{c}`"))
                            .hint("use `(` and `)` for grouping"),
                    );
                }
                _ => {
                    return Err(CalcError::at(
                        Span::new(start, i),
                        format!("unexpected character `{c}`"),
                    ));
                }
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

/// Reads the number starting at `start`: decimal (`12`, `1_000`, `.5`,
/// `2.5e-3`) or integer with a `0x`, `0o` or `0b` prefix. Returns its value
/// and the position after it.
fn number(chars: &[char], start: usize) -> Result<(f64, usize), CalcError> {
    let radix = match (chars[start], chars.get(start + 1)) {
        ('0', Some('x' | 'X')) => Some(16),
        ('0', Some('o' | 'O')) => Some(8),
        ('0', Some('b' | 'B')) => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        return radix_integer(chars, start, radix);
    }
    let mut i = digits(chars, start, 10);
    if chars.get(i) == Some(&'.') {
        i = digits(chars, i + 1, 10);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            i = digits(chars, j, 10);
        }
    }
    let span = Span::new(start, i);
    let text: String = chars[start..i].iter().collect();
    check_underscores(&text, 10, span)?;
    let value: f64 = text
        .replace('_', "")
        .parse()
        .map_err(|_| CalcError::at(span, format!("malformed number `{text}`")))?;
    if !value.is_finite() {
        return Err(CalcError::at(
            span,
            format!("the number `{text}` is too large for a 64-bit float"),
        ));
    }
    Ok((value, i))
}

/// An integer written in base 2, 8 or 16 after its two-character prefix.
fn radix_integer(chars: &[char], start: usize, radix: u32) -> Result<(f64, usize), CalcError> {
    let end = digits(chars, start + 2, radix);
    let span = Span::new(start, end);
    let text: String = chars[start..end].iter().collect();
    let body: String = chars[start + 2..end]
        .iter()
        .filter(|&&c| c != '_')
        .collect();
    if body.is_empty() {
        let kind = match radix {
            16 => "hexadecimal",
            8 => "octal",
            _ => "binary",
        };
        return Err(CalcError::at(
            span,
            format!("`{text}` must be followed by {kind} digits"),
        ));
    }
    check_underscores(&text[2..], radix, span)?;
    let mut value = 0f64;
    for c in body.chars() {
        value = value * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0));
    }
    if !value.is_finite() {
        return Err(CalcError::at(
            span,
            format!("the number `{text}` is too large for a 64-bit float"),
        ));
    }
    Ok((value, end))
}

/// The position after the digits (of `radix`) and underscores from `i`.
fn digits(chars: &[char], mut i: usize, radix: u32) -> usize {
    while i < chars.len() && (chars[i].is_digit(radix) || chars[i] == '_') {
        i += 1;
    }
    i
}

/// Underscores may only separate digits.
fn check_underscores(text: &str, radix: u32, span: Span) -> Result<(), CalcError> {
    let chars: Vec<char> = text.chars().collect();
    for (k, &c) in chars.iter().enumerate() {
        if c != '_' {
            continue;
        }
        let before = k.checked_sub(1).map(|p| chars[p]);
        let after = chars.get(k + 1).copied();
        if !before.is_some_and(|b| b.is_digit(radix)) || !after.is_some_and(|a| a.is_digit(radix)) {
            return Err(
                CalcError::at(span, format!("misplaced `_` in the number `{text}`"))
                    .hint("`_` may only separate digits, as in `1_000_000`"),
            );
        }
    }
    Ok(())
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
    fn numbers_in_all_forms() {
        assert_eq!(toks("12"), [Tok::Num(12.0), Tok::End]);
        assert_eq!(toks(".5"), [Tok::Num(0.5), Tok::End]);
        assert_eq!(toks("1e-3"), [Tok::Num(0.001), Tok::End]);
        assert_eq!(toks("2.5E+2"), [Tok::Num(250.0), Tok::End]);
        assert_eq!(toks("1_000_000"), [Tok::Num(1e6), Tok::End]);
        assert_eq!(toks("0xff"), [Tok::Num(255.0), Tok::End]);
        assert_eq!(toks("0b1010"), [Tok::Num(10.0), Tok::End]);
        assert_eq!(toks("0o17"), [Tok::Num(15.0), Tok::End]);
        assert_eq!(toks("1."), [Tok::Num(1.0), Tok::End]);
    }

    #[test]
    fn e_without_digits_is_the_constant() {
        assert_eq!(
            toks("2e"),
            [Tok::Num(2.0), Tok::Ident("e".into()), Tok::End]
        );
        assert_eq!(toks("2e+1"), [Tok::Num(20.0), Tok::End]);
        assert_eq!(
            toks("2e+x"),
            [
                Tok::Num(2.0),
                Tok::Ident("e".into()),
                Tok::Plus,
                Tok::Ident("x".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn operators_and_spans() {
        let tokens = lex("a ** -b × 2÷c").unwrap();
        let kinds: Vec<&Tok> = tokens.iter().map(|t| &t.tok).collect();
        assert_eq!(
            kinds,
            [
                &Tok::Ident("a".into()),
                &Tok::Caret,
                &Tok::Minus,
                &Tok::Ident("b".into()),
                &Tok::Star,
                &Tok::Num(2.0),
                &Tok::Slash,
                &Tok::Ident("c".into()),
                &Tok::End
            ]
        );
        assert_eq!(tokens[1].span, Span::new(2, 4));
        assert_eq!(tokens[8].span, Span::new(13, 13));
    }

    #[test]
    fn bad_characters_are_located() {
        assert_eq!(
            error("1 + $"),
            "unexpected character `$` at column 5\n  1 + $\n      ^"
        );
        assert!(error("a == b").starts_with("comparison operators are not supported at column 3"));
        assert!(error("a < b").starts_with("comparison operators are not supported at column 3"));
        assert!(error("[1]").contains("use `(` and `)`"));
    }

    #[test]
    fn bad_numbers() {
        assert!(
            error("1__0").starts_with("misplaced `_`"),
            "{}",
            error("1__0")
        );
        assert!(error("10_").starts_with("misplaced `_`"));
        assert!(error("1_e5").starts_with("misplaced `_`"));
        assert!(error("0x").starts_with("`0x` must be followed by hexadecimal digits"));
        assert!(error("1e999").contains("too large"));
    }
}
