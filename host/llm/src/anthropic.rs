//! Anthropic Messages: `tool_use` blocks out, `tool_result` blocks back
//! (first in one user message, `is_error` on failures). Streamed
//! `input_json_delta` fragments arrive between `content_block_start` and
//! `content_block_stop`; the stop makes the call ready.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::assembly::{Collected, PartialCall, StreamError};
use super::protocol::{Assembler, End, ModelRequest, anthropic_tool, error_message, parse_data};
use super::sse::SseEvent;
use super::types::{AssistantMessage, Message, ModelReply, StopReason, StreamEvent, ToolCall};

/// The API version header every request carries.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// The request body. A call whose arguments are not a JSON object (cut
/// off, or not JSON) cannot be a `tool_use` block, whose `input` must be
/// one, and no input is invented for it: the block is left out, and the
/// call's result, which a `tool_result` could not answer, follows the
/// results as a text block naming the call.
pub(crate) fn request_body(request: &ModelRequest<'_>, stream: bool) -> Value {
    let mut messages = Vec::new();
    // Calls left out, by id: their tool names.
    let mut left_out: HashMap<&str, &str> = HashMap::new();
    for message in request.messages {
        match message {
            Message::User(text) => messages.push(json!({"role": "user", "content": text})),
            Message::Assistant(reply) => {
                let mut content = Vec::new();
                if !reply.text.is_empty() {
                    content.push(json!({"type": "text", "text": reply.text}));
                }
                for call in &reply.calls {
                    match serde_json::from_str::<Value>(&call.arguments) {
                        Ok(input) if input.is_object() => content.push(
                            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}),
                        ),
                        _ => {
                            left_out.insert(&call.id, &call.name);
                        }
                    }
                }
                if !content.is_empty() {
                    messages.push(json!({"role": "assistant", "content": content}));
                }
            }
            Message::ToolResults(results) => {
                let mut content = Vec::new();
                let mut notes = Vec::new();
                for result in results {
                    if let Some(name) = left_out.get(result.call_id.as_str()) {
                        notes.push(json!({"type": "text", "text": format!(
                            "The result of your call of `{name}` (id {}), whose input was not a complete JSON object: {}",
                            result.call_id, result.content
                        )}));
                        continue;
                    }
                    let mut block = json!({
                        "type": "tool_result",
                        "tool_use_id": result.call_id,
                        "content": result.content,
                    });
                    if result.is_error {
                        block["is_error"] = json!(true);
                    }
                    content.push(block);
                }
                // Results first, as the API requires.
                content.extend(notes);
                messages.push(json!({"role": "user", "content": content}));
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    });
    if let Some(system) = request.system {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(anthropic_tool).collect();
        body["tool_choice"] = json!({"type": "auto"});
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_string()),
    }
}

/// A non-streaming reply.
pub(crate) fn parse_reply(body: &Value) -> Result<ModelReply, String> {
    if let Some(message) = error_message(body) {
        return Err(message);
    }
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the reply has no `content` array")?;
    let mut message = AssistantMessage::default();
    for block in content {
        let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
        match text("type") {
            "text" => message.text.push_str(text("text")),
            "tool_use" => message.calls.push(ToolCall::new(
                text("id"),
                text("name"),
                block.get("input").map_or("{}".into(), Value::to_string),
            )),
            _ => {}
        }
    }
    let stop = match body.get("stop_reason").and_then(Value::as_str) {
        Some(reason) => stop_reason(reason),
        None if message.calls.is_empty() => StopReason::EndTurn,
        None => StopReason::ToolUse,
    };
    Ok(ModelReply { message, stop })
}

/// Streamed events to calls, by content block index.
#[derive(Debug, Default)]
pub(crate) struct AnthropicAssembler {
    collected: Collected,
    /// Block index to call position, for `tool_use` blocks.
    blocks: HashMap<u64, usize>,
    /// The `input` of `content_block_start`, used when no fragment follows.
    start_inputs: HashMap<usize, String>,
    stop: Option<StopReason>,
}

impl Assembler for AnthropicAssembler {
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, StreamError> {
        let value = parse_data(event)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "content_block_start" => {
                let block = value.get("content_block").unwrap_or(&Value::Null);
                let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
                match text("type") {
                    "tool_use" => {
                        let call = PartialCall::new(text("id"), text("name"));
                        let position = self.collected.begin(call, out)?;
                        self.blocks.insert(index, position);
                        if let Some(input) = block
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            let input = input.to_string();
                            self.collected.hold(input.len())?;
                            self.start_inputs.insert(position, input);
                        }
                    }
                    "text" => self.collected.text(text("text"), out)?,
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = value.get("delta").unwrap_or(&Value::Null);
                let text = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or_default();
                match text("type") {
                    "text_delta" => self.collected.text(text("text"), out)?,
                    "input_json_delta" => {
                        if let Some(&position) = self.blocks.get(&index) {
                            self.collected
                                .push_arguments(position, text("partial_json"))?;
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(position) = self.blocks.remove(&index) {
                    let unsent = self.collected.calls[position].arguments().trim().is_empty();
                    if unsent && let Some(input) = self.start_inputs.remove(&position) {
                        self.collected.set_arguments(position, &input)?;
                    }
                    self.collected.calls[position].announce(true, out);
                }
            }
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_reason(reason));
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                return Err(StreamError::Provider(error_message(&value).unwrap_or_else(
                    || format!("the stream reported an error: {value}"),
                )));
            }
            _ => {} // message_start, ping, thinking blocks
        }
        Ok(false)
    }

    fn finish(&mut self, end: End, out: &mut Vec<StreamEvent>) -> ModelReply {
        self.collected
            .finish(end == End::Terminated, self.stop.take(), out)
    }
}

#[cfg(test)]
mod tests;
