//! The endpoint shared by tenants ([`tenant_service`](crate::tenant_service)):
//! every request carries its tenant's [`Caller`] (the layer in front
//! authenticated it), a session sees only that tenant's tools and spends its
//! quotas, and sessions are bounded: opening one takes a call from the
//! tenant's rate, a tenant holds at most `per_tenant` (then 429) and the
//! endpoint `total` (then 503), and each ends after `idle` without a
//! message. Who owns a session is forgotten as it ends, however it ends
//! (DELETE, expiry, transport, shutdown).
//!
//! Streams that stay open until the client goes (a session's `GET` stream,
//! a `subscriptions/listen`) hold a connection busy for as long as they
//! last, and a busy connection is never shed to make room for another
//! client. They are bounded by the same two caps, counted apart from the
//! sessions: without that, one tenant could hold every connection the
//! server has with streams it only reads.

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
    sessions: Counts,
    streams: Counts,
}

/// How many of one kind of thing each tenant holds, and all together.
#[derive(Debug, Default)]
struct Counts {
    held: HashMap<String, usize>,
    total: usize,
}

impl Counts {
    /// Counts one more for `tenant`, or says which cap is reached.
    fn take(&mut self, tenant: &str, caps: SessionCaps, kind: Kind) -> Result<(), Full> {
        let held = self.held.get(tenant).copied().unwrap_or(0);
        if held >= caps.per_tenant {
            return Err(Full::Tenant {
                tenant: tenant.to_string(),
                held,
                kind,
            });
        }
        if self.total >= caps.total {
            return Err(Full::Server {
                total: self.total,
                kind,
            });
        }
        *self.held.entry(tenant.to_string()).or_default() += 1;
        self.total += 1;
        Ok(())
    }

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

/// What the caps count.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Sessions,
    Streams,
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
            self.sessions.lock().sessions.release(&self.tenant);
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
        self.lock()
            .sessions
            .take(tenant, self.caps, Kind::Sessions)?;
        Ok(Opening {
            sessions: self.clone(),
            tenant: tenant.to_string(),
            taken: AtomicBool::new(false),
        })
    }

    /// Holds a place for one more standing stream of `tenant`, or says
    /// which cap is reached.
    fn open_stream(self: &Arc<Self>, tenant: &str) -> Result<StreamPlace, Full> {
        self.lock().streams.take(tenant, self.caps, Kind::Streams)?;
        Ok(StreamPlace {
            sessions: self.clone(),
            tenant: tenant.to_string(),
        })
    }
}

/// A standing stream's place under the caps, given back when dropped.
#[derive(Debug)]
pub(crate) struct StreamPlace {
    sessions: Arc<Sessions>,
    tenant: String,
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        self.sessions.lock().streams.release(&self.tenant);
    }
}

/// Where a request's handler takes a place for a stream it keeps open
/// (`subscriptions/listen`); put into the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    sessions: Arc<Sessions>,
    tenant: String,
}

impl Streams {
    /// A place for one more standing stream of the request's tenant, or
    /// why there is none.
    pub(crate) fn open(&self) -> Result<StreamPlace, String> {
        self.sessions
            .open_stream(&self.tenant)
            .map_err(|full| full.message())
    }
}

/// A session refused before it opens, each answered with `Retry-After`: 429
/// at the tenant's cap or over its rate, 503 at the server's cap.
#[derive(Debug)]
enum Full {
    Tenant {
        tenant: String,
        held: usize,
        kind: Kind,
    },
    Server {
        total: usize,
        kind: Kind,
    },
    Quota(Refusal),
}

impl Full {
    fn message(&self) -> String {
        match self {
            Full::Tenant {
                tenant,
                held,
                kind: Kind::Sessions,
            } => format!(
                "tenant `{tenant}` already holds {held} MCP sessions, its most \
                 (mcp_max_sessions_per_tenant): end one with DELETE /mcp or let one expire"
            ),
            Full::Tenant {
                tenant,
                held,
                kind: Kind::Streams,
            } => format!(
                "tenant `{tenant}` already holds {held} MCP streams open (GET streams and \
                 subscriptions/listen), its most (mcp_max_sessions_per_tenant): close one first"
            ),
            Full::Server {
                total,
                kind: Kind::Sessions,
            } => format!(
                "the server holds {total} MCP sessions, its most (mcp_max_sessions); \
                 try again later"
            ),
            Full::Server {
                total,
                kind: Kind::Streams,
            } => format!(
                "the server holds {total} MCP streams open, its most (mcp_max_sessions); \
                 try again later"
            ),
            Full::Quota(refusal) => {
                format!("{refusal}; retry after {} s", refusal.retry_after_secs())
            }
        }
    }
}

impl IntoResponse for Full {
    fn into_response(self) -> Response {
        let message = self.message();
        let (status, message, seconds) = match self {
            Full::Tenant { .. } => (StatusCode::TOO_MANY_REQUESTS, message, 1),
            Full::Server { .. } => (StatusCode::SERVICE_UNAVAILABLE, message, 1),
            Full::Quota(refusal) => (
                StatusCode::TOO_MANY_REQUESTS,
                message,
                refusal.retry_after_secs(),
            ),
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
                ledger.sessions.total += 1;
                String::new()
            }
        };
        ledger.owners.insert(id.to_string(), tenant);
    }

    fn closed(&self, id: &str) {
        let mut ledger = self.lock();
        if let Some(tenant) = ledger.owners.remove(id) {
            ledger.sessions.release(&tenant);
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";
const METHOD_HEADER: &str = "mcp-method";

/// Lets a request through as the tenant whose [`Caller`] it carries; one
/// without is refused 401. A session answers only the tenant that opened
/// it: to any other, and for an id that names no live session, it does not
/// exist (404). A request that may open a session (a POST without one
/// that may be an `initialize`) takes a call from the tenant's rate and a
/// place under the session caps first; one that names another method in
/// `Mcp-Method` takes only the rate (a tool call, not even that: the
/// executor takes it); a session's `GET` stream takes a stream place for as long as it
/// is open, and a `subscriptions/listen` takes one in its handler (see
/// [`Streams`]). The calls a POST carries hold their tenant places until
/// its answer has been sent (see [`held`](crate::held)).
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
    mut request: Request,
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
    request.extensions_mut().insert(Streams {
        sessions: sessions.clone(),
        tenant: name.clone(),
    });
    match session {
        Some(session) => {
            // An id no live session has would pass here for any tenant and
            // skip the caps below, and rmcp ignores it on requests that need
            // no session: it is refused as rmcp refuses it where one is needed.
            if sessions.owner(&session).is_none_or(|owner| owner != name) {
                return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
            }
            if request.method() != Method::GET {
                return next.run(request).await;
            }
            let place = match sessions.open_stream(&name) {
                Ok(place) => place,
                Err(full) => return full.into_response(),
            };
            crate::held::keeping(next.run(request).await, place)
        }
        None if request.method() == Method::POST => {
            let method = request
                .headers()
                .get(METHOD_HEADER)
                .and_then(|v| v.to_str().ok());
            // Only `initialize` opens a session, and rmcp refuses a request
            // whose `Mcp-Method` contradicts its body: one that names another
            // method opens none. A tool call takes its rate in the executor.
            if let Some(method) = method
                && method != "initialize"
            {
                if method != "tools/call"
                    && let Err(refusal) = caller.take_rate().await
                {
                    return Full::Quota(refusal).into_response();
                }
                return next.run(request).await;
            }
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
