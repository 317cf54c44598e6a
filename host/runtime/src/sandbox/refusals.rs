//! The log of a call's refused outbound requests: the first few logged one
//! by one, later ones only counted, and the count logged once, when the
//! call is over. A guest that sends refused requests in a loop costs the log
//! a few lines, not one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many refusals of one call are logged one by one.
const LOGGED_REFUSALS: u32 = 5;

/// Names a call in logs, and counts its refusals.
#[derive(Debug, Clone)]
pub(crate) struct Who(Arc<Refusals>);

#[derive(Debug)]
struct Refusals {
    tool: Arc<str>,
    call_id: String,
    count: AtomicU32,
}

impl Who {
    pub(crate) fn new(tool: Arc<str>, call_id: String) -> Self {
        Self(Arc::new(Refusals {
            tool,
            call_id,
            count: AtomicU32::new(0),
        }))
    }

    pub(crate) fn refused(&self, target: &str, reason: &str) {
        let Self(who) = self;
        let count = who.count.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if count <= LOGGED_REFUSALS {
            tracing::warn!(
                tool = %who.tool,
                call_id = %who.call_id,
                target,
                reason,
                "outbound HTTP request denied"
            );
        }
        if count == LOGGED_REFUSALS {
            tracing::warn!(
                tool = %who.tool,
                call_id = %who.call_id,
                "further denied requests of this call are counted, not logged"
            );
        }
    }
}

impl Drop for Refusals {
    fn drop(&mut self) {
        let count = *self.count.get_mut();
        if count > LOGGED_REFUSALS {
            tracing::warn!(
                tool = %self.tool,
                call_id = %self.call_id,
                denied = count,
                "outbound HTTP requests denied during the call: {count} in all"
            );
        }
    }
}
