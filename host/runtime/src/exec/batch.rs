//! Batches: many calls submitted at once, events streamed back in completion
//! order, and a branch strategy that kills the calls it no longer needs.
//!
//! Every call ends in exactly one [`Event::Finished`]; the stream ends with one
//! [`Event::Done`]. Dropping a [`Batch`] cancels every call it still owns.
//!
//! A batch holds what its reader has not taken yet, so what a guest reports
//! while it runs is held in bounded form: each call's newest progress report
//! (a newer one replaces it), and at most [`MAX_UNREAD_LOGS`] log lines
//! (more are counted in [`BatchReport::logs_dropped`]). A reader that falls
//! behind, or reads only at the end, sees each call's latest progress, never
//! a backlog of it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::Stream;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{CallOptions, Executor};
use crate::catalog::Catalog;
use crate::outcome::{CallRecord, Outcome};
use crate::policy::Limits;
use crate::sandbox::{GuestEvent, GuestSink};
use crate::unread::{self, UnreadReceiver, UnreadSender};

/// One call of a batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallRequest {
    /// The public tool name.
    pub tool: String,
    /// The input, JSON text of an object.
    pub input: String,
    /// Per-call overrides; the batch supplies cancellation and events.
    pub options: CallOptions,
}

impl CallRequest {
    /// A call of `tool` with `input` as JSON text.
    pub fn new(tool: impl Into<String>, input: impl Into<String>) -> Self {
        Self {
            tool: tool.into(),
            input: input.into(),
            options: CallOptions::default(),
        }
    }

    /// A call of `tool` with `input` as a JSON value.
    pub fn json(tool: impl Into<String>, input: &Value) -> Self {
        Self::new(tool, input.to_string())
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }
}

/// A function scoring an output; `None` means the result does not count.
pub type ScoreFn = Arc<dyn Fn(&Value) -> Option<f64> + Send + Sync>;

/// Where a result's score comes from, for [`Strategy::KeepTopN`].
#[derive(Clone)]
#[non_exhaustive]
pub enum Score {
    /// A JSON Pointer to a number in the output.
    Pointer(String),
    /// A function of the output.
    Fn(ScoreFn),
}

impl Score {
    fn of(&self, output: &Value) -> Option<f64> {
        match self {
            Self::Pointer(pointer) => output.pointer(pointer).and_then(Value::as_f64),
            Self::Fn(score) => score(output),
        }
    }
}

impl std::fmt::Debug for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pointer(pointer) => write!(f, "Pointer({pointer:?})"),
            Self::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// A function telling how good a call could possibly score, by its index.
pub type Bound = Arc<dyn Fn(usize) -> f64 + Send + Sync>;

/// What a batch does once some results are in.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Every call runs to its own outcome.
    #[default]
    All,
    /// The first `ok` wins; the rest are killed.
    FirstSuccess,
    /// Keep the `n` best-scoring results. Once `n` results score at least what
    /// every running call could still reach (`bound`, by call index; unbounded
    /// without it), the rest are killed. The batch deadline also ends it.
    KeepTopN {
        /// How many results to keep.
        n: usize,
        /// Where the score comes from.
        score: Score,
        /// The best score each call could reach.
        bound: Option<Bound>,
    },
    /// Stop the batch when this returns true for a finished call.
    CancelOnBetter(Arc<dyn Fn(&CallRecord) -> bool + Send + Sync>),
}

impl Strategy {
    fn name(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::FirstSuccess => "first-success",
            Self::KeepTopN { .. } => "keep-top-n",
            Self::CancelOnBetter(_) => "cancel-on-better-result",
        }
    }
}

impl std::fmt::Debug for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a batch runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BatchOptions {
    /// The branch strategy.
    pub strategy: Strategy,
    /// A deadline for the whole batch; calls still running then are stopped.
    pub deadline: Option<Duration>,
    /// Stream the guests' log lines as events (progress always streams).
    /// At most [`MAX_UNREAD_LOGS`] lines wait for the reader; more are
    /// dropped and counted in [`BatchReport::logs_dropped`].
    pub guest_logs: bool,
}

impl BatchOptions {
    /// Options with `strategy`.
    pub fn strategy(strategy: Strategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }

