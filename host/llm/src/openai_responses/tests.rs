//! Responses API fixtures, in the shape OpenAI sends them.

use serde_json::json;

use super::*;
use crate::ToolResult;
use crate::protocol::{begun, pieces, position, ready, replay};

/// A realistic stream: text, then two function calls whose argument deltas
/// are keyed by item id, with the reply's `call_id`s different from it.
const STREAM: &str = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Checking "}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"both."}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"fc_A","type":"function_call","status":"in_progress","arguments":"","call_id":"call_1","name":"calc"}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc_A","output_index":1,"delta":"{\"expression\":\"pi\\"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_A","output_index":1,"delta":"n\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":7,"item_id":"fc_A","output_index":1,"arguments":"{\"expression\":\"pi\\n\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":8,"output_index":1,"item":{"id":"fc_A","type":"function_call","status":"completed","arguments":"{\"expression\":\"pi\\n\"}","call_id":"call_1","name":"calc"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":9,"output_index":2,"item":{"id":"fc_B","type":"function_call","status":"in_progress","arguments":"","call_id":"call_2","name":"clock__now"}}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":10,"item_id":"fc_B","output_index":2,"arguments":""}

event: response.completed
data: {"type":"response.completed","sequence_number":11,"response":{"id":"resp_1","object":"response","status":"completed","error":null,"incomplete_details":null,"output":[]}}

"#;

#[test]
fn a_realistic_stream_in_any_pieces() {
    for piece in [1, 5, 80, STREAM.len()] {
        let (events, reply) = replay(&mut ResponsesAssembler::default(), STREAM, piece).unwrap();
        assert_eq!(reply.message.text, "Checking both.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.message.calls,
            [
                ToolCall::new("call_1", "calc", r#"{"expression":"pi\n"}"#),
                ToolCall::new("call_2", "clock__now", "{}"),
            ]
        );
        // Replies are keyed by call_id, and the first call is ready at its
        // own `done`, before the second call exists.
        assert!(position(&events, ready("call_1")) < position(&events, begun("call_2")));
        let ready_count = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::CallReady(_)))
            .count();
        assert_eq!(ready_count, 2, "each call is announced once");
    }
}

fn event(value: Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap()
    )
}

#[test]
fn deltas_split_mid_escape_and_interleaved_items() {
    let a = r#"{"text": "tab\there \"q\" \u263a"}"#;
    let b = r#"{"ms": 12}"#;
    for size in 1..6 {
        let mut text = String::new();
        for (item, call, name) in [
            ("fc_1", "call_a", "text__stats"),
            ("fc_2", "call_b", "sleep"),
        ] {
            text += &event(
                json!({"type": "response.output_item.added", "item": {"id": item, "type": "function_call", "call_id": call, "name": name, "arguments": ""}}),
            );
        }
        let (pa, pb) = (pieces(a, size), pieces(b, size));
        for n in 0..pa.len().max(pb.len()) {
            for (item, parts) in [("fc_1", &pa), ("fc_2", &pb)] {
                if let Some(delta) = parts.get(n) {
                    text += &event(
                        json!({"type": "response.function_call_arguments.delta", "item_id": item, "delta": delta}),
                    );
                }
            }
        }
        // No `done` events and a cut stream: the calls are announced at the end.
        let (_, reply) = replay(&mut ResponsesAssembler::default(), &text, 7).unwrap();
        assert_eq!(reply.stop, StopReason::Truncated);
        assert_eq!(
            reply.message.calls[0],
            ToolCall::new("call_a", "text__stats", a)
        );
        assert_eq!(reply.message.calls[1], ToolCall::new("call_b", "sleep", b));
    }
}

#[test]
fn failures_and_incomplete_replies() {
    let failed = event(
        json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error", "message": "boom"}}}),
    );
    assert_eq!(
        replay(&mut ResponsesAssembler::default(), &failed, 9).unwrap_err(),
        StreamError::Provider("boom".into())
    );
    let incomplete = event(
        json!({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}}),
    );
    let (_, reply) = replay(&mut ResponsesAssembler::default(), &incomplete, 9).unwrap();
    assert_eq!(reply.stop, StopReason::MaxTokens);
    let error =
        event(json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}));
    assert!(
        replay(&mut ResponsesAssembler::default(), &error, 9)
            .unwrap_err()
            .to_string()
            .contains("slow down")
    );
}

