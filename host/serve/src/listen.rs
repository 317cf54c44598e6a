//! The HTTP/1.1 server loop: hyper with a timer, so that a connection that
//! sends nothing, sends its headers a byte at a time, or idles between
//! requests is dropped after the header timeout (`axum::serve` has no
//! such timeout); a cap on open connections that sheds an idle one, of
//! the address holding the most, to make room; graceful shutdown like
//! `axum::serve`'s.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;
use futures::future::BoxFuture;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tower::ServiceExt;

use super::Server;
use super::metrics::Connections;
use super::stalled::SendBound;

impl Server {
    /// The connections [`Server::serve`] holds open at once: the
    /// configuration's `max_connections`, but never more than three quarters
    /// of the open-file limit now in force (see [`raise_open_files_limit`]).
    pub fn max_connections(&self) -> usize {
        connection_cap(self.state.settings.max_connections, open_files_limit())
    }

    /// Serves `app` (from [`Server::router`] or [`Server::router_with_mcp`])
    /// on `listener` until `shutdown` completes, then stops accepting, asks
    /// every open connection to finish its request in flight, and returns
    /// once all have closed. Each connection must send a request's head
    /// within the configuration's `header_timeout_ms` (from when it opens,
    /// or from its previous answer), or it is closed.
    ///
    /// At most `max_connections` are open at once (never more than three
    /// quarters of the open-file limit, see [`raise_open_files_limit`]).
    /// At the cap, a connection that arrives makes room: a connection
    /// without a request in flight is closed, the one that has waited
    /// longest among those of the address that holds the most connections,
    /// so that a flood from one address pays with its own. Nothing is
    /// closed ahead of a connection arriving, nor is the one taken last
    /// (its request may still be on its way), nor one before the
    /// connections accepted with it have had a turn to read what came.
    /// While no connection can be closed, the one that arrived waits, not
    /// yet served, and the others in the listen queue.
    ///
    /// # Errors
    ///
    /// None today: a failed `accept` (such as too many open files) is
    /// logged and retried; the result leaves room for fatal ones.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.state.settings.header_timeout);
        let cap = self.max_connections();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let metrics = self.state.metrics.connections.clone();
        metrics.max.set(i64::try_from(cap).unwrap_or(i64::MAX));
        let mut open = Open::new(metrics);
        let mut shutdown = std::pin::pin!(shutdown);
        'serving: loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Room is made for a connection that came, not ahead of one (and
            // never by closing the one taken last, whose request may still be
            // on its way). It waits here, not yet served, as it would in the
            // listen queue.
            while open.len() >= cap {
                // One shed at a time, and counted until its task has ended
                // and closed its socket: the cap is on open files.
                if !open.shedding() {
                    // Connections accepted in a burst have not had a turn
                    // yet: a request that arrived with one is still unread,
                    // and the connection would look idle. One turn of the
                    // scheduler (past the I/O driver) lets them read it.
                    tokio::task::yield_now().await;
                    open.reap();
                    if open.len() < cap {
                        break;
                    }
                    if open.shed_idle() {
                        continue;
                    }
                }
                // A shed connection closing, or every connection with a
                // request in flight: wait for one to end, or to finish its
                // request and become idle.
                tokio::select! {
                    Some(ended) = open.tasks.join_next() => open.ended(ended),
                    () = tokio::time::sleep(IDLE_RECHECK) => {}
                    () = &mut shutdown => break 'serving,
                }
            }
            let _ = stream.set_nodelay(true);
            let busy = Arc::new(AtomicUsize::new(0));
            let service = Tracked {
                app: app.clone(),
                busy: busy.clone(),
            };
            let stream = SendBound::new(stream, self.state.settings.send_timeout);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut stopping = stopping.clone();
            let id = open.next_id();
            let abort = open.tasks.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return id,
                    _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
                id
            });
            open.insert(
                id,
                Connection {
                    abort,
                    busy,
                    peer: peer.ip(),
                },
            );
            open.reap();
            open.count();
        }
        drop(listener);
        let _ = stop.send(true);
        while let Some(ended) = open.tasks.join_next().await {
            open.ended(ended);
        }
        Ok(())
    }
}

/// How often a server at its connection cap with no idle connection looks
/// again for one that finished its request.
const IDLE_RECHECK: Duration = Duration::from_millis(20);

/// The open-file limit in force, `None` when unlimited.
fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the process's soft open-file limit to its hard limit (as Go's
/// runtime does; many systems start processes at a soft 1,024), and
/// returns the limit now in force, `None` when unlimited. A server binary
/// calls it once at start; [`Server::serve`] caps its connections by it.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let mut raised = limit;
        raised.current = limit.maximum;
        if setrlimit(Resource::Nofile, raised).is_err() {
            return limit.current;
        }
    }
    open_files_limit()
}

