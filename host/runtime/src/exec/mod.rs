//! Running calls: look the tool up, check the input against its schema before
//! any instance exists, serve pure tools from the result cache, pass the rate
//! limits and concurrency caps, run the call in its sandbox (retrying
//! transient failures), and settle one [`CallRecord`].
//!
//! Batches ([`Executor::submit`]) stream events in completion order and apply
//! a branch strategy; plans ([`Executor::run_plan`]) run a small DAG of steps.

mod batch;
mod cache;
mod call_id;
mod check;
mod fair;
mod fuel;
mod gate;
mod keys;
mod memory;
mod plan;
mod retry;
mod striped;
pub(crate) mod tenancy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::DefaultDirectRateLimiter;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use self::batch::CallSink;
pub use self::batch::{
    Batch, BatchOptions, BatchReport, BatchResult, Bound, CallHandle, CallRequest, Event,
    MAX_UNREAD_LOGS, Score, ScoreFn, Strategy,
};
use self::cache::ResultCache;
pub use self::cache::{CacheConfig, canonical as canonical_json};
use self::check::{Refusal, SchemaChecks};
pub use self::fuel::FuelAccount;
pub use self::gate::RateRule;
use self::gate::{Gates, quota};
pub(crate) use self::memory::cost_mb;
pub use self::memory::{
    HoldRefused, INSTANCE_OVERHEAD_MB, MemoryHold, default_memory_budget_mb, parse_hold_bytes,
};
pub use self::plan::{Plan, PlanError, PlanResult, Step};
use self::striped::Striped;
use self::tenancy::{Admission, Caller, Entered, PlaceHold};
use crate::catalog::{Catalog, ToolEntry};
use crate::lift;
use crate::outcome::{CallRecord, Outcome};
use crate::policy::{Limits, MAX_TIMEOUT_MS, Rate};
use crate::sandbox::{self, CallInfo, GuestEvent, GuestSink};
use crate::shared::Shared;

/// How an executor admits calls. The defaults suit one process on a small machine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExecConfig {
    /// Calls running at once, across all tools (at most the engine's pool size).
    pub max_in_flight: usize,
    /// Calls waiting for a rate limit or a free slot; more are refused.
    pub max_queued: usize,
    /// The longest a call waits to start before it is refused.
    pub queue_timeout: Duration,
    /// Calls one caller (tenant key) may have running at once.
    pub caller_concurrency: Option<u32>,
    /// A rate limit over all calls.
    pub global_rate: Option<RateRule>,
    /// A rate limit per caller key.
    pub caller_rate: Option<RateRule>,
    /// Retries allowed across the executor, so a failing tool cannot
    /// multiply the load; `None` leaves retries unbounded but per-call.
    pub retry_budget: Option<Rate>,
    /// The result cache for pure tools.
    pub cache: CacheConfig,
    /// The longest input accepted, in bytes, before it is parsed.
    pub max_input_bytes: usize,
    /// Memory, in MiB, that the calls in flight may use together. A call is
    /// admitted only when its memory cap plus [`INSTANCE_OVERHEAD_MB`] fits in
    /// what the calls in flight leave; otherwise it waits in the queue (up to
    /// the queue deadline) and is then refused `rate-limited`. A call whose
    /// cap could never fit is refused `memory-limit` at once. The default is
    /// [`default_memory_budget_mb`]: half of the machine's memory, or of the
    /// cgroup's limit when lower. `None` turns the budget off.
    pub memory_budget_mb: Option<u64>,
    /// Where calls' security events go (capability use, secrets injected,
    /// policy refusals, kills); `None`, the default, records none.
    pub audit: Option<Arc<crate::AuditLog>>,
    /// Quotas and cached results shared with other nodes (see
    /// [`crate::shared`]): tenants' quotas, each tool's `rate`, and the
    /// pure-tool cache. `None` keeps everything in this process.
    pub shared: Option<Arc<Shared>>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            max_in_flight: usize::MAX,
            max_queued: 100_000,
            queue_timeout: Duration::from_secs(30),
            caller_concurrency: None,
            global_rate: None,
            caller_rate: None,
            retry_budget: Some(Rate {
                count: 20,
                per: Duration::from_secs(1),
                burst: 50,
            }),
            cache: CacheConfig::default(),
            max_input_bytes: 1 << 20,
            memory_budget_mb: Some(default_memory_budget_mb()),
            audit: None,
            shared: None,
        }
    }
}

