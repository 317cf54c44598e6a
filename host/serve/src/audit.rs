//! Authentication failures into the executor's audit log: every answer 401
//! (no key, or a key that is no tenant's or admin's), with the method and
//! path, never the key.
//!
//! Anyone who can reach the server can fail to authenticate, as often as
//! they like, and the log keeps a bounded size (it rotates to one older
//! file). So what a failure may write is bounded too: the method (which
//! may be any token the client makes up, of any length hyper reads) is cut
//! to [`METHOD_BYTES`] and the path to [`PATH_BYTES`], and a burst of
//! [`BURST`] failures is written, then one more per [`REFILL`]; the rest
//! are counted, and the next line written says how many were left out
//! (`left_out`). Without that, a client without a key could rotate every
//! earlier event (capability use, refusals, kills) out of the log: in a few
//! seconds with no bound, in under an hour at 20 lines a second; now a
//! steady flood writes about 150 KB an hour: days for the 16 MiB default.

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

/// Authentication failures written at once, at most: the start of a burst
/// is in the log line by line.
const BURST: u32 = 20;

/// After a burst, one more failure is written per this long.
const REFILL: Duration = Duration::from_secs(10);

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

/// Which authentication failures are written: a bucket of [`BURST`] lines
/// that refills one line per [`REFILL`], counting the failures left out.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    bucket: Mutex<Bucket>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Lines of the burst spent and not yet given back.
    spent: u32,
    /// Since when the next line given back is counted.
    refilled: Option<Instant>,
    left_out: u64,
}

impl AuthFailures {
    /// `Some(n)` when the failure at `now` is written, `n` being how many
    /// were left out since the last one written; `None` when it is left out.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(refilled) = bucket.refilled
            && bucket.spent > 0
        {
            let due = now.saturating_duration_since(refilled).as_secs() / REFILL.as_secs();
            let back = u32::try_from(due).unwrap_or(u32::MAX).min(bucket.spent);
            bucket.spent -= back;
            bucket.refilled = Some(refilled + REFILL * back);
        }
        if bucket.spent >= BURST {
            bucket.left_out += 1;
            return None;
        }
        if bucket.spent == 0 {
            // A full bucket starts counting when its first line is spent.
            bucket.refilled = Some(now);
        }
        bucket.spent += 1;
        Some(std::mem::take(&mut bucket.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_rate_are_counted_on_the_next_line_written() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        let written: Vec<Option<u64>> = (0..BURST + 5).map(|_| failures.admit(start)).collect();
        assert!(written[..BURST as usize].iter().all(|w| *w == Some(0)));
        assert!(written[BURST as usize..].iter().all(Option::is_none));
        assert_eq!(failures.admit(start + Duration::from_secs(1)), None);
        assert_eq!(failures.admit(start + REFILL), Some(6));
        assert_eq!(failures.admit(start + REFILL), None, "one line per refill");
        // A quiet spell refills the whole burst, and no more.
        let later = start + REFILL * 100;
        let burst = (0..BURST + 1)
            .filter(|_| failures.admit(later).is_some())
            .count();
        assert_eq!(burst, BURST as usize);
    }

    #[test]
    fn a_steady_flood_writes_a_few_lines_an_hour_and_counts_the_rest() {
        // 20 failures a second for an hour, as a client without a key can
        // keep up for as long as it likes.
        let failures = AuthFailures::default();
        let start = Instant::now();
        let (mut lines, mut counted) = (0u64, 0u64);
        for tick in 0..20 * 3600 {
            let now = start + Duration::from_millis(50 * tick);
            if let Some(left_out) = failures.admit(now) {
                lines += 1;
                counted += 1 + left_out;
            }
        }
        // Before, every one was written: 72,000 lines of up to about 400
        // bytes, which rotate a 16 MiB log in about 40 minutes.
        assert!(lines <= 400, "{lines} lines in an hour");
        let last = failures.admit(start + Duration::from_secs(7200));
        assert_eq!(
            counted + last.unwrap_or(0),
            20 * 3600,
            "every failure counted"
        );
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
