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
//! - Behind `serve`, each HTTP request carries its tenant: a session sees
//!   only that tenant's tools and spends its quotas.

mod convert;
#[cfg(test)]
mod fuzz;
mod progress;
mod server;
mod sessions;
mod tenancy;

use std::sync::Arc;

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub use self::server::McpServer;
pub use self::sessions::McpSessions;
pub(crate) use self::sessions::SessionHook;
pub(crate) use self::tenancy::{McpTenancy, Tenancy};
use crate::Executor;

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
    let running = McpServer::new(executor)
        .serve(rmcp::transport::io::stdio_pipes())
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
/// # fn demo(executor: std::sync::Arc<toolhost::Executor>) {
/// let cancel = toolhost::CancellationToken::new();
/// let app: axum::Router =
///     axum::Router::new().nest_service("/mcp", toolhost::mcp::http_service(executor, cancel));
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
pub(crate) fn http_service_hooked(
    executor: Arc<Executor>,
    config: McpHttpConfig,
    idle: Option<Duration>,
    hook: Option<Arc<dyn SessionHook>>,
) -> McpHttpService {
    StreamableHttpService::new(
        move || Ok(McpServer::new(executor.clone())),
        Arc::new(McpSessions::new(idle, hook)),
        config,
    )
}
