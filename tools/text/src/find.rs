//! `find`: regex matches with offsets, line numbers and capture groups.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::pattern::{self, Flags};

/// Matches returned when `max_matches` is not given.
const DEFAULT_MAX_MATCHES: u32 = 100;
/// The most matches one call may return.
const MAX_MATCHES: u32 = 10_000;
/// The most bytes of matched text (matches plus groups) one call returns.
const MAX_MATCHED_BYTES: usize = 4 * 1024 * 1024;

/// Input of `find`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindInput {
    /// The text to search.
    text: String,
    /// A regex in Rust `regex` syntax (like PCRE without look-around or
    /// backreferences). Named groups are written `(?P<name>...)` or `(?<name>...)`.
    pattern: String,
    /// Match `pattern` as plain text instead of as a regex. Default false.
    #[serde(default)]
    literal: bool,
    /// Ignore case (Unicode-aware). Default false.
    #[serde(default)]
    case_insensitive: bool,
    /// Make `^` and `$` match at the start and end of every line, not only of
    /// the whole text. Default false.
    #[serde(default)]
    multiline: bool,
    /// Let `.` match a newline too. Default false.
    #[serde(default)]
    dot_matches_newline: bool,
    /// The most matches to return, 1 to 10000; default 100. `total` still
    /// counts every match.
    #[serde(default)]
    max_matches: Option<u32>,
}

/// The matches found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FindOutput {
    /// How many matches the whole text has.
    total: usize,
    /// True when `matches` lists fewer than `total` (capped by `max_matches`
    /// or by the 4 MiB limit on matched text).
    truncated: bool,
    /// The matches, in order of position.
    matches: Vec<Match>,
}

/// One match.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Match {
    /// The matched text.
    text: String,
    /// Byte offset of the start in the UTF-8 text.
    start: usize,
    /// Byte offset just past the end.
    end: usize,
    /// Offset of the start in Unicode characters (code points).
    char_start: usize,
    /// Character offset just past the end.
    char_end: usize,
    /// Line of the start, counting from 1.
    line: usize,
    /// Column of the start in characters, counting from 1.
    column: usize,
    /// The capture groups 1, 2, …, in order; empty when the pattern has none.
    groups: Vec<Group>,
}

/// One capture group of a match.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Group {
    /// The group's number, counting from 1.
    index: usize,
    /// The group's name, for a named group.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The captured text, or null when the group took no part in the match.
    text: Option<String>,
    /// Byte offset of the capture's start, or null.
    start: Option<usize>,
    /// Byte offset just past the capture's end, or null.
    end: Option<usize>,
}

/// Walks forward through the text, turning byte offsets into characters,
/// lines and columns in one pass overall.
struct Cursor<'a> {
    text: &'a str,
    byte: usize,
    char: usize,
    line: usize,
    line_start_char: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            byte: 0,
            char: 0,
            line: 1,
            line_start_char: 0,
        }
    }

    /// Moves to `byte` (never backwards; offsets come in increasing order).
    fn advance_to(&mut self, byte: usize) {
        if byte <= self.byte {
            return;
        }
        for c in self.text[self.byte..byte].chars() {
            self.char += 1;
            if c == '\n' {
                self.line += 1;
                self.line_start_char = self.char;
            }
        }
        self.byte = byte;
    }
}

