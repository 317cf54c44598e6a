//! A guest's stderr: keeps its first bytes and its last, counts and drops
//! what came between, and never fails a write, so a guest that floods its
//! output cannot make the host hold more than the cap or turn the flood
//! into a trap of its own. The end is kept because that is where a Rust
//! guest writes its panic, after whatever it logged first.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<Buffer>>,
}

#[derive(Debug)]
struct Buffer {
    /// The first bytes, up to half the cap.
    head: Vec<u8>,
    /// The last bytes written once the head was full, up to the other half.
    tail: VecDeque<u8>,
    half: usize,
    /// Bytes in neither.
    dropped: u64,
}

impl Capture {
    /// A capture that keeps at most `cap` bytes: the first half and the last.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Buffer {
                head: Vec::new(),
                tail: VecDeque::new(),
                half: cap / 2,
                dropped: 0,
            })),
        }
    }

    fn push(&self, data: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let buf = &mut *buf;
        let kept = buf.half.saturating_sub(buf.head.len()).min(data.len());
        buf.head.extend_from_slice(&data[..kept]);
        let rest = &data[kept..];
        // Of the rest, only the last `half` bytes can stay.
        let new = &rest[rest.len().saturating_sub(buf.half)..];
        let out = (buf.tail.len() + new.len()).saturating_sub(buf.half);
        buf.tail.drain(..out);
        buf.tail.extend(new);
        buf.dropped += (out + rest.len() - new.len()) as u64;
    }

    /// What was kept, as lossy UTF-8 (the first bytes, then a line saying
    /// how many were dropped, if any, then the last), and how many bytes
    /// were dropped.
    pub(crate) fn text(&self) -> (String, u64) {
        let buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::from_utf8_lossy(&buf.head).into_owned();
        if buf.dropped > 0 {
            text.push_str(&format!("\n[{} bytes dropped]\n", buf.dropped));
        }
        let (front, back) = buf.tail.as_slices();
        text.push_str(&String::from_utf8_lossy(&[front, back].concat()));
        (text, buf.dropped)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_head_and_the_tail_and_counts_the_rest() {
        let capture = Capture::new(8);
        capture.push(b"abc");
        assert_eq!(capture.text(), ("abc".to_string(), 0));
        capture.push(b"defg");
        assert_eq!(capture.text(), ("abcdefg".to_string(), 0));
        capture.push(b"hijklm");
        assert_eq!(
            capture.text(),
            ("abcd\n[5 bytes dropped]\njklm".to_string(), 5)
        );
        // One write longer than the cap keeps only its own end.
        capture.push(b"0123456789");
        assert_eq!(
            capture.text(),
            ("abcd\n[15 bytes dropped]\n6789".to_string(), 15)
        );
    }

    #[test]
    fn holds_no_more_than_the_cap_whatever_is_written() {
        let capture = Capture::new(1024);
        for _ in 0..1000 {
            capture.push(&[b'x'; 777]);
        }
        let buf = capture.inner.lock().unwrap();
        assert_eq!(buf.head.len() + buf.tail.len(), 1024);
        assert_eq!(buf.dropped, 777 * 1000 - 1024);
    }
}
