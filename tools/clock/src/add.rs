//! `add`: add a duration to a timestamp or date.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::info::TimeInfo;
use crate::iso;
use crate::parse;
use crate::span::{Fields, Span};

/// Input of `add`. Give the duration either as separate fields or as an
/// ISO 8601 `duration`, not both. Months and years are calendar steps that
/// keep the day of the month, clamped to the month's last day (Jan 31 + 1
/// month = Feb 29 in 2024, Feb 28 otherwise); then weeks and days move the
/// date; then hours, minutes, seconds and milliseconds add exact time.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddInput {
    /// The timestamp to start from: RFC 3339 like "2024-01-31T09:30:00+02:00"
    /// (no offset means UTC) or a date like "2024-01-31" (midnight UTC). The
    /// result keeps this UTC offset.
    start: String,
    /// An ISO 8601 duration such as "P1Y2M10DT2H30M", "P2W", "PT90M" or
    /// "-P1D" (a leading minus subtracts).
    #[serde(default)]
    duration: Option<String>,
    /// Calendar years to add (negative to subtract).
    #[serde(default)]
    years: Option<i64>,
    /// Calendar months to add (negative to subtract).
    #[serde(default)]
    months: Option<i64>,
    /// Weeks (7 days) to add.
    #[serde(default)]
    weeks: Option<i64>,
    /// Days to add.
    #[serde(default)]
    days: Option<i64>,
    /// Hours to add.
    #[serde(default)]
    hours: Option<i64>,
    /// Minutes to add.
    #[serde(default)]
    minutes: Option<i64>,
    /// Seconds to add.
    #[serde(default)]
    seconds: Option<i64>,
    /// Milliseconds to add.
    #[serde(default)]
    milliseconds: Option<i64>,
}

/// The moment after adding.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AddOutput {
    /// The result in the form of `start`: a date "YYYY-MM-DD" if `start` was
    /// a date and the duration had no hours, minutes or seconds; otherwise
    /// RFC 3339.
    result: String,
    /// True when a month or year step landed past the end of a shorter month
    /// and the day was clamped to its last day.
    clamped: bool,
    #[serde(flatten)]
    info: TimeInfo,
}

pub fn add(_ctx: &Ctx, input: AddInput) -> Result<AddOutput, ToolError> {
    let start = parse::timestamp("start", &input.start)?;
    let fields = [
        input.years,
        input.months,
        input.weeks,
        input.days,
        input.hours,
        input.minutes,
        input.seconds,
        input.milliseconds,
    ];
    let any_field = fields.iter().any(Option::is_some);
    let span = match (&input.duration, any_field) {
        (Some(_), true) => {
            return Err(ToolError::invalid_input(
                "give the duration either as `duration` (ISO 8601) or as separate fields like \
                 `days` and `hours`, not both",
            ));
        }
        (Some(iso), false) => iso::parse_iso("duration", iso)?,
        (None, true) => Span::from_fields(Fields {
            years: input.years.unwrap_or(0),
            months: input.months.unwrap_or(0),
            weeks: input.weeks.unwrap_or(0),
            days: input.days.unwrap_or(0),
            hours: input.hours.unwrap_or(0),
            minutes: input.minutes.unwrap_or(0),
            seconds: input.seconds.unwrap_or(0),
            milliseconds: input.milliseconds.unwrap_or(0),
        })?,
        (None, false) => {
            return Err(ToolError::invalid_input(format!(
                "no duration given: set `duration` to {} or set fields such as `days`, \
                 `hours` or `months`",
                iso::ISO_FORM
            )));
        }
    };
    let (time, clamped) = span.add_to(start.time)?;
    let info = TimeInfo::of(&time)?;
    let result = if start.date_only && !span.has_time() {
        info.date.clone()
    } else {
        info.rfc3339.clone()
    };
    Ok(AddOutput {
        result,
        clamped,
        info,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(input: Value) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "add").unwrap();
        tool.call_json(&input.to_string())
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn month_end_is_clamped_and_reported() {
        let out = run(json!({"start": "2024-01-31", "months": 1})).unwrap();
        assert_eq!(out["result"], "2024-02-29");
        assert_eq!(out["clamped"], true);
        let out = run(json!({"start": "2023-01-31", "duration": "P1M"})).unwrap();
        assert_eq!(out["result"], "2023-02-28");
        let out = run(json!({"start": "2024-02-29", "years": 1})).unwrap();
        assert_eq!(out["result"], "2025-02-28");
        let out = run(json!({"start": "2024-01-15", "months": 1})).unwrap();
        assert_eq!(out["clamped"], false);
    }

    #[test]
    fn keeps_the_offset_and_crosses_days() {
        let out =
            run(json!({"start": "2024-03-30T22:00:00+02:00", "hours": 3, "minutes": 30})).unwrap();
        assert_eq!(out["result"], "2024-03-31T01:30:00+02:00");
        assert_eq!(out["weekday"], "Sunday");
        assert_eq!(out["unix_seconds"], 1_711_841_400);
    }

    #[test]
    fn iso_and_fields_agree() {
        let a = run(json!({"start": "2024-01-31T10:00:00Z", "duration": "P1Y2M3W4DT5H6M7.5S"}))
            .unwrap();
        let b = run(json!({
            "start": "2024-01-31T10:00:00Z", "years": 1, "months": 2, "weeks": 3, "days": 4,
            "hours": 5, "minutes": 6, "seconds": 7, "milliseconds": 500,
        }))
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a["result"], "2025-04-25T15:06:07.500Z");
    }

    #[test]
    fn subtracts_and_turns_a_date_into_a_timestamp_when_needed() {
        let out = run(json!({"start": "2024-03-01", "days": -1})).unwrap();
        assert_eq!(out["result"], "2024-02-29");
        let out = run(json!({"start": "2024-03-01", "duration": "-PT1H"})).unwrap();
        assert_eq!(out["result"], "2024-02-29T23:00:00Z");
    }

    #[test]
    fn bad_requests_are_invalid_input() {
        for (input, needle) in [
            (json!({"start": "2024-01-31"}), "no duration"),
            (
                json!({"start": "2024-01-31", "days": 1, "duration": "P1D"}),
                "not both",
            ),
            (json!({"start": "31.01.2024", "days": 1}), "`start`"),
            (
                json!({"start": "2024-01-31", "duration": "1 day"}),
                "`duration`",
            ),
            (
                json!({"start": "2024-01-31", "years": 9000}),
                "outside the years",
            ),
            (
                json!({"start": "2024-01-31", "days": i64::MAX}),
                "too large",
            ),
            (
                json!({"start": "2024-01-31", "fortnights": 1}),
                "fortnights",
            ),
        ] {
            let err = run(input.clone()).unwrap_err();
            assert!(
                matches!(err, toolhost_sdk::ToolError::InvalidInput(_)),
                "{input}"
            );
            assert!(err.message().contains(needle), "{input}: {err}");
        }
    }
}
