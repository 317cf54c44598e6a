//! A duration to add to a timestamp: calendar months, days and exact time.

use chrono::{DateTime, Datelike, FixedOffset, Months, TimeDelta};
use toolhost_sdk::ToolError;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

/// The ISO 8601 duration form, for error messages.
pub const ISO_FORM: &str = "an ISO 8601 duration like \"P1Y2M10DT2H30M\", \"P2W\", \"PT90M\", \
    \"PT1.5S\" or \"-P1D\" (units Y M W D, then T and H M S; fractions only on H, M and S)";

/// A duration in three parts, applied in this order: calendar months (the
/// day is clamped to the end of a shorter month), then days, then exact time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Calendar months (years count 12).
    pub months: i64,
    /// Calendar days (weeks count 7). With a fixed UTC offset a day is 24 h.
    pub days: i64,
    /// Exact time, in nanoseconds.
    pub nanos: i128,
}

/// The separate duration fields of an input.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields {
    pub years: i64,
    pub months: i64,
    pub weeks: i64,
    pub days: i64,
    pub hours: i64,
    pub minutes: i64,
    pub seconds: i64,
    pub milliseconds: i64,
}

fn too_big() -> ToolError {
    ToolError::invalid_input(
        "the duration is too large to work with; keep it within a few million years",
    )
}

impl Span {
    /// Sums the separate fields.
    pub fn from_fields(f: Fields) -> Result<Self, ToolError> {
        let months = f
            .years
            .checked_mul(12)
            .and_then(|y| y.checked_add(f.months))
            .ok_or_else(too_big)?;
        let days = f
            .weeks
            .checked_mul(7)
            .and_then(|w| w.checked_add(f.days))
            .ok_or_else(too_big)?;
        let nanos = i128::from(f.hours) * NANOS_PER_HOUR
            + i128::from(f.minutes) * NANOS_PER_MINUTE
            + i128::from(f.seconds) * NANOS_PER_SECOND
            + i128::from(f.milliseconds) * 1_000_000;
        Ok(Self {
            months,
            days,
            nanos,
        })
    }

    /// True when the span moves the time of day, not only the date.
    pub fn has_time(&self) -> bool {
        self.nanos != 0
    }

    /// Adds the span to `start`. The flag is true when a month step clamped
    /// the day of the month (Jan 31 + 1 month = Feb 28 or 29).
    pub fn add_to(
        &self,
        start: DateTime<FixedOffset>,
    ) -> Result<(DateTime<FixedOffset>, bool), ToolError> {
        let out_of_range =
            || ToolError::invalid_input("the result is outside the dates this tool can represent");
        let mut time = start;
        let mut clamped = false;
        if self.months != 0 {
            let count = u32::try_from(self.months.unsigned_abs()).map_err(|_| too_big())?;
            let moved = if self.months > 0 {
                time.checked_add_months(Months::new(count))
            } else {
                time.checked_sub_months(Months::new(count))
            };
            let moved = moved.ok_or_else(out_of_range)?;
            clamped = moved.day() != time.day();
            time = moved;
        }
        if self.days != 0 {
            let delta = TimeDelta::try_days(self.days).ok_or_else(too_big)?;
            time = time.checked_add_signed(delta).ok_or_else(out_of_range)?;
        }
        if self.nanos != 0 {
            let seconds = i64::try_from(self.nanos / NANOS_PER_SECOND).map_err(|_| too_big())?;
            let rest = (self.nanos % NANOS_PER_SECOND) as i64; // |rest| < 1e9 fits
            let delta = TimeDelta::try_seconds(seconds)
                .and_then(|d| d.checked_add(&TimeDelta::nanoseconds(rest)))
                .ok_or_else(too_big)?;
            time = time.checked_add_signed(delta).ok_or_else(out_of_range)?;
        }
        Ok((time, clamped))
    }
}

