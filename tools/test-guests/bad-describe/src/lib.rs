//! `bad-describe`: a component whose `describe` breaks every rule at once.
//!
//! Not a shipped tool. `describe` returns, in this order:
//! 1. `ok`: a valid tool (so a host that drops only the bad entries is caught);
//! 2. `bad name!`: a name outside `A-Z a-z 0-9 _ -`;
//! 3. `dup` and 4. `dup` again: a duplicate name;
//! 5. `bad_schema`: an input schema that is not valid JSON.
//!
//! The host must refuse the whole component at load with a clear message
//! naming the problem it found (it publishes none of the tools, not even
//! `ok`), and stay healthy. `invoke` answers `{}` for `ok` and an error for
//! anything else, but must never be reached.

mod bindings {
    #![allow(unsafe_code, unused_qualifications, reason = "generated bindings")]
    wit_bindgen::generate!({ world: "tool", path: "../../../wit" });
}

use bindings::toolhost::tool::types::Behavior;
use bindings::{Guest, ToolError, ToolSpec};

const OBJECT: &str = r#"{"type":"object"}"#;

struct Component;

fn spec(name: &str, input_schema: &str) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: format!("Test tool `{name}`."),
        input_schema: input_schema.to_string(),
        output_schema: None,
        behavior: Behavior::empty(),
    }
}

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        vec![
            spec("ok", OBJECT),
            spec("bad name!", OBJECT),
            spec("dup", OBJECT),
            spec("dup", OBJECT),
            spec("bad_schema", r#"{"type": "object", "properties": "#),
        ]
    }

    fn invoke(name: String, _input: String) -> Result<String, ToolError> {
        if name == "ok" {
            Ok("{}".to_string())
        } else {
            Err(ToolError::Failed(format!(
                "bad-describe should never have been loaded (called `{name}`)"
            )))
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
