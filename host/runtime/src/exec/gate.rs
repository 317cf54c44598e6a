//! Permits: rate limits (governor) and concurrency caps in front of every
//! call, with a bounded queue and a queue deadline.
//!
//! Limits are checked from the most specific to the least (component, then
//! caller, then the host's memory budget, then global), so a call never
//! holds a global slot or memory while it waits for its own component's.
//! The shared pools (a component's slots, the memory budget, the global
//! slots) are [`FairPool`]s: a freed slot goes to the waiting caller that
//! holds the fewest, so one caller's queue never holds up another's call.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio_util::sync::CancellationToken;

use super::fair::{FairPermit, FairPool};
use super::keys::{owned, probe};
use super::memory::{MemoryBudget, MemoryHold, answer_mb};
use super::tenancy::{bucket, divided};
use crate::outcome::Outcome;
use crate::policy::{Limits, OnLimit, Rate};
use crate::shared::{Shared, Taken};

/// A rate limit and what to do when it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateRule {
    /// The rate.
    pub rate: Rate,
    /// Wait or reject.
    pub on_limit: OnLimit,
}

impl RateRule {
    /// A rule for `rate` that does `on_limit` when reached.
    pub fn new(rate: Rate, on_limit: OnLimit) -> Self {
        Self { rate, on_limit }
    }
}

pub(crate) fn quota(rate: &Rate) -> Quota {
    let count = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(count);
    let period = rate.per / count.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .map_or_else(|| Quota::per_second(count), |q| q.allow_burst(burst))
}

/// The admission state of one component: its own cap and rate.
struct ComponentGate {
    slots: Arc<FairPool>,
    rate: Option<DefaultDirectRateLimiter>,
    /// The rate the limiter was built for.
    rate_rule: Option<Rate>,
    on_limit: OnLimit,
}

impl ComponentGate {
    /// The gate for `limits`; its rate divided by `nodes` (the rate this
    /// node keeps while the shared store is down).
    fn new(limits: &Limits, peak: u64, nodes: u32) -> Self {
        Self {
            slots: FairPool::with_peak(u64::from(limits.max_concurrency), peak),
            rate: limits
                .rate
                .as_ref()
                .map(|rate| governor::RateLimiter::direct(quota(&divided(rate, nodes)))),
            rate_rule: limits.rate,
            on_limit: limits.on_limit,
        }
    }

    /// True when the gate was built for these limits.
    fn fits(&self, limits: &Limits) -> bool {
        self.slots.size() == u64::from(limits.max_concurrency)
            && self.rate_rule == limits.rate
            && self.on_limit == limits.on_limit
    }
}

/// Everything that must hold for a call to start.
pub(crate) struct Gates {
    global: Arc<FairPool>,
    caller_concurrency: Option<u32>,
    global_rate: Option<(DefaultDirectRateLimiter, OnLimit)>,
    caller_rate: Option<(DefaultKeyedRateLimiter<String>, OnLimit)>,
    /// Each component's gate. Read by every call without a lock (calls on
    /// two cores would otherwise take turns on it); replaced, under
    /// `components_write`, when a component first runs or its limits change.
    components: ArcSwap<HashMap<String, Arc<ComponentGate>>>,
    components_write: Mutex<()>,
    callers: Mutex<HashMap<String, Arc<FairPool>>>,
    queued: AtomicUsize,
    max_queued: usize,
    global_size: usize,
    memory: Option<MemoryBudget>,
    /// Where each tool's `rate` is kept when nodes share it.
    shared: Option<Arc<Shared>>,
}

/// Held while a call runs; dropping it frees every slot (also those of an
/// admission that failed or was dropped half way).
pub(crate) struct Permits<'a> {
    /// The key the fair pools know the call's caller by.
    key: &'a str,
    gates: &'a Gates,
    gate: Arc<ComponentGate>,
    component: Option<Held>,
    caller: Option<(Arc<FairPool>, Held)>,
    memory: Option<Held>,
    global: Option<Held>,
}

