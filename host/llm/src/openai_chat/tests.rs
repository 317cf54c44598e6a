//! Chat Completions fixtures, in the shape OpenAI and compatible servers send.

use serde_json::json;

use super::*;
use crate::protocol::{begun, pieces, position, ready, replay};

/// A realistic stream: a sentence, then two parallel calls, OpenAI style.
const TWO_CALLS: &str = r#"data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"content":"Let me "},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"content":"check."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_Qx1","type":"function","function":{"name":"calc","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ex"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"pression\": \"2 "}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"+ 3\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Rz2","type":"function","function":{"name":"text__slugify","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"text\": \"Say \\\"hi\\"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4.1-mini-2025-04-14","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}}

data: [DONE]

"#;

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {body}\n\n")
}

/// A stream of `calls` (id, name, arguments), each streamed in pieces of
/// `size` characters; `index_of` gives the index each call is sent under.
fn stream(calls: &[(&str, &str, &str)], size: usize, index_of: impl Fn(usize) -> usize) -> String {
    let mut text = String::new();
    for (n, (id, name, arguments)) in calls.iter().enumerate() {
        let index = index_of(n);
        text += &chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        );
        for piece in pieces(arguments, size) {
            text += &chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            );
        }
    }
    text += &chunk(json!({}), Some("tool_calls"));
    text + "data: [DONE]\n\n"
}

