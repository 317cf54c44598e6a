//! Who is calling: API keys (compared by hash), each resolved to its
//! tenant's [`Caller`]. What a tenant may call and its quotas are the
//! runtime's [`tenancy`](toolhost_runtime::tenancy); this module maps them
//! to HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;
use toolhost_runtime::shared::Shared;
use toolhost_runtime::tenancy::{self, Caller, Observer, Tenant};

use super::config::ADMIN_TENANT;

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
    /// What admin keys see: every tool, no quotas.
    admin_view: Caller,
    /// Whether admin keys may call tools (as `admin_view`).
    admin_calls_tools: bool,
    /// With no keys configured: everyone is this tenant.
    open: Option<Caller>,
}

impl Tenants {
    /// The configured tenants, each reporting its calls to `observer`, their
    /// quotas kept in `shared` when given.
    pub(crate) fn new(
        tenants: Vec<super::config::TenantKeys>,
        admin: Vec<[u8; 32]>,
        admin_calls_tools: bool,
        observer: Arc<dyn Observer>,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        let mut by_key = HashMap::new();
        for (tenant, keys) in tenants {
            let caller = Caller::observed(tenant, observer.clone(), shared.clone());
            for key in keys {
                by_key.insert(key, caller.clone());
            }
        }
        Self {
            by_key,
            admin,
            admin_view: Caller::observed(Tenant::unlimited(ADMIN_TENANT), observer, None),
            admin_calls_tools,
            open: None,
        }
    }

    /// No authentication: every request is the tenant `anonymous`, with all tools.
    pub(crate) fn open(observer: Arc<dyn Observer>) -> Self {
        Self {
            open: Some(Caller::observed(
                Tenant::unlimited("anonymous"),
                observer.clone(),
                None,
            )),
            ..Self::new(Vec::new(), Vec::new(), false, observer, None)
        }
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
