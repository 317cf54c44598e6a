//! `/mcp` behind the tenants: every request is authenticated, and a tenant
//! key's session sees only that tenant's tools and spends its quotas.

use std::any::Any;
use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::State;
use super::routes::{admit, check_tool};
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
                options.ceiling = admission.ceiling;
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
        if let Some(fuel) = record.fuel_used {
            self.tenant.charge(fuel);
        }
        self.state.metrics.record(&self.tenant.tenant.name, record);
    }
}

/// Lets a request to `/mcp` through as its tenant, or as an admin (every
/// tool, no quotas) for an admin key that is no tenant's; anything else is 401.
pub(super) async fn authenticate(
    Extract(state): Extract<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Response {
    match state.tenants.authenticate(request.headers()) {
        Ok(tenant) => {
            let tenancy = SessionTenant {
                state: state.clone(),
                tenant,
            };
            request
                .extensions_mut()
                .insert(McpTenancy(Arc::new(tenancy)));
        }
        Err(refusal) if !state.tenants.is_admin(request.headers()) => {
            return refusal.into_response();
        }
        Err(_) => {}
    }
    next.run(request).await
}