    /// Sets the whole-batch deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// Something that happened in a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A call passed admission and its sandbox is being made.
    Started {
        /// The call's index in the batch.
        index: usize,
        /// The call's id.
        call_id: String,
        /// The public tool name.
        tool: String,
    },
    /// The guest reported progress. A report the reader has not taken yet
    /// is replaced by the call's next one.
    Progress {
        /// The call's index.
        index: usize,
        /// The call's id.
        call_id: String,
        /// Units done.
        done: u64,
        /// Units in all, if known.
        total: Option<u64>,
        /// What is going on.
        message: Option<String>,
    },
    /// The guest logged a line (only with [`BatchOptions::guest_logs`]).
    Log {
        /// The call's index.
        index: usize,
        /// The call's id.
        call_id: String,
        /// The level.
        level: &'static str,
        /// The line.
        message: String,
    },
    /// A transient failure will be retried.
    Retrying {
        /// The call's index.
        index: usize,
        /// The call's id.
        call_id: String,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay_ms: u64,
        /// The outcome being retried.
        reason: String,
    },
    /// A call ended.
    Finished {
        /// The call's index.
        index: usize,
        /// How it ended.
        record: CallRecord,
    },
    /// Every call has ended; the last event.
    Done {
        /// What the strategy did.
        report: BatchReport,
    },
}

/// What a batch's strategy did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchReport {
    /// The strategy's name.
    pub strategy: &'static str,
    /// Calls in the batch.
    pub calls: usize,
    /// Calls that ended `ok`.
    pub ok: usize,
    /// Ids of the calls the strategy or the deadline stopped.
    pub cancelled: Vec<String>,
    /// Indexes of the results the strategy kept (the winner, the top n).
    pub kept: Vec<usize>,
    /// Call-time budget the stopped calls did not spend, in milliseconds
    /// (their timeouts less what they had run).
    pub saved_ms: f64,
    /// Fuel the stopped calls did not burn (their budgets less what they used).
    pub saved_fuel: u64,
    /// True when the batch deadline stopped calls.
    pub deadline_passed: bool,
    /// Guest log lines dropped because [`MAX_UNREAD_LOGS`] lines already
    /// waited for the reader.
    pub logs_dropped: u64,
    /// Wall time of the batch.
    pub elapsed_ms: f64,
}

/// Every record of a batch, by index, and its report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchResult {
    /// One record per call, in submission order.
    pub records: Vec<CallRecord>,
    /// What the strategy did.
    pub report: BatchReport,
}

/// A handle on one call of a batch.
#[derive(Debug, Clone)]
pub struct CallHandle {
    /// The call's index in the batch.
    pub index: usize,
    /// The call's id.
    pub call_id: String,
    cancel: CancellationToken,
}

impl CallHandle {
    /// Stops this call (it ends `cancelled`).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// Guest log lines a batch holds for its reader at most: about 4 MiB, a
/// line being cut to 4 KiB.
pub const MAX_UNREAD_LOGS: usize = 1024;

/// A running batch: a stream of [`Event`]s in completion order.
#[derive(Debug)]
pub struct Batch {
    events: UnreadReceiver<Event>,
    /// Log lines waiting in `events`.
    unread_logs: Arc<AtomicUsize>,
    handles: Vec<CallHandle>,
    cancel: CancellationToken,
    _guard: DropGuard,
}

impl Batch {
    /// Handles on the calls, by index.
    pub fn handles(&self) -> &[CallHandle] {
        &self.handles
    }

    /// Stops every call still running.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for every call and returns the records in submission order.
    pub async fn finish(mut self) -> BatchResult {
        let mut records: Vec<Option<CallRecord>> = vec![None; self.handles.len()];
        let mut report = BatchReport::default();
        while let Some(event) = futures::StreamExt::next(&mut self).await {
            match event {
                Event::Finished { index, record } => records[index] = Some(record),
                Event::Done { report: done } => report = done,
                _ => {}
            }
        }
        let records = records
            .into_iter()
            .zip(&self.handles)
            .map(|(record, handle)| {
                record.unwrap_or_else(|| {
                    let outcome = Outcome::Cancelled {
                        message: "the batch ended before this call reported".into(),
                    };
                    CallRecord::new(
                        handle.call_id.clone(),
                        String::new(),
                        outcome,
                        Duration::ZERO,
                    )
                })
            })
            .collect();
        BatchResult { records, report }
    }
}

impl Stream for Batch {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let event = ready!(self.events.poll_recv(cx));
        if let Some(Event::Log { .. }) = event {
            self.unread_logs.fetch_sub(1, Ordering::Relaxed);
        }
        Poll::Ready(event)
    }
}

