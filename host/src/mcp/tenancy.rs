//! Who an MCP request over HTTP comes from, as a layer in front of the
//! endpoint decided: `serve` authenticates the request and puts a
//! [`McpTenancy`] into its extensions. A request without one (stdio, or an
//! endpoint mounted without that layer) sees and may call every tool.

use std::any::Any;
use std::sync::Arc;

use rmcp::model::Extensions;

use crate::{CallOptions, CallRecord, Catalog, Outcome};

/// One tenant's view of the catalog and its quotas.
pub(crate) trait Tenancy: Send + Sync {
    /// The tenant's name: a session is bound to it, and calls count under it.
    fn name(&self) -> &str;

    /// True when the tenant may see and call `tool`.
    fn sees(&self, catalog: &Catalog, tool: &str) -> bool;

    /// Takes one call's worth of the tenant's quotas and narrows `options`
    /// to its ceilings. The guard is held until the call ends; a refusal is
    /// the call's outcome.
    fn admit(&self, options: &mut CallOptions) -> Result<Box<dyn Any + Send>, Outcome>;

    /// Accounts for a finished call (fuel spent, metrics).
    fn settle(&self, record: &CallRecord);
}

/// The tenancy of one request, as an HTTP request extension.
#[derive(Clone)]
pub(crate) struct McpTenancy(pub(crate) Arc<dyn Tenancy>);

/// The tenancy the layer in front put into the request's HTTP parts.
pub(super) fn of(extensions: &Extensions) -> Option<Arc<dyn Tenancy>> {
    extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<McpTenancy>()
        .map(|tenancy| tenancy.0.clone())
}