/// Permits of one pool: taken at once, and so given back by [`Permits`]
/// (most calls; nothing is counted but the pool's own state), or granted
/// after a wait, and given back by the permit itself.
enum Held {
    Taken(u64),
    Granted(FairPermit),
}

impl Held {
    fn give_back(&self, pool: &Arc<FairPool>, key: &str) {
        if let Held::Taken(permits) = self {
            pool.put_back(key, *permits);
        }
    }
}

impl Permits<'_> {
    /// Moves what an answer of `bytes` keeps (see [`answer_mb`]) out of the
    /// call's memory reservation into a hold of its own, for an answer that
    /// waits in host memory for its client after the call: the rest of the
    /// reservation is given back with the call, the hold when the answer
    /// has gone. Never more than the call reserved, so it never waits and
    /// never takes the budget past its size. Nothing without a budget.
    pub(crate) fn keep_memory(&mut self, bytes: u64) -> Option<MemoryHold> {
        let budget = self.gates.memory.as_ref()?;
        let wanted = answer_mb(bytes);
        match self.memory.as_mut()? {
            Held::Taken(permits) => {
                let moved = wanted.min(*permits);
                *permits -= moved;
                (moved > 0).then(|| MemoryHold::taken(budget.slots.clone(), self.key, moved))
            }
            Held::Granted(permit) => {
                let (pool, caller, moved) = permit.split_off(wanted)?;
                Some(MemoryHold::taken(pool, &caller, moved))
            }
        }
    }
}

impl Drop for Permits<'_> {
    fn drop(&mut self) {
        // The most specific first, as they were taken.
        if let Some(held) = &self.component {
            held.give_back(&self.gate.slots, self.key);
        }
        if let Some((pool, held)) = &self.caller {
            held.give_back(pool, self.key);
        }
        if let (Some(held), Some(memory)) = (&self.memory, &self.gates.memory) {
            held.give_back(&memory.slots, self.key);
        }
        if let Some(held) = &self.global {
            held.give_back(&self.gates.global, self.key);
        }
    }
}

