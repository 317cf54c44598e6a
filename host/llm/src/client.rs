//! The HTTP side of the providers: one client for all three protocols, with
//! retries on 429 and 5xx (honouring `Retry-After`), timeouts, and errors
//! that name the provider and the status.

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use super::assembly::StreamError;
use super::body::{self, BodyEnd, MAX_ERROR_BODY};
use super::protocol::{ModelRequest, error_message};
use super::reader::{ReadError, StreamReader};
use super::sse::MAX_LINE;
use super::types::{Message, ModelReply, Provider, StreamEvent, excerpt};
use super::{anthropic, openai_chat, openai_responses};
use toolhost_runtime::ToolInfo;

/// Where and how to reach a model. The API key never appears in `Debug`.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The wire protocol.
    pub provider: Provider,
    /// The model's name.
    pub model: String,
    /// The base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The API key; `None` sends no key (local servers).
    pub api_key: Option<String>,
    /// Token limit of each reply.
    pub max_tokens: u32,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for a whole non-streaming request.
    pub request_timeout: Duration,
    /// Longest wait for a streamed reply's status and headers, and longest
    /// silence between two pieces of any reply body (a stream, a reply in
    /// one piece, an error's body).
    pub idle_timeout: Duration,
    /// Retries after a 429, a 5xx or a failed connection (not counting the first try).
    pub retries: u32,
    /// The first backoff; it doubles with every retry.
    pub backoff: Duration,
    /// The longest wait before a retry; a `Retry-After` beyond it ends the retries.
    pub max_backoff: Duration,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// The provider's own endpoint, the provider's default model, no key.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            model: provider.default_model().to_string(),
            base_url: provider.default_base_url().to_string(),
            api_key: None,
            max_tokens: 4096,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            retries: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// Like [`ClientConfig::new`], with the key from the provider's variable
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) when it is set.
    pub fn from_env(provider: Provider) -> Self {
        let mut config = Self::new(provider);
        config.api_key = std::env::var(provider.key_env())
            .ok()
            .filter(|key| !key.trim().is_empty());
        config
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the base URL.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the API key.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }
}

