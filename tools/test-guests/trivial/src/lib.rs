//! The smallest useful tool: echoes its input. The benchmarks call it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// Anything to echo.
#[derive(Deserialize, Serialize, JsonSchema)]
struct Echo {
    /// Echoed back unchanged.
    #[serde(default)]
    value: serde_json::Value,
}

fn echo(_: &Ctx, input: Echo) -> Result<Echo, ToolError> {
    Ok(input)
}

fn tools() -> Vec<Tool> {
    vec![Tool::new("echo", "Return the input unchanged.", echo).pure()]
}

toolhost_sdk::export!(tools);
