//! The request handlers.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;

use super::State;
use super::answer::held_json;
use super::dialect::{self, Dialect, Requested};
use super::tenants::Refusal;
use toolhost_runtime::formats::{self, Format};
use toolhost_runtime::tenancy::{Admission, Caller, DetachedSlot, PlaceHold};
use toolhost_runtime::{CallOptions, CallRecord, Catalog, HoldRefused, MemoryHold, Outcome};

type Shared = Extract<Arc<State>>;

/// A JSON error body: `{"error": {"status": …, "message": …}}`.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"status": status.as_u16(), "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized => {
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "a valid API key is required: `Authorization: Bearer KEY` or `x-api-key: KEY`",
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Refusal::Forbidden(message) => error(StatusCode::FORBIDDEN, message),
            Refusal::OverQuota { message, seconds } => {
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{message}; retry after {seconds} s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }
}

/// One span per request; the handler's call spans nest in it.
pub(super) async fn trace_request(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    async move {
        let response = next.run(request).await;
        tracing::Span::current().record("status", response.status().as_u16());
        response
    }
    .instrument(span)
    .await
}

/// Refuses a tool the tenant may not call (403), the same way whether or
/// not it exists (see [`Caller::check`]).
fn check_tool(catalog: &Catalog, tenant: &Caller, name: &str) -> Result<(), Refusal> {
    tenant.check(catalog, name).map_err(Refusal::from)
}

/// Lets a request to a mounted service through as its tenant, whose
/// [`Caller`] it then carries in its extensions (the admin key as the tenant
/// `admin` when the configuration lets it call tools; 403 otherwise);
/// anything else is 401. A `POST`'s body is read here, as the routes' are
/// (bounded, within `body_timeout_ms`), so that the service parses it
/// within the host's memory budget ([`hold_parse`]).
pub(super) async fn authenticate(
    Extract(state): Shared,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match state.tenants.authenticate(request.headers()) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    if request.method() != Method::POST {
        request.extensions_mut().insert(caller);
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let (body, _parsing) = match read_to_parse(&state, &caller, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    parts.extensions.insert(caller);
    // The service has parsed the body by the time it answers (a stream's
    // head included); the hold ends then.
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// [`read_body`], then [`Executor::hold_parse`] for `tenant`: the body, and
/// the hold to keep while it is parsed.
///
/// [`Executor::hold_parse`]: toolhost_runtime::Executor::hold_parse
async fn read_to_parse(
    state: &State,
    tenant: &Caller,
    body: Body,
) -> Result<(Bytes, Option<MemoryHold>), Response> {
    let body = read_body(state, tenant, body).await?;
    match state.executor.hold_parse(tenant.name(), &body) {
        Ok(hold) => Ok((body, hold)),
        Err(refused) => Err(not_parsed(body.len(), &refused)),
    }
}

/// The answer to a body `Executor::hold_parse` refused: 413 when the whole budget
/// could not hold its parse, 503 while the calls in flight hold the budget.
fn not_parsed(len: usize, refused: &HoldRefused) -> Response {
    let message = format!("the body ({len} bytes) was not parsed: {refused}");
    if let HoldRefused::TooLarge { .. } = refused {
        return error(StatusCode::PAYLOAD_TOO_LARGE, message);
    }
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(1));
    response
}

/// Reads a request's body, once its key was checked: at most
/// `max_body_kb` (413 past it), within `body_timeout_ms` (408 past it).
/// A tenant waits for no more bodies at once than it may have calls in
/// flight (429 past it; see [`Tenants::start_reading`]).
///
/// [`Tenants::start_reading`]: super::tenants::Tenants::start_reading
///
/// A small body usually arrives with its head, so the first read takes it
/// whole: the timer is armed only for a body that has to be waited for.
async fn read_body(state: &State, tenant: &Caller, body: Body) -> Result<Bytes, Response> {
    let settings = &state.settings;
    let limited = http_body_util::Limited::new(body, settings.max_body_bytes);
    let mut collect = pin!(limited.collect());
    let collected = match (&mut collect).now_or_never() {
        Some(collected) => Ok(collected),
        None => {
            let _waiting = state
                .tenants
                .start_reading(tenant)
                .map_err(IntoResponse::into_response)?;
            tokio::time::timeout(settings.body_timeout, collect).await
        }
    };
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over the limit of {} KiB (max_body_kb)",
                settings.max_body_bytes >> 10
            ),
        )),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {e}"),
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} ms (body_timeout_ms)",
                settings.body_timeout.as_millis()
            ),
        )),
    }
}

/// A call's task's result: the call, its record, and its tenant place,
/// which its answer holds until the client has it (see [`held_json`]).
type Ran = (Requested, CallRecord, DetachedSlot);

