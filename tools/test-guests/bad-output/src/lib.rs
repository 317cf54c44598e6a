//! `bad-output`: a tool whose description is fine but whose output is not JSON.
//!
//! Not a shipped tool. `describe` returns one valid tool, `bad_output`, with
//! input schema `{"type":"object"}` and no output schema. `invoke("bad_output",
//! _)` returns `Ok("this is not json")`. The host must load the component and
//! classify the call as a failure of the tool (its output is not JSON), not
//! crash and not pass the text on as if it were a result.

mod bindings {
    #![allow(unsafe_code, unused_qualifications, reason = "generated bindings")]
    wit_bindgen::generate!({ world: "tool", path: "../../../wit" });
}

use bindings::toolhost::tool::types::Behavior;
use bindings::{Guest, ToolError, ToolSpec};

/// The text `invoke` returns instead of JSON.
pub const NOT_JSON: &str = "this is not json";

struct Component;

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "bad_output".to_string(),
            description: "Return text that is not JSON.".to_string(),
            input_schema: r#"{"type":"object"}"#.to_string(),
            output_schema: None,
            behavior: Behavior::empty(),
        }]
    }

    fn invoke(name: String, _input: String) -> Result<String, ToolError> {
        if name == "bad_output" {
            Ok(NOT_JSON.to_string())
        } else {
            Err(ToolError::InvalidInput(format!(
                "no tool named `{name}`; the only tool is `bad_output`"
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