/// Counts a call as queued while it lives.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gates {
    pub(crate) fn new(
        max_in_flight: usize,
        max_queued: usize,
        caller_concurrency: Option<u32>,
        global_rate: Option<RateRule>,
        caller_rate: Option<RateRule>,
        memory_budget_mb: Option<u64>,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        Self {
            shared,
            global: FairPool::new(max_in_flight as u64),
            caller_concurrency,
            global_rate: global_rate
                .map(|r| (governor::RateLimiter::direct(quota(&r.rate)), r.on_limit)),
            caller_rate: caller_rate
                .map(|r| (governor::RateLimiter::keyed(quota(&r.rate)), r.on_limit)),
            components: ArcSwap::default(),
            components_write: Mutex::new(()),
            callers: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            max_queued,
            global_size: max_in_flight,
            memory: memory_budget_mb.map(MemoryBudget::new),
        }
    }

    /// The memory budget, if any.
    pub(crate) fn memory(&self) -> Option<&MemoryBudget> {
        self.memory.as_ref()
    }

    pub(crate) fn pool_size(&self) -> usize {
        self.global_size
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.global_size - self.global.available() as usize
    }

    /// The most calls that have held a slot at once: overall, and of one component.
    pub(crate) fn peak(&self, component: Option<&str>) -> usize {
        match component {
            None => self.global.peak() as usize,
            Some(name) => self
                .components
                .load()
                .get(name)
                .map_or(0, |gate| gate.slots.peak() as usize),
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    fn component(&self, name: &str, limits: &Limits) -> Arc<ComponentGate> {
        // Most calls find their gate; only the first call of a component,
        // or the first after a reload changed its limits, writes.
        if let Some(gate) = self.components.load().get(name)
            && gate.fits(limits)
        {
            return gate.clone();
        }
        let _writing = self
            .components_write
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let components = self.components.load_full();
        let peak = match components.get(name) {
            Some(gate) if gate.fits(limits) => return gate.clone(),
            // A reload changed the policy's limits: new calls go through a
            // gate of the new size and rate (calls in flight keep their slots
            // of the old one until they end).
            Some(gate) => gate.slots.peak(),
            None => 0,
        };
        let gate = Arc::new(ComponentGate::new(limits, peak, self.local_divisor()));
        let mut next = HashMap::clone(&components);
        next.insert(name.to_string(), gate.clone());
        self.components.store(Arc::new(next));
        gate
    }

    /// What the local limiters divide a tool's rate by: the node count when
    /// they stand in for a shared store that is down.
    fn local_divisor(&self) -> u32 {
        self.shared
            .as_ref()
            .map_or(1, |shared| shared.config().nodes)
    }

    fn caller(&self, key: &str, size: u32) -> Arc<FairPool> {
        let key = probe(key);
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = callers.get(key) {
            return pool.clone();
        }
        let pool = FairPool::new(u64::from(size));
        callers.insert(owned(key), pool.clone());
        pool
    }

    /// Waits for (or refuses) every rate limit and cap that applies.
    pub(crate) async fn admit<'a>(
        &'a self,
        component: &str,
        limits: &Limits,
        caller: Option<&'a str>,
        cancel: Option<&CancellationToken>,
        queue_deadline: Instant,
    ) -> Result<Permits<'a>, Outcome> {
        let gate = self.component(component, limits);
        let memory_permits = match &self.memory {
            Some(memory) => Some(memory.permits_for(limits.memory_bytes)?),
            None => None,
        };
        if let Some((limiter, on_limit)) = &self.global_rate {
            self.pass_rate(
                || std::future::ready(Ok(local_check(limiter))),
                *on_limit,
                "the global rate limit",
                cancel,
                queue_deadline,
            )
            .await?;
        }
        if let (Some((limiter, on_limit)), Some(key)) = (&self.caller_rate, caller) {
            let key = key.to_string();
            self.pass_rate(
                || {
                    std::future::ready(Ok(limiter
                        .check_key(&key)
                        .map_err(|n| n.wait_time_from(DefaultClock::default().now()))))
                },
                *on_limit,
                "the caller's rate limit",
                cancel,
                queue_deadline,
            )
            .await?;
        }
        match (&gate.rate, &self.shared, &limits.rate) {
            (Some(limiter), Some(shared), Some(rate)) => {
                let key = format!("tool:{component}:rate");
                let pool = bucket(rate);
                self.pass_rate(
                    || async {
                        match shared.take_one(&key, pool).await {
                            Taken::Yes(()) => Ok(Ok(())),
                            Taken::No(wait) => Ok(Err(wait)),
                            Taken::Down(error) => match shared.unavailable(error) {
                                Ok(()) => Ok(local_check(limiter)),
                                Err(error) => Err(Outcome::RateLimited {
                                    message: format!(
                                        "the tool's shared rate limit cannot be checked now \
                                         ({error}); try again shortly"
                                    ),
                                    retry_after_ms: shared.config().retry.as_millis().max(1) as u64,
                                }),
                            },
                        }
                    },
                    gate.on_limit,
                    "the tool's rate limit",
                    cancel,
                    queue_deadline,
                )
                .await?;
            }
            (Some(limiter), _, _) => {
                self.pass_rate(
                    || std::future::ready(Ok(local_check(limiter))),
                    gate.on_limit,
                    "the tool's rate limit",
                    cancel,
                    queue_deadline,
                )
                .await?;
            }
            _ => {}
        }
        // Callers without a key share one place in the fair pools.
        let fair_key = caller.unwrap_or_default();
        let mut held = Permits {
            key: fair_key,
            gates: self,
            gate: gate.clone(),
            component: None,
            caller: None,
            memory: None,
            global: None,
        };
        held.component = Some(
            self.acquire(
                &gate.slots,
                fair_key,
                1,
                gate.on_limit,
                || {
                    format!(
                        "{} calls of `{component}` are already in flight",
                        limits.max_concurrency
                    )
                },
                cancel,
                queue_deadline,
            )
            .await?,
        );
        if let (Some(key), Some(size)) = (caller, self.caller_concurrency) {
            let pool = self.caller(key, size);
            let permit = self
                .acquire(
                    &pool,
                    key,
                    1,
                    OnLimit::Wait,
                    || format!("{size} calls of this caller are already in flight"),
                    cancel,
                    queue_deadline,
                )
                .await?;
            held.caller = Some((pool, permit));
        }
        if let (Some(memory), Some(permits)) = (&self.memory, memory_permits) {
            held.memory = Some(
                self.acquire(
                    &memory.slots,
                    fair_key,
                    permits,
                    OnLimit::Wait,
                    || {
                        format!(
                            "the host's memory budget of {} MiB is taken by the calls in \
                             flight ({permits} MiB needed)",
                            memory.total_bytes() >> 20
                        )
                    },
                    cancel,
                    queue_deadline,
                )
                .await?,
            );
        }
        held.global = Some(
            self.acquire(
                &self.global,
                fair_key,
                1,
                OnLimit::Wait,
                || format!("{} calls are already in flight", self.global_size),
                cancel,
                queue_deadline,
            )
            .await?,
        );
        Ok(held)
    }

    fn enqueue(&self) -> Result<Queued<'_>, Outcome> {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        let guard = Queued(&self.queued);
        if before >= self.max_queued {
            return Err(Outcome::RateLimited {
                message: format!(
                    "the queue is full ({} calls waiting); try again shortly",
                    self.max_queued
                ),
                retry_after_ms: 100,
            });
        }
        Ok(guard)
    }

    /// Passes one rate limit: at once if a permit is free, after waiting if
    /// the rule says wait and the wait ends before the queue deadline.
    /// `check` answers `Ok(Ok(()))` (a permit), `Ok(Err(wait))` (none for
    /// `wait`), or `Err` (refused outright).
    async fn pass_rate<F>(
        &self,
        mut check: impl FnMut() -> F,
        on_limit: OnLimit,
        what: &str,
        cancel: Option<&CancellationToken>,
        queue_deadline: Instant,
    ) -> Result<(), Outcome>
    where
        F: Future<Output = Result<Result<(), Duration>, Outcome>>,
    {
        loop {
            let wait = match check().await? {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            let retry_after_ms = wait.as_millis().max(1) as u64;
            if on_limit == OnLimit::Reject {
                return Err(Outcome::RateLimited {
                    message: format!("{what} was reached"),
                    retry_after_ms,
                });
            }
            if Instant::now() + wait > queue_deadline {
                return Err(Outcome::RateLimited {
                    message: format!(
                        "{what} was reached and the next permit comes after the queue deadline"
                    ),
                    retry_after_ms,
                });
            }
            let _queued = self.enqueue()?;
            wait_or_cancel(tokio::time::sleep(wait), cancel).await?;
        }
    }

    /// Takes `permits` of `slots` for `caller`: at once if they are free,
    /// after waiting in the bounded queue (served fairly between callers) if
    /// the rule says wait and they come before the queue deadline.
    #[expect(
        clippy::too_many_arguments,
        reason = "one admission step, named at each call"
    )]
    async fn acquire(
        &self,
        slots: &Arc<FairPool>,
        caller: &str,
        permits: u64,
        on_limit: OnLimit,
        busy: impl Fn() -> String,
        cancel: Option<&CancellationToken>,
        queue_deadline: Instant,
    ) -> Result<Held, Outcome> {
        if slots.try_take(caller, permits) {
            return Ok(Held::Taken(permits));
        }
        if on_limit == OnLimit::Reject {
            return Err(Outcome::RateLimited {
                message: busy(),
                retry_after_ms: 10,
            });
        }
        let _queued = self.enqueue()?;
        let acquire =
            tokio::time::timeout_at(queue_deadline.into(), slots.acquire(caller, permits));
        match wait_or_cancel(acquire, cancel).await? {
            Ok(Some(permit)) => Ok(Held::Granted(permit)),
            Ok(None) => Err(Outcome::RateLimited {
                message: format!("{}, and there are never more than {}", busy(), slots.size()),
                retry_after_ms: 100,
            }),
            Err(_) => Err(Outcome::RateLimited {
                message: format!("{} and the queue deadline passed", busy()),
                retry_after_ms: 100,
            }),
        }
    }
}

