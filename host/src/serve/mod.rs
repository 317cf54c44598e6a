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
//! tenant's list (or, for a tenant without `reach_outside`, one that reaches
//! outside or does not exist), 403 for an admin key calling a tool unless
//! `admin_calls_tools`, 429 with `Retry-After` over a quota, 413 over the
//! body limit, 408 for a body slower than `body_timeout_ms`. A call that ran
//! answers 200 whatever its outcome (the outcome is in the body); an input
//! the schema refuses answers 422, an unknown tool 404.
//!
//! The key is checked before the body is read. [`Server::serve`] drops a
//! connection that does not send a request's head within
//! `header_timeout_ms`. A server without keys ([`Server::open`]) answers
//! only loopback names, same-origin JSON (see `local.rs`).

mod config;
mod dialect;
#[cfg(test)]
mod fuzz;
mod listen;
mod local;
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

use self::config::Settings;
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
            .field("settings", &self.state.settings)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

pub(crate) struct State {
    executor: Arc<Executor>,
    tenants: Tenants,
    metrics: Metrics,
    settings: Settings,
    /// No keys: only loopback names and same-origin JSON are answered.
    loopback_only: bool,
    draining: AtomicBool,
    /// Cancelled on drain: ends long-lived MCP sessions so shutdown can finish.
    shutdown: CancellationToken,
    /// Who opened each MCP session, and how many each tenant holds.
    mcp_sessions: Arc<mcp_access::Sessions>,
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
        let tenants = Tenants::new(tenants, admin, config.admin_calls_tools);
        Ok(Self::build(
            executor,
            tenants,
            config.settings(),
            false,
            reload,
        ))
    }

    /// A server with no authentication: every request is the tenant
    /// `anonymous`, which may call every tool and read `/metrics`. For
    /// loopback and development only: it answers only requests that name a
    /// loopback host, come from no other origin and carry JSON bodies.
    pub fn open(executor: Arc<Executor>, reload: Option<Arc<ReloadCounters>>) -> Self {
        let settings = ServeConfig::default().settings();
        Self::build(executor, Tenants::open(), settings, true, reload)
    }

    fn build(
        executor: Arc<Executor>,
        tenants: Tenants,
        settings: Settings,
        loopback_only: bool,
        reload: Option<Arc<ReloadCounters>>,
    ) -> Self {
        let caps = mcp_access::SessionCaps {
            total: settings.max_sessions,
            per_tenant: settings.max_sessions_per_tenant,
        };
        Self {
            state: Arc::new(State {
                metrics: Metrics::new(executor.clone(), reload),
                executor,
                tenants,
                settings,
                loopback_only,
                draining: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                mcp_sessions: Arc::new(mcp_access::Sessions::new(caps)),
            }),
        }
    }

    /// The routes, ready for [`Server::serve`] or `Router::oneshot`.
    pub fn router(&self) -> Router {
        self.finish(self.routes())
    }

    /// [`Server::router`] plus MCP over streamable HTTP at `/mcp`. Every
    /// request needs a key: a session opened with a tenant's key belongs to
    /// that tenant (its tools, its quotas; other keys are refused in it).
    /// Sessions are capped per tenant and in all, opening one counts
    /// against the tenant's rate, and an idle one ends (see [`ServeConfig`]).
    /// Bodies are bounded by `max_body_kb`. rmcp accepts loopback `Host`
    /// names only unless `config` allows others.
    pub fn router_with_mcp(&self, mut config: crate::mcp::McpHttpConfig) -> Router {
        let settings = &self.state.settings;
        config.cancellation_token = self.state.shutdown.child_token();
        config.max_request_body_bytes = settings.max_body_bytes;
        let mcp = crate::mcp::http_service_hooked(
            self.state.executor.clone(),
            config,
            Some(settings.session_idle),
            Some(self.state.mcp_sessions.clone()),
        );
        let guarded =
            Router::new()
                .nest_service("/mcp", mcp)
                .layer(axum::middleware::from_fn_with_state(
                    self.state.clone(),
                    mcp_access::authenticate,
                ));
        self.finish(self.routes().merge(guarded))
    }

    fn routes(&self) -> Router<Arc<State>> {
        Router::new()
            .route("/v1/tools", get(routes::list_tools))
            .route("/v1/tools/{name}/call", post(routes::call_tool))
            .route("/v1/tool-calls", post(routes::tool_calls))
            .route("/metrics", get(routes::metrics))
            .route("/healthz", get(routes::healthz))
            .route("/readyz", get(routes::readyz))
    }

    /// The layers every route shares.
    fn finish(&self, routes: Router<Arc<State>>) -> Router {
        let routes = routes
            .layer(DefaultBodyLimit::max(self.state.settings.max_body_bytes))
            .layer(axum::middleware::from_fn(routes::trace_request));
        let routes = if self.state.loopback_only {
            routes.layer(axum::middleware::from_fn(local::loopback_only))
        } else {
            routes
        };
        routes.with_state(self.state.clone())
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
