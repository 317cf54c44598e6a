//! The HTTP API (axum): tenants with hashed keys, per-tenant quotas and tool
//! filters, the tool list in every provider's shape, single calls, batches of
//! model tool calls (JSON or SSE), Prometheus metrics and health probes.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/tools?format=json\|openai\|anthropic\|mcp` | the tenant's tools, plus each component's load status |
//! | `POST /v1/tools/{name}/call` | one call; the body is the input object; the outcome as JSON |
//! | `POST /v1/tool-calls` | OpenAI `tool_calls` or Anthropic `tool_use` blocks in, result messages out; SSE with `Accept: text/event-stream` |
//! | `GET /metrics` | Prometheus text; admin keys only |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (not ready while draining) |
//! | `/mcp` ([`Server::router_with_mcp`]) | MCP over streamable HTTP; a session belongs to its tenant |
//!
//! Status codes: 401 without a valid key, 403 for a tool outside the
//! tenant's list, 429 with `Retry-After` over a quota, 413 over the body
//! limit. A call that ran answers 200 whatever its outcome (the outcome is in
//! the body); an input the schema refuses answers 422, an unknown tool 404.

mod config;
mod dialect;
#[cfg(test)]
mod fuzz;
mod mcp_access;
mod metrics;
mod routes;
mod tenants;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use self::config::{
    ConfigError, ServeConfig, Tenant, TenantConfig, TenantLimits, ToolFilter, hash_key,
};
use self::metrics::Metrics;
use self::tenants::Tenants;
use crate::{Executor, ReloadCounters};

/// The HTTP API over one executor. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("max_body_bytes", &self.state.max_body_bytes)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

pub(crate) struct State {
    executor: Arc<Executor>,
    tenants: Tenants,
    metrics: Metrics,
    max_body_bytes: usize,
    draining: AtomicBool,
    /// Cancelled on drain: ends long-lived MCP sessions so shutdown can finish.
    shutdown: CancellationToken,
    /// Who opened each MCP session.
    mcp_sessions: mcp_access::Sessions,
}

impl Server {
    /// A server that authenticates every request against `config`'s tenants.
    /// A tenant without a `concurrency` of its own gets `tenant_concurrency`
    /// (default: half of the executor's pool). `/metrics` takes only the
    /// admin keys; `reload` adds the hot reloader's counters to it.
    pub fn new(
        executor: Arc<Executor>,
        config: &ServeConfig,
        reload: Option<Arc<ReloadCounters>>,
    ) -> Result<Self, ConfigError> {
        let invalid = |message| ConfigError::Invalid {
            path: "<config>".into(),
            message,
        };
        let mut tenants = config.tenants().map_err(invalid)?;
        let concurrency = config
            .tenant_concurrency
            .unwrap_or_else(|| config::default_tenant_concurrency(executor.pool_size()));
        for (tenant, _) in &mut tenants {
            tenant.concurrency = tenant.concurrency.or(Some(concurrency));
        }
        let admin = config
            .admin_keys
            .iter()
            .map(|key| config::parse_hash(key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        Ok(Self::build(
            executor,
            Tenants::new(tenants, admin),
            config.max_body_kb,
            reload,
        ))
    }

    /// A server with no authentication: every request is the tenant
    /// `anonymous`, which may call every tool and read `/metrics`. For
    /// loopback and development only.
    pub fn open(executor: Arc<Executor>, reload: Option<Arc<ReloadCounters>>) -> Self {
        Self::build(executor, Tenants::open(), 1024, reload)
    }

    fn build(
        executor: Arc<Executor>,
        tenants: Tenants,
        max_body_kb: u64,
        reload: Option<Arc<ReloadCounters>>,
    ) -> Self {
        Self {
            state: Arc::new(State {
                metrics: Metrics::new(executor.clone(), reload),
                executor,
                tenants,
                max_body_bytes: usize::try_from(max_body_kb << 10).unwrap_or(usize::MAX),
                draining: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                mcp_sessions: mcp_access::Sessions::default(),
            }),
        }
    }

    /// The routes, ready for `axum::serve` or `Router::oneshot`. Mount more
    /// (such as MCP at `/mcp`) with `Router::nest_service`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/tools", get(routes::list_tools))
            .route("/v1/tools/{name}/call", post(routes::call_tool))
            .route("/v1/tool-calls", post(routes::tool_calls))
            .route("/metrics", get(routes::metrics))
            .route("/healthz", get(routes::healthz))
            .route("/readyz", get(routes::readyz))
            .layer(DefaultBodyLimit::max(self.state.max_body_bytes))
            .layer(axum::middleware::from_fn(routes::trace_request))
            .with_state(self.state.clone())
    }

    /// [`Server::router`] plus MCP over streamable HTTP at `/mcp`. Every
    /// request needs a key: a session opened with a tenant's key belongs to
    /// that tenant (its tools, its quotas; other keys are refused in it), one
    /// opened with an admin key sees every tool. rmcp accepts loopback `Host`
    /// names only unless `config` allows others.
    pub fn router_with_mcp(&self, mut config: crate::mcp::McpHttpConfig) -> Router {
        config.cancellation_token = self.state.shutdown.child_token();
        let mcp = crate::mcp::http_service_with(self.state.executor.clone(), config);
        let guarded =
            Router::new()
                .nest_service("/mcp", mcp)
                .layer(axum::middleware::from_fn_with_state(
                    self.state.clone(),
                    mcp_access::authenticate,
                ));
        self.router().merge(guarded)
    }

    /// Marks the server as draining: `/readyz` answers 503 so load
    /// balancers stop sending, MCP sessions end, and calls in flight finish.
    pub fn drain(&self) {
        self.state.draining.store(true, Ordering::Relaxed);
        self.state.shutdown.cancel();
    }

    /// False once [`Server::drain`] was called.
    pub fn is_ready(&self) -> bool {
        !self.state.draining.load(Ordering::Relaxed)
    }
}