/// The connections a server may hold open: the configured cap, but never
/// more than three quarters of `open_files` (the rest is the host's own:
/// components, caches, outbound HTTP, Redis), and at least one.
fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let room = open_files.map_or(usize::MAX, |n| {
        usize::try_from(n / 4 * 3).unwrap_or(usize::MAX)
    });
    configured.min(room).max(1)
}

/// The open connections, oldest first, and their tasks.
struct Open {
    live: BTreeMap<u64, Connection>,
    /// Open connections by peer address.
    per_address: HashMap<IpAddr, usize>,
    tasks: JoinSet<u64>,
    next: u64,
    warned: Option<Instant>,
    metrics: Connections,
}

struct Connection {
    abort: AbortHandle,
    peer: IpAddr,
    /// Requests in flight on it, answers still being written included.
    busy: Arc<AtomicUsize>,
}

impl Open {
    fn new(metrics: Connections) -> Self {
        Self {
            live: BTreeMap::new(),
            per_address: HashMap::new(),
            tasks: JoinSet::new(),
            next: 0,
            warned: None,
            metrics,
        }
    }

    /// Sets the gauge of open connections.
    fn count(&self) {
        self.metrics
            .open
            .set(i64::try_from(self.len()).unwrap_or(i64::MAX));
    }
    /// Connections whose task has not ended: shed ones still closing too.
    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether a shed connection's task has yet to end.
    fn shedding(&self) -> bool {
        self.tasks.len() > self.live.len()
    }

    fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn insert(&mut self, id: u64, connection: Connection) {
        *self.per_address.entry(connection.peer).or_default() += 1;
        self.live.insert(id, connection);
    }

    fn remove(&mut self, id: u64) -> Option<Connection> {
        let connection = self.live.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&connection.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&connection.peer);
            }
        }
        Some(connection)
    }

    /// Closes a connection without a request in flight: the oldest of the
    /// address holding the most connections, or else the oldest of all;
    /// false when every connection has a request in flight. The connection
    /// taken last is never closed: its request may still be on its way.
    fn shed_idle(&mut self) -> bool {
        let newest = self.live.keys().next_back().copied();
        let idle =
            |id: &u64, c: &Connection| Some(*id) != newest && c.busy.load(Ordering::Acquire) == 0;
        let crowded = self
            .per_address
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(peer, _)| *peer);
        let pick = crowded
            .and_then(|peer| {
                self.live
                    .iter()
                    .find(|(id, c)| c.peer == peer && idle(id, c))
            })
            .or_else(|| self.live.iter().find(|(id, c)| idle(id, c)))
            .map(|(id, _)| *id);
        let Some(id) = pick else {
            return false;
        };
        if let Some(connection) = self.remove(id) {
            connection.abort.abort();
        }
        self.metrics.shed.inc();
        if self
            .warned
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
        {
            self.warned = Some(Instant::now());
            tracing::warn!(
                open = self.len(),
                "at the connection cap: closing an idle connection of the address holding \
                 the most to make room (max_connections; logged at most every 10 s)"
            );
        }
        true
    }

    /// Forgets a connection whose task ended (one that was shed is gone
    /// already).
    fn ended(&mut self, ended: Result<u64, JoinError>) {
        if let Ok(id) = ended {
            self.remove(id);
        }
        self.count();
    }

    /// Forgets every connection that has ended since last time.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next() {
            self.ended(ended);
        }
    }
}

/// The app, counting a connection's requests in flight from when their
/// head is read until their answer's body has been written.
#[derive(Clone)]
struct Tracked {
    app: Router,
    busy: Arc<AtomicUsize>,
}

impl tower::Service<http::Request<hyper::body::Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let busy = Busy::enter(&self.busy);
        let answer = self.app.clone().oneshot(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Body::new(HeldBody { body, _busy: busy })))
        })
    }
}

/// One request in flight on a connection, until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request counted until hyper has written
/// it and dropped it.
struct HeldBody {
    body: Body,
    _busy: Busy,
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::connection_cap;

    #[test]
    fn the_cap_leaves_a_quarter_of_the_open_files_to_the_host() {
        assert_eq!(connection_cap(10_000, Some(1024)), 768);
        assert_eq!(connection_cap(10_000, Some(1 << 20)), 10_000);
        assert_eq!(connection_cap(500, Some(1024)), 500);
        assert_eq!(connection_cap(10_000, None), 10_000);
        assert_eq!(connection_cap(10_000, Some(1)), 1);
    }
}
