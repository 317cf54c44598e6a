//! Property-based fuzzing of what the MCP faces read and write: incoming
//! JSON-RPC messages (as the server's transport parses them), tools as
//! advertised, call results and progress. Run with `cargo test --lib fuzz`.

use std::time::Duration;

use proptest::prelude::*;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, NumberOrString, RequestMetaObject,
};
use serde_json::{Value, json};

use super::convert;
use toolhost_fuzz::{check, json};
use toolhost_runtime::{CallRecord, GuestEvent, Outcome, ToolErrorKind};

fn object(depth: u32) -> impl Strategy<Value = serde_json::Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}|\\PC{1,4}", json(depth), 0..5)
        .prop_map(|map| map.into_iter().collect())
}

fn token() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ])
}

#[test]
fn fuzz_mcp_tool_calls_parse_with_their_name_arguments_and_progress_token() {
    let id = prop_oneof![
        any::<i64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from)
    ];
    check(
        "mcp tools/call",
        512,
        (id, "\\PC{0,16}", prop::option::of(object(3)), token()),
        |(id, name, arguments, token)| {
            let mut params = json!({"name": name});
            if let Some(arguments) = &arguments {
                params["arguments"] = Value::Object(arguments.clone());
            }
            if let Some(token) = &token {
                params["_meta"] = json!({"progressToken": token});
            }
            let text =
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
                    .to_string();
            let message: ClientJsonRpcMessage =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let JsonRpcMessage::Request(request) = message else {
                return Err(TestCaseError::fail("not a request"));
            };
            let ClientRequest::CallToolRequest(call) = request.request else {
                return Err(TestCaseError::fail("not tools/call"));
            };
            prop_assert_eq!(call.params.name.as_ref(), name.as_str());
            // What the server hands the executor.
            let input = Value::Object(call.params.arguments.clone().unwrap_or_default());
            prop_assert_eq!(input, Value::Object(arguments.unwrap_or_default()));
            // rmcp keeps `_meta` in the request's extensions; the server reads both.
            let parsed = call
                .params
                .meta
                .as_ref()
                .and_then(|meta| meta.get_progress_token())
                .or_else(|| {
                    call.extensions
                        .get::<RequestMetaObject>()
                        .and_then(RequestMetaObject::get_progress_token)
                })
                .map(|token| match token.0 {
                    NumberOrString::Number(n) => Value::from(n),
                    NumberOrString::String(s) => Value::from(&*s),
                });
            prop_assert_eq!(parsed, token);
            Ok(())
        },
    );
}

#[test]
fn fuzz_mcp_messages_of_any_shape_parse_or_are_refused() {
    let method = prop_oneof![
        Just("tools/call"),
        Just("tools/list"),
        Just("initialize"),
        Just("ping"),
        Just("notifications/cancelled"),
        Just("notifications/initialized"),
        Just("nope"),
    ];
    let message = (prop::option::of(json(1)), method, json(3)).prop_map(|(id, method, params)| {
        let mut message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        if let Some(id) = id {
            message["id"] = id;
        }
        message.to_string()
    });
    let text = prop_oneof![
        message,
        json(4).prop_map(|v| v.to_string()),
        any::<String>()
    ];
    check("mcp messages", 1024, text, |text| {
        if let Ok(message) = serde_json::from_str::<ClientJsonRpcMessage>(&text) {
            // What was accepted serializes again (the transport echoes ids).
            prop_assert!(serde_json::to_string(&message).is_ok());
        }
        Ok(())
    });
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let kind = prop_oneof![
        Just(ToolErrorKind::InvalidInput),
        Just(ToolErrorKind::Failed),
        Just(ToolErrorKind::Retryable),
        Just(ToolErrorKind::Denied),
    ];
    prop_oneof![
        json(3).prop_map(|output| Outcome::Ok { output }),
        (kind, any::<String>()).prop_map(|(error, message)| Outcome::ToolError { error, message }),
        any::<String>().prop_map(|message| Outcome::UnknownTool { message }),
    ]
}

#[test]
fn fuzz_mcp_results_carry_the_output_or_the_outcome() {
    check(
        "mcp results",
        512,
        (outcome(), "\\PC{0,8}"),
        |(outcome, tool)| {
            let record = CallRecord::new("c".into(), tool, outcome.clone(), Duration::ZERO);
            match (outcome, convert::result(record)) {
                (Outcome::Ok { output }, Ok(result)) => {
                    prop_assert_ne!(result.is_error, Some(true));
                    let value = serde_json::to_value(&result)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let text = value["content"][0]["text"].as_str().unwrap_or_default();
                    let parsed: Value = serde_json::from_str(text)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&parsed, &output);
                    prop_assert_eq!(result.structured_content, Some(output));
                }
                (Outcome::ToolError { message, .. }, Ok(result)) => {
                    prop_assert_eq!(result.is_error, Some(true));
                    prop_assert!(result.structured_content.is_none());
                    let value = serde_json::to_value(&result)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let text = value["content"][0]["text"].as_str().unwrap_or_default();
                    let parsed: Value = serde_json::from_str(text)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&parsed["outcome"], &json!("tool-error"));
                    prop_assert!(
                        parsed["message"].as_str().is_some_and(
                            |m| message.starts_with(m) || m.starts_with(message.as_str())
                        )
                    );
                }
                (Outcome::UnknownTool { message }, Err(error)) => {
                    prop_assert_eq!(error.message.as_ref(), message.as_str());
                }
                (outcome, result) => {
                    return Err(TestCaseError::fail(format!("{outcome:?} gave {result:?}")));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_mcp_progress_reports_what_the_guest_said() {
    let token = rmcp::model::ProgressToken(NumberOrString::Number(1));
    check(
        "mcp progress",
        512,
        (
            any::<u64>(),
            prop::option::of(any::<u64>()),
            prop::option::of("\\PC{0,12}"),
        ),
        |(done, total, message)| {
            let event = GuestEvent::Progress {
                done,
                total,
                message: message.clone(),
            };
            let param = convert::progress(&token, event)
                .ok_or_else(|| TestCaseError::fail("no notification"))?;
            #[expect(clippy::cast_precision_loss, reason = "what MCP's numbers hold")]
            let (done, total) = (done as f64, total.map(|t| t as f64));
            prop_assert_eq!(param.progress, done);
            prop_assert_eq!(param.total, total);
            prop_assert_eq!(&param.message, &message);
            prop_assert!(serde_json::to_value(&param).is_ok());
            Ok(())
        },
    );
}
