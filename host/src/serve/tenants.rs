//! Who is calling and whether they may: API keys (compared by hash), each
//! tenant's tool filter, and its quotas (rate, concurrency, fuel per minute).
//!
//! Fuel is reserved, not charged afterwards: each attempt of a call takes
//! its whole fuel budget from the tenant's bucket when the executor admits
//! it ([`FuelAccount`]), clamped to what is left, and what it did not burn
//! goes back when it ends. Calls running at once thus never burn more than
//! the bucket holds; a tenant with less than 1% of its quota left is refused
//! (`429`, `rate-limited`) until the bucket refills.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::{ADMIN_TENANT, Tenant, ToolFilter};
use crate::exec::{Ceiling, FuelAccount};
use crate::{CallOptions, Outcome};

/// A refused request: its HTTP status follows from the variant.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No key, or one no tenant holds.
    Unauthorized,
    /// The tenant may not do this.
    Forbidden(String),
    /// Over a quota; try again after the duration.
    OverQuota {
        reason: &'static str,
        message: String,
        retry_after: Duration,
    },
}

/// One tenant and its live quota state.
#[derive(Debug)]
pub(crate) struct TenantState {
    pub(crate) tenant: Tenant,
    rate: Option<DefaultDirectRateLimiter>,
    slots: Option<Arc<Semaphore>>,
    fuel: Option<Mutex<FuelBucket>>,
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
}

impl FuelBucket {
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

/// What an admitted call holds until it ends.
#[derive(Debug)]
pub(crate) struct Admission {
    _slot: Option<OwnedSemaphorePermit>,
    ceiling: Ceiling,
    fuel: Option<Arc<dyn FuelAccount>>,
}

impl Admission {
    /// Narrows `options` to the tenant's ceilings and draws its fuel from the
    /// tenant's quota.
    pub(crate) fn apply(&self, options: &mut CallOptions) {
        options.ceiling = self.ceiling;
        options.fuel_account = self.fuel.clone();
    }
}

impl TenantState {
    fn new(tenant: Tenant) -> Self {
        Self {
            rate: tenant
                .rate
                .as_ref()
                .map(|rate| RateLimiter::direct(crate::exec::quota(rate))),
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
            tenant,
        }
    }

    /// Takes one call from the tenant's rate (opening an MCP session costs
    /// one too), or says when to retry.
    pub(crate) fn take_rate(&self) -> Result<(), Refusal> {
        if let Some(rate) = &self.rate
            && let Err(not_until) = rate.check()
        {
            return Err(Refusal::OverQuota {
                reason: "rate",
                message: format!("tenant `{}` is over its call rate", self.tenant.name),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        Ok(())
    }

    /// Takes one call's worth of the tenant's quotas, or says when to retry.
    /// The fuel is only checked here (refused when spent); the executor
    /// reserves it when it admits the call.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Admission, Refusal> {
        let name = &self.tenant.name;
        self.take_rate()?;
        let slot = match &self.slots {
            Some(slots) => {
                Some(
                    slots
                        .clone()
                        .try_acquire_owned()
                        .map_err(|_| Refusal::OverQuota {
                            reason: "concurrency",
                            message: format!(
                                "tenant `{name}` already has {} calls in flight",
                                self.tenant.concurrency.unwrap_or_default()
                            ),
                            retry_after: Duration::from_secs(1),
                        })?,
                )
            }
            None => None,
        };
        if let Some(bucket) = &self.fuel {
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
            _slot: slot,
            ceiling: self.tenant.ceiling,
            fuel: self
                .fuel
                .is_some()
                .then(|| self.clone() as Arc<dyn FuelAccount>),
        })
    }

    fn fuel_spent(&self, per_minute: u64) -> String {
        format!(
            "tenant `{}` has used its fuel budget of {per_minute} per minute",
            self.tenant.name
        )
    }
}

impl FuelAccount for TenantState {
    /// Takes `budget` from the bucket, or what is left when that is less.
    fn reserve(&self, budget: u64) -> Result<u64, Outcome> {
        let Some(bucket) = &self.fuel else {
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
        if let Some(bucket) = &self.fuel {
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            bucket.available = (bucket.available + fuel as f64).min(bucket.per_minute as f64);
        }
    }
}

/// Every tenant, by key hash.
#[derive(Debug)]
pub(crate) struct Tenants {
    by_key: HashMap<[u8; 32], Arc<TenantState>>,
    admin: Vec<[u8; 32]>,
    /// What admin keys see: every tool, no quotas.
    admin_view: Arc<TenantState>,
    /// Whether admin keys may call tools (as `admin_view`).
    admin_calls_tools: bool,
    /// With no keys configured: everyone is this tenant.
    open: Option<Arc<TenantState>>,
}

impl Tenants {
    pub(crate) fn new(
        tenants: Vec<super::config::TenantKeys>,
        admin: Vec<[u8; 32]>,
        admin_calls_tools: bool,
    ) -> Self {
        let mut by_key = HashMap::new();
        for (tenant, keys) in tenants {
            let state = Arc::new(TenantState::new(tenant));
            for key in keys {
                by_key.insert(key, state.clone());
            }
        }
        Self {
            by_key,
            admin,
            admin_view: Arc::new(TenantState::new(unlimited(ADMIN_TENANT))),
            admin_calls_tools,
            open: None,
        }
    }

