//! Reading a whole reply body within bounds: a size cap checked while
//! reading (what is past it is never read), a limit on each wait for the
//! next piece and one on the whole read, so a server that sends without
//! end, stops sending or sends a byte at a time cannot hold a request or
//! its memory.

use std::time::Duration;

/// The most of an error reply's body kept for its message.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;

/// A body as far as it was read.
#[derive(Debug)]
pub(crate) struct Body {
    /// The bytes read, at most the cap.
    pub(crate) bytes: Vec<u8>,
    /// How the reading ended.
    pub(crate) end: BodyEnd,
}

/// How reading a body ended.
#[derive(Debug)]
pub(crate) enum BodyEnd {
    /// The body ended.
    Whole,
    /// The body went on past the cap; the rest was not read.
    Cut,
    /// No piece came within the wait.
    Silent,
    /// The body did not end within the time for all of it.
    Late,
    /// The connection failed.
    Broken(reqwest::Error),
}

/// Reads `response`'s body up to `cap` bytes, waiting at most `idle` for
/// each piece and `total` for all of it.
pub(crate) async fn read(
    response: &mut reqwest::Response,
    cap: usize,
    idle: Duration,
    total: Duration,
) -> Body {
    let end_by = crate::deadline_in(total);
    let mut bytes = Vec::new();
    let end = loop {
        let wait = tokio::time::Instant::now()
            .checked_add(idle)
            .unwrap_or(end_by);
        let chunk = match tokio::time::timeout_at(wait.min(end_by), response.chunk()).await {
            Err(_) if wait < end_by => break BodyEnd::Silent,
            Err(_) => break BodyEnd::Late,
            Ok(Err(error)) => break BodyEnd::Broken(error),
            Ok(Ok(None)) => break BodyEnd::Whole,
            Ok(Ok(Some(chunk))) => chunk,
        };
        let room = cap - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            break BodyEnd::Cut;
        }
        bytes.extend_from_slice(&chunk);
    };
    Body { bytes, end }
}
