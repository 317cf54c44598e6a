//! Who is calling: API keys (compared by hash), each resolved to its
//! tenant's [`Caller`]. What a tenant may call and its quotas are the
//! runtime's [`tenancy`](toolhost_runtime::tenancy); this module maps them
//! to HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use toolhost_runtime::shared::Shared;
use toolhost_runtime::tenancy::{self, Caller, Observer, Tenant};

use super::config::ADMIN_TENANT;

/// The one tenant of a server without authentication (`--no-auth`).
const OPEN_TENANT: &str = "anonymous";

/// A refused request: its HTTP status follows from the variant.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No key, or one no tenant holds.
    Unauthorized,
    /// The tenant may not do this.
    Forbidden(String),
    /// Over a quota; try again after `seconds`.
    OverQuota { message: String, seconds: u64 },
}

impl From<tenancy::Refusal> for Refusal {
    fn from(refusal: tenancy::Refusal) -> Self {
        match refusal {
            tenancy::Refusal::Hidden { message } => Refusal::Forbidden(message),
            over @ tenancy::Refusal::OverQuota { .. } => Refusal::OverQuota {
                seconds: over.retry_after_secs(),
                message: over.to_string(),
            },
            other => Refusal::Forbidden(other.to_string()),
        }
    }
}

/// Every tenant, by key hash.
#[derive(Debug)]
pub(crate) struct Tenants {
    by_key: HashMap<[u8; 32], Caller>,
    admin: Vec<[u8; 32]>,
    /// What admin keys see: every tool; when they call tools, no quota but
    /// the default concurrency.
    admin_view: Caller,
    /// Whether admin keys may call tools (as `admin_view`).
    admin_calls_tools: bool,
    /// With no keys configured: everyone is this tenant.
    open: Option<Caller>,
    /// Request bodies each tenant may wait for at once, by tenant name: as
    /// many as it may have calls in flight (on this node: connections are
    /// a node's own). A body that trickles in keeps its connection busy,
    /// and the server holds at most `max_connections`: without this, one
    /// tenant's slow bodies could hold all of them and keep every other
    /// tenant out.
    reading: HashMap<String, Arc<Semaphore>>,
    observer: Counted,
}

/// Where refusals are counted.
struct Counted(Arc<dyn Observer>);

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counted")
    }
}

/// One body being waited for, for a tenant; the place is given back when dropped.
#[derive(Debug)]
pub(crate) struct Reading {
    _place: Option<OwnedSemaphorePermit>,
}

impl Tenants {
    /// The configured tenants, each reporting its calls to `observer`, their
    /// quotas kept in `shared` when given. With `admin_calls` set, admin
    /// keys call every tool as the tenant `admin`, with that many calls in
    /// flight at once (on this node).
    pub(crate) fn new(
        tenants: Vec<super::config::TenantKeys>,
        admin: Vec<[u8; 32]>,
        admin_calls: Option<u32>,
        observer: Arc<dyn Observer>,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        let mut by_key = HashMap::new();
        let mut reading = HashMap::new();
        let mut admin_view = Tenant::unlimited(ADMIN_TENANT);
        admin_view.concurrency = admin_calls;
        let admin_view = Caller::observed(admin_view, observer.clone(), None);
        add_body_places(&mut reading, &admin_view);
        for (tenant, keys) in tenants {
            let caller = Caller::observed(tenant, observer.clone(), shared.clone());
            add_body_places(&mut reading, &caller);
            for key in keys {
                by_key.insert(key, caller.clone());
            }
        }
        Self {
            by_key,
            admin,
            admin_view,
            admin_calls_tools: admin_calls.is_some(),
            open: None,
            reading,
            observer: Counted(observer),
        }
    }

