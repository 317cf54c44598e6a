//! rmcp's in-memory sessions with an idle expiry, told to a [`SessionHook`]
//! as they open and as they end, however they end: `DELETE`, idle expiry,
//! the transport closing, or the server shutting down (rmcp closes a
//! session through its manager in every one of those cases).

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};

/// Hears the life of each MCP session over HTTP.
pub(crate) trait SessionHook: Send + Sync {
    /// A session was created (while the request that opens it is served).
    fn opened(&self, id: &str);
    /// A session ended; may be told more than once for one session.
    fn closed(&self, id: &str);
}

/// The sessions of one streamable HTTP endpoint: rmcp's
/// [`LocalSessionManager`], whose sessions end after an idle time, plus the
/// hook of the layer in front (which counts and owns them).
pub struct McpSessions {
    inner: LocalSessionManager,
    hook: Option<Arc<dyn SessionHook>>,
}

impl std::fmt::Debug for McpSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpSessions")
            .field("idle", &self.inner.session_config.keep_alive)
            .finish_non_exhaustive()
    }
}

impl McpSessions {
    /// Sessions that end after `idle` without a message (never with `None`).
    pub(crate) fn new(idle: Option<Duration>, hook: Option<Arc<dyn SessionHook>>) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = idle;
        Self { inner, hook }
    }
}

impl SessionManager for McpSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        if let Some(hook) = &self.hook {
            hook.opened(&id);
        }
        Ok((id, transport))
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await;
        if let Some(hook) = &self.hook {
            hook.closed(id);
        }
        closed
    }

    fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<ServerJsonRpcMessage, Self::Error>> + Send {
        self.inner.initialize_session(id, message)
    }

    fn has_session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.inner.has_session(id)
    }

    fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_stream(id, message)
    }

    fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.accept_message(id, message)
    }

    fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_standalone_stream(id)
    }

    fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.resume(id, last_event_id)
    }
}
