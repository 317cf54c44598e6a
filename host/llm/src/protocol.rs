//! What the three protocol modules share: the request, the streaming
//! assembler interface, and the tool export.

use serde_json::{Value, json};

use super::assembly::StreamError;
use super::sse::SseEvent;
use super::types::{Message, ModelReply, StreamEvent, excerpt};
use toolhost_runtime::ToolInfo;
use toolhost_runtime::formats::{self, Format};

/// One request to a model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelRequest<'a> {
    /// The model's name.
    pub(crate) model: &'a str,
    /// Instructions, sent the way each provider takes them.
    pub(crate) system: Option<&'a str>,
    /// The conversation so far.
    pub(crate) messages: &'a [Message],
    /// The tools the model may call.
    pub(crate) tools: &'a [ToolInfo],
    /// The reply's token limit.
    pub(crate) max_tokens: u32,
}

/// Turns one protocol's stream events into [`StreamEvent`]s and, at the end,
/// a [`ModelReply`].
pub(crate) trait Assembler: Send {
    /// Takes one SSE event. Returns `Ok(true)` when the provider said the
    /// reply is complete, `Err` when it reported an error in the stream or
    /// changed a call already announced.
    fn feed(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<bool, StreamError>;

    /// The stream is over, as `end` says. Every call not yet announced is
    /// announced now (those whose arguments never completed too: the agent
    /// turns them into error results the model can read).
    fn finish(&mut self, end: End, out: &mut Vec<StreamEvent>) -> ModelReply;
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The provider's terminator arrived.
    Terminated,
    /// The connection closed on a line end, without the terminator.
    Closed,
    /// The connection closed inside a line (dropped unread).
    Cut,
}

/// Parses one SSE data payload as JSON, naming the protocol on failure.
pub(crate) fn parse_data(event: &SseEvent) -> Result<Value, String> {
    serde_json::from_str(&event.data).map_err(|e| {
        format!(
            "a stream event is not JSON ({e}): {}",
            excerpt(&event.data, 200)
        )
    })
}

/// A provider's error object (`{"error": {"message": …}}` or
/// `{"error": "…"}`) as one line. An `error` that says no message (a code
/// alone, say) is an error all the same, quoted.
pub(crate) fn error_message(value: &Value) -> Option<String> {
    let error = value.get("error").filter(|error| !error.is_null())?;
    // Never empty, which would read as no reason at all.
    let said = |text: &str| {
        if text.trim().is_empty() {
            quoted("")
        } else {
            text.to_string()
        }
    };
    if let Some(text) = error.as_str() {
        return Some(said(text));
    }
    let Some(message) = error.get("message").and_then(Value::as_str) else {
        return Some(quoted(&error.to_string()));
    };
    let message = said(message);
    Some(match error.get("type").and_then(Value::as_str) {
        Some(kind) => format!("{kind}: {message}"),
        None => message,
    })
}

/// The error an event in an OpenAI-compatible stream reports, if it
/// reports one: an `error` object, an object that is itself an error
/// (`{"object": "error", "message": …}`, as vLLM sends), or any event
/// named `error`, whatever its data.
pub(crate) fn stream_error(event: &SseEvent, value: Option<&Value>) -> Option<String> {
    if let Some(message) = value.and_then(error_message) {
        return Some(message);
    }
    let itself = value.filter(|value| value.get("object").and_then(Value::as_str) == Some("error"));
    if event.event.as_deref() != Some("error") && itself.is_none() {
        return None;
    }
    let message = value
        .and_then(|value| value.get("message"))
        .and_then(Value::as_str)
        .filter(|message| !message.trim().is_empty());
    Some(match message {
        Some(message) => message.to_string(),
        None => quoted(&event.data),
    })
}

/// An error the server reported without a message, as what it sent.
fn quoted(sent: &str) -> String {
    let sent = sent.trim();
    if sent.is_empty() {
        "the server reported an error without a message".to_string()
    } else {
        format!("the server reported an error: {}", excerpt(sent, 200))
    }
}

/// True when OpenAI's strict mode accepts the schema as it is: every object
/// closes `additionalProperties` and requires all its properties, and no
/// keyword strict mode refuses appears. Other schemas are sent without
/// `strict`, so the model is guided but not constrained.
pub(crate) fn strict_compatible(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            if [
                "oneOf",
                "allOf",
                "not",
                "if",
                "patternProperties",
                "dependentRequired",
            ]
            .iter()
            .any(|key| map.contains_key(*key))
            {
                return false;
            }
            if let Some(properties) = map.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if map.get("additionalProperties") != Some(&Value::Bool(false))
                    || !properties
                        .keys()
                        .all(|key| required.contains(&key.as_str()))
                {
                    return false;
                }
            } else if map.get("type").and_then(Value::as_str) == Some("object")
                && map.get("additionalProperties") != Some(&Value::Bool(false))
            {
                return false;
            }
            map.values().all(strict_compatible)
        }
        Value::Array(items) => items.iter().all(strict_compatible),
        _ => true,
    }
}