/// Per-call overrides and hooks. The defaults change nothing: the tool's
/// policy decides.
///
/// No option grants a capability: options only set the call's limits
/// (timeout, fuel, memory, each at most the engine's ceilings), and a
/// [`Ceiling`] (a tenant's) only ever lowers them.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(executor: &toolhost_runtime::Executor) {
/// use std::time::Duration;
/// use toolhost_runtime::{CallOptions, CancellationToken};
///
/// let cancel = CancellationToken::new();
/// let options = CallOptions::default()
///     .timeout(Duration::from_millis(200))
///     .fuel(10_000_000)
///     .cancel(cancel.clone());
/// let record = executor.call("calc", r#"{"expression": "1 + 1"}"#, options).await;
/// println!("{}: {}", record.outcome.kind(), record.to_json());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Replaces the policy's timeout (at most ten minutes, as in a policy).
    pub timeout: Option<Duration>,
    /// Replaces the policy's fuel budget.
    pub fuel: Option<u64>,
    /// Replaces the policy's memory cap, in MiB (at most the engine's ceiling).
    pub memory_mb: Option<u64>,
    /// Cancelling this token stops the call.
    pub cancel: Option<CancellationToken>,
    /// Where the guest's log lines and progress go.
    pub events: Option<tokio::sync::mpsc::UnboundedSender<GuestEvent>>,
    /// The caller (tenant) key its per-caller limits are counted under.
    pub caller: Option<String>,
    /// Skip the result cache for this call.
    pub no_cache: bool,
    /// Upper bounds applied after the tool's policy and the overrides above:
    /// a tenant's limits, which may only narrow what the policy grants.
    pub ceiling: Ceiling,
    /// The fuel quota the call draws on: each attempt reserves its fuel
    /// budget from it when admitted (running with less when the account
    /// grants less) and gives back what it did not burn when it ends.
    pub fuel_account: Option<Arc<dyn FuelAccount>>,
    /// The catalog the call runs on: the snapshot a caller's check already
    /// read, so that the check and the call see the same tools, grants and
    /// limits. `None` takes the executor's current catalog.
    pub catalog: Option<Arc<Catalog>>,
    /// The tenant the call is for: the executor hides the tools it may not
    /// see, takes its quotas, narrows the call to its ceilings and reports
    /// the call to it (see [`tenancy`](crate::tenancy)). `None`: no tenant,
    /// no quotas but the executor's own.
    pub tenant: Option<Caller>,
    /// Where the call's tenant place goes when the call ends, instead of
    /// back to the tenant, with what its answer keeps of the call's memory
    /// reservation (see [`PlaceHold`]). Without a tenant, only the memory.
    pub hold: Option<PlaceHold>,
}

/// Upper bounds on a call's limits. `None` leaves a limit as the policy set it;
/// a bound never raises a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ceiling {
    /// The longest a call may run.
    pub timeout: Option<Duration>,
    /// The most fuel a call may burn.
    pub fuel: Option<u64>,
    /// The largest linear memory, in MiB.
    pub memory_mb: Option<u64>,
    /// The largest output, in bytes.
    pub max_output_bytes: Option<u64>,
}

impl Ceiling {
    fn apply(&self, limits: &mut Limits) {
        if let Some(timeout) = self.timeout {
            limits.timeout = limits.timeout.min(timeout);
        }
        if let Some(fuel) = self.fuel {
            limits.fuel = limits.fuel.min(fuel);
        }
        if let Some(mb) = self.memory_mb {
            limits.memory_bytes = limits.memory_bytes.min(mb << 20);
        }
        if let Some(bytes) = self.max_output_bytes {
            limits.max_output_bytes = limits.max_output_bytes.min(bytes);
        }
    }
}

impl CallOptions {
    /// Sets the timeout: at most 600,000 ms (ten minutes), as in a policy;
    /// a call asking for more is refused as `invalid-input`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the fuel budget.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Sets the memory cap in MiB.
    pub fn memory_mb(mut self, memory_mb: u64) -> Self {
        self.memory_mb = Some(memory_mb);
        self
    }

    /// Lets `cancel` stop the call.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Counts the call under `caller`'s limits.
    pub fn caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = Some(caller.into());
        self
    }

    /// Draws the call's fuel from `account`.
    pub fn fuel_account(mut self, account: Arc<dyn FuelAccount>) -> Self {
        self.fuel_account = Some(account);
        self
    }

    /// Runs the call on `catalog`, the snapshot the caller checked.
    pub fn on_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Runs the call for `tenant`, within its tools and quotas.
    pub fn tenant(mut self, tenant: Caller) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Hands the tenant's place to `hold` when the call ends, to be given
    /// back once its answer has reached the client: for a face whose
    /// answers wait in host memory, so that they count as calls in flight.
    /// With a memory budget, the answer of a call that ran (an output or
    /// an error, whose message the output cap bounds too) also keeps its
    /// size (whole MiB, at least one) of the call's reservation there, so
    /// that it counts against the budget until it has gone.
    pub fn hold_place(mut self, hold: PlaceHold) -> Self {
        self.hold = Some(hold);
        self
    }
}

