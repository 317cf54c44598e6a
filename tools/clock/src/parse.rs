//! Reading timestamps and UTC offsets from text.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use toolhost_sdk::ToolError;

/// The accepted timestamp forms, for error messages.
pub const EXPECTED: &str = "expected RFC 3339 like \"2024-01-31T09:30:00Z\" or \
    \"2024-01-31T09:30:00.250+02:00\" (a space may replace the T; seconds and the offset may be \
    left out, and no offset means UTC), or a date like \"2024-01-31\"";

/// A timestamp read from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The moment, in the offset it was written with (UTC if none).
    pub time: DateTime<FixedOffset>,
    /// True when the input was a date with no time of day.
    pub date_only: bool,
}

/// Reads `text` as a timestamp. `field` names the input field in errors.
pub fn timestamp(field: &str, text: &str) -> Result<Stamp, ToolError> {
    let text = text.trim();
    let fail = |why: &str| {
        ToolError::invalid_input(format!(
            "`{field}` {text:?} is not a timestamp ({why}); {EXPECTED}"
        ))
    };
    let Some(date_part) = text.get(..10) else {
        let why = if text.len() < 10 {
            "too short"
        } else {
            "the date part must be YYYY-MM-DD"
        };
        return Err(fail(why));
    };
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .map_err(|e| fail(&format!("date part {date_part:?}: {e}")))?;
    let utc = FixedOffset::east_opt(0).ok_or_else(|| fail("no UTC offset"))?;
    let rest = &text[10..];
    if rest.is_empty() {
        let time = utc
            .from_local_datetime(&date.and_time(NaiveTime::MIN))
            .single()
            .ok_or_else(|| fail("out of range"))?;
        return Ok(Stamp {
            time,
            date_only: true,
        });
    }
    let Some(rest) = rest.strip_prefix(['T', 't', ' ']) else {
        return Err(fail("the date must be followed by T or a space and a time"));
    };
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, offset_text) = rest.split_at(split);
    let time_of_day = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M"))
        .map_err(|e| fail(&format!("time part {clock:?}: {e}")))?;
    let offset = if offset_text.is_empty() {
        utc
    } else {
        offset(field, offset_text)?
    };
    let time = offset
        .from_local_datetime(&date.and_time(time_of_day))
        .single()
        .ok_or_else(|| fail("out of range"))?;
    Ok(Stamp {
        time,
        date_only: false,
    })
}

/// Reads a UTC offset: "Z", "UTC", "+02:00", "+0200", "+02" or "-05:30".
pub fn offset(field: &str, text: &str) -> Result<FixedOffset, ToolError> {
    let text = text.trim();
    let fail = || {
        ToolError::invalid_input(format!(
            "`{field}`: {text:?} is not a UTC offset; expected \"Z\", \"UTC\" or a signed \
             offset like \"+02:00\", \"-0530\" or \"+09\" (hours below 24, minutes below 60; \
             time-zone names like \"Europe/Paris\" are not supported)"
        ))
    };
    if ["z", "utc", "gmt"]
        .iter()
        .any(|z| text.eq_ignore_ascii_case(z))
    {
        return FixedOffset::east_opt(0).ok_or_else(fail);
    }
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(fail()),
    };
    if !digits.is_ascii() {
        return Err(fail());
    }
    let (hours, minutes) = match (digits.len(), digits.get(2..3)) {
        (2, _) => (digits, "00"),
        (4, _) => (&digits[..2], &digits[2..]),
        (5, Some(":")) => (&digits[..2], &digits[3..]),
        _ => return Err(fail()),
    };
    let number = |s: &str| -> Option<i32> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(h), Some(m)) = (number(hours), number(minutes)) else {
        return Err(fail());
    };
    if h > 23 || m > 59 {
        return Err(fail());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(text: &str) -> String {
        timestamp("t", text).unwrap().time.to_rfc3339()
    }

    #[test]
    fn reads_rfc3339_and_relaxed_forms() {
        assert_eq!(rfc("2024-01-31T09:30:00Z"), "2024-01-31T09:30:00+00:00");
        assert_eq!(
            rfc("2024-01-31t09:30:00.25+02:00"),
            "2024-01-31T09:30:00.250+02:00"
        );
        assert_eq!(rfc("2024-01-31 09:30-0530"), "2024-01-31T09:30:00-05:30");
        assert_eq!(rfc("  2024-01-31T09:30:05 "), "2024-01-31T09:30:05+00:00");
        assert_eq!(rfc("2024-01-31T09:30:00+09"), "2024-01-31T09:30:00+09:00");
        assert!(!timestamp("t", "2024-01-31T09:30:00Z").unwrap().date_only);
    }

    #[test]
    fn reads_a_date_as_midnight_utc() {
        let stamp = timestamp("t", "2024-02-29").unwrap();
        assert!(stamp.date_only);
        assert_eq!(stamp.time.to_rfc3339(), "2024-02-29T00:00:00+00:00");
    }

    #[test]
    fn errors_name_the_field_the_part_and_the_format() {
        for (text, needle) in [
            ("2023-02-29", "date part"),
            ("31/01/2024", "date part"),
            ("2024-01-31T25:00", "time part"),
            ("2024-01-31X10:00", "followed by T"),
            ("2024", "too short"),
            ("2024-01-31T10:00+2:00", "UTC offset"),
            ("2024-01-3é", "date part"),
            ("éééééééééé", "date part"),
        ] {
            let err = timestamp("start", text).unwrap_err();
            assert!(err.message().contains("`start`"), "{text}: {err}");
            assert!(err.message().contains(needle), "{text}: {err}");
        }
        let err = timestamp("start", "yesterday").unwrap_err();
        assert!(err.message().contains("2024-01-31T09:30:00Z"), "{err}");
    }

    #[test]
    fn reads_offsets() {
        assert_eq!(offset("o", "Z").unwrap().local_minus_utc(), 0);
        assert_eq!(offset("o", "utc").unwrap().local_minus_utc(), 0);
        assert_eq!(offset("o", "+02:00").unwrap().local_minus_utc(), 7200);
        assert_eq!(offset("o", "-0530").unwrap().local_minus_utc(), -19800);
        assert_eq!(offset("o", "+14").unwrap().local_minus_utc(), 50400);
        for bad in [
            "",
            "+",
            "+2",
            "+24:00",
            "+02:60",
            "02:00",
            "Europe/Paris",
            "+0a:00",
            "+02-00",
            "+aéb",
            "+é:00",
        ] {
            let err = offset("offset", bad).unwrap_err();
            assert!(err.message().contains("`offset`"), "{bad}: {err}");
        }
    }
}
