//! HTML reduced to readable text: scripts, styles and other non-content
//! elements dropped, block elements on lines of their own, list items
//! marked, entities decoded, whitespace collapsed. A forgiving scanner, not
//! a parser: it never fails, whatever the markup.

/// A page as text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The `<title>`, if any.
    pub title: Option<String>,
    /// The readable text.
    pub text: String,
}

/// Elements whose content is not shown to a reader.
const HIDDEN: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "iframe", "canvas", "object", "head",
];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "main",
    "aside",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "form",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "body",
];

pub fn to_text(html: &str) -> Page {
    let mut out = Writer::default();
    let mut title: Option<String> = None;
    let mut hidden: Option<String> = None; // the element being skipped
    let mut in_title = false;
    let mut pre = 0u32;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            text(
                &mut out,
                &mut title,
                in_title,
                hidden.is_some(),
                pre > 0,
                rest,
            );
            break;
        };
        text(
            &mut out,
            &mut title,
            in_title,
            hidden.is_some(),
            pre > 0,
            &rest[..lt],
        );
        rest = &rest[lt..];
        let starts_tag = rest[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        if !starts_tag {
            text(
                &mut out,
                &mut title,
                in_title,
                hidden.is_some(),
                pre > 0,
                "<",
            );
            rest = &rest[1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            text(
                &mut out,
                &mut title,
                in_title,
                hidden.is_some(),
                pre > 0,
                rest,
            );
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue; // <!doctype>, <?xml?>, stray `<`
        }
        if let Some(skipping) = &hidden {
            if closing && name == *skipping {
                hidden = None;
            } else if name == "title" && skipping == "head" {
                in_title = !closing;
            }
            continue;
        }
        if name == "title" {
            in_title = !closing;
            continue;
        }
        if !closing && HIDDEN.contains(&name.as_str()) && !tag.ends_with('/') {
            hidden = Some(name);
            continue;
        }
        if name == "pre" {
            pre = if closing {
                pre.saturating_sub(1)
            } else {
                pre + 1
            };
        }
        if BLOCKS.contains(&name.as_str()) {
            let paragraph = matches!(
                name.as_str(),
                "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "pre" | "blockquote"
            );
            out.line(paragraph);
            if !closing && name == "li" {
                out.push_str("- ");
            }
        } else if !closing && matches!(name.as_str(), "td" | "th") {
            out.push_str(" | ");
        }
    }
    Page {
        title: title.map(|t| collapse(&t)).filter(|t| !t.is_empty()),
        text: out.finish(),
    }
}

fn text(
    out: &mut Writer,
    title: &mut Option<String>,
    in_title: bool,
    hidden: bool,
    pre: bool,
    raw: &str,
) {
    if raw.is_empty() {
        return;
    }
    let decoded = decode_entities(raw);
    if in_title {
        title.get_or_insert_with(String::new).push_str(&decoded);
    } else if !hidden {
        if pre {
            out.push_pre(&decoded);
        } else {
            out.push_str(&decoded);
        }
    }
}

/// Builds the text: collapses runs of spaces, at most one blank line.
#[derive(Default)]
struct Writer {
    text: String,
    space: bool,
}

impl Writer {
    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.space = true;
            } else {
                if self.space && !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.text.push(' ');
                }
                self.space = false;
                self.text.push(c);
            }
        }
    }

    fn push_pre(&mut self, s: &str) {
        self.space = false;
        self.text.push_str(s);
    }

    fn line(&mut self, blank: bool) {
        self.space = false;
        while self.text.ends_with(' ') {
            self.text.pop();
        }
        if self.text.is_empty() {
            return;
        }
        let want = if blank { "\n\n" } else { "\n" };
        while !self.text.ends_with(want) {
            if self.text.ends_with("\n\n") {
                break;
            }
            self.text.push('\n');
        }
    }

    fn finish(self) -> String {
        let lines: Vec<&str> = self.text.lines().map(str::trim_end).collect();
        let mut out = String::new();
        let mut blank = 0;
        for line in lines {
            if line.trim().is_empty() {
                blank += 1;
                if blank > 1 {
                    continue;
                }
            } else {
                blank = 0;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.trim().to_string()
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes numeric entities and the named ones pages use most.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10);
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "times" => '×',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_becomes_readable_text() {
        let html = r#"<!doctype html><html><head><title>The  Title</title>
            <style>body { color: red }</style><script>var x = "<p>no</p>";</script></head>
            <body><h1>Heading</h1><p>First   paragraph with <b>bold</b> &amp; an entity&#33;</p>
            <!-- a comment <p>hidden</p> -->
            <ul><li>one</li><li>two &lt;3</li></ul>
            <table><tr><th>a</th><td>b</td></tr></table>
            <pre>keep   this
  spacing</pre><p>caf&eacute; &#x263A;</p></body></html>"#;
        let page = to_text(html);
        assert_eq!(page.title.as_deref(), Some("The Title"));
        assert_eq!(
            page.text,
            "Heading\n\nFirst paragraph with bold & an entity!\n\n- one\n- two <3\n\n| a | b\n\nkeep   this\n  spacing\n\ncaf&eacute; ☺"
        );
    }

    #[test]
    fn broken_markup_does_not_fail() {
        assert_eq!(to_text("a < b and <unclosed").text, "a < b and <unclosed");
        assert_eq!(to_text("<p>x</p><script>never closed").text, "x");
        assert_eq!(to_text("plain & simple").text, "plain & simple");
        assert_eq!(to_text("").text, "");
    }
}
