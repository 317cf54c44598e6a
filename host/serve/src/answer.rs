//! Answers that keep their calls' places until the client has taken them.
//!
//! A call's answer is in host memory from the moment the call ends until
//! the client has read it: outputs of megabytes, waiting on a client that
//! reads a little now and then, fast enough never to be cut off as stalled.
//! Were a call's tenant place given back when the call ended, a tenant
//! could start call after call on connection after connection and leave
//! every answer waiting, with nothing but the connection cap to bound the
//! memory held. So an answer holds the places of the calls in it (see
//! [`DetachedSlot`]) until it has been handed to the connection whole: the
//! tenant's unread answers count as calls in flight, its next calls are
//! refused over its `concurrency`, and no other tenant pays for them. The
//! places carry what each answer keeps of its call's memory reservation, so
//! the answers all tenants leave waiting count against the host's memory
//! budget too.
//!
//! The answer is handed on in chunks, because the connection asks for more
//! only once it has written most of what it was given; so the places are
//! given back when at most one chunk and the connection's own write buffer
//! are left to send, or at once if the connection goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde::Serialize;
use toolhost_runtime::tenancy::DetachedSlot;

/// How much of an answer is handed to the connection at a time.
const CHUNK: usize = 64 << 10;

/// `value` as a JSON answer with `status` that holds `slots` until it has
/// been handed to the connection whole (or the connection is gone).
pub(crate) fn held_json(
    status: StatusCode,
    value: &impl Serialize,
    slots: Vec<DetachedSlot>,
) -> Response {
    let bytes = match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be written as JSON");
            return super::routes::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the answer could not be written as JSON (a bug in toolhost; see the server log)",
            );
        }
    };
    let mut response = Response::new(Body::new(Held { rest: bytes, slots }));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer's bytes not yet handed on, and the places they hold.
struct Held {
    rest: Bytes,
    slots: Vec<DetachedSlot>,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            this.slots.clear();
            return Poll::Ready(None);
        }
        let chunk = this.rest.split_to(this.rest.len().min(CHUNK));
        if this.rest.is_empty() {
            this.slots.clear();
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use toolhost_runtime::tenancy::{Caller, Refusal, Tenant};

    use super::*;

    fn one_place() -> Caller {
        let mut tenant = Tenant::unlimited("t");
        tenant.concurrency = Some(1);
        Caller::new(tenant)
    }

    /// One of `caller`'s places, detached from its admission.
    async fn detached(caller: &Caller) -> DetachedSlot {
        caller.admit().await.unwrap().detach_slot()
    }

    fn refused(caller: &Caller) -> bool {
        matches!(
            futures::executor::block_on(caller.admit()),
            Err(Refusal::OverQuota {
                reason: "concurrency",
                ..
            })
        )
    }

    #[tokio::test]
    async fn the_place_is_held_until_the_last_chunk_is_taken() {
        let caller = one_place();
        let slot = detached(&caller).await;
        let text = "x".repeat(3 * CHUNK);
        let mut body = held_json(StatusCode::OK, &text, vec![slot]).into_body();
        let mut taken = Vec::new();
        while !body.is_end_stream() {
            assert!(refused(&caller), "held while any of the answer is left");
            let frame = body.frame().await.unwrap().unwrap();
            taken.extend_from_slice(&frame.into_data().unwrap());
        }
        assert_eq!(taken, serde_json::to_vec(&text).unwrap());
        assert!(!refused(&caller), "given back once the answer was taken");
    }

    #[tokio::test]
    async fn the_place_is_given_back_when_the_answer_is_dropped() {
        let caller = one_place();
        let slot = detached(&caller).await;
        let mut body = held_json(StatusCode::OK, &"x".repeat(2 * CHUNK), vec![slot]).into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), CHUNK);
        assert!(refused(&caller));
        drop(body);
        assert!(!refused(&caller), "a connection gone gives the place back");
    }

    #[tokio::test]
    async fn the_length_is_known_before_the_first_chunk() {
        let response = held_json(StatusCode::CREATED, &[1, 2, 3], Vec::new());
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.body().size_hint().exact(), Some(7));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"[1,2,3]");
    }
}