/// Where one call of a batch reports: its events carry its index and id.
#[derive(Clone)]
pub(crate) struct CallSink {
    tx: mpsc::UnboundedSender<Event>,
    index: usize,
    call_id: Arc<str>,
    logs: bool,
}

impl CallSink {
    pub(crate) fn started(&self, tool: &str) {
        let _ = self.tx.send(Event::Started {
            index: self.index,
            call_id: self.call_id.to_string(),
            tool: tool.to_string(),
        });
    }

    pub(crate) fn retrying(&self, attempt: u32, delay: Duration, outcome: &Outcome) {
        let _ = self.tx.send(Event::Retrying {
            index: self.index,
            call_id: self.call_id.to_string(),
            attempt,
            delay_ms: delay.as_millis() as u64,
            reason: outcome.to_string(),
        });
    }
}

impl GuestSink for CallSink {
    fn guest_event(&self, event: GuestEvent) {
        let (index, call_id) = (self.index, self.call_id.to_string());
        let event = match event {
            GuestEvent::Progress {
                done,
                total,
                message,
            } => Event::Progress {
                index,
                call_id,
                done,
                total,
                message,
            },
            GuestEvent::Log { level, message } if self.logs => Event::Log {
                index,
                call_id,
                level,
                message,
            },
            GuestEvent::Log { .. } => return,
        };
        let _ = self.tx.send(event);
    }
}

impl Executor {
    /// Starts a batch. Calls run concurrently (within the caps); events
    /// arrive in completion order. Dropping the batch cancels its calls.
    pub fn submit(self: &Arc<Self>, calls: Vec<CallRequest>, options: BatchOptions) -> Batch {
        self.start_batch(calls, options, Forward::Every)
    }

    /// [`Executor::submit`], forwarding `forward` events to the batch's stream.
    fn start_batch(
        self: &Arc<Self>,
        calls: Vec<CallRequest>,
        options: BatchOptions,
        forward: Forward,
    ) -> Batch {
        let cancel = CancellationToken::new();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let (user_tx, user_rx) = unread::channel();
        let mut handles = Vec::with_capacity(calls.len());
        let mut budgets = Vec::with_capacity(calls.len());
        let catalog = self.catalog();
        for (index, call) in calls.into_iter().enumerate() {
            let call_id = self.new_call_id();
            let token = cancel.child_token();
            handles.push(CallHandle {
                index,
                call_id: call_id.clone(),
                cancel: token.clone(),
            });
            budgets.push(budget(&catalog, &call));
            let sink = CallSink {
                tx: internal_tx.clone(),
                index,
                call_id: Arc::from(call_id.as_str()),
                logs: options.guest_logs,
            };
            let executor = self.clone();
            let mut call_options = call.options;
            if let Some(outer) = call_options.cancel.take() {
                // The caller's own token stops the call too.
                let token = token.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = outer.cancelled() => token.cancel(),
                        () = token.cancelled() => {}
                    }
                });
            }
            call_options.cancel = Some(token);
            let tx = internal_tx.clone();
            // Boxed: a call's future is kilobytes, and a task that holds it
            // in place copies all of it when spawned and again when done.
            tokio::spawn(Box::pin(async move {
                let record = executor
                    .run(call_id, &call.tool, &call.input, call_options, Some(sink))
                    .await;
                let _ = tx.send(Event::Finished { index, record });
            }));
        }
        drop(internal_tx);
        let unread_logs = Arc::new(AtomicUsize::new(0));
        let out = Out {
            tx: user_tx,
            unread_logs: unread_logs.clone(),
        };
        let driver = Driver::new(options, handles.clone(), budgets, out, forward);
        tokio::spawn(driver.run(internal_rx));
        Batch {
            events: user_rx,
            unread_logs,
            handles,
            cancel: cancel.clone(),
            _guard: cancel.drop_guard(),
        }
    }

    /// Runs a batch to the end and returns every record, in submission order.
    pub async fn run_batch(
        self: &Arc<Self>,
        calls: Vec<CallRequest>,
        options: BatchOptions,
    ) -> BatchResult {
        // Nobody reads the batch's progress: the driver sends only what
        // `finish` keeps, all at the end, so this task (often a thread of
        // its own, in `block_on`) is woken once, not once per call.
        self.start_batch(calls, options, Forward::AtEnd)
            .finish()
            .await
    }
}