/// Counters since the executor started, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExecStats {
    /// Calls finished, any outcome.
    pub calls: u64,
    /// Calls that ended `ok`.
    pub ok: u64,
    /// Calls refused by a rate limit, cap or full queue.
    pub rate_limited: u64,
    /// Calls answered from the result cache.
    pub cache_hits: u64,
    /// Cacheable calls that missed.
    pub cache_misses: u64,
    /// Retries made.
    pub retries: u64,
    /// Fuel burned by guests.
    pub fuel_used: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Calls waiting to start now.
    pub queued: u64,
    /// The memory budget ([`ExecConfig::memory_budget_mb`]), in bytes.
    pub memory_budget_bytes: Option<u64>,
    /// Memory reserved by the calls in flight now (their caps plus the
    /// per-instance overhead), in bytes.
    pub memory_reserved_bytes: u64,
    /// The most memory reserved at once since start, in bytes.
    pub memory_reserved_peak_bytes: u64,
}

/// What the executor counts, one set per stripe (see [`striped`]).
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    ok: AtomicU64,
    rate_limited: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    retries: AtomicU64,
    fuel_used: AtomicU64,
}

/// Runs calls against a catalog. Share it behind an `Arc`.
///
/// Every call gets a fresh sandbox and ends in one [`CallRecord`]. Secure
/// defaults ([`ExecConfig::default`]): inputs over 1 MiB are refused before
/// they are parsed, and every input is checked against the tool's schema
/// before any instance exists; the calls in flight may together reserve half
/// of the machine's memory at their caps; at most 100,000 calls wait, each
/// for at most 30 s; retries are capped at 20 a second across the executor;
/// a pure tool's cached result is shared only within one caller.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(catalog: toolhost_runtime::Catalog) {
/// use std::sync::Arc;
/// use toolhost_runtime::{CallOptions, ExecConfig, Executor, Outcome};
///
/// let mut config = ExecConfig::default();
/// config.max_in_flight = 256;
/// let executor = Executor::with_config(Arc::new(catalog), config);
/// let record = executor
///     .call("calc", r#"{"expression": "6 * 7"}"#, CallOptions::default())
///     .await;
/// match record.outcome {
///     Outcome::Ok { output } => println!("{output}"),
///     other => eprintln!("{}: {other}", other.kind()),
/// }
/// # }
/// ```
pub struct Executor {
    /// Read by every call, written by a reload: swapped without a lock, so
    /// calls on different cores do not take turns on one.
    catalog: ArcSwap<Catalog>,
    /// Bumped on every [`Executor::set_catalog`], so faces can tell clients.
    generation: tokio::sync::watch::Sender<u64>,
    config: ExecConfig,
    gates: Gates,
    cache: Option<ResultCache>,
    retry_budget: Option<DefaultDirectRateLimiter>,
    counters: Striped<Counters>,
    call_ids: call_id::CallIds,
    checks: SchemaChecks,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What [`Executor::prepare`] settles before any instance exists (the
/// schema check comes next, in [`Executor::check_input`]).
struct Prepared<'a> {
    engine: &'a crate::Engine,
    entry: &'a ToolEntry,
    limits: Limits,
    /// The input as received, handed to the guest unchanged.
    text: &'a str,
    /// The result cache's key for the input, when the call may use the
    /// cache; set by the schema check. The parsed input itself is dropped
    /// there: a call waiting for a place keeps only its text.
    cache_key: Option<String>,
}

impl Executor {
    /// An executor over `catalog` with the default [`ExecConfig`].
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self::with_config(catalog, ExecConfig::default())
    }

    /// Where this executor's audit events go, if anywhere.
    pub fn audit(&self) -> Option<&Arc<crate::AuditLog>> {
        self.config.audit.as_ref()
    }

    /// The store this executor shares quotas and cached results through,
    /// if any ([`ExecConfig::shared`]).
    pub fn shared(&self) -> Option<&Arc<Shared>> {
        self.config.shared.as_ref()
    }

    /// An executor over `catalog` with `config`.
    pub fn with_config(catalog: Arc<Catalog>, config: ExecConfig) -> Self {
        let pool = catalog.engine().config().max_instances as usize;
        let gates = Gates::new(
            config.max_in_flight.min(pool),
            config.max_queued,
            config.caller_concurrency,
            config.global_rate,
            config.caller_rate,
            config.memory_budget_mb,
            config.shared.clone(),
        );
        Self {
            catalog: ArcSwap::new(catalog),
            generation: tokio::sync::watch::Sender::new(0),
            cache: ResultCache::new(config.cache.clone(), config.shared.clone()),
            retry_budget: config
                .retry_budget
                .as_ref()
                .map(|rate| governor::RateLimiter::direct(quota(rate))),
            config,
            gates,
            counters: Striped::default(),
            call_ids: call_id::CallIds::new(),
            checks: SchemaChecks::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
        }
    }

