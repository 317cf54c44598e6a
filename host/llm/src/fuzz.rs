//! Property-based fuzzing of what a model server sends: SSE byte streams cut
//! anywhere, each protocol's stream events and whole reply bodies, and
//! tool-call arguments. Run with `cargo test --lib fuzz`.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::anthropic::{self, AnthropicAssembler};
use super::openai_chat::{self, ChatAssembler};
use super::openai_responses::{self, ResponsesAssembler};
use super::protocol::{Assembler, End};
use super::sse::{SseEvent, SseParser};
use super::types::{StopReason, StreamEvent, is_complete_json, normalize_arguments};
use toolhost_fuzz::{check, json};

/// `bytes` cut at `cuts` (positions taken modulo its length).
fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Parses `chunks` as one stream; `None` when a line was too long.
fn parse_chunks(chunks: &[&[u8]]) -> Option<Vec<SseEvent>> {
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut events).ok()?;
    }
    parser.finish(&mut events);
    Some(events)
}

/// A field value: any text without line breaks.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,12}",
        "[a-z :{}\"]{0,12}",
        "[\u{80}-\u{10ffff}]{0,4}"
    ]
}

/// One event as a server writes it: comments, an optional `event:` line,
/// data lines, and either line ending.
#[derive(Debug, Clone)]
struct Written {
    comment: Option<String>,
    event: Option<String>,
    data: Vec<String>,
    unknown: Option<String>,
    crlf: bool,
}

impl Written {
    fn text(&self) -> String {
        let end = if self.crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if let Some(comment) = &self.comment {
            text.push_str(&format!(":{comment}{end}"));
        }
        if let Some(event) = &self.event {
            text.push_str(&format!("event: {event}{end}"));
        }
        if let Some(unknown) = &self.unknown {
            text.push_str(&format!("id: {unknown}{end}"));
        }
        for line in &self.data {
            text.push_str(&format!("data: {line}{end}"));
        }
        text.push_str(end);
        text
    }

    fn expected(&self) -> SseEvent {
        SseEvent {
            event: self.event.clone(),
            data: self.data.join("\n"),
        }
    }
}

fn written() -> impl Strategy<Value = Written> {
    (
        prop::option::of(field()),
        prop::option::of(field()),
        prop::collection::vec(field(), 1..4),
        prop::option::of(field()),
        any::<bool>(),
    )
        .prop_map(|(comment, event, data, unknown, crlf)| Written {
            comment,
            event,
            data,
            unknown,
            crlf,
        })
}

#[test]
fn fuzz_sse_events_are_the_same_however_the_stream_is_cut() {
    check(
        "sse events",
        1024,
        (
            prop::collection::vec(written(), 0..8),
            prop::collection::vec(any::<Index>(), 0..24),
            any::<bool>(),
        ),
        |(events, cuts, closed)| {
            let mut text: String = events.iter().map(Written::text).collect();
            if !closed {
                // A last event that lost its blank line still counts.
                let end = if text.ends_with("\r\n") {
                    2
                } else {
                    usize::from(text.ends_with('\n'))
                };
                text.truncate(text.len() - end);
            }
            let expected: Vec<SseEvent> = events.iter().map(Written::expected).collect();
            let whole =
                parse_chunks(&[text.as_bytes()]).ok_or_else(|| TestCaseError::fail("too long"))?;
            prop_assert_eq!(&whole, &expected);
            let pieces = split(text.as_bytes(), &cuts);
            let cut = parse_chunks(&pieces).ok_or_else(|| TestCaseError::fail("too long"))?;
            prop_assert_eq!(&cut, &expected);
            let bytewise: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
            prop_assert_eq!(parse_chunks(&bytewise), Some(expected));
            Ok(())
        },
    );
}

#[test]
fn fuzz_sse_random_bytes_never_panic_and_ignore_cuts() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(
            prop::sample::select(&b"data: event:\r\n\n:{}\xff\xc3\xa9x"[..]),
            0..512
        ),
    ];
    check(
        "sse bytes",
        1024,
        (bytes, prop::collection::vec(any::<Index>(), 0..24)),
        |(bytes, cuts)| {
            let whole = parse_chunks(&[&bytes]);
            let cut = parse_chunks(&split(&bytes, &cuts));
            prop_assert_eq!(whole, cut);
            Ok(())
        },
    );
}

