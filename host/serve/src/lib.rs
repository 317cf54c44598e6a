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
//! | any path ([`Server::router_with`]) | another service behind the same keys, e.g. MCP over streamable HTTP at `/mcp` |
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
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod answer;
mod audit;
mod cluster;
mod config;
mod dialect;
#[cfg(test)]
mod fuzz;
mod listen;
pub use self::listen::raise_open_files_limit;
mod local;
mod metrics;
mod routes;
mod stalled;
mod store;
mod tenants;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use self::cluster::{FailureMode, RedisConfig};
use self::config::Settings;
pub use self::config::{ConfigError, ServeConfig, TenantConfig, TenantLimits, hash_key};
use self::metrics::Metrics;
pub use self::store::{RedisSetupError, requests_in_commandstats};
use self::tenants::Tenants;
#[cfg(doc)]
use toolhost_runtime::tenancy::Caller;
use toolhost_runtime::tenancy::Observer;
pub use toolhost_runtime::tenancy::{Tenant, ToolFilter};
use toolhost_runtime::{Executor, ReloadCounters};

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
    metrics: Arc<Metrics>,
    settings: Settings,
    /// No keys: only loopback names and same-origin JSON are answered.
    loopback_only: bool,
    draining: AtomicBool,
    /// Cancelled on drain: ends long-lived sessions (MCP) so shutdown can finish.
    shutdown: CancellationToken,
    /// Which authentication failures reach the audit log.
    auth_failures: audit::AuthFailures,
}

/// What a service mounted with [`Server::router_with`] should follow: the
/// server's body limit, its session settings, and its drain.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MountSettings {
    /// The largest request body, in bytes (`max_body_kb`).
    pub max_body_bytes: usize,
    /// Sessions open at once, all tenants together (`mcp_max_sessions`).
    pub max_sessions: usize,
    /// Sessions open at once per tenant (`mcp_max_sessions_per_tenant`).
    pub max_sessions_per_tenant: usize,
    /// A session ends after this long without a message (`mcp_session_idle_s`).
    pub session_idle: std::time::Duration,
    /// Cancelled when the server drains: end long-lived sessions then.
    pub shutdown: CancellationToken,
}

impl Server {
    /// A server that authenticates every request against `config`'s tenants.
    /// A tenant without a `concurrency` of its own gets `tenant_concurrency`
    /// (default: half of the executor's pool), and so does the tenant
    /// `admin` when admin keys call tools. `/metrics` takes only the
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
        let admin_calls = config.admin_calls_tools.then_some(concurrency);
        let shared = executor.shared().cloned();
        Ok(Self::build(
            executor,
            |observer| Tenants::new(tenants, admin, admin_calls, observer, shared),
            config.settings(),
            false,
            reload,
        ))
    }

    /// A server with no authentication: every request is the tenant
    /// `anonymous`, which may call every tool and read `/metrics`, with the
    /// calls in flight of a tenant that sets no `concurrency` (half the
    /// executor's pool). For loopback and development only: it answers only
    /// requests that name a loopback host, come from no other origin and
    /// carry JSON bodies.
    pub fn open(executor: Arc<Executor>, reload: Option<Arc<ReloadCounters>>) -> Self {
        let settings = ServeConfig::default().settings();
        let concurrency = config::default_tenant_concurrency(executor.pool_size());
        let tenants = move |observer| Tenants::open(observer, concurrency);
        Self::build(executor, tenants, settings, true, reload)
    }

    fn build(
        executor: Arc<Executor>,
        tenants: impl FnOnce(Arc<dyn Observer>) -> Tenants,
        settings: Settings,
        loopback_only: bool,
        reload: Option<Arc<ReloadCounters>>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new(executor.clone(), reload));
        Self {
            state: Arc::new(State {
                tenants: tenants(metrics.clone()),
                metrics,
                executor,
                settings,
                loopback_only,
                draining: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                auth_failures: audit::AuthFailures::default(),
            }),
        }
    }

    /// The executor the server calls.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.state.executor
    }

    /// The settings a service mounted with [`Server::router_with`] follows.
    pub fn mount_settings(&self) -> MountSettings {
        let settings = &self.state.settings;
        MountSettings {
            max_body_bytes: settings.max_body_bytes,
            max_sessions: settings.max_sessions,
            max_sessions_per_tenant: settings.max_sessions_per_tenant,
            session_idle: settings.session_idle,
            shutdown: self.state.shutdown.child_token(),
        }
    }

    /// The routes, ready for [`Server::serve`] or `Router::oneshot`.
    pub fn router(&self) -> Router {
        self.finish(self.routes())
    }

    /// [`Server::router`] plus `service` at `path` (and below it), behind
    /// the same keys: a request reaches `service` only with a tenant's key
    /// (or an admin key when `admin_calls_tools`; 401 or 403 otherwise),
    /// carrying the tenant's [`Caller`] in its extensions, and its body is
    /// bounded by `max_body_kb`. For MCP over streamable HTTP, mount the MCP
    /// crate's tenant endpoint at `/mcp` with [`Server::mount_settings`].
    pub fn router_with<S>(&self, path: &str, service: S) -> Router
    where
        S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let guarded =
            Router::new()
                .nest_service(path, service)
                .layer(axum::middleware::from_fn_with_state(
                    self.state.clone(),
                    routes::authenticate,
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
            .layer(axum::middleware::from_fn(routes::trace_request))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                audit::auth_failures,
            ));
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