pub fn find(_ctx: &Ctx, input: FindInput) -> Result<FindOutput, ToolError> {
    let max = input.max_matches.unwrap_or(DEFAULT_MAX_MATCHES);
    if !(1..=MAX_MATCHES).contains(&max) {
        return Err(ToolError::invalid_input(format!(
            "max_matches must be between 1 and {MAX_MATCHES}, got {max}"
        )));
    }
    let flags = Flags {
        literal: input.literal,
        case_insensitive: input.case_insensitive,
        multiline: input.multiline,
        dot_matches_newline: input.dot_matches_newline,
    };
    let re = pattern::compile(&input.pattern, flags)?;
    let names: Vec<Option<&str>> = re.capture_names().collect();
    let text = input.text.as_str();

    let mut cursor = Cursor::new(text);
    let mut matches = Vec::new();
    let mut matched_bytes = 0usize;
    let mut truncated = false;
    for caps in re.captures_iter(text) {
        if matches.len() >= max as usize {
            truncated = true;
            break;
        }
        let Some(whole) = caps.get(0) else { continue };
        let groups: Vec<Group> = (1..caps.len())
            .map(|index| {
                let m = caps.get(index);
                Group {
                    index,
                    name: names.get(index).copied().flatten().map(str::to_owned),
                    text: m.map(|m| m.as_str().to_owned()),
                    start: m.map(|m| m.start()),
                    end: m.map(|m| m.end()),
                }
            })
            .collect();
        let size = whole.len()
            + groups
                .iter()
                .map(|g| g.text.as_ref().map_or(0, String::len))
                .sum::<usize>();
        matched_bytes = matched_bytes.saturating_add(size);
        if matched_bytes > MAX_MATCHED_BYTES {
            truncated = true;
            break;
        }
        cursor.advance_to(whole.start());
        let char_start = cursor.char;
        matches.push(Match {
            text: whole.as_str().to_owned(),
            start: whole.start(),
            end: whole.end(),
            char_start,
            char_end: char_start + whole.as_str().chars().count(),
            line: cursor.line,
            column: char_start - cursor.line_start_char + 1,
            groups,
        });
    }
    let total = if truncated {
        re.find_iter(text).count()
    } else {
        matches.len()
    };
    Ok(FindOutput {
        total,
        truncated,
        matches,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "find").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn reports_offsets_lines_and_columns() {
        let out = run(json!({"text": "héllo\nwörld wide", "pattern": r"w\w+"})).unwrap();
        assert_eq!(out["total"], 2);
        let first = &out["matches"][0];
        assert_eq!(first["text"], "wörld");
        assert_eq!(first["start"], 7); // "héllo\n" is 7 bytes
        assert_eq!(first["char_start"], 6);
        assert_eq!(first["char_end"], 11);
        assert_eq!(first["end"], 13);
        assert_eq!(first["line"], 2);
        assert_eq!(first["column"], 1);
        let second = &out["matches"][1];
        assert_eq!(second["text"], "wide");
        assert_eq!(second["line"], 2);
        assert_eq!(second["column"], 7);
    }

    #[test]
    fn returns_named_and_unmatched_groups() {
        let out = run(json!({
            "text": "2024-01-31 and 1999-12",
            "pattern": r"(?P<year>\d{4})-(?P<month>\d{2})(?:-(\d{2}))?",
        }))
        .unwrap();
        let first = &out["matches"][0]["groups"];
        assert_eq!(
            first[0],
            json!({"index": 1, "name": "year", "text": "2024", "start": 0, "end": 4})
        );
        assert_eq!(first[2]["text"], "31");
        assert!(first[2].get("name").is_none());
        let second = &out["matches"][1]["groups"];
        assert_eq!(second[1]["text"], "12");
        assert_eq!(second[2]["text"], Value::Null);
        assert_eq!(second[2]["start"], Value::Null);
    }

    #[test]
    fn flags_change_the_match() {
        let text = "Alpha\nbeta\nALPHA";
        let plain = run(json!({"text": text, "pattern": "^alpha$"})).unwrap();
        assert_eq!(plain["total"], 0);
        let both =
            run(json!({"text": text, "pattern": "^alpha$", "case_insensitive": true, "multiline": true}))
                .unwrap();
        assert_eq!(both["total"], 2);
        assert_eq!(both["matches"][1]["line"], 3);
        let dot =
            run(json!({"text": "a\nb", "pattern": "a.b", "dot_matches_newline": true})).unwrap();
        assert_eq!(dot["total"], 1);
    }

    #[test]
    fn caps_matches_but_counts_all() {
        let out = run(json!({"text": "a a a a a", "pattern": "a", "max_matches": 2})).unwrap();
        assert_eq!(out["total"], 5);
        assert_eq!(out["truncated"], true);
        assert_eq!(out["matches"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn literal_mode_matches_metacharacters() {
        let out =
            run(json!({"text": "cost: $5.00 (approx)", "pattern": "$5.00 (", "literal": true}))
                .unwrap();
        assert_eq!(out["total"], 1);
        assert_eq!(out["matches"][0]["start"], 6);
    }

    #[test]
    fn empty_matches_do_not_loop() {
        let out = run(json!({"text": "ab", "pattern": "x*"})).unwrap();
        assert_eq!(out["total"], 3);
    }

    #[test]
    fn bad_input_is_invalid_input() {
        let err = run(json!({"text": "x", "pattern": "[a-"})).unwrap_err();
        assert!(err.message().contains("not a valid regex"), "{err}");
        let err = run(json!({"text": "x", "pattern": "x", "max_matches": 0})).unwrap_err();
        assert!(err.message().contains("max_matches"), "{err}");
        let err = run(json!({"text": "x", "pattern": "x", "flags": "i"})).unwrap_err();
        assert!(matches!(err, toolhost_sdk::ToolError::InvalidInput(_)));
    }
}
