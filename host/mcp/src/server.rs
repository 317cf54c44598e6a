//! [`McpServer`]: rmcp's `ServerHandler` over an [`Executor`], written by
//! hand because the tools are only known at run time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

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

use super::tenancy;
use super::{convert, progress};
use toolhost_runtime::tenancy::Caller;
use toolhost_runtime::{CallOptions, CallRecord, Catalog, Executor};

/// The caller key MCP calls are counted under unless told otherwise.
const DEFAULT_CALLER: &str = "mcp";

/// One MCP session's server: the executor's tools, listed and called.
///
/// One value serves one session (the HTTP service makes one per session);
/// dropping it stops the session's `tools/list_changed` watcher. Behind
/// `serve`, a session belongs to the key that opened it (`serve` refuses
/// its id to other keys): it sees only that tenant's tools, and its calls
/// take the tenant's quotas.
pub struct McpServer {
    executor: Arc<Executor>,
    caller: String,
    /// The MCP rendering of the catalog, shared with the endpoint's other
    /// sessions.
    listings: Arc<Listings>,
    /// The `tools/list_changed` watcher was started.
    watching: AtomicBool,
    /// The catalog as of each `subscriptions/listen` accepted but not yet
    /// listening: rmcp acknowledges a subscription before it calls
    /// [`ServerHandler::listen`], and a swap in between must not be lost.
    listen_since: Mutex<Vec<Arc<Catalog>>>,
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
        Self::sharing(executor, Arc::default())
    }

    /// A server whose listing of the tools is `listings`, which other
    /// sessions over the same executor share.
    pub(crate) fn sharing(executor: Arc<Executor>, listings: Arc<Listings>) -> Self {
        Self {
            executor,
            caller: DEFAULT_CALLER.into(),
            listings,
            watching: AtomicBool::new(false),
            listen_since: Mutex::new(Vec::new()),
            closed: CancellationToken::new(),
        }
    }

    /// The caller key this server's calls count under.
    pub(crate) fn caller(&self) -> &str {
        &self.caller
    }

    /// Counts this session's calls under `caller`'s limits instead of `mcp`'s.
    pub fn with_caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = caller.into();
        self
    }

    /// The tools `tenancy` may see (every tool without one).
    fn visible(&self, tenancy: Option<&Caller>) -> Vec<Tool> {
        Seen::of(&self.listings, &self.executor.catalog(), tenancy)
            .tools()
            .cloned()
            .collect()
    }

    /// Runs a call for `tenancy` (or unrestricted). The executor hides the
    /// tools the tenant may not see (unknown, with suggestions drawn only
    /// from what it sees) and takes its quotas (a refusal is the call's
    /// outcome); the call's place and what its answer keeps of its memory
    /// reservation go to the request's hold, when the layer in front gave
    /// it one, until the answer is sent.
    async fn call_for(
        &self,
        tenancy: Option<Caller>,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallRecord {
        let options = match tenancy {
            None => CallOptions::default().caller(self.caller.as_str()),
            Some(caller) => CallOptions::default().tenant(caller),
        };
        let options = match tenancy::hold_of(&context.extensions) {
            Some(hold) => options.hold_place(hold),
            None => options,
        };
        self.call(request, context, options).await
    }

    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        options: CallOptions,
    ) -> CallRecord {
        // Text, and the parsed arguments dropped before the call runs: the
        // call bounds the tree its input makes by its own memory cap, and
        // the one rmcp made would otherwise live on beside it.
        let input = Value::Object(request.arguments.unwrap_or_default()).to_string();
        let mut options = options.cancel(context.ct.clone());
        let token = request
            .meta
            .as_ref()
            .and_then(|meta| meta.get_progress_token())
            .or_else(|| context.meta.get_progress_token());
        // Boxed: the executor's call future is kilobytes, and rmcp runs each
        // request on a task of its own, so an unboxed one would be copied
        // whole into every request's task.
        let Some(token) = token else {
            return Box::pin(self.executor.call(&request.name, &input, options)).await;
        };
        let (events, received) = mpsc::unbounded_channel();
        options.events = Some(events);
        let call = Box::pin(self.executor.call(&request.name, &input, options));
        let peer = context.peer.clone();
        progress::forward(call, received, move |event| {
            let (peer, token) = (peer.clone(), token.clone());
            Box::pin(async move { send_progress(&peer, &token, event).await })
        })
        .await
    }

    /// Sends `tools/list_changed` to `peer` whenever a catalog swap changes
    /// the tools `tenancy` sees, until the session ends.
    fn watch_catalog(&self, peer: Peer<RoleServer>, tenancy: Option<Caller>) {
        if self.watching.swap(true, Ordering::Relaxed) {
            return;
        }
        let mut watch = ListingWatch::new(self.executor.clone(), self.listings.clone(), tenancy);
        let closed = self.closed.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = closed.cancelled() => break,
                    changed = watch.changed() => {
                        if !changed || peer.is_transport_closed() {
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

async fn send_progress(
    peer: &Peer<RoleServer>,
    token: &ProgressToken,
    event: toolhost_runtime::GuestEvent,
) {
    if let Some(param) = convert::progress(token, event)
        && let Err(error) = peer.notify_progress(param).await
    {
        tracing::debug!(%error, "could not send a progress notification");
    }
}

/// The MCP rendering of a catalog's tools, built once per catalog and
/// shared by every session of an endpoint. (Each session built and kept its
/// own, and its watcher two more: about 1.6 MB a session for a listing of
/// 80 KB of JSON, and a catalog swap rebuilt it once per session.)
#[derive(Debug, Default)]
pub(crate) struct Listings {
    /// The last listing built, and the catalog it was built from: held
    /// weakly, so an old catalog is not kept alive for it, and its address
    /// cannot be reused by another while it is held.
    built: Mutex<Option<Built>>,
}

/// A listing and the catalog it renders.
type Built = (Weak<Catalog>, Arc<[Tool]>);

impl Listings {
    /// Every tool of `catalog`, as MCP tools.
    fn of(&self, catalog: &Arc<Catalog>) -> Arc<[Tool]> {
        // Built under the lock: sessions listing at once wait for one build.
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((of, tools)) = built.as_ref()
            && std::ptr::eq(of.as_ptr(), Arc::as_ptr(catalog))
        {
            return tools.clone();
        }
        let tools: Arc<[Tool]> = catalog.tools().map(convert::tool).collect();
        *built = Some((Arc::downgrade(catalog), tools.clone()));
        tools
    }
}

/// What one tenancy sees of a shared listing: the listing, and which of its
/// tools.
#[derive(Debug)]
struct Seen {
    all: Arc<[Tool]>,
    visible: Vec<usize>,
}

impl Seen {
    fn of(listings: &Listings, catalog: &Arc<Catalog>, tenancy: Option<&Caller>) -> Self {
        let all = listings.of(catalog);
        let visible = all
            .iter()
            .enumerate()
            .filter(|(_, tool)| tenancy.is_none_or(|tenancy| tenancy.sees(catalog, &tool.name)))
            .map(|(index, _)| index)
            .collect();
        Self { all, visible }
    }

    fn tools(&self) -> impl Iterator<Item = &Tool> {
        self.visible.iter().map(|&index| &self.all[index])
    }

    /// The same tools, in the same order.
    fn same_as(&self, other: &Seen) -> bool {
        (Arc::ptr_eq(&self.all, &other.all) && self.visible == other.visible)
            || self.tools().eq(other.tools())
    }
}

/// Waits for catalog swaps that change the tools one tenancy sees: a swap
/// that leaves its list as it was (another tenant's tool, or new code behind
/// the same schemas) is not news to it.
struct ListingWatch {
    executor: Arc<Executor>,
    listings: Arc<Listings>,
    tenancy: Option<Caller>,
    changes: watch::Receiver<u64>,
    seen: Seen,
}

impl ListingWatch {
    /// Watches for changes from the current catalog on.
    fn new(executor: Arc<Executor>, listings: Arc<Listings>, tenancy: Option<Caller>) -> Self {
        let catalog = executor.catalog();
        Self::since(executor, listings, tenancy, &catalog)
    }

    /// Watches for changes from `catalog` on: a swap since it counts.
    fn since(
        executor: Arc<Executor>,
        listings: Arc<Listings>,
        tenancy: Option<Caller>,
        catalog: &Arc<Catalog>,
    ) -> Self {
        let mut changes = executor.catalog_changes();
        changes.mark_unchanged();
        let seen = Seen::of(&listings, catalog, tenancy.as_ref());
        Self {
            executor,
            listings,
            tenancy,
            changes,
            seen,
        }
    }

    /// True once the list changed; false when the executor is gone.
    async fn changed(&mut self) -> bool {
        loop {
            // Compared first: a swap before the receiver was made is news
            // too when the watch began from an older catalog.
            let now = Seen::of(
                &self.listings,
                &self.executor.catalog(),
                self.tenancy.as_ref(),
            );
            let changed = !now.same_as(&self.seen);
            // Kept even when the same: the newest listing, not an old one
            // held alive for this watch alone.
            self.seen = now;
            if changed {
                return true;
            }
            if self.changes.changed().await.is_err() {
                return false;
            }
        }
    }
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
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tenancy = tenancy::of(&context.extensions);
        Ok(ListToolsResult::with_all_items(
            self.visible(tenancy.as_ref()),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tenancy = tenancy::of(&context.extensions);
        let record = self.call_for(tenancy, request, context).await;
        convert::result(record).map(CallToolResponse::from)
    }

    /// Sessions that began with `initialize` (protocol versions up to
    /// 2025-11-25) get `tools/list_changed` from the moment they are ready.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.watch_catalog(context.peer, tenancy::of(&context.extensions));
    }

    /// Protocol 2026-07-28 clients ask for `tools/list_changed` with
    /// `subscriptions/listen`; nothing else is offered.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Changes count from here: the acknowledgement goes out next.
        self.listen_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.executor.catalog());
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let tenancy = tenancy::of(&context.request_context().extensions);
        let wanted = context.accepted().tools_list_changed == Some(true);
        // The oldest waiting catalog, which is no newer than this listen's
        // own wherever listens interleave; one entry (the newest) goes, so
        // each listen takes one and the oldest stays for those still to come.
        let since = {
            let mut waiting = self.listen_since.lock().unwrap_or_else(|e| e.into_inner());
            let oldest = waiting.first().cloned();
            waiting.pop();
            oldest.unwrap_or_else(|| self.executor.catalog())
        };
        // A listen holds its connection for as long as it lasts: a tenant's
        // are counted under its stream cap.
        let _place = match tenancy::streams_of(&context.request_context().extensions) {
            Some(streams) => Some(
                streams
                    .open()
                    .map_err(|message| ErrorData::invalid_request(message, None))?,
            ),
            None => None,
        };
        let mut watch = ListingWatch::since(
            self.executor.clone(),
            self.listings.clone(),
            tenancy,
            &since,
        );
        drop(since);
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = watch.changed(), if wanted => {
                    if !changed {
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

#[cfg(test)]
pub(crate) mod tests {
    use futures::FutureExt;
    use rmcp::model::JsonObject;
    use toolhost_runtime::{Engine, EngineConfig, LoadOptions};

    use super::*;

    /// An executor over an empty catalog.
    async fn empty_executor() -> Arc<Executor> {
        empty_executor_with(toolhost_runtime::ExecConfig::default()).await
    }

    /// An executor over an empty catalog, configured with `config`.
    pub(crate) async fn empty_executor_with(config: toolhost_runtime::ExecConfig) -> Arc<Executor> {
        let mut engine = EngineConfig::default();
        engine.max_instances = 2;
        engine.pooling = false;
        let engine = Engine::new(engine).unwrap();
        let mut options = LoadOptions::default();
        options.cache_dir = None;
        let catalog = Catalog::load_files(&engine, &[], &options, &|_| {})
            .await
            .unwrap();
        Arc::new(Executor::with_config(Arc::new(catalog), config))
    }

    #[tokio::test]
    async fn a_watch_from_an_older_listing_reports_the_change_without_waiting_for_a_swap() {
        // A listen whose subscription was acknowledged before a swap it has
        // not seen: its watch begins from the listing of then, and the swap
        // that happened before the watch was made is still news.
        let executor = empty_executor().await;
        let listings = Arc::new(Listings::default());
        let mut current = ListingWatch::new(executor.clone(), listings.clone(), None);
        assert_eq!(current.changed().now_or_never(), None, "nothing changed");
        let mut behind = ListingWatch::new(executor, listings, None);
        behind.seen = Seen {
            all: Arc::from(vec![Tool::new(
                "gone",
                "a tool of an older catalog",
                Arc::new(JsonObject::new()),
            )]),
            visible: vec![0],
        };
        assert_eq!(behind.changed().now_or_never(), Some(true));
        assert!(
            behind.seen.tools().next().is_none(),
            "it now holds the listing it reported"
        );
        assert_eq!(behind.changed().now_or_never(), None, "reported once");
    }
}
