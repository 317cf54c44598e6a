//! `http-probe`: sends HTTP requests through the SDK and reports everything
//! it can observe (status, headers, body, the error it got, its own
//! environment), so tests can check what the host allowed, refused, added
//! or hid. Not a shipped tool.
//!
//! Tools: `request` (one request, redirects followed only if asked; never
//! fails, errors are reported), `get_json` (the SDK's one-liner, whose
//! errors are the tool's errors) and `count` (the same GET `n` times).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolhost_sdk::http::Request;
use toolhost_sdk::{Ctx, Tool, ToolError};

/// One request to send.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Ask {
    /// The URL.
    url: String,
    /// The method; GET if absent.
    #[serde(default)]
    method: Option<String>,
    /// Request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default)]
    body: Option<String>,
    /// Redirects to follow (0 if absent).
    #[serde(default)]
    follow: u8,
}

/// What the guest saw.
#[derive(Serialize, JsonSchema)]
struct Seen {
    status: Option<u16>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    /// `{kind, message}` of the error, if the request failed.
    error: Option<Value>,
    /// Every environment variable the guest can read.
    env: BTreeMap<String, String>,
}

fn request(_: &Ctx, ask: Ask) -> Result<Seen, ToolError> {
    let mut req =
        Request::new(ask.method.as_deref().unwrap_or("GET"), &ask.url).max_redirects(ask.follow);
    for (name, value) in &ask.headers {
        req = req.header(name, value);
    }
    if let Some(body) = ask.body {
        req = req.body(body);
    }
    let env = std::env::vars().collect();
    Ok(match req.send() {
        Ok(response) => Seen {
            status: Some(response.status),
            headers: response.headers.iter().cloned().collect(),
            body: Some(response.text()),
            error: None,
            env,
        },
        Err(error) => Seen {
            status: None,
            headers: BTreeMap::new(),
            body: None,
            error: Some(describe(&error)),
            env,
        },
    })
}

fn describe(error: &ToolError) -> Value {
    let kind = match error {
        ToolError::InvalidInput(_) => "invalid-input",
        ToolError::Failed(_) => "failed",
        ToolError::Retryable(_) => "retryable",
        ToolError::Denied(_) => "denied",
        _ => "other",
    };
    serde_json::json!({"kind": kind, "message": error.message()})
}

/// A URL.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Url {
    /// The URL.
    url: String,
}

fn get_json(_: &Ctx, input: Url) -> Result<Value, ToolError> {
    toolhost_sdk::http::get_json(&input.url)
}

/// A URL and a count.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Count {
    /// The URL.
    url: String,
    /// How many times to GET it.
    n: u32,
}

/// How the requests went.
#[derive(Serialize, JsonSchema)]
struct Counted {
    ok: u32,
    errors: Vec<Value>,
}

fn count(_: &Ctx, input: Count) -> Result<Counted, ToolError> {
    let mut counted = Counted {
        ok: 0,
        errors: Vec::new(),
    };
    for _ in 0..input.n {
        match toolhost_sdk::http::get(&input.url) {
            Ok(_) => counted.ok += 1,
            Err(error) => counted.errors.push(describe(&error)),
        }
    }
    Ok(counted)
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "request",
            "Send one HTTP request and report what came back.",
            request,
        ),
        Tool::new("get_json", "GET a URL and return its JSON body.", get_json),
        Tool::new("count", "GET a URL n times and count the outcomes.", count),
    ]
}

toolhost_sdk::export!(tools);
