//! The HTTP/1.1 server loop: hyper with a timer, so that a connection that
//! sends nothing, sends its headers a byte at a time, or idles between
//! requests is dropped after the header timeout (`axum::serve` has no
//! such timeout); graceful shutdown like `axum::serve`'s.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::Server;

impl Server {
    /// Serves `app` (from [`Server::router`] or [`Server::router_with_mcp`])
    /// on `listener` until `shutdown` completes, then stops accepting, asks
    /// every open connection to finish its request in flight, and returns
    /// once all have closed. Each connection must send a request's head
    /// within the configuration's `header_timeout_ms` (from when it opens,
    /// or from its previous answer), or it is closed.
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
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
            let mut stopping = stopping.clone();
            connections.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            });
            while connections.try_join_next().is_some() {}
        }
        drop(listener);
        let _ = stop.send(true);
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}