/// Why a model request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The provider's own endpoint needs a key and none was given.
    #[error(
        "{provider}: no API key; set {env}, or pass --base-url for a local server that needs none"
    )]
    MissingKey {
        /// The provider.
        provider: Provider,
        /// The variable to set.
        env: &'static str,
    },
    /// The server answered with an error status, after any retries.
    #[error("{provider}: {url} answered HTTP {status} after {attempts} attempt(s): {message}")]
    Status {
        /// The provider.
        provider: Provider,
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Tries made.
        attempts: u32,
        /// The server's error message, or the start of its body.
        message: String,
    },
    /// The request could not be sent or its reply read, after any retries.
    #[error("{provider}: {url}: {message} (after {attempts} attempt(s))")]
    Transport {
        /// The provider.
        provider: Provider,
        /// The endpoint.
        url: String,
        /// Tries made.
        attempts: u32,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The stream went silent for longer than the idle timeout.
    #[error("{provider}: the stream sent nothing for {seconds} s and was abandoned")]
    Idle {
        /// The provider.
        provider: Provider,
        /// The idle timeout.
        seconds: u64,
    },
    /// The reply could not be understood.
    #[error("{provider}: the reply could not be understood: {message}")]
    Protocol {
        /// The provider.
        provider: Provider,
        /// What was wrong.
        message: String,
    },
    /// The reply (or the stream) carried an error from the provider.
    #[error("{provider}: the provider reported an error: {message}")]
    Provider {
        /// The provider.
        provider: Provider,
        /// Its message.
        message: String,
    },
    /// The stream changed a tool call after announcing it ready (its id,
    /// its tool or its arguments). The call may have started as announced,
    /// so the reply is not one the agent can answer.
    #[error("{provider}: the stream changed tool call `{id}` after announcing it ready: {change}")]
    CallChanged {
        /// The provider.
        provider: Provider,
        /// The call's id as announced.
        id: String,
        /// What the stream changed.
        change: String,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// Talks to one model over one protocol. Cheap to clone.
#[derive(Clone)]
pub struct ModelClient {
    config: ClientConfig,
    url: String,
    http: reqwest::Client,
}

impl fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ModelClient {
    /// A client for `config`. Fails when the provider's own endpoint is used
    /// without a key. TLS is rustls; if the process has no rustls crypto
    /// provider yet, ring is installed as the default.
    pub fn new(config: ClientConfig) -> Result<Self, LlmError> {
        if config.api_key.is_none() && config.base_url == config.provider.default_base_url() {
            return Err(LlmError::MissingKey {
                provider: config.provider,
                env: config.provider.key_env(),
            });
        }
        // Err means a provider is installed already, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("toolhost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Client(chain(&e)))?;
        let url = format!(
            "{}{}",
            config.base_url.trim_end_matches('/'),
            config.provider.path()
        );
        Ok(Self { config, url, http })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.config.provider
    }

    fn request<'a>(
        &'a self,
        system: Option<&'a str>,
        messages: &'a [Message],
        tools: &'a [ToolInfo],
    ) -> ModelRequest<'a> {
        ModelRequest {
            model: &self.config.model,
            system,
            messages,
            tools,
            max_tokens: self.config.max_tokens,
        }
    }

    fn body(&self, request: &ModelRequest<'_>, stream: bool) -> Value {
        match self.config.provider {
            Provider::OpenAiChat => openai_chat::request_body(request, stream),
            Provider::OpenAiResponses => openai_responses::request_body(request, stream),
            Provider::Anthropic => anthropic::request_body(request, stream),
        }
    }

    fn parse(&self, body: &Value) -> Result<ModelReply, LlmError> {
        let parsed = match self.config.provider {
            Provider::OpenAiChat => openai_chat::parse_reply(body),
            Provider::OpenAiResponses => openai_responses::parse_reply(body),
            Provider::Anthropic => anthropic::parse_reply(body),
        };
        parsed.map_err(|message| {
            if error_message(body).is_some() {
                LlmError::Provider {
                    provider: self.config.provider,
                    message,
                }
            } else {
                LlmError::Protocol {
                    provider: self.config.provider,
                    message,
                }
            }
        })
    }

    /// Asks for one whole reply.
    pub async fn complete(
        &self,
        system: Option<&str>,
        messages: &[Message],
        tools: &[ToolInfo],
    ) -> Result<ModelReply, LlmError> {
        let body = self.body(&self.request(system, messages, tools), false);
        let mut response = self.send(&body, false).await?;
        let bytes = self.whole_body(&mut response).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| LlmError::Protocol {
            provider: self.config.provider,
            message: format!(
                "the body is not JSON ({e}): {}",
                excerpt(&String::from_utf8_lossy(&bytes), 300)
            ),
        })?;
        self.parse(&value)
    }

    /// Asks for a streamed reply, handing each piece to `on_event` as it
    /// arrives (tool calls the moment their arguments are complete), and
    /// returns the whole reply. A stream that breaks off (no terminator, or
    /// a half-written last line, which is dropped unread) is not an error:
    /// the reply says [`StopReason::Truncated`](super::StopReason::Truncated).
    /// An error event in the stream is [`LlmError::Provider`].
    pub async fn stream(
        &self,
        system: Option<&str>,
        messages: &[Message],
        tools: &[ToolInfo],
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelReply, LlmError> {
        let provider = self.config.provider;
        let body = self.body(&self.request(system, messages, tools), true);
        let mut response = self.send(&body, true).await?;
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A server that ignores `stream: true` and answers in one piece.
            let bytes = self.whole_body(&mut response).await?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| LlmError::Protocol {
                provider,
                message: format!("expected an event stream or JSON, got neither ({e})"),
            })?;
            let reply = self.parse(&value)?;
            if !reply.message.text.is_empty() {
                on_event(StreamEvent::Text(reply.message.text.clone()));
            }
            for call in &reply.message.calls {
                on_event(StreamEvent::CallReady(call.clone()));
            }
            return Ok(reply);
        }
        let mut reader = StreamReader::new(provider);
        let read_error = |error| match error {
            ReadError::TooLong => too_long(provider),
            ReadError::Stream(StreamError::Provider(message)) => {
                LlmError::Provider { provider, message }
            }
            ReadError::Stream(StreamError::CallChanged { id, change }) => LlmError::CallChanged {
                provider,
                id,
                change,
            },
            ReadError::Stream(error @ StreamError::TooLarge(_)) => LlmError::Protocol {
                provider,
                message: error.to_string(),
            },
        };
        loop {
            let chunk = match tokio::time::timeout(self.config.idle_timeout, response.chunk()).await
            {
                Err(_) => {
                    return Err(LlmError::Idle {
                        provider,
                        seconds: self.config.idle_timeout.as_secs(),
                    });
                }
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(error)) => {
                    tracing::warn!(%provider, error = %chain(&error), "the stream broke off");
                    break;
                }
            };
            if reader.feed(&chunk, on_event).map_err(read_error)? {
                break;
            }
        }
        reader.finish(on_event).map_err(read_error)
    }

    /// A reply in one piece: at most [`MAX_LINE`] bytes, as an event of a
    /// stream may be, with no silence longer than the idle timeout, within
    /// the request timeout in all.
    async fn whole_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, LlmError> {
        let provider = self.config.provider;
        let read = body::read(
            response,
            MAX_LINE,
            self.config.idle_timeout,
            self.config.request_timeout,
        )
        .await;
        match read.end {
            BodyEnd::Whole => Ok(read.bytes),
            BodyEnd::Cut => Err(LlmError::Protocol {
                provider,
                message: format!("the reply is longer than {} MiB", MAX_LINE >> 20),
            }),
            BodyEnd::Silent => Err(LlmError::Idle {
                provider,
                seconds: self.config.idle_timeout.as_secs(),
            }),
            BodyEnd::Late => Err(LlmError::Protocol {
                provider,
                message: format!(
                    "the reply did not end within {} ms (the request timeout)",
                    self.config.request_timeout.as_millis()
                ),
            }),
            BodyEnd::Broken(error) => Err(self.transport(1, &error)),
        }
    }

    /// Sends `body`, retrying 429, 5xx and failed connections. A streamed
    /// request waits for its status and headers no longer than the idle
    /// timeout (a whole request's timeout covers a non-streamed one).
    async fn send(&self, body: &Value, stream: bool) -> Result<reqwest::Response, LlmError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            request = match (self.config.provider, &self.config.api_key) {
                (Provider::Anthropic, key) => {
                    let request = request.header("anthropic-version", anthropic::API_VERSION);
                    match key {
                        Some(key) => request.header("x-api-key", key),
                        None => request,
                    }
                }
                (_, Some(key)) => request.bearer_auth(key),
                (_, None) => request,
            };
            request = if stream {
                request.header(ACCEPT, "text/event-stream")
            } else {
                request.timeout(self.config.request_timeout)
            };
            let retries_left = attempt <= self.config.retries;
            let sent = if stream {
                let idle = self.config.idle_timeout;
                match tokio::time::timeout(idle, request.send()).await {
                    Ok(sent) => sent,
                    Err(_) if retries_left => {
                        tracing::info!(provider = %self.config.provider, ?idle, "no response head; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    Err(_) => {
                        return Err(LlmError::Transport {
                            provider: self.config.provider,
                            url: self.url.clone(),
                            attempts: attempt,
                            message: format!(
                                "no response within {} ms of the request (the idle timeout)",
                                idle.as_millis()
                            ),
                        });
                    }
                }
            } else {
                request.send().await
            };
            match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let wait = retry_after(response.headers());
                    // Whatever arrives within the cap and one idle timeout in
                    // all: enough for a message, never a hang.
                    let idle = self.config.idle_timeout;
                    let read = body::read(&mut response, MAX_ERROR_BODY, idle, idle).await;
                    let text = String::from_utf8_lossy(&read.bytes);
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|value| error_message(&value))
                        .unwrap_or_else(|| excerpt(text.trim(), 300));
                    let retryable = matches!(status, 408 | 409 | 429 | 500..=599);
                    let delay = wait.unwrap_or_else(|| self.backoff(attempt));
                    if retryable && retries_left && delay <= self.config.max_backoff {
                        tracing::info!(provider = %self.config.provider, status, ?delay, "retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(LlmError::Status {
                        provider: self.config.provider,
                        url: self.url.clone(),
                        status,
                        attempts: attempt,
                        message,
                    });
                }
                Err(error) if retries_left && (error.is_connect() || error.is_timeout()) => {
                    tracing::info!(provider = %self.config.provider, error = %chain(&error), "retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(error) => return Err(self.transport(attempt, &error)),
            }
        }
    }

    /// Exponential backoff with a little jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 1000);
        (base + base * jitter / 4000).min(self.config.max_backoff)
    }

    fn transport(&self, attempts: u32, error: &reqwest::Error) -> LlmError {
        LlmError::Transport {
            provider: self.config.provider,
            url: self.url.clone(),
            attempts,
            message: chain(error),
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (any form RFC 9110
/// accepts: IMF-fixdate, RFC 850, asctime), or OpenAI's `retry-after-ms`.
/// The server's value is not trusted: a negative, NaN or unreadable one is
/// ignored (the client's own backoff applies), a date in the past means
/// now, and one too large for a [`Duration`] (`1e300`, `inf`) reads as
/// [`Duration::MAX`]. The wait is capped by `max_backoff`: a longer one is
/// never slept, it ends the retries.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

/// [`retry_after`] as of `now`.
fn retry_after_at(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let number = |text: &str| text.parse::<f64>().ok().filter(|x| *x >= 0.0);
    let seconds = |secs: f64| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
    if let Some(ms) = header("retry-after-ms").and_then(number) {
        return Some(seconds(ms / 1e3));
    }
    let text = header("retry-after")?;
    if let Some(secs) = number(text) {
        return Some(seconds(secs));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The stream sent a line, or an event, beyond the parser's cap.
fn too_long(provider: Provider) -> LlmError {
    LlmError::Protocol {
        provider,
        message: "a stream line or event is longer than 16 MiB".into(),
    }
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_milliseconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        // 1994-11-06T08:49:37Z, the example date of RFC 9110.
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let at = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", value.parse().unwrap());
            retry_after_at(&headers, now)
        };
        for date in [
            "Sun, 06 Nov 1994 08:49:40 GMT",
            "Sunday, 06-Nov-94 08:49:40 GMT",
            "Sun Nov  6 08:49:40 1994",
        ] {
            assert_eq!(at(date), Some(Duration::from_secs(3)), "{date}");
        }
        // A date already past means now; far ahead, a wait no backoff allows.
        assert_eq!(at("Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert!(at("Fri, 31 Dec 9999 23:59:59 GMT").unwrap() > Duration::from_secs(1 << 37));
        // Almost a date: ignored, never a panic.
        for junk in [
            "Sun, 06 Nov 1994 08:49:40",
            "Sun, 31 Feb 1994 08:49:40 GMT",
            "Sun, 06 Nov 1994 25:49:40 GMT",
            "Sun, 06 Nov 99999 08:49:40 GMT",
            "Sun, 06 Nov 1994 08:49:40 GMT GMT",
            "Sun, 06 Nov 1994 08:49:40 GMT, 1",
        ] {
            assert_eq!(at(junk), None, "{junk}");
        }
    }

    #[test]
    fn hostile_retry_after_values_never_panic() {
        // Beyond any Duration: a wait longer than `max_backoff`, so no retry.
        for huge in ["99999999999999999999", "1e300", "inf", "+inf", "Infinity"] {
            for name in ["retry-after", "retry-after-ms"] {
                let mut headers = HeaderMap::new();
                headers.insert(name, huge.parse().unwrap());
                let wait = retry_after(&headers).unwrap();
                assert!(
                    wait > Duration::from_secs(1 << 40),
                    "{name}: {huge}: {wait:?}"
                );
            }
        }
        // Meaningless: ignored, so the client's own backoff applies.
        for junk in ["-1", "-inf", "NaN", "nan", "soon", ""] {
            for name in ["retry-after", "retry-after-ms"] {
                let mut headers = HeaderMap::new();
                headers.insert(name, junk.parse().unwrap());
                assert_eq!(retry_after(&headers), None, "{name}: {junk}");
            }
        }
    }

    /// A client of the server at `base_url` that gives up after 300 ms of
    /// silence and never retries.
    fn impatient(base_url: &str) -> ModelClient {
        let mut config = ClientConfig::new(Provider::OpenAiChat).base_url(base_url);
        config.idle_timeout = Duration::from_millis(300);
        config.retries = 0;
        ModelClient::new(config).unwrap()
    }

    /// Streams one reply from `client`; a call still running after 10 s
    /// is a hang.
    async fn stream_once(client: &ModelClient) -> Result<ModelReply, LlmError> {
        let messages = [Message::User("hi".into())];
        let mut on_event = |_| {};
        let call = client.stream(None, &messages, &[], &mut on_event);
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the request hung")
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_after_the_idle_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket); // open, and silent
            }
        });
        let error = stream_once(&impatient(&base_url)).await.unwrap_err();
        server.abort();
        assert!(matches!(error, LlmError::Transport { .. }), "{error}");
    }

    /// A server that answers with `head` and then a body that never ends.
    async fn endless(head: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        trickle(head, 1 << 16, Duration::from_millis(10)).await
    }

    /// A server that answers with `head` and then a body that never ends,
    /// in pieces of `piece` bytes, one every `every`.
    async fn trickle(
        head: &'static str,
        piece: usize,
        every: Duration,
    ) -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            let mut out = head.as_bytes().to_vec();
            let piece = "x".repeat(piece);
            loop {
                out.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
                if socket.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                tokio::time::sleep(every).await;
            }
        });
        (base_url, server)
    }

    #[tokio::test]
    async fn an_error_status_with_an_endless_body_is_reported_with_the_bodys_start() {
        let (base_url, server) = endless(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await;
        let error = stream_once(&impatient(&base_url)).await.unwrap_err();
        server.abort();
        assert_status(error, 400, "xxxx");
    }

    /// `error` is an error status `status` whose message starts with `start`.
    fn assert_status(error: LlmError, status: u16, start: &str) {
        match error {
            LlmError::Status {
                status: got,
                message,
                ..
            } => {
                assert_eq!(got, status);
                assert!(message.starts_with(start), "{message}");
            }
            other => panic!("{other}"),
        }
    }

    /// An error body sent a byte at a time, each byte well within the idle
    /// timeout, is read for one idle timeout in all: 64 KiB of it would
    /// otherwise take almost an hour.
    #[tokio::test]
    async fn an_error_body_sent_a_byte_at_a_time_is_read_for_one_idle_timeout() {
        let (base_url, server) = trickle(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
            1,
            Duration::from_millis(20),
        )
        .await;
        let error = stream_once(&impatient(&base_url)).await.unwrap_err();
        server.abort();
        assert_status(error, 503, "x");
    }

    #[tokio::test]
    async fn an_endless_body_that_is_not_a_stream_is_refused() {
        let (base_url, server) = endless(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await;
        let error = stream_once(&impatient(&base_url)).await.unwrap_err();
        server.abort();
        assert!(matches!(error, LlmError::Protocol { .. }), "{error}");
    }

    #[test]
    fn the_providers_own_endpoint_needs_a_key() {
        let error = ModelClient::new(ClientConfig::new(Provider::Anthropic)).unwrap_err();
        assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");
        let local = ClientConfig::new(Provider::OpenAiChat).base_url("http://127.0.0.1:9/v1");
        assert!(ModelClient::new(local).is_ok());
        let keyed = ClientConfig::new(Provider::OpenAiChat).api_key("sk-secret");
        assert!(!format!("{keyed:?}").contains("sk-secret"));
    }
}
