//! The log of a call's refused outbound requests: the first few logged one
//! by one, later ones only counted, and the count logged once, when the
//! call is over. A guest that sends refused requests in a loop costs the log
//! (and the audit log) a few lines, not one per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::AuditEvent;
use crate::audit::CallAudit;

/// How many refusals of one call are logged one by one.
const LOGGED_REFUSALS: u32 = 5;

/// Names a call in logs, and counts its refusals.
#[derive(Debug, Clone)]
pub(crate) struct Who(Arc<Refusals>);

#[derive(Debug)]
struct Refusals {
    tool: Arc<str>,
    call_id: Arc<str>,
    count: AtomicU32,
    audit: Option<Arc<CallAudit>>,
}

impl Who {
    pub(crate) fn new(tool: Arc<str>, call_id: Arc<str>, audit: Option<Arc<CallAudit>>) -> Self {
        Self(Arc::new(Refusals {
            tool,
            call_id,
            count: AtomicU32::new(0),
            audit,
        }))
    }

    /// A request refused by a limit or rule of the policy (not its
    /// allow-list): audited as `policy-refusal`.
    pub(crate) fn refused(&self, target: &str, reason: &str) {
        self.refusal(target, reason, || {
            AuditEvent::new("policy-refusal").with("capability", "http")
        });
    }

    /// A request to a host the policy's allow-list does not grant:
    /// audited as a denied `capability`.
    pub(crate) fn denied(&self, target: &str, reason: &str) {
        self.refusal(target, reason, || {
            AuditEvent::new("capability")
                .with("capability", "http")
                .with("allowed", false)
        });
    }

    /// A request the allow-list grants.
    pub(crate) fn allowed(&self, target: &str) {
        self.audit(|| {
            AuditEvent::new("capability")
                .with("capability", "http")
                .with("target", target)
                .with("allowed", true)
        });
    }

    /// A secret added to a request: its header and host, never its value.
    pub(crate) fn secret_injected(&self, target: &str, header: &str) {
        self.audit(|| {
            AuditEvent::new("secret-injected")
                .with("target", target)
                .with("header", header)
        });
    }

    fn audit(&self, event: impl FnOnce() -> AuditEvent) {
        if let Some(audit) = &self.0.audit {
            audit.record(event());
        }
    }

    fn refusal(&self, target: &str, reason: &str, event: impl FnOnce() -> AuditEvent) {
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
            self.audit(|| event().with("target", target).with("reason", reason));
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
            if let Some(audit) = &self.audit {
                audit.record(
                    AuditEvent::new("policy-refusal")
                        .with("capability", "http")
                        .with("reason", "outbound requests denied during the call, in all")
                        .with("count", count),
                );
            }
        }
    }
}