#[test]
fn a_non_streaming_reply() {
    let body = json!({
        "id": "resp_2", "object": "response", "status": "completed", "error": null,
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "On it.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "calc", "arguments": "{\"expression\":\"1\"}", "status": "completed"}
        ]
    });
    let reply = parse_reply(&body).unwrap();
    assert_eq!(reply.message.text, "On it.");
    assert_eq!(
        reply.message.calls,
        [ToolCall::new("call_9", "calc", r#"{"expression":"1"}"#)]
    );
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert!(parse_reply(&json!({"error": {"message": "bad key"}})).is_err());
}

#[test]
fn requests_send_calls_and_outputs_by_call_id() {
    let messages = [
        Message::User("hi".into()),
        Message::Assistant(AssistantMessage {
            text: "Let me see.".into(),
            calls: vec![ToolCall::new("call_1", "calc", r#"{"expression":"1"}"#)],
        }),
        Message::ToolResults(vec![ToolResult {
            call_id: "call_1".into(),
            content: "{\"value\":1}".into(),
            is_error: false,
        }]),
    ];
    let request = ModelRequest {
        model: "m",
        system: Some("sys"),
        messages: &messages,
        tools: &[],
        max_tokens: 10,
    };
    let body = request_body(&request, false);
    assert_eq!(body["instructions"], "sys");
    let input = body["input"].as_array().unwrap();
    assert_eq!(input.len(), 4);
    assert_eq!(input[2]["type"], "function_call");
    assert_eq!(input[2]["call_id"], "call_1");
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"value\":1}"})
    );
    assert!(body.get("stream").is_none());
}

/// The calls announced ready, in order.
fn announced(events: &[StreamEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::CallReady(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

fn function_call(item: Value, extra: Value) -> Value {
    let mut event = json!({"item": item});
    for (key, value) in extra.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

/// A call whose `call_id` arrives only with `output_item.done`, as some
/// compatible servers send it: announced once, under its final id.
#[test]
fn a_call_id_that_arrives_late_is_announced_once_under_it() {
    let arguments = r#"{"expression":"6*7"}"#;
    let added = json!({"id": "fc_1", "type": "function_call", "name": "calc", "arguments": ""});
    let done = json!({"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "calc", "arguments": arguments});
    let with_added = [
        event(function_call(
            added,
            json!({"type": "response.output_item.added"}),
        )),
        event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": arguments}),
        ),
        event(
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": arguments}),
        ),
        event(function_call(
            done,
            json!({"type": "response.output_item.done"}),
        )),
        event(json!({"type": "response.completed", "response": {"status": "completed"}})),
    ];
    // And the same without `output_item.added`: no nameless call is announced.
    let without_added = &with_added[1..];
    for (what, stream) in [
        ("with added", &with_added[..]),
        ("without added", without_added),
    ] {
        let (events, reply) =
            replay(&mut ResponsesAssembler::default(), &stream.concat(), 11).unwrap();
        assert_eq!(
            reply.message.calls,
            [ToolCall::new("call_1", "calc", arguments)],
            "{what}"
        );
        assert_eq!(announced(&events), reply.message.calls, "{what}");
    }
}

/// Once a call is announced ready it may already be running: a later event
/// that changes its id, name or arguments is an error, not a rewrite.
#[test]
fn a_change_to_an_announced_call_is_a_stream_error() {
    let arguments = r#"{"expression":"6*7"}"#;
    let item = json!({"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "calc", "arguments": ""});
    let announcing = [
        event(function_call(item.clone(), json!({"type": "response.output_item.added"}))),
        event(json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": arguments})),
    ]
    .concat();
    let changed = |key: &str, value: &str| {
        let mut item = item.clone();
        item["arguments"] = json!(arguments);
        item[key] = json!(value);
        event(function_call(
            item,
            json!({"type": "response.output_item.done"}),
        ))
    };
    let later = [
        ("id", changed("call_id", "call_2")),
        ("name", changed("name", "sleep")),
        ("arguments", changed("arguments", r#"{"expression":"1"}"#)),
        (
            "a delta",
            event(
                json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{}"}),
            ),
        ),
    ];
    let end = event(json!({"type": "response.completed", "response": {"status": "completed"}}));
    for (what, later) in later {
        let text = format!("{announcing}{later}{end}");
        let error = replay(&mut ResponsesAssembler::default(), &text, 9)
            .map(|(events, reply)| (announced(&events), reply.message.calls))
            .unwrap_err();
        assert!(error.to_string().contains("call_1"), "{what}: {error}");
    }
    // The same call confirmed by its `done` is no change.
    let same = changed("name", "calc");
    let (events, reply) = replay(
        &mut ResponsesAssembler::default(),
        &format!("{announcing}{same}{end}"),
        9,
    )
    .unwrap();
    assert_eq!(announced(&events), reply.message.calls);
}