    /// The catalog new calls run against.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Swaps in a new catalog (hot reload). Calls in flight finish on the one
    /// they started with; new calls use this one.
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        self.catalog.store(catalog);
        self.generation.send_modify(|g| *g += 1);
    }

    /// A receiver that changes each time the catalog is swapped: its value
    /// is the number of swaps so far. MCP sends `tools/list_changed` on it.
    pub fn catalog_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The configuration.
    pub fn config(&self) -> &ExecConfig {
        &self.config
    }

    /// Calls that may run at once: [`ExecConfig::max_in_flight`], at most
    /// the engine's pool of instances.
    pub fn pool_size(&self) -> usize {
        self.gates.pool_size()
    }

    /// Calls holding a slot right now.
    pub fn in_flight(&self) -> usize {
        self.gates.in_flight()
    }

    /// The most calls that have run at once since start: overall, or of
    /// one component (its file stem) when named.
    pub fn peak_in_flight(&self, component: Option<&str>) -> usize {
        self.gates.peak(component)
    }

    /// Holds `bytes` of the host's memory budget for `caller` while the
    /// hold lives, without waiting: for work a face does outside any call
    /// that the budget should still bound, such as parsing a request's body
    /// before its calls are known. Refused when the bytes are more than the
    /// whole budget, or are not free now (or calls wait for the budget);
    /// with no budget ([`ExecConfig::memory_budget_mb`] unset) it holds
    /// nothing and always succeeds.
    pub fn hold_memory(&self, caller: &str, bytes: u64) -> Result<MemoryHold, HoldRefused> {
        match self.gates.memory() {
            Some(memory) => memory.hold(caller, bytes),
            None => Ok(MemoryHold::none()),
        }
    }

    /// Holds, from the host's memory budget and for `caller`, what parsing
    /// `json` takes ([`parse_hold_bytes`]), before anything parses it;
    /// `Ok(None)` for a small parse, which holds nothing. Refused as
    /// [`Executor::hold_memory`] refuses.
    pub fn hold_parse(&self, caller: &str, json: &[u8]) -> Result<Option<MemoryHold>, HoldRefused> {
        parse_hold_bytes(json)
            .map(|bytes| self.hold_memory(caller, bytes))
            .transpose()
    }

    /// Calls waiting to start right now.
    pub fn queued(&self) -> usize {
        self.gates.queued()
    }

    /// Counters since start.
    pub fn stats(&self) -> ExecStats {
        let sum = |counter: fn(&Counters) -> &AtomicU64| -> u64 {
            self.counters
                .all()
                .map(|c| counter(c).load(Ordering::Relaxed))
                .fold(0, u64::wrapping_add)
        };
        ExecStats {
            calls: sum(|c| &c.calls),
            ok: sum(|c| &c.ok),
            rate_limited: sum(|c| &c.rate_limited),
            cache_hits: sum(|c| &c.cache_hits),
            cache_misses: sum(|c| &c.cache_misses),
            retries: sum(|c| &c.retries),
            fuel_used: sum(|c| &c.fuel_used),
            in_flight: self.in_flight() as u64,
            queued: self.queued() as u64,
            memory_budget_bytes: self.gates.memory().map(|m| m.total_bytes()),
            memory_reserved_bytes: self.gates.memory().map_or(0, |m| m.reserved_bytes()),
            memory_reserved_peak_bytes: self.gates.memory().map_or(0, |m| m.peak_bytes()),
        }
    }

    pub(crate) fn new_call_id(&self) -> String {
        self.call_ids.next()
    }

    /// Runs one call of `tool` with `input`, JSON text of an object.
    //
    // This and the functions it leads to are not `async fn`s where they can
    // be plain ones returning the next one's future: an `async fn` keeps its
    // arguments twice in its future, and a call's future lives as long as
    // the call (200 bytes of options each time, at every level).
    pub fn call(
        &self,
        tool: &str,
        input: &str,
        options: CallOptions,
    ) -> impl Future<Output = CallRecord> {
        let call_id = self.new_call_id();
        self.run(call_id, tool, input, options, None)
    }

    /// Runs one call with `input` as a JSON value.
    pub async fn call_value(&self, tool: &str, input: &Value, options: CallOptions) -> CallRecord {
        self.call(tool, &input.to_string(), options).await
    }

    /// Runs one call on quotas its tenant's [`Caller::admit`] already took
    /// (a face that must refuse before it answers takes them first); the
    /// rest is as with [`CallOptions::tenant`].
    pub fn call_admitted(
        &self,
        admission: Admission,
        tool: &str,
        input: &str,
        options: CallOptions,
    ) -> impl Future<Output = CallRecord> {
        let call_id = self.new_call_id();
        self.run_for(call_id, tool, input, options, None, Some(admission))
    }

    pub(crate) fn run(
        &self,
        call_id: String,
        tool: &str,
        input: &str,
        options: CallOptions,
        sink: Option<CallSink>,
    ) -> impl Future<Output = CallRecord> {
        self.run_for(call_id, tool, input, options, sink, None)
    }

    /// An `async` block rather than an `async fn`: see [`Executor::call`].
    #[expect(
        clippy::manual_async_fn,
        reason = "an `async fn` keeps its arguments twice in its future"
    )]
    fn run_for(
        &self,
        call_id: String,
        tool: &str,
        input: &str,
        mut options: CallOptions,
        sink: Option<CallSink>,
        admitted: Option<Admission>,
    ) -> impl Future<Output = CallRecord> {
        async move {
            let start = Instant::now();
            let catalog = options.catalog.clone().unwrap_or_else(|| self.catalog());
            let mut record = CallRecord::new(
                call_id,
                tool.to_string(),
                Outcome::Cancelled {
                    message: String::new(),
                },
                Duration::ZERO,
            );
            // The tenant's view and quotas, on the snapshot the call runs on.
            let tenancy = match Entered::enter(&catalog, tool, &mut options, admitted).await {
                Ok(tenancy) => tenancy,
                Err(refused) => {
                    record.outcome = refused;
                    return record;
                }
            };
            record.outcome = self
                .checked_run(
                    &catalog,
                    tool,
                    input,
                    &options,
                    sink.as_ref(),
                    &mut record,
                    start,
                )
                .await;
            record.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
            self.count(&record);
            if let Some(tenancy) = tenancy {
                tenancy.settle(&catalog, tool, &mut record);
            }
            record
        }
    }

    /// The call's input checked, then the call run.
    #[expect(
        clippy::too_many_arguments,
        reason = "the call's own parts, passed down from `run_for`"
    )]
    async fn checked_run(
        &self,
        catalog: &Catalog,
        tool: &str,
        input: &str,
        options: &CallOptions,
        sink: Option<&CallSink>,
        record: &mut CallRecord,
        start: Instant,
    ) -> Outcome {
        // Bound by `let`, not matched on: what `prepare` returned would
        // otherwise keep its room for the whole call.
        let (mut prepared, value) = match self.prepare(catalog, tool, input, options) {
            Ok(prepared) => prepared,
            Err(outcome) => return outcome,
        };
        if let Err(outcome) = self.check_input(&mut prepared, value, options, start).await {
            return outcome;
        }
        self.run_prepared(&prepared, options, sink, record, start)
            .await
    }

    fn count(&self, record: &CallRecord) {
        let c = self.counters.here();
        c.calls.fetch_add(1, Ordering::Relaxed);
        match record.outcome {
            Outcome::Ok { .. } => c.ok.fetch_add(1, Ordering::Relaxed),
            Outcome::RateLimited { .. } => c.rate_limited.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if let Some(fuel) = record.fuel_used {
            c.fuel_used.fetch_add(fuel, Ordering::Relaxed);
        }
    }

    async fn run_prepared(
        &self,
        prepared: &Prepared<'_>,
        options: &CallOptions,
        sink: Option<&CallSink>,
        record: &mut CallRecord,
        start: Instant,
    ) -> Outcome {
        let entry = prepared.entry;
        let cache_key = prepared.cache_key.as_deref();
        let rules = &prepared.limits.retry;
        let mut attempt = 1;
        loop {
            let (outcome, kept) = self
                .attempt(prepared, options, sink, record, start, cache_key)
                .await;
            if attempt >= rules.attempts
                || !retry::worth_retrying(&outcome, rules, entry.info.behavior.idempotent)
            {
                return answer(options, outcome, kept);
            }
            if self
                .retry_budget
                .as_ref()
                .is_some_and(|budget| budget.check().is_err())
            {
                tracing::warn!(tool = %entry.info.name, call_id = %record.call_id, "retry budget exhausted; not retrying");
                return answer(options, outcome, kept);
            }
            // The answer retried is not the one the client gets.
            drop(kept);
            attempt += 1;
            let delay = retry::backoff(rules, attempt);
            self.counters.here().retries.fetch_add(1, Ordering::Relaxed);
            if let Some(sink) = sink {
                sink.retrying(attempt, delay, &outcome);
            }
            let sleep = tokio::time::sleep(delay);
            if let Some(cancel) = &options.cancel {
                tokio::select! {
                    () = sleep => {}
                    () = cancel.cancelled() => return Outcome::Cancelled { message: "cancelled while waiting to retry".into() },
                }
            } else {
                sleep.await;
            }
            record.attempts = attempt;
        }
    }

    /// One admission, then [`Executor::admitted`] under its permits. Gives
    /// back the outcome and, for a face that holds answers for their
    /// clients ([`CallOptions::hold_place`]), what the answer keeps of the
    /// call's memory reservation (see [`keep_answer`]).
    async fn attempt(
        &self,
        prepared: &Prepared<'_>,
        options: &CallOptions,
        sink: Option<&CallSink>,
        record: &mut CallRecord,
        start: Instant,
        cache_key: Option<&str>,
    ) -> (Outcome, Option<MemoryHold>) {
        let entry = prepared.entry;
        let limits = &prepared.limits;
        let admitted_at = Instant::now();
        let mut permits = match self
            .gates
            .admit(
                &entry.component.name,
                limits,
                options.caller.as_deref(),
                options.cancel.as_ref(),
                start + self.config.queue_timeout,
            )
            .await
        {
            Ok(admission) => admission,
            Err(outcome) => return (outcome, None),
        };
        let (outcome, output_bytes) = self
            .admitted(prepared, options, sink, record, cache_key, admitted_at)
            .await;
        let kept = keep_answer(&mut permits, options, &outcome, output_bytes);
        (outcome, kept)
    }

    /// An admitted call: the caller's own cached answer under `cache_key`
    /// (replayed against its limits and charged), or one run in a fresh
    /// sandbox. Gives back the outcome and the size of the output the tool
    /// gave (0 when it gave none).
    async fn admitted(
        &self,
        prepared: &Prepared<'_>,
        options: &CallOptions,
        sink: Option<&CallSink>,
        record: &mut CallRecord,
        cache_key: Option<&str>,
        admitted_at: Instant,
    ) -> (Outcome, u64) {
        let entry = prepared.entry;
        let limits = &prepared.limits;
        // Reserved after the gates, so a call waiting in the queue holds no fuel.
        let mut reservation = None;
        let granted_limits;
        let limits = match &options.fuel_account {
            Some(account) if prepared.engine.config().fuel => {
                let taken = match fuel::Reservation::take(account, limits.fuel).await {
                    Ok(taken) => taken,
                    Err(outcome) => return (outcome, 0),
                };
                let mut narrowed = limits.clone();
                narrowed.fuel = taken.granted;
                reservation = Some(taken);
                granted_limits = narrowed;
                &granted_limits
            }
            _ => limits,
        };
        let caller = options.caller.as_deref().unwrap_or_default();
        let cache = self.cache.as_ref().zip(cache_key);
        if let Some((cache, key)) = cache {
            let hit = match cache.get(caller, key) {
                Some(hit) => Some(hit),
                None => cache.get_shared(caller, key, limits).await,
            };
            if let Some(hit) = hit {
                self.counters
                    .here()
                    .cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                record.cached = true;
                let bytes = hit.output_bytes;
                let replay = hit.replay(limits);
                if let Some(reservation) = &mut reservation {
                    reservation.burned(replay.fuel);
                }
                record.fuel_used = match (record.fuel_used, replay.fuel) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                return (
                    quota_starved(replay.outcome, limits, &prepared.limits),
                    bytes,
                );
            }
            self.counters
                .here()
                .cache_misses
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(sink) = sink {
            sink.started(&entry.info.name);
        }
        let events: Option<Arc<dyn GuestSink>> = match (sink, &options.events) {
            (Some(sink), _) => Some(Arc::new(sink.clone())),
            (None, Some(tx)) => Some(Arc::new(tx.clone())),
            (None, None) => None,
        };
        let component = &entry.component;
        let audit = self.config.audit.as_ref().map(|log| {
            Arc::new(crate::audit::CallAudit {
                log: log.clone(),
                tenant: options.tenant.as_ref().map(|t| t.name().to_string()),
                call_id: record.call_id.clone(),
                tool: entry.info.name.clone(),
                component: component.name.clone(),
                hash: component.hash.clone(),
            })
        });
        let call = CallInfo {
            call_id: Arc::from(record.call_id.as_str()),
            tool: entry.name.clone(),
            cancel: options.cancel.clone(),
            events,
            audit: audit.clone(),
        };
        // How long the run took is kept only with a cached answer.
        let ran_at = cache.is_some().then(Instant::now);
        let run = sandbox::invoke(
            prepared.engine,
            &component.pre,
            &component.grants,
            limits,
            call,
            &entry.info.tool,
            prepared.text,
        )
        .await;
        if let Some(reservation) = &mut reservation {
            reservation.burned(run.fuel_used);
        }
        if let (Some(audit), Err(outcome)) = (&audit, &run.result) {
            crate::audit::kill(audit, outcome);
        }
        record.fuel_used = match (record.fuel_used, run.fuel_used) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        record.memory_peak_bytes = record.memory_peak_bytes.max(run.memory_peak);
        let result = run.result.and_then(|text| {
            if text.len() as u64 > limits.max_output_bytes {
                return Err(Outcome::OutputTooLarge {
                    message: format!(
                        "the output is {} bytes, over the limit of {} bytes",
                        text.len(),
                        limits.max_output_bytes
                    ),
                });
            }
            // Parsed, a small text can be a large tree (32 bytes a value);
            // the call's memory reservation bounds it, as it bounds the guest.
            lift::check_parsed_size(&text, limits)?;
            let output: Value = serde_json::from_str(&text).map_err(|e| Outcome::Trap {
                message: format!("the tool broke its contract: its output is not valid JSON ({e})"),
            })?;
            Ok((output, text))
        });
        let ran_for = ran_at.map(|at| at.elapsed());
        let (output, text) = match result {
            Ok(result) => result,
            Err(outcome) => return (quota_starved(outcome, limits, &prepared.limits), 0),
        };
        let bytes = text.len();
        // The text is what the cache keeps; without one it goes now.
        let text = cache.is_some().then_some(text);
        let outcome = self
            .check_output(prepared, limits, output, bytes, admitted_at)
            .await;
        if let (Some((cache, key)), Some(ran_for), Outcome::Ok { .. }, Some(text)) =
            (cache, ran_for, &outcome, text)
            && let Ok(output) = RawValue::from_string(text)
        {
            let hit = cache::Hit {
                output,
                output_bytes: bytes as u64,
                fuel: run.fuel_used,
                memory_peak: run.memory_peak,
                ran_for,
            };
            cache.put(caller, key.to_string(), hit);
        }
        (outcome, bytes as u64)
    }

    /// Checks a run's output against the tool's output schema, within the
    /// guest's own deadline.
    async fn check_output(
        &self,
        prepared: &Prepared<'_>,
        limits: &Limits,
        output: Value,
        bytes: usize,
        admitted_at: Instant,
    ) -> Outcome {
        let Some(schema) = &prepared.entry.output else {
            return Outcome::Ok { output };
        };
        let deadline = deadline_after(admitted_at, limits.timeout);
        match self.checks.check(schema, output, bytes, deadline).await {
            Ok(output) => Outcome::Ok { output },
            Err(Refusal::Invalid(errors)) => Outcome::Trap {
                message: format!(
                    "the tool broke its contract: its output does not match the tool's output schema: {}",
                    errors.join("; ")
                ),
            },
            Err(Refusal::TooLarge { bytes, max_bytes }) => Outcome::OutputTooLarge {
                message: format!(
                    "the output is {bytes} bytes; the tool's output schema is checked on at most {max_bytes} bytes"
                ),
            },
            Err(Refusal::Timeout) => Outcome::Timeout {
                message: format!(
                    "deadline of {} ms passed while the output was checked against the tool's output schema",
                    limits.timeout.as_millis()
                ),
            },
            Err(Refusal::Failed(why)) => Outcome::Trap {
                message: format!(
                    "the output could not be checked against the tool's output schema: {why}"
                ),
            },
        }
    }

    /// Checks the parsed input against the tool's schema, under the call's
    /// deadline; then keeps only its cache key, if the call may use the
    /// cache, and drops it.
    async fn check_input(
        &self,
        prepared: &mut Prepared<'_>,
        value: Value,
        options: &CallOptions,
        start: Instant,
    ) -> Result<(), Outcome> {
        let tool = &prepared.entry.info.name;
        let deadline = deadline_after(start, prepared.limits.timeout);
        let checked = self
            .checks
            .check(&prepared.entry.input, value, prepared.text.len(), deadline)
            .await;
        let message = match checked {
            Ok(value) => {
                let entry = prepared.entry;
                if self.cache.is_some() && entry.pure && !options.no_cache {
                    prepared.cache_key = Some(ResultCache::key(
                        &entry.component.hash,
                        &entry.info.tool,
                        &value,
                    ));
                }
                return Ok(());
            }
            Err(Refusal::Invalid(errors)) => format!(
                "the input does not match the schema of `{tool}`: {}",
                errors.join("; ")
            ),
            Err(Refusal::TooLarge { bytes, max_bytes }) => format!(
                "the input is {bytes} bytes; the schema of `{tool}` is checked on at most {max_bytes} bytes"
            ),
            Err(Refusal::Timeout) => {
                return Err(Outcome::Timeout {
                    message: format!(
                        "deadline of {} ms passed while the input was checked against the schema of `{tool}`",
                        prepared.limits.timeout.as_millis()
                    ),
                });
            }
            Err(Refusal::Failed(why)) => {
                format!("the input could not be checked against the schema of `{tool}`: {why}")
            }
        };
        Err(Outcome::InvalidInput { message })
    }

    /// Everything checked before any instance exists, but the schema: the
    /// call's limits, and the input parsed (given back beside them, for the
    /// schema check).
    fn prepare<'a>(
        &self,
        catalog: &'a Catalog,
        tool: &str,
        input: &'a str,
        options: &CallOptions,
    ) -> Result<(Prepared<'a>, Value), Outcome> {
        let Some(entry) = catalog.entry(tool) else {
            return Err(unknown_tool(catalog, tool, |_| true));
        };
        if input.len() > self.config.max_input_bytes {
            return Err(Outcome::InvalidInput {
                message: format!(
                    "the input is {} bytes, over the limit of {} bytes",
                    input.len(),
                    self.config.max_input_bytes
                ),
            });
        }
        let mut limits = entry.component.limits.clone();
        if let Some(timeout) = options.timeout {
            if timeout > Duration::from_millis(MAX_TIMEOUT_MS) {
                return Err(Outcome::InvalidInput {
                    message: format!(
                        "timeout must be at most {MAX_TIMEOUT_MS} ms, as in a policy, got {} ms",
                        timeout.as_millis()
                    ),
                });
            }
            limits.timeout = timeout;
        }
        if let Some(fuel) = options.fuel {
            limits.fuel = fuel;
        }
        if let Some(mb) = options.memory_mb {
            let max = catalog.engine().config().max_memory_mb;
            if !(1..=max).contains(&mb) {
                return Err(Outcome::InvalidInput {
                    message: format!("memory cap must be from 1 to {max} MiB, got {mb}"),
                });
            }
            limits.memory_bytes = mb << 20;
        }
        options.ceiling.apply(&mut limits);
        // The limits first: they bound the tree the text may make.
        lift::check_input_size(input, &limits)?;
        let value: Value = serde_json::from_str(input).map_err(|e| Outcome::InvalidInput {
            message: format!("the input is not valid JSON: {e}"),
        })?;
        if !value.is_object() {
            return Err(Outcome::InvalidInput {
                message: format!("the input must be a JSON object, not {}", kind_of(&value)),
            });
        }
        let prepared = Prepared {
            engine: catalog.engine(),
            entry,
            limits,
            text: input,
            cache_key: None,
        };
        Ok((prepared, value))
    }
}

