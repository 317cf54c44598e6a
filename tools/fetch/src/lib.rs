//! `fetch`: GET a URL and return its status, content type and text, with
//! HTML reduced to readable text, capped to a length a model can take.
//!
//! Every request goes through the host's policy: with no policy, or a host
//! not on its `capabilities.http` list, the call ends in a `denied` error.

mod html;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::http::Request;
use toolhost_sdk::{Ctx, Tool, ToolError};

/// Default and largest number of characters returned.
const DEFAULT_CHARS: usize = 20_000;
const MAX_CHARS: usize = 200_000;
/// The largest body read, in bytes.
const MAX_BODY: usize = 8 << 20;

/// What to fetch.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Fetch {
    /// An http or https URL.
    url: String,
    /// Return at most this many characters of text (default 20000, at most 200000).
    #[serde(default)]
    max_chars: Option<usize>,
    /// Return HTML as it came instead of reducing it to text.
    #[serde(default)]
    raw: bool,
}

/// What came back.
#[derive(Serialize, JsonSchema)]
struct Fetched {
    /// The URL that answered, after redirects.
    url: String,
    /// The HTTP status.
    status: u16,
    /// The media type, such as `text/html`.
    content_type: Option<String>,
    /// The page title, for HTML.
    title: Option<String>,
    /// The text (HTML reduced to readable text unless `raw`).
    text: String,
    /// Whether `text` was cut at `max_chars`.
    truncated: bool,
}

fn fetch(ctx: &Ctx, input: Fetch) -> Result<Fetched, ToolError> {
    let max_chars = input.max_chars.unwrap_or(DEFAULT_CHARS);
    if !(1..=MAX_CHARS).contains(&max_chars) {
        return Err(ToolError::invalid_input(format!(
            "max_chars must be from 1 to {MAX_CHARS}, got {max_chars}"
        )));
    }
    let response = Request::get(&input.url)
        .header(
            "accept",
            "text/html, text/plain;q=0.9, application/json;q=0.9, */*;q=0.5",
        )
        .max_body(MAX_BODY)
        .send()?
        .error_for_status()?;
    let content_type = response.content_type();
    ctx.debug(&format!(
        "{} answered {} with {} bytes of {:?}",
        response.url,
        response.status,
        response.body.len(),
        content_type
    ));
    let kind = content_type.as_deref().unwrap_or("text/plain");
    let is_html = kind == "text/html" || kind == "application/xhtml+xml";
    let is_text = kind.starts_with("text/")
        || kind.ends_with("json")
        || kind.ends_with("xml")
        || kind == "application/javascript";
    if !is_html && !is_text {
        return Err(ToolError::failed(format!(
            "{} is {kind}, not text; fetch returns text only",
            response.url
        )));
    }
    let body = response.text();
    let (title, text) = if is_html && !input.raw {
        let page = html::to_text(&body);
        (page.title, page.text)
    } else {
        (None, body)
    };
    let (text, truncated) = cut(text, max_chars);
    Ok(Fetched {
        url: response.url,
        status: response.status,
        content_type,
        title,
        text,
        truncated,
    })
}

/// The first `max` characters of `text`, and whether anything was cut.
fn cut(text: String, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (text[..end].to_string(), true),
        None => (text, false),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "fetch",
            "Fetch a web page or text document by URL (GET) and return its status, content \
             type, title and readable text (HTML reduced to text). Only hosts the tool's \
             policy allows can be reached.",
            fetch,
        )
        .read_only()
        .open_world(),
    ]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("héllo".into(), 2), ("hé".to_string(), true));
        assert_eq!(cut("hi".into(), 2), ("hi".to_string(), false));
    }

    #[test]
    fn bad_input_is_refused_before_any_request() {
        let tool = &tools()[0];
        let err = tool
            .call_json(r#"{"url": "http://x.test/", "max_chars": 0}"#)
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
        let err = tool.call_json(r#"{"url": "gopher://x"}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }
}
