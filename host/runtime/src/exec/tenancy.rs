//! Tenants: who calls, which tools they see, and their quotas.
//!
//! A [`Tenant`] is the definition (a name, a [`ToolFilter`], a rate, calls
//! in flight, fuel per minute, ceilings on each call's limits). A [`Caller`]
//! is a tenant with its live quota state; the faces (HTTP, MCP) resolve a
//! request to a `Caller` and hand it to the executor in
//! [`CallOptions::tenant`](crate::CallOptions::tenant). The executor then,
//! on the one catalog snapshot the call runs on:
//!
//! 1. treats a tool the tenant may not see as unknown (suggesting only tools
//!    it sees, so it learns nothing of the others);
//! 2. takes one call from the tenant's rate, one of its slots and checks its
//!    fuel (refused as [`Outcome::RateLimited`]);
//! 3. narrows the call's limits to the tenant's [`Ceiling`] and draws its
//!    fuel from the tenant's bucket (see [`FuelAccount`]);
//! 4. reports the finished call to the caller's [`Observer`].
//!
//! A face that must refuse before it answers (HTTP: `429` before reading a
//! batch) takes the quotas itself with [`Caller::admit`] and passes the
//! [`Admission`] to [`Executor::call_admitted`](crate::Executor::call_admitted):
//! the same code takes them either way.
//!
//! Fuel is reserved, not charged afterwards: each attempt of a call takes
//! its whole fuel budget from the tenant's bucket when the executor admits
//! it, clamped to what is left, and what it did not burn goes back when it
//! ends. Calls running at once thus never burn more than the bucket holds;
//! a tenant with less than 1% of its quota left is refused until the bucket
//! refills. (The example is on the public
//! [`tenancy`](crate::tenancy) module.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use futures::future::BoxFuture;

use super::gate::quota;
use super::memory::MemoryHold;
use super::{CallOptions, Ceiling, FuelAccount};
use crate::policy::Rate;
use crate::shared::{OnFailure, Pool, Shared, StoreError, Taken};
use crate::{CallRecord, Catalog, Outcome};

/// A tenant as the host enforces it. Build one with [`Tenant::unlimited`]
/// and narrow its fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Tenant {
    /// The name: calls count under it, and MCP sessions belong to it.
    pub name: String,
    /// Which tools it may see and call.
    pub tools: ToolFilter,
    /// Its call rate; `None` is unlimited.
    pub rate: Option<Rate>,
    /// Its calls in flight at once; `None` is unlimited.
    pub concurrency: Option<u32>,
    /// Its fuel per minute; `None` is unlimited.
    pub fuel_per_minute: Option<u64>,
    /// Whether it may call tools that reach outside the sandbox (HTTP or
    /// directories). Without it, such tools are hidden like missing ones.
    pub reach_outside: bool,
    /// Its ceilings on every call's limits.
    pub ceiling: Ceiling,
}

impl Tenant {
    /// A tenant named `name` with every tool and no quotas: the starting
    /// point, to be narrowed.
    pub fn unlimited(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            tools: ToolFilter::all(),
            rate: None,
            concurrency: None,
            fuel_per_minute: None,
            reach_outside: true,
            ceiling: Ceiling::default(),
        }
    }
}

/// Tool names and `prefix*` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFilter(Vec<String>);

impl ToolFilter {
    /// Exactly these names and `prefix*` patterns.
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        Self(patterns.into_iter().map(Into::into).collect())
    }

    /// Every tool.
    pub fn all() -> Self {
        Self::new(["*"])
    }

    /// True when `name` is allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => pattern == name,
            })
    }
}

/// Why a caller may not make a call now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The tenant may not see the tool (or, without `reach_outside`, the
    /// tool reaches outside or does not exist): the same refusal either way.
    Hidden {
        /// What to tell the tenant.
        message: String,
    },
    /// Over a quota; try again after `retry_after`.
    OverQuota {
        /// Which quota: `rate`, `concurrency` or `fuel`.
        reason: &'static str,
        /// What to tell the tenant.
        message: String,
        /// When a retry may succeed.
        retry_after: Duration,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Hidden { message } | Refusal::OverQuota { message, .. } => {
                f.write_str(message)
            }
        }
    }
}

