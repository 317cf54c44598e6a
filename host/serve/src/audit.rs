//! Authentication failures into the executor's audit log: every answer 401
//! (no key, or a key that is no tenant's or admin's), with the method and
//! path, never the key.
//!
//! Anyone who can reach the server can fail to authenticate, as often as
//! they like, and the log keeps a bounded size (it rotates to one older
//! file). So what a failure may write is bounded too: the method (which
//! may be any token the client makes up, of any length hyper reads) is cut
//! to [`METHOD_BYTES`] and the path to [`PATH_BYTES`], and at most
//! [`PER_SECOND`] failures a second are
//! written; the rest are counted, and the next line written says how many
//! were left out (`left_out`). Without that, a client without a key could
//! rotate every earlier event (capability use, refusals, kills) out of the
//! log in a few seconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State as Extract};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use toolhost_runtime::AuditEvent;

use crate::State;

/// Bytes of a request's path an audit line keeps.
const PATH_BYTES: usize = 256;

/// Bytes of a request's method an audit line keeps (the longest standard
/// method, `OPTIONS`, is 7).
const METHOD_BYTES: usize = 16;

/// Authentication failures written to the audit log per second, at most.
const PER_SECOND: u32 = 20;

pub(super) async fn auth_failures(
    Extract(state): Extract<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(audit) = state.executor.audit().cloned() else {
        return next.run(request).await;
    };
    let (method, path) = (
        cut(request.method().as_str(), METHOD_BYTES),
        cut(request.uri().path(), PATH_BYTES),
    );
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(left_out) = state.auth_failures.admit(Instant::now())
    {
        let mut event = AuditEvent::new("auth-failure")
            .with("method", method)
            .with("path", path)
            .with("reason", "no API key, or a key that is no tenant's");
        if left_out > 0 {
            event = event.with("left_out", left_out);
        }
        audit.record(&event);
    }
    response
}

/// `text` cut to at most `max` bytes at a character boundary, `…` after.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}…", &text[..text.floor_char_boundary(max)])
}

/// Which authentication failures are written: [`PER_SECOND`] in each
/// second, counting the others.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    written: u32,
    left_out: u64,
}

impl AuthFailures {
    /// `Some(n)` when the failure at `now` is written, `n` being how many
    /// were left out since the last one written; `None` when it is left out.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window
            .started
            .is_none_or(|started| now.duration_since(started) >= Duration::from_secs(1))
        {
            window.started = Some(now);
            window.written = 0;
        }
        if window.written >= PER_SECOND {
            window.left_out += 1;
            return None;
        }
        window.written += 1;
        Some(std::mem::take(&mut window.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_rate_are_counted_on_the_next_line_written() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        let written: Vec<Option<u64>> =
            (0..PER_SECOND + 5).map(|_| failures.admit(start)).collect();
        assert!(written[..PER_SECOND as usize].iter().all(|w| *w == Some(0)));
        assert!(written[PER_SECOND as usize..].iter().all(Option::is_none));
        assert_eq!(failures.admit(start + Duration::from_secs(1)), Some(5));
        assert_eq!(failures.admit(start + Duration::from_secs(1)), Some(0));
    }

    #[test]
    fn a_path_is_cut_at_a_char_boundary() {
        assert_eq!(cut("/v1/tools", PATH_BYTES), "/v1/tools");
        let long = "é".repeat(PATH_BYTES);
        assert_eq!(
            cut(&long, PATH_BYTES),
            format!("{}…", "é".repeat(PATH_BYTES / 2))
        );
    }
}
