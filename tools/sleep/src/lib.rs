//! `sleep`: wait a number of milliseconds on the WASI monotonic clock.
//!
//! It does no work while it waits, so it shows how well the host overlaps
//! calls: N sleeps of L ms should take about L, not N×L. It waits in slices
//! of at most 100 ms and reports progress (milliseconds waited of those asked
//! for) after each; it never checks for cancellation itself, so a cancelled
//! call shows the host stopping it.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// The longest wait one call may ask for.
const MAX_MS: u64 = 600_000;
/// The longest wait between two progress reports.
const SLICE_MS: u64 = 100;

/// How long to wait.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Sleep {
    /// Milliseconds to wait, at most 600000.
    ms: u64,
}

/// What happened.
#[derive(Serialize, JsonSchema)]
struct Slept {
    /// Milliseconds asked for.
    requested_ms: u64,
    /// Milliseconds actually waited, by the guest's own clock.
    slept_ms: f64,
}

fn sleep(ctx: &Ctx, input: Sleep) -> Result<Slept, ToolError> {
    if input.ms > MAX_MS {
        return Err(ToolError::invalid_input(format!(
            "ms must be at most {MAX_MS}, got {}",
            input.ms
        )));
    }
    let start = Instant::now();
    let mut waited = 0;
    while waited < input.ms {
        let slice = SLICE_MS.min(input.ms - waited);
        std::thread::sleep(Duration::from_millis(slice));
        waited += slice;
        ctx.progress(waited, Some(input.ms), None);
    }
    let slept = start.elapsed();
    ctx.debug(&format!("slept {slept:?}"));
    Ok(Slept {
        requested_ms: input.ms,
        slept_ms: slept.as_secs_f64() * 1e3,
    })
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "sleep",
            "Wait the given number of milliseconds, then report how long it waited.",
            sleep,
        )
        .read_only()
        .idempotent(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_briefly() {
        let out = tools()[0].call_json(r#"{"ms": 1}"#).unwrap();
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["requested_ms"], 1);
        assert!(out["slept_ms"].as_f64().unwrap() >= 1.0);
    }

    #[test]
    fn refuses_too_long() {
        let err = tools()[0].call_json(r#"{"ms": 600001}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)));
    }
}
