//! `diff`: the time between two timestamps.

use chrono::{DateTime, Datelike, FixedOffset, Months, TimeDelta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::parse;

/// Input of `diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffInput {
    /// The earlier moment (if it is later, the difference is negative):
    /// RFC 3339 like "2024-01-31T09:30:00+02:00" (no offset means UTC) or a
    /// date like "2024-01-31" (midnight UTC).
    start: String,
    /// The later moment, in the same forms.
    end: String,
}

/// The difference `end - start`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffOutput {
    /// Whole seconds from start to end, truncated toward zero; negative when
    /// end is before start.
    seconds: i64,
    /// Milliseconds from start to end, truncated toward zero.
    milliseconds: i64,
    /// True when end is before start. The breakdowns are of the absolute
    /// difference.
    negative: bool,
    /// The absolute difference in fixed units: whole days of 24 hours, then
    /// the remaining hours, minutes, seconds and milliseconds.
    breakdown: Breakdown,
    /// The absolute difference in calendar units, counted from the earlier
    /// moment in its own UTC offset: whole months (a month step clamps to the
    /// end of a shorter month), then days and time.
    calendar: Calendar,
    /// The calendar difference in words, e.g. "1 month, 2 days and 3 hours".
    human: String,
}

/// A difference in fixed units.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Breakdown {
    /// Whole 24-hour days.
    days: i64,
    /// Hours left over, 0 to 23.
    hours: i64,
    /// Minutes left over, 0 to 59.
    minutes: i64,
    /// Seconds left over, 0 to 59.
    seconds: i64,
    /// Milliseconds left over, 0 to 999.
    milliseconds: i64,
}

/// A difference in calendar units.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Calendar {
    /// Whole years.
    years: i64,
    /// Whole months left over, 0 to 11.
    months: i64,
    /// Days left over.
    days: i64,
    /// Hours left over, 0 to 23.
    hours: i64,
    /// Minutes left over, 0 to 59.
    minutes: i64,
    /// Seconds left over, 0 to 59.
    seconds: i64,
}

pub fn diff(_ctx: &Ctx, input: DiffInput) -> Result<DiffOutput, ToolError> {
    let start = parse::timestamp("start", &input.start)?.time;
    let end = parse::timestamp("end", &input.end)?.time;
    let delta = end.signed_duration_since(start);
    let negative = delta < TimeDelta::zero();
    let (early, late) = if negative { (end, start) } else { (start, end) };
    let late = late.with_timezone(early.offset());
    let absolute = delta.abs();
    let breakdown = split(absolute);
    let calendar = calendar(early, late)?;
    Ok(DiffOutput {
        seconds: delta.num_seconds(),
        milliseconds: delta.num_milliseconds(),
        negative,
        human: human(&calendar, breakdown.milliseconds),
        breakdown,
        calendar,
    })
}

fn split(delta: TimeDelta) -> Breakdown {
    let millis = delta.num_milliseconds();
    Breakdown {
        days: millis / 86_400_000,
        hours: millis / 3_600_000 % 24,
        minutes: millis / 60_000 % 60,
        seconds: millis / 1000 % 60,
        milliseconds: millis % 1000,
    }
}

/// Whole months from `early` while they do not pass `late`, then the rest.
fn calendar(
    early: DateTime<FixedOffset>,
    late: DateTime<FixedOffset>,
) -> Result<Calendar, ToolError> {
    let range = || ToolError::invalid_input("the timestamps are too far apart to compare");
    let step = |months: i64| -> Result<DateTime<FixedOffset>, ToolError> {
        let months = u32::try_from(months).map_err(|_| range())?;
        early
            .checked_add_months(Months::new(months))
            .ok_or_else(range)
    };
    let mut months = i64::from(late.year() - early.year()) * 12 + i64::from(late.month())
        - i64::from(early.month());
    months = months.max(0);
    while months > 0 && step(months)? > late {
        months -= 1;
    }
    let rest = split(late.signed_duration_since(step(months)?));
    Ok(Calendar {
        years: months / 12,
        months: months % 12,
        days: rest.days,
        hours: rest.hours,
        minutes: rest.minutes,
        seconds: rest.seconds,
    })
}