/// The timeout and fuel a call will run under, for the savings report.
fn budget(catalog: &Catalog, call: &CallRequest) -> (Duration, u64) {
    let default = Limits::default();
    let limits = catalog
        .entry(&call.tool)
        .map_or(&default, |entry| &entry.component.limits);
    (
        call.options.timeout.unwrap_or(limits.timeout),
        call.options.fuel.unwrap_or(limits.fuel),
    )
}

/// Why the driver stopped a call.
#[derive(Debug, Clone)]
enum Ending {
    Strategy(String),
    Deadline(Duration),
}

/// Which events the driver sends on to the batch's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forward {
    /// All of them, as they come.
    Every,
    /// Only each call's `Finished` and the batch's `Done`, together at the end.
    AtEnd,
}

/// Where the driver sends what the reader gets.
struct Out {
    tx: UnreadSender<Event>,
    /// Log lines waiting for the reader: only the driver adds, only the
    /// reader takes away.
    unread_logs: Arc<AtomicUsize>,
}

impl Out {
    fn send(&self, event: Event) {
        self.tx.send(event);
    }

    /// Sends a guest's progress report or log line, held as the module
    /// says; false if a log line was dropped instead.
    fn send_guest(&self, event: Event) -> bool {
        match event {
            Event::Progress { index, .. } => self.tx.send_latest(index as u64, event),
            Event::Log { .. } => {
                if self.unread_logs.load(Ordering::Relaxed) >= MAX_UNREAD_LOGS {
                    return false;
                }
                self.unread_logs.fetch_add(1, Ordering::Relaxed);
                self.send(event);
            }
            event => self.send(event),
        }
        true
    }
}

/// Applies the strategy to finished calls and forwards events.
struct Driver {
    options: BatchOptions,
    handles: Vec<CallHandle>,
    budgets: Vec<(Duration, u64)>,
    out: Out,
    forward: Forward,
    /// Records held back until the batch ends ([`Forward::AtEnd`]).
    held: Vec<(usize, CallRecord)>,
    /// When each call passed admission, by index.
    started: Vec<Option<Instant>>,
    finished: Vec<bool>,
    scores: Vec<(f64, usize)>,
    stopped: HashMap<usize, Ending>,
    report: BatchReport,
    start: Instant,
}

impl Driver {
    fn new(
        options: BatchOptions,
        handles: Vec<CallHandle>,
        budgets: Vec<(Duration, u64)>,
        out: Out,
        forward: Forward,
    ) -> Self {
        let calls = handles.len();
        let report = BatchReport {
            strategy: options.strategy.name(),
            calls,
            ..BatchReport::default()
        };
        Self {
            options,
            handles,
            budgets,
            out,
            forward,
            held: match forward {
                Forward::Every => Vec::new(),
                Forward::AtEnd => Vec::with_capacity(calls),
            },
            started: vec![None; calls],
            finished: vec![false; calls],
            scores: Vec::new(),
            stopped: HashMap::new(),
            report,
            start: Instant::now(),
        }
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        // A deadline too far to add to the clock is none.
        let deadline = self
            .options
            .deadline
            .and_then(|d| self.start.checked_add(d));
        let mut remaining = self.handles.len();
        while remaining > 0 {
            let event = match deadline {
                Some(deadline) if !self.report.deadline_passed => tokio::select! {
                    event = events.recv() => event,
                    () = tokio::time::sleep_until(deadline.into()) => {
                        self.report.deadline_passed = true;
                        let limit = self.options.deadline.unwrap_or_default();
                        self.stop_running(Ending::Deadline(limit));
                        continue;
                    }
                },
                _ => events.recv().await,
            };
            let Some(event) = event else { break };
            match event {
                Event::Started { index, .. } => {
                    if let Some(started) = self.started.get_mut(index) {
                        *started = Some(Instant::now());
                    }
                    if self.forward == Forward::Every {
                        self.out.send(event);
                    }
                }
                Event::Finished { index, mut record } => {
                    remaining -= 1;
                    self.finished[index] = true;
                    self.settle(index, &mut record);
                    self.apply_strategy(index, &record);
                    match self.forward {
                        Forward::Every => self.out.send(Event::Finished { index, record }),
                        Forward::AtEnd => self.held.push((index, record)),
                    }
                }
                other => {
                    if self.forward == Forward::Every && !self.out.send_guest(other) {
                        self.report.logs_dropped += 1;
                    }
                }
            }
        }
        self.report.elapsed_ms = self.start.elapsed().as_secs_f64() * 1e3;
        if let Strategy::KeepTopN { n, .. } = &self.options.strategy {
            self.scores.sort_by(|a, b| b.0.total_cmp(&a.0));
            self.report.kept = self
                .scores
                .iter()
                .take(*n)
                .map(|(_, index)| *index)
                .collect();
        }
        for (index, record) in self.held.drain(..) {
            self.out.send(Event::Finished { index, record });
        }
        self.out.send(Event::Done {
            report: self.report,
        });
    }

