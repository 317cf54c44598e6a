//! The MCP face: the catalog as MCP tools, served over stdio
//! ([`serve_stdio`]) or streamable HTTP ([`http_service`]) with rmcp.
//!
//! - `tools/list` publishes every tool with its input schema, its output
//!   schema (when it is an object schema, as MCP requires) and annotations
//!   from its behaviour flags and policy.
//! - `tools/call` answers `structuredContent` plus one text block; a tool
//!   failure of any kind is `isError: true` with the outcome as text, never a
//!   protocol error. Only an unknown tool is a protocol error (invalid params).
//! - Guest progress becomes `notifications/progress` when the request carried
//!   a `progressToken`, coalesced so that a slow or silent client neither
//!   stalls the call nor makes the server buffer for it;
//!   `notifications/cancelled` stops the call.
//! - A swap of the executor's catalog that changes what a session sees sends
//!   it `tools/list_changed`.
//! - Behind an authenticating layer ([`tenant_service`]), each HTTP request
//!   carries its tenant's [`Caller`]: a session belongs to that tenant, sees
//!   only its tools and spends its quotas, and sessions are capped.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod access;
mod convert;
#[cfg(test)]
mod fuzz;
mod held;
mod lines;
mod progress;
mod server;
mod sessions;
mod stdio;
mod tenancy;

use std::sync::Arc;

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use self::lines::Lines;
pub use self::server::McpServer;
pub use self::sessions::McpSessions;
use toolhost_runtime::Executor;
#[cfg(doc)]
use toolhost_runtime::tenancy::Caller;

/// The streamable HTTP MCP endpoint: a tower service (clone it freely) to
/// mount under a path, e.g. `Router::new().nest_service("/mcp", service)`.
pub type McpHttpService = StreamableHttpService<McpServer, McpSessions>;

/// How long a session of [`http_service`] lives without a message: rmcp's
/// default, five minutes.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(300);

/// Settings of the streamable HTTP endpoint (rmcp's): allowed `Host` and
/// `Origin` values, body size, keep-alive, session mode.
pub type McpHttpConfig = StreamableHttpServerConfig;

/// Why an MCP server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The client never completed the `initialize` handshake.
    #[error("the MCP client did not initialize the session: {0}")]
    Initialize(String),
    /// The task serving the session panicked or was aborted.
    #[error("the MCP session task failed: {0}")]
    Session(String),
}

/// Serves the executor's tools to one MCP client on this process's stdin and
/// stdout until the client closes the connection. Nothing else may write to
/// stdout meanwhile: logs belong on stderr.
///
/// # Errors
///
/// [`McpError::Initialize`] when the client goes away before initializing;
/// [`McpError::Session`] when the session task fails.
pub async fn serve_stdio(executor: Arc<Executor>) -> Result<(), McpError> {
    let server = McpServer::new(executor.clone());
    // A line's parse is held from the budget as the server's calls are.
    let caller = server.caller().to_string();
    let hold: lines::ParseHold = Box::new(move |bytes| executor.hold_memory(&caller, bytes));
    // MCP clients start servers with pipes (rmcp's non-blocking pipe
    // driver) or, like Node and the apps built on it, with Unix sockets
    // (read here as non-blocking sockets); a file or a terminal falls back to
    // tokio's blocking stdio, one thread hand-off per read and write.
    match stdio::sockets() {
        Some((input, output)) => run(server, Lines::new(input, output).with_parse_hold(hold)).await,
        None => {
            let (input, output) = rmcp::transport::io::stdio_pipes();
            run(server, Lines::new(input, output).with_parse_hold(hold)).await
        }
    }
}

async fn run<T, E, A>(server: McpServer, transport: T) -> Result<(), McpError>
where
    T: rmcp::transport::IntoTransport<rmcp::RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let running = server
        .serve(transport)
        .await
        .map_err(|e| McpError::Initialize(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    Ok(())
}

/// The streamable HTTP endpoint over `executor`, one [`McpServer`] per
/// session, with rmcp's defaults: only loopback `Host` names are accepted
/// (DNS-rebinding protection; see [`http_service_with`] to serve others).
/// Cancelling `cancel` ends every session.
///
/// ```no_run
/// # fn demo(executor: std::sync::Arc<toolhost_runtime::Executor>) {
/// let cancel = toolhost_runtime::CancellationToken::new();
/// let app: axum::Router =
///     axum::Router::new().nest_service("/mcp", toolhost_mcp::http_service(executor, cancel));
/// # }
/// ```
pub fn http_service(executor: Arc<Executor>, cancel: CancellationToken) -> McpHttpService {
    let mut config = McpHttpConfig::default();
    config.cancellation_token = cancel;
    http_service_with(executor, config)
}

/// Like [`http_service`], with every setting of the endpoint chosen by the
/// caller (for example the `Host` names a public deployment answers to).
pub fn http_service_with(executor: Arc<Executor>, config: McpHttpConfig) -> McpHttpService {
    http_service_hooked(executor, config, Some(DEFAULT_SESSION_IDLE), None)
}

/// The endpoint with sessions that end after `idle` without a message, each
/// told to `hook` as it opens and ends.
fn http_service_hooked(
    executor: Arc<Executor>,
    config: McpHttpConfig,
    idle: Option<Duration>,
    hook: Option<Arc<dyn sessions::SessionHook>>,
) -> McpHttpService {
    // One rendering of the tools for every session of the endpoint.
    let listings = Arc::new(server::Listings::default());
    StreamableHttpService::new(
        move || Ok(McpServer::sharing(executor.clone(), listings.clone())),
        Arc::new(McpSessions::new(idle, hook)),
        config,
    )
}

/// Bounds on the sessions of an endpoint that tenants share.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Sessions open at once, all tenants together (then `503`).
    pub total: usize,
    /// Sessions open at once per tenant (then `429`).
    pub per_tenant: usize,
    /// A session ends after this long without a message.
    pub idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            total: 1024,
            per_tenant: 32,
            idle: DEFAULT_SESSION_IDLE,
        }
    }
}

/// The streamable HTTP endpoint for tenants: every request must carry its
/// tenant's [`Caller`] in its HTTP extensions (put there by the layer in
/// front that checked its key; a request without one is refused `401`). A
/// session belongs to the tenant that opened it (to any other it does not
/// exist: `404`), sees only that tenant's tools and spends its quotas;
/// opening one takes a call from the tenant's rate, and sessions are capped
/// by `limits`. A call's place under the tenant's `concurrency` is held
/// until the answer of the `POST` that carried it has been handed to the
/// connection, so answers a client leaves unread count as calls in flight.
pub fn tenant_service(
    executor: Arc<Executor>,
    config: McpHttpConfig,
    limits: SessionLimits,
) -> axum::Router {
    let sessions = Arc::new(access::Sessions::new(access::SessionCaps {
        total: limits.total,
        per_tenant: limits.per_tenant,
    }));
    let endpoint = http_service_hooked(
        executor,
        config,
        Some(limits.idle),
        Some(sessions.clone() as Arc<dyn sessions::SessionHook>),
    );
    axum::Router::new()
        .fallback_service(endpoint)
        .layer(axum::middleware::from_fn_with_state(
            sessions,
            access::admit,
        ))
}
