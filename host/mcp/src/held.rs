//! Answers that keep their calls' tenant places until the connection has
//! taken them.
//!
//! An answer is in host memory from the moment its call ends until the
//! client has read it: megabytes, maybe, for a client that reads a little
//! now and then, never slowly enough to be cut off as stalled. Were the
//! call's place given back when the call ended, a tenant could start call
//! after call on connection after connection and leave every answer
//! waiting, bounded only by the server's connection cap. So each `POST`
//! carries a [`PlaceHold`] in its extensions, a `tools/call` served for it
//! hands its place to the hold when it ends ([`CallOptions::hold_place`]),
//! and the response's body gives the places back when it ends or is
//! dropped: the tenant's unread answers count as its calls in flight.
//!
//! The connection asks a body for more only once its write buffer has room,
//! so the body ends (and the places are given back) when at most that
//! buffer is left to send.
//!
//! [`CallOptions::hold_place`]: toolhost_runtime::CallOptions::hold_place

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use toolhost_runtime::tenancy::PlaceHold;

/// `response` with a body that releases `hold` when it ends or is dropped.
pub(crate) fn until_sent(response: Response, hold: PlaceHold) -> Response {
    keeping(response, Released(hold))
}

/// Releases its hold when dropped.
struct Released(PlaceHold);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// `response` with a body that keeps `guard` until it ends or is dropped:
/// for an answer or a stream that holds a place while it is being sent.
pub(crate) fn keeping<G: Send + Sync + Unpin + 'static>(response: Response, guard: G) -> Response {
    response.map(|inner| {
        Body::new(Keeping {
            inner,
            guard: Some(guard),
        })
    })
}

struct Keeping<G> {
    inner: Body,
    guard: Option<G>,
}

impl<G: Unpin> HttpBody for Keeping<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.guard = None;
        }
        polled
    }

    /// Never known in advance: the connection must ask once more, when its
    /// buffer has room, to learn that the body ended. Told here, it would
    /// drop the body with its last frame, the whole answer still unsent.
    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use toolhost_runtime::tenancy::{Caller, Refusal, Tenant};

    use super::*;

    fn block<T>(work: impl Future<Output = T>) -> T {
        futures::executor::block_on(work)
    }

    /// A tenant with one place, that place kept in a hold, and a body that
    /// releases the hold.
    fn held_answer(text: &'static str) -> (Caller, Body) {
        let mut tenant = Tenant::unlimited("t");
        tenant.concurrency = Some(1);
        let caller = Caller::new(tenant);
        let hold = PlaceHold::new();
        let mut admission = block(caller.admit()).unwrap();
        hold.keep(admission.detach_slot());
        drop(admission);
        let response = until_sent(Response::new(Body::from(text)), hold);
        (caller, response.into_body())
    }

    fn busy(caller: &Caller) -> bool {
        matches!(
            block(caller.admit()),
            Err(Refusal::OverQuota {
                reason: "concurrency",
                ..
            })
        )
    }

    fn poll(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(body).poll_frame(&mut cx)
    }

    #[test]
    fn the_place_is_held_until_the_body_has_ended() {
        let (caller, mut body) = held_answer("an answer");
        assert!(!body.is_end_stream(), "the end is learnt by asking");
        assert_eq!(
            body.size_hint().exact(),
            Some(9),
            "the length is still known"
        );
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(
            busy(&caller),
            "its last frame taken, the body has not ended yet"
        );
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        assert!(!busy(&caller));
    }

    #[test]
    fn the_place_is_given_back_when_the_body_is_dropped() {
        let (caller, body) = held_answer("an answer");
        assert!(busy(&caller));
        drop(body);
        assert!(!busy(&caller));
    }
}
