//! toolhost: run LLM tools as WebAssembly components, each call in its own
//! sandbox.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use toolhost::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadOptions};
//!
//! let engine = Engine::new(EngineConfig::default())?;
//! let catalog = Catalog::load_dir(&engine, "tools".as_ref(), &LoadOptions::default()).await?;
//! let executor = Executor::new(Arc::new(catalog));
//! let record = executor.call("calc", r#"{"expression": "2 + 3 * 4"}"#, CallOptions::default()).await;
//! println!("{}", record.to_json());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bench;
mod bindings;
mod catalog;
mod engine;
mod exec;
pub mod formats;
#[cfg(test)]
mod fuzzing;
pub mod llm;
pub mod mcp;
mod outcome;
mod policy;
mod reload;
mod sandbox;
pub mod scaffold;
pub mod serve;

pub use catalog::{
    Behavior, Catalog, CatalogError, ComponentState, ComponentStatus, LoadError, LoadEvent,
    LoadOptions, LoadStats, NAMESPACE_SEPARATOR, ToolInfo, WIT_SOURCE_SECTION, default_cache_dir,
    is_valid_name,
};
pub use engine::{Engine, EngineConfig, EngineError};
pub use exec::{
    Batch, BatchOptions, BatchReport, BatchResult, Bound, CacheConfig, CallHandle, CallOptions,
    CallRequest, Ceiling, Event, ExecConfig, ExecStats, Executor, FuelAccount,
    INSTANCE_OVERHEAD_MB, Plan, PlanError, PlanResult, RateRule, Score, Step, Strategy,
    canonical_json, default_memory_budget_mb,
};
pub use outcome::{CallRecord, Outcome, ToolErrorKind};
pub use policy::{
    Capabilities, DEFAULT_MAX_CONCURRENCY, Granted, HttpLimits, HttpLimitsPatch, Limits,
    LimitsPatch, OnLimit, Policy, PolicyError, PolicyReview, Rate, Retry, RetryPatch, Secret,
    parse_rate, review_dir,
};
pub use reload::{FolderWatch, ReloadCounters, ReloadStats, WatchError, watch};
pub use sandbox::GuestEvent;
pub use tokio_util::sync::CancellationToken;
