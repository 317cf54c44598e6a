//! `format`: convert a timestamp or Unix time to another offset and format.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::info::TimeInfo;
use crate::parse;

/// The longest pattern accepted, in bytes.
const MAX_PATTERN_BYTES: usize = 1000;

/// Input of `format`. Give exactly one of `time`, `unix_seconds` and
/// `unix_millis`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatInput {
    /// A timestamp: RFC 3339 like "2024-01-31T09:30:00+02:00" (no offset
    /// means UTC) or a date like "2024-01-31" (midnight UTC).
    #[serde(default)]
    time: Option<String>,
    /// Seconds since 1970-01-01T00:00:00Z.
    #[serde(default)]
    unix_seconds: Option<i64>,
    /// Milliseconds since 1970-01-01T00:00:00Z.
    #[serde(default)]
    unix_millis: Option<i64>,
    /// Show the moment at this UTC offset ("Z", "+02:00", "-0530", ...).
    /// Default: the offset `time` was written with, or UTC for Unix times.
    #[serde(default)]
    offset: Option<String>,
    /// A strftime pattern for `formatted`, e.g. "%A %-d %B %Y, %H:%M" →
    /// "Wednesday 31 January 2024, 09:30". Common specifiers: %Y %m %d %e %H
    /// %I %M %S %p %A %a %B %b %j %V %G %z %:z %s, %.3f for milliseconds, %%
    /// for a literal %. Default: RFC 3339.
    #[serde(default)]
    pattern: Option<String>,
}

/// The formatted moment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FormatOutput {
    /// The moment written with `pattern` (RFC 3339 if no pattern was given).
    formatted: String,
    #[serde(flatten)]
    info: TimeInfo,
}

pub fn format(_ctx: &Ctx, input: FormatInput) -> Result<FormatOutput, ToolError> {
    let given = [
        input.time.is_some(),
        input.unix_seconds.is_some(),
        input.unix_millis.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(ToolError::invalid_input(
            "give exactly one of `time` (RFC 3339 or a date), `unix_seconds` and `unix_millis`",
        ));
    }
    let out_of_range = |field: &str| {
        ToolError::invalid_input(format!(
            "`{field}` is outside the dates this tool can represent"
        ))
    };
    let utc = FixedOffset::east_opt(0).ok_or_else(|| ToolError::failed("no UTC offset"))?;
    let moment: DateTime<FixedOffset> = match (&input.time, input.unix_seconds, input.unix_millis) {
        (Some(time), _, _) => parse::timestamp("time", time)?.time,
        (_, Some(seconds), _) => DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| out_of_range("unix_seconds"))?
            .with_timezone(&utc),
        (_, _, Some(millis)) => DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| out_of_range("unix_millis"))?
            .with_timezone(&utc),
        _ => return Err(ToolError::failed("no input time")),
    };
    let moment = match input.offset.as_deref() {
        Some(offset) => moment.with_timezone(&parse::offset("offset", offset)?),
        None => moment,
    };
    let info = TimeInfo::of(&moment)?;
    let formatted = match input.pattern.as_deref() {
        Some(pattern) => strftime(&moment, pattern)?,
        None => info.rfc3339.clone(),
    };
    Ok(FormatOutput { formatted, info })
}

/// Formats `moment` with a strftime `pattern`, naming the first bad specifier.
fn strftime(moment: &DateTime<FixedOffset>, pattern: &str) -> Result<String, ToolError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(ToolError::invalid_input(format!(
            "pattern is {} bytes long; at most {MAX_PATTERN_BYTES} are accepted",
            pattern.len()
        )));
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(pattern)
        .parse()
        .map_err(|_| bad_specifier(pattern))?;
    let mut out = String::new();
    write!(out, "{}", moment.format_with_items(items.iter()))
        .map_err(|_| ToolError::invalid_input("the pattern could not be applied to this moment"))?;
    Ok(out)
}

/// An error naming the first `%` specifier that chrono does not know.
fn bad_specifier(pattern: &str) -> ToolError {
    let mut chars = pattern.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut end = pattern.len();
        while let Some(&(i, next)) = chars.peek() {
            chars.next();
            if !matches!(next, '-' | '_' | '0' | '#' | ':' | '.' | '1'..='9') {
                end = i + next.len_utf8();
                break;
            }
        }
        let specifier = &pattern[start..end];
        if StrftimeItems::new(specifier).parse().is_err() {
            return ToolError::invalid_input(format!(
                "pattern has an unknown or incomplete specifier {specifier:?} at byte {start}; \
                 use chrono strftime specifiers such as %Y %m %d %H %M %S %A %B %z, or %% for a \
                 literal %"
            ));
        }
    }
    ToolError::invalid_input("pattern is not a valid strftime pattern")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "format").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn formats_with_a_pattern_in_another_offset() {
        let out = run(json!({
            "time": "2024-01-31T23:30:00Z",
            "offset": "+02:00",
            "pattern": "%A %-d %B %Y, %H:%M (%:z) 100%%",
        }))
        .unwrap();
        assert_eq!(
            out["formatted"],
            "Thursday 1 February 2024, 01:30 (+02:00) 100%"
        );
        assert_eq!(out["rfc3339"], "2024-02-01T01:30:00+02:00");
        assert_eq!(out["unix_seconds"], 1_706_743_800);
    }

    #[test]
    fn reads_unix_times() {
        let out = run(json!({"unix_seconds": 1_706_743_800})).unwrap();
        assert_eq!(out["formatted"], "2024-01-31T23:30:00Z");
        let out = run(json!({"unix_millis": -1, "pattern": "%Y-%m-%d %H:%M:%S%.3f"})).unwrap();
        assert_eq!(out["formatted"], "1969-12-31 23:59:59.999");
    }

    #[test]
    fn bad_patterns_name_the_specifier() {
        let err = run(json!({"time": "2024-01-31", "pattern": "%Y-%Q"})).unwrap_err();
        assert!(err.message().contains("\"%Q\" at byte 3"), "{err}");
        let err = run(json!({"time": "2024-01-31", "pattern": "100%"})).unwrap_err();
        assert!(err.message().contains("\"%\""), "{err}");
        let err = run(json!({"time": "2024-01-31", "pattern": "%-é"})).unwrap_err();
        assert!(err.message().contains("%-é"), "{err}");
    }

    #[test]
    fn needs_exactly_one_source() {
        let err = run(json!({"pattern": "%Y"})).unwrap_err();
        assert!(err.message().contains("exactly one"), "{err}");
        let err = run(json!({"time": "2024-01-31", "unix_seconds": 0})).unwrap_err();
        assert!(err.message().contains("exactly one"), "{err}");
        let err = run(json!({"unix_seconds": i64::MAX})).unwrap_err();
        assert!(err.message().contains("`unix_seconds`"), "{err}");
    }
}
