//! The HTTP API: through `Router::oneshot` (no socket) for auth, tenant
//! isolation, quotas and both tool-call dialects, and over a real loopback
//! socket for SSE and a bounded load test.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use toolhost::serve::{ServeConfig, Server, hash_key};
use tower::ServiceExt;

use super::common;

pub(super) const ACME: &str = "acme-key-0123456789";
pub(super) const BETA: &str = "beta-key-0123456789";
pub(super) const ADMIN: &str = "admin-key-0123456789";

/// Two tenants: acme may call `calc` and `guest_trivial__*`; beta only the
/// `text__*` tools, with narrow limits.
fn config(extra_acme: &str) -> ServeConfig {
    config_with("", extra_acme)
}

/// [`config`] with `top` settings before the tenants.
pub(super) fn config_with(top: &str, extra_acme: &str) -> ServeConfig {
    let text = format!(
        r#"
{top}
admin_keys = ["{admin}"]
max_body_kb = 4

[[tenant]]
name = "acme"
keys = ["{acme}"]
tools = ["calc", "guest_trivial__*", "sleep", "clock__now", "nosuch", "text__slugifyy"]
{extra_acme}

[[tenant]]
name = "beta"
keys = ["{beta}"]
tools = ["text__*"]
"#,
        admin = hash_key(ADMIN),
        acme = hash_key(ACME),
        beta = hash_key(BETA),
    );
    common::serve_config(&text)
}

pub(super) fn server(extra_acme: &str) -> Server {
    Server::new(common::executor(), &config(extra_acme), None).unwrap()
}

