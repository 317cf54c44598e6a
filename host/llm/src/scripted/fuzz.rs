//! Property-based fuzzing of tool-call JSON in every model protocol: the
//! same reply, streamed (cut at random points) or sent whole, must give the
//! same text and calls, with the arguments the model wrote. Run with
//! `cargo test --lib fuzz`.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use super::wire::{Render, Step};
use super::{ScriptPart, ScriptedReply};
use crate::anthropic::{self, AnthropicAssembler};
use crate::openai_chat::{self, ChatAssembler};
use crate::openai_responses::{self, ResponsesAssembler};
use crate::protocol::{Assembler, End};
use crate::sse::{Ending, SseParser};
use crate::{ModelReply, Provider, StreamEvent};
use toolhost_fuzz::{check, json};

fn part() -> impl Strategy<Value = ScriptPart> {
    let arguments = prop_oneof![
        Just(String::new()),
        (
            prop::collection::btree_map("[a-z_]{1,6}|\\PC{1,3}", json(3), 0..4),
            any::<bool>()
        )
            .prop_map(|(map, pretty)| {
                let value = Value::Object(map.into_iter().collect());
                if pretty {
                    format!(" {value:#}")
                } else {
                    value.to_string()
                }
            }),
    ];
    prop_oneof![
        "\\PC{0,24}".prop_map(ScriptPart::Text),
        ("[a-z_]{1,10}|\\PC{1,6}", arguments)
            .prop_map(|(name, arguments)| ScriptPart::Call { name, arguments }),
    ]
}

/// The stream's bytes, every frame in order.
fn stream_text(render: &Render<'_>) -> String {
    let (open, steps, close) = render.stream();
    let mut text = open.concat();
    for step in steps {
        match step {
            Step::Token(frames) | Step::Frames(frames) => text.push_str(&frames.concat()),
            Step::Pause(_) => {}
        }
    }
    text.push_str(&close.concat());
    text
}

/// Assembles `text` cut at `cuts`; the reply and the calls announced ready.
fn streamed(
    provider: Provider,
    text: &str,
    cuts: &[Index],
) -> Result<(ModelReply, Vec<crate::ToolCall>), TestCaseError> {
    let mut assembler: Box<dyn Assembler> = match provider {
        Provider::OpenAiChat => Box::new(ChatAssembler::default()),
        Provider::OpenAiResponses => Box::new(ResponsesAssembler::default()),
        Provider::Anthropic => Box::new(AnthropicAssembler::default()),
    };
    let bytes = text.as_bytes();
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    let mut parser = SseParser::default();
    let (mut events, mut out, mut complete) = (Vec::new(), Vec::new(), false);
    for window in points.windows(2) {
        parser
            .feed(&bytes[window[0]..window[1]], &mut events)
            .map_err(|_| TestCaseError::fail("line too long"))?;
        for event in events.drain(..) {
            complete |= assembler
                .feed(&event, &mut out)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
    let ending = parser.finish(&mut events);
    for event in events.drain(..) {
        complete |= assembler
            .feed(&event, &mut out)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let end = match (complete, ending) {
        (true, _) => End::Terminated,
        (false, Ending::Whole) => End::Closed,
        (false, Ending::HalfLine) => End::Cut,
    };
    let reply = assembler.finish(end, &mut out);
    let ready = out
        .into_iter()
        .filter_map(|event| match event {
            StreamEvent::CallReady(call) => Some(call),
            _ => None,
        })
        .collect();
    Ok((reply, ready))
}

fn same_arguments(got: &str, written: &str) -> bool {
    let written = if written.trim().is_empty() {
        "{}"
    } else {
        written
    };
    match (
        serde_json::from_str::<Value>(got),
        serde_json::from_str::<Value>(written),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[test]
fn fuzz_tool_calls_stream_and_whole_replies_agree_in_every_protocol() {
    let provider = prop_oneof![
        Just(Provider::OpenAiChat),
        Just(Provider::OpenAiResponses),
        Just(Provider::Anthropic),
    ];
    check(
        "tool-call protocols",
        256,
        (
            provider,
            prop::collection::vec(part(), 0..5),
            1_usize..8,
            any::<bool>(),
            prop::collection::vec(any::<Index>(), 0..16),
        ),
        |(provider, parts, chars_per_token, reuse_index_zero, cuts)| {
            let reply = ScriptedReply {
                parts,
                truncate_after: None,
            };
            let render = Render {
                provider,
                reply: &reply,
                turn: 0,
                chars_per_token,
                reuse_index_zero,
            };
            let body = render.body();
            let body: Value = serde_json::from_str(&body.to_string())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let whole = match provider {
                Provider::OpenAiChat => openai_chat::parse_reply(&body),
                Provider::OpenAiResponses => openai_responses::parse_reply(&body),
                Provider::Anthropic => anthropic::parse_reply(&body),
            }
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (streamed, ready) = streamed(provider, &stream_text(&render), &cuts)?;

            let text: String = reply
                .parts
                .iter()
                .filter_map(|p| match p {
                    ScriptPart::Text(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            let written: Vec<(&str, &str)> = reply
                .parts
                .iter()
                .filter_map(|p| match p {
                    ScriptPart::Call { name, arguments } => {
                        Some((name.as_str(), arguments.as_str()))
                    }
                    _ => None,
                })
                .collect();
            prop_assert_eq!(&streamed.message.text, &text);
            prop_assert_eq!(&whole.message.text, &text);
            prop_assert_eq!(&streamed.stop, &whole.stop);
            prop_assert_eq!(streamed.message.calls.len(), written.len());
            prop_assert_eq!(whole.message.calls.len(), written.len());
            // Each call is announced once, as in the reply; a call whose
            // arguments complete first is announced first.
            let mut ready = ready;
            let mut calls = streamed.message.calls.clone();
            ready.sort_by(|a, b| a.id.cmp(&b.id));
            calls.sort_by(|a, b| a.id.cmp(&b.id));
            prop_assert_eq!(ready, calls);
            for ((s, w), (name, arguments)) in streamed
                .message
                .calls
                .iter()
                .zip(&whole.message.calls)
                .zip(&written)
            {
                prop_assert_eq!(&s.id, &w.id);
                prop_assert_eq!(&s.name, name);
                prop_assert_eq!(&w.name, name);
                prop_assert!(
                    same_arguments(&s.arguments, arguments),
                    "{} vs {}",
                    s.arguments,
                    arguments
                );
                prop_assert!(
                    same_arguments(&w.arguments, arguments),
                    "{} vs {}",
                    w.arguments,
                    arguments
                );
            }
            Ok(())
        },
    );
}
