//! When streamed arguments are complete, found in time linear in their
//! length.
//!
//! Asking [`is_complete_json`] after every piece reparses the whole text
//! each time, and a server can make every prefix worth asking about
//! (`{"a":[{}` then `,{}` again and again): work that grows with the
//! square of the arguments. [`Completion`] instead follows the text piece
//! by piece, keeping its bracket depth and whether it is inside a string,
//! so each byte is read once and the text is parsed only when its outermost
//! container closes: at most once per call.

use super::types::parses;

#[cfg(doc)]
use super::types::is_complete_json;

/// How far a call's arguments have been read, and what they are so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Completion {
    /// Bytes of the arguments read so far.
    read: usize,
    scan: Scan,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Scan {
    /// Only whitespace so far.
    #[default]
    Before,
    /// Inside the outermost container.
    Inside {
        depth: usize,
        in_string: bool,
        escaped: bool,
    },
    /// The outermost container closed and parsed; only whitespace since.
    Complete,
    /// Never complete, whatever follows: not a container, a container that
    /// does not parse, or something after it.
    Never,
}

impl Completion {
    /// Reads what was appended to `arguments` since the last call and says
    /// whether they are now one complete JSON container, as
    /// [`is_complete_json`] would. `arguments` must have grown only by
    /// appending since the last call; start a new `Completion` otherwise.
    pub(crate) fn advance(&mut self, arguments: &str) -> bool {
        if arguments.len() < self.read || !arguments.is_char_boundary(self.read) {
            *self = Self::default(); // not what it was: read it again
        }
        let start = self.read;
        self.read = arguments.len();
        for (at, &byte) in arguments.as_bytes().iter().enumerate().skip(start) {
            self.scan = match self.scan {
                Scan::Never => return false,
                Scan::Before => match byte {
                    b' ' | b'\t' | b'\n' | b'\r' => Scan::Before,
                    b'{' | b'[' => Scan::Inside {
                        depth: 1,
                        in_string: false,
                        escaped: false,
                    },
                    _ => Scan::Never,
                },
                Scan::Inside {
                    depth,
                    in_string: true,
                    escaped,
                } => Scan::Inside {
                    depth,
                    in_string: escaped || byte != b'"',
                    escaped: !escaped && byte == b'\\',
                },
                Scan::Inside { depth, .. } => match byte {
                    b'}' | b']' if depth == 1 => {
                        if parses(&arguments[..=at]) {
                            Scan::Complete
                        } else {
                            Scan::Never
                        }
                    }
                    _ => Scan::Inside {
                        depth: match byte {
                            b'{' | b'[' => depth + 1,
                            b'}' | b']' => depth - 1,
                            _ => depth,
                        },
                        in_string: byte == b'"',
                        escaped: false,
                    },
                },
                // Whitespace as `trim_end` reads it, so the answer is
                // `is_complete_json`'s; the rest of a character is skipped.
                Scan::Complete if !arguments.is_char_boundary(at) => Scan::Complete,
                Scan::Complete => match arguments[at..].chars().next() {
                    Some(c) if c.is_whitespace() => Scan::Complete,
                    _ => Scan::Never,
                },
            };
        }
        self.scan == Scan::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::is_complete_json;

    /// Every prefix of `text`, in pieces of `size` characters, read both
    /// ways.
    fn agree(text: &str, size: usize) {
        let mut completion = Completion::default();
        let mut so_far = String::new();
        for piece in crate::protocol::pieces(text, size) {
            so_far.push_str(&piece);
            assert_eq!(
                completion.advance(&so_far),
                is_complete_json(&so_far),
                "{so_far:?}"
            );
        }
    }

    #[test]
    fn agrees_with_a_whole_parse_at_every_piece() {
        for text in [
            r#"{"a": 1}"#,
            r#" {"a": "}\"]{"} "#,
            r#"[1, [2, {"b": []}]]"#,
            "{\"a\": \"\\\\\"}\u{a0}\n",
            r#"{"a": 1}{"#,
            r#"{"a": 1} x"#,
            r#"{"a" 1}"#,
            r#"{"a": 1]"#,
            r#""text""#,
            "12",
            "",
            "  ",
            r#"{"é": "😀", "q": "\u263a"}"#,
        ] {
            for size in 1..5 {
                agree(text, size);
            }
        }
    }

    #[test]
    fn arguments_replaced_are_read_again() {
        let mut completion = Completion::default();
        assert!(completion.advance(r#"{"a": 1}"#));
        assert!(!completion.advance(r#"{"b""#));
        assert!(completion.advance(r#"{"b": [2]}"#));
    }
}