pub(super) async fn send(
    server: &Server,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = server
        .router()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// `calc` of "1" with `key`.
pub(super) async fn call_calc(
    server: &Server,
    key: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    send(
        server,
        "POST",
        "/v1/tools/calc/call",
        key,
        r#"{"expression":"1"}"#,
    )
    .await
}

pub(super) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let server = server("");
    for key in [None, Some("wrong-key")] {
        let (status, headers, body) = send(&server, "GET", "/v1/tools", key, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        let (status, ..) = call_calc(&server, key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // `x-api-key` works as well as a bearer token.
    let request = Request::get("/v1/tools")
        .header("x-api-key", ACME)
        .body(Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_tenant_sees_and_calls_only_its_tools() {
    let server = server("");
    let (status, _, body) = send(&server, "GET", "/v1/tools?format=openai", Some(ACME), "").await;
    assert_eq!(status, StatusCode::OK);
    let listed = json(&body);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"calc") && names.contains(&"guest_trivial__echo"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("text__")),
        "acme must not see beta's tools: {names:?}"
    );
    let components: Vec<&str> = listed["status"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert!(
        components.contains(&"calc") && !components.contains(&"text"),
        "{components:?}"
    );

    let (_, _, body) = send(&server, "GET", "/v1/tools?format=anthropic", Some(BETA), "").await;
    let names: Vec<String> = json(&body)["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("text__")),
        "{names:?}"
    );

    // Forbidden the same way whether the tool exists or not: nothing leaks.
    for tool in ["calc", "no_such_tool"] {
        let (status, _, body) = send(
            &server,
            "POST",
            &format!("/v1/tools/{tool}/call"),
            Some(BETA),
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(!body.contains("did you mean"), "{body}");
    }
    let (status, ..) = send(&server, "GET", "/v1/tools?format=yaml", Some(BETA), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_call_answers_the_shared_outcome_shape() {
    let server = server("");
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/calc/call",
        Some(ACME),
        r#"{"expression":"2 + 3 * 4"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = json(&body);
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["output"]["value"], 14.0);
    assert!(record["call_id"].is_string() && record["fuel_used"].is_u64());

    // A tool failure is a 200 with the outcome in the body.
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/calc/call",
        Some(ACME),
        r#"{"expression":"1 +"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["outcome"], "tool-error");

    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/calc/call",
        Some(ACME),
        r#"{"expr":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&body)["outcome"], "invalid-input");
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/calc/call",
        Some(ACME),
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Allowed by the tenant's list, but not loaded.
    let (status, _, body) = send(&server, "POST", "/v1/tools/nosuch/call", Some(ACME), "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["outcome"], "unknown-tool");
    // Suggestions come from the tenant's own tools: `text__slugify` exists,
    // but is beta's.
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/text__slugifyy/call",
        Some(ACME),
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("text__slugify`"), "{body}");

    // Over the 4 KiB body limit.
    let big = format!(r#"{{"expression":"{}"}}"#, "1+".repeat(4000));
    let (status, ..) = send(&server, "POST", "/v1/tools/calc/call", Some(ACME), &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn openai_tool_calls_come_back_as_tool_messages_in_call_order() {
    let server = server("");
    let body = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "sleep", "arguments": "{\"ms\": 60}"}},
        {"id": "call_b", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\": \"6*7\"}"}},
        {"id": "call_c", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\": "}},
    ]});
    let (status, _, text) = send(
        &server,
        "POST",
        "/v1/tool-calls",
        Some(ACME),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let reply = json(&text);
    let messages = reply["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["role"], "tool");
    assert_eq!(messages[0]["tool_call_id"], "call_a");
    assert_eq!(messages[1]["tool_call_id"], "call_b");
    assert_eq!(
        json(messages[1]["content"].as_str().unwrap())["value"],
        42.0
    );
    assert!(
        messages[2]["content"]
            .as_str()
            .unwrap()
            .starts_with("invalid-input:"),
        "{}",
        messages[2]
    );
    assert_eq!(reply["records"][2]["outcome"], "invalid-input");

    // A tool outside the tenant's list refuses the whole request.
    let body = json!([{"id": "x", "type": "function", "function": {"name": "text__slugify", "arguments": "{}"}}]);
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/tool-calls",
        Some(ACME),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, text) = send(
        &server,
        "POST",
        "/v1/tool-calls",
        Some(ACME),
        r#"{"messages": []}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("tool_calls"), "{text}");
}

#[tokio::test]
async fn anthropic_tool_use_blocks_come_back_as_one_user_message() {
    let server = server("");
    let body = json!({"role": "assistant", "content": [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expression": "2^10"}},
        {"type": "tool_use", "id": "toolu_2", "name": "calc", "input": {"expression": "1/"}},
    ]});
    let (status, _, text) = send(
        &server,
        "POST",
        "/v1/tool-calls",
        Some(ACME),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let messages = json(&text)["messages"].clone();
    assert_eq!(messages.as_array().unwrap().len(), 1);
    assert_eq!(messages[0]["role"], "user");
    let blocks = messages[0]["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "tool_result");
    assert_eq!(blocks[0]["tool_use_id"], "toolu_1");
    assert_eq!(
        json(blocks[0]["content"].as_str().unwrap())["value"],
        1024.0
    );
    assert!(blocks[0].get("is_error").is_none());
    assert_eq!(blocks[1]["is_error"], true);
}

#[tokio::test]
async fn over_the_rate_quota_is_429_with_retry_after() {
    let server = server(r#"rate = "2/min""#);
    for _ in 0..2 {
        let (status, ..) = call_calc(&server, Some(ACME)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = call_calc(&server, Some(ACME)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "retry after {retry}");
    // Beta's quota is its own.
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/tools/text__slugify/call",
        Some(BETA),
        r#"{"text":"A b"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn over_the_concurrency_quota_is_429_while_a_call_runs() {
    let server = server("concurrency = 1");
    let spawn_slow = || {
        let router = server.router();
        tokio::spawn(async move {
            let request = Request::post("/v1/tools/sleep/call")
                .header(header::AUTHORIZATION, format!("Bearer {ACME}"))
                .body(Body::from(r#"{"ms": 3000}"#))
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        })
    };
    let mut slow = spawn_slow();
    // Until the slow call holds the tenant's one slot, calls pass; once it
    // does, they are refused, and the slow call is still running.
    let refused = loop {
        let (status, headers, _) = call_calc(&server, Some(ACME)).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break headers;
        }
        assert_eq!(status, StatusCode::OK);
        if slow.is_finished() {
            // Calls run on tasks of their own, so the slow request may have
            // come while a quick call held the slot: it was refused, not run.
            let status = (&mut slow).await.unwrap();
            assert_eq!(
                status,
                StatusCode::TOO_MANY_REQUESTS,
                "the 3 s call ended before any call was refused"
            );
            slow = spawn_slow();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(refused.contains_key(header::RETRY_AFTER));
    assert!(!slow.is_finished());
    slow.abort();
}

#[tokio::test]
async fn the_fuel_budget_caps_calls_and_then_refuses() {
    // 30,000 fuel per minute: one calc call burns ~20-25k, so the second is
    // (each input differs, so the result cache answers none of them)
    // capped at what is left and the third finds the budget spent.
    let server = server("fuel_per_minute = 30_000");
    let mut outcomes = Vec::new();
    let mut refused = None;
    // More tries than needed: a call that comes late finds some fuel refilled.
    for i in 0..20 {
        let (status, headers, body) = send(
            &server,
            "POST",
            "/v1/tools/calc/call",
            Some(ACME),
            &format!(r#"{{"expression":"11 * 13 + {i}"}}"#),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((headers, body));
            break;
        }
        outcomes.push(json(&body)["outcome"].as_str().unwrap().to_string());
    }
    let (headers, body) = refused.expect("the fuel budget must run out");
    assert!(body.contains("fuel budget"), "{body}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(outcomes[0], "ok");
    assert!(
        outcomes.iter().any(|o| o == "out-of-fuel"),
        "the last admitted call is capped: {outcomes:?}"
    );
}

#[tokio::test]
async fn tenant_limits_narrow_the_tool_policy() {
    let server = server("reach_outside = false\n[tenant.limits]\ntimeout_ms = 50");
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/tools/sleep/call",
        Some(ACME),
        r#"{"ms": 2000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["outcome"], "timeout", "{body}");
    // clock reads the wall clock, which reaches outside: hidden and refused.
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/tools/clock__now/call",
        Some(ACME),
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, body) = send(&server, "GET", "/v1/tools", Some(ACME), "").await;
    assert!(!body.contains("clock__now"), "{body}");
}

#[tokio::test]
async fn metrics_are_for_admins_and_count_calls_by_tenant() {
    let server = server("");
    send(
        &server,
        "POST",
        "/v1/tools/calc/call",
        Some(ACME),
        // An input no other test uses, so the result cache cannot answer it
        // and fuel is counted.
        r#"{"expression":"7 * 191"}"#,
    )
    .await;
    let (status, ..) = send(&server, "GET", "/metrics", Some(ACME), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, text) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"toolhost_calls_total{tool="calc",tenant="acme",outcome="ok"} 1"#),
        "{text}"
    );
    for name in [
        "toolhost_call_duration_seconds_bucket",
        "toolhost_in_flight",
        "toolhost_queue_depth",
        "toolhost_fuel_used_total",
        "toolhost_cache_hits_total",
        "toolhost_compile_cache_hits_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let server = server("");
    let (status, ..) = send(&server, "GET", "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, ..) = send(&server, "GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::OK);
    server.drain();
    let (status, ..) = send(&server, "GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A server on a real 127.0.0.1 socket, shut down gracefully on drop of the sender.
pub(super) async fn listen(
    server: &Server,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = server.router();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}"), stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_results_in_completion_order_over_loopback() {
    let server = server("");
    let (base, stop, task) = listen(&server).await;
    let body = json!([
        {"id": "slow", "type": "function", "function": {"name": "sleep", "arguments": "{\"ms\": 400}"}},
        {"id": "fast", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\": \"1+1\"}"}},
    ]);
    let response = common::http_client()
        .post(format!("{base}/v1/tool-calls"))
        .bearer_auth(ACME)
        .header(header::ACCEPT, "text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_string(), json(data)))
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds, ["result", "result", "done"], "{text}");
    assert_eq!(events[0].1["id"], "fast", "the fast call finishes first");
    assert_eq!(events[1].1["id"], "slow");
    let done = &events[2].1["messages"];
    assert_eq!(
        done[0]["tool_call_id"], "slow",
        "done lists results in call order"
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// Asks `calc` every 20 ms until the tenant's one slot is free again;
/// false if it never is within `limit`.
async fn slot_frees_within(server: &Server, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let (status, ..) = send(
            server,
            "POST",
            "/v1/tools/calc/call",
            Some(ACME),
            r#"{"expression":"1"}"#,
        )
        .await;
        if status == StatusCode::OK {
            return true;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Asks acme's `sleep` for `ms` milliseconds as an SSE stream.
async fn sse_sleep(server: &Server, ms: u64) -> axum::response::Response {
    let body = json!([
        {"id": "a", "type": "function", "function": {"name": "sleep", "arguments": json!({"ms": ms}).to_string()}},
    ]);
    let request = Request::post("/v1/tool-calls")
        .header(header::AUTHORIZATION, format!("Bearer {ACME}"))
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::from(body.to_string()))
        .unwrap();
    server.router().oneshot(request).await.unwrap()
}

/// An SSE client that stops reading its stream does not hold its calls back:
/// they run and end by their own deadlines. Their results then wait for it,
/// holding the tenant's places as unread answers do, until it reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_calls_run_to_their_end_while_the_client_does_not_read() {
    let server = server("concurrency = 1");
    let response = sse_sleep(&server, 200).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The body is held open and not polled, as by a client that stopped reading.
    let unread = response.into_body();
    let mut ended = false;
    for _ in 0..200 {
        let (_, _, metrics) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
        ended =
            metrics.contains(r#"toolhost_calls_total{tool="sleep",tenant="acme",outcome="ok"} 1"#);
        if ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "the call ran to its end unread");
    let (status, ..) = call_calc(&server, Some(ACME)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "its unread result holds the tenant's only place"
    );
    let read = tokio::time::timeout(Duration::from_secs(20), unread.collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    let read = String::from_utf8_lossy(&read);
    assert!(
        read.contains("event: result") && read.contains("event: done"),
        "{read}"
    );
    assert!(
        slot_frees_within(&server, Duration::from_secs(20)).await,
        "the place is given back once the result was read"
    );
}

/// A client that goes away cancels its stream's calls at once: a call that
/// would sleep for a minute frees the tenant's slot when the stream is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_sse_stream_cancels_its_calls() {
    let server = server("concurrency = 1");
    let response = sse_sleep(&server, 60_000).await;
    let (status, ..) = call_calc(&server, Some(ACME)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the sleep holds the slot"
    );
    drop(response);
    assert!(
        slot_frees_within(&server, Duration::from_secs(20)).await,
        "the dropped stream's call still holds the tenant's only slot"
    );
    // It ended cancelled, not at its 5 s deadline, and was counted.
    let (_, _, metrics) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        metrics
            .contains(r#"toolhost_calls_total{tool="sleep",tenant="acme",outcome="cancelled"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_loopback_load_loses_no_request() {
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 100;
    let server = server("");
    let (base, stop, task) = listen(&server).await;
    let client = common::http_client();
    let start = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let client = client.clone();
            let url = format!("{base}/v1/tools/calc/call");
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                for i in 0..PER_CLIENT {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .bearer_auth(ACME)
                        .body(format!(r#"{{"expression": "{worker} * 1000 + {i}"}}"#))
                        .send()
                        .await
                        .expect("every request is answered");
                    assert_eq!(response.status(), StatusCode::OK);
                    let record = json(&response.text().await.unwrap());
                    assert_eq!(
                        record["output"]["value"],
                        (worker * 1000 + i) as f64,
                        "each answer is its own request's"
                    );
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = start.elapsed();
    assert_eq!(latencies.len(), CLIENTS * PER_CLIENT);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "loopback load: {} requests from {CLIENTS} clients in {:.2} s ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    let _ = stop.send(());
    task.await.unwrap();
    let (_, _, text) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
    let line = format!(
        r#"toolhost_calls_total{{tool="calc",tenant="acme",outcome="ok"}} {}"#,
        CLIENTS * PER_CLIENT
    );
    assert!(
        text.contains(&line),
        "metrics must count every call: {line}"
    );
}

/// One JSON-RPC exchange with `/mcp`: the status, the session id the
/// server named, and the answer to `body` (read from JSON or from the SSE
/// stream, which may stay open after the answer).
pub(super) async fn mcp(
    router: &axum::Router,
    key: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::post("/mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let mut body = response.into_body();
    let mut text = String::new();
    let answer = loop {
        // A frame at most every keep-alive; the answer comes well before.
        let frame = tokio::time::timeout(Duration::from_secs(60), body.frame()).await;
        let Ok(Some(Ok(frame))) = frame else {
            break serde_json::from_str(text.trim()).unwrap_or(Value::Null);
        };
        if let Some(data) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(data));
        }
        let answer = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|message| message.get("id").is_some());
        if let Some(answer) = answer {
            break answer;
        }
    };
    (status, session, answer)
}

/// Opens an MCP session with `key` and returns its id.
pub(super) async fn mcp_session(router: &axum::Router, key: &str) -> String {
    let (status, session, answer) = mcp(router, Some(key), None, mcp_initialize()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let session = session.expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, ..) = mcp(router, Some(key), Some(&session), initialized).await;
    assert!(status.is_success(), "{status}");
    session
}

/// The `initialize` request that opens an MCP session.
pub(super) fn mcp_initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}})
}

pub(super) fn mcp_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sessions_belong_to_their_tenant() {
    let server = server(r#"rate = "3/min""#);
    let router = toolhost::router_with_mcp(&server, toolhost::mcp::McpHttpConfig::default());
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});

    let (status, ..) = mcp(&router, None, None, list.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, ..) = mcp(&router, Some("wrong-key"), None, list.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // beta sees its text tools only; a tool outside its list is unknown,
    // worded as for a tool that does not exist, suggesting none of acme's.
    let beta = mcp_session(&router, BETA).await;
    let (_, _, answer) = mcp(&router, Some(BETA), Some(&beta), list.clone()).await;
    let names: Vec<&str> = answer["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("text__")),
        "{names:?}"
    );
    let mut messages = Vec::new();
    for tool in ["calc", "cacl"] {
        let call = mcp_call(2, tool, json!({"expression": "1"}));
        let (_, _, answer) = mcp(&router, Some(BETA), Some(&beta), call).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap().to_string();
        assert!(!message.contains("did you mean"), "{message}");
        messages.push(message.replace(tool, "TOOL"));
    }
    assert_eq!(messages[0], messages[1], "nothing tells the two apart");

    // acme's session: opening it takes one of its 3 calls a minute, and
    // its calls take the rest and count under it.
    let acme = mcp_session(&router, ACME).await;
    let mut outcomes = Vec::new();
    for id in 3..6 {
        let call = mcp_call(id, "calc", json!({"expression": "2 + 3"}));
        let (_, _, answer) = mcp(&router, Some(ACME), Some(&acme), call).await;
        let result = &answer["result"];
        assert!(result.is_object(), "{answer}");
        outcomes.push(if result["isError"] == true {
            result["content"][0]["text"].as_str().unwrap().to_string()
        } else {
            result["structuredContent"]["value"].to_string()
        });
    }
    assert_eq!(outcomes[..2], ["5", "5"], "{outcomes:?}");
    assert!(
        outcomes[2].contains("rate-limited") && outcomes[2].contains("acme"),
        "the third call in a minute is over quota: {}",
        outcomes[2]
    );

    // A session answers only the key that opened it: to another, it does
    // not exist; the admin key is no MCP client unless the config says so.
    let (status, ..) = mcp(&router, Some(BETA), Some(&acme), list.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, ..) = mcp(&router, Some(ADMIN), Some(&acme), list.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, answer) = mcp(&router, Some(ACME), Some(&acme), list.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (_, _, text) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        text.contains(r#"toolhost_calls_total{tool="calc",tenant="acme",outcome="ok"} 2"#),
        "MCP calls count under their tenant"
    );
    assert!(
        text.contains(r#"toolhost_rejected_total{tenant="acme",reason="rate"} 1"#),
        "and so do their quota refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_in_flight_then_exits() {
    let tools = common::tool_dir("sleep", toolhost_artifacts::SLEEP, None);
    let served = common::spawn_serve(tools.path(), &[]).await;
    let base = served.base.clone();
    let client = common::http_client();
    let call = {
        let client = client.clone();
        let url = format!("{base}/v1/tools/sleep/call");
        tokio::spawn(async move {
            client
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(r#"{"ms": 3000}"#)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    // Wait until the call is running (the metrics say so), then ask the server to stop.
    wait_for_metric(&served, "toolhost_in_flight 1").await;
    served.terminate();
    let record = json(&call.await.unwrap());
    assert_eq!(
        record["outcome"], "ok",
        "the call in flight finished: {record}"
    );
    let exit = served.exit_within(Duration::from_secs(120)).await;
    assert!(
        exit.success(),
        "the server exits cleanly after draining: {exit}"
    );
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "and stops listening"
    );
}

/// Polls the server's `/metrics` for up to a minute until a line is `line`.
async fn wait_for_metric(served: &common::Served, line: &str) {
    for _ in 0..6000 {
        if served.metrics().await.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics never showed `{line}`");
}

/// A `tools/call` of `calc` without a session (protocol 2026-07-28), as
/// the tenant with `key`: the answer's JSON-RPC message, or the refusal's
/// status.
async fn sessionless_calc(router: &axum::Router, key: &str) -> Result<Value, StatusCode> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "calc",
            "arguments": {"expression": "1+1"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let request = Request::post("/mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "calc")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    text.lines()
        .filter_map(|line| line.strip_prefix("data:").or(Some(line)))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .ok_or(StatusCode::NO_CONTENT)
}

#[tokio::test]
async fn a_sessionless_mcp_call_takes_one_call_of_the_rate() {
    // Only `initialize` opens a session. A sessionless `tools/call` was
    // taken for a session being opened: it paid the rate twice (here and
    // in the executor) and held a session place for the whole call.
    let server = server(r#"rate = "2/min""#);
    let router = toolhost::router_with_mcp(&server, toolhost::mcp::McpHttpConfig::default());
    for _ in 0..2 {
        let answer = sessionless_calc(&router, ACME).await;
        let answer = answer.expect("answered");
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    let answer = sessionless_calc(&router, ACME).await.expect("answered");
    assert_eq!(
        answer["result"]["isError"], true,
        "the third is over the rate: {answer}"
    );
}
