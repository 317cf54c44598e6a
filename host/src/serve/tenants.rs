//! Who is calling and whether they may: API keys (compared by hash), each
//! tenant's tool filter, and its quotas (rate, concurrency, fuel per minute).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::{Tenant, ToolFilter};
use crate::exec::Ceiling;

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

/// What an admitted call holds until it ends.
#[derive(Debug)]
pub(crate) struct Admission {
    _slot: Option<OwnedSemaphorePermit>,
    /// The tenant's ceilings, with the fuel bound lowered to what is left.
    pub(crate) ceiling: Ceiling,
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

    /// Takes one call's worth of the tenant's quotas, or says when to retry.
    pub(crate) fn admit(&self) -> Result<Admission, Refusal> {
        let name = &self.tenant.name;
        if let Some(rate) = &self.rate
            && let Err(not_until) = rate.check()
        {
            return Err(Refusal::OverQuota {
                reason: "rate",
                message: format!("tenant `{name}` is over its call rate"),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
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
        let mut ceiling = self.tenant.ceiling;
        if let Some(bucket) = &self.fuel {
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            // Spent: less than 1% of the budget left (a call capped below
            // that could do nothing useful).
            let floor = (bucket.per_minute as f64 / 100.0).max(1.0);
            if bucket.available < floor {
                let rate = bucket.per_minute as f64 / 60.0;
                let wait = (floor - bucket.available) / rate;
                return Err(Refusal::OverQuota {
                    reason: "fuel",
                    message: format!(
                        "tenant `{name}` has used its fuel budget of {} per minute",
                        bucket.per_minute
                    ),
                    retry_after: Duration::from_secs_f64(wait.clamp(0.001, 60.0)),
                });
            }
            let left = bucket.available as u64;
            ceiling.fuel = Some(ceiling.fuel.map_or(left, |fuel| fuel.min(left)));
        }
        Ok(Admission {
            _slot: slot,
            ceiling,
        })
    }

    /// Takes the fuel a finished call burned from the tenant's budget.
    pub(crate) fn charge(&self, fuel: u64) {
        if let Some(bucket) = &self.fuel {
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(Instant::now());
            bucket.available -= fuel as f64;
        }
    }
}

/// Every tenant, by key hash.
#[derive(Debug, Default)]
pub(crate) struct Tenants {
    by_key: HashMap<[u8; 32], Arc<TenantState>>,
    admin: Vec<[u8; 32]>,
    /// With no keys configured: everyone is this tenant.
    open: Option<Arc<TenantState>>,
}

impl Tenants {
    pub(crate) fn new(tenants: Vec<super::config::TenantKeys>, admin: Vec<[u8; 32]>) -> Self {
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
            open: None,
        }
    }

    /// No authentication: every request is the tenant `anonymous`, with all tools.
    pub(crate) fn open() -> Self {
        let tenant = Tenant {
            name: "anonymous".into(),
            tools: ToolFilter::all(),
            rate: None,
            concurrency: None,
            fuel_per_minute: None,
            reach_outside: true,
            ceiling: Ceiling::default(),
        };
        Self {
            open: Some(Arc::new(TenantState::new(tenant))),
            ..Self::default()
        }
    }

    /// The tenant whose key the request carries (`Authorization: Bearer KEY`
    /// or `x-api-key: KEY`).
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<TenantState>, Refusal> {
        if let Some(open) = &self.open {
            return Ok(open.clone());
        }
        let hash = key_hash(headers).ok_or(Refusal::Unauthorized)?;
        self.by_key.get(&hash).cloned().ok_or(Refusal::Unauthorized)
    }

    /// True when the request carries an admin key (or auth is off).
    pub(crate) fn is_admin(&self, headers: &HeaderMap) -> bool {
        self.open.is_some() || key_hash(headers).is_some_and(|hash| self.admin.contains(&hash))
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
