//! `/mcp` behind the tenants: every request is authenticated, and a tenant
//! key's session sees only that tenant's tools and spends its quotas.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State as Extract};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::State;
use super::routes::{admit, check_tool, settle};
use super::tenants::{Refusal, TenantState};
use crate::mcp::{McpTenancy, Tenancy};
use crate::{CallOptions, CallRecord, Catalog, Outcome};

/// A tenant as an MCP session sees it.
struct SessionTenant {
    state: Arc<State>,
    tenant: Arc<TenantState>,
}

impl Tenancy for SessionTenant {
    fn name(&self) -> &str {
        &self.tenant.tenant.name
    }

    fn sees(&self, catalog: &Catalog, tool: &str) -> bool {
        check_tool(catalog, &self.tenant, tool).is_ok()
    }

    fn admit(&self, options: &mut CallOptions) -> Result<Box<dyn Any + Send>, Outcome> {
        match admit(&self.state, &self.tenant) {
            Ok(admission) => {
                admission.apply(options);
                Ok(Box::new(admission))
            }
            Err(Refusal::OverQuota {
                message,
                retry_after,
                ..
            }) => Err(Outcome::RateLimited {
                message,
                retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            }),
            // `admit` refuses only over quota; anything else is no call.
            Err(other) => Err(Outcome::Cancelled {
                message: format!("refused: {other:?}"),
            }),
        }
    }

    fn settle(&self, record: &CallRecord) {
        settle(&self.state, &self.tenant, record);
    }
}

/// Which key opened each live MCP session: the tenant's name, or `None`
/// for an admin key.
#[derive(Debug, Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Option<String>>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// Lets a request to `/mcp` through as its tenant, or as an admin (every
/// tool, no quotas) for an admin key that is no tenant's; anything else is
/// 401. A session answers only the kind of key that opened it: to any other,
/// it does not exist (404, as for an unknown session).
pub(super) async fn authenticate(
    Extract(state): Extract<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Response {
    let owner = match state.tenants.authenticate(request.headers()) {
        Ok(tenant) => {
            let owner = Some(tenant.tenant.name.clone());
            let tenancy = SessionTenant {
                state: state.clone(),
                tenant,
            };
            request
                .extensions_mut()
                .insert(McpTenancy(Arc::new(tenancy)));
            owner
        }
        Err(refusal) if !state.tenants.is_admin(request.headers()) => {
            return refusal.into_response();
        }
        Err(_) => None,
    };
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(session) = &session
        && state
            .mcp_sessions
            .lock()
            .get(session)
            .is_some_and(|opened_by| *opened_by != owner)
    {
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    }
    let closing = request.method() == Method::DELETE;
    let response = next.run(request).await;
    match session {
        Some(session) if closing && response.status().is_success() => {
            state.mcp_sessions.lock().remove(&session);
        }
        Some(_) => {}
        None => {
            if let Some(opened) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                state.mcp_sessions.lock().insert(opened.to_string(), owner);
            }
        }
    }
    response
}
