//! Pretty-prints or minifies JSON text, keeping every string and number
//! exactly as written.

use crate::jsontext::{self, Node};

/// The longest output `format` produces, in bytes.
pub(crate) const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How to lay the text out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Newlines and indentation, or none at all.
    pub pretty: bool,
    /// Spaces per level when pretty.
    pub indent: usize,
    /// Sort object members by key (by Unicode code point, stable).
    pub sort_keys: bool,
}

/// `text` laid out as `layout` says.
pub(crate) fn format(text: &str, layout: Layout) -> Result<String, String> {
    let mut node = jsontext::parse(text)?;
    if layout.sort_keys {
        sort(&mut node);
    }
    let mut out = String::with_capacity(text.len());
    write(&node, layout, 0, &mut out)?;
    Ok(out)
}

/// Sorts the members of every object by their decoded key.
fn sort(node: &mut Node<'_>) {
    match node {
        Node::Atom(_) => {}
        Node::Array(items) => items.iter_mut().for_each(sort),
        Node::Object(members) => {
            let mut keyed: Vec<(String, (&str, Node<'_>))> = std::mem::take(members)
                .into_iter()
                .map(|(key, value)| {
                    (
                        serde_json::from_str(key).unwrap_or_else(|_| key.to_string()),
                        (key, value),
                    )
                })
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            *members = keyed.into_iter().map(|(_, member)| member).collect();
            members.iter_mut().for_each(|(_, value)| sort(value));
        }
    }
}

fn write(node: &Node<'_>, layout: Layout, level: usize, out: &mut String) -> Result<(), String> {
    if out.len() > MAX_OUTPUT {
        return Err(format!(
            "the formatted text would be larger than {} MiB",
            MAX_OUTPUT / (1024 * 1024)
        ));
    }
    match node {
        Node::Atom(text) => out.push_str(text),
        Node::Array(items) if items.is_empty() => out.push_str("[]"),
        Node::Object(members) if members.is_empty() => out.push_str("{}"),
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separate(i, layout, level + 1, out);
                write(item, layout, level + 1, out)?;
            }
            newline(layout, level, out);
            out.push(']');
        }
        Node::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                separate(i, layout, level + 1, out);
                out.push_str(key);
                out.push(':');
                if layout.pretty {
                    out.push(' ');
                }
                write(value, layout, level + 1, out)?;
            }
            newline(layout, level, out);
            out.push('}');
        }
    }
    Ok(())
}

/// The comma before every element but the first, then the line break.
fn separate(i: usize, layout: Layout, level: usize, out: &mut String) {
    if i > 0 {
        out.push(',');
    }
    newline(layout, level, out);
}

fn newline(layout: Layout, level: usize, out: &mut String) {
    if layout.pretty {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', layout.indent * level));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: Layout = Layout {
        pretty: true,
        indent: 2,
        sort_keys: false,
    };
    const MINIFY: Layout = Layout {
        pretty: false,
        indent: 2,
        sort_keys: false,
    };

    #[test]
    fn pretty_matches_serde_json_layout() {
        let text = r#"{"name":"pear","tags":["a","b"],"empty":{},"none":[],"nested":{"x":[1,{"y":null}]}}"#;
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let ours = format(
            text,
            Layout {
                sort_keys: true,
                ..PRETTY
            },
        )
        .unwrap();
        assert_eq!(ours, serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn keeps_order_numbers_and_escapes() {
        let text = "{ \"b\" : 1.50 , \"a\" : [ 1e400 , \"\\u00e9\" , -0 ] }";
        assert_eq!(
            format(text, MINIFY).unwrap(),
            r#"{"b":1.50,"a":[1e400,"\u00e9",-0]}"#
        );
        assert_eq!(
            format(
                text,
                Layout {
                    indent: 4,
                    ..PRETTY
                }
            )
            .unwrap(),
            "{\n    \"b\": 1.50,\n    \"a\": [\n        1e400,\n        \"\\u00e9\",\n        -0\n    ]\n}"
        );
    }

    #[test]
    fn sorts_keys_by_decoded_value_stably() {
        let text = r#"{"b":1,"\u0061":2,"c":{"z":1,"y":2},"b":3}"#;
        let sorted = format(
            text,
            Layout {
                sort_keys: true,
                ..MINIFY
            },
        )
        .unwrap();
        assert_eq!(sorted, r#"{"\u0061":2,"b":1,"b":3,"c":{"y":2,"z":1}}"#);
    }

    #[test]
    fn zero_indent_and_scalars() {
        assert_eq!(
            format(
                "[1,[2]]",
                Layout {
                    indent: 0,
                    ..PRETTY
                }
            )
            .unwrap(),
            "[\n1,\n[\n2\n]\n]"
        );
        assert_eq!(format(" \"x\" ", PRETTY).unwrap(), "\"x\"");
        assert_eq!(format("\u{feff}[]", MINIFY).unwrap(), "[]");
    }

    #[test]
    fn huge_output_is_refused() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let wide = format!("[{}]", vec![deep; 2_000].join(","));
        let error = format(
            &wide,
            Layout {
                indent: 16,
                ..PRETTY
            },
        )
        .unwrap_err();
        assert!(error.contains("larger than 16 MiB"), "{error}");
    }
}
