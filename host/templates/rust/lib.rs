//! The `{{name}}` tool component. Build it with
//! `cargo build --release --target wasm32-wasip2`; test it natively with `cargo test`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// What to greet.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Greet {
    /// Who to greet.
    name: String,
    /// How many times, 1 to 10 (default 1).
    #[serde(default)]
    times: Option<u8>,
}

/// The greeting.
#[derive(Serialize, JsonSchema)]
struct Greeting {
    text: String,
}

fn greet(ctx: &Ctx, input: Greet) -> Result<Greeting, ToolError> {
    let times = input.times.unwrap_or(1);
    if !(1..=10).contains(&times) {
        return Err(ToolError::invalid_input("times must be from 1 to 10"));
    }
    ctx.info(&format!("greeting {}", input.name));
    let text = vec![format!("Hello, {}!", input.name); times.into()].join(" ");
    Ok(Greeting { text })
}

fn tools() -> Vec<Tool> {
    vec![Tool::new("{{name}}", "Greet someone by name.", greet).pure()]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::tools;

    #[test]
    fn greets() {
        let out = tools()[0].call_json(r#"{"name": "Ada", "times": 2}"#).unwrap();
        assert_eq!(out, r#"{"text":"Hello, Ada! Hello, Ada!"}"#);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(tools()[0].call_json(r#"{"name": "Ada", "times": 0}"#).is_err());
        assert!(tools()[0].call_json(r#"{"who": "Ada"}"#).is_err());
    }
}
