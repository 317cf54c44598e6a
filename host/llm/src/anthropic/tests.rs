//! Anthropic Messages fixtures, in the shape Anthropic sends them.

use serde_json::json;

use super::*;
use crate::ToolResult;
use crate::protocol::{begun, pieces, position, ready, replay};

/// A realistic stream: a text block, a tool_use block whose JSON is split
/// inside an escape, a tool without parameters, pings, usage.
const STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll slugify"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" that."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"text__slugify","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"text\": \"A \\"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"u00e9 \\\"B\\\"\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B","name":"clock__now","input":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

#[test]
fn a_realistic_stream_in_any_pieces() {
    for piece in [1, 6, 100, STREAM.len()] {
        let (events, reply) = replay(&mut AnthropicAssembler::default(), STREAM, piece).unwrap();
        assert_eq!(reply.message.text, "I'll slugify that.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.message.calls,
            [
                ToolCall::new(
                    "toolu_01A",
                    "text__slugify",
                    r#"{"text": "A \u00e9 \"B\""}"#
                ),
                ToolCall::new("toolu_01B", "clock__now", "{}"),
            ]
        );
        // Ready at its block's stop, before the next block starts.
        assert!(position(&events, ready("toolu_01A")) < position(&events, begun("toolu_01B")));
    }
}

fn event(value: Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap()
    )
}

#[test]
fn fragments_split_anywhere_and_a_cut_stream() {
    let arguments = r#"{"text": "x\\y \"z\" \ud83d\ude00", "n": -1.5e3}"#;
    for size in 1..7 {
        let mut text = event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t1", "name": "text__stats", "input": {}}}),
        );
        for piece in pieces(arguments, size) {
            text += &event(
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        let (events, reply) = replay(&mut AnthropicAssembler::default(), &text, 4).unwrap();
        // No block stop and no message_stop: truncated, announced at the end.
        assert_eq!(reply.stop, StopReason::Truncated);
        assert_eq!(
            reply.message.calls[0].arguments, arguments,
            "pieces of {size}"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, StreamEvent::CallReady(_)))
                .count(),
            1
        );
    }
}

#[test]
fn an_overloaded_error_in_the_stream() {
    let text = event(
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    assert_eq!(
        replay(&mut AnthropicAssembler::default(), &text, 3).unwrap_err(),
        StreamError::Provider("overloaded_error: Overloaded".into())
    );
}

#[test]
fn a_non_streaming_reply() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "text", "text": "Computing."},
            {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expression": "2^10"}}
        ],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}
    });
    let reply = parse_reply(&body).unwrap();
    assert_eq!(reply.message.text, "Computing.");
    assert_eq!(
        reply.message.calls,
        [ToolCall::new("toolu_1", "calc", r#"{"expression":"2^10"}"#)]
    );
    assert_eq!(reply.stop, StopReason::ToolUse);
    let error =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}});
    assert_eq!(
        parse_reply(&error).unwrap_err(),
        "invalid_request_error: bad"
    );
}

#[test]
fn results_go_first_in_one_user_message_with_is_error() {
    let messages = [
        Message::User("go".into()),
        Message::Assistant(AssistantMessage {
            text: String::new(),
            calls: vec![
                ToolCall::new("t1", "calc", r#"{"expression":"1"}"#),
                ToolCall::new("t2", "calc", "not json"),
            ],
        }),
        Message::ToolResults(vec![
            ToolResult {
                call_id: "t1".into(),
                content: "{\"value\":1}".into(),
                is_error: false,
            },
            ToolResult {
                call_id: "t2".into(),
                content: "the arguments are not JSON".into(),
                is_error: true,
            },
        ]),
    ];
    let request = ModelRequest {
        model: "m",
        system: Some("sys"),
        messages: &messages,
        tools: &[],
        max_tokens: 64,
    };
    let body = request_body(&request, true);
    assert_eq!(body["system"], "sys");
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1]["content"][0]["input"], json!({"expression": "1"}));
    // No input is invented for arguments that are not an object: the call
    // is left out, and its result, which no `tool_result` could answer,
    // follows the results as text.
    assert_eq!(sent[1]["content"].as_array().unwrap().len(), 1);
    let results = sent[2]["content"].as_array().unwrap();
    assert_eq!(sent[2]["role"], "user");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["type"], "tool_result");
    assert!(results[0].get("is_error").is_none());
    assert_eq!(results[1]["type"], "text");
    let note = results[1]["text"].as_str().unwrap();
    assert!(
        note.contains("t2") && note.contains("the arguments are not JSON"),
        "{note}"
    );
}