/// Reads an ISO 8601 duration. `field` names the input field in errors.
pub fn parse_iso(field: &str, text: &str) -> Result<Span, ToolError> {
    let fail = |why: String| {
        ToolError::invalid_input(format!(
            "`{field}` {text:?} is not a duration: {why}; expected {ISO_FORM}"
        ))
    };
    let trimmed = text.trim();
    let (negative, body) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let Some(body) = body.strip_prefix(['P', 'p']) else {
        return Err(fail(String::from("it must start with P")));
    };
    if !body.is_ascii() {
        return Err(fail(String::from(
            "it may only hold ASCII digits and unit letters",
        )));
    }
    let body = body.to_ascii_uppercase();
    let (date, time) = match body.split_once('T') {
        Some((_, "")) => {
            return Err(fail(String::from(
                "T must be followed by hours, minutes or seconds",
            )));
        }
        Some((date, time)) => (date, Some(time)),
        None => (body.as_str(), None),
    };
    let mut span = Span::default();
    let mut any = false;
    for (part, units) in [(date, "YMWD"), (time.unwrap_or(""), "HMS")] {
        let mut rest = part;
        let mut allowed = units;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+')))
                .ok_or_else(|| fail(format!("{rest:?} has no unit letter after the number")))?;
            let (number, tail) = rest.split_at(number_len);
            let unit = tail.chars().next().unwrap_or(' ');
            let position = allowed.find(unit).ok_or_else(|| {
                if units.contains(unit) {
                    fail(format!("unit {unit} is repeated or out of order"))
                } else if unit == 'T' {
                    fail(String::from("T may appear only once"))
                } else {
                    fail(format!("{unit:?} is not a unit here (allowed: {units})"))
                }
            })?;
            allowed = &allowed[position + 1..];
            rest = &tail[1..];
            let in_time = units == "HMS";
            let (whole, fraction) =
                parse_number(number).ok_or_else(|| fail(format!("{number:?} is not a number")))?;
            if fraction.is_some() && !in_time {
                return Err(fail(format!(
                    "fractions are allowed only on H, M and S, not on {unit}"
                )));
            }
            any = true;
            match (in_time, unit) {
                (false, 'Y') => span.months = add(span.months, whole.checked_mul(12))?,
                (false, 'M') => span.months = add(span.months, Some(whole))?,
                (false, 'W') => span.days = add(span.days, whole.checked_mul(7))?,
                (false, 'D') => span.days = add(span.days, Some(whole))?,
                (true, unit) => {
                    let per = match unit {
                        'H' => NANOS_PER_HOUR,
                        'M' => NANOS_PER_MINUTE,
                        _ => NANOS_PER_SECOND,
                    };
                    let (digits, scale) = fraction.unwrap_or((0, 1));
                    let sign = if whole < 0 || number.starts_with('-') {
                        -1
                    } else {
                        1
                    };
                    span.nanos += i128::from(whole) * per + sign * i128::from(digits) * per / scale;
                }
                _ => {}
            }
        }
    }
    if !any {
        return Err(fail(String::from("it has no components")));
    }
    if negative {
        span = Span {
            months: -span.months,
            days: -span.days,
            nanos: -span.nanos,
        };
    }
    Ok(span)
}

fn add(total: i64, value: Option<i64>) -> Result<i64, ToolError> {
    value.and_then(|v| total.checked_add(v)).ok_or_else(too_big)
}

