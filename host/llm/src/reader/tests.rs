//! Every dialect's stream, cut at every byte and split at seeded random
//! points (inside multi-byte characters and between `\r` and `\n`
//! included), is reported by one rule; and the follow-up request built from
//! what was read never invents arguments and answers every call it sends.

use serde_json::{Value, json};

use super::{ReadError, StreamReader};
use crate::assembly::StreamError;
use crate::protocol::ModelRequest;
use crate::types::{
    Message, ModelReply, Provider, StopReason, StreamEvent, ToolResult, is_complete_json,
};
use crate::{anthropic, openai_chat, openai_responses};

/// The two calls of every stream: the first always completes; the second
/// completes too, or is cut off by the token limit after `CUT` characters.
const CALLS: [(&str, &str, &str); 2] = [
    ("c1", "text__stats", r#"{"text": "héllo 😀 wörld", "n": 2}"#),
    ("c2", "calc", r#"{"expression": "6 * 7 — ✓"}"#),
];
const CUT: usize = 18;

/// How the stream ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Finish {
    /// Both calls complete, stop `tool_use`.
    Calls,
    /// The token limit cuts the second call off.
    MaxTokens,
}

/// A real-shaped stream, and the byte offset just past its terminating line.
struct Stream {
    text: String,
    /// The reply is complete once this many bytes have arrived.
    terminated_at: usize,
    /// Chat Completions: a clean close after this offset also completes it.
    finished_at: Option<usize>,
}

fn frame(eol: &str, event: Option<&str>, data: &str) -> String {
    let mut text = String::new();
    if let Some(event) = event {
        text += &format!("event: {event}{eol}");
    }
    text + &format!("data: {data}{eol}{eol}")
}

/// Argument pieces of `size` characters.
fn pieces(arguments: &str, size: usize) -> Vec<String> {
    crate::protocol::pieces(arguments, size)
}

fn arguments_sent(n: usize, finish: Finish) -> &'static str {
    let (_, _, arguments) = CALLS[n];
    if n == 1 && finish == Finish::MaxTokens {
        let end = arguments
            .char_indices()
            .nth(CUT)
            .map_or(arguments.len(), |(i, _)| i);
        &arguments[..end]
    } else {
        arguments
    }
}

