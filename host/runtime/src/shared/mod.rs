//! Quotas and cached results shared by several hosts through a [`Store`]
//! (`toolhost serve --redis` implements it on Redis).
//!
//! Without a store every limit lives in this process. With one, a tenant's
//! rate, calls in flight and fuel per minute, and each tool's `rate`, are
//! pools in the store that every node draws on, so N nodes together admit
//! what one node would.
//!
//! # Leases, not a round trip per call
//!
//! A node does not ask the store for every call. It takes a small batch
//! (a [`Lease`](SharedConfig::lease) of up to [`SharedConfig::batch`] rate
//! permits or slots, or a slice of a fuel budget), serves calls from it, and
//! gives back what it has not used when the lease lapses. Permits are taken
//! from the store *before* they are used, so batching never lets the nodes
//! together go over a slot quota or a fuel budget. For rates, a permit may
//! be used up to one lease after the store gave it, so in any window of
//! length W the nodes admit at most `burst + rate × (W + lease)`: at most
//! `rate × lease` more than one node would (one lease is 1 s by default).
//! The price of batching is the other way: permits one node holds unused
//! are not available to the others until it gives them back (at most
//! `batch` per node, for at most one lease). Batches shrink for small
//! quotas: never more than a quota's burst divided by twice the node count.
//!
//! # When the store fails
//!
//! A store that errs or does not answer within its timeout is marked down
//! for [`SharedConfig::retry`]; while it is down no call waits on it. What
//! happens to quotas then is [`OnFailure`]: refuse (fail closed, the call is
//! `rate-limited` with a retry hint, the default) or fall back to limits in
//! this process, each quota divided by [`SharedConfig::nodes`]. The first
//! call after `retry` tries the store again; when it answers, the shared
//! quotas resume on their own. The shared cache is only ever skipped.
//!
//! A slot request that fails may still have changed the store: slots
//! given back when the store was down, or granted by a take whose answer
//! was lost (a timeout, a caller gone away), stay counted under the node.
//! So the node keeps the pool *unsettled* and its next request of that
//! pool, a take or [`Shared::maintain`]'s next round, tells the store what
//! it holds ([`Holding`]); the store lowers its count to that. Nothing is
//! given back by a count, so nothing is given back twice.

mod lease;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use lease::Lease;

/// A pool of permits in a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Pool {
    /// A token bucket: holds at most `capacity`, refills at `per_second`
    /// (a call rate, or fuel per minute).
    Bucket {
        /// The most the bucket holds (a rate's burst).
        capacity: u64,
        /// How fast it refills.
        per_second: f64,
    },
    /// `capacity` slots (calls in flight), taken with [`Store::take_slots`].
    /// A node holds slots until it says it holds fewer
    /// ([`Store::hold_slots`]) or stops renewing its lease
    /// ([`Store::renew`]): a node that dies loses its slots after the
    /// store's lease time.
    Slots {
        /// How many slots there are.
        capacity: u64,
    },
}

impl Pool {
    pub(crate) fn capacity(&self) -> u64 {
        match *self {
            Pool::Bucket { capacity, .. } | Pool::Slots { capacity } => capacity,
        }
    }
}

/// What a [`Store::take`] granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Permits granted: between the request's `min` and `want`, or 0.
    pub granted: u64,
    /// With nothing granted: when `min` permits may be free.
    pub retry_after: Duration,
}

/// What a node holds of one pool of slots, as of one of its requests.
///
/// A slot request whose answer is lost (it failed, timed out, or its
/// caller went away) may still have changed the store. So a node does not
/// give slots back by a count, which it could not safely send again, but
/// says what it holds, and the store lowers what it counts under the node
/// to that. Every slot request carries a number that grows with each one
/// the node sends; the store ignores a request that arrives after one with
/// a higher number, so a late request cannot undo a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    /// Slots the node holds, in use or spare.
    pub held: u64,
    /// The request's number: higher than any the node sent before.
    pub seq: u64,
}

/// Why a store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared store failed: {0}")]
pub struct StoreError(pub String);

