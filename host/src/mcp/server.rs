//! [`McpServer`]: rmcp's `ServerHandler` over an [`Executor`], written by
//! hand because the tools are only known at run time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProgressToken, ServerCapabilities, ServerConfig, SubscriptionFilter,
    Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::convert;
use crate::{CallOptions, CallRecord, Catalog, Executor};

/// The caller key MCP calls are counted under unless told otherwise.
const DEFAULT_CALLER: &str = "mcp";

/// One MCP session's server: the executor's tools, listed and called.
///
/// One value serves one session (the HTTP service makes one per session);
/// dropping it stops the session's `tools/list_changed` watcher.
pub struct McpServer {
    executor: Arc<Executor>,
    caller: String,
    /// Changes with every catalog swap; the listing cache is keyed by it.
    generation: watch::Receiver<u64>,
    /// The last listing built, and the catalog generation it was built from.
    listing: Mutex<Option<(u64, Arc<[Tool]>)>>,
    /// The `tools/list_changed` watcher was started.
    watching: AtomicBool,
    /// Cancelled on drop: the session is gone.
    closed: CancellationToken,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl McpServer {
    /// A server over `executor`; its calls count under the caller key `mcp`.
    pub fn new(executor: Arc<Executor>) -> Self {
        let generation = executor.catalog_changes();
        Self {
            executor,
            caller: DEFAULT_CALLER.into(),
            generation,
            listing: Mutex::new(None),
            watching: AtomicBool::new(false),
            closed: CancellationToken::new(),
        }
    }

    /// Counts this session's calls under `caller`'s limits instead of `mcp`'s.
    pub fn with_caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = caller.into();
        self
    }

    /// Every tool of the current catalog, built once per catalog.
    fn tools(&self) -> Arc<[Tool]> {
        // Read the generation before the catalog: a swap in between makes the
        // cached generation stale, so the next listing is rebuilt, never wrong.
        let generation = *self.generation.borrow();
        let mut listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, tools)) = listing.as_ref()
            && *built == generation
        {
            return tools.clone();
        }
        let catalog = self.executor.catalog();
        let tools: Arc<[Tool]> = catalog
            .tools()
            .map(|info| convert::tool(info, grants_network(&catalog, &info.name)))
            .collect();
        *listing = Some((generation, tools.clone()));
        tools
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallRecord {
        let input = Value::Object(request.arguments.unwrap_or_default());
        let mut options = CallOptions::default()
            .cancel(context.ct.clone())
            .caller(self.caller.as_str());
        let token = request
            .meta
            .as_ref()
            .and_then(|meta| meta.get_progress_token())
            .or_else(|| context.meta.get_progress_token());
        let Some(token) = token else {
            return self
                .executor
                .call_value(&request.name, &input, options)
                .await;
        };
        let (events, mut received) = mpsc::unbounded_channel();
        options.events = Some(events);
        let call = self.executor.call_value(&request.name, &input, options);
        tokio::pin!(call);
        let peer = &context.peer;
        loop {
            tokio::select! {
                biased;
                record = &mut call => {
                    // Progress already reported goes out before the result.
                    while let Ok(event) = received.try_recv() {
                        send_progress(peer, &token, event).await;
                    }
                    return record;
                }
                Some(event) = received.recv() => send_progress(peer, &token, event).await,
            }
        }
    }

    /// Sends `tools/list_changed` to `peer` on every catalog swap until the
    /// session ends.
    fn watch_catalog(&self, peer: Peer<RoleServer>) {
        if self.watching.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut changes = self.executor.catalog_changes();
        changes.mark_unchanged();
        let closed = self.closed.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = closed.cancelled() => break,
                    changed = changes.changed() => {
                        if changed.is_err() || peer.is_transport_closed() {
                            break;
                        }
                        if let Err(error) = peer.notify_tool_list_changed().await {
                            tracing::debug!(%error, "could not send tools/list_changed; the session is gone");
                            break;
                        }
                    }
                }
            }
        });
    }
}

async fn send_progress(peer: &Peer<RoleServer>, token: &ProgressToken, event: crate::GuestEvent) {
    if let Some(param) = convert::progress(token, event)
        && let Err(error) = peer.notify_progress(param).await
    {
        tracing::debug!(%error, "could not send a progress notification");
    }
}

/// True when the policy of `tool`'s component lets it reach the network.
fn grants_network(catalog: &Catalog, tool: &str) -> bool {
    catalog
        .entry(tool)
        .is_some_and(|entry| entry.component.grants.http.is_some())
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("toolhost", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools run as sandboxed WebAssembly components, each call in a fresh instance.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools().to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let record = self.call(request, context).await;
        convert::result(record).map(CallToolResponse::from)
    }

    /// Sessions that began with `initialize` (protocol versions up to
    /// 2025-11-25) get `tools/list_changed` from the moment they are ready.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.watch_catalog(context.peer);
    }

    /// Protocol 2026-07-28 clients ask for `tools/list_changed` with
    /// `subscriptions/listen`; nothing else is offered.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let wanted = context.accepted().tools_list_changed == Some(true);
        let mut changes = self.executor.catalog_changes();
        changes.mark_unchanged();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed(), if wanted => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if let Err(error) = context.sink().notify_tool_list_changed().await {
                        tracing::debug!(%error, "could not send tools/list_changed; the subscription is gone");
                        return Ok(());
                    }
                }
            }
        }
    }
}
