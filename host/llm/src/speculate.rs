//! Speculation: while the model is still writing its reply, run the calls
//! it will probably make, so their results are ready (or nearly) when it
//! does. Only provably pure tools run early ([`Catalog::is_pure`]: read-only,
//! idempotent, and granted no network, writable directories or wall clock);
//! a speculative result is used only when the real call names the same tool
//! with the same arguments (compared as the runtime's canonical JSON, the
//! cache key's rule), and every other
//! speculative call is cancelled when the reply ends.
//!
//! [`Catalog::is_pure`]: toolhost_runtime::Catalog::is_pure

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::ModelClient;
use super::events::{AgentEvent, Events};
use super::types::{Message, ToolCall};
use toolhost_runtime::{CallOptions, CallRecord, Executor, ToolInfo, canonical_json};

/// A call a predictor expects the model to make.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedCall {
    /// The tool's public name.
    pub tool: String,
    /// The arguments.
    pub arguments: Value,
}

/// What a predictor sees: the request the model is answering.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PredictContext<'a> {
    /// The instructions.
    pub system: Option<&'a str>,
    /// The conversation so far.
    pub messages: &'a [Message],
    /// The tools on offer.
    pub tools: &'a [ToolInfo],
}

/// Proposes the calls the model is likely to make in its coming reply.
pub trait Predictor: Send + Sync + fmt::Debug {
    /// The likely calls, best first. Runs while the model streams; a slow
    /// answer is simply of less use.
    fn predict<'a>(&'a self, context: PredictContext<'a>) -> BoxFuture<'a, Vec<PredictedCall>>;

    /// The calls the model really made after `messages`, for predictors that learn.
    fn observe(&self, messages: &[Message], calls: &[ToolCall]) {
        let _ = (messages, calls);
    }
}

/// The key a call is matched by: tool and canonical arguments.
fn key(tool: &str, arguments: &Value) -> String {
    format!("{tool}\u{0}{}", canonical_json(arguments))
}

/// Learns from past conversations: after the same prompt and the same calls
/// so far, the model tends to make the same calls again. Falls back to what
/// followed the same previous calls under any prompt.
#[derive(Debug, Default)]
pub struct HistoryPredictor {
    by_trace: Mutex<HashMap<String, Vec<PredictedCall>>>,
    by_previous: Mutex<HashMap<String, Vec<PredictedCall>>>,
}

impl HistoryPredictor {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prompt and every call so far.
    fn trace(messages: &[Message]) -> String {
        let mut trace = String::new();
        for message in messages {
            match message {
                Message::User(text) => {
                    trace.push_str("u:");
                    trace.push_str(text);
                }
                Message::Assistant(reply) => {
                    for call in &reply.calls {
                        trace.push_str("\nc:");
                        trace.push_str(&call_key(call));
                    }
                }
                Message::ToolResults(_) => trace.push_str("\nr"),
            }
            trace.push('\n');
        }
        trace
    }

    /// The calls of the last reply, or the last prompt when there is none.
    fn previous(messages: &[Message]) -> String {
        match messages
            .iter()
            .rev()
            .find(|m| !matches!(m, Message::ToolResults(_)))
        {
            Some(Message::Assistant(reply)) => reply
                .calls
                .iter()
                .map(call_key)
                .collect::<Vec<_>>()
                .join("\n"),
            Some(Message::User(text)) => format!("u:{text}"),
            _ => String::new(),
        }
    }
}