/// One tool as a Chat Completions `tools` entry, strict when compatible.
pub(crate) fn chat_tool(info: &ToolInfo) -> Value {
    let mut tool = formats::tool(info, Format::OpenAi);
    if strict_compatible(&tool["function"]["parameters"]) {
        tool["function"]["strict"] = json!(true);
    }
    tool
}

/// One tool as a Responses API `tools` entry (flat, no `function` wrapper).
pub(crate) fn responses_tool(info: &ToolInfo) -> Value {
    let parameters = formats::model_schema(&info.input_schema);
    let strict = strict_compatible(&parameters);
    json!({
        "type": "function",
        "name": info.name,
        "description": info.description,
        "parameters": parameters,
        "strict": strict,
    })
}

/// One tool as an Anthropic `tools` entry.
pub(crate) fn anthropic_tool(info: &ToolInfo) -> Value {
    formats::tool(info, Format::Anthropic)
}

/// Feeds SSE `text` to `assembler` in pieces of `piece` bytes, as a
/// network would deliver it; returns every event and the reply.
#[cfg(test)]
pub(crate) fn replay(
    assembler: &mut dyn Assembler,
    text: &str,
    piece: usize,
) -> Result<(Vec<StreamEvent>, ModelReply), StreamError> {
    let mut parser = super::sse::SseParser::default();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut complete = false;
    for chunk in text.as_bytes().chunks(piece) {
        parser
            .feed(chunk, &mut events)
            .map_err(|_| StreamError::Provider("line too long".into()))?;
        for event in events.drain(..) {
            complete |= assembler.feed(&event, &mut out)?;
        }
    }
    let ending = parser.finish(&mut events);
    for event in events.drain(..) {
        complete |= assembler.feed(&event, &mut out)?;
    }
    let end = match (complete, ending) {
        (true, _) => End::Terminated,
        (false, super::sse::Ending::Whole) => End::Closed,
        (false, super::sse::Ending::HalfLine) => End::Cut,
    };
    let reply = assembler.finish(end, &mut out);
    Ok((out, reply))
}

/// Splits `arguments` into pieces of `size` characters, the way models
/// stream them (an escape sequence may be cut in two).
#[cfg(test)]
pub(crate) fn pieces(arguments: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The position of the first event matching `predicate`.
#[cfg(test)]
pub(crate) fn position(events: &[StreamEvent], predicate: impl Fn(&StreamEvent) -> bool) -> usize {
    events
        .iter()
        .position(predicate)
        .unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

/// True for the ready event of the call `id`.
#[cfg(test)]
pub(crate) fn ready(id: &str) -> impl Fn(&StreamEvent) -> bool + '_ {
    move |event| matches!(event, StreamEvent::CallReady(call) if call.id == id)
}

/// True for the begin event of the call `id`.
#[cfg(test)]
pub(crate) fn begun(id: &str) -> impl Fn(&StreamEvent) -> bool + '_ {
    move |event| matches!(event, StreamEvent::CallBegun { id: begun, .. } if begun == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_only_for_closed_fully_required_objects() {
        let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
        assert!(strict_compatible(&closed));
        let optional = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"], "additionalProperties": false});
        assert!(!strict_compatible(&optional));
        let open =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(!strict_compatible(&open));
        let nested_open = json!({"type": "object", "properties": {"a": {"type": "object"}}, "required": ["a"], "additionalProperties": false});
        assert!(!strict_compatible(&nested_open));
        let one_of = json!({"type": "object", "oneOf": [], "additionalProperties": false});
        assert!(!strict_compatible(&one_of));
    }

    #[test]
    fn provider_errors_read_either_shape() {
        assert_eq!(
            error_message(&json!({"error": {"type": "overloaded_error", "message": "busy"}})),
            Some("overloaded_error: busy".into())
        );
        assert_eq!(
            error_message(&json!({"error": "nope"})),
            Some("nope".into())
        );
        assert_eq!(error_message(&json!({"ok": true})), None);
        assert_eq!(error_message(&json!({"error": null})), None);
        assert_eq!(
            error_message(&json!({"error": {"code": 502}})),
            Some(r#"the server reported an error: {"code":502}"#.into())
        );
        // Never an empty message, which would read as no reason at all.
        assert!(
            !error_message(&json!({"error": " "}))
                .unwrap()
                .trim()
                .is_empty()
        );
    }
}