/// Runs one call on a task of its own, so that it ends by its own budget and
/// is settled (charged and counted) however the request ends: the call
/// runs whether or not the client reads, and a client that goes away drops
/// the request's [`DropGuard`], whose token ends the call as `cancelled`.
/// The tenant's place is held by the task until the call has ended, then
/// handed on with the record.
fn spawn_run(
    state: &Arc<State>,
    mut admission: Admission,
    call: Requested,
    catalog: Arc<Catalog>,
    cancel: CancellationToken,
) -> JoinHandle<Ran> {
    let state = state.clone();
    // Boxed: the call's future is kilobytes, and a task keeps its future in
    // place, so spawning, finishing and joining would each copy all of it.
    tokio::spawn(Box::pin(async move {
        let mut slot = admission.detach_slot();
        let hold = PlaceHold::new();
        let record = run(
            &state,
            admission,
            &call.name,
            &call.arguments,
            catalog,
            cancel,
            &hold,
        )
        .await;
        slot.keep_from(&hold);
        (call, record, slot)
    }))
}

/// A call task that ended without a record: a bug in the host, logged.
#[derive(Debug)]
struct LostCall;

impl IntoResponse for LostCall {
    fn into_response(self) -> Response {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the call ended without an outcome (a bug in toolhost; see the server log)",
        )
    }
}

/// What a call task gave back; a task cannot fail short of a bug in the
/// host, which is reported as such rather than lost.
fn joined(joined: Result<Ran, tokio::task::JoinError>) -> Result<Ran, LostCall> {
    joined.map_err(|error| {
        tracing::error!(%error, "a call task ended without a record");
        LostCall
    })
}

/// Runs one admitted call under its tenant's span. The executor checks the
/// tool on the snapshot `catalog` (the one the 403 check read), narrows the
/// call to the tenant's ceilings and reports it to the metrics.
async fn run(
    state: &State,
    admission: Admission,
    name: &str,
    input: &str,
    catalog: Arc<Catalog>,
    cancel: CancellationToken,
    hold: &PlaceHold,
) -> CallRecord {
    let span = tracing::info_span!(
        "call",
        tool = name,
        tenant = %admission.caller().name(),
        call_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        fuel = tracing::field::Empty,
    );
    // The answer keeps its part of the call's memory reservation until it
    // has been handed to the connection, as it keeps the tenant's place.
    let options = CallOptions::default()
        .cancel(cancel)
        .on_catalog(catalog)
        .hold_place(hold.clone());
    let record = state
        .executor
        .call_admitted(admission, name, input, options)
        .instrument(span.clone())
        .await;
    span.record("call_id", record.call_id.as_str());
    span.record("outcome", record.outcome.kind());
    if let Some(fuel) = record.fuel_used {
        span.record("fuel", fuel);
    }
    record
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    format: Option<String>,
}