/// How [`Store::cache_put`] bounds a partition of the shared cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBounds {
    /// How long an entry lives.
    pub ttl: Duration,
    /// Entries a partition keeps at most (the oldest go first).
    pub max_entries: u64,
    /// Bytes a partition keeps at most.
    pub max_bytes: u64,
}

/// Where shared quotas and cached results live. Every method answers or
/// fails; [`Shared`] bounds how long it waits.
pub trait Store: Send + Sync + 'static {
    /// Takes between `min` and `want` permits of the bucket `pool` under
    /// `key`, or none (with the wait until `min` may be free).
    fn take<'a>(
        &'a self,
        key: &'a str,
        pool: Pool,
        want: u64,
        min: u64,
    ) -> BoxFuture<'a, Result<Grant, StoreError>>;

    /// Gives back `amount` permits of the bucket `pool` under `key`.
    fn give<'a>(
        &'a self,
        key: &'a str,
        pool: Pool,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes between `min` and `want` of the `capacity` slots under `key`
    /// for this node, or none (with the wait until `min` may be free).
    /// First, unless a request with a higher [`Holding::seq`] got there
    /// before, what the store counts under this node is lowered to
    /// [`Holding::held`] (never raised); a request that got there too late
    /// grants nothing.
    fn take_slots<'a>(
        &'a self,
        key: &'a str,
        capacity: u64,
        want: u64,
        min: u64,
        holding: Holding,
    ) -> BoxFuture<'a, Result<Grant, StoreError>>;

    /// Lowers what the store counts under this node of the slots under
    /// `key` to [`Holding::held`] (never raises it), unless a request with
    /// a higher [`Holding::seq`] got there first.
    fn hold_slots<'a>(
        &'a self,
        key: &'a str,
        holding: Holding,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Renews this node's lease on the slots it holds.
    fn renew(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The cached bytes under `key` in `partition`, if any.
    fn cache_get<'a>(
        &'a self,
        partition: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Caches `value` under `key` in `partition` within `bounds`.
    fn cache_put<'a>(
        &'a self,
        partition: &'a str,
        key: &'a str,
        value: Vec<u8>,
        bounds: CacheBounds,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// What quotas do while the store is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFailure {
    /// Refuse calls under a shared quota (`rate-limited`, retry after
    /// [`SharedConfig::retry`]): never more than the quota, at the cost of
    /// availability.
    #[default]
    Refuse,
    /// Enforce each quota in this process, divided by
    /// [`SharedConfig::nodes`]: available, and within the quota if the
    /// node count is right.
    Local,
}

/// How a node uses the store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SharedConfig {
    /// This node's name, as `/v1/tools` and `/metrics` show it.
    pub node: String,
    /// Permits (or slots) taken at once, at most.
    pub batch: u64,
    /// How long a node keeps permits it has not used before giving them back.
    pub lease: Duration,
    /// The nodes sharing the store: batches are kept under a quota's burst
    /// divided by twice this, and [`OnFailure::Local`] divides quotas by it.
    pub nodes: u32,
    /// What quotas do while the store is down.
    pub on_failure: OnFailure,
    /// The longest one store request may take before it counts as failed.
    pub timeout: Duration,
    /// How long a failed store is left alone before it is tried again.
    pub retry: Duration,
}

impl Default for SharedConfig {
    fn default() -> Self {
        Self {
            node: "node".into(),
            batch: 8,
            lease: Duration::from_secs(1),
            nodes: 2,
            on_failure: OnFailure::Refuse,
            timeout: Duration::from_millis(250),
            retry: Duration::from_secs(1),
        }
    }
}

/// Counters of a node's use of the store, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SharedStats {
    /// True while the store answers.
    pub up: bool,
    /// Requests sent to the store.
    pub requests: u64,
    /// Requests that failed or timed out.
    pub failures: u64,
    /// Quota decisions made without the store (refused or local).
    pub degraded: u64,
}

