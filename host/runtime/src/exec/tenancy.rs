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

use super::gate::quota;
use super::{CallOptions, Ceiling, FuelAccount};
use crate::policy::Rate;
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
            } => Outcome::RateLimited {
                message,
                retry_after_ms: u64::try_from(retry_after.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            },
        }
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
    rate: Option<DefaultDirectRateLimiter>,
    slots: Option<Arc<Semaphore>>,
    fuel: Option<Mutex<FuelBucket>>,
    observer: Option<Arc<dyn Observer>>,
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
    _slot: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// The caller whose quotas this is.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Narrows `options` to the tenant's ceilings, counts the call under
    /// the tenant's name and draws its fuel from the tenant's quota.
    pub(crate) fn apply(&self, options: &mut CallOptions) {
        let state = &self.caller.0;
        options.ceiling = state.tenant.ceiling;
        options.caller = Some(state.tenant.name.clone());
        options.fuel_account = state
            .fuel
            .is_some()
            .then(|| Arc::new(self.caller.clone()) as Arc<dyn FuelAccount>);
    }
}

impl Caller {
    /// `tenant` with fresh quotas.
    pub fn new(tenant: Tenant) -> Self {
        Self(Arc::new(Quotas {
            rate: tenant
                .rate
                .as_ref()
                .map(|rate| RateLimiter::direct(quota(rate))),
            slots: tenant
                .concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            fuel: tenant.fuel_per_minute.map(|per_minute| {
                Mutex::new(FuelBucket {
                    per_minute,
                    available: per_minute as f64,
                    at: Instant::now(),
                })
            }),
            observer: None,
            tenant,
        }))
    }

    /// `tenant` with fresh quotas, reporting its calls to `observer`.
    pub fn observed(tenant: Tenant, observer: Arc<dyn Observer>) -> Self {
        let mut caller = Self::new(tenant);
        if let Some(state) = Arc::get_mut(&mut caller.0) {
            state.observer = Some(observer);
        }
        caller
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
    pub fn take_rate(&self) -> Result<(), Refusal> {
        self.reported(self.rate())
    }

    /// Takes one call's worth of the tenant's quotas, or says when to retry.
    /// The fuel is only checked here (refused when spent); the executor
    /// reserves it when it admits the call. A refusal is reported to the
    /// observer.
    pub fn admit(&self) -> Result<Admission, Refusal> {
        self.reported(self.take())
    }

    fn rate(&self) -> Result<(), Refusal> {
        if let Some(rate) = &self.0.rate
            && let Err(not_until) = rate.check()
        {
            return Err(Refusal::OverQuota {
                reason: "rate",
                message: format!("tenant `{}` is over its call rate", self.name()),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        Ok(())
    }

    fn take(&self) -> Result<Admission, Refusal> {
        self.rate()?;
        let slot = match &self.0.slots {
            Some(slots) => {
                Some(
                    slots
                        .clone()
                        .try_acquire_owned()
                        .map_err(|_| Refusal::OverQuota {
                            reason: "concurrency",
                            message: format!(
                                "tenant `{}` already has {} calls in flight",
                                self.name(),
                                self.0.tenant.concurrency.unwrap_or_default()
                            ),
                            retry_after: Duration::from_secs(1),
                        })?,
                )
            }
            None => None,
        };
        if let Some(bucket) = &self.0.fuel {
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
            _slot: slot,
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
    fn reserve(&self, budget: u64) -> Result<u64, Outcome> {
        let Some(bucket) = &self.0.fuel else {
            return Ok(budget);
        };
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        bucket.refill(Instant::now());
        if let Some(wait) = bucket.spent() {
            return Err(Outcome::RateLimited {
                message: self.fuel_spent(bucket.per_minute),
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            });
        }
        let granted = budget.min(bucket.available as u64);
        bucket.available -= granted as f64;
        Ok(granted)
    }

    fn refund(&self, fuel: u64) {
        if let Some(bucket) = &self.0.fuel {
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
}

impl Entered {
    /// Admits a call of `tool` on `catalog` for the tenant `options` names
    /// (pre-admitted or not), and narrows `options` to it. `Ok(None)`: the
    /// call has no tenant. `Err`: the refusal as the call's outcome.
    pub(crate) fn enter(
        catalog: &Catalog,
        tool: &str,
        options: &mut CallOptions,
        admitted: Option<Admission>,
    ) -> Result<Option<Self>, Outcome> {
        let admission = match (admitted, &options.tenant) {
            (Some(admission), _) => admission,
            (None, Some(caller)) => caller
                .check(catalog, tool)
                .and_then(|()| caller.admit())
                .map_err(|refusal| refusal.into_outcome(catalog, tool, caller))?,
            (None, None) => return Ok(None),
        };
        let caller = admission.caller.clone();
        // A pre-admitted call is checked here too, on the snapshot it runs on.
        if let Err(refusal) = caller.check(catalog, tool) {
            return Err(refusal.into_outcome(catalog, tool, &caller));
        }
        admission.apply(options);
        options.tenant = Some(caller);
        Ok(Some(Self { admission }))
    }

    /// Gives the quotas back and reports the call. An unknown tool's
    /// suggestions come from the tenant's tools only.
    pub(crate) fn settle(self, catalog: &Catalog, tool: &str, record: &mut CallRecord) {
        let caller = self.admission.caller.clone();
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

    fn caller(fuel_per_minute: u64) -> Caller {
        let mut tenant = Tenant::unlimited("t");
        tenant.fuel_per_minute = Some(fuel_per_minute);
        Caller::new(tenant)
    }

    #[test]
    fn reservations_are_clamped_to_what_is_left_then_refused() {
        // 6e9 a minute refills 1e8 a second: small against these amounts.
        let t = caller(6_000_000_000);
        assert_eq!(t.reserve(4_000_000_000).unwrap(), 4_000_000_000);
        let second = t.reserve(4_000_000_000).unwrap();
        assert!((2_000_000_000..2_100_000_000).contains(&second), "{second}");
        let refused = t.reserve(4_000_000_000).unwrap_err();
        assert!(
            matches!(&refused, Outcome::RateLimited { message, retry_after_ms } if message.contains("fuel") && *retry_after_ms > 0),
            "{refused}"
        );
        assert!(matches!(
            t.admit(),
            Err(Refusal::OverQuota { reason: "fuel", .. })
        ));
        t.refund(3_000_000_000);
        assert!(t.admit().is_ok());
        assert!(t.reserve(1).is_ok());
    }

    #[test]
    fn refunds_never_fill_the_bucket_past_its_quota() {
        let t = caller(1_000);
        t.refund(1_000_000);
        assert_eq!(t.reserve(u64::MAX).unwrap(), 1_000);
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