/// How the history predictor tells one step of a trace: the call's key
/// with whole numbers written without a fraction, so that `1` and `1.0`
/// count as the same step. Only for predicting: whether a speculative result
/// answers a real call is decided by [`key`], which keeps them apart.
fn call_key(call: &ToolCall) -> String {
    fn whole(value: &mut Value) {
        match value {
            Value::Object(map) => map.values_mut().for_each(whole),
            Value::Array(items) => items.iter_mut().for_each(whole),
            Value::Number(n) => {
                if let Some(f) = n
                    .as_f64()
                    .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15)
                {
                    *value = Value::from(f as i64);
                }
            }
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(mut arguments) => {
            whole(&mut arguments);
            key(&call.name, &arguments)
        }
        Err(_) => format!("{}\u{0}{}", call.name, call.arguments),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Predictor for HistoryPredictor {
    fn predict<'a>(&'a self, context: PredictContext<'a>) -> BoxFuture<'a, Vec<PredictedCall>> {
        let found = lock(&self.by_trace)
            .get(&Self::trace(context.messages))
            .cloned()
            .or_else(|| {
                lock(&self.by_previous)
                    .get(&Self::previous(context.messages))
                    .cloned()
            })
            .unwrap_or_default();
        Box::pin(async move { found })
    }

    fn observe(&self, messages: &[Message], calls: &[ToolCall]) {
        let predicted: Vec<PredictedCall> = calls
            .iter()
            .filter_map(|call| {
                Some(PredictedCall {
                    tool: call.name.clone(),
                    arguments: serde_json::from_str(&call.arguments).ok()?,
                })
            })
            .collect();
        lock(&self.by_trace).insert(Self::trace(messages), predicted.clone());
        lock(&self.by_previous).insert(Self::previous(messages), predicted);
    }
}

/// Asks a second, faster model (through the same provider layer) what it
/// would call, and takes its calls as the prediction.
#[derive(Debug, Clone)]
pub struct ModelPredictor {
    client: ModelClient,
}

impl ModelPredictor {
    /// Predicts with `client`'s model.
    pub fn new(client: ModelClient) -> Self {
        Self { client }
    }
}

impl Predictor for ModelPredictor {
    fn predict<'a>(&'a self, context: PredictContext<'a>) -> BoxFuture<'a, Vec<PredictedCall>> {
        Box::pin(async move {
            match self
                .client
                .complete(context.system, context.messages, context.tools)
                .await
            {
                Ok(reply) => reply
                    .message
                    .calls
                    .iter()
                    .filter_map(|call| {
                        Some(PredictedCall {
                            tool: call.name.clone(),
                            arguments: serde_json::from_str(&call.arguments).ok()?,
                        })
                    })
                    .collect(),
                Err(error) => {
                    tracing::debug!(%error, "the predictor model failed; no speculation this turn");
                    Vec::new()
                }
            }
        })
    }
}

/// Speculation counts over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SpeculationStats {
    /// Speculative calls started.
    pub launched: usize,
    /// Real calls answered by a speculative result.
    pub hits: usize,
    /// Speculative calls no real call matched (cancelled).
    pub misses: usize,
    /// Predictions not run because the tool is not provably pure (or unknown).
    pub refused: usize,
    /// Time the speculative calls had already run when their real calls arrived.
    #[serde(serialize_with = "millis")]
    pub time_saved: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

struct Running {
    handle: JoinHandle<CallRecord>,
    started: Instant,
    cancel: CancellationToken,
}

#[derive(Default)]
struct TurnState {
    running: HashMap<String, Running>,
    /// Keys of real calls already dispatched: no use predicting them now.
    dispatched: HashSet<String>,
    closed: bool,
}

/// A speculative call a real call claimed.
pub(crate) struct Claimed {
    pub(crate) handle: JoinHandle<CallRecord>,
    /// How long it had been running when claimed.
    pub(crate) head_start: Duration,
}

/// Speculation during one turn.
pub(crate) struct Speculation {
    executor: Arc<Executor>,
    cancel: CancellationToken,
    state: Mutex<TurnState>,
    stats: Arc<Mutex<SpeculationStats>>,
    events: Events,
    turn: usize,
    max_launches: usize,
    /// The agent's timeout for a real call: a claimed speculative call is
    /// the real call, so it runs under it too.
    call_timeout: Option<Duration>,
}

impl Speculation {
    pub(crate) fn new(
        executor: Arc<Executor>,
        cancel: CancellationToken,
        stats: Arc<Mutex<SpeculationStats>>,
        events: Events,
        turn: usize,
        max_launches: usize,
        call_timeout: Option<Duration>,
    ) -> Self {
        Self {
            executor,
            cancel,
            state: Mutex::new(TurnState::default()),
            stats,
            events,
            turn,
            max_launches,
            call_timeout,
        }
    }

    /// Starts the predicted calls of pure tools; refuses the rest.
    pub(crate) fn launch(&self, predicted: Vec<PredictedCall>) {
        let mut state = lock(&self.state);
        let mut stats = lock(&self.stats);
        for call in predicted {
            if state.closed || state.running.len() >= self.max_launches {
                break;
            }
            let key = key(&call.tool, &call.arguments);
            if state.dispatched.contains(&key) || state.running.contains_key(&key) {
                continue;
            }
            if !self.executor.catalog().is_pure(&call.tool) {
                stats.refused += 1;
                self.events.emit(AgentEvent::SpeculationRefused {
                    turn: self.turn,
                    tool: call.tool,
                });
                continue;
            }
            let cancel = self.cancel.child_token();
            let executor = self.executor.clone();
            let arguments = canonical_json(&call.arguments);
            let tool = call.tool.clone();
            let mut options = CallOptions::default().cancel(cancel.clone());
            if let Some(timeout) = self.call_timeout {
                options = options.timeout(timeout);
            }
            // Boxed: a call's future is kilobytes, which spawning would copy.
            let handle = tokio::spawn(Box::pin(async move {
                executor.call(&tool, &arguments, options).await
            }));
            stats.launched += 1;
            self.events.emit(AgentEvent::Speculated {
                turn: self.turn,
                tool: call.tool,
                arguments: call.arguments,
            });
            state.running.insert(
                key,
                Running {
                    handle,
                    started: Instant::now(),
                    cancel,
                },
            );
        }
    }

    /// The real call `tool(arguments)` is ready to run: takes the matching
    /// speculative call, if there is one.
    pub(crate) fn claim(&self, tool: &str, arguments: &str) -> Option<Claimed> {
        let arguments: Value = serde_json::from_str(arguments).ok()?;
        let key = key(tool, &arguments);
        let mut state = lock(&self.state);
        state.dispatched.insert(key.clone());
        let running = state.running.remove(&key)?;
        lock(&self.stats).hits += 1;
        Some(Claimed {
            handle: running.handle,
            head_start: running.started.elapsed(),
        })
    }

    /// The reply is over: cancels every speculative call nobody claimed.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        let mut stats = lock(&self.stats);
        for (_, running) in state.running.drain() {
            running.cancel.cancel();
            stats.misses += 1;
        }
    }
}

impl Drop for Speculation {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_match_whatever_their_key_order_but_not_their_number_spelling() {
        // The guest reads the arguments' text: `1` and `1.0` are different
        // inputs to it, so a speculated `1` does not answer a real `1.0`.
        let a = json!({"b": [1, {"y": 2, "x": 1}], "a": "s"});
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_ne!(
            canonical_json(&json!({"a": 1})),
            canonical_json(&json!({"a": 1.0}))
        );
        assert_ne!(
            canonical_json(&json!({"a": 1})),
            canonical_json(&json!({"a": 1.5}))
        );
        assert_ne!(
            canonical_json(&json!({"a": "1"})),
            canonical_json(&json!({"a": 1}))
        );
    }

    fn assistant(calls: &[(&str, &str)]) -> Message {
        Message::Assistant(super::super::AssistantMessage {
            text: "thinking aloud".into(),
            calls: calls
                .iter()
                .enumerate()
                .map(|(n, (name, args))| ToolCall::new(format!("id{n}"), *name, *args))
                .collect(),
        })
    }

    #[tokio::test]
    async fn history_predicts_what_followed_the_same_trace() {
        let predictor = HistoryPredictor::new();
        let context = |messages| PredictContext {
            system: None,
            messages,
            tools: &[],
        };
        let first = [Message::User("weather?".into())];
        assert!(predictor.predict(context(&first)).await.is_empty());
        let calls = [ToolCall::new("x", "calc", r#"{"expression": "1"}"#)];
        predictor.observe(&first, &calls);
        let predicted = predictor.predict(context(&first)).await;
        assert_eq!(
            predicted,
            [PredictedCall {
                tool: "calc".into(),
                arguments: json!({"expression": "1"})
            }]
        );
        // A different prompt with the same previous calls falls back to them.
        let second = [
            Message::User("a".into()),
            assistant(&[("sleep", r#"{"ms":1}"#)]),
            Message::ToolResults(vec![]),
        ];
        predictor.observe(&second, &calls);
        let other = [
            Message::User("b".into()),
            assistant(&[("sleep", r#"{"ms": 1.0}"#)]),
            Message::ToolResults(vec![]),
        ];
        assert_eq!(predictor.predict(context(&other)).await.len(), 1);
    }
}
