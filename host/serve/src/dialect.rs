//! `POST /v1/tool-calls` speaks the caller's dialect: an OpenAI assistant
//! message's `tool_calls`, or Anthropic `tool_use` blocks, in; the messages
//! to append to the conversation, out.

use serde_json::{Value, json};

use toolhost_runtime::CallRecord;

/// Which provider's shapes a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    Anthropic,
}

/// One call asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Requested {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The arguments as JSON text (OpenAI sends text; Anthropic an object).
    pub(crate) arguments: String,
}

/// Reads the calls out of a body: an assistant message (`tool_calls` or
/// `content`), an object with `tool_calls`, or a bare list of either kind.
pub(crate) fn parse(body: &Value) -> Result<(Dialect, Vec<Requested>), String> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(map) => match (map.get("tool_calls"), map.get("content")) {
            (Some(Value::Array(items)), _) | (None, Some(Value::Array(items))) => items,
            _ => return Err("expected `tool_calls` (OpenAI) or `content` with `tool_use` blocks (Anthropic), or a list of either".into()),
        },
        _ => return Err("the body must be a JSON object or list".into()),
    };
    let anthropic = items.iter().any(|item| item["type"] == "tool_use");
    let mut calls = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let at = |message: &str| format!("call {index}: {message}");
        if anthropic {
            match item["type"].as_str() {
                Some("tool_use") => {}
                // Text and thinking blocks ride along in an assistant message.
                Some(_) => continue,
                None => return Err(at("a content block needs a `type`")),
            }
        }
        let id = item["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| at("`id` must be a non-empty string"))?;
        if anthropic {
            let name = item["name"]
                .as_str()
                .ok_or_else(|| at("`name` must be a string"))?;
            let input = item.get("input").ok_or_else(|| at("`input` is missing"))?;
            calls.push(Requested {
                id: id.into(),
                name: name.into(),
                arguments: input.to_string(),
            });
        } else {
            if item.get("type").is_some_and(|t| t != "function") {
                return Err(at("only `function` tool calls can be run"));
            }
            let function = &item["function"];
            let name = function["name"]
                .as_str()
                .ok_or_else(|| at("`function.name` must be a string"))?;
            let arguments = match &function["arguments"] {
                Value::String(text) => text.clone(),
                Value::Null => return Err(at("`function.arguments` is missing")),
                // Lenient: an object where a string belongs.
                other => other.to_string(),
            };
            calls.push(Requested {
                id: id.into(),
                name: name.into(),
                arguments,
            });
        }
    }
    if calls.is_empty() {
        return Err("there are no tool calls in the body".into());
    }
    let dialect = if anthropic {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    Ok((dialect, calls))
}

/// One call's result as an OpenAI `tool` message or an Anthropic
/// `tool_result` block.
pub(crate) fn result_part(dialect: Dialect, id: &str, record: &CallRecord) -> Value {
    let (content, is_error) = record.outcome.model_text();
    match dialect {
        Dialect::OpenAi => json!({"role": "tool", "tool_call_id": id, "content": content}),
        Dialect::Anthropic => {
            let mut block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
            if is_error {
                block["is_error"] = json!(true);
            }
            block
        }
    }
}

/// What to append to the conversation: the OpenAI `tool` messages, or one
/// Anthropic `user` message holding every `tool_result` block, in call order.
pub(crate) fn messages(dialect: Dialect, parts: Vec<Value>) -> Value {
    match dialect {
        Dialect::OpenAi => Value::Array(parts),
        Dialect::Anthropic => json!([{"role": "user", "content": parts}]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_tool_calls_parse_from_a_message_or_a_list() {
        let call = json!({"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\":\"1+1\"}"}});
        for body in [
            json!({"role": "assistant", "tool_calls": [call]}),
            json!([call]),
        ] {
            let (dialect, calls) = parse(&body).unwrap();
            assert_eq!(dialect, Dialect::OpenAi);
            assert_eq!(calls[0].name, "calc");
            assert_eq!(calls[0].arguments, "{\"expression\":\"1+1\"}");
        }
    }

    #[test]
    fn anthropic_blocks_parse_and_skip_text() {
        let body = json!({"role": "assistant", "content": [
            {"type": "text", "text": "let me"},
            {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expression": "2"}},
        ]});
        let (dialect, calls) = parse(&body).unwrap();
        assert_eq!(dialect, Dialect::Anthropic);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments, "{\"expression\":\"2\"}");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        for (body, needle) in [
            (json!(3), "object or list"),
            (json!({"messages": []}), "tool_calls"),
            (json!([]), "no tool calls"),
            (
                json!([{"type": "function", "function": {"name": "x", "arguments": "{}"}}]),
                "`id`",
            ),
            (
                json!([{"id": "a", "type": "function", "function": {"arguments": "{}"}}]),
                "function.name",
            ),
            (
                json!([{"id": "a", "type": "tool_use", "name": "x"}]),
                "`input`",
            ),
        ] {
            let error = parse(&body).unwrap_err();
            assert!(error.contains(needle), "{error} should mention {needle}");
        }
    }
}
