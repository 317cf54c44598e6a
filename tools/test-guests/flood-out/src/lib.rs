//! `flood-out`: a tool that tries to push more into the host than it takes.
//!
//! Not a shipped tool. `invoke` takes `{"bytes": N}`:
//! - `output` returns `Ok` with a JSON string exactly `N` bytes long;
//! - `error` returns `Err(failed(..))` whose text is `N` bytes of `e`.
//!
//! `describe` publishes those two tools, unless the policy grants a directory
//! `/cfg` holding a file `describe` with `TOOLS BYTES`: then it publishes
//! `TOOLS` tools whose descriptions are `BYTES` bytes each (a describe bomb).
//! The host must refuse a 64 MiB output before copying it, cap error text,
//! and refuse a component whose descriptions pass its caps at load.

mod bindings {
    #![allow(unsafe_code, unused_qualifications, reason = "generated bindings")]
    wit_bindgen::generate!({ world: "tool", path: "../../../wit" });
}

use bindings::toolhost::tool::types::Behavior;
use bindings::{Guest, ToolError, ToolSpec};

struct Component;

const SCHEMA: &str = r#"{"type":"object","properties":{"bytes":{"type":"integer","minimum":2}},"required":["bytes"]}"#;

fn spec(name: &str, description: String) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description,
        input_schema: SCHEMA.to_string(),
        output_schema: None,
        behavior: Behavior::empty(),
    }
}

/// `TOOLS BYTES` from `/cfg/describe`, if the policy granted it.
fn bomb() -> Option<(usize, usize)> {
    let text = std::fs::read_to_string("/cfg/describe").ok()?;
    let mut words = text.split_whitespace().map(|w| w.parse::<usize>().ok());
    Some((words.next()??, words.next()??))
}

/// The `bytes` field of the input; the host checked the schema.
fn bytes(input: &str) -> usize {
    input
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| !digits.is_empty())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(2)
}

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        match bomb() {
            Some((tools, bytes)) => (0..tools)
                .map(|i| spec(&format!("t{i}"), "d".repeat(bytes)))
                .collect(),
            None => vec![
                spec("output", "Return a JSON string of `bytes` bytes.".into()),
                spec("error", "Fail with an error text of `bytes` bytes.".into()),
            ],
        }
    }

    fn invoke(name: String, input: String) -> Result<String, ToolError> {
        let n = bytes(&input).max(2);
        match name.as_str() {
            "output" => {
                // One buffer of exactly `n` bytes: the guest spends no more.
                let mut bytes = vec![b'a'; n];
                bytes[0] = b'"';
                bytes[n - 1] = b'"';
                Ok(String::from_utf8(bytes).unwrap_or_default())
            }
            "error" => Err(ToolError::Failed("e".repeat(n))),
            _ => Err(ToolError::InvalidInput(format!("no tool named `{name}`"))),
        }
    }
}

#[allow(
    unsafe_code,
    reason = "the export macro defines the component's exported functions"
)]
const _: () = {
    bindings::export!(Component with_types_in bindings);
};
