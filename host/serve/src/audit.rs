//! Authentication failures into the executor's audit log: every answer 401
//! (no key, or a key that is no tenant's or admin's), with the method and
//! path, never the key.

use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use toolhost_runtime::AuditEvent;

use crate::State;

pub(super) async fn auth_failures(
    Extract(state): Extract<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(audit) = state.executor.audit().cloned() else {
        return next.run(request).await;
    };
    let (method, path) = (
        request.method().to_string(),
        request.uri().path().to_string(),
    );
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        audit.record(
            &AuditEvent::new("auth-failure")
                .with("method", method)
                .with("path", path)
                .with("reason", "no API key, or a key that is no tenant's"),
        );
    }
    response
}
