//! `log-forge`: writes the log line it is given, verbatim, at warn level.
//! The host must keep a guest's line one line: newlines and other control
//! characters in it must not start what reads as a log entry of the host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// The line to log.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Line {
    /// Logged as it is, control characters included.
    message: String,
}

/// Nothing but a confirmation.
#[derive(Serialize, JsonSchema)]
struct Logged {
    bytes: usize,
}

fn say(ctx: &Ctx, input: Line) -> Result<Logged, ToolError> {
    ctx.warn(&input.message);
    Ok(Logged {
        bytes: input.message.len(),
    })
}

fn tools() -> Vec<Tool> {
    vec![Tool::new(
        "say",
        "Log the message verbatim at warn level.",
        say,
    )]
}

toolhost_sdk::export!(tools);
