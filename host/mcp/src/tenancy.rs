//! Who an MCP request over HTTP comes from, as the layer in front decided:
//! whoever authenticates the request (`serve`) puts the tenant's [`Caller`]
//! into its HTTP extensions. A request without one (stdio, or
//! [`http_service`](crate::http_service) mounted alone) sees and may call
//! every tool.

use rmcp::model::Extensions;
use toolhost_runtime::tenancy::{Caller, PlaceHold};

/// The caller the layer in front put into the request's HTTP parts.
pub(crate) fn of(extensions: &Extensions) -> Option<Caller> {
    from_parts(extensions)
}

/// Where the request's calls leave their tenant places until its answer has
/// been sent (see [`held`](crate::held)), when the layer in front put one there.
pub(crate) fn hold_of(extensions: &Extensions) -> Option<PlaceHold> {
    from_parts(extensions)
}

/// Where a handler takes a place for a stream it keeps open, when the
/// layer in front counts them (see [`Streams`](crate::access::Streams)).
pub(crate) fn streams_of(extensions: &Extensions) -> Option<crate::access::Streams> {
    from_parts(extensions)
}

fn from_parts<T: Clone + Send + Sync + 'static>(extensions: &Extensions) -> Option<T> {
    extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<T>()
        .cloned()
}
