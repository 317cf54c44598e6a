//! The toolhost runtime: run LLM tools as WebAssembly components, each call
//! in its own sandbox. This crate is everything between a tool call's JSON
//! and its [`Outcome`]: the [`Engine`] (wasmtime), [`Policy`] files, the
//! sandbox, the [`Catalog`] of loaded components, the [`Executor`] with its
//! admission, limits and cache, and [`tenancy`]. It has no HTTP server, no
//! MCP and no model client: those faces are crates of their own that call
//! into this one.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use toolhost_runtime::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadOptions};
//!
//! let engine = Engine::new(EngineConfig::default())?;
//! let catalog = Catalog::load_dir(&engine, "tools".as_ref(), &LoadOptions::default()).await?;
//! let executor = Executor::new(Arc::new(catalog));
//! let record = executor.call("calc", r#"{"expression": "2 + 3 * 4"}"#, CallOptions::default()).await;
//! println!("{}", record.to_json());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod audit;
mod bindings;
mod catalog;
mod disk;
mod engine;
mod exec;
mod exports;
pub mod formats;
mod lift;
pub mod measure;
mod outcome;
mod policy;
mod sandbox;
pub mod shared;
pub mod trust;
mod turns;
pub mod unread;
#[cfg(feature = "watch")]
mod watch;

pub use audit::{AuditError, AuditEvent, AuditLog, DEFAULT_ROTATE_BYTES};
pub use catalog::{
    Behavior, Catalog, CatalogError, ComponentState, ComponentStatus, LoadError, LoadEvent,
    LoadOptions, LoadStats, NAMESPACE_SEPARATOR, ToolInfo, WIT_SOURCE_SECTION, default_cache_dir,
    is_valid_component_name, is_valid_name,
};
pub use engine::{Engine, EngineConfig, EngineError};
pub use exec::{
    CacheConfig, CallOptions, Ceiling, ExecConfig, ExecStats, Executor, FuelAccount, HoldRefused,
    INSTANCE_OVERHEAD_MB, MemoryHold, RateRule, canonical_json, default_memory_budget_mb,
    parse_hold_bytes, unknown_tool,
};
pub use lift::parsed_json_size;

/// Many calls at once with a strategy: all, first ok, race, keep the top
/// `n` by a score, or cancel the rest once a result is good enough
/// ([`Executor::submit`]).
pub mod batch {
    pub use crate::exec::{
        Batch, BatchOptions, BatchReport, BatchResult, Bound, CallHandle, CallRequest, Event,
        MAX_UNREAD_LOGS, Score, ScoreFn, Strategy,
    };
}

/// Tenants: who calls, which tools they see, and their quotas.
///
/// A [`Tenant`](tenancy::Tenant) is the definition; a
/// [`Caller`](tenancy::Caller) is a tenant with its live quota state, which
/// a face hands the executor in [`CallOptions::tenant`] (or, having taken
/// the quotas itself with [`Caller::admit`](tenancy::Caller::admit), in
/// [`Executor::call_admitted`]). The executor checks the tool and takes the
/// quotas on the catalog snapshot the call runs on, narrows the call to the
/// tenant's ceilings, and reports the call to the caller's
/// [`Observer`](tenancy::Observer).
///
/// ```
/// use toolhost_runtime::tenancy::{Caller, Tenant, ToolFilter};
///
/// let mut tenant = Tenant::unlimited("acme");
/// tenant.tools = ToolFilter::new(["calc", "text__*"]);
/// tenant.concurrency = Some(4);
/// let caller = Caller::new(tenant);
/// assert!(caller.tenant().tools.allows("text__upper"));
/// assert!(!caller.tenant().tools.allows("fetch"));
/// ```
pub mod tenancy {
    pub use crate::exec::tenancy::{
        Admission, Caller, DetachedSlot, Observer, PlaceHold, Refusal, Tenant, ToolFilter,
    };
}

/// Calls that depend on each other's outputs, run as a graph
/// ([`Executor::run_plan`]).
pub mod plan {
    pub use crate::exec::{Plan, PlanError, PlanResult, Step};
}
pub use outcome::{CallRecord, Outcome, ToolErrorKind};
pub use policy::{
    Capabilities, DEFAULT_MAX_CONCURRENCY, Granted, HttpLimits, HttpLimitsPatch, Limits,
    LimitsPatch, OnLimit, Policy, PolicyError, PolicyReview, Rate, Retry, RetryPatch, Secret,
    parse_rate, review_dir,
};
pub use sandbox::GuestEvent;
pub use tokio_util::sync::CancellationToken;
pub use trust::{TrustError, TrustOptions};
#[cfg(feature = "watch")]
pub use watch::{FolderWatch, ReloadCounters, ReloadStats, WatchError, watch};