/// A signed decimal number: the whole part and, if written, the fraction as
/// (digits, 10^count), keeping at most 9 fraction digits.
fn parse_number(text: &str) -> Option<(i64, Option<(i64, i128)>)> {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = whole.strip_prefix(['-', '+']).unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 15 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction = match fraction {
        None => None,
        Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => return None,
        Some(f) => {
            let kept = &f[..f.len().min(9)];
            Some((kept.parse().ok()?, 10i128.pow(kept.len() as u32)))
        }
    };
    Some((whole, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(text: &str) -> Span {
        parse_iso("duration", text).unwrap()
    }

    #[test]
    fn reads_iso_durations() {
        assert_eq!(
            iso("P1Y2M10DT2H30M"),
            Span {
                months: 14,
                days: 10,
                nanos: 9_000 * NANOS_PER_SECOND
            }
        );
        assert_eq!(
            iso("P2W"),
            Span {
                months: 0,
                days: 14,
                nanos: 0
            }
        );
        assert_eq!(
            iso("pt1.5s"),
            Span {
                months: 0,
                days: 0,
                nanos: 1_500_000_000
            }
        );
        assert_eq!(
            iso("PT0,25H"),
            Span {
                months: 0,
                days: 0,
                nanos: 900 * NANOS_PER_SECOND
            }
        );
        assert_eq!(
            iso("-P1DT1H"),
            Span {
                months: 0,
                days: -1,
                nanos: -NANOS_PER_HOUR
            }
        );
        assert_eq!(
            iso("PT-1.5S"),
            Span {
                months: 0,
                days: 0,
                nanos: -1_500_000_000
            }
        );
        assert_eq!(iso("P0D"), Span::default());
    }

    #[test]
    fn rejects_malformed_durations() {
        for (text, needle) in [
            ("1D", "start with P"),
            ("P", "no components"),
            ("PT", "followed by hours"),
            ("P1H", "not a unit here"),
            ("P1D2Y", "out of order"),
            ("P1M1M", "out of order"),
            ("P1.5D", "fractions"),
            ("P1", "no unit letter"),
            ("PT1H T1M", "not a unit"),
            ("P1DT1HT1M", "only once"),
            ("P--1D", "not a number"),
            ("P1é", "ASCII"),
            ("P9999999999999999D", "not a number"),
        ] {
            let err = parse_iso("duration", text).unwrap_err();
            assert!(err.message().contains(needle), "{text}: {err}");
            assert!(err.message().contains("`duration`"), "{text}: {err}");
        }
    }

    #[test]
    fn month_steps_clamp_to_the_end_of_the_month() {
        let start = DateTime::parse_from_rfc3339("2024-01-31T10:00:00+02:00").unwrap();
        let (end, clamped) = Span {
            months: 1,
            ..Span::default()
        }
        .add_to(start)
        .unwrap();
        assert_eq!(end.to_rfc3339(), "2024-02-29T10:00:00+02:00");
        assert!(clamped);
        let (end, clamped) = Span {
            months: 13,
            ..Span::default()
        }
        .add_to(start)
        .unwrap();
        assert_eq!(end.to_rfc3339(), "2025-02-28T10:00:00+02:00");
        assert!(clamped);
        let (end, clamped) = Span {
            months: -2,
            days: 1,
            nanos: -NANOS_PER_HOUR,
        }
        .add_to(start)
        .unwrap();
        assert_eq!(end.to_rfc3339(), "2023-12-01T09:00:00+02:00");
        assert!(clamped, "Jan 31 - 2 months is Nov 30");
        let (end, clamped) = Span {
            months: -1,
            ..Span::default()
        }
        .add_to(start)
        .unwrap();
        assert_eq!(end.to_rfc3339(), "2023-12-31T10:00:00+02:00");
        assert!(!clamped);
    }

    #[test]
    fn overflow_is_invalid_input_not_a_panic() {
        let start = DateTime::parse_from_rfc3339("2024-01-31T10:00:00Z").unwrap();
        for span in [
            Span {
                months: i64::MAX,
                ..Span::default()
            },
            Span {
                days: i64::MAX,
                ..Span::default()
            },
            Span {
                nanos: i128::MAX / 2,
                ..Span::default()
            },
            Span {
                days: 1_000_000_000,
                ..Span::default()
            },
        ] {
            assert!(
                matches!(span.add_to(start), Err(ToolError::InvalidInput(_))),
                "{span:?}"
            );
        }
        let fields = Fields {
            years: i64::MAX,
            ..Fields::default()
        };
        assert!(Span::from_fields(fields).is_err());
    }
}