    /// No authentication: every request is the tenant `anonymous`, with all
    /// tools and `concurrency` calls in flight at once (and as many request
    /// bodies waited for), as a tenant that sets none.
    pub(crate) fn open(observer: Arc<dyn Observer>, concurrency: u32) -> Self {
        let mut anonymous = Tenant::unlimited(OPEN_TENANT);
        anonymous.concurrency = Some(concurrency);
        let mut tenants = Self::new(Vec::new(), Vec::new(), None, observer.clone(), None);
        let open = Caller::observed(anonymous, observer, None);
        add_body_places(&mut tenants.reading, &open);
        tenants.open = Some(open);
        tenants
    }

    /// The tenant whose key the request carries (`Authorization: Bearer KEY`
    /// or `x-api-key: KEY`). An admin key that is no tenant's is the tenant
    /// `admin` when admin keys may call tools, and refused (403) otherwise.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
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
    pub(crate) fn reader(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        match self.authenticate(headers) {
            Err(Refusal::Forbidden(_)) if self.is_admin(headers) => Ok(self.admin_view.clone()),
            other => other,
        }
    }

    /// A place to wait for one request body for `caller`, or 429 when it
    /// already has as many bodies being waited for as it may have calls in
    /// flight (its `concurrency`). A caller without one (the admin view
    /// when admin keys call no tools) waits without a bound.
    pub(crate) fn start_reading(&self, caller: &Caller) -> Result<Reading, Refusal> {
        let Some(places) = self.reading.get(caller.name()) else {
            return Ok(Reading { _place: None });
        };
        match places.clone().try_acquire_owned() {
            Ok(place) => Ok(Reading {
                _place: Some(place),
            }),
            Err(_) => {
                self.observer.0.refused(caller.name(), "reading");
                Err(Refusal::OverQuota {
                    message: format!(
                        "tenant `{}` already waits for {} request bodies, as many as it may \
                         have calls in flight (concurrency)",
                        caller.name(),
                        caller.tenant().concurrency.unwrap_or_default()
                    ),
                    seconds: 1,
                })
            }
        }
    }

    /// True when the request carries an admin key (or auth is off).
    pub(crate) fn is_admin(&self, headers: &HeaderMap) -> bool {
        self.open.is_some() || key_hash(headers).is_some_and(|hash| self.admin.contains(&hash))
    }
}

/// Gives `caller` as many places to wait for request bodies as it may have
/// calls in flight (its `concurrency`); none, and no bound, without one.
fn add_body_places(reading: &mut HashMap<String, Arc<Semaphore>>, caller: &Caller) {
    if let Some(concurrency) = caller.tenant().concurrency {
        let places = Semaphore::new(concurrency as usize);
        reading.insert(caller.name().to_string(), Arc::new(places));
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
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Refusals(Mutex<Vec<(String, &'static str)>>);

    impl Observer for Refusals {
        fn refused(&self, tenant: &str, reason: &'static str) {
            self.0.lock().unwrap().push((tenant.to_string(), reason));
        }
        fn settled(&self, _: &str, _: &toolhost_runtime::CallRecord) {}
    }

    #[test]
    fn a_tenant_waits_for_as_many_bodies_as_it_may_have_calls_in_flight() {
        let mut acme = Tenant::unlimited("acme");
        acme.concurrency = Some(2);
        let refusals = Arc::new(Refusals::default());
        let tenants = Tenants::new(
            vec![(acme, vec![[1; 32]])],
            Vec::new(),
            None,
            refusals.clone(),
            None,
        );
        let caller = tenants.by_key[&[1; 32]].clone();
        let first = tenants.start_reading(&caller).unwrap();
        let _second = tenants.start_reading(&caller).unwrap();
        assert!(matches!(
            tenants.start_reading(&caller),
            Err(Refusal::OverQuota { seconds: 1, .. })
        ));
        assert_eq!(
            *refusals.0.lock().unwrap(),
            vec![("acme".to_string(), "reading")]
        );
        // A body read gives its place back.
        drop(first);
        assert!(tenants.start_reading(&caller).is_ok());
        // The admin view has no bound.
        let admin = tenants.admin_view.clone();
        let held: Vec<_> = (0..10).map(|_| tenants.start_reading(&admin)).collect();
        assert!(held.iter().all(Result::is_ok));
    }
}