/// For a call whose answer waits in host memory for its client (a face gave
/// it a [`PlaceHold`]), takes what the answer keeps of the call's memory
/// reservation out of the call's permits: its size (the output's,
/// `output_bytes`, or the message's, which the output cap bounds too). The
/// rest goes back with the call. [`answer`] hands it to the hold.
fn keep_answer(
    permits: &mut gate::Permits<'_>,
    options: &CallOptions,
    outcome: &Outcome,
    output_bytes: u64,
) -> Option<MemoryHold> {
    options.hold.as_ref()?;
    let bytes = outcome
        .message()
        .map_or(output_bytes, |message| message.len() as u64);
    permits.keep_memory(bytes)
}

/// The call's answer: what it keeps of the call's memory reservation
/// ([`keep_answer`]) goes to the face's hold, to wait with it.
fn answer(options: &CallOptions, outcome: Outcome, kept: Option<MemoryHold>) -> Outcome {
    if let (Some(hold), Some(kept)) = (&options.hold, kept) {
        hold.keep_memory(kept);
    }
    outcome
}

/// `outcome`, saying so when a call ran out of fuel because its caller's
/// fuel quota granted less than the call's budget.
fn quota_starved(outcome: Outcome, granted: &Limits, asked: &Limits) -> Outcome {
    match outcome {
        Outcome::OutOfFuel { message } if granted.fuel < asked.fuel => Outcome::OutOfFuel {
            message: format!(
                "{message} (the caller's fuel quota had {} left of the call's budget of {})",
                granted.fuel, asked.fuel
            ),
        },
        other => other,
    }
}

/// `timeout` after `from`; a timeout too long to add is a year.
fn deadline_after(from: Instant, timeout: Duration) -> tokio::time::Instant {
    from.checked_add(timeout)
        .unwrap_or_else(|| from + Duration::from_secs(365 * 24 * 3600))
        .into()
}

/// Characters of an unknown name that its refusal quotes.
const QUOTED_NAME_CHARS: usize = 128;

/// The outcome for a name no tool has, suggesting the closest names among
/// those `visible` accepts (a tenant must not learn of tools outside its list).
pub fn unknown_tool(catalog: &Catalog, tool: &str, visible: impl Fn(&str) -> bool) -> Outcome {
    let suggestions = catalog.suggest_among(tool, visible);
    // The name is the client's: quote a tool name's worth of it.
    let tool = match tool.char_indices().nth(QUOTED_NAME_CHARS) {
        Some((end, _)) => format!("{}…", &tool[..end]),
        None => tool.to_string(),
    };
    let message = if suggestions.is_empty() {
        format!("no tool named `{tool}` is loaded")
    } else {
        format!(
            "no tool named `{tool}` is loaded; did you mean {}?",
            quote_list(&suggestions)
        )
    };
    Outcome::UnknownTool { message }
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
