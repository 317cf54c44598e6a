//! The HTTP side of the scripted server (axum, 127.0.0.1 only).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Script;
use super::wire::{Render, Step};
use crate::{ClientConfig, Provider};

/// How long a paused stream waits for its gate before going on anyway.
const PAUSE_LIMIT: Duration = Duration::from_secs(30);

/// A request the server received.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The protocol, from the path.
    pub provider: Provider,
    /// The JSON body.
    pub body: Value,
    /// The API key sent (`Authorization: Bearer` or `x-api-key`), if any.
    pub api_key: Option<String>,
}

struct Shared {
    script: Script,
    requests: Mutex<Vec<RecordedRequest>>,
    served: AtomicUsize,
    cancel: CancellationToken,
}

/// A running scripted server. Dropping it stops it.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("replies", &self.script.replies.len())
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts the server on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            requests: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
        });
        let router = Router::new()
            .route(
                "/v1/chat/completions",
                post(|state, headers, body| handle(state, Provider::OpenAiChat, headers, body)),
            )
            .route(
                "/v1/responses",
                post(|state, headers, body| {
                    handle(state, Provider::OpenAiResponses, headers, body)
                }),
            )
            .route(
                "/v1/messages",
                post(|state, headers, body| handle(state, Provider::Anthropic, headers, body)),
            )
            .with_state(shared.clone());
        let cancel = shared.cancel.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(async move { cancel.cancelled().await });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "the scripted model server stopped");
            }
        });
        Ok(Self { addr, shared })
    }

    /// The base URL to give a client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// A client configuration pointing at this server, with quick retries.
    pub fn client_config(&self, provider: Provider) -> ClientConfig {
        let mut config = ClientConfig::new(provider)
            .base_url(self.base_url())
            .model("scripted");
        config.backoff = Duration::from_millis(5);
        config
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// How many assistant turns the request's history holds.
fn assistant_turns(provider: Provider, body: &Value) -> usize {
    let items = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    match provider {
        Provider::OpenAiChat | Provider::Anthropic => items("messages")
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .count(),
        Provider::OpenAiResponses => {
            let mut turns = 0;
            let mut in_turn = false;
            for item in items("input") {
                let assistant = item.get("role").and_then(Value::as_str) == Some("assistant")
                    || item.get("type").and_then(Value::as_str) == Some("function_call");
                if assistant && !in_turn {
                    turns += 1;
                }
                in_turn = assistant;
            }
            turns
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    provider: Provider,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let api_key = headers
        .get("x-api-key")
        .or_else(|| headers.get(header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").to_string());
    if let Ok(mut requests) = shared.requests.lock() {
        requests.push(RecordedRequest {
            provider,
            body: body.clone(),
            api_key,
        });
    }
    let served = shared.served.fetch_add(1, Ordering::SeqCst);
    let script = &shared.script;
    if let Some((count, status)) = script.fail_first
        && served < count
    {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = error(status, "scripted failure");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
        return response;
    }
    let turn = assistant_turns(provider, &body);
    let Some(reply) = script.replies.get(turn) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "the script has {} replies and this request is for reply {}",
                script.replies.len(),
                turn + 1
            ),
        );
    };
    let render = Render {
        provider,
        reply,
        turn,
        chars_per_token: script.chars_per_token,
        reuse_index_zero: script.reuse_index_zero,
    };
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let tokens = u32::try_from(render.token_count()).unwrap_or(u32::MAX);
        tokio::time::sleep(script.first_token_delay + script.token_delay * tokens).await;
        for part in &reply.parts {
            if let super::ScriptPart::Pause(gate) = part {
                gate.wait(PAUSE_LIMIT).await;
            }
        }
        return (
            [(header::CONTENT_TYPE, "application/json")],
            render.body().to_string(),
        )
            .into_response();
    }
    let (open, steps, close) = render.stream();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let pace = Pace {
        first: script.first_token_delay,
        every: script.token_delay,
        truncate_after: reply.truncate_after,
        cancel: shared.cancel.clone(),
    };
    tokio::spawn(pace.play(tx, open, steps, close));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "could not stream"))
}

struct Pace {
    first: Duration,
    every: Duration,
    truncate_after: Option<usize>,
    cancel: CancellationToken,
}

impl Pace {
    /// Sends the frames on schedule: token `k` at `first + k × every` from
    /// the start (so delays do not drift), pauses resetting the schedule.
    async fn play(
        self,
        tx: mpsc::Sender<Bytes>,
        open: Vec<String>,
        steps: Vec<Step>,
        close: Vec<String>,
    ) {
        async fn send(tx: &mpsc::Sender<Bytes>, frames: Vec<String>) -> bool {
            for frame in frames {
                if tx.send(Bytes::from(frame)).await.is_err() {
                    return false;
                }
            }
            true
        }
        if !send(&tx, open).await {
            return;
        }
        let mut due = Instant::now() + self.first;
        let mut sent = 0;
        for step in steps {
            let frames = match step {
                Step::Token(frames) => {
                    if self.truncate_after == Some(sent) {
                        return; // dropping `tx` ends the body mid-reply
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = self.cancel.cancelled() => return,
                    }
                    due += self.every;
                    sent += 1;
                    frames
                }
                Step::Frames(frames) => frames,
                Step::Pause(gate) => {
                    tokio::select! {
                        _ = gate.wait(PAUSE_LIMIT) => {}
                        () = self.cancel.cancelled() => return,
                    }
                    due = due.max(Instant::now());
                    continue;
                }
            };
            if !send(&tx, frames).await {
                return;
            }
        }
        send(&tx, close).await;
    }
}
