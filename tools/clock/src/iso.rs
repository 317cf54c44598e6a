//! Reading ISO 8601 durations such as "P1Y2M10DT2H30M".

use toolhost_sdk::ToolError;

use crate::span::{NANOS_PER_HOUR, NANOS_PER_MINUTE, NANOS_PER_SECOND, Span, too_big};

/// The ISO 8601 duration form, for error messages.
pub const ISO_FORM: &str = "an ISO 8601 duration like \"P1Y2M10DT2H30M\", \"P2W\", \"PT90M\", \
    \"PT1.5S\" or \"-P1D\" (units Y M W D, then T and H M S; fractions only on H, M and S)";

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
}