/// Events in one protocol's vocabulary with random fields, so that every
/// branch of its assembler is reached with odd values.
fn protocol_event() -> impl Strategy<Value = (Option<String>, Value)> {
    let word = || {
        prop_oneof![
            Just(Value::Null),
            "[a-z_]{0,6}".prop_map(Value::from),
            "[{}\\[\\]\":a-z0-9]{0,8}".prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (0_u64..4).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            json(2),
        ]
    };
    let kind = prop::sample::select(
        &[
            "response.output_text.delta",
            "response.output_item.added",
            "response.output_item.done",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.completed",
            "response.incomplete",
            "response.failed",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
            "error",
            "ping",
            "function_call",
            "tool_use",
            "text",
            "text_delta",
            "input_json_delta",
        ][..],
    );
    let key = prop::sample::select(
        &[
            "type",
            "index",
            "id",
            "call_id",
            "item_id",
            "name",
            "arguments",
            "delta",
            "text",
            "partial_json",
            "content",
            "content_block",
            "item",
            "response",
            "status",
            "stop_reason",
            "finish_reason",
            "tool_calls",
            "function",
            "choices",
            "error",
            "message",
            "input",
            "output",
            "incomplete_details",
            "reason",
        ][..],
    );
    let node = (
        kind.clone(),
        prop::collection::vec((key.clone(), word()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut map = serde_json::Map::new();
            map.insert("type".into(), json!(kind));
            for (key, value) in fields {
                map.insert(key.into(), value);
            }
            Value::Object(map)
        });
    let nested = (
        node.clone(),
        prop::collection::vec((key, node.clone()), 0..3),
    )
        .prop_map(|(mut outer, inner)| {
            for (key, value) in inner {
                outer[key] = value;
            }
            outer
        });
    let chat = (nested.clone(), prop::option::of("[a-z_]{1,10}")).prop_map(|(delta, finish)| {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    });
    (
        prop::option::of(prop_oneof![kind.prop_map(str::to_string), "[a-z.]{0,8}"]),
        prop_oneof![nested, chat, json(3)],
    )
}

/// Feeds `events` to `assembler` and checks what every assembler promises:
/// no panic; every call in the reply announced exactly once, as the reply
/// holds it (or an error, when the events changed an announced call).
fn assemble(
    assembler: &mut dyn Assembler,
    events: &[(Option<String>, Value)],
) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let mut complete = false;
    for (event, data) in events {
        let event = SseEvent {
            event: event.clone(),
            data: data.to_string(),
        };
        match assembler.feed(&event, &mut out) {
            Ok(done) => complete |= done,
            Err(message) => {
                prop_assert!(!message.to_string().is_empty());
                return Ok(());
            }
        }
    }
    let end = if complete {
        End::Terminated
    } else {
        End::Closed
    };
    let reply = assembler.finish(end, &mut out);
    let begun = out
        .iter()
        .filter(|e| matches!(e, StreamEvent::CallBegun { .. }))
        .count();
    let ready = out
        .iter()
        .filter(|e| matches!(e, StreamEvent::CallReady(_)))
        .count();
    prop_assert_eq!(begun, reply.message.calls.len());
    prop_assert_eq!(ready, reply.message.calls.len());
    let mut announced: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::CallReady(call) => Some(call.clone()),
            _ => None,
        })
        .collect();
    let mut calls = reply.message.calls.clone();
    let key = |call: &crate::ToolCall| (call.id.clone(), call.name.clone(), call.arguments.clone());
    announced.sort_by_key(key);
    calls.sort_by_key(key);
    prop_assert_eq!(announced, calls);
    let text: String = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(text, reply.message.text);
    // Empty arguments read as `{}`, except in a reply cut off before they
    // began: nothing is invented for those.
    let cut_off = matches!(reply.stop, StopReason::Truncated | StopReason::MaxTokens);
    for call in &reply.message.calls {
        prop_assert!(cut_off || !call.arguments.trim().is_empty());
    }
    Ok(())
}

#[test]
fn fuzz_assemblers_take_any_events_and_announce_every_call_once() {
    check(
        "assemblers",
        1024,
        prop::collection::vec(protocol_event(), 0..12),
        |events| {
            assemble(&mut ChatAssembler::default(), &events)?;
            assemble(&mut ResponsesAssembler::default(), &events)?;
            assemble(&mut AnthropicAssembler::default(), &events)?;
            Ok(())
        },
    );
}

#[test]
fn fuzz_reply_bodies_of_any_shape_parse_or_say_why() {
    let body = prop_oneof![
        json(4),
        protocol_event().prop_map(|(_, v)| v),
        protocol_event().prop_map(|(_, v)| json!({"choices": [{"message": v}]})),
        prop::collection::vec(protocol_event().prop_map(|(_, v)| v), 0..4)
            .prop_map(|items| json!({"output": items, "content": items, "status": "completed"})),
    ];
    check("reply bodies", 1024, body, |body| {
        for parsed in [
            openai_chat::parse_reply(&body),
            openai_responses::parse_reply(&body),
            anthropic::parse_reply(&body),
        ] {
            match parsed {
                Ok(reply) => {
                    for call in &reply.message.calls {
                        prop_assert!(!call.arguments.trim().is_empty());
                    }
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_arguments_are_complete_exactly_when_they_are_one_json_container() {
    let text = prop_oneof![
        json(4).prop_map(|v| v.to_string()),
        json(3).prop_map(|v| format!(" {v:#}\n")),
        json(3).prop_map(|v| {
            let text = v.to_string();
            let cut = text.len() / 2;
            text.char_indices()
                .map(|(i, _)| i)
                .find(|i| *i >= cut)
                .map_or(text.clone(), |i| text[..i].to_string())
        }),
        "\\PC{0,16}",
    ];
    check("arguments", 1024, text, |text| {
        let parsed = serde_json::from_str::<Value>(text.trim_end());
        let container = parsed.as_ref().is_ok_and(|v| v.is_object() || v.is_array());
        prop_assert_eq!(is_complete_json(&text), container);
        // Read piece by piece, every prefix gets the same answer.
        for size in [1, 3] {
            let mut completion = crate::completion::Completion::default();
            let mut so_far = String::new();
            for piece in crate::protocol::pieces(&text, size) {
                so_far.push_str(&piece);
                prop_assert_eq!(completion.advance(&so_far), is_complete_json(&so_far));
            }
        }
        let normalized = normalize_arguments(text.clone());
        if text.trim().is_empty() {
            prop_assert_eq!(normalized, "{}");
        } else {
            prop_assert_eq!(normalized, text);
        }
        Ok(())
    });
}