pub(super) async fn list_tools(
    Extract(state): Shared,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let tenant = match state.tenants.reader(&headers) {
        Ok(tenant) => tenant,
        Err(refusal) => return refusal.into_response(),
    };
    let format: Format = match query.format.as_deref().unwrap_or("json").parse() {
        Ok(format) => format,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let catalog = state.executor.catalog();
    let visible = |name: &str| check_tool(&catalog, &tenant, name).is_ok();
    let tools = formats::tools(catalog.tools().filter(|info| visible(&info.name)), format);
    // A component shows when the tenant may call one of its tools, or (failed,
    // with none) when its list would allow the component's own name.
    // Why a component failed is for the operator (the log) and the admin.
    let detail = state.tenants.is_admin(&headers);
    let components: Vec<_> = catalog
        .status()
        .into_iter()
        .filter(|status| {
            status.tools.iter().any(|name| visible(name))
                || (status.tools.is_empty() && tenant.tenant().tools.allows(&status.component))
        })
        .map(|status| {
            if detail {
                status
            } else {
                status.without_detail()
            }
        })
        .collect();
    axum::Json(json!({
        "tenant": tenant.name(),
        "tools": tools,
        "status": {
            "node": state.executor.shared().map(|shared| shared.config().node.clone()),
            "shared_store_up": state.executor.shared().map(|shared| shared.stats().up),
            "generation": *state.executor.catalog_changes().borrow(),
            "components": components,
        },
    }))
    .into_response()
}

pub(super) async fn call_tool(
    Extract(state): Shared,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    // The request whole, not its headers apart: that extractor copies them.
    let (parts, body) = request.into_parts();
    let tenant = match state.tenants.authenticate(&parts.headers) {
        Ok(tenant) => tenant,
        Err(refusal) => return refusal.into_response(),
    };
    let catalog = state.executor.catalog();
    if let Err(refusal) = check_tool(&catalog, &tenant, &name) {
        return refusal.into_response();
    }
    let body = match read_body(&state, &tenant, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let admission = match tenant.admit().await {
        Ok(admission) => admission,
        Err(refusal) => return Refusal::from(refusal).into_response(),
    };
    let Ok(input) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body must be UTF-8 JSON");
    };
    let input = if input.trim().is_empty() { "{}" } else { input };
    let call = Requested {
        id: String::new(),
        name,
        arguments: input.to_string(),
    };
    let cancel = CancellationToken::new();
    let task = spawn_run(&state, admission, call, catalog, cancel.clone());
    let _cancel_if_dropped = cancel.drop_guard();
    let (record, slot) = match joined(task.await) {
        Ok((_, record, slot)) => (record, slot),
        Err(lost) => return lost.into_response(),
    };
    let status = match &record.outcome {
        Outcome::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::UnknownTool { .. } => StatusCode::NOT_FOUND,
        Outcome::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    let mut response = held_json(status, &record, vec![slot]);
    if let Outcome::RateLimited { retry_after_ms, .. } = record.outcome {
        let seconds = retry_after_ms.div_ceil(1000).max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

pub(super) async fn tool_calls(Extract(state): Shared, request: Request) -> Response {
    // The request whole, not its headers apart: that extractor copies them.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let tenant = match state.tenants.authenticate(headers) {
        Ok(tenant) => tenant,
        Err(refusal) => return refusal.into_response(),
    };
    let (body, parsing) = match read_to_parse(&state, &tenant, body).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let (dialect, calls) = match dialect::parse(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    // The calls hold their inputs as text now, each bounded by its own
    // reservation once it runs.
    drop(body);
    drop(parsing);
    let catalog = state.executor.catalog();
    for call in &calls {
        if let Err(refusal) = check_tool(&catalog, &tenant, &call.name) {
            return refusal.into_response();
        }
    }
    let mut admissions = Vec::with_capacity(calls.len());
    for _ in &calls {
        match tenant.admit().await {
            Ok(admission) => admissions.push(admission),
            Err(refusal) => return Refusal::from(refusal).into_response(),
        }
    }
    let cancel = CancellationToken::new();
    let running: FuturesUnordered<_> = calls
        .into_iter()
        .zip(admissions)
        .enumerate()
        .map(|(index, (call, admission))| {
            let task = spawn_run(
                &state,
                admission,
                call,
                catalog.clone(),
                cancel.child_token(),
            );
            async move { joined(task.await).map(|ran| (index, ran)) }
        })
        .collect();
    let cancel_if_dropped = cancel.drop_guard();
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_sse {
        return stream(dialect, running, cancel_if_dropped).into_response();
    }
    let finished: Result<Vec<_>, LostCall> =
        running.collect::<Vec<_>>().await.into_iter().collect();
    let mut finished: Vec<(usize, Ran)> = match finished {
        Ok(finished) => finished,
        Err(lost) => return lost.into_response(),
    };
    finished.sort_by_key(|(index, _)| *index);
    let parts = finished
        .iter()
        .map(|(_, (call, record, _))| dialect::result_part(dialect, &call.id, record))
        .collect();
    let records: Vec<Value> = finished
        .iter()
        .map(|(_, (_, record, _))| record.to_json())
        .collect();
    let slots = finished.into_iter().map(|(_, (.., slot))| slot).collect();
    let answer = json!({"messages": dialect::messages(dialect, parts), "records": records});
    held_json(StatusCode::OK, &answer, slots)
}

/// Each result as an SSE `result` event as it finishes, then `done` with the
/// messages in call order. The calls run on their own tasks whether or not
/// the client reads; dropping the stream drops `cancel_if_dropped`, which
/// cancels the calls still running. An event holds its call's tenant place
/// until the connection asks for the next one (it does once it has room).
fn stream(
    dialect: Dialect,
    running: FuturesUnordered<
        impl Future<Output = Result<(usize, Ran), LostCall>> + Send + 'static,
    >,
    cancel_if_dropped: DropGuard,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let total = running.len();
    let events = futures::stream::unfold(
        (
            running,
            Vec::with_capacity(total),
            false,
            cancel_if_dropped,
            DetachedSlot::default(),
        ),
        move |(mut running, mut parts, done, guard, sent)| async move {
            drop(sent);
            if done {
                return None;
            }
            // A lost task (a host bug, logged) has no event of its own.
            let next = loop {
                match running.next().await {
                    Some(Ok(finished)) => break Some(finished),
                    Some(Err(_)) => continue,
                    None => break None,
                }
            };
            match next {
                Some((index, (call, record, slot))) => {
                    let part = dialect::result_part(dialect, &call.id, &record);
                    parts.push((index, part.clone()));
                    let data = json!({"index": index, "id": call.id, "message": part, "record": record.to_json()});
                    let event = SseEvent::default().event("result").data(data.to_string());
                    Some((Ok(event), (running, parts, false, guard, slot)))
                }
                None => {
                    parts.sort_by_key(|(index, _)| *index);
                    let parts = parts.into_iter().map(|(_, part)| part).collect();
                    let data = json!({"messages": dialect::messages(dialect, parts)});
                    let event = SseEvent::default().event("done").data(data.to_string());
                    Some((
                        Ok(event),
                        (running, Vec::new(), true, guard, DetachedSlot::default()),
                    ))
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

pub(super) async fn metrics(Extract(state): Shared, headers: HeaderMap) -> Response {
    if !state.tenants.is_admin(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "/metrics needs an admin key (`admin_keys` in the server configuration)",
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(Extract(state): Shared) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: shutting down after the calls in flight",
        );
    }
    if state.executor.catalog().tools().next().is_none() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no tools are loaded");
    }
    "ready\n".into_response()
}
