//! The facts about a moment that every clock tool reports.

use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike, Weekday};
use schemars::JsonSchema;
use serde::Serialize;
use toolhost_sdk::ToolError;

/// A moment, spelled several ways.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeInfo {
    /// RFC 3339 with the UTC offset ("Z" for UTC), e.g. "2024-01-31T09:30:00+02:00".
    pub rfc3339: String,
    /// The calendar date in that offset, "YYYY-MM-DD".
    pub date: String,
    /// The time of day in that offset, "HH:MM:SS" with a fraction if any.
    pub time: String,
    /// The UTC offset, "+HH:MM".
    pub offset: String,
    /// The day of the week in English, e.g. "Wednesday".
    pub weekday: String,
    /// The ISO 8601 week, e.g. "2024-W05" (its year can differ from the
    /// calendar year near New Year).
    pub iso_week: String,
    /// The day of the year, 1 to 366.
    pub day_of_year: u32,
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub unix_seconds: i64,
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub unix_millis: i64,
}

impl TimeInfo {
    /// Describes `time`, which must fall in the years 0000 to 9999.
    pub fn of(time: &DateTime<FixedOffset>) -> Result<Self, ToolError> {
        if !(0..=9999).contains(&time.year()) {
            return Err(ToolError::invalid_input(format!(
                "the result falls in the year {}, outside the years 0000-9999 that RFC 3339 \
                 can write",
                time.year()
            )));
        }
        let offset = time.offset().local_minus_utc();
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.unsigned_abs();
        let mut clock = format!(
            "{:02}:{:02}:{:02}",
            time.hour(),
            time.minute(),
            time.second()
        );
        let nanos = time.nanosecond() % 1_000_000_000;
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            clock.push('.');
            clock.push_str(fraction.trim_end_matches('0'));
        }
        let week = time.iso_week();
        Ok(Self {
            rfc3339: time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            date: format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day()),
            time: clock,
            offset: format!("{sign}{:02}:{:02}", offset / 3600, offset % 3600 / 60),
            weekday: weekday_name(time.weekday()).to_owned(),
            iso_week: format!("{:04}-W{:02}", week.year(), week.week()),
            day_of_year: time.ordinal(),
            unix_seconds: time.timestamp(),
            unix_millis: time.timestamp_millis(),
        })
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> TimeInfo {
        TimeInfo::of(&DateTime::parse_from_rfc3339(text).unwrap()).unwrap()
    }

    #[test]
    fn describes_a_moment_in_its_offset() {
        let i = info("2024-01-01T01:30:00.250+05:30");
        assert_eq!(i.rfc3339, "2024-01-01T01:30:00.250+05:30");
        assert_eq!(i.date, "2024-01-01");
        assert_eq!(i.time, "01:30:00.25");
        assert_eq!(i.offset, "+05:30");
        assert_eq!(i.weekday, "Monday");
        assert_eq!(i.iso_week, "2024-W01");
        assert_eq!(i.day_of_year, 1);
        assert_eq!(i.unix_seconds, 1_704_052_800);
        assert_eq!(i.unix_millis, 1_704_052_800_250);
    }

    #[test]
    fn iso_week_year_differs_near_new_year() {
        let i = info("2021-01-03T12:00:00Z");
        assert_eq!(i.iso_week, "2020-W53");
        assert_eq!(i.weekday, "Sunday");
        assert_eq!(i.rfc3339, "2021-01-03T12:00:00Z");
        assert_eq!(info("2024-12-31T00:00:00-08:00").day_of_year, 366);
        assert_eq!(info("2024-12-31T00:00:00-08:00").offset, "-08:00");
    }

    #[test]
    fn refuses_years_rfc3339_cannot_write() {
        let far = DateTime::parse_from_rfc3339("9999-12-31T23:00:00Z").unwrap()
            + chrono::TimeDelta::try_days(1).unwrap();
        let err = TimeInfo::of(&far).unwrap_err();
        assert!(err.message().contains("10000"), "{err}");
    }
}
