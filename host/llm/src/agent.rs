//! The agent loop: send the conversation and the tools, run the calls the
//! model asks for concurrently through the executor, hand the results back,
//! and go on until the model answers in words or a budget ends.
//!
//! With streaming and [`Dispatch::Early`], a call starts the moment its
//! arguments are complete (its block stops, or the next call begins), not
//! when the whole reply has arrived. Bad model output never ends the loop:
//! arguments that are not JSON, a schema violation, an unknown tool or a
//! reply cut off mid-call each become an error result the model can read.
//!
//! A reply cut off (the stream broke, or the token limit ended it): each
//! call whose arguments are complete JSON runs; a call whose arguments are
//! not is the cut one, refused without running (no
//! [`AgentEvent::ToolStarted`], only its [`AgentEvent::ToolFinished`]) with
//! an `invalid-input` result saying so. Its arguments stay as the model
//! sent them; each protocol sends them back by its own rules. A run whose
//! last reply is cut off without calls ends [`AgentStop::Truncated`].

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::{LlmError, ModelClient};
use super::events::{AgentEvent, AgentStop, EventSender, Events};
use super::speculate::{PredictContext, Predictor, Speculation, SpeculationStats};
use super::types::{Message, StopReason, StreamEvent, ToolCall, ToolResult, is_complete_json};
use toolhost_runtime::{CallOptions, Executor, GuestEvent, Outcome, ToolInfo};

/// When tool calls start while a reply streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// Each call starts as soon as its arguments are complete.
    #[default]
    Early,
    /// All calls start after the whole reply has arrived.
    AfterMessage,
}

/// Budgets and behaviour of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Instructions for the model.
    pub system: Option<String>,
    /// Model requests at most.
    pub max_turns: usize,
    /// Tool calls at most over the run; calls past it get an error result.
    pub max_tool_calls: usize,
    /// Wall time of the whole run; in-flight calls are cancelled when it passes.
    pub deadline: Duration,
    /// Stream replies (needed for early dispatch).
    pub streaming: bool,
    /// When calls start.
    pub dispatch: Dispatch,
    /// Replaces each tool's policy timeout.
    pub call_timeout: Option<Duration>,
    /// Speculative calls per turn at most.
    pub max_speculative: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system: None,
            max_turns: 10,
            max_tool_calls: 50,
            deadline: Duration::from_secs(600),
            streaming: true,
            dispatch: Dispatch::Early,
            call_timeout: None,
            max_speculative: 8,
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentReport {
    /// The model's last text.
    pub answer: String,
    /// Why the run ended.
    pub stop: AgentStop,
    /// Why the model's last reply ended, if one arrived.
    pub last_stop: Option<StopReason>,
    /// Model requests made.
    pub turns: usize,
    /// Tool calls run (speculative ones that answered a real call included).
    pub tool_calls: usize,
    /// The whole conversation.
    pub messages: Vec<Message>,
    /// Wall time of each turn: request to last result.
    pub turn_times: Vec<Duration>,
    /// Speculation counts.
    pub speculation: SpeculationStats,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Why a run failed: only the model can fail it; tools cannot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The model request failed.
    #[error(transparent)]
    Model(#[from] LlmError),
}

/// Counts the run's tool tasks, so the run can wait for them (and their
/// last events) before it reports that it is finished.
#[derive(Debug, Clone, Default)]
struct InFlight(Arc<(AtomicUsize, Notify)>);

struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let (count, notify) = &*(self.0).0;
        count.fetch_sub(1, Ordering::SeqCst);
        notify.notify_waiters();
    }
}