fn stream(provider: Provider, finish: Finish, eol: &str) -> Stream {
    let mut text = String::new();
    let mut finished_at = None;
    let f = |e: Option<&str>, v: Value| frame(eol, e, &v.to_string());
    match provider {
        Provider::OpenAiChat => {
            let chunk = |delta: Value, finish: Option<&str>| {
                f(
                    None,
                    json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                )
            };
            text += &chunk(json!({"role": "assistant", "content": "Voilà "}), None);
            text += &chunk(json!({"content": "😀."}), None);
            for (n, (id, name, _)) in CALLS.iter().enumerate() {
                text += &chunk(
                    json!({"tool_calls": [{"index": n, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                );
                for piece in pieces(arguments_sent(n, finish), 3) {
                    text += &chunk(
                        json!({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}),
                        None,
                    );
                }
            }
            let reason = if finish == Finish::MaxTokens {
                "length"
            } else {
                "tool_calls"
            };
            let last = chunk(json!({}), Some(reason));
            finished_at = Some(text.len() + last.len() - 2 * eol.len() + eol.len());
            text += &last;
            text += &f(None, json!({"choices": [], "usage": {"total_tokens": 9}}));
            text += &format!("data: [DONE]{eol}");
            let terminated_at = text.len();
            text += eol;
            return Stream {
                text,
                terminated_at,
                finished_at,
            };
        }
        Provider::OpenAiResponses => {
            text += &f(
                Some("response.created"),
                json!({"type": "response.created", "response": {"status": "in_progress"}}),
            );
            for delta in ["Voilà ", "😀."] {
                text += &f(
                    None,
                    json!({"type": "response.output_text.delta", "delta": delta}),
                );
            }
            for (n, (id, name, _)) in CALLS.iter().enumerate() {
                let item = format!("fc_{n}");
                text += &f(
                    None,
                    json!({"type": "response.output_item.added", "item": {"type": "function_call", "id": item, "call_id": id, "name": name, "arguments": ""}}),
                );
                let sent = arguments_sent(n, finish);
                for piece in pieces(sent, 3) {
                    text += &f(
                        None,
                        json!({"type": "response.function_call_arguments.delta", "item_id": item, "delta": piece}),
                    );
                }
                if sent == CALLS[n].2 {
                    text += &f(
                        None,
                        json!({"type": "response.function_call_arguments.done", "item_id": item, "arguments": sent}),
                    );
                }
            }
            let end = match finish {
                Finish::Calls => {
                    json!({"type": "response.completed", "response": {"status": "completed"}})
                }
                Finish::MaxTokens => {
                    json!({"type": "response.incomplete", "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}})
                }
            };
            let kind = end["type"].as_str().unwrap_or_default().to_string();
            text += &format!("event: {kind}{eol}data: {end}{eol}");
        }
        _ => {
            text += &f(
                Some("message_start"),
                json!({"type": "message_start", "message": {"id": "m"}}),
            );
            text += &f(
                Some("content_block_start"),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for delta in ["Voilà ", "😀."] {
                text += &f(
                    Some("content_block_delta"),
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta}}),
                );
            }
            text += &f(Some("ping"), json!({"type": "ping"}));
            for (n, (id, name, _)) in CALLS.iter().enumerate() {
                let index = n + 1;
                text += &f(
                    Some("content_block_start"),
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                );
                for piece in pieces(arguments_sent(n, finish), 3) {
                    text += &f(
                        Some("content_block_delta"),
                        json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    );
                }
                // Anthropic stops a block the limit cut off, too.
                text += &f(
                    Some("content_block_stop"),
                    json!({"type": "content_block_stop", "index": index}),
                );
            }
            let reason = if finish == Finish::MaxTokens {
                "max_tokens"
            } else {
                "tool_use"
            };
            text += &f(
                Some("message_delta"),
                json!({"type": "message_delta", "delta": {"stop_reason": reason}}),
            );
            text += &format!(
                "event: message_stop{eol}data: {}{eol}",
                json!({"type": "message_stop"})
            );
        }
    }
    let terminated_at = text.len();
    text += eol;
    Stream {
        text,
        terminated_at,
        finished_at,
    }
}

/// A small seeded generator, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Split points for `bytes`: random ones, and for odd seeds every point
/// inside a multi-byte character and between every `\r` and `\n`.
fn splits(bytes: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut chunks = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        let awkward = (bytes[i] & 0xC0 == 0x80) || (bytes[i - 1] == b'\r' && bytes[i] == b'\n');
        if (seed % 2 == 1 && awkward) || rng.next().is_multiple_of(7) {
            chunks.push(&bytes[start..i]);
            start = i;
        }
    }
    chunks.push(&bytes[start..]);
    chunks
}

fn read(provider: Provider, chunks: &[&[u8]]) -> (Result<ModelReply, ReadError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let mut on_event = |event| events.push(event);
    let mut reader = StreamReader::new(provider);
    for chunk in chunks {
        match reader.feed(chunk, &mut on_event) {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => return (Err(error), events),
        }
    }
    let reply = reader.finish(&mut on_event);
    (reply, events)
}

/// The follow-up request after `reply`, its cut calls answered with errors.
fn follow_up(provider: Provider, reply: &ModelReply) -> Value {
    let results = reply
        .message
        .calls
        .iter()
        .map(|call| ToolResult {
            call_id: call.id.clone(),
            content: if is_complete_json(&call.arguments) {
                "{}".into()
            } else {
                "invalid-input: cut off".into()
            },
            is_error: !is_complete_json(&call.arguments),
        })
        .collect();
    let messages = [
        Message::User("go".into()),
        Message::Assistant(reply.message.clone()),
        Message::ToolResults(results),
    ];
    let request = ModelRequest {
        model: "m",
        system: None,
        messages: &messages,
        tools: &[],
        max_tokens: 9,
    };
    match provider {
        Provider::OpenAiChat => openai_chat::request_body(&request, true),
        Provider::OpenAiResponses => openai_responses::request_body(&request, true),
        _ => anthropic::request_body(&request, true),
    }
}

fn original(id: &str) -> &'static str {
    CALLS
        .iter()
        .find(|c| c.0 == id)
        .map(|c| c.2)
        .unwrap_or_else(|| panic!("no call {id}"))
}

/// The follow-up request sends each call with arguments the model sent (or
/// leaves it out, for Anthropic), and answers exactly the calls it sends.
fn check_follow_up(provider: Provider, body: &Value, what: &str) {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let (sent, answered): (Vec<(String, String)>, Vec<String>) = match provider {
        Provider::OpenAiChat => {
            let messages = list(&body["messages"]);
            let sent = messages
                .iter()
                .flat_map(|m| list(&m["tool_calls"]))
                .map(|c| {
                    (
                        c["id"].as_str().unwrap_or_default().into(),
                        c["function"]["arguments"]
                            .as_str()
                            .unwrap_or_default()
                            .into(),
                    )
                });
            let answered = messages
                .iter()
                .filter(|m| m["role"] == "tool")
                .map(|m| m["tool_call_id"].as_str().unwrap_or_default().into());
            (sent.collect(), answered.collect())
        }
        Provider::OpenAiResponses => {
            let input = list(&body["input"]);
            let sent = input
                .iter()
                .filter(|i| i["type"] == "function_call")
                .map(|c| {
                    (
                        c["call_id"].as_str().unwrap_or_default().into(),
                        c["arguments"].as_str().unwrap_or_default().into(),
                    )
                });
            let answered = input
                .iter()
                .filter(|i| i["type"] == "function_call_output")
                .map(|i| i["call_id"].as_str().unwrap_or_default().into());
            (sent.collect(), answered.collect())
        }
        _ => {
            let messages = list(&body["messages"]);
            let blocks: Vec<Value> = messages.iter().flat_map(|m| list(&m["content"])).collect();
            let sent = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| {
                (
                    b["id"].as_str().unwrap_or_default().into(),
                    b["input"].to_string(),
                )
            });
            let answered = blocks
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .map(|b| b["tool_use_id"].as_str().unwrap_or_default().into());
            (sent.collect(), answered.collect())
        }
    };
    let ids: Vec<&String> = sent.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        answered.iter().collect::<Vec<_>>(),
        "{what}: every call sent is answered, no other"
    );
    for (id, arguments) in &sent {
        let model_sent = original(id);
        if provider == Provider::Anthropic {
            // Only a whole input goes back, exactly as the model wrote it.
            let parsed: Value = serde_json::from_str(model_sent).unwrap();
            assert_eq!(arguments, &parsed.to_string(), "{what}: {id}");
        } else {
            assert!(
                model_sent.starts_with(arguments.as_str()),
                "{what}: {id} sent back as {arguments:?}"
            );
        }
    }
}

