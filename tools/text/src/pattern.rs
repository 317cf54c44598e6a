//! Building a regex from a tool's input, with limits.

use regex::{Regex, RegexBuilder};
use toolhost_sdk::ToolError;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 10_000;

/// The most memory one compiled pattern may take, in bytes.
const SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// The most memory the lazy DFA may use while matching, in bytes.
const DFA_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// How a pattern is read. Shared by `find` and `replace`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// Match the pattern as plain text, not as a regex.
    pub literal: bool,
    /// Ignore case.
    pub case_insensitive: bool,
    /// `^` and `$` match at the start and end of every line.
    pub multiline: bool,
    /// `.` also matches a newline.
    pub dot_matches_newline: bool,
}

/// Compiles `pattern`, or says why it is not a usable regex.
pub fn compile(pattern: &str, flags: Flags) -> Result<Regex, ToolError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(ToolError::invalid_input(format!(
            "pattern is {} bytes long; at most {MAX_PATTERN_BYTES} are accepted",
            pattern.len()
        )));
    }
    let source = if flags.literal {
        regex::escape(pattern)
    } else {
        pattern.to_owned()
    };
    RegexBuilder::new(&source)
        .case_insensitive(flags.case_insensitive)
        .multi_line(flags.multiline)
        .dot_matches_new_line(flags.dot_matches_newline)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => ToolError::invalid_input(format!(
                "pattern compiles to more than {limit} bytes; make it smaller (large counted \
                 repetitions like `\\w{{1000}}` and big Unicode classes are the usual cause; \
                 `(?-u:\\w)` makes a class ASCII-only)"
            )),
            other => ToolError::invalid_input(format!(
                "pattern is not a valid regex (Rust `regex` syntax; look-around and \
                 backreferences are not supported):\n{other}"
            )),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pattern_carries_the_regex_message() {
        let err = compile("(ab", Flags::default()).unwrap_err();
        let ToolError::InvalidInput(message) = err else {
            panic!("wrong kind: {err:?}")
        };
        assert!(message.contains("unclosed group"), "{message}");
    }

    #[test]
    fn huge_repetition_hits_the_size_limit() {
        let err = compile(r"\w{5000}", Flags::default()).unwrap_err();
        assert!(err.message().contains("compiles to more than"), "{err}");
    }

    #[test]
    fn literal_escapes_metacharacters() {
        let re = compile(
            "a.b(",
            Flags {
                literal: true,
                ..Flags::default()
            },
        )
        .unwrap();
        assert!(re.is_match("xa.b(y"));
        assert!(!re.is_match("axb("));
    }

    #[test]
    fn too_long_pattern_is_refused() {
        let err = compile(&"a".repeat(MAX_PATTERN_BYTES + 1), Flags::default()).unwrap_err();
        assert!(err.message().contains("at most"), "{err}");
    }
}
