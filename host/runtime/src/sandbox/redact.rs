//! Redacting a response body as it streams: every echo of a secret the
//! host added is replaced before the guest sees a byte of it, holding back
//! only the few bytes at a piece's end that could begin one, so a response
//! is never held whole in host memory.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use memchr::memmem::Finder;

/// What the guest sees instead of a secret.
pub(crate) const REDACTED: &[u8] = b"[REDACTED]";

/// Finds every echo of a set of needles (longest first, as
/// [`ResolvedSecret`](crate::policy) orders them) in text that arrives in
/// pieces.
#[derive(Debug)]
pub(crate) struct Redactor {
    finders: Vec<Finder<'static>>,
    /// The longest needle's length less one: the bytes at a piece's end
    /// that may begin an echo the next piece ends.
    hold: usize,
    /// Bytes held back from the last piece.
    carry: Vec<u8>,
}

impl Redactor {
    /// A redactor of `needles`; empty needles are ignored.
    pub(crate) fn new(needles: &[Vec<u8>]) -> Self {
        let finders: Vec<Finder<'static>> = needles
            .iter()
            .filter(|needle| !needle.is_empty())
            .map(|needle| Finder::new(needle).into_owned())
            .collect();
        let hold = finders
            .iter()
            .map(|finder| finder.needle().len())
            .max()
            .unwrap_or(1)
            - 1;
        Self {
            finders,
            hold,
            carry: Vec::new(),
        }
    }

    /// The redacted text of `piece`, as far as it can be told: the bytes
    /// that may begin an echo are held back for the next piece.
    pub(crate) fn piece(&mut self, piece: &[u8]) -> Vec<u8> {
        if self.carry.is_empty() {
            return self.scan(piece, false);
        }
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(piece);
        self.scan(&window, false)
    }

    /// What is held back, redacted, once no piece follows.
    pub(crate) fn end(&mut self) -> Vec<u8> {
        let window = std::mem::take(&mut self.carry);
        self.scan(&window, true)
    }

    /// Redacts `window` up to where an echo could still go on past its end
    /// (all of it `at_end`), and keeps the rest as the carry.
    fn scan(&mut self, window: &[u8], at_end: bool) -> Vec<u8> {
        let boundary = if at_end {
            window.len()
        } else {
            window.len().saturating_sub(self.hold)
        };
        let mut out = Vec::with_capacity(boundary);
        // Each needle's next echo at or after `from`: searched again only
        // once passed, so the scan is linear however many echoes there are.
        let mut next: Vec<Option<usize>> = self
            .finders
            .iter()
            .map(|finder| finder.find(window))
            .collect();
        let mut from = 0;
        loop {
            let mut best: Option<(usize, usize)> = None;
            for (finder, next) in self.finders.iter().zip(&mut next) {
                if next.is_some_and(|at| at < from) {
                    *next = finder.find(&window[from..]).map(|at| from + at);
                }
                // Longest first: an echo wins only by starting earlier.
                if let Some(at) = *next
                    && at < boundary
                    && best.is_none_or(|(start, _)| at < start)
                {
                    best = Some((at, finder.needle().len()));
                }
            }
            let Some((start, len)) = best else { break };
            out.extend_from_slice(&window[from..start]);
            out.extend_from_slice(REDACTED);
            from = start + len;
        }
        let kept = boundary.max(from);
        out.extend_from_slice(&window[from..kept]);
        self.carry = window[kept..].to_vec();
        out
    }
}

/// `text` with every echo of each needle replaced, longest first.
pub(crate) fn redact(text: &[u8], needles: &[Vec<u8>]) -> Vec<u8> {
    let mut redactor = Redactor::new(needles);
    let mut out = redactor.piece(text);
    out.extend(redactor.end());
    out
}

/// A response body with every echo of a secret redacted as it streams.
pub(crate) struct Redacting<B> {
    inner: B,
    redactor: Redactor,
    ended: bool,
}

impl<B> Redacting<B> {
    /// `inner`, redacting `needles`.
    pub(crate) fn new(inner: B, needles: &[Vec<u8>]) -> Self {
        Self {
            inner,
            redactor: Redactor::new(needles),
            ended: false,
        }
    }
}

impl<B> Body for Redacting<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.ended = true;
                    let rest = this.redactor.end();
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                Some(Ok(frame)) => frame,
            };
            // Trailers are not passed on: they could carry the secret, and
            // no guest needs them.
            if let Ok(data) = frame.into_data() {
                let out = this.redactor.piece(&data);
                // A piece shorter than an echo may all be held back.
                if !out.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction changes the length.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needles() -> Vec<Vec<u8>> {
        vec![b"Bearer abc123".to_vec(), b"abc123".to_vec()]
    }

    #[test]
    fn redaction_replaces_every_echo() {
        let out = redact(
            b"{\"auth\":\"Bearer abc123\",\"k\":\"abc123abc123\"}",
            &needles(),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"auth\":\"[REDACTED]\",\"k\":\"[REDACTED][REDACTED]\"}"
        );
        assert_eq!(redact(b"nothing here", &needles()), b"nothing here");
        assert_eq!(redact(b"", &needles()), b"");
        assert_eq!(redact(b"abc12", &needles()), b"abc12");
    }

    /// The same text cut into pieces of every size redacts alike, an echo
    /// split across any number of pieces included.
    #[test]
    fn pieces_of_any_size_redact_as_the_whole() {
        let text = b"xxBearer abc123yy abc123abc12 Bearer abc1Bearer abc123abc123 zabc123";
        let whole = redact(text, &needles());
        assert!(!whole.windows(6).any(|w| w == b"abc123"));
        for size in 1..=text.len() {
            let mut redactor = Redactor::new(&needles());
            let mut out = Vec::new();
            for piece in text.chunks(size) {
                out.extend(redactor.piece(piece));
            }
            out.extend(redactor.end());
            assert_eq!(out, whole, "pieces of {size}");
        }
    }

    /// Many echoes in one piece are found in one pass over it.
    #[test]
    fn a_piece_full_of_echoes_is_redacted_whole() {
        let text = b"abc123".repeat(100_000);
        let out = redact(&text, &needles());
        assert_eq!(out, REDACTED.repeat(100_000));
    }

    #[tokio::test]
    async fn a_streamed_body_is_redacted_across_its_frames() {
        use http_body_util::{BodyExt, StreamBody};
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
            ["a Bear", "er ab", "c1", "23 and abc", "123", " end"]
                .into_iter()
                .map(|piece| Ok(Frame::data(Bytes::from(piece))))
                .collect();
        let body = StreamBody::new(futures::stream::iter(frames));
        let redacted = Redacting::new(body, &needles());
        let text = redacted.collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"a [REDACTED] and [REDACTED] end");
    }
}