    /// Rewrites the outcome of a call the driver stopped, and counts savings.
    fn settle(&mut self, index: usize, record: &mut CallRecord) {
        if record.outcome.is_ok() {
            self.report.ok += 1;
        }
        let Some(reason) = self.stopped.get(&index) else {
            return;
        };
        if !matches!(record.outcome, Outcome::Cancelled { .. }) {
            return;
        }
        record.outcome = match reason {
            Ending::Strategy(why) => Outcome::Cancelled {
                message: why.clone(),
            },
            Ending::Deadline(limit) => Outcome::Timeout {
                message: format!(
                    "the batch deadline of {} ms passed; the call was stopped",
                    limit.as_millis()
                ),
            },
        };
        let (timeout, fuel) = self.budgets[index];
        let ran = self
            .started
            .get(index)
            .copied()
            .flatten()
            .map_or(Duration::ZERO, |started| started.elapsed());
        self.report.saved_ms += timeout.saturating_sub(ran).as_secs_f64() * 1e3;
        self.report.saved_fuel += fuel.saturating_sub(record.fuel_used.unwrap_or(0));
        self.report.cancelled.push(record.call_id.clone());
    }

    fn apply_strategy(&mut self, index: usize, record: &CallRecord) {
        match &self.options.strategy {
            Strategy::All => {}
            Strategy::FirstSuccess => {
                if record.outcome.is_ok() && self.report.kept.is_empty() {
                    self.report.kept.push(index);
                    self.stop_running(Ending::Strategy(format!(
                        "cancelled by first-success: call {index} succeeded first"
                    )));
                }
            }
            Strategy::CancelOnBetter(better) => {
                if self.report.kept.is_empty() && better(record) {
                    self.report.kept.push(index);
                    self.stop_running(Ending::Strategy(format!(
                        "cancelled by cancel-on-better-result: call {index} was good enough"
                    )));
                }
            }
            Strategy::KeepTopN { n, score, bound } => {
                if let Some(value) = record.outcome.output().and_then(|output| score.of(output)) {
                    self.scores.push((value, index));
                }
                if *n == 0 || self.scores.len() < *n {
                    return;
                }
                let mut sorted: Vec<f64> = self.scores.iter().map(|(score, _)| *score).collect();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let nth = sorted[*n - 1];
                let Some(bound) = bound else { return };
                let running_can_beat = (0..self.handles.len())
                    .any(|i| !self.finished[i] && !self.stopped.contains_key(&i) && bound(i) > nth);
                if !running_can_beat {
                    self.stop_running(Ending::Strategy(format!(
                        "cancelled by keep-top-{n}: {n} results already score {nth} or more"
                    )));
                }
            }
        }
    }

    fn stop_running(&mut self, reason: Ending) {
        for handle in &self.handles {
            if !self.finished[handle.index] && !self.stopped.contains_key(&handle.index) {
                self.stopped.insert(handle.index, reason.clone());
                handle.cancel();
            }
        }
    }
}
