//! HTTP from a tool, over the standard `wasi:http/outgoing-handler`.
//!
//! The host decides every request: a host that the tool's policy does not
//! list comes back as [`ToolError::Denied`], so a tool can pass the error
//! straight back to the model. Secrets the policy grants are added by the
//! host on the way out; a tool never sees or handles them.
//!
//! ```no_run
//! use serde::Deserialize;
//! use toolhost_sdk::{ToolError, http};
//!
//! #[derive(Deserialize)]
//! struct Weather { temperature: f64 }
//!
//! fn temperature(city: &str) -> Result<f64, ToolError> {
//!     let url = http::with_query("https://api.example.com/weather", &[("city", city)]);
//!     Ok(http::get_json::<Weather>(&url)?.temperature)
//! }
//! ```
//!
//! Redirects are followed by the SDK, not the host (up to five by default),
//! so each hop is checked against the policy like a request of its own.

mod url;
#[cfg(target_arch = "wasm32")]
mod wire;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::url::{Url, with_query};
use crate::ToolError;

/// The largest response body the SDK reads unless told otherwise (the host
/// may cap it lower).
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// An HTTP request being built. Send it with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    max_redirects: u8,
    max_body: usize,
}

/// A response: status, headers (names in lowercase) and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that answered, after any redirects.
    pub url: String,
}

impl Request {
    /// A request with any method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, ...).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            max_redirects: 5,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self, ToolError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            ToolError::failed(format!("could not encode the request body as JSON: {e}"))
        })?;
        Ok(self.header("content-type", "application/json").body(bytes))
    }

    /// How many redirects to follow (default 5; 0 returns the 3xx itself).
    pub fn max_redirects(mut self, max: u8) -> Self {
        self.max_redirects = max;
        self
    }

    /// The largest body to read; a longer one is an error (default [`DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends the request, following redirects. Any status is a response;
    /// use [`Response::error_for_status`] to turn 4xx and 5xx into errors.
    pub fn send(self) -> Result<Response, ToolError> {
        let mut url = Url::parse(&self.url).map_err(ToolError::invalid_input)?;
        let mut method = self.method.clone();
        let mut body = self.body.clone();
        let mut hops = 0;
        loop {
            let response = send_once(&method, &url, &self.headers, body.as_deref(), self.max_body)?;
            let location = response.header("location");
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            let (true, Some(location)) = (redirect && hops < self.max_redirects, location) else {
                return Ok(response);
            };
            url = url.join(location).map_err(|e| {
                ToolError::failed(format!(
                    "{url} redirected to {location:?}, which is not a URL: {e}"
                ))
            })?;
            if response.status == 303 || (matches!(response.status, 301 | 302) && method == "POST")
            {
                method = "GET".into();
                body = None;
            }
            hops += 1;
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn send_once(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    max_body: usize,
) -> Result<Response, ToolError> {
    wire::send(method, url, headers, body, max_body)
}

#[cfg(not(target_arch = "wasm32"))]
fn send_once(
    _: &str,
    url: &Url,
    _: &[(String, String)],
    _: Option<&[u8]>,
    _: usize,
) -> Result<Response, ToolError> {
    Err(ToolError::failed(format!(
        "cannot fetch {url}: HTTP needs a WebAssembly host that provides wasi:http"
    )))
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type without parameters, lowercase (`text/html`), if given.
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ToolError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ToolError::failed(format!(
                "{} answered with a body that is not the expected JSON: {e}",
                self.url
            ))
        })
    }

    /// `Ok(self)` for 1xx-3xx; 429 and 5xx become [`ToolError::Retryable`],
    /// other 4xx [`ToolError::Failed`], each with the start of the body.
    pub fn error_for_status(self) -> Result<Self, ToolError> {
        if self.status < 400 {
            return Ok(self);
        }
        let snippet: String = self.text().chars().take(300).collect();
        let message = format!(
            "{} answered HTTP {}: {}",
            self.url,
            self.status,
            snippet.trim()
        );
        Err(if self.status == 429 || self.status >= 500 {
            ToolError::retryable(message)
        } else {
            ToolError::failed(message)
        })
    }
}

/// `GET url` and return the response, whatever its status.
pub fn get(url: &str) -> Result<Response, ToolError> {
    Request::get(url).send()
}

/// `GET url` and return the body as text; a 4xx or 5xx is an error.
pub fn get_text(url: &str) -> Result<String, ToolError> {
    Ok(get(url)?.error_for_status()?.text())
}

/// `GET url` and parse the body as JSON; a 4xx or 5xx is an error.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ToolError> {
    Request::get(url)
        .header("accept", "application/json")
        .send()?
        .error_for_status()?
        .json()
}

/// `POST url` with `body` as JSON and parse the answer as JSON; a 4xx or 5xx is an error.
pub fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, ToolError> {
    Request::post(url)
        .header("accept", "application/json")
        .json(body)?
        .send()?
        .error_for_status()?
        .json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "Text/HTML; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
            url: "http://x.test/".into(),
        }
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        assert!(response(200, "").error_for_status().is_ok());
        assert!(
            matches!(response(404, "no").error_for_status(), Err(ToolError::Failed(m)) if m.contains("404") && m.contains("no"))
        );
        assert!(matches!(
            response(503, "").error_for_status(),
            Err(ToolError::Retryable(_))
        ));
        assert!(matches!(
            response(429, "").error_for_status(),
            Err(ToolError::Retryable(_))
        ));
    }

    #[test]
    fn headers_and_content_type() {
        let r = response(200, "{\"a\": 1}");
        assert_eq!(r.header("Content-Type"), Some("Text/HTML; charset=utf-8"));
        assert_eq!(r.content_type().as_deref(), Some("text/html"));
        assert_eq!(r.json::<serde_json::Value>().unwrap()["a"], 1);
    }

    #[test]
    fn outside_a_host_sending_fails_cleanly() {
        assert!(matches!(get("http://x.test/"), Err(ToolError::Failed(_))));
        assert!(matches!(get("not a url"), Err(ToolError::InvalidInput(_))));
    }
}