#[test]
fn every_cut_and_split_of_every_dialect_is_reported_by_one_rule() {
    for provider in Provider::ALL {
        for finish in [Finish::Calls, Finish::MaxTokens] {
            for eol in ["\n", "\r\n"] {
                let stream = stream(provider, finish, eol);
                let bytes = stream.text.as_bytes();
                let (whole, _) = read(provider, &[bytes]);
                let whole = whole.unwrap_or_else(|e| panic!("{provider}: {e:?}"));
                let stop = if finish == Finish::MaxTokens {
                    StopReason::MaxTokens
                } else {
                    StopReason::ToolUse
                };
                assert_eq!(whole.stop, stop, "{provider}");
                assert_eq!(whole.message.text, "Voilà 😀.", "{provider}");
                let arguments: Vec<&str> = whole
                    .message
                    .calls
                    .iter()
                    .map(|c| c.arguments.as_str())
                    .collect();
                assert_eq!(
                    arguments,
                    [arguments_sent(0, finish), arguments_sent(1, finish)],
                    "{provider}"
                );
                for cut in 0..=bytes.len() {
                    let prefix = &bytes[..cut];
                    let what = format!(
                        "{provider} {finish:?} {eol:?} cut at {cut}: …{:?}",
                        String::from_utf8_lossy(&prefix[cut.saturating_sub(40)..])
                    );
                    let (reference, _) = read(provider, &[prefix]);
                    let reply = reference.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    // Past the terminating line, only a half-written blank
                    // line (`\r`) is left to cut: that too is truncated.
                    let complete = (cut >= stream.terminated_at && prefix.ends_with(b"\n"))
                        || stream
                            .finished_at
                            .is_some_and(|at| cut >= at && prefix.ends_with(b"\n"));
                    if complete {
                        assert_eq!(reply, whole, "{what}");
                    } else {
                        assert_eq!(reply.stop, StopReason::Truncated, "{what}");
                    }
                    for call in &reply.message.calls {
                        let model_sent = original(&call.id);
                        assert!(
                            model_sent.starts_with(&call.arguments),
                            "{what}: {} invented {:?}",
                            call.id,
                            call.arguments
                        );
                    }
                    check_follow_up(provider, &follow_up(provider, &reply), &what);
                    let seed = cut as u64;
                    let (split, events) = read(provider, &splits(prefix, seed));
                    assert_eq!(split.as_ref(), Ok(&reply), "{what}, seed {seed}");
                    let ready = events
                        .iter()
                        .filter(|e| matches!(e, StreamEvent::CallReady(_)))
                        .count();
                    assert_eq!(
                        ready,
                        reply.message.calls.len(),
                        "{what}: each call announced once"
                    );
                }
            }
        }
    }
}

#[test]
fn an_error_event_is_the_providers_error_however_it_is_split() {
    let cases = [
        (
            Provider::OpenAiChat,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"é\"}}]}\r\n\r\ndata: {\"error\":{\"type\":\"server_error\",\"message\":\"à bientôt\"}}\r\n\r\n",
        ),
        (
            Provider::OpenAiResponses,
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"é\"}\n\nevent: error\ndata: {\"type\":\"error\",\"message\":\"à bientôt\"}\n\n",
        ),
        (
            Provider::Anthropic,
            "event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\nevent: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"à bientôt\"}}\r\n\r\n",
        ),
    ];
    for (provider, text) in cases {
        for seed in 0..64 {
            let (reply, _) = read(provider, &splits(text.as_bytes(), seed));
            match reply {
                Err(ReadError::Stream(StreamError::Provider(message))) => {
                    assert!(message.contains("à bientôt"), "{provider}: {message}")
                }
                other => panic!("{provider}, seed {seed}: {other:?}"),
            }
        }
    }
}