#[test]
fn a_realistic_stream_in_any_pieces() {
    for piece in [1, 7, 64, TWO_CALLS.len()] {
        let (events, reply) = replay(&mut ChatAssembler::default(), TWO_CALLS, piece).unwrap();
        assert_eq!(reply.message.text, "Let me check.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.message.calls,
            [
                ToolCall::new("call_Qx1", "calc", r#"{"expression": "2 + 3"}"#),
                ToolCall::new("call_Rz2", "text__slugify", r#"{"text": "Say \"hi\""}"#),
            ]
        );
        // The first call is ready the moment the second begins.
        assert!(position(&events, ready("call_Qx1")) < position(&events, begun("call_Rz2")));
    }
}

#[test]
fn arguments_split_mid_escape_at_every_position() {
    let arguments = r#"{"text": "a \"quoted\" \\ path\nline \u00e9 ünï", "n": [1, 2]}"#;
    for size in 1..8 {
        let text = stream(&[("call_1", "text__stats", arguments)], size, |n| n);
        let (_, reply) = replay(&mut ChatAssembler::default(), &text, 5).unwrap();
        assert_eq!(
            reply.message.calls[0].arguments, arguments,
            "pieces of {size}"
        );
    }
}

#[test]
fn servers_that_reuse_index_zero_are_keyed_by_id() {
    let calls = [
        ("call_a", "calc", r#"{"expression": "1"}"#),
        ("call_b", "calc", r#"{"expression": "2"}"#),
        ("call_c", "sleep", r#"{"ms": 3}"#),
    ];
    let text = stream(&calls, 4, |_| 0);
    let (events, reply) = replay(&mut ChatAssembler::default(), &text, 9).unwrap();
    let got: Vec<_> = reply
        .message
        .calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(got, calls);
    assert!(position(&events, ready("call_a")) < position(&events, begun("call_b")));
    assert!(position(&events, ready("call_b")) < position(&events, begun("call_c")));
}

#[test]
fn the_last_call_is_ready_at_its_own_end_not_the_replys() {
    // Nothing marks a call's end in Chat Completions; a pause after the
    // closing brace (the model thinking) must not hold the call back.
    let text = stream(&[("call_l", "calc", r#"{"expression": "1"}"#)], 4, |n| n);
    let mut assembler = ChatAssembler::default();
    let mut out = Vec::new();
    // Every frame but the one that finishes the choice.
    for frame in text
        .split("\n\n")
        .filter(|f| !f.contains("finish_reason\":\"tool_calls"))
    {
        let Some(data) = frame.strip_prefix("data: ") else {
            continue;
        };
        let event = SseEvent {
            event: None,
            data: data.to_string(),
        };
        assembler.feed(&event, &mut out).unwrap();
    }
    assert_eq!(
        out.iter().filter(|e| ready("call_l")(e)).count(),
        1,
        "{out:?}"
    );
}

#[test]
fn interleaved_calls_are_ready_only_when_complete() {
    let mut text = String::new();
    for (index, id, name) in [(0, "call_x", "calc"), (1, "call_y", "sleep")] {
        text += &chunk(
            json!({"tool_calls": [{"index": index, "id": id, "function": {"name": name, "arguments": ""}}]}),
            None,
        );
    }
    for (index, piece) in [
        (0, r#"{"expres"#),
        (1, r#"{"ms":"#),
        (0, r#"sion": "4"}"#),
        (1, r#" 5}"#),
    ] {
        text += &chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
            None,
        );
    }
    text += &chunk(json!({}), Some("tool_calls"));
    let (events, reply) = replay(&mut ChatAssembler::default(), &text, 11).unwrap();
    assert_eq!(reply.message.calls[0].arguments, r#"{"expression": "4"}"#);
    assert_eq!(reply.message.calls[1].arguments, r#"{"ms": 5}"#);
    // call_x was incomplete when call_y began; it is ready after its last piece.
    let ready_x = position(&events, ready("call_x"));
    assert!(ready_x > position(&events, begun("call_y")));
    assert!(ready_x < position(&events, ready("call_y")));
    // No [DONE], but finish_reason came: the reply is complete.
    assert_eq!(reply.stop, StopReason::ToolUse);
}

#[test]
fn empty_arguments_become_an_empty_object() {
    let text = stream(&[("call_e", "clock__now", "")], 3, |n| n);
    let (events, reply) = replay(&mut ChatAssembler::default(), &text, 100).unwrap();
    assert_eq!(reply.message.calls[0].arguments, "{}");
    assert!(events.contains(&StreamEvent::CallReady(ToolCall::new(
        "call_e",
        "clock__now",
        "{}"
    ))));
}

#[test]
fn a_truncated_stream_is_marked_and_its_call_announced() {
    let text = stream(
        &[("call_t", "calc", r#"{"expression": "1 + 1"}"#)],
        4,
        |n| n,
    );
    let cut = &text[..text.find(r#"1 + "#).unwrap() - 10];
    let cut = &cut[..cut.rfind("\n\n").unwrap() + 2];
    let (events, reply) = replay(&mut ChatAssembler::default(), cut, 13).unwrap();
    assert_eq!(reply.stop, StopReason::Truncated);
    assert!(
        matches!(events.last(), Some(StreamEvent::CallReady(call)) if call.arguments.starts_with("{\"expre"))
    );
}

#[test]
fn an_error_in_the_stream_is_reported() {
    let text = "data: {\"error\": {\"message\": \"The server had an error\", \"type\": \"server_error\"}}\n\n";
    let error = replay(&mut ChatAssembler::default(), text, 10).unwrap_err();
    assert_eq!(
        error,
        StreamError::Provider("server_error: The server had an error".into())
    );
}

/// Error events in the shapes compatible servers send, each followed by a
/// bare `[DONE]`: each must end as the error, never as an empty answer.
#[test]
fn an_error_without_a_message_then_done_is_still_an_error() {
    let shapes = [
        // OpenRouter-style, with a code and no message.
        "data: {\"error\": {\"code\": 502}}\n\n",
        // vLLM-style error object, not wrapped in `error`.
        "data: {\"object\": \"error\", \"message\": \"model overloaded\", \"code\": 503}\n\n",
        // An `event: error` whose data is JSON of another shape.
        "event: error\ndata: {\"message\": \"upstream timed out\"}\n\n",
        // An `event: error` whose data is not JSON at all.
        "event: error\ndata: Internal Server Error\n\n",
    ];
    for shape in shapes {
        let text = format!("{shape}data: [DONE]\n\n");
        let outcome = replay(&mut ChatAssembler::default(), &text, 7);
        let Err(StreamError::Provider(message)) = outcome else {
            panic!("{shape:?} ended as {outcome:?}");
        };
        assert!(!message.trim().is_empty(), "{shape:?}");
    }
    let error = replay(
        &mut ChatAssembler::default(),
        "data: {\"object\": \"error\", \"message\": \"model overloaded\"}\n\n",
        64,
    )
    .unwrap_err();
    assert_eq!(error, StreamError::Provider("model overloaded".into()));
}

#[test]
fn a_non_streaming_reply() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\":\"6*7\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "clock__now", "arguments": ""}}
            ]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}
    });
    let reply = parse_reply(&body).unwrap();
    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(reply.message.text, "");
    assert_eq!(reply.message.calls[0].arguments, r#"{"expression":"6*7"}"#);
    assert_eq!(reply.message.calls[1].arguments, "{}");
    let text = json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "42."}}]});
    let reply = parse_reply(&text).unwrap();
    assert_eq!(
        (reply.message.text.as_str(), reply.stop),
        ("42.", StopReason::EndTurn)
    );
    assert!(parse_reply(&json!({"choices": []})).is_err());
}

#[test]
fn requests_carry_calls_and_one_tool_message_per_result() {
    let messages = [
        Message::User("hi".into()),
        Message::Assistant(AssistantMessage {
            text: String::new(),
            calls: vec![
                ToolCall::new("c1", "calc", "{}"),
                ToolCall::new("c2", "sleep", "{}"),
            ],
        }),
        Message::ToolResults(vec![
            crate::ToolResult {
                call_id: "c1".into(),
                content: "{\"value\":1}".into(),
                is_error: false,
            },
            crate::ToolResult {
                call_id: "c2".into(),
                content: "error".into(),
                is_error: true,
            },
        ]),
    ];
    let request = ModelRequest {
        model: "m",
        system: Some("be brief"),
        messages: &messages,
        tools: &[],
        max_tokens: 100,
    };
    let body = request_body(&request, true);
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0]["role"], "system");
    assert_eq!(sent[2]["tool_calls"][1]["id"], "c2");
    assert_eq!(sent[2]["content"], Value::Null);
    assert_eq!(
        sent[3],
        json!({"role": "tool", "tool_call_id": "c1", "content": "{\"value\":1}"})
    );
    assert_eq!(sent[4]["tool_call_id"], "c2");
    assert_eq!(body["stream"], true);
    assert!(body.get("tools").is_none());
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

fn call_delta(index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) -> String {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    chunk(json!({"tool_calls": [call]}), None)
}

/// A name that arrives after complete arguments: the call waits for it, and
/// is announced once, as the reply holds it.
#[test]
fn a_call_is_not_announced_before_its_name() {
    let text = [
        call_delta(0, Some("call_1"), None, r#"{"a":1}"#),
        call_delta(0, None, Some("calc"), ""),
        chunk(json!({}), Some("tool_calls")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let (events, reply) = replay(&mut ChatAssembler::default(), &text, 7).unwrap();
    assert_eq!(
        reply.message.calls,
        [ToolCall::new("call_1", "calc", r#"{"a":1}"#)]
    );
    assert_eq!(announced(&events), reply.message.calls);
}

/// Once a call is announced it may be running: a later delta that changes
/// its name or adds to its arguments is a stream error, not a change.
#[test]
fn a_delta_that_changes_an_announced_call_is_a_stream_error() {
    let announcing = call_delta(0, Some("call_1"), Some("calc"), r#"{"a":[1]}"#);
    let later = [
        ("more arguments", call_delta(0, None, None, r#"{"b":2}"#)),
        ("another name", call_delta(0, None, Some("sleep"), "")),
        // A server that sends two calls under index 0 without ids.
        (
            "a second call on index 0",
            call_delta(0, None, Some("sleep"), r#"{"ms":1}"#),
        ),
    ];
    let end = chunk(json!({}), Some("tool_calls")) + "data: [DONE]\n\n";
    for (what, later) in later {
        let text = format!("{announcing}{later}{end}");
        let error = replay(&mut ChatAssembler::default(), &text, 9)
            .map(|(events, reply)| (announced(&events), reply.message.calls))
            .unwrap_err();
        assert!(
            matches!(&error, StreamError::CallChanged { id, .. } if id == "call_1"),
            "{what}: {error}"
        );
    }
    // The same name again, and whitespace after the arguments, change nothing.
    let same = call_delta(0, None, Some("calc"), " \n");
    let (events, reply) = replay(
        &mut ChatAssembler::default(),
        &format!("{announcing}{same}{end}"),
        9,
    )
    .unwrap();
    assert_eq!(
        reply.message.calls,
        [ToolCall::new("call_1", "calc", r#"{"a":[1]}"#)]
    );
    assert_eq!(announced(&events), reply.message.calls);
}

/// Arguments that are a valid JSON prefix ending in `}` after every piece
/// (`{"a":[{}` then `,{}` again and again): each piece must not reparse the
/// whole text, or the work grows with the square of the arguments.
#[test]
fn arguments_ending_in_a_brace_at_every_piece_are_not_reparsed_each_time() {
    const PIECES: usize = 30_000;
    let mut text = call_delta(0, Some("call_1"), Some("calc"), r#"{"a":[{}"#);
    let piece = call_delta(0, None, None, ",{}");
    text.reserve(piece.len() * PIECES);
    for _ in 0..PIECES {
        text += &piece;
    }
    text += &call_delta(0, None, None, "]}");
    text += &chunk(json!({}), Some("tool_calls"));
    text += "data: [DONE]\n\n";
    let before = crate::types::WHOLE_PARSES.with(std::cell::Cell::get);
    let (events, reply) = replay(&mut ChatAssembler::default(), &text, 1 << 16).unwrap();
    let parses = crate::types::WHOLE_PARSES.with(std::cell::Cell::get) - before;
    let arguments = format!(r#"{{"a":[{{}}{}]}}"#, ",{}".repeat(PIECES));
    assert_eq!(
        reply.message.calls,
        [ToolCall::new("call_1", "calc", arguments)]
    );
    assert_eq!(announced(&events), reply.message.calls);
    assert!(
        parses <= 2,
        "{parses} whole parses of the arguments for {PIECES} pieces"
    );
}
