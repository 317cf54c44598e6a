//! Errors that point at a place in the expression, and name suggestions.

/// A half-open range of character positions (0-based) in the expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A problem with the expression: what, where, and maybe how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CalcError {
    message: String,
    span: Option<Span>,
    hint: Option<String>,
}

impl CalcError {
    /// A problem at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: Some(span),
            hint: None,
        }
    }

    /// A problem with the input as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
            hint: None,
        }
    }

    /// Adds advice, written after the column.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message with its column, the advice and, under it, the expression
    /// with the problem underlined.
    pub fn render(&self, source: &str) -> String {
        let mut out = self.message.clone();
        if let Some(span) = self.span {
            out.push_str(&format!(" at column {}", span.start + 1));
        }
        if let Some(hint) = &self.hint {
            out.push_str(" — ");
            out.push_str(hint);
        }
        if let Some(span) = self.span {
            out.push('\n');
            out.push_str(&underline(source, span));
        }
        out
    }
}

/// How many characters of context to show on each side of a problem.
const CONTEXT: usize = 30;

/// The expression (or a window of it) on one line, with `^` under `span`.
fn underline(source: &str, span: Span) -> String {
    let chars: Vec<char> = source
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let start = span.start.min(chars.len());
    let end = span.end.clamp(start, chars.len());
    let from = start.saturating_sub(CONTEXT);
    let to = (end.max(start + 1) + CONTEXT).min(chars.len());
    let mut line = String::from("  ");
    let mut pad = 2 + start - from;
    if from > 0 {
        line.push('…');
        pad += 1;
    }
    line.extend(&chars[from..to]);
    if to < chars.len() {
        line.push('…');
    }
    let width = (end - start).clamp(1, 2 * CONTEXT);
    format!("{line}\n{}{}", " ".repeat(pad), "^".repeat(width))
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = match name.chars().count() {
        0..=2 => return None,
        3..=5 => 1,
        _ => 2,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_column_hint_and_caret() {
        let err = CalcError::at(Span::new(6, 7), "unexpected `)`").hint("no `(` is open");
        assert_eq!(
            err.render("2 * x))"),
            "unexpected `)` at column 7 — no `(` is open\n  2 * x))\n        ^"
        );
    }

    #[test]
    fn long_expressions_are_windowed() {
        let source = format!("{}+)", "1+".repeat(100));
        let err = CalcError::at(Span::new(201, 202), "unexpected `)`");
        let text = err.render(&source);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("  …+1+1"), "{text}");
        assert!(lines[1].chars().count() < 70, "{text}");
        let paren = lines[1].chars().position(|c| c == ')').unwrap();
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        assert_eq!(paren, caret, "{text}");
    }

    #[test]
    fn caret_after_the_end() {
        let err = CalcError::at(Span::new(3, 3), "expected a value");
        assert_eq!(
            err.render("2 +"),
            "expected a value at column 4\n  2 +\n     ^"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["sqrt", "sin", "sinh", "cbrt"];
        assert_eq!(did_you_mean("sqr", names), Some("sqrt"));
        assert_eq!(did_you_mean("sinn", names), Some("sin"));
        assert_eq!(did_you_mean("blah", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