/// A node's handle on the [`Store`]: its leases and the store's health.
/// Build one with [`Shared::new`], give it to the executor in
/// [`ExecConfig::shared`](crate::ExecConfig::shared) and run
/// [`Shared::maintain`] in the background.
pub struct Shared {
    store: Arc<dyn Store>,
    config: SharedConfig,
    leases: Mutex<HashMap<String, Arc<Held>>>,
    /// The next slot request's [`Holding::seq`]: from the clock at start,
    /// so a restarted node's requests come after its former self's.
    seq: AtomicU64,
    down_until: Mutex<Option<Instant>>,
    up: AtomicBool,
    requests: AtomicU64,
    failures: AtomicU64,
    degraded: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// One pool's lease, and its turn to ask the store. A node sends one slot
/// request of a pool at a time, so what it tells the store it holds is
/// never overtaken by a grant it has not counted yet.
struct Held {
    lease: Mutex<Lease>,
    turn: tokio::sync::Mutex<()>,
}

impl Held {
    fn lease(&self) -> MutexGuard<'_, Lease> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A slot request in flight: dropped before [`Unanswered::answered`] (it
/// failed, timed out or its caller went away), it leaves the lease
/// unsettled, as the store may have done what it asked.
struct Unanswered<'a>(Option<&'a Held>);

impl Unanswered<'_> {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(held) = self.0 {
            held.lease().unsettle();
        }
    }
}

/// The answer of a shared quota: taken, refused with a wait, or unknown
/// because the store is down.
pub(crate) enum Taken<T> {
    Yes(T),
    No(Duration),
    Down(StoreError),
}

