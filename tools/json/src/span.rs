//! Places in a filter's text, underlining them, and name suggestions.

/// A half-open range of character positions (0-based) in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

    /// The 1-based column where the span starts.
    pub fn column(self) -> usize {
        self.start + 1
    }
}

/// How many characters of context to show on each side of a problem.
const CONTEXT: usize = 30;

/// The text (or a window of it) on one line, with `^` under `span`.
pub(crate) fn underline(source: &str, span: Span) -> String {
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
    fn underlines_the_span() {
        assert_eq!(
            underline(".a | .b", Span::new(5, 7)),
            "  .a | .b\n       ^^"
        );
        assert_eq!(underline(".a |", Span::new(4, 4)), "  .a |\n      ^");
    }

    #[test]
    fn windows_long_text() {
        let text = format!("{}.x", ".a | ".repeat(40));
        let out = underline(&text, Span::new(200, 202));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("  …"), "{out}");
        let caret = lines[1].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[0].chars().nth(caret), Some('.'), "{out}");
        assert_eq!(lines[0].chars().nth(caret + 1), Some('x'), "{out}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("lenght", ["length", "keys"]), Some("length"));
        assert_eq!(did_you_mean("sleect", ["select", "sort"]), Some("select"));
        assert_eq!(did_you_mean("xyz", ["length"]), None);
        assert_eq!(did_you_mean("ab", ["abs"]), None);
    }
}