impl InFlight {
    fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        let guard = InFlightGuard(self.clone());
        tokio::spawn(async move {
            let _guard = guard;
            work.await
        })
    }

    /// Waits until no task is left.
    async fn idle(&self) {
        let (count, notify) = &*self.0;
        loop {
            // Created before the check, so no wake-up is missed.
            let notified = notify.notified();
            if count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs conversations with one model over one executor.
#[derive(Debug)]
pub struct Agent {
    client: ModelClient,
    executor: Arc<Executor>,
    config: AgentConfig,
    predictor: Option<Arc<dyn Predictor>>,
}

enum TurnEnd {
    Answered,
    /// The reply broke off without calls: nothing to go on with.
    CutOff,
    Continue,
}

struct RunState {
    messages: Vec<Message>,
    tool_calls: usize,
    answer: String,
    last_stop: Option<StopReason>,
}

impl Agent {
    /// An agent with the default budgets.
    pub fn new(client: ModelClient, executor: Arc<Executor>) -> Self {
        Self {
            client,
            executor,
            config: AgentConfig::default(),
            predictor: None,
        }
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// Speculates with `predictor`: its predicted calls of pure tools start
    /// while the model is still writing.
    pub fn with_predictor(mut self, predictor: Arc<dyn Predictor>) -> Self {
        self.predictor = Some(predictor);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Runs a conversation that starts with `prompt`.
    pub async fn run_prompt(
        &self,
        prompt: &str,
        events: Option<EventSender>,
    ) -> Result<AgentReport, AgentError> {
        self.run(vec![Message::User(prompt.to_string())], events)
            .await
    }

    /// Runs from `messages` until the model answers or a budget ends,
    /// sending events to `events` as they happen (see
    /// [`event_channel`](crate::event_channel) for what a reader that falls
    /// behind is sent).
    pub async fn run(
        &self,
        messages: Vec<Message>,
        events: Option<EventSender>,
    ) -> Result<AgentReport, AgentError> {
        let events = Events(events);
        let start = Instant::now();
        let deadline = crate::deadline_in(self.config.deadline);
        let cancel = CancellationToken::new();
        let _cancel_on_return = cancel.clone().drop_guard();
        let tools: Vec<ToolInfo> = self.executor.catalog().tools().cloned().collect();
        let stats = Arc::new(Mutex::new(SpeculationStats::default()));
        let in_flight = InFlight::default();
        let mut state = RunState {
            messages,
            tool_calls: 0,
            answer: String::new(),
            last_stop: None,
        };
        let mut stop = AgentStop::MaxTurns;
        let mut turn_times = Vec::new();
        let mut turns = 0;
        for turn in 1..=self.config.max_turns {
            turns = turn;
            let turn_start = Instant::now();
            events.emit(AgentEvent::TurnStarted { turn });
            let context = TurnContext {
                turn,
                tools: &tools,
                events: &events,
                cancel: &cancel,
                stats: &stats,
                in_flight: &in_flight,
            };
            let end = match tokio::time::timeout_at(deadline, self.turn(&context, &mut state)).await
            {
                Err(_) => {
                    stop = AgentStop::Deadline;
                    break;
                }
                Ok(end) => end?,
            };
            let elapsed = turn_start.elapsed();
            turn_times.push(elapsed);
            events.emit(AgentEvent::TurnEnded {
                turn,
                elapsed_ms: elapsed.as_secs_f64() * 1e3,
            });
            match end {
                TurnEnd::Answered => {
                    stop = AgentStop::Answered;
                    break;
                }
                TurnEnd::CutOff => {
                    stop = AgentStop::Truncated;
                    break;
                }
                TurnEnd::Continue => {}
            }
            if state.tool_calls >= self.config.max_tool_calls {
                stop = AgentStop::MaxToolCalls;
                break;
            }
        }
        // Stop what is still running (only a passed deadline leaves calls
        // behind) and let their last events out before `Finished`.
        cancel.cancel();
        if tokio::time::timeout(Duration::from_secs(5), in_flight.idle())
            .await
            .is_err()
        {
            tracing::warn!("tool tasks still running 5 s after the run was cancelled");
        }
        events.emit(AgentEvent::Finished {
            answer: state.answer.clone(),
            stop,
        });
        let speculation = *stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(AgentReport {
            answer: state.answer,
            stop,
            last_stop: state.last_stop,
            turns,
            tool_calls: state.tool_calls,
            messages: state.messages,
            turn_times,
            speculation,
            elapsed: start.elapsed(),
        })
    }

    async fn turn(
        &self,
        context: &TurnContext<'_>,
        state: &mut RunState,
    ) -> Result<TurnEnd, AgentError> {
        let turn = context.turn;
        let system = self.config.system.as_deref();
        let speculation = self.predictor.as_ref().map(|predictor| {
            let speculation = Speculation::new(
                self.executor.clone(),
                context.cancel.child_token(),
                context.stats.clone(),
                context.events.clone(),
                turn,
                self.config.max_speculative,
                self.config.call_timeout,
            );
            (predictor, speculation)
        });
        let mut dispatcher = Dispatcher {
            executor: &self.executor,
            config: &self.config,
            turn,
            events: context.events,
            cancel: context.cancel,
            stats: context.stats,
            in_flight: context.in_flight,
            speculation: speculation.as_ref().map(|(_, s)| s),
            running: HashMap::new(),
            budget_left: self.config.max_tool_calls.saturating_sub(state.tool_calls),
            started: 0,
        };
        let early = self.config.streaming && self.config.dispatch == Dispatch::Early;
        let messages = &state.messages;
        let reply = {
            let dispatcher = &mut dispatcher;
            let model = async {
                if self.config.streaming {
                    let mut on_event = |event: StreamEvent| match event {
                        StreamEvent::Text(text) => {
                            context.events.emit(AgentEvent::Text { turn, text });
                        }
                        // Arguments that are not complete JSON wait for the
                        // reply's end, which tells a cut call from a bad one.
                        StreamEvent::CallReady(call)
                            if early && is_complete_json(&call.arguments) =>
                        {
                            dispatcher.dispatch(call, None);
                        }
                        _ => {}
                    };
                    self.client
                        .stream(system, messages, context.tools, &mut on_event)
                        .await
                } else {
                    self.client.complete(system, messages, context.tools).await
                }
            };
            let predict = async {
                match &speculation {
                    Some((predictor, speculation)) => {
                        let predicted = predictor
                            .predict(PredictContext {
                                system,
                                messages,
                                tools: context.tools,
                            })
                            .await;
                        speculation.launch(predicted);
                    }
                    None => std::future::pending().await,
                }
            };
            let mut model = pin!(model);
            let mut predict = pin!(predict);
            tokio::select! {
                biased;
                reply = &mut model => reply,
                () = &mut predict => model.await,
            }
        }?;
        if !self.config.streaming && !reply.message.text.is_empty() {
            context.events.emit(AgentEvent::Text {
                turn,
                text: reply.message.text.clone(),
            });
        }
        let cut_by = match reply.stop {
            StopReason::Truncated => Some("the stream ending early"),
            StopReason::MaxTokens => Some("the output token limit"),
            _ => None,
        };
        let is_cut = |call: &ToolCall| cut_by.is_some() && !is_complete_json(&call.arguments);
        context.events.emit(AgentEvent::MessageEnd {
            turn,
            stop: reply.stop.clone(),
            calls: reply.message.calls.len(),
            truncated: reply.stop == StopReason::Truncated
                || reply.message.calls.iter().any(is_cut),
        });
        for call in &reply.message.calls {
            dispatcher.dispatch(call.clone(), cut_by.filter(|_| is_cut(call)));
        }
        if let Some((_, speculation)) = &speculation {
            speculation.close();
        }
        state.answer = reply.message.text.clone();
        state.last_stop = Some(reply.stop.clone());
        if reply.message.calls.is_empty() {
            let end = if reply.stop == StopReason::Truncated {
                TurnEnd::CutOff
            } else {
                TurnEnd::Answered
            };
            state.messages.push(Message::Assistant(reply.message));
            return Ok(end);
        }
        let mut results = Vec::with_capacity(reply.message.calls.len());
        for call in &reply.message.calls {
            let result = match dispatcher.running.remove(&call.id) {
                Some(handle) => handle.await.unwrap_or_else(|e| ToolResult {
                    call_id: call.id.clone(),
                    content: format!("trap: the call's task failed: {e}"),
                    is_error: true,
                }),
                None => ToolResult {
                    call_id: call.id.clone(),
                    content: "invalid-input: another call in this reply has the same id".into(),
                    is_error: true,
                },
            };
            results.push(result);
        }
        state.tool_calls += dispatcher.started;
        if let Some((predictor, _)) = &speculation {
            predictor.observe(&state.messages, &reply.message.calls);
        }
        state.messages.push(Message::Assistant(reply.message));
        state.messages.push(Message::ToolResults(results));
        Ok(TurnEnd::Continue)
    }
}

struct TurnContext<'a> {
    turn: usize,
    tools: &'a [ToolInfo],
    events: &'a Events,
    cancel: &'a CancellationToken,
    stats: &'a Arc<Mutex<SpeculationStats>>,
    in_flight: &'a InFlight,
}

/// Starts the calls of one turn, each at most once.
struct Dispatcher<'a> {
    executor: &'a Arc<Executor>,
    config: &'a AgentConfig,
    turn: usize,
    events: &'a Events,
    cancel: &'a CancellationToken,
    stats: &'a Arc<Mutex<SpeculationStats>>,
    in_flight: &'a InFlight,
    speculation: Option<&'a Speculation>,
    running: HashMap<String, JoinHandle<ToolResult>>,
    budget_left: usize,
    started: usize,
}

impl Dispatcher<'_> {
    /// Starts `call`, or refuses it without running it; `cut_by` names what
    /// cut the reply off before the call's arguments were complete.
    fn dispatch(&mut self, call: ToolCall, cut_by: Option<&str>) {
        if self.running.contains_key(&call.id) {
            return;
        }
        let turn = self.turn;
        let events = self.events.clone();
        let started = |speculative| AgentEvent::ToolStarted {
            turn,
            call_id: call.id.clone(),
            tool: call.name.clone(),
            arguments: call.arguments.clone(),
            speculative,
        };
        let refusal = if let Some(cut_by) = cut_by {
            Some(Outcome::InvalidInput {
                message: format!(
                    "not run: your reply was cut off by {cut_by} before this call's arguments were complete; call the tool again with complete arguments (keep the reply shorter)"
                ),
            })
        } else if self.budget_left == 0 {
            Some(Outcome::Cancelled {
                message: format!(
                    "not run: the budget of {} tool calls for this conversation is spent; answer with what you have",
                    self.config.max_tool_calls
                ),
            })
        } else {
            serde_json::from_str::<Value>(&call.arguments)
                .err()
                .map(|e| Outcome::InvalidInput {
                    message: format!(
                        "the arguments are not valid JSON ({e}); if your reply was cut off, call the tool again with a complete JSON object"
                    ),
                })
        };
        let id = call.id.clone();
        let handle = match refusal {
            // Refused before it runs: no `ToolStarted`, only the result.
            Some(outcome) => self
                .in_flight
                .spawn(async move { finish(&events, turn, &call, outcome, 0.0) }),
            None => {
                self.budget_left -= 1;
                self.started += 1;
                let claimed = self
                    .speculation
                    .and_then(|s| s.claim(&call.name, &call.arguments));
                events.emit(started(claimed.is_some()));
                match claimed {
                    Some(claimed) => {
                        let stats = self.stats.clone();
                        self.in_flight.spawn(async move {
                            let (outcome, elapsed_ms) = match claimed.handle.await {
                                Ok(record) => {
                                    let ran = Duration::from_secs_f64(record.elapsed_ms / 1e3);
                                    let saved = claimed.head_start.min(ran);
                                    if let Ok(mut stats) = stats.lock() {
                                        stats.time_saved += saved;
                                    }
                                    (record.outcome, record.elapsed_ms)
                                }
                                Err(e) => (
                                    Outcome::Trap {
                                        message: format!("the speculative call's task failed: {e}"),
                                    },
                                    0.0,
                                ),
                            };
                            finish(&events, turn, &call, outcome, elapsed_ms)
                        })
                    }
                    None => self.run(call, events),
                }
            }
        };
        self.running.insert(id, handle);
    }

    fn run(&self, call: ToolCall, events: Events) -> JoinHandle<ToolResult> {
        let turn = self.turn;
        let executor = self.executor.clone();
        let mut options = CallOptions::default().cancel(self.cancel.child_token());
        if let Some(timeout) = self.config.call_timeout {
            options = options.timeout(timeout);
        }
        if events.0.is_some() {
            let (sender, mut receiver) = mpsc::unbounded_channel();
            options.events = Some(sender);
            let events = events.clone();
            let call_id = call.id.clone();
            self.in_flight.spawn(async move {
                let Some(sender) = &events.0 else { return };
                // A reader that falls behind gets the call's newest report.
                let key = sender.progress_key();
                while let Some(event) = receiver.recv().await {
                    if let GuestEvent::Progress {
                        done,
                        total,
                        message,
                    } = event
                    {
                        let report = AgentEvent::ToolProgress {
                            turn,
                            call_id: call_id.clone(),
                            done,
                            total,
                            message,
                        };
                        sender.progress(key, report);
                    }
                }
            });
        }
        // Boxed: a call's future is kilobytes, which spawning would copy.
        self.in_flight.spawn(Box::pin(async move {
            let record = executor.call(&call.name, &call.arguments, options).await;
            finish(&events, turn, &call, record.outcome, record.elapsed_ms)
        }))
    }
}

/// The result the model reads, and the finished event.
fn finish(
    events: &Events,
    turn: usize,
    call: &ToolCall,
    outcome: Outcome,
    elapsed_ms: f64,
) -> ToolResult {
    let (content, is_error) = outcome.model_text();
    let result = ToolResult {
        call_id: call.id.clone(),
        content,
        is_error,
    };
    events.emit(AgentEvent::ToolFinished {
        turn,
        call_id: call.id.clone(),
        tool: call.name.clone(),
        outcome,
        elapsed_ms,
    });
    result
}
