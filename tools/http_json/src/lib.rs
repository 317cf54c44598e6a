//! `http_json`: call a JSON API — method, URL, query parameters, headers and
//! a JSON body — and return the status and the parsed JSON answer.
//!
//! Every request goes through the host's policy: with no policy, or a host
//! not on its `capabilities.http` list, the call ends in a `denied` error.
//! Credentials belong in the policy's `[secrets]`, which the host adds to
//! requests itself; this tool never sees them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolhost_sdk::http::{Request, with_query};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// Characters of a non-JSON answer returned as text.
const MAX_TEXT: usize = 20_000;
/// The largest body read, in bytes.
const MAX_BODY: usize = 8 << 20;

/// An HTTP method.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "UPPERCASE")]
enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// The call to make.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Call {
    /// An http or https URL.
    url: String,
    /// The method (default GET).
    #[serde(default)]
    method: Method,
    /// Query parameters added to the URL (strings, numbers or booleans).
    #[serde(default)]
    query: BTreeMap<String, Value>,
    /// Extra request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A JSON body to send.
    #[serde(default)]
    body: Option<Value>,
}

/// The answer.
#[derive(Serialize, JsonSchema)]
struct Answer {
    /// The HTTP status.
    status: u16,
    /// The URL that answered, after redirects.
    url: String,
    /// The media type of the answer.
    content_type: Option<String>,
    /// The answer parsed as JSON, when it is JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<Value>,
    /// The answer as text, when it is not JSON (cut to 20000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

fn call(_: &Ctx, input: Call) -> Result<Answer, ToolError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in &input.query {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ToolError::invalid_input(format!(
                    "query parameter `{key}` must be a string, number or boolean, not {other}"
                )));
            }
        };
        pairs.push((key.clone(), value));
    }
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = with_query(&input.url, &borrowed);
    let mut request = Request::new(input.method.as_str(), &url)
        .header("accept", "application/json")
        .max_body(MAX_BODY);
    for (name, value) in &input.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &input.body {
        request = request.json(body)?;
    }
    let response = request.send()?;
    if response.status == 429 || response.status >= 500 {
        return Err(response
            .error_for_status()
            .err()
            .unwrap_or_else(|| ToolError::retryable("the server answered with an error status")));
    }
    let content_type = response.content_type();
    let (json, text) = match serde_json::from_slice::<Value>(&response.body) {
        Ok(value) => (Some(value), None),
        Err(_) if response.body.is_empty() => (None, None),
        Err(_) => (None, Some(response.text().chars().take(MAX_TEXT).collect())),
    };
    Ok(Answer {
        status: response.status,
        url: response.url,
        content_type,
        json,
        text,
    })
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "http_json",
            "Call a JSON HTTP API: method, URL, query parameters, headers and an optional JSON \
             body; returns the status and the parsed JSON answer (4xx answers are returned, \
             not raised). Only hosts the tool's policy allows can be reached.",
            call,
        )
        .open_world(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_query_values_are_invalid_input() {
        let err = tools()[0]
            .call_json(r#"{"url": "http://x.test/", "query": {"a": [1]}}"#)
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(m) if m.contains("`a`")));
    }

    #[test]
    fn unknown_methods_are_invalid_input() {
        let err = tools()[0]
            .call_json(r#"{"url": "http://x.test/", "method": "BREW"}"#)
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }
}
