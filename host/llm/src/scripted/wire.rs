//! A scripted reply in each protocol's wire shape: whole JSON bodies, and
//! SSE frames step by step.

use serde_json::{Value, json};

use super::{ScriptGate, ScriptPart, ScriptedReply};
use crate::Provider;

/// One step of a streamed reply.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Frames to send after one token's delay.
    Token(Vec<String>),
    /// Frames sent at once (block boundaries).
    Frames(Vec<String>),
    /// Wait at a gate.
    Pause(ScriptGate),
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(event) => format!("event: {event}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// Splits `text` into tokens of `size` characters.
fn tokens(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn call_id(provider: Provider, turn: usize, n: usize) -> String {
    match provider {
        Provider::Anthropic => format!("toolu_{turn:02}_{n:02}"),
        _ => format!("call_{turn:02}_{n:02}"),
    }
}

/// How a reply is rendered.
pub(super) struct Render<'a> {
    pub(super) provider: Provider,
    pub(super) reply: &'a ScriptedReply,
    pub(super) turn: usize,
    pub(super) chars_per_token: usize,
    pub(super) reuse_index_zero: bool,
}

impl Render<'_> {
    fn has_calls(&self) -> bool {
        self.reply
            .parts
            .iter()
            .any(|p| matches!(p, ScriptPart::Call { .. }))
    }

    /// Tokens the whole reply takes, for pacing non-streaming replies.
    pub(super) fn token_count(&self) -> usize {
        self.reply
            .parts
            .iter()
            .map(|part| match part {
                ScriptPart::Text(text) => tokens(text, self.chars_per_token).len(),
                ScriptPart::Call { arguments, .. } => {
                    1 + tokens(arguments, self.chars_per_token).len()
                }
                ScriptPart::Pause(_) => 0,
            })
            .sum()
    }

    /// The whole reply as one JSON body.
    pub(super) fn body(&self) -> Value {
        let mut text = String::new();
        let mut calls = Vec::new();
        for part in &self.reply.parts {
            match part {
                ScriptPart::Text(t) => text.push_str(t),
                ScriptPart::Call { name, arguments } => calls.push((name, arguments)),
                ScriptPart::Pause(_) => {}
            }
        }
        let id = |n| call_id(self.provider, self.turn, n);
        match self.provider {
            Provider::OpenAiChat => {
                let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    message["tool_calls"] = calls.iter().enumerate().map(|(n, (name, arguments))| {
                        json!({"id": id(n), "type": "function", "function": {"name": name, "arguments": arguments}})
                    }).collect();
                }
                let finish = if calls.is_empty() {
                    "stop"
                } else {
                    "tool_calls"
                };
                json!({"id": format!("chatcmpl-{}", self.turn), "object": "chat.completion", "model": "scripted",
                       "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
            }
            Provider::OpenAiResponses => {
                let mut output = Vec::new();
                if !text.is_empty() {
                    output.push(json!({"type": "message", "id": "msg_0", "role": "assistant", "status": "completed",
                                       "content": [{"type": "output_text", "text": text, "annotations": []}]}));
                }
                for (n, (name, arguments)) in calls.iter().enumerate() {
                    output.push(json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": id(n),
                                       "name": name, "arguments": arguments, "status": "completed"}));
                }
                json!({"id": format!("resp_{}", self.turn), "object": "response", "status": "completed",
                       "error": null, "output": output})
            }
            Provider::Anthropic => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
                for (n, (name, arguments)) in calls.iter().enumerate() {
                    // No arguments is `{}`, as the stream (and OpenAI) say.
                    let input = if arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str::<Value>(arguments)
                            .unwrap_or_else(|_| json!(arguments))
                    };
                    content.push(
                        json!({"type": "tool_use", "id": id(n), "name": name, "input": input}),
                    );
                }
                let stop = if calls.is_empty() {
                    "end_turn"
                } else {
                    "tool_use"
                };
                json!({"id": format!("msg_{}", self.turn), "type": "message", "role": "assistant", "model": "scripted",
                       "content": content, "stop_reason": stop, "usage": {"input_tokens": 0, "output_tokens": self.token_count()}})
            }
        }
    }

    /// The stream: opening frames, steps, closing frames.
    pub(super) fn stream(&self) -> (Vec<String>, Vec<Step>, Vec<String>) {
        match self.provider {
            Provider::OpenAiChat => self.chat_stream(),
            Provider::OpenAiResponses => self.responses_stream(),
            Provider::Anthropic => self.anthropic_stream(),
        }
    }

    fn chat_stream(&self) -> (Vec<String>, Vec<Step>, Vec<String>) {
        let chunk = |delta: Value, finish: Option<&str>| {
            sse(
                None,
                &json!({"id": format!("chatcmpl-{}", self.turn), "object": "chat.completion.chunk", "model": "scripted",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
            )
        };
        let open = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        let mut steps = Vec::new();
        let mut n = 0;
        for part in &self.reply.parts {
            match part {
                ScriptPart::Text(text) => {
                    for token in tokens(text, self.chars_per_token) {
                        steps.push(Step::Token(vec![chunk(json!({"content": token}), None)]));
                    }
                }
                ScriptPart::Call { name, arguments } => {
                    let index = if self.reuse_index_zero { 0 } else { n };
                    steps.push(Step::Token(vec![chunk(
                        json!({"tool_calls": [{"index": index, "id": call_id(self.provider, self.turn, n), "type": "function",
                                               "function": {"name": name, "arguments": ""}}]}),
                        None,
                    )]));
                    for token in tokens(arguments, self.chars_per_token) {
                        steps.push(Step::Token(vec![chunk(
                            json!({"tool_calls": [{"index": index, "function": {"arguments": token}}]}),
                            None,
                        )]));
                    }
                    n += 1;
                }
                ScriptPart::Pause(gate) => steps.push(Step::Pause(gate.clone())),
            }
        }
        let finish = if self.has_calls() {
            "tool_calls"
        } else {
            "stop"
        };
        let close = vec![
            chunk(json!({}), Some(finish)),
            "data: [DONE]\n\n".to_string(),
        ];
        (open, steps, close)
    }

    fn responses_stream(&self) -> (Vec<String>, Vec<Step>, Vec<String>) {
        let event = |value: Value| sse(value["type"].as_str(), &value);
        let response_id = format!("resp_{}", self.turn);
        let open = vec![event(
            json!({"type": "response.created", "response": {"id": response_id, "object": "response", "status": "in_progress", "output": []}}),
        )];
        let mut steps = Vec::new();
        let mut n = 0;
        for (output_index, part) in self.reply.parts.iter().enumerate() {
            match part {
                ScriptPart::Text(text) => {
                    let item = format!("msg_{output_index}");
                    steps.push(Step::Frames(vec![event(json!({"type": "response.output_item.added", "output_index": output_index,
                        "item": {"id": item, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}))]));
                    for token in tokens(text, self.chars_per_token) {
                        steps.push(Step::Token(vec![event(
                            json!({"type": "response.output_text.delta", "item_id": item,
                            "output_index": output_index, "content_index": 0, "delta": token}),
                        )]));
                    }
                    steps.push(Step::Frames(vec![
                        event(json!({"type": "response.output_text.done", "item_id": item, "output_index": output_index, "content_index": 0, "text": text})),
                        event(json!({"type": "response.output_item.done", "output_index": output_index, "item": {"id": item, "type": "message",
                            "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}})),
                    ]));
                }
                ScriptPart::Call { name, arguments } => {
                    let item = format!("fc_{output_index}");
                    let call = call_id(self.provider, self.turn, n);
                    steps.push(Step::Token(vec![event(json!({"type": "response.output_item.added", "output_index": output_index,
                        "item": {"id": item, "type": "function_call", "status": "in_progress", "call_id": call, "name": name, "arguments": ""}}))]));
                    for token in tokens(arguments, self.chars_per_token) {
                        steps.push(Step::Token(vec![event(json!({"type": "response.function_call_arguments.delta", "item_id": item,
                            "output_index": output_index, "delta": token}))]));
                    }
                    steps.push(Step::Frames(vec![
                        event(json!({"type": "response.function_call_arguments.done", "item_id": item, "output_index": output_index, "arguments": arguments})),
                        event(json!({"type": "response.output_item.done", "output_index": output_index, "item": {"id": item, "type": "function_call",
                            "status": "completed", "call_id": call, "name": name, "arguments": arguments}})),
                    ]));
                    n += 1;
                }
                ScriptPart::Pause(gate) => steps.push(Step::Pause(gate.clone())),
            }
        }
        let close = vec![event(
            json!({"type": "response.completed", "response": {"id": response_id, "object": "response", "status": "completed", "error": null}}),
        )];
        (open, steps, close)
    }

    fn anthropic_stream(&self) -> (Vec<String>, Vec<Step>, Vec<String>) {
        let event = |value: Value| sse(value["type"].as_str(), &value);
        let open = vec![event(
            json!({"type": "message_start", "message": {"id": format!("msg_{}", self.turn), "type": "message",
            "role": "assistant", "model": "scripted", "content": [], "stop_reason": null, "usage": {"input_tokens": 0, "output_tokens": 1}}}),
        )];
        let mut steps = Vec::new();
        let mut n = 0;
        for (index, part) in self.reply.parts.iter().enumerate() {
            match part {
                ScriptPart::Text(text) => {
                    steps.push(Step::Frames(vec![event(
                        json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}),
                    )]));
                    for token in tokens(text, self.chars_per_token) {
                        steps.push(Step::Token(vec![event(
                            json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": token}}),
                        )]));
                    }
                    steps.push(Step::Frames(vec![event(
                        json!({"type": "content_block_stop", "index": index}),
                    )]));
                }
                ScriptPart::Call { name, arguments } => {
                    steps.push(Step::Token(vec![event(json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "tool_use", "id": call_id(self.provider, self.turn, n), "name": name, "input": {}}}))]));
                    for token in tokens(arguments, self.chars_per_token) {
                        steps.push(Step::Token(vec![event(
                            json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": token}}),
                        )]));
                    }
                    steps.push(Step::Frames(vec![event(
                        json!({"type": "content_block_stop", "index": index}),
                    )]));
                    n += 1;
                }
                ScriptPart::Pause(gate) => steps.push(Step::Pause(gate.clone())),
            }
        }
        let stop = if self.has_calls() {
            "tool_use"
        } else {
            "end_turn"
        };
        let close = vec![
            event(
                json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": self.token_count()}}),
            ),
            event(json!({"type": "message_stop"})),
        ];
        (open, steps, close)
    }
}
