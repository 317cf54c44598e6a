//! toolhost: run LLM tools as WebAssembly components, each call in its own
//! sandbox.
//!
//! This crate gathers the workspace's library crates under one name, as the
//! `toolhost` command uses them:
//!
//! | path | crate | what |
//! |---|---|---|
//! | `toolhost::*` | `toolhost-runtime` | engine, policies, sandbox, catalog, executor, tenancy |
//! | [`toolhost::llm`](llm) | `toolhost-llm` | model clients, the agent loop, speculation |
//! | [`toolhost::mcp`](mcp) | `toolhost-mcp` | the catalog as an MCP server (stdio, streamable HTTP) |
//! | [`toolhost::serve`](serve) | `toolhost-serve` | the multi-tenant HTTP API |
//! | [`toolhost::oci`](oci) | (here) | `pull` and `push` of components in OCI registries |
//!
//! A program that only runs tools depends on `toolhost-runtime` alone, which
//! has no HTTP server, MCP or model client in its dependency tree.
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
#![warn(unreachable_pub)]

pub mod oci;
pub mod scaffold;

pub use toolhost_llm as llm;
pub use toolhost_mcp as mcp;
pub use toolhost_runtime::*;
pub use toolhost_serve as serve;

/// The HTTP API of `server` plus MCP over streamable HTTP at `/mcp`, as
/// `toolhost serve` runs them: the MCP endpoint sits behind the server's
/// keys (a session opened with a tenant's key belongs to that tenant: its
/// tools, its quotas; other keys are refused in it), follows its body limit
/// and session settings (see [`serve::ServeConfig`]), and its sessions end
/// when the server drains. rmcp accepts loopback `Host` names only unless
/// `config` allows others.
pub fn router_with_mcp(server: &serve::Server, mut config: mcp::McpHttpConfig) -> axum::Router {
    let settings = server.mount_settings();
    config.cancellation_token = settings.shutdown;
    config.max_request_body_bytes = settings.max_body_bytes;
    let limits = mcp::SessionLimits {
        total: settings.max_sessions,
        per_tenant: settings.max_sessions_per_tenant,
        idle: settings.session_idle,
    };
    let endpoint = mcp::tenant_service(server.executor().clone(), config, limits);
    server.router_with("/mcp", endpoint)
}
