//! A duration to add to a timestamp: calendar months, days and exact time.

use chrono::{DateTime, Datelike, FixedOffset, Months, TimeDelta};
use toolhost_sdk::ToolError;

pub const NANOS_PER_SECOND: i128 = 1_000_000_000;
pub const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
pub const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

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

pub fn too_big() -> ToolError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