    /// No authentication: every request is the tenant `anonymous`, with all tools.
    pub(crate) fn open() -> Self {
        Self {
            open: Some(Arc::new(TenantState::new(unlimited("anonymous")))),
            ..Self::new(Vec::new(), Vec::new(), false)
        }
    }

    /// The tenant whose key the request carries (`Authorization: Bearer KEY`
    /// or `x-api-key: KEY`). An admin key that is no tenant's is the tenant
    /// `admin` when admin keys may call tools, and refused (403) otherwise.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<TenantState>, Refusal> {
        if let Some(open) = &self.open {
            return Ok(open.clone());
        }
        let hash = key_hash(headers).ok_or(Refusal::Unauthorized)?;
        if let Some(tenant) = self.by_key.get(&hash) {
            return Ok(tenant.clone());
        }
        if !self.admin.contains(&hash) {
            return Err(Refusal::Unauthorized);
        }
        if self.admin_calls_tools {
            Ok(self.admin_view.clone())
        } else {
            Err(Refusal::Forbidden(
                "an admin key reads /metrics and the tool list; it calls tools only when the \
                 server configuration sets `admin_calls_tools = true`"
                    .into(),
            ))
        }
    }

    /// Like [`Tenants::authenticate`], but an admin key may always read
    /// (the tool list and its status), as the tenant `admin`.
    pub(crate) fn reader(&self, headers: &HeaderMap) -> Result<Arc<TenantState>, Refusal> {
        match self.authenticate(headers) {
            Err(Refusal::Forbidden(_)) if self.is_admin(headers) => Ok(self.admin_view.clone()),
            other => other,
        }
    }

    /// True when the request carries an admin key (or auth is off).
    pub(crate) fn is_admin(&self, headers: &HeaderMap) -> bool {
        self.open.is_some() || key_hash(headers).is_some_and(|hash| self.admin.contains(&hash))
    }
}

/// A tenant with every tool and no quotas.
fn unlimited(name: &str) -> Tenant {
    Tenant {
        name: name.into(),
        tools: ToolFilter::all(),
        rate: None,
        concurrency: None,
        fuel_per_minute: None,
        reach_outside: true,
        ceiling: Ceiling::default(),
    }
}

fn key_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    let key = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))?
        .trim();
    (!key.is_empty()).then(|| *blake3::hash(key.as_bytes()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(fuel_per_minute: u64) -> Arc<TenantState> {
        Arc::new(TenantState::new(Tenant {
            name: "t".into(),
            tools: ToolFilter::all(),
            rate: None,
            concurrency: None,
            fuel_per_minute: Some(fuel_per_minute),
            reach_outside: true,
            ceiling: Ceiling::default(),
        }))
    }

    #[test]
    fn reservations_are_clamped_to_what_is_left_then_refused() {
        // 6e9 a minute refills 1e8 a second: small against these amounts.
        let t = tenant(6_000_000_000);
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
        let t = tenant(1_000);
        t.refund(1_000_000);
        assert_eq!(t.reserve(u64::MAX).unwrap(), 1_000);
    }
}