/// A permit of a limiter in this process, or the wait for one.
fn local_check(limiter: &DefaultDirectRateLimiter) -> Result<(), Duration> {
    limiter
        .check()
        .map_err(|n| n.wait_time_from(DefaultClock::default().now()))
}

async fn wait_or_cancel<T>(
    work: impl Future<Output = T>,
    cancel: Option<&CancellationToken>,
) -> Result<T, Outcome> {
    match cancel {
        None => Ok(work.await),
        Some(cancel) => tokio::select! {
            output = work => Ok(output),
            () = cancel.cancelled() => Err(Outcome::Cancelled { message: "cancelled while waiting to start".into() }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_read_the_monotonic_clock() {
        // governor's default `quanta` clock calibrates itself against the
        // OS clock the first time one is made, spinning for milliseconds on
        // whatever thread loads the first rate-limited tool; the workspace
        // turns that feature off. This stops compiling if it comes back.
        let clock: DefaultClock = governor::clock::MonotonicClock;
        let limiter = governor::RateLimiter::direct_with_clock(quota(&rate(1, 1)), clock);
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err(), "one permit a second, burst 1");
    }

    fn rate(count: u32, burst: u32) -> Rate {
        crate::parse_rate(&format!("{count}/s"), Some(burst)).unwrap()
    }

    fn limits(max_concurrency: u32, rate: Option<Rate>, on_limit: OnLimit) -> Limits {
        Limits {
            max_concurrency,
            rate,
            on_limit,
            ..Limits::default()
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Awaits an admission that must be refused with an outcome of `kind`
    /// whose message contains `text`, and returns that outcome.
    async fn refused_with<T>(
        admission: impl Future<Output = Result<T, Outcome>>,
        kind: &str,
        text: &str,
    ) -> Outcome {
        let Err(refused) = admission.await else {
            panic!("admitted; expected {kind} ({text})");
        };
        assert_eq!(refused.kind(), kind, "{refused}");
        assert!(
            refused.message().is_some_and(|m| m.contains(text)),
            "{refused}"
        );
        refused
    }

    #[tokio::test]
    async fn a_reject_cap_refuses_past_its_size() {
        let gates = Gates::new(10, 10, None, None, None, None, None);
        let l = limits(2, None, OnLimit::Reject);
        let a = gates.admit("c", &l, None, None, later()).await.unwrap();
        let _b = gates.admit("c", &l, None, None, later()).await.unwrap();
        refused_with(
            gates.admit("c", &l, None, None, later()),
            "rate-limited",
            "",
        )
        .await;
        assert_eq!(gates.in_flight(), 2);
        drop(a);
        gates.admit("c", &l, None, None, later()).await.unwrap();
    }

    #[tokio::test]
    async fn a_wait_cap_queues_until_the_deadline() {
        let gates = Gates::new(1, 10, None, None, None, None, None);
        let l = limits(5, None, OnLimit::Wait);
        let _held = gates.admit("c", &l, None, None, later()).await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(20);
        refused_with(
            gates.admit("c", &l, None, None, deadline),
            "rate-limited",
            "queue deadline",
        )
        .await;
        assert_eq!(gates.queued(), 0);
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let gates = Arc::new(Gates::new(1, 1, None, None, None, None, None));
        let l = limits(5, None, OnLimit::Wait);
        let held = gates.admit("c", &l, None, None, later()).await.unwrap();
        let waiting = {
            let (gates, l) = (gates.clone(), l.clone());
            tokio::spawn(async move { gates.admit("c", &l, None, None, later()).await.map(|_| ()) })
        };
        while gates.queued() == 0 {
            tokio::task::yield_now().await;
        }
        refused_with(
            gates.admit("c", &l, None, None, later()),
            "rate-limited",
            "queue is full",
        )
        .await;
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_reject_rate_reports_the_wait() {
        let gates = Gates::new(10, 10, None, None, None, None, None);
        let l = limits(10, Some(rate(1, 1)), OnLimit::Reject);
        drop(gates.admit("c", &l, None, None, later()).await.unwrap());
        let refused = refused_with(
            gates.admit("c", &l, None, None, later()),
            "rate-limited",
            "",
        )
        .await;
        let Outcome::RateLimited { retry_after_ms, .. } = refused else {
            panic!("{refused}")
        };
        assert!((1..=1000).contains(&retry_after_ms), "{retry_after_ms}");
    }

    #[tokio::test]
    async fn a_wait_rate_lets_calls_through_later() {
        let gates = Gates::new(10, 10, None, None, None, None, None);
        let l = limits(10, Some(rate(100, 1)), OnLimit::Wait);
        for _ in 0..3 {
            drop(gates.admit("c", &l, None, None, later()).await.unwrap());
        }
    }

    #[tokio::test]
    async fn caller_limits_are_per_key() {
        let gates = Gates::new(
            10,
            10,
            Some(1),
            None,
            Some(RateRule::new(rate(1, 1), OnLimit::Reject)),
            None,
            None,
        );
        let l = limits(10, None, OnLimit::Wait);
        let _a = gates
            .admit("c", &l, Some("alice"), None, later())
            .await
            .unwrap();
        let _b = gates
            .admit("c", &l, Some("bob"), None, later())
            .await
            .unwrap();
        refused_with(
            gates.admit("c", &l, Some("alice"), None, later()),
            "rate-limited",
            "caller",
        )
        .await;
    }

    #[tokio::test]
    async fn the_memory_budget_bounds_the_sum_of_the_caps() {
        let gates = Gates::new(10, 10, None, None, None, Some(100), None);
        let mut l = limits(10, None, OnLimit::Wait);
        // 40 MiB + the overhead each: two fit in 100 MiB, a third does not.
        l.memory_bytes = 40 << 20;
        let a = gates.admit("c", &l, None, None, later()).await.unwrap();
        let _b = gates.admit("c", &l, None, None, later()).await.unwrap();
        let memory = gates.memory().unwrap();
        let reserved = memory.reserved_bytes();
        assert_eq!(
            reserved,
            (2 * super::super::memory::cost_mb(40 << 20)) << 20
        );
        let deadline = Instant::now() + Duration::from_millis(20);
        refused_with(
            gates.admit("c", &l, None, None, deadline),
            "rate-limited",
            "memory budget",
        )
        .await;
        assert_eq!(
            gates.in_flight(),
            2,
            "a call refused for memory holds no slot"
        );
        drop(a);
        let _c = gates.admit("c", &l, None, None, later()).await.unwrap();
        assert_eq!(memory.peak_bytes(), reserved);
        l.memory_bytes = 99 << 20;
        refused_with(
            gates.admit("c", &l, None, None, later()),
            "memory-limit",
            "",
        )
        .await;
    }

    #[tokio::test]
    async fn an_answer_keeps_its_part_of_the_call_s_reservation_and_no_more() {
        let gates = Gates::new(10, 10, None, None, None, Some(100), None);
        let mut l = limits(10, None, OnLimit::Wait);
        l.memory_bytes = 40 << 20;
        let memory = gates.memory().unwrap();
        // Taken at once: 42 MiB; an answer of 3 MiB and a byte keeps 4.
        let mut a = gates.admit("c", &l, None, None, later()).await.unwrap();
        let kept = a.keep_memory((3 << 20) + 1).unwrap();
        assert_eq!(kept.mib(), 4);
        drop(a);
        assert_eq!(memory.reserved_bytes(), 4 << 20, "the rest went back");
        drop(kept);
        assert_eq!(memory.reserved_bytes(), 0);
        // Any answer keeps a MiB; none keeps more than its call reserved.
        let mut b = gates.admit("c", &l, None, None, later()).await.unwrap();
        assert_eq!(b.keep_memory(10).unwrap().mib(), 1);
        let most = b.keep_memory(1 << 30).unwrap();
        assert_eq!(most.mib(), 41, "what was left of the 42 MiB");
        assert!(b.keep_memory(1).is_none(), "nothing left to keep");
        drop(b);
        assert_eq!(memory.reserved_bytes(), 41 << 20);
        drop(most);
        // Granted after a wait: the permit gives back only what it keeps.
        let first = gates.admit("c", &l, None, None, later()).await.unwrap();
        let second = gates.admit("c", &l, None, None, later()).await.unwrap();
        let third = gates.admit("c", &l, None, None, later());
        drop(first);
        let mut third = third.await.unwrap();
        let kept = third.keep_memory(5 << 20).unwrap();
        drop((second, third));
        assert_eq!(memory.reserved_bytes(), 5 << 20);
        drop(kept);
        assert_eq!(memory.reserved_bytes(), 0);
        // Without a budget, nothing to keep.
        let unbudgeted = Gates::new(10, 10, None, None, None, None, None);
        let mut c = unbudgeted
            .admit("c", &l, None, None, later())
            .await
            .unwrap();
        assert!(c.keep_memory(1 << 20).is_none());
    }

    #[tokio::test]
    async fn new_limits_replace_the_gate_built_for_the_old_ones() {
        let gates = Gates::new(10, 10, None, None, None, None, None);
        let wide = limits(32, None, OnLimit::Reject);
        let _a = gates.admit("c", &wide, None, None, later()).await.unwrap();
        let narrow = limits(1, Some(rate(1, 1)), OnLimit::Reject);
        let _b = gates
            .admit("c", &narrow, None, None, later())
            .await
            .unwrap();
        let refused = gates
            .admit("c", &narrow, None, None, later())
            .await
            .err()
            .unwrap();
        assert!(matches!(refused, Outcome::RateLimited { .. }), "{refused}");
    }

    #[test]
    fn first_calls_of_a_component_at_once_share_one_gate() {
        let one = limits(1, None, OnLimit::Reject);
        for _ in 0..200 {
            let gates = Gates::new(100, 100, None, None, None, None, None);
            let start = std::sync::Barrier::new(8);
            let found: Vec<Arc<ComponentGate>> = std::thread::scope(|scope| {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            gates.component("c", &one)
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .filter_map(|thread| thread.join().ok())
                    .collect()
            });
            assert_eq!(found.len(), 8);
            assert!(
                found.iter().all(|gate| Arc::ptr_eq(gate, &found[0])),
                "calls of one component at once got different gates (so more slots)"
            );
        }
    }

    #[tokio::test]
    async fn cancelling_a_waiting_call_frees_its_place() {
        let gates = Gates::new(1, 10, None, None, None, None, None);
        let l = limits(5, None, OnLimit::Wait);
        let _held = gates.admit("c", &l, None, None, later()).await.unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        refused_with(
            gates.admit("c", &l, None, Some(&cancel), later()),
            "cancelled",
            "",
        )
        .await;
        assert_eq!(gates.queued(), 0);
    }

    /// Slots taken before a later gate refused (or the admission was
    /// dropped while it waited) come back: none leaks.
    #[tokio::test]
    async fn an_admission_refused_half_way_gives_back_what_it_took() {
        let gates = Gates::new(1, 10, None, None, None, Some(1000), None);
        let one = limits(1, None, OnLimit::Wait);
        let other = gates
            .admit("a", &one, Some("x"), None, later())
            .await
            .unwrap();
        // `b`'s slot and memory are free, the one global slot is not.
        let soon = Instant::now() + Duration::from_millis(20);
        refused_with(
            gates.admit("b", &one, Some("y"), None, soon),
            "rate-limited",
            "queue deadline",
        )
        .await;
        let waiting = gates.admit("b", &one, Some("y"), None, later());
        let dropped = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        assert!(dropped.is_err(), "it waited for the global slot");
        drop(other);
        assert_eq!(gates.in_flight(), 0);
        let memory = gates.memory().unwrap();
        assert_eq!(memory.reserved_bytes(), 0, "the memory came back");
        // `b`'s one slot is free again: this call takes it at once.
        let soon = Instant::now() + Duration::from_millis(20);
        let _b = gates.admit("b", &one, Some("y"), None, soon).await.unwrap();
        assert_eq!(gates.peak(Some("b")), 1);
    }
}
