//! A strict JSON parser (RFC 8259) that keeps the text of every string and
//! number as written, and whose errors give the line and column and say what
//! would fix them.

/// A parsed JSON value, borrowing its strings and numbers from the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// A string (with its quotes), a number, `true`, `false` or `null`.
    Atom(&'a str),
    Array(Vec<Node<'a>>),
    /// Members in the order written, keys with their quotes.
    Object(Vec<(&'a str, Node<'a>)>),
}

/// How deeply arrays and objects may nest (as serde_json allows).
pub(crate) const MAX_NESTING: usize = 128;

/// Parses `text`, which must hold exactly one JSON value.
pub(crate) fn parse(text: &str) -> Result<Node<'_>, String> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    if text.starts_with('\u{feff}') {
        parser.pos = 3;
    }
    parser.skip_space();
    if parser.pos >= parser.bytes.len() {
        return Err("the text is empty: expected a JSON value".to_string());
    }
    let node = parser.value()?;
    parser.skip_space();
    if parser.pos < parser.bytes.len() {
        return Err(parser
            .error("unexpected text after the JSON value; a JSON text holds exactly one value"));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// `message` with the line and column of the current position and the
    /// line underlined there.
    fn error(&self, message: &str) -> String {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: &str) -> String {
        let pos = pos.min(self.text.len());
        let pos = (0..=pos)
            .rev()
            .find(|&p| self.text.is_char_boundary(p))
            .unwrap_or(0);
        let line_start = self.text[..pos].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[pos..]
            .find('\n')
            .map_or(self.text.len(), |i| pos + i);
        let line = self.text[..pos].matches('\n').count() + 1;
        let column = self.text[line_start..pos].chars().count() + 1;
        let found = match self.text[pos..].chars().next() {
            Some(c) if !c.is_control() => format!("`{c}`"),
            Some(c) => format!("the character U+{:04X}", u32::from(c)),
            None => "the end of the text".to_string(),
        };
        let text_line = &self.text[line_start..line_end];
        let (shown, caret) = window(text_line, column - 1);
        format!(
            "{message} (found {found} at line {line}, column {column})\n  {shown}\n  {}^",
            " ".repeat(caret)
        )
    }

    fn value(&mut self) -> Result<Node<'a>, String> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Node::Atom),
            Some(b'-' | b'0'..=b'9') => self.number().map(Node::Atom),
            Some(b't') if self.text[self.pos..].starts_with("true") => Ok(self.atom(4)),
            Some(b'f') if self.text[self.pos..].starts_with("false") => Ok(self.atom(5)),
            Some(b'n') if self.text[self.pos..].starts_with("null") => Ok(self.atom(4)),
            Some(b'\'') => {
                Err(self.error("strings must be in double quotes (`\"`), not single quotes"))
            }
            Some(b'/') => Err(self.error("comments are not allowed in JSON")),
            Some(b'.' | b'+') => Err(self.error("a number must start with a digit or `-`")),
            Some(c) if c.is_ascii_alphabetic() => {
                let word: String = self.text[self.pos..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                Err(self.error(&format!(
                    "`{word}` is not a JSON value: the literals are true, false and null (lowercase), and strings need double quotes"
                )))
            }
            None => Err(self.error("unexpected end of the text: expected a value")),
            Some(_) => Err(self
                .error("expected a value: an object, array, string, number, true, false or null")),
        }
    }

    fn atom(&mut self, len: usize) -> Node<'a> {
        let start = self.pos;
        self.pos += len;
        Node::Atom(&self.text[start..self.pos])
    }

    /// Runs `inner` one nesting level deeper, failing past [`MAX_NESTING`].
    fn nested(
        &mut self,
        inner: fn(&mut Self) -> Result<Node<'a>, String>,
    ) -> Result<Node<'a>, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(&format!(
                "arrays and objects nest more than {MAX_NESTING} levels deep here"
            )));
        }
        let node = inner(self)?;
        self.depth -= 1;
        Ok(node)
    }

    fn array(&mut self) -> Result<Node<'a>, String> {
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array(items));
        }
        loop {
            self.skip_space();
            if self.peek() == Some(b']') {
                return Err(self.error("trailing comma before `]`: JSON does not allow one"));
            }
            items.push(self.value()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                None => return Err(self.unclosed(open, '[')),
                Some(_) => return Err(self.error("expected `,` or `]` after an array element")),
            }
        }
    }

    fn object(&mut self) -> Result<Node<'a>, String> {
        let open = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object(members));
        }
        loop {
            self.skip_space();
            let key = match self.peek() {
                Some(b'"') => self.string()?,
                Some(b'}') => {
                    return Err(self.error("trailing comma before `}`: JSON does not allow one"));
                }
                Some(b'\'') => {
                    return Err(
                        self.error("keys must be in double quotes (`\"`), not single quotes")
                    );
                }
                None => return Err(self.unclosed(open, '{')),
                Some(_) => return Err(self.error("expected an object key in double quotes")),
            };
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after an object key"));
            }
            self.pos += 1;
            self.skip_space();
            members.push((key, self.value()?));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object(members));
                }
                None => return Err(self.unclosed(open, '{')),
                Some(_) => return Err(self.error("expected `,` or `}` after an object member")),
            }
        }
    }

    fn unclosed(&self, open: usize, bracket: char) -> String {
        let (line, column) = self.line_column(open);
        self.error(&format!("unexpected end of the text: the `{bracket}` at line {line}, column {column} is never closed"))
    }

    fn line_column(&self, pos: usize) -> (usize, usize) {
        let line_start = self.text[..pos].rfind('\n').map_or(0, |i| i + 1);
        (
            self.text[..pos].matches('\n').count() + 1,
            self.text[line_start..pos].chars().count() + 1,
        )
    }

    /// A string, quotes included, checked but not decoded.
    fn string(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "this string is never closed")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(&self.text[start..self.pos]);
                }
                Some(b'\\') => self.escape()?,
                Some(c) if c < 0x20 => {
                    return Err(self.error(
                        "control characters must be escaped in strings (write \\n, \\t or \\u00XX)",
                    ));
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn escape(&mut self) -> Result<(), String> {
        let at = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4(at)?;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err(
                        self.error_at(at, "a low surrogate `\\u` escape must follow a high one")
                    );
                }
                if (0xD800..0xDC00).contains(&unit) {
                    if !self.text[self.pos..].starts_with("\\u") {
                        return Err(self.error_at(
                            at,
                            "a high surrogate `\\u` escape must be followed by a low one",
                        ));
                    }
                    self.pos += 2;
                    let low = self.hex4(at)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error_at(
                            at,
                            "a high surrogate `\\u` escape must be followed by a low one",
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(self.error_at(
                at,
                "invalid escape: JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX",
            )),
        }
    }

    fn hex4(&mut self, at: usize) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(digits) = digits else {
            return Err(self.error_at(at, "`\\u` must be followed by four hex digits"));
        };
        self.pos += 4;
        u32::from_str_radix(digits, 16)
            .map_err(|_| self.error_at(at, "`\\u` must be followed by four hex digits"))
    }

    fn number(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.error("numbers may not have leading zeros"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit in the number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("expected a digit after the decimal point"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        Ok(&self.text[start..self.pos])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

/// At most 60 characters of `line` around character `column`, and where the
/// caret goes under them.
fn window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' || c == '\r' { ' ' } else { c })
        .collect();
    let from = column.saturating_sub(30);
    let to = (column + 30).min(chars.len());
    let mut shown = String::new();
    let mut caret = column - from;
    if from > 0 {
        shown.push('…');
        caret += 1;
    }
    shown.extend(&chars[from.min(to)..to]);
    if to < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn keeps_text_as_written() {
        let node = parse(r#" {"b": [1.50, -0, 1e400, "\u00e9\n"], "a": {}} "#).unwrap();
        let Node::Object(members) = node else {
            panic!("not an object")
        };
        assert_eq!(members[0].0, "\"b\"");
        assert_eq!(
            members[0].1,
            Node::Array(vec![
                Node::Atom("1.50"),
                Node::Atom("-0"),
                Node::Atom("1e400"),
                Node::Atom(r#""\u00e9\n""#)
            ])
        );
        assert_eq!(members[1], ("\"a\"", Node::Object(vec![])));
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let cases = [
            "1",
            "-0.5e+3",
            "\"\\ud83d\\ude00\"",
            "[]",
            "{}",
            "[1,[2,[3]]]",
            "{\"a\":null}",
            "true",
            " false ",
            "01",
            "1.",
            "-",
            "+1",
            ".5",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "'a'",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "[1 2]",
            "{\"a\" 1}",
            "nul",
            "True",
            "1 2",
            "",
            "[",
            "{\"a\":",
            "\"abc",
            "1e",
            "1e+",
        ];
        for case in cases {
            let ours = parse(case).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(case).is_ok();
            assert_eq!(ours, theirs, "{case:?}: ours {:?}", parse(case));
        }
    }

    #[test]
    fn errors_give_line_column_and_advice() {
        assert_eq!(
            error("{\n  \"a\": 1,\n}"),
            "trailing comma before `}`: JSON does not allow one (found `}` at line 3, column 1)\n  }\n  ^"
        );
        assert_eq!(
            error("{\"a\": 'x'}"),
            "strings must be in double quotes (`\"`), not single quotes (found `'` at line 1, column 7)\n  {\"a\": 'x'}\n        ^"
        );
        assert!(error("[1, 2").starts_with(
            "unexpected end of the text: the `[` at line 1, column 1 is never closed"
        ));
        assert!(error("{a: 1}").starts_with(
            "expected an object key in double quotes (found `a` at line 1, column 2)"
        ));
        assert!(error("[NaN]").starts_with("`NaN` is not a JSON value"));
        assert!(error("[1] // c").starts_with("unexpected text after the JSON value"));
        assert!(error("// c\n1").starts_with("comments are not allowed"));
        assert!(error("\"a\tb\"").starts_with("control characters must be escaped"));
        assert!(error("[01]").starts_with("numbers may not have leading zeros"));
        assert!(error("  ").starts_with("the text is empty"));
        assert!(error("[\"é\", x]").contains("(found `x` at line 1, column 7)"));
    }

    /// Random JSON-ish soup: we accept exactly what serde_json accepts.
    #[test]
    fn random_texts_agree_with_serde_json() {
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n",
            "\"",
            "\"a\"",
            "\"\\u00e9\"",
            "\\",
            "1",
            "-",
            "0",
            ".",
            "5",
            "e",
            "+",
            "true",
            "null",
            "fals",
            "'",
            "/",
            "\\ud83d",
            "\\ude00",
            "\\n",
            "\\x",
            "é",
            "\t",
        ];
        let mut state: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..(state % 10 + 1) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            let ours = parse(&text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(ours, theirs, "{text:?}: ours {:?}", parse(&text));
        }
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert!(error(&deep).starts_with("arrays and objects nest more than 128 levels deep"));
    }

    #[test]
    fn long_lines_are_windowed() {
        let text = format!("[{}x]", "1,".repeat(100));
        let message = error(&text);
        let lines: Vec<&str> = message.lines().collect();
        assert!(lines[1].starts_with("  …"), "{message}");
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[1].chars().nth(caret), Some('x'), "{message}");
    }
}
