//! OpenAI Chat Completions: requests, replies, and streamed tool calls
//! assembled by `index`, and by `id` for servers that reuse index 0 for
//! every call.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::assembly::{Collected, PartialCall, StreamError};
use super::protocol::{
    Assembler, End, ModelRequest, chat_tool, error_message, parse_data, stream_error,
};
use super::sse::SseEvent;
use super::types::{
    AssistantMessage, Message, ModelReply, StopReason, StreamEvent, ToolCall, normalize_arguments,
};

/// The request body.
pub(crate) fn request_body(request: &ModelRequest<'_>, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in request.messages {
        match message {
            Message::User(text) => messages.push(json!({"role": "user", "content": text})),
            Message::Assistant(reply) => {
                let mut entry = json!({
                    "role": "assistant",
                    "content": if reply.text.is_empty() { Value::Null } else { json!(reply.text) },
                });
                if !reply.calls.is_empty() {
                    entry["tool_calls"] = reply
                        .calls
                        .iter()
                        .map(|call| {
                            json!({
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": call.arguments},
                            })
                        })
                        .collect();
                }
                messages.push(entry);
            }
            Message::ToolResults(results) => {
                for result in results {
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": result.call_id,
                        "content": result.content,
                    }));
                }
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_tokens,
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(chat_tool).collect();
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(true);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_string()),
    }
}

/// `content` as a string, or an array of `{type: text, text}` parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// A non-streaming reply.
pub(crate) fn parse_reply(body: &Value) -> Result<ModelReply, String> {
    if let Some(message) = error_message(body) {
        return Err(message);
    }
    let choice = body
        .get("choices")
        .and_then(|choices| choices.get(0))
        .ok_or("the reply has no `choices[0]`")?;
    let message = choice
        .get("message")
        .ok_or("`choices[0]` has no `message`")?;
    let mut calls = Vec::new();
    for (n, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        let arguments = match function.get("arguments") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => String::new(),
            // Some servers send the arguments as an object.
            Some(other) => other.to_string(),
        };
        calls.push(ToolCall::new(
            call.get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{n}"), str::to_string),
            function
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            normalize_arguments(arguments),
        ));
    }
    let stop = match choice.get("finish_reason").and_then(Value::as_str) {
        Some(reason) => stop_reason(reason),
        None if calls.is_empty() => StopReason::EndTurn,
        None => StopReason::ToolUse,
    };
    Ok(ModelReply {
        message: AssistantMessage {
            text: content_text(message.get("content").unwrap_or(&Value::Null)),
            calls,
        },
        stop,
    })
}

/// Streamed chunks to calls. A call begins once its name is known, and is
/// ready as soon as it has begun and its arguments are complete JSON
/// (whether the server sends calls one after another or interleaved), or
/// when the choice finishes. A later piece that would change a call
/// already announced is a [`StreamError::CallChanged`].
#[derive(Debug, Default)]
pub(crate) struct ChatAssembler {
    collected: Collected,
    /// The call each `index` currently feeds.
    by_index: HashMap<u64, usize>,
    /// Each call's position by its id.
    by_id: HashMap<String, usize>,
    finish: Option<StopReason>,
}

impl ChatAssembler {
    /// Keeps a new call, named when its name arrives.
    fn add(&mut self, id: String) -> Result<usize, StreamError> {
        let position = self.collected.add(PartialCall::new(id.clone(), ""))?;
        self.by_id.insert(id, position);
        Ok(position)
    }

    fn tool_call_delta(
        &mut self,
        delta: &Value,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let index = delta.get("index").and_then(Value::as_u64);
        let id = delta
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let function = delta.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let current = match index {
            Some(index) => self.by_index.get(&index).copied(),
            None => self.collected.calls.len().checked_sub(1),
        };
        let position = match (id, current) {
            // Some servers repeat the id on every piece.
            (Some(id), Some(position)) if self.collected.calls[position].id == id => position,
            (Some(id), _) => match self.by_id.get(id) {
                Some(&position) => position,
                None => self.add(id.to_string())?,
            },
            (None, Some(position)) => position,
            (None, None) => self.add(format!("call_{}", self.collected.calls.len()))?,
        };
        self.by_index.insert(index.unwrap_or(0), position);
        if !name.is_empty() {
            // Servers may repeat the name on every piece, never change it.
            let id = self.collected.calls[position].id.clone();
            self.collected.identify(position, &id, name, out)?;
        }
        let call = match function.get("arguments") {
            Some(Value::String(text)) => self.collected.push_arguments(position, text)?,
            Some(arguments @ Value::Object(_)) => self
                .collected
                .push_arguments(position, &arguments.to_string())?,
            _ => &mut self.collected.calls[position],
        };
        // Arguments are an object, so once they parse nothing but
        // whitespace can follow: the call is ready now, not when the next
        // piece of the reply arrives (which may be long after).
        if call.begun {
            call.announce(false, out);
        }
        Ok(())
    }
}

impl Assembler for ChatAssembler {
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, StreamError> {
        if event.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let value = parse_data(event);
        if let Some(message) = stream_error(event, value.as_ref().ok()) {
            return Err(StreamError::Provider(message));
        }
        let value = value?;
        let Some(choice) = value
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| choices.first())
        else {
            return Ok(false); // the usage chunk, or a keep-alive
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(content) = delta.get("content") {
            self.collected.text(&content_text(content), out)?;
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call_delta(call, out)?;
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            let stop = stop_reason(reason);
            // A call the token limit cut off is announced at the end, as
            // it arrived (its arguments not read as `{}`).
            let force = stop != StopReason::MaxTokens;
            self.finish = Some(stop);
            for call in &mut self.collected.calls {
                call.announce(force, out);
            }
        }
        Ok(false)
    }

    fn finish(&mut self, end: End, out: &mut Vec<StreamEvent>) -> ModelReply {
        // A `finish_reason` and a clean close count as the end: some
        // compatible servers never send `[DONE]`. A half line never does.
        let complete = match end {
            End::Terminated => true,
            End::Closed => self.finish.is_some(),
            End::Cut => false,
        };
        self.collected.finish(complete, self.finish.take(), out)
    }
}

#[cfg(test)]
mod tests;
