//! A scripted model server on loopback: it speaks OpenAI Chat Completions,
//! the Responses API and Anthropic Messages, streaming or not, and replays a
//! script of replies at a set speed. Tests, benchmarks and the no-key demo
//! use it; so can library users in their own tests.
//!
//! The reply a request gets is chosen by how many assistant turns its
//! history holds: the first request gets reply 0, the request after one
//! round of tool calls gets reply 1, and so on. The server keeps no
//! conversation state, so several conversations can share it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use serde_json::json;
//! use toolhost_llm::{Provider, Script, ScriptedReply, ScriptedServer};
//!
//! let script = Script::new(vec![
//!     ScriptedReply::new().text("Let me compute.").call("calc", json!({"expression": "6*7"})),
//!     ScriptedReply::new().text("It is 42."),
//! ]);
//! let server = ScriptedServer::start(script).await?;
//! let config = server.client_config(Provider::Anthropic);
//! # Ok(()) }
//! ```

#[cfg(test)]
mod fuzz;
mod serve;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

pub use self::serve::{RecordedRequest, ScriptedServer};

/// A gate a scripted stream waits at until the test opens it.
#[derive(Debug, Clone, Default)]
pub struct ScriptGate {
    inner: Arc<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    open: AtomicBool,
    /// A stream stopped waiting because its limit passed, not the gate.
    gave_up: AtomicBool,
    notify: Notify,
}

impl ScriptGate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the gate for every stream waiting at it, now and later.
    pub fn open(&self) {
        self.inner.open.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// True once opened.
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// True if a stream went on without the gate opening: what a test that
    /// needs the gate to have done its work should check.
    pub fn gave_up(&self) -> bool {
        self.inner.gave_up.load(Ordering::SeqCst)
    }

    /// Waits until the gate opens or `limit` passes; true if it opened.
    pub(crate) async fn wait(&self, limit: Duration) -> bool {
        let opened = async {
            loop {
                let notified = self.inner.notify.notified();
                if self.is_open() {
                    return;
                }
                notified.await;
            }
        };
        let opened = tokio::time::timeout(limit, opened).await.is_ok();
        if !opened {
            self.inner.gave_up.store(true, Ordering::SeqCst);
        }
        opened
    }
}

/// One piece of a scripted reply.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScriptPart {
    /// Text, streamed a token at a time.
    Text(String),
    /// A tool call; its arguments are streamed a token at a time.
    Call {
        /// The tool's name.
        name: String,
        /// The arguments, as the model would write them (need not be JSON).
        arguments: String,
    },
    /// The stream stops here until the gate opens (or 30 s pass).
    Pause(ScriptGate),
}

/// One scripted reply: text and calls in order.
#[derive(Debug, Clone, Default)]
pub struct ScriptedReply {
    /// The parts, in order.
    pub parts: Vec<ScriptPart>,
    /// Cut the stream (no end events) after this many tokens.
    pub truncate_after: Option<usize>,
}

impl ScriptedReply {
    /// An empty reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(ScriptPart::Text(text.into()));
        self
    }

    /// Adds a call with JSON arguments.
    pub fn call(self, name: impl Into<String>, arguments: Value) -> Self {
        self.raw_call(name, arguments.to_string())
    }

    /// Adds a call whose arguments are `arguments` verbatim (bad JSON included).
    pub fn raw_call(mut self, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        self.parts.push(ScriptPart::Call {
            name: name.into(),
            arguments: arguments.into(),
        });
        self
    }

    /// Waits at `gate` before going on.
    pub fn pause(mut self, gate: &ScriptGate) -> Self {
        self.parts.push(ScriptPart::Pause(gate.clone()));
        self
    }

    /// Ends the stream abruptly after `tokens` tokens.
    pub fn truncate_after(mut self, tokens: usize) -> Self {
        self.truncate_after = Some(tokens);
        self
    }
}

/// The whole script and how fast to play it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Script {
    /// Replies, by the number of assistant turns in the request's history.
    pub replies: Vec<ScriptedReply>,
    /// Time between two tokens.
    pub token_delay: Duration,
    /// Time before the first token (a model's time to first token).
    pub first_token_delay: Duration,
    /// Characters per token, for splitting text and arguments.
    pub chars_per_token: usize,
    /// Send every Chat Completions call under index 0, as some servers do.
    pub reuse_index_zero: bool,
    /// Answer the first N requests with this status and `Retry-After: 0`.
    pub fail_first: Option<(usize, u16)>,
}

impl Script {
    /// A script played as fast as possible, 4 characters a token.
    pub fn new(replies: Vec<ScriptedReply>) -> Self {
        Self {
            replies,
            token_delay: Duration::ZERO,
            first_token_delay: Duration::ZERO,
            chars_per_token: 4,
            reuse_index_zero: false,
            fail_first: None,
        }
    }

    /// Plays `tokens_per_second` tokens a second.
    pub fn tokens_per_second(mut self, tokens_per_second: f64) -> Self {
        self.token_delay = Duration::from_secs_f64(1.0 / tokens_per_second.max(0.001));
        self
    }

    /// Waits `delay` before the first token.
    pub fn first_token_delay(mut self, delay: Duration) -> Self {
        self.first_token_delay = delay;
        self
    }

    /// Sends every call under index 0 (Chat Completions only).
    pub fn reuse_index_zero(mut self) -> Self {
        self.reuse_index_zero = true;
        self
    }

    /// Answers the first `count` requests with `status` and `Retry-After: 0`.
    pub fn fail_first(mut self, count: usize, status: u16) -> Self {
        self.fail_first = Some((count, status));
        self
    }
}
