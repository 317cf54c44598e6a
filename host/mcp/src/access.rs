//! The endpoint shared by tenants ([`tenant_service`](crate::tenant_service)):
//! every request carries its tenant's [`Caller`] (the layer in front
//! authenticated it), a session sees only that tenant's tools and spends its
//! quotas, and sessions are bounded: opening one takes a call from the
//! tenant's rate, a tenant holds at most `per_tenant` (then 429) and the
//! endpoint `total` (then 503), and each ends after `idle` without a
//! message. Who owns a session is forgotten as it ends, however it ends
//! (DELETE, expiry, transport, shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State as Extract};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use toolhost_runtime::tenancy::{Caller, PlaceHold, Refusal};

use crate::sessions::SessionHook;

/// A JSON error body, as the HTTP API writes them: `{"error": {"status": …, "message": …}}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"status": status.as_u16(), "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

/// The caps on live sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionCaps {
    pub(crate) total: usize,
    pub(crate) per_tenant: usize,
}

/// The live MCP sessions: who opened each (a tenant's name), and how many
/// each tenant holds, counting the ones being opened.
#[derive(Debug)]
pub(crate) struct Sessions {
    caps: SessionCaps,
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    owners: HashMap<String, String>,
    held: HashMap<String, usize>,
    total: usize,
}

impl Ledger {
    fn release(&mut self, tenant: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(held) = self.held.get_mut(tenant) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(tenant);
            }
        }
    }
}

/// A session being opened: it holds its place under the caps while its
/// request runs, and becomes the session rmcp creates, or gives the place
/// back when none was.
#[derive(Debug)]
struct Opening {
    sessions: Arc<Sessions>,
    tenant: String,
    taken: AtomicBool,
}

impl Drop for Opening {
    fn drop(&mut self) {
        if !self.taken.load(Ordering::SeqCst) {
            self.sessions.lock().release(&self.tenant);
        }
    }
}

tokio::task_local! {
    /// The place held by the request being served, for the session it opens.
    static OPENING: Arc<Opening>;
}

impl Sessions {
    pub(crate) fn new(caps: SessionCaps) -> Self {
        Self {
            caps,
            ledger: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant that opened `session`, while it lives.
    fn owner(&self, session: &str) -> Option<String> {
        self.lock().owners.get(session).cloned()
    }

    /// Holds a place for one more session of `tenant`, or says which cap is reached.
    fn reserve(self: &Arc<Self>, tenant: &str) -> Result<Opening, Full> {
        let mut ledger = self.lock();
        let held = ledger.held.get(tenant).copied().unwrap_or(0);
        if held >= self.caps.per_tenant {
            return Err(Full::Tenant {
                tenant: tenant.to_string(),
                held,
            });
        }
        if ledger.total >= self.caps.total {
            return Err(Full::Server {
                total: ledger.total,
            });
        }
        *ledger.held.entry(tenant.to_string()).or_default() += 1;
        ledger.total += 1;
        Ok(Opening {
            sessions: self.clone(),
            tenant: tenant.to_string(),
            taken: AtomicBool::new(false),
        })
    }
}

/// A session refused before it opens, each answered with `Retry-After`: 429
/// at the tenant's cap or over its rate, 503 at the server's cap.
#[derive(Debug)]
enum Full {
    Tenant { tenant: String, held: usize },
    Server { total: usize },
    Quota(Refusal),
}

impl IntoResponse for Full {
    fn into_response(self) -> Response {
        let (status, message, seconds) = match self {
            Full::Tenant { tenant, held } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "tenant `{tenant}` already holds {held} MCP sessions, its most \
                     (mcp_max_sessions_per_tenant): end one with DELETE /mcp or let one expire"
                ),
                1,
            ),
            Full::Server { total } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server holds {total} MCP sessions, its most (mcp_max_sessions); \
                     try again later"
                ),
                1,
            ),
            Full::Quota(refusal) => {
                let seconds = refusal.retry_after_secs();
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{refusal}; retry after {seconds} s"),
                    seconds,
                )
            }
        };
        let mut response = error(status, message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

impl SessionHook for Sessions {
    fn opened(&self, id: &str) {
        // rmcp creates a session only while serving a request that holds
        // a place; one created any other way would be counted nowhere, so
        // it is counted under no tenant but in the total.
        let opening = OPENING.try_with(Arc::clone).ok();
        let mut ledger = self.lock();
        let tenant = match opening {
            Some(opening) if !opening.taken.swap(true, Ordering::SeqCst) => opening.tenant.clone(),
            _ => {
                ledger.total += 1;
                String::new()
            }
        };
        ledger.owners.insert(id.to_string(), tenant);
    }

    fn closed(&self, id: &str) {
        let mut ledger = self.lock();
        if let Some(tenant) = ledger.owners.remove(id) {
            ledger.release(&tenant);
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// Lets a request through as the tenant whose [`Caller`] it carries; one
/// without is refused 401. A session answers only the tenant that opened
/// it: to any other, it does not exist (404, as for an unknown session). A
/// request that may open a session (a POST without one) takes a call from
/// the tenant's rate and a place under the session caps first. The calls a
/// POST carries hold their tenant places until its answer has been sent
/// (see [`held`](crate::held)).
pub(crate) async fn admit(
    sessions: Extract<Arc<Sessions>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return route(sessions, request, next).await;
    }
    let hold = PlaceHold::new();
    request.extensions_mut().insert(hold.clone());
    crate::held::until_sent(route(sessions, request, next).await, hold)
}

async fn route(
    Extract(sessions): Extract<Arc<Sessions>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "this MCP endpoint serves tenants: the request carries none",
        );
    };
    let name = caller.name().to_string();
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match session {
        Some(session) => {
            if sessions.owner(&session).is_some_and(|owner| owner != name) {
                return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
            }
            next.run(request).await
        }
        None if request.method() == Method::POST => {
            if let Err(refusal) = caller.take_rate().await {
                return Full::Quota(refusal).into_response();
            }
            let opening = match sessions.reserve(&name) {
                Ok(opening) => Arc::new(opening),
                Err(full) => return full.into_response(),
            };
            OPENING.scope(opening, next.run(request)).await
        }
        None => next.run(request).await,
    }
}
