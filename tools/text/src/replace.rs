//! `replace`: regex replace with group references, or plain text replace.

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::pattern::{self, Flags};

/// The longest result one call may produce, in bytes.
const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

/// Input of `replace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceInput {
    /// The text to change.
    text: String,
    /// A regex in Rust `regex` syntax (like PCRE without look-around or
    /// backreferences), or plain text when `literal` is true.
    pattern: String,
    /// What each match becomes. `$1` or `${1}` inserts group 1, `$name` or
    /// `${name}` a named group, `$0` the whole match, `$$` a literal `$`.
    /// Write `${1}x` rather than `$1x` when letters or digits follow.
    replacement: String,
    /// Match `pattern` as plain text and insert `replacement` as is, with no
    /// `$` references. Default false.
    #[serde(default)]
    literal: bool,
    /// Ignore case (Unicode-aware). Default false.
    #[serde(default)]
    case_insensitive: bool,
    /// Make `^` and `$` match at the start and end of every line. Default false.
    #[serde(default)]
    multiline: bool,
    /// Let `.` match a newline too. Default false.
    #[serde(default)]
    dot_matches_newline: bool,
    /// Replace only the first this many matches (at least 1). Omit to replace all.
    #[serde(default)]
    limit: Option<u32>,
}

/// The changed text.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReplaceOutput {
    /// The text after replacing.
    text: String,
    /// How many matches were replaced.
    replacements: usize,
}

pub fn replace(_ctx: &Ctx, input: ReplaceInput) -> Result<ReplaceOutput, ToolError> {
    if input.limit == Some(0) {
        return Err(ToolError::invalid_input(
            "limit must be at least 1; omit it to replace every match",
        ));
    }
    let flags = Flags {
        literal: input.literal,
        case_insensitive: input.case_insensitive,
        multiline: input.multiline,
        dot_matches_newline: input.dot_matches_newline,
    };
    let re = pattern::compile(&input.pattern, flags)?;
    if !input.literal {
        check_references(&re, &input.replacement)?;
    }
    let limit = input.limit.map_or(usize::MAX, |l| l as usize);
    let text = input.text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut replacements = 0;
    for caps in re.captures_iter(text).take(limit) {
        let Some(whole) = caps.get(0) else { continue };
        out.push_str(&text[last..whole.start()]);
        if input.literal {
            out.push_str(&input.replacement);
        } else {
            caps.expand(&input.replacement, &mut out);
        }
        last = whole.end();
        replacements += 1;
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(too_long());
        }
    }
    out.push_str(&text[last..]);
    if out.len() > MAX_OUTPUT_BYTES {
        return Err(too_long());
    }
    Ok(ReplaceOutput {
        text: out,
        replacements,
    })
}

fn too_long() -> ToolError {
    ToolError::invalid_input(format!(
        "the result would be longer than {MAX_OUTPUT_BYTES} bytes; use a narrower pattern, \
         a shorter replacement or a `limit`"
    ))
}

/// Checks every `$` reference in `replacement` against the pattern's groups,
/// reading the replacement the way `regex` does.
fn check_references(re: &Regex, replacement: &str) -> Result<(), ToolError> {
    let bytes = replacement.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let rest = &replacement[i + 1..];
        if rest.starts_with('$') {
            i += 2;
            continue;
        }
        let (name, braced, len) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(close) => (&inner[..close], true, close + 2),
                None => {
                    i += 1; // `regex` keeps an unclosed `${` as literal text
                    continue;
                }
            }
        } else {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&rest[..len], false, len)
        };
        if !name.is_empty() {
            check_reference(re, name, braced)?;
        }
        i += 1 + len;
    }
    Ok(())
}

fn check_reference(re: &Regex, name: &str, braced: bool) -> Result<(), ToolError> {
    let groups = re.captures_len() - 1;
    if let Ok(index) = name.parse::<usize>() {
        if index > groups {
            return Err(ToolError::invalid_input(format!(
                "replacement refers to group {index} but the pattern has only {groups} \
                 capture group(s); use $$ for a literal `$`"
            )));
        }
        return Ok(());
    }
    if re.capture_names().flatten().any(|n| n == name) {
        return Ok(());
    }
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if !braced && digits > 0 {
        let (num, tail) = name.split_at(digits);
        return Err(ToolError::invalid_input(format!(
            "replacement `${name}` is read as a group named `{name}`; write `${{{num}}}{tail}` \
             for group {num} followed by `{tail}`"
        )));
    }
    let known: Vec<&str> = re.capture_names().flatten().collect();
    let known = if known.is_empty() {
        String::from("none")
    } else {
        known.join(", ")
    };
    Err(ToolError::invalid_input(format!(
        "replacement refers to a group named `{name}` that the pattern does not have \
         (its named groups: {known}); use $$ for a literal `$`"
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "replace").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn expands_numbered_and_named_groups() {
        let out = run(json!({
            "text": "2024-01-31, 1999-12-01",
            "pattern": r"(?P<y>\d{4})-(\d{2})-(\d{2})",
            "replacement": "$3/${2}/${y}",
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({"text": "31/01/2024, 01/12/1999", "replacements": 2})
        );
    }

    #[test]
    fn limit_replaces_only_the_first_matches() {
        let out = run(json!({"text": "a-b-c-d", "pattern": "-", "replacement": "+", "limit": 2}))
            .unwrap();
        assert_eq!(out, json!({"text": "a+b+c-d", "replacements": 2}));
    }

    #[test]
    fn literal_mode_inserts_dollars_verbatim() {
        let out = run(json!({
            "text": "price (USD)", "pattern": "(USD)", "replacement": "$1 ($)", "literal": true,
        }))
        .unwrap();
        assert_eq!(out["text"], "price $1 ($)");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        let out = run(json!({"text": "5", "pattern": r"(\d)", "replacement": "$$$1"})).unwrap();
        assert_eq!(out["text"], "$5");
    }

    #[test]
    fn case_insensitive_replace() {
        let out = run(json!({
            "text": "Cat cat CAT", "pattern": "cat", "replacement": "dog", "case_insensitive": true,
        }))
        .unwrap();
        assert_eq!(out, json!({"text": "dog dog dog", "replacements": 3}));
    }

    #[test]
    fn no_match_leaves_text_alone() {
        let out = run(json!({"text": "héllo", "pattern": "z", "replacement": "y"})).unwrap();
        assert_eq!(out, json!({"text": "héllo", "replacements": 0}));
    }

    #[test]
    fn unknown_group_references_are_refused() {
        let err = run(json!({"text": "ab", "pattern": "(a)", "replacement": "$2"})).unwrap_err();
        assert!(err.message().contains("only 1 capture group"), "{err}");
        let err =
            run(json!({"text": "ab", "pattern": "(?P<x>a)", "replacement": "${y}"})).unwrap_err();
        assert!(err.message().contains("named groups: x"), "{err}");
        let err = run(json!({"text": "ab", "pattern": "(a)", "replacement": "$1b"})).unwrap_err();
        assert!(err.message().contains("${1}b"), "{err}");
    }

    #[test]
    fn runaway_output_is_refused() {
        let err = run(json!({
            "text": "x".repeat(5000), "pattern": "", "replacement": "y".repeat(5000),
        }))
        .unwrap_err();
        assert!(err.message().contains("longer than"), "{err}");
    }

    #[test]
    fn zero_limit_is_invalid() {
        let err =
            run(json!({"text": "a", "pattern": "a", "replacement": "b", "limit": 0})).unwrap_err();
        assert!(err.message().contains("limit"), "{err}");
    }
}
