//! The OpenAI Responses API: `function_call` items out, `function_call_output`
//! items back. Streamed argument deltas are keyed by the item's `id`
//! (`fc_…`); results are keyed by its `call_id` (`call_…`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::assembly::{Collected, PartialCall, StreamError};
use super::protocol::{Assembler, End, ModelRequest, error_message, parse_data, responses_tool};
use super::sse::SseEvent;
use super::types::{
    AssistantMessage, Message, ModelReply, StopReason, StreamEvent, ToolCall, normalize_arguments,
};

/// The request body.
pub(crate) fn request_body(request: &ModelRequest<'_>, stream: bool) -> Value {
    let mut input = Vec::new();
    for message in request.messages {
        match message {
            Message::User(text) => input.push(json!({"role": "user", "content": text})),
            Message::Assistant(reply) => {
                if !reply.text.is_empty() {
                    input.push(json!({"role": "assistant", "content": reply.text}));
                }
                for call in &reply.calls {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }));
                }
            }
            Message::ToolResults(results) => {
                for result in results {
                    input.push(json!({
                        "type": "function_call_output",
                        "call_id": result.call_id,
                        "output": result.content,
                    }));
                }
            }
        }
    }
    let mut body = json!({
        "model": request.model,
        "input": input,
        "max_output_tokens": request.max_tokens,
        "store": false,
    });
    if let Some(system) = request.system {
        body["instructions"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(responses_tool).collect();
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(true);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// The stop reason of a `response` object; `None` when it failed.
fn stop_reason(response: &Value, has_calls: bool) -> Result<StopReason, String> {
    match response.get("status").and_then(Value::as_str) {
        Some("failed") => Err(error_message(response)
            .unwrap_or_else(|| "the response failed without a message".to_string())),
        Some("incomplete") => Ok(
            match response
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str)
            {
                Some("max_output_tokens") => StopReason::MaxTokens,
                Some(other) => StopReason::Other(other.to_string()),
                None => StopReason::Other("incomplete".into()),
            },
        ),
        _ if has_calls => Ok(StopReason::ToolUse),
        _ => Ok(StopReason::EndTurn),
    }
}

fn function_call(item: &Value) -> ToolCall {
    let text = |key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let id = item
        .get("call_id")
        .or_else(|| item.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    ToolCall::new(id, text("name"), normalize_arguments(text("arguments")))
}

/// A non-streaming reply.
pub(crate) fn parse_reply(body: &Value) -> Result<ModelReply, String> {
    if let Some(message) = error_message(body) {
        return Err(message);
    }
    let output = body
        .get("output")
        .and_then(Value::as_array)
        .ok_or("the reply has no `output` array")?;
    let mut message = AssistantMessage::default();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if part.get("type").and_then(Value::as_str) == Some("output_text") {
                        message
                            .text
                            .push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
                    }
                }
            }
            Some("function_call") => message.calls.push(function_call(item)),
            _ => {} // reasoning and other items are not needed to continue
        }
    }
    let stop = stop_reason(body, !message.calls.is_empty())?;
    Ok(ModelReply { message, stop })
}

/// Streamed events to calls. A call begins once its `call_id` and name are
/// known (from `output_item.added`, or else its `output_item.done`), and is
/// ready at its `response.function_call_arguments.done` if it has begun by
/// then, or else at its `output_item.done`: never under an id or a name
/// that a later event could still change.
#[derive(Debug, Default)]
pub(crate) struct ResponsesAssembler {
    collected: Collected,
    /// Item id (`fc_…`) to the call's position.
    items: HashMap<String, usize>,
    stop: Option<StopReason>,
}

impl ResponsesAssembler {
    /// The call of an item, kept unannounced (under its item id, with no
    /// name) if the server skipped `output_item.added`.
    fn call_of(&mut self, item_id: &str) -> Result<usize, StreamError> {
        if let Some(&position) = self.items.get(item_id) {
            return Ok(position);
        }
        let position = self.collected.add(PartialCall::new(item_id, ""))?;
        self.items.insert(item_id.to_string(), position);
        Ok(position)
    }

    /// `response.output_item.added` or `.done` of a `function_call` item.
    fn function_call_item(
        &mut self,
        item: &Value,
        done: bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let field = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
        };
        let item_id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let arguments = item.get("arguments").and_then(Value::as_str);
        let position = self.call_of(item_id)?;
        if !done {
            self.collected
                .push_arguments(position, arguments.unwrap_or_default())?;
            match (field("call_id"), field("name")) {
                (Some(id), Some(name)) => {
                    self.collected.identify(position, id, name, out)?;
                }
                // Kept, but not final: `done` may still say otherwise.
                (id, name) => self.collected.suppose(position, id, name)?,
            }
            return Ok(());
        }
        // The item's last word: what it leaves out stays as it was.
        let call = &self.collected.calls[position];
        let id = field("call_id").map_or_else(|| call.id.clone(), str::to_string);
        let name = field("name").map_or_else(|| call.name.clone(), str::to_string);
        let call = self.collected.identify(position, &id, &name, out)?;
        let call = match arguments {
            Some(arguments) => self.collected.set_arguments(position, arguments)?,
            None => call,
        };
        call.announce(true, out);
        Ok(())
    }
}

impl Assembler for ResponsesAssembler {
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, StreamError> {
        let value = parse_data(event)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        match kind {
            "response.output_text.delta" => self.collected.text(text("delta"), out)?,
            "response.output_item.added" | "response.output_item.done" => {
                let item = value.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    let done = kind == "response.output_item.done";
                    self.function_call_item(item, done, out)?;
                }
            }
            "response.function_call_arguments.delta" => {
                let position = self.call_of(text("item_id"))?;
                self.collected.push_arguments(position, text("delta"))?;
            }
            "response.function_call_arguments.done" => {
                let position = self.call_of(text("item_id"))?;
                let call = match value.get("arguments").and_then(Value::as_str) {
                    Some(arguments) => self.collected.set_arguments(position, arguments)?,
                    None => &mut self.collected.calls[position],
                };
                // A call whose id is not known yet waits for its item's `done`.
                if call.begun {
                    call.announce(true, out);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let response = value.get("response").unwrap_or(&Value::Null);
                self.stop = Some(stop_reason(response, !self.collected.calls.is_empty())?);
                return Ok(true);
            }
            "error" => {
                return Err(StreamError::Provider(
                    error_message(&json!({"error": value}))
                        .unwrap_or_else(|| format!("the stream reported an error: {value}")),
                ));
            }
            _ => {}
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
