//! `serve` attacked the way a hostile tenant, client or web page would:
//! MCP sessions by the thousand, the admin key calling tools, `--no-auth`
//! driven from a browser, bodies sent before a key, slow clients, and a
//! status that tells hidden tools from missing ones.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use toolhost::mcp::McpHttpConfig;
use toolhost::serve::{Server, hash_key};
use tower::ServiceExt;

use super::common;
use super::serve_api::{
    ACME, ADMIN, BETA, call_calc, config_with, json, mcp, mcp_call, mcp_initialize, mcp_session,
    send, server,
};

fn mcp_router(server: &Server) -> axum::Router {
    toolhost::router_with_mcp(server, McpHttpConfig::default())
}

/// Ends an MCP session with DELETE, as a client does.
async fn mcp_delete(router: &axum::Router, key: &str, session: &str) -> StatusCode {
    let request = Request::delete("/mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(Body::empty())
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

/// Opens sessions with `key` until one is refused (at most `tries`): the
/// sessions opened and the refusal's status and answer.
async fn open_until_refused(
    router: &axum::Router,
    key: &str,
    tries: usize,
) -> (Vec<String>, Option<(StatusCode, Value)>) {
    let mut opened = Vec::new();
    for _ in 0..tries {
        let (status, session, answer) = mcp(router, Some(key), None, mcp_initialize()).await;
        match session {
            Some(session) if status == StatusCode::OK => opened.push(session),
            _ => return (opened, Some((status, answer))),
        }
    }
    (opened, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_session_counts_against_the_tenant_rate() {
    // The issue's attack: a tenant at "1/s" opened 2,000 sessions in a
    // second. At one a minute, exactly one opens however fast it asks.
    let server = server(r#"rate = "1/min""#);
    let router = mcp_router(&server);
    let (opened, refused) = open_until_refused(&router, ACME, 2_000).await;
    assert_eq!(opened.len(), 1, "one session within the rate");
    let (status, answer) = refused.expect("the second session is refused");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(
        answer.to_string().contains("rate"),
        "the refusal says why: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_per_tenant_cap_a_new_session_is_refused_until_one_ends() {
    let server = server("");
    let router = mcp_router(&server);
    let (opened, refused) = open_until_refused(&router, ACME, 1_000).await;
    let (status, answer) = refused.expect("a cap below 1,000 sessions per tenant");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(
        answer.to_string().contains("sessions"),
        "the refusal says why: {answer}"
    );
    // Another tenant is not paying for acme's sessions.
    mcp_session(&router, BETA).await;
    // A session ended by DELETE leaves the count, so another one opens.
    assert!(mcp_delete(&router, ACME, &opened[0]).await.is_success());
    let (status, ..) = mcp(
        &router,
        Some(ACME),
        Some(&opened[0]),
        mcp_call(1, "calc", json!({"expression": "1"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the deleted session is gone");
    mcp_session(&router, ACME).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_global_cap_a_new_session_is_refused() {
    let config = config_with("mcp_max_sessions = 3\nmcp_max_sessions_per_tenant = 2", "");
    let server = Server::new(common::executor(), &config, None).unwrap();
    let router = mcp_router(&server);
    let (opened, refused) = open_until_refused(&router, ACME, 10).await;
    assert_eq!(opened.len(), 2);
    assert_eq!(refused.unwrap().0, StatusCode::TOO_MANY_REQUESTS);
    let (opened, refused) = open_until_refused(&router, BETA, 10).await;
    assert_eq!(opened.len(), 1, "three in all");
    let (status, answer) = refused.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(answer.to_string().contains("sessions"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_expires_and_leaves_its_tenant_count() {
    let config = config_with(
        "mcp_session_idle_s = 1\nmcp_max_sessions_per_tenant = 1",
        "",
    );
    let server = Server::new(common::executor(), &config, None).unwrap();
    let router = mcp_router(&server);
    let first = mcp_session(&router, ACME).await;
    let (opened, refused) = open_until_refused(&router, ACME, 1).await;
    assert!(opened.is_empty() && refused.is_some(), "at the cap");
    // Once the first session expired, its owner entry is gone: a new one
    // opens under the cap of one, and the old id is unknown.
    let mut reopened = None;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let (opened, None) = open_until_refused(&router, ACME, 1).await {
            reopened = opened.into_iter().next();
            break;
        }
    }
    assert!(reopened.is_some(), "the idle session expired");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let (status, ..) = mcp(&router, Some(ACME), Some(&first), list).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_key_calls_no_tool_unless_the_config_says_so() {
    let server = server("");
    let router = mcp_router(&server);
    let (status, session, answer) = mcp(&router, Some(ADMIN), None, mcp_initialize()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(session.is_none());
    assert!(answer.to_string().contains("admin_calls_tools"), "{answer}");
    let (status, _, body) = call_calc(&server, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // It still reads /metrics.
    let (status, ..) = send(&server, "GET", "/metrics", Some(ADMIN), "").await;
    assert_eq!(status, StatusCode::OK);

    // Allowed by the config, it calls every tool, as the tenant `admin`.
    let config = config_with("admin_calls_tools = true", "");
    let server = Server::new(common::executor(), &config, None).unwrap();
    let router = mcp_router(&server);
    let session = mcp_session(&router, ADMIN).await;
    let call = mcp_call(1, "text__slugify", json!({"text": "A B"}));
    let (_, _, answer) = mcp(&router, Some(ADMIN), Some(&session), call).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_calling_tools_has_the_default_concurrency() {
    // Allowed to call tools, the admin key is the tenant `admin`: it had no
    // `concurrency`, so its unread answers (and its slow bodies) were
    // bounded by nothing but the connection cap.
    let config = config_with("admin_calls_tools = true\ntenant_concurrency = 1", "");
    let server = Server::new(common::executor(), &config, None).unwrap();
    let request = || {
        Request::post("/v1/tools/calc/call")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"expression": "6 * 7"}"#))
            .unwrap()
    };
    let unread = server.router().oneshot(request()).await.unwrap();
    assert_eq!(unread.status(), StatusCode::OK);
    let second = server.router().oneshot(request()).await.unwrap();
    assert_eq!(
        second.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the unread answer holds the admin's one place"
    );
    drop(unread);
    let third = server.router().oneshot(request()).await.unwrap();
    assert_eq!(third.status(), StatusCode::OK);
}

/// One request to the router of a `--no-auth` server with `headers`.
async fn open_request(
    router: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_has_a_tenant_s_default_concurrency() {
    // The attack: a local client of a `--no-auth` server starts calls (or
    // leaves answers unread) by the thousand. Its tenant, `anonymous`, had
    // no concurrency: its calls, bodies waited for and answers waiting were
    // bounded by the connection cap only, the whole pool at its disposal.
    let mut exec = toolhost::ExecConfig::default();
    exec.max_in_flight = 4;
    let executor = Arc::new(toolhost::Executor::with_config(
        common::executor().catalog(),
        exec,
    ));
    let server = Server::open(executor.clone(), None);
    let (base, _stop, _task) = super::serve_api::listen(&server).await;
    let client = common::http_client();
    let call = |ms: u64| {
        client
            .post(format!("{base}/v1/tools/sleep/call"))
            .header("content-type", "application/json")
            .body(json!({ "ms": ms }).to_string())
            .send()
    };
    // Half the pool of 4: two calls in flight, as a tenant without its own.
    let held: Vec<_> = (0..2).map(|_| tokio::spawn(call(3_000))).collect();
    for _ in 0..200 {
        if executor.in_flight() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(executor.in_flight(), 2, "the two calls run");
    let third = call(1).await.unwrap();
    let third_status = third.status();
    let third_body = third.text().await.unwrap();
    for call in held {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    let after = call(1).await.unwrap().status();
    assert_eq!(
        third_status,
        StatusCode::TOO_MANY_REQUESTS,
        "a third call while two run: {third_body}"
    );
    assert!(third_body.contains("anonymous"), "{third_body}");
    assert_eq!(after, StatusCode::OK, "a call once they have ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_refuses_what_a_web_page_can_send() {
    let server = Server::open(common::executor(), None);
    let router = mcp_router(&server);
    let calc = r#"{"expression": "6 * 7"}"#;
    let batch = json!([{"id": "a", "type": "function",
        "function": {"name": "calc", "arguments": "{\"expression\": \"1\"}"}}])
    .to_string();
    let initialize = mcp_initialize().to_string();
    let json_type = ("content-type", "application/json");
    let accept = ("accept", "application/json, text/event-stream");
    let local = ("host", "127.0.0.1:8787");
    for (uri, body) in [
        ("/v1/tools/calc/call", calc),
        ("/v1/tool-calls", batch.as_str()),
        ("/mcp", initialize.as_str()),
    ] {
        for (headers, refused) in [
            (
                vec![local, accept, ("content-type", "text/plain")],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (vec![local, accept], StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (
                vec![
                    local,
                    accept,
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                vec![local, accept, json_type, ("origin", "http://evil.example")],
                StatusCode::FORBIDDEN,
            ),
            (
                vec![local, accept, json_type, ("origin", "null")],
                StatusCode::FORBIDDEN,
            ),
            (
                vec![("host", "evil.example"), accept, json_type],
                StatusCode::FORBIDDEN,
            ),
            (
                vec![("host", "evil.example:8787"), accept, json_type],
                StatusCode::FORBIDDEN,
            ),
            (
                vec![("host", "localhost.evil.example"), accept, json_type],
                StatusCode::FORBIDDEN,
            ),
        ] {
            let (status, answer) = open_request(&router, "POST", uri, &headers, body).await;
            assert_eq!(status, refused, "{uri} with {headers:?}: {answer}");
        }
        // A plain JSON request from loopback runs.
        for host in ["127.0.0.1:8787", "localhost", "[::1]:8787", "localhost:1"] {
            let headers = [
                ("host", host),
                accept,
                json_type,
                ("origin", "http://localhost:8787"),
            ];
            let (status, answer) = open_request(&router, "POST", uri, &headers, body).await;
            assert_eq!(status, StatusCode::OK, "{uri} from {host}: {answer}");
        }
    }
    let (status, _) =
        open_request(&router, "GET", "/v1/tools", &[("host", "evil.example")], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "reads too: DNS rebinding");
    let (status, _) = open_request(&router, "GET", "/v1/tools", &[local], "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_will_not_listen_beyond_loopback() {
    let tools = common::tool_dir("sleep", toolhost_artifacts::SLEEP, None);
    let (mut child, lines) =
        common::serve_process(tools.path(), &["--no-auth", "--listen", "0.0.0.0:0"]);
    let mut exited = None;
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr: Vec<String> = lines.try_iter().collect();
    let exited = exited.unwrap_or_else(|| panic!("the server ran: {stderr:?}"));
    assert!(!exited.success());
    assert!(
        stderr.iter().any(|line| line.contains("loopback")),
        "{stderr:?}"
    );
}

/// A request body that notes whether anyone read it.
fn watched_body(read: &Arc<AtomicBool>) -> Body {
    let read = read.clone();
    Body::from_stream(futures::stream::once(async move {
        read.store(true, Ordering::SeqCst);
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"expression\":\"1\"}"))
    }))
}

#[tokio::test]
async fn the_body_is_not_read_before_the_key_is_checked() {
    let server = server("");
    for uri in ["/v1/tools/calc/call", "/v1/tool-calls", "/mcp"] {
        let read = Arc::new(AtomicBool::new(false));
        let request = Request::post(uri)
            .header(header::HOST, "127.0.0.1")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(watched_body(&read))
            .unwrap();
        let response = mcp_router(&server).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(!read.load(Ordering::SeqCst), "{uri}: the body was read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_bodies_are_bounded_by_max_body_kb() {
    let server = server(""); // max_body_kb = 4
    let router = mcp_router(&server);
    let mut initialize = mcp_initialize();
    initialize["params"]["clientInfo"]["padding"] = json!("x".repeat(8 << 10));
    let (status, session, answer) = mcp(&router, Some(ACME), None, initialize).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(session.is_none());
}

#[tokio::test]
async fn hidden_and_missing_tools_answer_alike_without_reach_outside() {
    // `clock__now` exists and reaches outside (the clock); `nosuch` does not
    // exist. Both are in acme's list.
    let server = server("reach_outside = false");
    let mut answers = Vec::new();
    for tool in ["clock__now", "nosuch"] {
        let (status, _, body) = send(
            &server,
            "POST",
            &format!("/v1/tools/{tool}/call"),
            Some(ACME),
            "{}",
        )
        .await;
        let batch = json!([{"id": "a", "type": "function",
            "function": {"name": tool, "arguments": "{}"}}]);
        let (batch_status, _, batch_body) = send(
            &server,
            "POST",
            "/v1/tool-calls",
            Some(ACME),
            &batch.to_string(),
        )
        .await;
        answers.push((
            status,
            body.replace(tool, "TOOL"),
            batch_status,
            batch_body.replace(tool, "TOOL"),
        ));
    }
    assert_eq!(answers[0], answers[1], "nothing tells them apart");
    assert_ne!(answers[0].0, StatusCode::OK);
    let _ = json(&answers[0].1);
}

/// A `toolhost serve --config` with `settings` and one tenant, on loopback.
async fn serve_with(settings: &str) -> (std::process::Child, [tempfile::TempDir; 2], String) {
    serve_with_files(settings, None).await
}

/// [`serve_with`], with at most `open_files` file descriptors when given.
async fn serve_with_files(
    settings: &str,
    open_files: Option<u32>,
) -> (std::process::Child, [tempfile::TempDir; 2], String) {
    let tools = common::tool_dir("sleep", toolhost_artifacts::SLEEP, None);
    serve_in(settings, tools, open_files).await
}

/// [`serve_with_files`], serving the tools in `tools`.
async fn serve_in(
    settings: &str,
    tools: tempfile::TempDir,
    open_files: Option<u32>,
) -> (std::process::Child, [tempfile::TempDir; 2], String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    let text = format!(
        "{settings}\n[[tenant]]\nname = \"acme\"\nkeys = [\"{}\"]\ntools = [\"*\"]\n",
        hash_key(ACME)
    );
    std::fs::write(&path, text).unwrap();
    let (mut child, lines) = common::serve_process_with_files(
        tools.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            path.to_str().unwrap(),
        ],
        open_files,
    );
    match common::serve_base(lines).await {
        Some(base) => (
            child,
            [tools, dir],
            base.trim_start_matches("http://").to_string(),
        ),
        None => {
            let _ = child.kill();
            panic!("the server did not come up with {settings:?}");
        }
    }
}

/// Reads from `stream` until the server closes it; false when it is still
/// open after `bound` (a hang guard, far above the server's timeouts).
fn closed_by_server(stream: &mut std::net::TcpStream, bound: Duration) -> bool {
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_clients_are_dropped() {
    let (mut child, _dir, address) =
        serve_with("header_timeout_ms = 300\nbody_timeout_ms = 300").await;
    let outcome = tokio::task::spawn_blocking(move || {
        // Connects and sends nothing.
        let mut silent = std::net::TcpStream::connect(&address).unwrap();
        let silent_closed = closed_by_server(&mut silent, Duration::from_secs(30));
        // Sends its head one byte every 50 ms, for up to 30 s.
        let mut slow = std::net::TcpStream::connect(&address).unwrap();
        let head = format!(
            "GET /v1/tools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
            "a".repeat(600)
        );
        let mut sent_all = true;
        for byte in head.as_bytes() {
            if slow.write_all(&[*byte]).is_err() {
                sent_all = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let slow_closed = !sent_all || closed_by_server(&mut slow, Duration::from_millis(1));
        // Sends its key and a head promising 100 bytes, then 10 of them.
        let mut trickle = std::net::TcpStream::connect(&address).unwrap();
        write!(
            trickle,
            "POST /v1/tools/sleep/call HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ACME}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ms\": 1, "
        )
        .unwrap();
        let trickle_closed = closed_by_server(&mut trickle, Duration::from_secs(30));
        (silent_closed, slow_closed, sent_all, trickle_closed)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        outcome,
        (true, true, false, true),
        "(silent, slow, slow sent all, trickle)"
    );
}

/// Sends `request` on a new connection to `address` and reads the
/// answer's status line and body; `None` when none came within `bound` (a
/// hang guard) or the server closed the connection first.
fn exchange(address: &str, request: &str, bound: Duration) -> Option<(String, String)> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    read_answer(&mut stream, bound)
}

/// `n` threads, each sending `request` on a connection of its own and
/// giving back its answer's status line (see [`status_line`]).
fn in_threads(
    address: &str,
    request: &str,
    n: usize,
) -> Vec<std::thread::JoinHandle<Option<String>>> {
    (0..n)
        .map(|_| {
            let (address, request) = (address.to_string(), request.to_string());
            std::thread::spawn(move || status_line(&address, &request, Duration::from_secs(30)))
        })
        .collect()
}

/// What the threads of [`in_threads`] gave back, in order.
fn joined(threads: Vec<std::thread::JoinHandle<Option<String>>>) -> Vec<Option<String>> {
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// `/metrics` read with the admin key; empty when it did not answer.
fn admin_metrics(address: &str) -> String {
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n\
         Connection: close\r\n\r\n"
    );
    exchange(address, &request, Duration::from_secs(20))
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// [`exchange`]'s status line.
fn status_line(address: &str, request: &str, bound: Duration) -> Option<String> {
    exchange(address, request, bound).map(|(status, _)| status)
}

/// [`status_line`] from a connection whose local address is `source` (any
/// of 127.0.0.0/8 reaches a server on loopback): a client the server tells
/// apart by address from those on 127.0.0.1. Call it outside the runtime
/// (in `spawn_blocking`).
fn status_line_from(
    source: std::net::IpAddr,
    address: &str,
    request: &str,
    bound: Duration,
) -> Option<String> {
    let peer: std::net::SocketAddr = address.parse().ok()?;
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(source, 0))?;
        socket.connect(peer).await?.into_std()
    };
    let mut stream = tokio::runtime::Handle::current().block_on(connect).ok()?;
    stream.set_nonblocking(false).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    read_answer(&mut stream, bound).map(|(status, _)| status)
}

/// A request for a call of `sleep` for `ms`, as `acme`, on a connection
/// that closes after the answer.
fn sleep_call(ms: u64) -> String {
    sleep_call_as(ACME, ms)
}

/// [`sleep_call`] with the key `key`.
fn sleep_call_as(key: &str, ms: u64) -> String {
    let body = format!("{{\"ms\": {ms}}}");
    format!(
        "POST /v1/tools/sleep/call HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_lock_out_a_new_client() {
    // The attack: open more connections than the server has file
    // descriptors and send nothing on any. The header timeout (here a
    // minute) would close them in the end; until then every new client,
    // and every file the host itself needs, waited behind them.
    let (mut child, _dir, address) = serve_with_files("header_timeout_ms = 60000", Some(256)).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let flood: Vec<std::net::TcpStream> = (0..300)
            .filter_map(|_| std::net::TcpStream::connect(&address).ok())
            .collect();
        let opened = flood.len();
        // Every connection has reached the server's accept queue by now.
        std::thread::sleep(Duration::from_millis(500));
        // Far below the header timeout: an answer within it came because
        // the flood made room, not because it timed out.
        let answered = status_line(&address, &sleep_call(1), Duration::from_secs(20));
        let closed = flood
            .into_iter()
            .filter_map(|mut stream| {
                closed_by_server(&mut stream, Duration::from_millis(1)).then_some(())
            })
            .count();
        (opened, answered, closed)
    })
    .await
    .unwrap();
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let (opened, answered, closed) = outcome;
    assert_eq!(opened, 300, "the kernel's queue took every connection");
    assert_eq!(
        answered.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the new client was served while the flood stayed open"
    );
    assert!(closed > 0, "the server shed idle connections to make room");
    assert!(alive, "the server still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_and_busy_ones_finish() {
    let settings = format!(
        "max_connections = 4\nadmin_keys = [\"{}\"]",
        hash_key(ADMIN)
    );
    let (mut child, _dir, address) = serve_with(&settings).await;
    let outcome = tokio::task::spawn_blocking(move || {
        // Two calls in flight for a while, on connections opened first.
        let busy = in_threads(&address, &sleep_call(1500), 2);
        std::thread::sleep(Duration::from_millis(300));
        // Twenty that send nothing: past the cap, the oldest idle ones go.
        let idle: Vec<std::net::TcpStream> = (0..20)
            .filter_map(|_| std::net::TcpStream::connect(&address).ok())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let fresh = status_line(&address, &sleep_call(1), Duration::from_secs(20));
        let closed = idle
            .into_iter()
            .filter_map(|mut s| closed_by_server(&mut s, Duration::from_millis(1)).then_some(()))
            .count();
        let busy = joined(busy);
        let metrics = admin_metrics(&address);
        (busy, fresh, closed, metrics)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (busy, fresh, closed, metrics) = outcome;
    let ok = Some("HTTP/1.1 200 OK".to_string());
    assert_eq!(
        busy,
        vec![ok.clone(), ok.clone()],
        "calls in flight were not cut"
    );
    assert_eq!(fresh, ok, "a new client got in");
    // 2 busy + 20 idle + the new one over a cap of 4: at least 19 shed.
    assert!(closed >= 19, "idle connections were shed: {closed}");
    let shed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("toolhost_connections_shed_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        shed.is_some_and(|n| n >= 19),
        "/metrics counts them: {metrics}"
    );
    assert!(metrics.contains("toolhost_connections_max 4"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_client_takes_the_last_place() {
    // Three of four places held by calls in flight: the server took the
    // fourth connection and, finding itself at the cap, shed the one idle
    // connection, which was that new one before it had read its request.
    // Every new client was reset instead of served.
    let (mut child, _dir, address) = serve_with("max_connections = 4").await;
    let outcome = tokio::task::spawn_blocking(move || {
        let busy = in_threads(&address, &sleep_call(1500), 3);
        std::thread::sleep(Duration::from_millis(300));
        let one_by_one: Vec<_> = (0..5)
            .map(|_| status_line(&address, &sleep_call(1), Duration::from_secs(20)))
            .collect();
        // Five at once: one takes the place, the others wait their turn.
        let at_once = joined(in_threads(&address, &sleep_call(1), 5));
        let busy = joined(busy);
        (busy, one_by_one, at_once)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let ok = Some("HTTP/1.1 200 OK".to_string());
    let (busy, one_by_one, at_once) = outcome;
    assert_eq!(busy, vec![ok.clone(); 3], "the calls in flight");
    assert_eq!(
        one_by_one,
        vec![ok.clone(); 5],
        "new clients, one after another"
    );
    assert_eq!(at_once, vec![ok; 5], "new clients, at once");
}

/// Reads one answer from `stream`: its status line and body
/// (`Content-Length` bodies only); `None` when none came within `bound` or
/// the server closed it first.
fn read_answer(stream: &mut std::net::TcpStream, bound: Duration) -> Option<(String, String)> {
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while answer.len() < head_end + length {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    let status = head.lines().next().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&answer[head_end..head_end + length]).into_owned();
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_flood_from_one_address_sheds_its_own_connections_first() {
    let (mut child, _dir, address) = serve_with("max_connections = 8").await;
    let target: std::net::SocketAddr = address.parse().unwrap();
    let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // A client on 127.0.0.1 with a kept-alive connection, idle after one
    // answer: the oldest idle connection on the server.
    let mut kept = std::net::TcpStream::connect(target).unwrap();
    kept.write_all(health.as_bytes()).unwrap();
    let first = read_answer(&mut kept, Duration::from_secs(20)).map(|(status, _)| status);
    // Thirty connections from 127.0.0.2 that send nothing.
    let mut flood = Vec::new();
    for _ in 0..30 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(socket.connect(target).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let again = kept
            .write_all(health.as_bytes())
            .ok()
            .and_then(|()| read_answer(&mut kept, Duration::from_secs(20)))
            .map(|(status, _)| status);
        let fresh = status_line(&address, health, Duration::from_secs(20));
        (again, fresh)
    })
    .await
    .unwrap();
    let shed = flood
        .into_iter()
        .filter_map(|stream| {
            // Non-blocking: a read says at once whether the server closed it.
            let mut stream = stream.into_std().unwrap();
            closed_by_server(&mut stream, Duration::from_millis(1)).then_some(())
        })
        .count();
    let _ = child.kill();
    let _ = child.wait();
    let ok = Some("HTTP/1.1 200 OK".to_string());
    assert_eq!(first, ok);
    assert_eq!(
        outcome,
        (ok.clone(), ok),
        "(the kept-alive connection's second answer, a new client's)"
    );
    // 1 + 30 + 1 over a cap of 8: 24 shed, all of them the flood's.
    assert!(shed >= 23, "the flood paid for its own connections: {shed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_s_slow_bodies_do_not_hold_every_connection() {
    // The attack: a tenant keeps as many connections open as the server
    // holds, each with a call's head and part of its body sent, replacing
    // any the server answers or closes. A request waiting for its body is
    // in flight and never shed at the cap, so once all of them were, every
    // other tenant waited for the body timeout (here a minute).
    let settings = format!(
        "max_connections = 8\nbody_timeout_ms = 60000\ntenant_concurrency = 2\n\
         admin_keys = [\"{}\"]\n\
         [[tenant]]\nname = \"beta\"\nkeys = [\"{}\"]\ntools = [\"*\"]\n",
        hash_key(ADMIN),
        hash_key(BETA)
    );
    let (mut child, _dir, address) = serve_with(&settings).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let attack = {
            let (address, stop) = (address.clone(), stop.clone());
            std::thread::spawn(move || slow_bodies(&address, 8, &stop))
        };
        std::thread::sleep(Duration::from_secs(1));
        // The other tenant has an address of its own: at the cap the server
        // sheds idle connections of the address holding the most, and from
        // one address a fresh connection whose head it has yet to read is as
        // idle as the attacker's (the server cannot tell tenants apart
        // before it reads a head).
        let other = status_line_from(
            std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
            &address,
            &sleep_call_as(BETA, 1),
            Duration::from_secs(20),
        );
        stop.store(true, Ordering::SeqCst);
        let (refused, open) = attack.join().unwrap();
        let waiting = open.iter().filter(|stream| waited_on(stream)).count();
        let metrics = admin_metrics(&address);
        (other, refused, waiting, metrics)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (other, refused, waiting, metrics) = outcome;
    assert_eq!(
        other.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "another tenant got in"
    );
    assert_eq!(
        waiting, 2,
        "the server waits for as many of the tenant's bodies as its concurrency"
    );
    assert!(refused > 0, "the others were refused (429)");
    let counted = metrics
        .lines()
        .find(|line| line.contains("reason=\"reading\""))
        .and_then(|line| line.rsplit(' ').next()?.parse::<usize>().ok());
    assert!(
        counted.is_some_and(|n| n >= refused),
        "/metrics counts the refusals ({refused} seen): {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_s_mcp_listens_do_not_hold_every_connection() {
    // The attack: a tenant opens as many `subscriptions/listen` streams as
    // the server holds connections and reads their keep-alives. A listen
    // lasts until its client goes, and a connection with a request in
    // flight is never shed, so every other client waited forever. An
    // invented session id let such a request skip the session caps too.
    let settings = format!(
        "max_connections = 8\nmcp_max_sessions_per_tenant = 3\n\
         admin_keys = [\"{}\"]\n\
         [[tenant]]\nname = \"beta\"\nkeys = [\"{}\"]\ntools = [\"*\"]\n",
        hash_key(ADMIN),
        hash_key(BETA)
    );
    let (mut child, _dir, address) = serve_with(&settings).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let invented = exchange(
            &address,
            &mcp_listen_request(ACME, Some("invented-session-id")),
            Duration::from_secs(10),
        );
        // One after another, each read until it is acknowledged or ends:
        // opened at once, some would meet the session caps' short hold of
        // a request that may open a session, and end.
        let (mut refused, mut open, mut listens) = (0, 0, Vec::new());
        for _ in 0..8 {
            let Ok(mut stream) = std::net::TcpStream::connect(&address) else {
                continue;
            };
            if stream
                .write_all(mcp_listen_request(ACME, None).as_bytes())
                .is_err()
            {
                continue;
            }
            let (text, ended) = read_for(&mut stream, Duration::from_secs(2));
            if text.contains("MCP streams open") {
                refused += 1;
            } else if !ended && text.contains("subscriptions/acknowledged") {
                open += 1;
            }
            listens.push(stream);
        }
        let other = status_line_from(
            std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
            &address,
            &sleep_call_as(BETA, 1),
            Duration::from_secs(20),
        );
        drop(listens);
        (invented, other, refused, open)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (invented, other, refused, open) = outcome;
    assert_eq!(
        other.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "another tenant got in"
    );
    assert_eq!(open, 3, "the tenant keeps as many listens as its cap");
    assert!(refused >= 1, "the others were told why");
    let invented = invented.map(|(status, _)| status);
    assert!(
        invented
            .as_deref()
            .is_some_and(|status| status.starts_with("HTTP/1.1 4")),
        "a session id no session has is refused: {invented:?}"
    );
}

/// What `stream` sends within `bound`, and whether its answer ended (the
/// connection closed or a chunked body's last chunk came).
fn read_for(stream: &mut std::net::TcpStream, bound: Duration) -> (String, bool) {
    let until = std::time::Instant::now() + bound;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let ended = loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => break false,
        }
        if seen.ends_with(b"\r\n0\r\n\r\n") {
            break true;
        }
    };
    (String::from_utf8_lossy(&seen).into_owned(), ended)
}

/// A `subscriptions/listen` for `tools/list_changed` (protocol 2026-07-28,
/// no session), as the tenant with `key`, with `session` as its session id.
fn mcp_listen_request(key: &str, session: Option<&str>) -> String {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "subscriptions/listen",
        "params": {
            "notifications": {"toolsListChanged": true},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
    .to_string();
    let session = session
        .map(|id| format!("Mcp-Session-Id: {id}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n\
         {session}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn connections_accepted_in_a_burst_are_read_before_one_is_shed() {
    // A burst at the connection cap: the server sheds an idle connection to
    // make room for one that arrives. Connections it had just accepted, with
    // their requests already waiting, were never given a turn to read them:
    // the accept loop went on accepting, the first of them looked idle, and
    // it was closed with its request unanswered.
    let config = config_with("max_connections = 2", "");
    common::executor();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (blocked, held) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // One thread serves: hold it while the burst arrives, so that all of
    // it waits in the listen queue and is accepted at once.
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = Server::new(common::executor(), &config, None).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = server.router();
            let serve = tokio::spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                server.serve(listener, app, shutdown).await
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            blocked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            serve.await.unwrap().unwrap();
        });
    });
    held.recv().unwrap();
    let mut burst: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream.write_all(sleep_call(1).as_bytes()).unwrap();
            stream
        })
        .collect();
    let answers: Vec<Option<String>> = burst
        .iter_mut()
        .map(|stream| read_answer(stream, Duration::from_secs(20)).map(|(status, _)| status))
        .collect();
    let _ = stop.send(());
    serving.join().unwrap();
    assert_eq!(
        answers,
        vec![Some("HTTP/1.1 200 OK".to_string()); 3],
        "every request of the burst is answered"
    );
}

/// True when the server neither answered nor closed `stream` within 300 ms:
/// it still waits on it.
fn waited_on(mut stream: &std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    matches!(stream.read(&mut [0u8; 64]), Err(e)
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Keeps `connections` connections to `address` open, each with the head
/// of an `acme` call and part of its body sent, replacing every one the
/// server answers or closes, until `stop`. Gives back the 429s it read and
/// the connections open at the end.
fn slow_bodies(
    address: &str,
    connections: usize,
    stop: &AtomicBool,
) -> (usize, Vec<std::net::TcpStream>) {
    let open_one = || {
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        write!(
            stream,
            "POST /v1/tools/sleep/call HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: Bearer {ACME}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"ms\": 1, "
        )
        .ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    let (mut open, mut refused) = (Vec::new(), 0);
    while !stop.load(Ordering::SeqCst) {
        open.retain_mut(|stream: &mut std::net::TcpStream| {
            let mut buffer = [0u8; 64];
            match stream.read(&mut buffer) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Ok(n) if n > 0 => {
                    refused += usize::from(buffer.starts_with(b"HTTP/1.1 429"));
                    false
                }
                _ => false,
            }
        });
        while open.len() < connections {
            match open_one() {
                Some(stream) => open.push(stream),
                None => break,
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for stream in &open {
        stream.set_nonblocking(false).unwrap();
    }
    (refused, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_answers_is_dropped() {
    // The attack: ask for answers of megabytes on many connections and read
    // none of them. Each answer stayed in the server's buffers for as long
    // as the client kept its connection open.
    let tools = common::tool_dir(
        "misbehave",
        toolhost_artifacts::MISBEHAVE,
        Some("[limits]\nmax_output_kb = 16384\n"),
    );
    // The send bound is its own setting: a body may take a minute here.
    let settings = "body_timeout_ms = 60000\nsend_timeout_ms = 500";
    let (mut child, _dir, address) = serve_in(settings, tools, None).await;
    let mut streams = small_buffer_streams(&address, 4).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let request = big_output_call(ACME, 8_000_000, false);
        for stream in &mut streams {
            stream.write_all(request.as_bytes()).unwrap();
        }
        // Read nothing for ten times the bound; then read what is left.
        std::thread::sleep(Duration::from_secs(5));
        // A whole answer, or `None`: the server closed the connection first.
        let whole: Vec<bool> = streams
            .iter_mut()
            .map(|stream| read_answer(stream, Duration::from_secs(20)).is_some())
            .collect();
        let fresh = status_line(
            &address,
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            Duration::from_secs(20),
        );
        (whole, fresh)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (whole, fresh) = outcome;
    assert_eq!(
        whole,
        vec![false; 4],
        "the server closed each connection before its answer was taken"
    );
    assert_eq!(
        fresh.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the server answers"
    );
}

/// `n` connections to `address` whose receive buffers are set small, so the
/// kernel cannot take a whole large answer for the client (a set size also
/// stops the kernel from growing them).
async fn small_buffer_streams(address: &str, n: usize) -> Vec<std::net::TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 << 10).unwrap();
        let stream = socket.connect(address.parse().unwrap()).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        streams.push(stream);
    }
    streams
}

/// A request, with the key `key`, for an answer of `bytes` bytes from
/// `misbehave__big_output`; on a connection that closes after it if `close`.
fn big_output_call(key: &str, bytes: u64, close: bool) -> String {
    bytes_call(key, "big_output", bytes, close)
}

/// A request for a call of `misbehave`'s `tool` (`big_output`, `big_error`)
/// with `bytes`, as `key`; closing the connection after its answer if
/// `close`.
fn bytes_call(key: &str, tool: &str, bytes: u64, close: bool) -> String {
    let body = format!("{{\"bytes\": {bytes}}}");
    let close = if close { "Connection: close\r\n" } else { "" };
    format!(
        "POST /v1/tools/misbehave__{tool}/call HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n{close}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// True once `ready` is, asked every 100 ms; false if it is not within 20 s.
fn within_20s(mut ready: impl FnMut() -> bool) -> bool {
    (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        ready()
    })
}

/// The calls `/metrics` counts for `tenant`, whatever their outcome.
fn calls_of(metrics: &str, tenant: &str) -> u64 {
    let label = format!("tenant=\"{tenant}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("toolhost_calls_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A server where `acme` and `beta` may have 2 calls in flight each and
/// answers unread for a minute are not yet cut off, with `misbehave`'s
/// outputs of up to 16 MiB, and `settings` besides; and two connections to
/// it with 16 KiB receive buffers.
async fn unread_answers_server(
    settings: &str,
) -> (
    std::process::Child,
    [tempfile::TempDir; 2],
    String,
    Vec<std::net::TcpStream>,
) {
    let tools = common::tool_dir(
        "misbehave",
        toolhost_artifacts::MISBEHAVE,
        Some("[limits]\nmax_output_kb = 16384\n"),
    );
    let settings = format!(
        "body_timeout_ms = 60000\ntenant_concurrency = 2\nadmin_keys = [\"{}\"]\n{settings}\n\
         [[tenant]]\nname = \"beta\"\nkeys = [\"{}\"]\ntools = [\"*\"]\n",
        hash_key(ADMIN),
        hash_key(BETA)
    );
    let (child, dirs, address) = serve_in(&settings, tools, None).await;
    let streams = small_buffer_streams(&address, 2).await;
    (child, dirs, address, streams)
}

/// The attack on a server of [`unread_answers_server`]: `big` (a call of
/// acme's with an answer of megabytes) sent on each of `streams`, of which
/// nothing is read; once `/metrics` counts both calls ended, `small` asks a
/// call as acme, then as beta; then one client goes away, and `small` asks
/// as acme again (for up to 20 s) until `answered`. Gives whether both calls
/// ended, acme's and beta's answers, and whether acme was answered again.
fn leave_answers_unread<T>(
    address: &str,
    mut streams: Vec<std::net::TcpStream>,
    big: &str,
    small: impl Fn(&str) -> T,
    answered: impl Fn(&T) -> bool,
) -> (bool, T, T, bool) {
    for stream in &mut streams {
        stream.write_all(big.as_bytes()).unwrap();
    }
    // Both calls have ended; their answers wait on clients that read nothing.
    let ended = within_20s(|| calls_of(&admin_metrics(address), "acme") >= 2);
    let third = small(ACME);
    let other = small(BETA);
    // A client that goes away gives its answer's place back.
    drop(streams.pop());
    let again = within_20s(|| answered(&small(ACME)));
    (ended, third, other, again)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_unread_answers_count_as_its_calls_in_flight() {
    // The attack: start calls with answers of megabytes on connection after
    // connection and read none of them (or just enough, now and then, never
    // to be cut off as stalled). A call gave its tenant's place back when it
    // ended, so a tenant could leave as many answers in the server's memory
    // as it could open connections, whatever its `concurrency`.
    let (mut child, _dir, address, streams) = unread_answers_server("").await;
    let outcome = tokio::task::spawn_blocking(move || {
        let small = |key: &str| {
            let request = big_output_call(key, 10, true);
            status_line(&address, &request, Duration::from_secs(20))
        };
        let big = big_output_call(ACME, 8_000_000, false);
        leave_answers_unread(&address, streams, &big, small, |status| {
            status.as_deref() == Some("HTTP/1.1 200 OK")
        })
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (ended, third, other, again) = outcome.unwrap();
    assert!(ended, "the two calls ended");
    assert_eq!(
        third.as_deref(),
        Some("HTTP/1.1 429 Too Many Requests"),
        "the tenant's two unread answers hold its two places"
    );
    assert_eq!(
        other.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "another tenant does not pay for them"
    );
    assert!(again, "a place comes back when its client goes away: 200");
}

/// A `POST /mcp` of `message` with the key `key`, in `session` when given;
/// on a connection that closes after it if `close`.
fn mcp_post(key: &str, session: Option<&str>, message: &Value, close: bool) -> String {
    let body = message.to_string();
    let session = session.map_or(String::new(), |id| {
        format!("mcp-session-id: {id}\r\nmcp-protocol-version: 2025-06-18\r\n")
    });
    let close = if close { "Connection: close\r\n" } else { "" };
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         {session}{close}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `request` (which closes its connection) and reads all of the
/// answer, head and body as sent, within 20 s.
fn whole_answer(address: &str, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Opens an MCP session for `key` on the server at `address`: its id.
fn mcp_open(address: &str, key: &str) -> String {
    let answer = whole_answer(address, &mcp_post(key, None, &mcp_initialize(), true));
    let session = answer
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no session opened: {answer}"));
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    whole_answer(address, &mcp_post(key, Some(&session), &initialized, true));
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_unread_mcp_answers_count_as_its_calls_in_flight() {
    // The attack above, through MCP over HTTP: there the executor admits
    // the call itself, and gave the place back when the call ended while
    // rmcp's answer went on waiting for the client.
    let (mut child, _dir, address, streams) = unread_answers_server("").await;
    let outcome = tokio::task::spawn_blocking(move || {
        let (acme, beta) = (mcp_open(&address, ACME), mcp_open(&address, BETA));
        let small = |key: &str| {
            let session = if key == ACME { &acme } else { &beta };
            let call = mcp_call(2, "misbehave__big_output", json!({"bytes": 10}));
            whole_answer(&address, &mcp_post(key, Some(session), &call, true))
        };
        let big = mcp_call(1, "misbehave__big_output", json!({"bytes": 8_000_000}));
        let big = mcp_post(ACME, Some(&acme), &big, false);
        leave_answers_unread(&address, streams, &big, small, |answer: &String| {
            answer.contains("structuredContent")
        })
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (ended, third, other, again) = outcome.unwrap();
    assert!(ended, "the two calls ended");
    assert!(
        third.contains(r#""isError":true"#) && third.contains("already has 2 calls in flight"),
        "the tenant's two unread answers hold its two places: {third}"
    );
    assert!(
        other.contains("structuredContent"),
        "another tenant does not pay for them: {other}"
    );
    assert!(again, "a place comes back when its client goes away");
}

/// The host memory `/metrics` says is reserved now, in bytes.
fn memory_reserved(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|line| line.starts_with("toolhost_memory_reserved_bytes "))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_answers_hold_the_host_memory_budget() {
    // The attack: tenants leave answers of megabytes unread (over `/v1` and
    // over MCP, outputs and a tool's error). Each tenant's are bounded by
    // its `concurrency`, but a call gave its whole memory reservation back
    // when it ended (later: one that ended in an error did), so together
    // the tenants' waiting answers held host memory the budget never saw:
    // calls were admitted as if it were free.
    let (mut child, _dir, address, mut streams) =
        unread_answers_server("memory_budget_mb = 400").await;
    streams.extend(small_buffer_streams(&address, 1).await);
    let outcome = tokio::task::spawn_blocking(move || {
        let session = mcp_open(&address, BETA);
        let mcp = mcp_call(1, "misbehave__big_output", json!({"bytes": 8_000_000}));
        let requests = [
            big_output_call(ACME, 8_000_000, false),
            mcp_post(BETA, Some(&session), &mcp, false),
            bytes_call(ACME, "big_error", 8_000_000, false),
        ];
        for (stream, request) in streams.iter_mut().zip(&requests) {
            stream.write_all(request.as_bytes()).unwrap();
        }
        let metrics = || admin_metrics(&address);
        let ended = within_20s(|| {
            let metrics = metrics();
            calls_of(&metrics, "acme") >= 2 && calls_of(&metrics, "beta") >= 1
        });
        // What the calls in flight reserve is gone; the answers' remains.
        let waiting = (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                memory_reserved(&metrics())
            })
            .collect::<Vec<_>>();
        drop(streams);
        let gone = within_20s(|| memory_reserved(&metrics()) == Some(0));
        (ended, waiting, gone)
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (ended, waiting, gone) = outcome.unwrap();
    assert!(ended, "the three calls ended");
    // 8,000,000 bytes: 8 MiB each, for as long as they wait.
    assert!(
        waiting.iter().all(|bytes| *bytes == Some(24 << 20)),
        "the three unread answers hold 24 MiB of the budget: {waiting:?}"
    );
    assert!(gone, "given back when their clients go away");
}

/// Heap bytes each of 10 new sessions of `ACME` holds: `listing`, sessions
/// made ready (`notifications/initialized`, which starts their watcher of
/// the listing) that listed the tools; otherwise sessions only opened.
async fn held_per_session(router: &axum::Router, listing: bool) -> (isize, Vec<String>) {
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let before = crate::heap::live_here();
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let session = if listing {
            let session = mcp_session(router, ACME).await;
            let (status, ..) = mcp(router, Some(ACME), Some(&session), list.clone()).await;
            assert_eq!(status, StatusCode::OK);
            session
        } else {
            let (status, session, _) = mcp(router, Some(ACME), None, mcp_initialize()).await;
            assert_eq!(status, StatusCode::OK);
            session.expect("a session id")
        };
        sessions.push(session);
    }
    ((crate::heap::live_here() - before) / 10, sessions)
}

/// Run on one thread, so the heap count sees every task of every session.
#[tokio::test]
async fn mcp_sessions_share_one_listing_of_the_tools() {
    let config = common::serve_config(&format!(
        "[[tenant]]\nname = \"wide\"\nkeys = [\"{}\"]\ntools = [\"*\"]\n",
        hash_key(ACME)
    ));
    let server = Server::new(common::executor(), &config, None).unwrap();
    let router = mcp_router(&server);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let first = mcp_session(&router, ACME).await;
    let (_, _, answer) = mcp(&router, Some(ACME), Some(&first), list).await;
    let listing = answer["result"]["tools"].to_string().len() as isize;
    let (opened, _open) = held_per_session(&router, false).await;
    let (listed, _listing) = held_per_session(&router, true).await;
    // Before, each session built the listing for itself and its watcher
    // held two more: 1.66 MB more a session for 80 KB of JSON.
    assert!(
        listed - opened < listing / 4,
        "a session that lists the tools holds {listed} bytes, one only opened {opened}; \
         the listing is {listing} bytes of JSON"
    );
}
