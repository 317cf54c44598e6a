//! `now`: the current time from the WASI wall clock.

use chrono::{DateTime, FixedOffset, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, ToolError};

use crate::info::TimeInfo;
use crate::parse;

/// Input of `now`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NowInput {
    /// Show the time at this UTC offset: "Z", "UTC", "+02:00", "-0530" or
    /// "+09". Default UTC. Time-zone names are not supported.
    #[serde(default)]
    offset: Option<String>,
}

/// The current time.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NowOutput {
    #[serde(flatten)]
    info: TimeInfo,
    /// Set when the clock cannot be trusted: the host gives a tool the real
    /// time only if its policy grants the wall clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

pub fn now(ctx: &Ctx, input: NowInput) -> Result<NowOutput, ToolError> {
    let reading = Utc::now();
    let offset = match input.offset.as_deref() {
        Some(text) => parse::offset("offset", text)?,
        None => FixedOffset::east_opt(0).ok_or_else(|| ToolError::failed("no UTC offset"))?,
    };
    let out = report(reading, offset)?;
    if out.warning.is_some() {
        ctx.warn("the wall clock reads the Unix epoch; the policy probably denies wall_clock");
    }
    Ok(out)
}

/// Describes what the clock read, warning when it read the Unix epoch.
fn report(reading: DateTime<Utc>, offset: FixedOffset) -> Result<NowOutput, ToolError> {
    let warning = (reading.timestamp_millis() == 0).then(|| {
        String::from(
            "the wall clock reads exactly the Unix epoch (1970-01-01T00:00:00Z), which means \
             the host did not give this tool the real time (its policy does not grant \
             wall_clock); this is not the current time",
        )
    });
    let info = TimeInfo::of(&reading.with_timezone(&offset))?;
    Ok(NowOutput { info, warning })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_clock_natively() {
        let tool = crate::tools()
            .into_iter()
            .find(|t| t.name() == "now")
            .unwrap();
        let out: serde_json::Value =
            serde_json::from_str(&tool.call_json(r#"{"offset": "+02:00"}"#).unwrap()).unwrap();
        assert!(
            out["unix_seconds"].as_i64().unwrap() > 1_700_000_000,
            "{out}"
        );
        assert_eq!(out["offset"], "+02:00");
        assert!(
            out["rfc3339"].as_str().unwrap().ends_with("+02:00"),
            "{out}"
        );
        assert!(out.get("warning").is_none());
    }

    #[test]
    fn the_epoch_comes_with_a_warning() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let out = report(DateTime::UNIX_EPOCH, utc).unwrap();
        assert_eq!(out.info.rfc3339, "1970-01-01T00:00:00Z");
        assert!(out.warning.unwrap().contains("wall_clock"));
        let later = DateTime::from_timestamp(1_706_000_000, 0).unwrap();
        assert!(report(later, utc).unwrap().warning.is_none());
    }

    #[test]
    fn bad_offset_is_invalid_input() {
        let tool = crate::tools()
            .into_iter()
            .find(|t| t.name() == "now")
            .unwrap();
        let err = tool.call_json(r#"{"offset": "CET"}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)));
        assert!(err.message().contains("`offset`"), "{err}");
    }
}
