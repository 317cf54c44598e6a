//! `clock`: the current time, and date arithmetic.
//!
//! `now` reads the WASI wall clock, which the host makes real only when the
//! tool's policy grants `wall_clock` (see `clock.toml`); otherwise it reads
//! the Unix epoch and `now` says so. The other tools are pure.
//!
//! Only fixed UTC offsets are supported, not time-zone names, so a day is
//! always 24 hours.

mod add;
mod diff;
mod format;
mod info;
mod iso;
mod now;
mod parse;
mod span;

use toolhost_sdk::Tool;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "now",
            "The current date and time from the wall clock, at UTC or a given UTC offset: \
             RFC 3339, Unix seconds and milliseconds, weekday and ISO week.",
            now::now,
        )
        .read_only(),
        Tool::new(
            "add",
            "Add (or subtract) a duration to a timestamp or date: years, months, weeks, days, \
             hours, minutes, seconds, or an ISO 8601 duration like P1DT2H. Month steps clamp \
             to the month's end (Jan 31 + 1 month = Feb 28/29).",
            add::add,
        )
        .pure(),
        Tool::new(
            "diff",
            "The time between two timestamps or dates: seconds, a days/hours/minutes \
             breakdown, a years/months/days calendar breakdown and a phrase in words.",
            diff::diff,
        )
        .pure(),
        Tool::new(
            "format",
            "Convert a timestamp, date or Unix time to another UTC offset and format it with a \
             strftime pattern (e.g. \"%A %-d %B %Y\"); also gives RFC 3339, weekday and ISO week.",
            format::format,
        )
        .pure(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_field_is_described() {
        for tool in tools() {
            let schema: serde_json::Value = serde_json::from_str(&tool.input_schema()).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name());
            for (field, spec) in schema["properties"].as_object().unwrap() {
                assert!(spec.get("description").is_some(), "{}.{field}", tool.name());
            }
        }
    }

    #[test]
    fn the_policy_grants_the_wall_clock() {
        let policy = include_str!("../clock.toml");
        assert!(
            policy.contains("[capabilities]\nwall_clock = true"),
            "{policy}"
        );
    }
}
