//! `schema-bomb`: schemas that would make the host, not the guest, do the work.
//!
//! Not a shipped tool. `describe` returns five tools:
//! - `bomb`: an input schema of a few kB, 22 levels of `anyOf` whose two
//!   branches both `$ref` the next level: validating one value would take
//!   4 million checks. The host must refuse this tool at load.
//! - `regex`: a `pattern` with look-ahead, which only a backtracking engine
//!   runs (catastrophically, on `aaaa…`). The host must refuse it at load.
//! - `heavy`: the same sharing with `allOf` (no branch is skipped) and 12
//!   levels, applied to every item of an array: the costliest kind of schema
//!   the host still accepts.
//! - `bad_output`: declares an output schema and returns output that breaks it.
//! - `ordinary`: a plain tool, which must still load beside the others.

mod bindings {
    #![allow(unsafe_code, unused_qualifications, reason = "generated bindings")]
    wit_bindgen::generate!({ world: "tool", path: "../../../wit" });
}

use bindings::toolhost::tool::types::Behavior;
use bindings::{Guest, ToolError, ToolSpec};

/// `levels` of `combinator`, each branch a `$ref` to the next level, ending in `leaf`.
fn shared_refs(combinator: &str, levels: usize, leaf: &str) -> String {
    let mut defs = Vec::new();
    for level in 0..levels {
        let next = format!("#/$defs/l{}", level + 1);
        defs.push(format!(
            r#""l{level}":{{"{combinator}":[{{"$ref":"{next}"}},{{"$ref":"{next}","minLength":1}}]}}"#
        ));
    }
    defs.push(format!(r#""l{levels}":{leaf}"#));
    defs.join(",")
}

fn bomb() -> String {
    format!(
        r##"{{"type":"object","properties":{{"x":{{"$ref":"#/$defs/l0"}}}},"$defs":{{{}}}}}"##,
        shared_refs("anyOf", 22, r#"{"type":"integer"}"#)
    )
}

fn heavy() -> String {
    format!(
        r##"{{"type":"object","properties":{{"xs":{{"type":"array","items":{{"$ref":"#/$defs/l0"}}}}}},"$defs":{{{}}}}}"##,
        shared_refs("allOf", 12, r#"{"type":"integer"}"#)
    )
}

fn spec(name: &str, input: String, output: Option<&str>) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: format!("Schema test tool `{name}`."),
        input_schema: input,
        output_schema: output.map(str::to_string),
        behavior: Behavior::empty(),
    }
}

struct Component;

impl Guest for Component {
    fn describe() -> Vec<ToolSpec> {
        vec![
            spec("bomb", bomb(), None),
            spec(
                "regex",
                r#"{"type":"object","properties":{"s":{"type":"string","pattern":"^(?=(a+)+b)"}}}"#
                    .to_string(),
                None,
            ),
            spec("heavy", heavy(), None),
            spec(
                "bad_output",
                r#"{"type":"object"}"#.to_string(),
                Some(r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#),
            ),
            spec(
                "ordinary",
                r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#
                    .to_string(),
                Some(r#"{"type":"object","properties":{"text":{"type":"string"}}}"#),
            ),
        ]
    }

    fn invoke(name: String, input: String) -> Result<String, ToolError> {
        match name.as_str() {
            "bad_output" => Ok(r#"{"n":"not a number"}"#.to_string()),
            "ordinary" => Ok(input),
            _ => Ok("{}".to_string()),
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