impl Shared {
    /// A node's handle on `store`.
    pub fn new(store: Arc<dyn Store>, config: SharedConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            leases: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| {
                        u64::try_from(since.as_micros()).unwrap_or(u64::MAX / 2)
                    }),
            ),
            down_until: Mutex::new(None),
            up: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
        })
    }

    /// How this node uses the store.
    pub fn config(&self) -> &SharedConfig {
        &self.config
    }

    /// The store's health and this node's counters.
    pub fn stats(&self) -> SharedStats {
        SharedStats {
            up: self.up.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            degraded: self.degraded.load(Ordering::Relaxed),
        }
    }

    /// Renews this node's slot lease and gives back permits held longer
    /// than a lease, every half lease, until the returned future is dropped.
    /// Run it on the runtime while the node serves.
    pub async fn maintain(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.lease / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = self.ask(|store| store.renew()).await;
            self.return_idle(Instant::now()).await;
        }
    }

    /// Gives back bucket permits held for a lease and spare slots idle for
    /// half of one; tells the store what this node holds of every pool of
    /// slots it may count too many of (again, if telling it failed before).
    async fn return_idle(&self, now: Instant) {
        let leases: Vec<(String, Arc<Held>)> = {
            let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            leases.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (key, held) in leases {
            let (pool, idle, unsettled) = {
                let mut lease = held.lease();
                let idle = lease.idle(now, self.config.lease);
                (lease.pool, idle, lease.unsettled())
            };
            match pool {
                Pool::Slots { .. } if unsettled => self.settle(&key, &held).await,
                Pool::Slots { .. } => {}
                Pool::Bucket { .. } if idle > 0 => self.give_back(&key, pool, idle).await,
                Pool::Bucket { .. } => {}
            }
        }
    }

    /// The store's answer within the timeout, or why not. A failure marks
    /// the store down for `retry`; while down, nothing is sent.
    pub(crate) async fn ask<'a, T>(
        &'a self,
        request: impl FnOnce(&'a dyn Store) -> BoxFuture<'a, Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let now = Instant::now();
        {
            let down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
            if down.is_some_and(|until| now < until) {
                return Err(StoreError("the store is down; not retried yet".into()));
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match tokio::time::timeout(self.config.timeout, request(&*self.store)).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError(format!(
                "no answer within {} ms",
                self.config.timeout.as_millis()
            ))),
        };
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match &answer {
            Ok(_) => {
                *down = None;
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::warn!("the shared store answers again: shared quotas resume");
                }
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                *down = Some(Instant::now() + self.config.retry);
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::error!(
                        "{error}: quotas now {}",
                        match self.config.on_failure {
                            OnFailure::Refuse => "refuse calls",
                            OnFailure::Local => "hold in this process, divided by the node count",
                        }
                    );
                }
            }
        }
        answer
    }

    /// A quota decision the store could not make (it is down), counted:
    /// `Ok` to make it with the local limits ([`OnFailure::Local`]), or the
    /// error to refuse the call with ([`OnFailure::Refuse`]).
    pub(crate) fn unavailable(&self, error: StoreError) -> Result<(), StoreError> {
        self.degraded.fetch_add(1, Ordering::Relaxed);
        match self.config.on_failure {
            OnFailure::Local => Ok(()),
            OnFailure::Refuse => Err(error),
        }
    }

    /// The slice of a fuel budget a node takes beyond what a call needs.
    fn slice(&self, pool: Pool) -> u64 {
        pool.capacity() / (8 * u64::from(self.config.nodes.max(1)))
    }

    fn lease(&self, key: &str, pool: Pool) -> Arc<Held> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let held = leases.entry(key.to_string()).or_insert_with(|| {
            Arc::new(Held {
                lease: Mutex::new(Lease::new(pool)),
                turn: tokio::sync::Mutex::new(()),
            })
        });
        let mut lease = held.lease();
        if lease.pool != pool {
            lease.requota(pool);
        }
        drop(lease);
        held.clone()
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The batch for `pool`: at most the configured batch, and at most the
    /// pool's capacity divided by twice the node count.
    fn batch(&self, pool: Pool) -> u64 {
        let share = pool.capacity() / (2 * u64::from(self.config.nodes.max(1)));
        self.config.batch.min(share).max(1)
    }

    /// Takes one permit of `pool` under `key`: a rate permit or a slot.
    /// A slot must be given back with [`Shared::release`].
    pub(crate) async fn take_one(&self, key: &str, pool: Pool) -> Taken<()> {
        let held = self.lease(key, pool);
        match pool {
            Pool::Slots { capacity } => self.take_slot(key, capacity, &held).await,
            Pool::Bucket { .. } => self.take_permit(key, pool, &held).await,
        }
    }

    async fn take_slot(&self, key: &str, capacity: u64, held: &Held) -> Taken<()> {
        if held.lease().try_take(1) {
            return Taken::Yes(());
        }
        let _turn = held.turn.lock().await;
        let holding = {
            let mut lease = held.lease();
            // A grant may have come while this call waited its turn.
            if lease.try_take(1) {
                return Taken::Yes(());
            }
            Holding {
                held: lease.settle(),
                seq: self.next_seq(),
            }
        };
        let want = self.batch(Pool::Slots { capacity });
        let unanswered = Unanswered(Some(held));
        let grant = match self
            .ask(|store| store.take_slots(key, capacity, want, 1, holding))
            .await
        {
            Ok(grant) => grant,
            Err(error) => return Taken::Down(error),
        };
        unanswered.answered();
        let mut lease = held.lease();
        lease.add(grant.granted, Instant::now());
        if lease.try_take(1) {
            Taken::Yes(())
        } else {
            Taken::No(grant.retry_after.max(Duration::from_millis(1)))
        }
    }

    /// Tells the store what this node holds of the slots under `key`, if
    /// it may count more; left unsettled (to try again) when not answered.
    async fn settle(&self, key: &str, held: &Held) {
        let _turn = held.turn.lock().await;
        let holding = {
            let mut lease = held.lease();
            if !lease.unsettled() {
                return;
            }
            Holding {
                held: lease.settle(),
                seq: self.next_seq(),
            }
        };
        let unanswered = Unanswered(Some(held));
        if self
            .ask(|store| store.hold_slots(key, holding))
            .await
            .is_ok()
        {
            unanswered.answered();
        }
    }

    async fn take_permit(&self, key: &str, pool: Pool, held: &Held) -> Taken<()> {
        let stale = {
            let mut lease = held.lease();
            let now = Instant::now();
            let stale = lease.drop_stale(now, self.config.lease);
            if lease.try_take(1) {
                return Taken::Yes(());
            }
            if let Some(wait) = lease.known_empty(now) {
                return Taken::No(wait);
            }
            stale
        };
        if stale > 0 {
            self.give_back(key, pool, stale).await;
        }
        let want = self.batch(pool);
        match self.ask(|store| store.take(key, pool, want, 1)).await {
            Err(error) => Taken::Down(error),
            Ok(grant) => {
                let mut lease = held.lease();
                let now = Instant::now();
                lease.add(grant.granted, now);
                if lease.try_take(1) {
                    Taken::Yes(())
                } else {
                    let wait = grant.retry_after.max(Duration::from_millis(1));
                    lease.empty_for(now, wait, self.config.lease);
                    Taken::No(wait)
                }
            }
        }
    }

    /// Gives back a slot taken with [`Shared::take_one`]. Slots beyond one
    /// batch of spares go back to the store at once; the rest when idle.
    pub(crate) fn release(self: &Arc<Self>, key: &str, pool: Pool) {
        let held = self.lease(key, pool);
        let surplus = {
            let mut lease = held.lease();
            lease.release(1, Instant::now());
            lease.surplus(self.batch(pool))
        };
        if surplus > 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let shared = self.clone();
            let key = key.to_string();
            runtime.spawn(async move { shared.settle(&key, &held).await });
        }
    }

    /// Reserves up to `budget` of the bucket `pool` under `key` (fuel):
    /// granted when at least `floor` is available.
    pub(crate) async fn reserve(
        &self,
        key: &str,
        pool: Pool,
        budget: u64,
        floor: u64,
    ) -> Taken<u64> {
        let held = self.lease(key, pool);
        let (stale, need) = {
            let mut lease = held.lease();
            let stale = lease.drop_stale(Instant::now(), self.config.lease);
            if lease.try_take(budget) {
                return Taken::Yes(budget);
            }
            (stale, budget - lease.available())
        };
        if stale > 0 {
            self.give_back(key, pool, stale).await;
        }
        let want = need.saturating_add(self.slice(pool));
        let min = floor.min(need).max(1);
        match self.ask(|store| store.take(key, pool, want, min)).await {
            Err(error) => Taken::Down(error),
            Ok(grant) => {
                let mut lease = held.lease();
                lease.add(grant.granted, Instant::now());
                if lease.available() < floor.min(budget) {
                    return Taken::No(grant.retry_after.max(Duration::from_millis(1)));
                }
                let granted = budget.min(lease.available());
                lease.try_take(granted);
                Taken::Yes(granted)
            }
        }
    }

    /// Gives back fuel a reservation did not burn: kept for the next call,
    /// and what is beyond one slice goes back to the store.
    pub(crate) fn refund(self: &Arc<Self>, key: &str, pool: Pool, amount: u64) {
        let held = self.lease(key, pool);
        let keep = 2 * self.slice(pool).max(1);
        let surplus = {
            let mut lease = held.lease();
            lease.refund(amount);
            let surplus = lease.available().saturating_sub(keep);
            lease.try_take(surplus);
            surplus
        };
        if surplus > 0 {
            self.give_later(key, pool, surplus);
        }
    }

    /// Gives bucket permits back. One that fails is not sent again: the
    /// bucket refills on its own.
    async fn give_back(&self, key: &str, pool: Pool, amount: u64) {
        let _ = self.ask(|store| store.give(key, pool, amount)).await;
    }

    fn give_later(self: &Arc<Self>, key: &str, pool: Pool, amount: u64) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.clone();
            let key = key.to_string();
            runtime.spawn(async move { shared.give_back(&key, pool, amount).await });
        }
    }

    /// The cached bytes under `key` for `partition`, or `None` (a miss, or
    /// the store is down).
    pub(crate) async fn cache_get(&self, partition: &str, key: &str) -> Option<Vec<u8>> {
        self.ask(|store| store.cache_get(partition, key))
            .await
            .ok()
            .flatten()
    }

    /// Caches `value` for `partition` in the background.
    pub(crate) fn cache_put(
        self: &Arc<Self>,
        partition: &str,
        key: &str,
        value: Vec<u8>,
        bounds: CacheBounds,
    ) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.clone();
            let (partition, key) = (partition.to_string(), key.to_string());
            runtime.spawn(async move {
                let _ = shared
                    .ask(|store| store.cache_put(&partition, &key, value, bounds))
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