fn human(c: &Calendar, milliseconds: i64) -> String {
    let parts: Vec<String> = [
        (c.years, "year"),
        (c.months, "month"),
        (c.days, "day"),
        (c.hours, "hour"),
        (c.minutes, "minute"),
        (c.seconds, "second"),
    ]
    .iter()
    .filter(|(n, _)| *n != 0)
    .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
    .collect();
    match parts.as_slice() {
        [] if milliseconds != 0 => format!("{milliseconds} milliseconds"),
        [] => String::from("0 seconds"),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::tools;

    fn run(start: &str, end: &str) -> Result<Value, toolhost_sdk::ToolError> {
        let tool = tools().into_iter().find(|t| t.name() == "diff").unwrap();
        let input = json!({"start": start, "end": end}).to_string();
        tool.call_json(&input)
            .map(|out| serde_json::from_str(&out).unwrap())
    }

    #[test]
    fn fixed_and_calendar_breakdowns() {
        let out = run("2024-01-31T08:00:00Z", "2024-03-02T10:30:15.250Z").unwrap();
        assert_eq!(out["seconds"], 31 * 86_400 + 2 * 3600 + 30 * 60 + 15);
        assert_eq!(
            out["milliseconds"],
            (31 * 86_400 + 2 * 3600 + 30 * 60 + 15) * 1000_i64 + 250
        );
        assert_eq!(out["negative"], false);
        assert_eq!(
            out["breakdown"],
            json!({"days": 31, "hours": 2, "minutes": 30, "seconds": 15, "milliseconds": 250})
        );
        // Jan 31 + 1 month = Feb 29 (clamped), then 2 days to Mar 2.
        assert_eq!(
            out["calendar"],
            json!({"years": 0, "months": 1, "days": 2, "hours": 2, "minutes": 30, "seconds": 15})
        );
        assert_eq!(
            out["human"],
            "1 month, 2 days, 2 hours, 30 minutes and 15 seconds"
        );
    }

    #[test]
    fn offsets_are_compared_as_instants() {
        let out = run("2024-06-01T12:00:00+02:00", "2024-06-01T10:00:00Z").unwrap();
        assert_eq!(out["seconds"], 0);
        assert_eq!(out["human"], "0 seconds");
        let out = run("2024-06-01T00:00:00-05:00", "2024-06-01").unwrap();
        assert_eq!(out["seconds"], -5 * 3600);
        assert_eq!(out["negative"], true);
        assert_eq!(out["human"], "5 hours");
    }

    #[test]
    fn years_and_leap_days() {
        let out = run("2020-02-29", "2024-02-28").unwrap();
        assert_eq!(out["calendar"]["years"], 3);
        assert_eq!(out["calendar"]["months"], 11);
        assert_eq!(out["calendar"]["days"], 30);
        assert_eq!(out["breakdown"]["days"], 1460);
        let out = run("2024-02-28", "2020-02-29").unwrap();
        assert_eq!(out["breakdown"]["days"], 1460);
        assert_eq!(out["seconds"], -1460 * 86_400);
        let out = run("2023-01-01", "2024-01-01").unwrap();
        assert_eq!(out["human"], "1 year");
    }

    #[test]
    fn sub_second_differences() {
        let out = run("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.040Z").unwrap();
        assert_eq!(out["milliseconds"], 40);
        assert_eq!(out["seconds"], 0);
        assert_eq!(out["human"], "40 milliseconds");
    }

    #[test]
    fn bad_timestamps_name_the_field() {
        let err = run("2024-01-01", "next tuesday").unwrap_err();
        assert!(err.message().contains("`end`"), "{err}");
        assert!(err.message().contains("RFC 3339"), "{err}");
        let err = run("2024-13-01", "2024-01-01").unwrap_err();
        assert!(err.message().contains("`start`"), "{err}");
    }
}
