//! `misbehave`: one component whose tools each do one kind of harm on purpose.
//!
//! Not a shipped tool. The host's tests load it to prove the sandbox holds: every
//! call below must end as a clean, classified result of that call, never a hang,
//! a host crash or harm to other calls. No tool declares any behaviour (not even
//! `pure`), so the host must not cache or speculate them.
//!
//! | tool           | input                                            | the host should                                             |
//! |----------------|--------------------------------------------------|-------------------------------------------------------------|
//! | `spin`         | `{}`                                             | stop it by deadline (epoch) or fuel: a timeout/fuel failure |
//! | `busy`         | `{"iterations": u64}`                            | return the same checksum and burn the same fuel every time  |
//! | `alloc`        | `{"mb": u64, "mode": "vec"\|"try"\|"grow"}`      | hold the memory limit: trap (`vec`), `failed` (`try`), report (`grow`) |
//! | `recurse`      | `{"depth": u64}`                                 | trap on stack exhaustion when deep; answer when shallow     |
//! | `big_output`   | `{"bytes": u64}`                                 | refuse outputs above its size cap                           |
//! | `big_error`    | `{"bytes": u64}`                                 | cut the error's message to the output cap                   |
//! | `many_values`  | `{"count": u64}`                                 | refuse a list too large for the call's memory once parsed   |
//! | `panic`        | `{}`                                             | report a trap (the panic aborts); the message is on stderr  |
//! | `trap`         | `{}`                                             | report a trap (`unreachable`)                               |
//! | `flood_host`   | `{"logs"?: u64, "progress"?: u64}`               | cap log lines/bytes and progress reports                    |
//! | `stdout_flood` | `{"bytes": u64}`                                 | cap or discard the guest's stdout and stderr                |
//! | `wait_cancel`  | `{}`                                             | after cancelling, get `{"saw_cancel": true, ...}` back      |
//!
//! Exact output shapes are on each tool's output type.

mod compute;
mod crash;
mod host;
mod memory;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Tool, ToolError};

/// A tool that takes no arguments.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoInput {}

/// The output of a tool that never returns.
#[derive(Serialize, JsonSchema)]
struct Never {}

/// Turn a byte count from the input into a `usize`, or say why it cannot be one.
fn to_usize(field: &str, value: u64) -> Result<usize, ToolError> {
    usize::try_from(value).map_err(|_| {
        ToolError::invalid_input(format!(
            "{field} = {value} does not fit this guest's {}-bit address space",
            usize::BITS
        ))
    })
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new("spin", "Loop forever doing nothing useful.", compute::spin),
        Tool::new(
            "busy",
            "Run a deterministic integer loop `iterations` times and return its checksum.",
            compute::busy,
        ),
        Tool::new(
            "alloc",
            "Allocate and touch `mb` MiB: `vec` aborts on failure, `try` returns an error, \
             `grow` adds 1 MiB chunks until refused or `mb` is reached.",
            memory::alloc,
        ),
        Tool::new(
            "recurse",
            "Recurse `depth` levels deep without tail calls.",
            compute::recurse,
        ),
        Tool::new(
            "big_output",
            "Return an output whose `data` string is `bytes` bytes long.",
            memory::big_output,
        ),
        Tool::new(
            "big_error",
            "Fail with an error whose message is `bytes` bytes long.",
            memory::big_error,
        ),
        Tool::new(
            "many_values",
            "Return a list of `count` zeros: two bytes of JSON each.",
            memory::many_values,
        ),
        Tool::new(
            "panic",
            "Panic with a recognisable message, after `noise_bytes` bytes of stderr.",
            crash::panic,
        ),
        Tool::new(
            "trap",
            "Execute the wasm `unreachable` instruction.",
            crash::trap,
        ),
        Tool::new(
            "flood_host",
            "Call the host's log and progress functions many times.",
            host::flood_host,
        ),
        Tool::new(
            "stdout_flood",
            "Write `bytes` bytes to stdout and to stderr, then wait `then_ms` ms.",
            host::stdout_flood,
        ),
        Tool::new(
            "retryable",
            "Fail with a retryable error, every time.",
            crash::retryable,
        ),
        Tool::new(
            "wait_cancel",
            "Wait, checking every millisecond, until the host cancels the call.",
            host::wait_cancel,
        ),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_schemas_are_objects() {
        let tools = tools();
        let mut names: Vec<&str> = tools.iter().map(Tool::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tools.len());
        for tool in &tools {
            let schema: serde_json::Value = serde_json::from_str(&tool.input_schema()).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name());
        }
    }

    #[test]
    fn no_input_refuses_unknown_fields() {
        let tool = tools().into_iter().find(|t| t.name() == "panic").unwrap();
        let err = tool.call_json(r#"{"x": 1}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }
}