impl Refusal {
    /// The wait before a retry, in whole seconds as `Retry-After` takes it:
    /// rounded up, at least 1 (a hidden tool says 1 too).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::OverQuota { retry_after, .. } => {
                retry_after.as_secs_f64().ceil().clamp(1.0, u64::MAX as f64) as u64
            }
            Refusal::Hidden { .. } => 1,
        }
    }

    /// The refusal as a call's outcome: over quota is `rate-limited`, a
    /// hidden tool is unknown.
    fn into_outcome(self, catalog: &Catalog, tool: &str, caller: &Caller) -> Outcome {
        match self {
            Refusal::Hidden { .. } => {
                crate::unknown_tool(catalog, tool, |name| caller.sees(catalog, name))
            }
            Refusal::OverQuota {
                message,
                retry_after,
                ..
            } => rate_limited(message, retry_after),
        }
    }
}

/// A `rate-limited` outcome that says to retry after `wait` (at least 1 ms).
fn rate_limited(message: String, wait: Duration) -> Outcome {
    Outcome::RateLimited {
        message,
        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}

/// What a face learns of its tenants' calls, for its metrics.
pub trait Observer: Send + Sync {
    /// A call of `tenant` was refused over the quota `reason`.
    fn refused(&self, tenant: &str, reason: &'static str);
    /// A call of `tenant` ended (whatever its outcome).
    fn settled(&self, tenant: &str, record: &CallRecord);
}

/// A tenant with its live quota state. Cheap to clone: clones share the
/// quotas.
#[derive(Clone)]
pub struct Caller(Arc<Quotas>);

struct Quotas {
    tenant: Tenant,
    /// The quotas in this process: the whole quotas without a store; with
    /// one, what [`OnFailure::Local`] enforces while it is down.
    local: Local,
    shared: Option<SharedQuotas>,
    observer: Option<Arc<dyn Observer>>,
}

#[derive(Default)]
struct Local {
    rate: Option<DefaultDirectRateLimiter>,
    slots: Option<Arc<Semaphore>>,
    fuel: Option<Mutex<FuelBucket>>,
}

impl Local {
    /// The quotas of `tenant`, each divided by `nodes`.
    fn new(tenant: &Tenant, nodes: u32) -> Self {
        Self {
            rate: tenant
                .rate
                .as_ref()
                .map(|rate| RateLimiter::direct(quota(&divided(rate, nodes)))),
            slots: tenant
                .concurrency
                .map(|n| Arc::new(Semaphore::new(share(u64::from(n), nodes) as usize))),
            fuel: tenant.fuel_per_minute.map(|per_minute| {
                let per_minute = share(per_minute, nodes);
                Mutex::new(FuelBucket {
                    per_minute,
                    available: per_minute as f64,
                    at: Instant::now(),
                })
            }),
        }
    }
}

/// A tenant's pools in the shared store.
struct SharedQuotas {
    shared: Arc<Shared>,
    rate: Option<(String, Pool)>,
    slots: Option<(String, Pool)>,
    fuel: Option<(String, Pool)>,
}

impl SharedQuotas {
    fn new(tenant: &Tenant, shared: Arc<Shared>) -> Self {
        let key = |what: &str| format!("tenant:{}:{what}", tenant.name);
        Self {
            rate: tenant.rate.as_ref().map(|rate| (key("rate"), bucket(rate))),
            slots: tenant.concurrency.map(|n| {
                (
                    key("slots"),
                    Pool::Slots {
                        capacity: u64::from(n),
                    },
                )
            }),
            fuel: tenant.fuel_per_minute.map(|per_minute| {
                (
                    key("fuel"),
                    Pool::Bucket {
                        capacity: per_minute,
                        per_second: per_minute as f64 / 60.0,
                    },
                )
            }),
            shared,
        }
    }
}

/// `quota` shared by `nodes`: each node's part, at least 1; one node keeps
/// it all.
fn share(quota: u64, nodes: u32) -> u64 {
    if nodes <= 1 {
        quota
    } else {
        (quota / u64::from(nodes)).max(1)
    }
}

/// `rate` shared by `nodes`: each node's part, at least 1 (so a quota
/// smaller than the node count is exceeded by the rounding). One node keeps
/// the rate as it is.
pub(crate) fn divided(rate: &Rate, nodes: u32) -> Rate {
    if nodes <= 1 {
        return *rate;
    }
    Rate {
        count: (rate.count / nodes).max(1),
        per: rate.per,
        burst: (rate.burst / nodes).max(1),
    }
}

/// A rate as a token bucket of the shared store.
pub(crate) fn bucket(rate: &Rate) -> Pool {
    let count = rate.count.max(1);
    let burst = if rate.burst == 0 { count } else { rate.burst };
    Pool::Bucket {
        capacity: u64::from(burst),
        per_second: f64::from(count) / rate.per.as_secs_f64().max(1e-9),
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("tenant", &self.0.tenant)
            .finish_non_exhaustive()
    }
}

/// Fuel per minute as a bucket that refills continuously.
#[derive(Debug)]
struct FuelBucket {
    per_minute: u64,
    available: f64,
    at: Instant,
}

impl FuelBucket {
    fn refill(&mut self, now: Instant) {
        let rate = self.per_minute as f64 / 60.0;
        self.available = (self.available
            + now.saturating_duration_since(self.at).as_secs_f64() * rate)
            .min(self.per_minute as f64);
        self.at = now;
    }

    /// Spent: less than 1% of the quota left (a call capped below that could
    /// do nothing useful). The wait until the bucket holds that much again.
    fn spent(&self) -> Option<Duration> {
        let floor = (self.per_minute as f64 / 100.0).max(1.0);
        (self.available < floor).then(|| {
            let rate = self.per_minute as f64 / 60.0;
            Duration::from_secs_f64(((floor - self.available) / rate).clamp(0.001, 60.0))
        })
    }
}

/// One call's worth of a tenant's quotas, held until the call ends.
#[derive(Debug)]
pub struct Admission {
    caller: Caller,
    slot: Option<Slot>,
}

/// A tenant's place for one call in flight (one of its `concurrency`),
/// taken out of its [`Admission`] by [`Admission::detach_slot`] so that it
/// can be held longer than the call; given back when dropped, with what
/// its answer keeps of the call's memory reservation, if it took that over
/// ([`DetachedSlot::keep_from`]). Holds no place for a tenant without a
/// concurrency quota.
#[derive(Debug, Default)]
#[must_use = "the place is given back when this is dropped"]
pub struct DetachedSlot {
    /// The place, and any taken over with [`DetachedSlot::keep_from`]:
    /// held for their `Drop`.
    slots: Vec<Slot>,
    /// Host memory its answer keeps (see [`DetachedSlot::keep_from`]).
    memory: Vec<MemoryHold>,
}

impl DetachedSlot {
    /// Takes over what `hold` kept for a call that has ended (its answer's
    /// part of the call's memory reservation, and any place), to be given
    /// back with this slot; `hold` is released, so anything kept there
    /// later is given back at once.
    pub fn keep_from(&mut self, hold: &PlaceHold) {
        let (places, memory) = hold.take();
        self.memory.extend(memory);
        for place in places {
            self.slots.extend(place.slots);
            self.memory.extend(place.memory);
        }
    }

    /// The host memory its answer keeps, in MiB.
    #[cfg(test)]
    fn memory_mib(&self) -> u64 {
        self.memory.iter().map(MemoryHold::mib).sum()
    }
}

/// Where finished calls' tenant places wait while their answers are on the
/// way to the client, for a face that cannot take the place out of the
/// [`Admission`] itself (the executor admits the call: MCP). Give it to
/// the calls with [`CallOptions::hold_place`]: each call's place then goes
/// here when the call ends, rather than back to its tenant, and every
/// place here is given back by [`PlaceHold::release`] (once the answer has
/// been handed to the connection, or the connection is gone). A place that
/// arrives after the release is given back at once. Clones share the hold.
///
/// With a host memory budget, the hold also keeps what each answer keeps of
/// its call's memory reservation (its size in whole MiB, at least one), so
/// that answers waiting on slow clients count against the budget as the
/// calls did, whoever the tenant; a call without a tenant keeps that too.
#[derive(Debug, Clone, Default)]
pub struct PlaceHold(Arc<Mutex<Holding>>);

#[derive(Debug, Default)]
struct Holding {
    released: bool,
    places: Vec<DetachedSlot>,
    memory: Vec<MemoryHold>,
}

impl PlaceHold {
    /// An empty hold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `place` until [`PlaceHold::release`]; gives it back at once
    /// if that came already.
    pub fn keep(&self, place: DetachedSlot) {
        let mut holding = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !holding.released {
            holding.places.push(place);
        }
    }

    /// Keeps `memory` (the part of a call's memory reservation its answer
    /// keeps while it waits in host memory) until [`PlaceHold::release`];
    /// gives it back at once if that came already.
    pub(crate) fn keep_memory(&self, memory: MemoryHold) {
        let mut holding = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !holding.released {
            holding.memory.push(memory);
        }
    }

    /// The host memory kept, in MiB.
    #[cfg(test)]
    fn memory_mib(&self) -> u64 {
        let holding = self.0.lock().unwrap_or_else(|e| e.into_inner());
        holding.memory.iter().map(MemoryHold::mib).sum()
    }

    /// Gives back every place and all memory kept, and any kept later.
    pub fn release(&self) {
        drop(self.take());
    }

    /// Marks the hold released and hands over what it kept.
    fn take(&self) -> (Vec<DetachedSlot>, Vec<MemoryHold>) {
        let mut holding = self.0.lock().unwrap_or_else(|e| e.into_inner());
        holding.released = true;
        (
            std::mem::take(&mut holding.places),
            std::mem::take(&mut holding.memory),
        )
    }
}

/// A slot of the tenant's concurrency quota, freed when dropped.
#[derive(Debug)]
enum Slot {
    Local(#[expect(dead_code, reason = "held for its Drop")] OwnedSemaphorePermit),
    Shared(Caller),
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Slot::Shared(caller) = self
            && let Some(shared) = &caller.0.shared
            && let Some((key, pool)) = &shared.slots
        {
            shared.shared.release(key, *pool);
        }
    }
}

impl Admission {
    /// The caller whose quotas this is.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Takes the tenant's place out of this admission, to be held until the
    /// returned [`DetachedSlot`] is dropped rather than until the call ends.
    /// For a face whose answer stays in host memory until its client takes
    /// it: the answer then counts as a call in flight. Keep the slot until
    /// the call has ended at least; dropped sooner, it would let the tenant
    /// have more calls in flight than its quota.
    pub fn detach_slot(&mut self) -> DetachedSlot {
        DetachedSlot {
            slots: self.slot.take().into_iter().collect(),
            memory: Vec::new(),
        }
    }

    /// Narrows `options` to the tenant's ceilings, counts the call under
    /// the tenant's name and draws its fuel from the tenant's quota.
    pub(crate) fn apply(&self, options: &mut CallOptions) {
        let state = &self.caller.0;
        options.ceiling = state.tenant.ceiling;
        options.caller = Some(state.tenant.name.clone());
        options.fuel_account = state
            .tenant
            .fuel_per_minute
            .is_some()
            .then(|| Arc::new(self.caller.clone()) as Arc<dyn FuelAccount>);
    }
}

impl Caller {
    /// `tenant` with fresh quotas in this process.
    pub fn new(tenant: Tenant) -> Self {
        Self::build(tenant, None, None)
    }

    /// `tenant` with fresh quotas, reporting its calls to `observer`; its
    /// quotas are kept in `shared` when given (see [`crate::shared`]).
    pub fn observed(
        tenant: Tenant,
        observer: Arc<dyn Observer>,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        Self::build(tenant, Some(observer), shared)
    }

    fn build(
        tenant: Tenant,
        observer: Option<Arc<dyn Observer>>,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        let local = match &shared {
            None => Local::new(&tenant, 1),
            Some(shared) => match shared.config().on_failure {
                OnFailure::Local => Local::new(&tenant, shared.config().nodes),
                _ => Local::default(),
            },
        };
        Self(Arc::new(Quotas {
            local,
            shared: shared.map(|shared| SharedQuotas::new(&tenant, shared)),
            observer,
            tenant,
        }))
    }

    /// The tenant's definition.
    pub fn tenant(&self) -> &Tenant {
        &self.0.tenant
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.0.tenant.name
    }

    /// True when the tenant may see and call `tool` in `catalog`.
    pub fn sees(&self, catalog: &Catalog, tool: &str) -> bool {
        self.check(catalog, tool).is_ok()
    }

    /// Refuses a tool the tenant may not call, the same way whether or not
    /// it exists, so tenants learn nothing of tools outside their list. For
    /// a tenant without `reach_outside`, a tool missing from the catalog is
    /// refused like one that reaches outside: otherwise two answers would
    /// tell which of its names exist.
    pub fn check(&self, catalog: &Catalog, tool: &str) -> Result<(), Refusal> {
        let tenant = &self.0.tenant;
        let hidden = || Refusal::Hidden {
            message: format!("tool `{tool}` is not available to this key"),
        };
        if !tenant.tools.allows(tool) {
            return Err(hidden());
        }
        if !tenant.reach_outside && (catalog.reaches_outside(tool) || catalog.entry(tool).is_none())
        {
            return Err(hidden());
        }
        Ok(())
    }

    /// Takes one call from the tenant's rate (opening an MCP session costs
    /// one too), or says when to retry. A refusal is reported to the
    /// observer.
    pub async fn take_rate(&self) -> Result<(), Refusal> {
        let taken = self.rate().await;
        self.reported(taken)
    }

    /// Takes one call's worth of the tenant's quotas, or says when to retry.
    /// The fuel is only checked here (refused when spent); the executor
    /// reserves it when it admits the call. A refusal is reported to the
    /// observer.
    pub async fn admit(&self) -> Result<Admission, Refusal> {
        let taken = self.take().await;
        self.reported(taken)
    }

    async fn rate(&self) -> Result<(), Refusal> {
        let over = |retry_after| Refusal::OverQuota {
            reason: "rate",
            message: format!("tenant `{}` is over its call rate", self.name()),
            retry_after,
        };
        if let Some(shared) = &self.0.shared
            && let Some((key, pool)) = &shared.rate
        {
            match shared.shared.take_one(key, *pool).await {
                Taken::Yes(()) => return Ok(()),
                Taken::No(wait) => return Err(over(wait)),
                Taken::Down(error) => self.store_down(&shared.shared, error)?,
            }
        }
        if let Some(rate) = &self.0.local.rate
            && let Err(not_until) = rate.check()
        {
            return Err(over(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        Ok(())
    }

    /// With the store down: refused under [`OnFailure::Refuse`], or `Ok` to
    /// go on with the local quotas.
    fn store_down(&self, shared: &Shared, error: StoreError) -> Result<(), Refusal> {
        shared.unavailable(error).map_err(|error| Refusal::OverQuota {
            reason: "store",
            message: format!(
                "tenant `{}`'s shared quotas cannot be checked now ({error}); try again shortly",
                self.name()
            ),
            retry_after: shared.config().retry,
        })
    }

    async fn slot(&self) -> Result<Option<Slot>, Refusal> {
        let busy = || Refusal::OverQuota {
            reason: "concurrency",
            message: format!(
                "tenant `{}` already has {} calls in flight",
                self.name(),
                self.0.tenant.concurrency.unwrap_or_default()
            ),
            retry_after: Duration::from_secs(1),
        };
        if let Some(shared) = &self.0.shared
            && let Some((key, pool)) = &shared.slots
        {
            match shared.shared.take_one(key, *pool).await {
                Taken::Yes(()) => return Ok(Some(Slot::Shared(self.clone()))),
                Taken::No(_) => return Err(busy()),
                Taken::Down(error) => self.store_down(&shared.shared, error)?,
            }
        }
        match &self.0.local.slots {
            Some(slots) => slots
                .clone()
                .try_acquire_owned()
                .map(|permit| Some(Slot::Local(permit)))
                .map_err(|_| busy()),
            None => Ok(None),
        }
    }

    async fn take(&self) -> Result<Admission, Refusal> {
        self.rate().await?;
        let slot = self.slot().await?;
        // With a store, fuel is checked when the executor reserves it.
        if let Some(bucket) = &self.0.local.fuel
            && self.0.shared.is_none()
        {
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            if let Some(retry_after) = bucket.spent() {
                return Err(Refusal::OverQuota {
                    reason: "fuel",
                    message: self.fuel_spent(bucket.per_minute),
                    retry_after,
                });
            }
        }
        Ok(Admission {
            caller: self.clone(),
            slot,
        })
    }

    fn reported<T>(&self, taken: Result<T, Refusal>) -> Result<T, Refusal> {
        taken.inspect_err(|refusal| {
            if let (Refusal::OverQuota { reason, .. }, Some(observer)) = (refusal, &self.0.observer)
            {
                observer.refused(self.name(), reason);
            }
        })
    }

    /// Reports a finished call to the observer.
    pub(crate) fn settle(&self, record: &CallRecord) {
        if let Some(observer) = &self.0.observer {
            observer.settled(self.name(), record);
        }
    }

    fn fuel_spent(&self, per_minute: u64) -> String {
        format!(
            "tenant `{}` has used its fuel budget of {per_minute} per minute",
            self.name()
        )
    }
}

impl FuelAccount for Caller {
    /// Takes `budget` from the bucket, or what is left when that is less.
    fn reserve(&self, budget: u64) -> BoxFuture<'_, Result<u64, Outcome>> {
        Box::pin(async move {
            let spent = |per_minute, wait| rate_limited(self.fuel_spent(per_minute), wait);
            if let Some(shared) = &self.0.shared
                && let Some((key, pool)) = &shared.fuel
            {
                let per_minute = pool.capacity();
                let floor = (per_minute / 100).max(1);
                match shared.shared.reserve(key, *pool, budget, floor).await {
                    Taken::Yes(granted) => return Ok(granted),
                    Taken::No(wait) => return Err(spent(per_minute, wait)),
                    Taken::Down(error) => {
                        if let Err(Refusal::OverQuota {
                            message,
                            retry_after,
                            ..
                        }) = self.store_down(&shared.shared, error)
                        {
                            return Err(rate_limited(message, retry_after));
                        }
                    }
                }
            }
            let Some(bucket) = &self.0.local.fuel else {
                return Ok(budget);
            };
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            if let Some(wait) = bucket.spent() {
                return Err(spent(bucket.per_minute, wait));
            }
            let granted = budget.min(bucket.available as u64);
            bucket.available -= granted as f64;
            Ok(granted)
        })
    }

    fn refund(&self, fuel: u64) {
        if let Some(shared) = &self.0.shared
            && let Some((key, pool)) = &shared.fuel
            && shared.shared.stats().up
        {
            shared.shared.refund(key, *pool, fuel);
            return;
        }
        if let Some(bucket) = &self.0.local.fuel {
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            bucket.available = (bucket.available + fuel as f64).min(bucket.per_minute as f64);
        }
    }
}

/// A call's tenancy inside the executor: taken before the call, settled
/// after it.
pub(crate) struct Entered {
    admission: Admission,
    /// Where the place goes when the call ends, if not back to the tenant.
    hold: Option<PlaceHold>,
}

impl Entered {
    /// Admits a call of `tool` on `catalog` for the tenant `options` names
    /// (pre-admitted or not), and narrows `options` to it. `Ok(None)`: the
    /// call has no tenant. `Err`: the refusal as the call's outcome.
    pub(crate) async fn enter(
        catalog: &Catalog,
        tool: &str,
        options: &mut CallOptions,
        admitted: Option<Admission>,
    ) -> Result<Option<Self>, Outcome> {
        let admission = match (admitted, &options.tenant) {
            (Some(admission), _) => admission,
            (None, Some(caller)) => {
                caller
                    .check(catalog, tool)
                    .map_err(|refusal| refusal.into_outcome(catalog, tool, caller))?;
                caller
                    .admit()
                    .await
                    .map_err(|refusal| refusal.into_outcome(catalog, tool, caller))?
            }
            (None, None) => return Ok(None),
        };
        let caller = admission.caller.clone();
        // A pre-admitted call is checked here too, on the snapshot it runs on.
        if let Err(refusal) = caller.check(catalog, tool) {
            return Err(refusal.into_outcome(catalog, tool, &caller));
        }
        admission.apply(options);
        options.tenant = Some(caller);
        Ok(Some(Self {
            admission,
            hold: options.hold.clone(),
        }))
    }

    /// Gives the quotas back and reports the call. An unknown tool's
    /// suggestions come from the tenant's tools only.
    pub(crate) fn settle(mut self, catalog: &Catalog, tool: &str, record: &mut CallRecord) {
        let caller = self.admission.caller.clone();
        if let Some(hold) = &self.hold {
            hold.keep(self.admission.detach_slot());
        }
        drop(self.admission);
        if let Outcome::UnknownTool { .. } = record.outcome {
            record.outcome = crate::unknown_tool(catalog, tool, |name| caller.sees(catalog, name));
        }
        caller.settle(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(work: impl Future<Output = T>) -> T {
        futures::executor::block_on(work)
    }

    fn caller(fuel_per_minute: u64) -> Caller {
        let mut tenant = Tenant::unlimited("t");
        tenant.fuel_per_minute = Some(fuel_per_minute);
        Caller::new(tenant)
    }

    #[test]
    fn reservations_are_clamped_to_what_is_left_then_refused() {
        // 6e9 a minute refills 1e8 a second: small against these amounts.
        let t = caller(6_000_000_000);
        assert_eq!(block(t.reserve(4_000_000_000)).unwrap(), 4_000_000_000);
        let second = block(t.reserve(4_000_000_000)).unwrap();
        assert!((2_000_000_000..2_100_000_000).contains(&second), "{second}");
        let refused = block(t.reserve(4_000_000_000)).unwrap_err();
        assert!(
            matches!(&refused, Outcome::RateLimited { message, retry_after_ms } if message.contains("fuel") && *retry_after_ms > 0),
            "{refused}"
        );
        assert!(matches!(
            block(t.admit()),
            Err(Refusal::OverQuota { reason: "fuel", .. })
        ));
        t.refund(3_000_000_000);
        assert!(block(t.admit()).is_ok());
        assert!(block(t.reserve(1)).is_ok());
    }

    #[test]
    fn refunds_never_fill_the_bucket_past_its_quota() {
        let t = caller(1_000);
        t.refund(1_000_000);
        assert_eq!(block(t.reserve(u64::MAX)).unwrap(), 1_000);
    }

    #[test]
    fn a_detached_slot_holds_the_place_past_its_admission() {
        let mut tenant = Tenant::unlimited("t");
        tenant.concurrency = Some(1);
        let t = Caller::new(tenant);
        let mut admission = block(t.admit()).unwrap();
        let slot = admission.detach_slot();
        drop(admission);
        assert!(matches!(
            block(t.admit()),
            Err(Refusal::OverQuota {
                reason: "concurrency",
                ..
            })
        ));
        drop(slot);
        let mut again = block(t.admit()).unwrap();
        // Detached twice, the second holds nothing.
        let (first, second) = (again.detach_slot(), again.detach_slot());
        drop(first);
        assert!(block(t.admit()).is_ok());
        drop(second);
    }

    #[test]
    fn a_hold_keeps_places_until_released_and_none_after() {
        let mut tenant = Tenant::unlimited("t");
        tenant.concurrency = Some(1);
        let t = Caller::new(tenant);
        let busy = |t: &Caller| {
            matches!(
                block(t.admit()),
                Err(Refusal::OverQuota {
                    reason: "concurrency",
                    ..
                })
            )
        };
        let hold = PlaceHold::new();
        let mut admission = block(t.admit()).unwrap();
        hold.clone().keep(admission.detach_slot());
        drop(admission);
        assert!(busy(&t), "the hold keeps the place past the admission");
        hold.release();
        let mut admission = block(t.admit()).unwrap();
        hold.keep(admission.detach_slot());
        assert!(
            !busy(&t),
            "a place kept after the release is given back at once"
        );
        drop(admission);
    }

    #[test]
    fn a_slot_takes_over_what_a_hold_kept_and_a_released_hold_keeps_nothing() {
        let budget = super::super::memory::MemoryBudget::new(10);
        let mut tenant = Tenant::unlimited("t");
        tenant.concurrency = Some(2);
        let t = Caller::new(tenant);
        let hold = PlaceHold::new();
        let mut first = block(t.admit()).unwrap();
        hold.keep(first.detach_slot());
        drop(first);
        hold.keep_memory(budget.hold("t", 3 << 20).unwrap());
        assert_eq!(hold.memory_mib(), 3);
        let mut slot = block(t.admit()).unwrap().detach_slot();
        slot.keep_from(&hold);
        assert_eq!(slot.memory_mib(), 3);
        assert!(
            block(t.admit()).is_err(),
            "the slot holds both places, its own and the hold's"
        );
        hold.keep_memory(budget.hold("t", 1 << 20).unwrap());
        assert_eq!(
            budget.reserved_bytes(),
            3 << 20,
            "the hold was released: memory kept there later goes back at once"
        );
        drop(slot);
        assert_eq!(budget.reserved_bytes(), 0);
        assert!(block(t.admit()).is_ok(), "and the places with it");
    }

    #[test]
    fn filters_take_names_and_prefixes() {
        let filter = ToolFilter::new(["calc", "text__*"]);
        assert!(filter.allows("calc"));
        assert!(filter.allows("text__upper"));
        assert!(!filter.allows("calculator"));
        assert!(!filter.allows("fetch"));
    }
}
