//! Admission that follows the host's budgets: the memory the admitted calls
//! may use together, and a tenant's fuel quota, reserved when a call is
//! admitted and reconciled when it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use toolhost::serve::{ServeConfig, Server, hash_key};
use toolhost::{CallOptions, CancellationToken, ExecConfig, Executor, Outcome};
use tower::ServiceExt;

use crate::common::{self, wait_until};

const MIB: u64 = 1 << 20;
const BOMB: &str = "guest_memory_bomb__fill";

/// An executor of its own over the shared catalog, with a memory budget.
fn executor(budget_mb: u64, queue_timeout: Duration) -> Arc<Executor> {
    let mut config = ExecConfig::default();
    config.memory_budget_mb = Some(budget_mb);
    config.queue_timeout = queue_timeout;
    Arc::new(Executor::with_config(common::executor().catalog(), config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_queue_within_the_budget() {
    // 64 bombs capped at 32 MiB against a 256 MiB budget: at most 7 fit at
    // once (each also reserves the per-instance overhead), the rest queue.
    let budget_mb = 256;
    let executor = executor(budget_mb, Duration::from_secs(120));
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let executor = executor.clone();
            tokio::spawn(async move {
                let options = CallOptions::default()
                    .memory_mb(32)
                    .timeout(Duration::from_secs(30));
                executor.call(BOMB, "{}", options).await
            })
        })
        .collect();
    let mut kinds = std::collections::BTreeMap::new();
    for call in calls {
        let record = call.await.expect("every call returns a record");
        *kinds.entry(record.outcome.kind()).or_insert(0) += 1;
        assert!(
            matches!(record.outcome, Outcome::MemoryLimit { .. }),
            "a bomb ends by its memory cap: {}",
            record.outcome
        );
        assert!(record.memory_peak_bytes.unwrap() <= 32 * MIB);
    }
    assert_eq!(kinds.values().sum::<i32>(), 64, "{kinds:?}");
    // Whatever the gauge says, the bombs that ran at once (held a slot of
    // this executor, which runs nothing else) fit the budget.
    let peak_calls = executor.peak_in_flight(None) as u64;
    assert!(
        peak_calls * 32 <= budget_mb,
        "{peak_calls} bombs of 32 MiB ran at once against a budget of {budget_mb} MiB"
    );
    let stats = executor.stats();
    assert!(
        stats.memory_reserved_peak_bytes <= budget_mb * MIB,
        "{stats:?}"
    );
    assert!(stats.memory_reserved_peak_bytes >= 33 * MIB, "{stats:?}");
    assert_eq!(stats.memory_budget_bytes, Some(budget_mb * MIB));
    assert_eq!(stats.memory_reserved_bytes, 0, "{stats:?}");
    assert_eq!(executor.in_flight(), 0);
}

#[tokio::test]
async fn a_call_larger_than_the_whole_budget_is_refused_before_it_runs() {
    let executor = executor(16, Duration::from_secs(5));
    let record = executor
        .call(BOMB, "{}", CallOptions::default().memory_mb(32))
        .await;
    let Outcome::MemoryLimit { message } = &record.outcome else {
        panic!("{}", record.outcome)
    };
    assert!(message.contains("memory budget"), "{message}");
    assert_eq!(record.fuel_used, None, "no instance was made");
    assert_eq!(executor.stats().memory_reserved_bytes, 0);
}

#[tokio::test]
async fn a_call_waiting_for_memory_is_refused_at_its_queue_deadline() {
    let executor = executor(48, Duration::from_millis(200));
    let holder = hold_memory(&executor, CancellationToken::new());
    wait_until(&executor, "in flight", |e| e.in_flight() > 0).await;
    let record = executor
        .call(
            "sleep",
            r#"{"ms": 101}"#,
            CallOptions::default().memory_mb(32),
        )
        .await;
    let Outcome::RateLimited {
        message,
        retry_after_ms,
    } = &record.outcome
    else {
        panic!("{}", record.outcome)
    };
    assert!(message.contains("memory budget"), "{message}");
    assert!(*retry_after_ms > 0);
    // A small call still fits beside the big one.
    let small = executor
        .call(
            "sleep",
            r#"{"ms": 102}"#,
            CallOptions::default().memory_mb(4),
        )
        .await;
    assert!(small.outcome.is_ok(), "{}", small.outcome);
    holder.abort();
    let _ = holder.await;
    wait_for_no_reservation(&executor).await;
}

/// A 60 s `sleep` that holds 32 MiB of the memory budget, on its own task;
/// `cancel` ends it early.
fn hold_memory(
    executor: &Arc<Executor>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<toolhost::CallRecord> {
    let executor = executor.clone();
    tokio::spawn(async move {
        let options = CallOptions::default()
            .memory_mb(32)
            .timeout(Duration::from_secs(60))
            .cancel(cancel);
        executor.call("sleep", r#"{"ms": 60000}"#, options).await
    })
}

async fn wait_for_no_reservation(executor: &Executor) {
    wait_until(executor, "no memory reserved", |e| {
        e.stats().memory_reserved_bytes == 0 && e.in_flight() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ending_gives_the_memory_back() {
    let executor = executor(40, Duration::from_secs(60));
    let endings: [(&str, &str, CallOptions); 5] = [
        ("sleep", r#"{"ms": 103}"#, CallOptions::default()),
        ("guest_misbehave__panic", "{}", CallOptions::default()),
        (BOMB, "{}", CallOptions::default()),
        (
            "guest_misbehave__spin",
            "{}",
            CallOptions::default()
                .timeout(Duration::from_millis(50))
                .fuel(u64::MAX / 4),
        ),
        (
            "guest_misbehave__spin",
            "{}",
            CallOptions::default().fuel(1_000_000),
        ),
    ];
    let expected = ["ok", "trap", "memory-limit", "timeout", "out-of-fuel"];
    for ((tool, input, options), kind) in endings.into_iter().zip(expected) {
        // Each call asks for most of the budget: a leaked reservation would
        // make the next one wait for ever.
        let record = executor.call(tool, input, options.memory_mb(32)).await;
        assert_eq!(record.outcome.kind(), kind, "{tool}: {}", record.outcome);
        assert_eq!(executor.stats().memory_reserved_bytes, 0, "after {kind}");
    }
    // Cancelled while running.
    let cancel = CancellationToken::new();
    let running = hold_memory(&executor, cancel.clone());
    wait_until(&executor, "in flight", |e| e.in_flight() > 0).await;
    // Cancelled while waiting for memory behind it.
    let waiting_cancel = CancellationToken::new();
    let waiting = {
        let (executor, cancel) = (executor.clone(), waiting_cancel.clone());
        tokio::spawn(async move {
            let options = CallOptions::default().memory_mb(32).cancel(cancel);
            executor.call("sleep", r#"{"ms": 104}"#, options).await
        })
    };
    wait_until(&executor, "queued", |e| e.queued() > 0).await;
    waiting_cancel.cancel();
    assert_eq!(waiting.await.unwrap().outcome.kind(), "cancelled");
    cancel.cancel();
    assert_eq!(running.await.unwrap().outcome.kind(), "cancelled");
    assert_eq!(executor.stats().memory_reserved_bytes, 0);
    // The caller drops the call's future while it runs.
    let dropped = hold_memory(&executor, CancellationToken::new());
    wait_until(&executor, "in flight", |e| e.in_flight() > 0).await;
    assert!(executor.stats().memory_reserved_bytes >= 32 * MIB);
    dropped.abort();
    let _ = dropped.await;
    wait_for_no_reservation(&executor).await;
    let record = executor
        .call(
            "sleep",
            r#"{"ms": 105}"#,
            CallOptions::default().memory_mb(32),
        )
        .await;
    assert!(record.outcome.is_ok(), "{}", record.outcome);
}

const KEY: &str = "fuel-tenant-key-0123456789";
const ADMIN: &str = "fuel-admin-key-0123456789";

fn fuel_server(quota: u64, call_fuel: u64) -> Server {
    let text = format!(
        r#"
admin_keys = ["{admin}"]

[[tenant]]
name = "spender"
keys = ["{key}"]
tools = ["guest_misbehave__spin", "calc"]
fuel_per_minute = {quota}
[tenant.limits]
fuel = {call_fuel}
timeout_ms = 120000
"#,
        admin = hash_key(ADMIN),
        key = hash_key(KEY),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, text).unwrap();
    let config = ServeConfig::load(&path).unwrap();
    Server::new(common::executor(), &config, None).unwrap()
}

async fn post(server: &Server, uri: &str, key: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_one_tenant_stay_within_its_fuel_quota() {
    // 8 spinning calls at once, each allowed 400M fuel, against 1G a minute:
    // charged only after they end, all 8 would run and burn 3.2G.
    let (quota, call_fuel) = (1_000_000_000u64, 400_000_000u64);
    let server = fuel_server(quota, call_fuel);
    let start = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                post(&server, "/v1/tools/guest_misbehave__spin/call", KEY, "{}").await
            })
        })
        .collect();
    let (mut burned, mut ran, mut refused) = (0u64, 0, 0);
    for call in calls {
        let (status, body) = call.await.unwrap();
        match status {
            StatusCode::OK => {
                assert_eq!(body["outcome"], "out-of-fuel", "{body}");
                burned += body["fuel_used"].as_u64().unwrap();
                ran += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(body.to_string().contains("fuel"), "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    // The quota refills continuously; allow what it refilled while the calls ran.
    let refilled = (quota as f64 * start.elapsed().as_secs_f64() / 60.0) as u64;
    assert!(
        burned <= quota + refilled,
        "{ran} calls burned {burned} fuel against a quota of {quota} (+{refilled} refilled); {refused} refused"
    );
    assert!(ran >= 2 && refused >= 1, "{ran} ran, {refused} refused");
}

#[tokio::test]
async fn unused_reserved_fuel_goes_back_to_the_tenant() {
    // Each calc call reserves the whole 1G call budget and burns ~25k of it:
    // without the refund the second call would find the quota spent.
    let server = fuel_server(1_000_000_000, 1_000_000_000);
    for i in 0..10 {
        let (status, body) = post(
            &server,
            "/v1/tools/calc/call",
            KEY,
            &format!(r#"{{"expression": "{i} + 0.5"}}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "call {i}: {body}");
        assert_eq!(body["outcome"], "ok", "call {i}: {body}");
    }
}

/// The 1,000-bomb measurement through `serve` on loopback, run by hand:
/// `cargo test --release -p toolhost-tests --test all admission::bombs_through_serve -- --ignored --nocapture`.
/// `BOMBS` (1000), `BUDGET_MB` (the server's default when unset) and
/// `MAX_CONCURRENCY` (the policy default when unset) vary it. Prints the
/// outcome counts, the server's peak RSS (VmHWM), the most memory it
/// reserved and `/healthz` latency while the bombs ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of the release server, run by hand"]
async fn bombs_through_serve() {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let bombs = var("BOMBS").unwrap_or(1000) as usize;
    let mut policy = "[limits]\nmemory_mb = 32\n".to_string();
    if let Some(n) = var("MAX_CONCURRENCY") {
        policy.push_str(&format!("max_concurrency = {n}\n"));
    }
    let tools = common::tool_dir("fill", toolhost_artifacts::MEMORY_BOMB, Some(&policy));
    let budget = var("BUDGET_MB").map(|mb| mb.to_string());
    let mut args = Vec::new();
    if let Some(mb) = &budget {
        args.extend(["--memory-budget-mb", mb.as_str()]);
    }
    let served = common::spawn_serve(tools.path(), &args).await;
    let base = served.base.clone();
    let client = common::http_client();
    let rss_before = served.status_kib("VmRSS:") >> 10;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // /healthz and the reserved-memory gauge, every 20 ms while the bombs run.
    let probe = {
        let (client, base, done) = (client.clone(), base.clone(), done.clone());
        tokio::spawn(async move {
            let (mut latencies, mut reserved_peak, mut failed) = (Vec::new(), 0u64, 0);
            for _ in 0..50_000 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let sent = Instant::now();
                match client.get(format!("{base}/healthz")).send().await {
                    Ok(r) if r.status() == StatusCode::OK => latencies.push(sent.elapsed()),
                    _ => failed += 1,
                }
                if let Ok(r) = client.get(format!("{base}/metrics")).send().await {
                    let text = r.text().await.unwrap_or_default();
                    let reserved = text
                        .lines()
                        .find_map(|l| l.strip_prefix("toolhost_memory_reserved_bytes "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    reserved_peak = reserved_peak.max(reserved);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (latencies, reserved_peak, failed)
        })
    };
    let start = Instant::now();
    let calls: Vec<_> = (0..bombs)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/v1/tools/fill/call"));
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .timeout(Duration::from_secs(300))
                    .send()
                    .await;
                match response {
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        let outcome = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v["outcome"].as_str().map(str::to_string));
                        outcome.unwrap_or_else(|| format!("no outcome ({status})"))
                    }
                    Err(e) => format!("lost ({e})"),
                }
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for call in calls {
        *counts.entry(call.await.unwrap()).or_insert(0) += 1;
    }
    let elapsed = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut latencies, reserved_peak, health_failed) = probe.await.unwrap();
    let hwm = served.status_kib("VmHWM:") >> 10;
    drop(served);
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p) as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    eprintln!(
        "{bombs} bombs in {:.1} s: {counts:?}\nserver RSS before {rss_before} MiB, peak (VmHWM) {hwm} MiB; most memory reserved {} MiB\n/healthz: {} answered, {health_failed} failed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        reserved_peak >> 20,
        latencies.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    assert_eq!(counts.values().sum::<usize>(), bombs);
    assert!(
        counts
            .keys()
            .all(|k| !k.starts_with("lost") && !k.starts_with("no outcome")),
        "{counts:?}"
    );
}

const PARSER: &str = "parser-tenant-key-0123456789";

/// A server over `executor` whose tenant `parser` may call `calc` and
/// `sleep` (at 8 MiB a call), with bodies of up to 4 MiB, and MCP at `/mcp`.
fn body_server(executor: Arc<Executor>) -> axum::Router {
    let text = format!(
        r#"
max_body_kb = 4096

[[tenant]]
name = "parser"
keys = ["{key}"]
tools = ["calc", "sleep"]
[tenant.limits]
memory_mb = 8
"#,
        key = hash_key(PARSER),
    );
    let config = common::serve_config(&text);
    let server = Server::new(executor, &config, None).unwrap();
    toolhost::router_with_mcp(&server, toolhost::mcp::McpHttpConfig::default())
}

/// POSTs `body` to `uri` as `parser`: the status, `Retry-After` and answer.
async fn post_as_parser(
    router: &axum::Router,
    uri: &str,
    body: String,
) -> (StatusCode, Option<String>, String) {
    // MCP answers a request as a stream or as JSON, as the client accepts.
    let accept = match uri {
        "/mcp" => "application/json, text/event-stream",
        _ => "application/json",
    };
    let request = Request::post(uri)
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, format!("Bearer {PARSER}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, accept)
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, retry, String::from_utf8_lossy(&bytes).into_owned())
}

/// A batch of one `calc` call carrying `zeros` zeros beside it: two bytes
/// of text each, 32 once parsed.
fn padded_batch(zeros: usize) -> String {
    let call = serde_json::json!({"id": "c1", "type": "function",
        "function": {"name": "calc", "arguments": "{\"expression\":\"1+1\"}"}});
    serde_json::json!({"tool_calls": [call], "pad": vec![0; zeros]}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_is_parsed_within_the_memory_budget() {
    // A 40 MiB budget. 1.5 million zeros are 3 MB of body (under the 4 MiB
    // body cap) and about 48 MiB parsed: never, 413. 300,000 zeros are about
    // 10 MiB parsed: not while a call holds 34 MiB of the budget (503), and
    // then once it ended.
    let executor = executor(40, Duration::from_secs(60));
    let router = body_server(executor.clone());
    let (status, _, answer) =
        post_as_parser(&router, "/v1/tool-calls", padded_batch(1_500_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(
        answer.contains("was not parsed") && answer.contains("whole memory budget"),
        "{answer}"
    );
    let mcp_padded = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1", "pad": vec![0; 1_500_000]}}});
    let (status, _, answer) = post_as_parser(&router, "/mcp", mcp_padded.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "/mcp: {answer}");

    let cancel = CancellationToken::new();
    let holder = hold_memory(&executor, cancel.clone());
    wait_until(&executor, "the sleep admitted", |e| e.in_flight() == 1).await;
    let (status, retry, answer) =
        post_as_parser(&router, "/v1/tool-calls", padded_batch(300_000)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(answer.contains("taken by the calls in flight"), "{answer}");
    assert_eq!(
        executor.stats().memory_reserved_bytes,
        34 * MIB,
        "a refused body holds nothing"
    );
    cancel.cancel();
    let _ = holder.await;
    wait_for_no_reservation(&executor).await;
    let (status, _, answer) =
        post_as_parser(&router, "/v1/tool-calls", padded_batch(300_000)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["records"][0]["outcome"], "ok", "{answer}");
    wait_for_no_reservation(&executor).await;
}

/// A call waiting for a place keeps its input as the text it came as, not
/// as the parsed tree (which is some 16 times larger, and outside the
/// memory budget): a tenant's queued calls must not hold the host's heap.
/// Read on one thread, where the executor and this test run alone.
#[tokio::test]
async fn a_queued_call_does_not_keep_its_parsed_input() {
    let mut config = ExecConfig::default();
    config.max_in_flight = 1;
    config.queue_timeout = Duration::from_secs(120);
    let executor = Arc::new(Executor::with_config(common::executor().catalog(), config));
    let cancel = CancellationToken::new();
    let holder = hold_memory(&executor, cancel.clone());
    wait_until(&executor, "in flight", |e| e.in_flight() > 0).await;
    // About 512 KiB of text, a quarter of a million values once parsed.
    let input = Arc::new(format!(r#"{{"value": [{}0]}}"#, "0,".repeat(256 << 10)));
    const QUEUED: usize = 8;
    let before = crate::heap::live_here();
    let calls: Vec<_> = (0..QUEUED)
        .map(|_| {
            let (executor, input) = (executor.clone(), input.clone());
            tokio::spawn(async move {
                executor
                    .call("guest_trivial__echo", &input, CallOptions::default())
                    .await
            })
        })
        .collect();
    wait_until(&executor, "queued", |e| e.queued() == QUEUED).await;
    let held = crate::heap::live_here() - before;
    cancel.cancel();
    let _ = holder.await;
    for call in calls {
        let record = call.await.expect("a record");
        assert!(record.outcome.is_ok(), "{}", record.outcome);
    }
    let per_call = held / QUEUED as isize;
    assert!(
        per_call < (input.len() as isize) * 2,
        "each queued call holds {per_call} bytes for an input of {} bytes",
        input.len()
    );
}
