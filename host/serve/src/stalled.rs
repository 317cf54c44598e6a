//! A bound on how long a connection may refuse what the server sends.
//!
//! An answer the client does not read stays in the server's buffers until
//! it is written: a client that asks for large answers and never reads them
//! would hold that memory for as long as it keeps its connections open. The
//! header timeout does not help (the server has not finished its answer,
//! so it is not waiting for the next request). So a connection that takes
//! none of what the server writes for the bound is closed, as one that went
//! away would be.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `stream`, whose writes fail with [`io::ErrorKind::TimedOut`] once one has
/// waited `bound` without the peer taking a byte.
pub(crate) struct SendBound<S> {
    stream: S,
    bound: Duration,
    /// Armed while a write waits: when the wait began plus `bound`.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> SendBound<S> {
    pub(crate) fn new(stream: S, bound: Duration) -> Self {
        Self {
            stream,
            bound,
            stalled: None,
        }
    }

    /// What a write (or flush) gave: progress disarms the timer; a wait
    /// arms it, and past the bound turns into an error.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let bound = self.bound;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + bound)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took nothing the server sent for {} ms",
                    bound.as_millis()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendBound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendBound<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_bound() {
        // A pipe whose other end nobody reads: 64 bytes of room.
        let (near, _far) = tokio::io::duplex(64);
        let mut bounded = SendBound::new(near, Duration::from_millis(50));
        bounded.write_all(&[0; 64]).await.unwrap();
        let error = bounded.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_taking_is_not_cut() {
        let (near, mut far) = tokio::io::duplex(64);
        // A bound far above the reader's pauses.
        let mut bounded = SendBound::new(near, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let (mut buffer, mut total) = ([0u8; 64], 0);
            while total < 640 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                total += far.read(&mut buffer).await.unwrap();
            }
            total
        });
        // Ten times the room, taken a part at a time.
        bounded.write_all(&[0; 640]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 640);
    }
}
