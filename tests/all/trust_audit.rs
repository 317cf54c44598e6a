//! The audit log of a scripted run holds exactly the expected security
//! events, in order, with tenant, call id, tool and component hash; and the
//! secret the host injected appears nowhere in its bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use toolhost::tenancy::{Caller, Tenant};
use toolhost::{AuditLog, CallOptions, Catalog, ExecConfig, Executor};
use toolhost_artifacts as artifacts;

use super::common;
use super::server::Server;
use super::trust_pin::version;

/// The events as `(event, who, detail)`: the component or tool, and the
/// field that tells the event apart.
fn summary(line: &Value) -> (String, String, String) {
    let field = |key: &str| line[key].as_str().unwrap_or_default().to_string();
    let who = if line["tool"].is_string() {
        field("tool")
    } else {
        field("component")
    };
    let detail = match field("event").as_str() {
        "capability" => format!(
            "{} {} allowed={}",
            field("capability"),
            field("target"),
            line["allowed"]
        ),
        "secret-injected" => format!("{} {}", field("target"), field("header")),
        "policy-refusal" => field("reason"),
        "kill" => field("reason"),
        "auth-failure" => field("path"),
        "component-refused" => field("state"),
        _ => String::new(),
    };
    (field("event"), who, detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_run_is_audited_exactly_and_no_secret_leaks() {
    let with_secret = Server::start().await;
    let token = format!(
        "audit-secret-{}-{}",
        std::process::id(),
        with_secret.addr.port()
    );
    let target = format!("http://{}", with_secret.addr);
    let net_policy = format!(
        "[capabilities]\nhttp = [\"{target}\"]\nallow_private = true\n\
         [limits.http]\nmax_requests = 1\n\
         [secrets]\n\"{target}\" = {{ header = \"Authorization\", value = \"Bearer ${{file:token.txt}}\" }}\n"
    );
    let dir = common::tool_dir("net", artifacts::HTTP_PROBE, Some(&net_policy));
    std::fs::write(dir.path().join("token.txt"), format!("{token}\n")).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let calc = std::fs::read(artifacts::CALC).unwrap();
    std::fs::write(dir.path().join("calc.wasm"), version(&calc, "a1")).unwrap();
    std::fs::write(
        dir.path().join("calc.toml"),
        "[capabilities]\nread_dirs = { \"/data\" = \"data\" }\n",
    )
    .unwrap();
    std::fs::copy(artifacts::SLEEP, dir.path().join("sleep.wasm")).unwrap();
    std::fs::write(dir.path().join("sleep.toml"), "[limits]\ntimeout_ms = 50\n").unwrap();

    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("audit.log");
    let audit = Arc::new(AuditLog::open(&log_path, 1 << 20).unwrap());
    let catalog = Catalog::load_dir(&common::engine(), dir.path(), &common::load_options())
        .await
        .unwrap();
    assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
    audit.catalog_loaded(&catalog);
    let mut config = ExecConfig::default();
    config.audit = Some(audit.clone());
    let executor = Arc::new(Executor::with_config(Arc::new(catalog), config));
    let watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let mut changes = executor.catalog_changes();

    let tenant = || {
        let mut options = CallOptions::default();
        options.tenant = Some(Caller::new(Tenant::unlimited("acme")));
        options
    };
    let call = |tool: &'static str, input: Value| {
        let executor = executor.clone();
        let options = tenant();
        async move { executor.call_value(tool, &input, options).await }
    };
    // Allowed, with the secret, then over max_requests (one call); then off the list.
    let first = call(
        "net__count",
        json!({"url": with_secret.url("/echo"), "n": 2}),
    )
    .await;
    assert_eq!(first.outcome.kind(), "ok", "{}", first.outcome);
    call("net__request", json!({"url": "http://api.example.com/"})).await;
    let calc_call = call("calc", json!({"expression": "1+1"})).await;
    assert_eq!(calc_call.outcome.kind(), "ok");
    let killed = call("sleep", json!({"ms": 5000})).await;
    assert_eq!(killed.outcome.kind(), "timeout");

    // Authentication failure on the HTTP API.
    let server = toolhost::serve::Server::new(
        executor.clone(),
        &toolhost::serve::ServeConfig::default(),
        None,
    )
    .unwrap();
    let response = server
        .router()
        .oneshot(
            Request::get("/v1/tools")
                .header("authorization", "Bearer not-a-key")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A new version swaps in; then a broken file is refused.
    let replace = |bytes: &[u8]| {
        let temp = dir.path().join(".calc.partial");
        std::fs::write(&temp, bytes).unwrap();
        std::fs::rename(&temp, dir.path().join("calc.wasm")).unwrap();
    };
    replace(&version(&calc, "a2"));
    next_catalog(&mut changes).await;
    replace(b"\0asm not a component");
    next_catalog(&mut changes).await;
    drop(watch);

    let bytes = std::fs::read(&log_path).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the secret is in the audit log:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, String)> = lines.iter().map(summary).collect();
    let host = with_secret.addr.to_string();
    let expected: Vec<(String, String, String)> = [
        ("component-loaded", "calc", ""),
        ("component-loaded", "net", ""),
        ("component-loaded", "sleep", ""),
        (
            "capability",
            "net__count",
            &format!("http {target} allowed=true"),
        ),
        (
            "secret-injected",
            "net__count",
            &format!("{target} authorization"),
        ),
        (
            "policy-refusal",
            "net__count",
            "the call used up `limits.http.max_requests`",
        ),
        (
            "capability",
            "net__request",
            "http http://api.example.com:80 allowed=false",
        ),
        ("capability", "calc", "directory /data allowed=true"),
        ("kill", "sleep", "timeout"),
        ("auth-failure", "", "/v1/tools"),
        ("component-swapped", "calc", ""),
        ("component-refused", "calc", "kept-previous"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, expected, "{text}\n(server at {host})");

    // Every call event names its tenant, call and component version.
    let hash = executor
        .catalog()
        .component_hash("net__request")
        .unwrap()
        .to_string();
    let net_calls = lines
        .iter()
        .filter(|l| l["component"] == "net" && l["tool"].is_string());
    for line in net_calls {
        assert_eq!(line["tenant"], "acme", "{line}");
        assert_eq!(line["hash"], hash.as_str(), "{line}");
        assert!(
            line["call_id"].is_string() && line["time"].is_string(),
            "{line}"
        );
    }
    let swapped = lines
        .iter()
        .find(|l| l["event"] == "component-swapped")
        .unwrap();
    assert_ne!(swapped["from"], swapped["hash"]);
}

async fn next_catalog(changes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .expect("the folder change is picked up")
        .expect("the executor lives");
}

/// Anyone can fail to authenticate, as often as they like: a client with
/// no key must not rotate the earlier events out of the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_do_not_rotate_earlier_events_away() {
    let dir = common::tool_dir("calc", artifacts::CALC, None);
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("audit.log");
    let audit = Arc::new(AuditLog::open(&log_path, 64 << 10).unwrap());
    let catalog = Catalog::load_dir(&common::engine(), dir.path(), &common::load_options())
        .await
        .unwrap();
    audit.catalog_loaded(&catalog);
    let mut config = ExecConfig::default();
    config.audit = Some(audit.clone());
    let executor = Arc::new(Executor::with_config(Arc::new(catalog), config));
    let server = toolhost::serve::Server::new(
        executor.clone(),
        &toolhost::serve::ServeConfig::default(),
        None,
    )
    .unwrap();
    // With MCP: its endpoint answers 401 whatever the method, so a method
    // of the client's making reaches the audit line too.
    let router = toolhost::router_with_mcp(&server, toolhost::mcp::McpHttpConfig::default());
    let long_path = format!("/v1/tools/{}/call", "x".repeat(1024));
    let long_method = Method::from_bytes(&[b'X'; 200_000]).unwrap();
    for n in 0..3000 {
        let request = if n % 2 == 0 {
            Request::post(&long_path).body(Body::from("{}"))
        } else {
            Request::builder()
                .method(long_method.clone())
                .uri("/mcp")
                .body(Body::empty())
        };
        let response = router.clone().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The next failure written, once the burst has given a line back (10 s
    // on), says how many were left out.
    tokio::time::sleep(Duration::from_millis(10_100)).await;
    let response = router
        .clone()
        .oneshot(Request::get("/v1/tools").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut rotated = log_path.as_os_str().to_owned();
    rotated.push(".1");
    let text = [log_path.clone(), rotated.into()]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .collect::<Vec<_>>()
        .join("");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["event"] == "component-loaded"),
        "the event before the flood is gone: {} lines left",
        lines.len()
    );
    let failures: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "auth-failure")
        .collect();
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|l| l["path"].as_str().is_some_and(|p| p.len() < 300)),
        "paths are cut"
    );
    assert!(
        failures
            .iter()
            .all(|l| l["method"].as_str().is_some_and(|m| m.len() < 64)),
        "methods are cut"
    );
    let left_out: u64 = failures.iter().filter_map(|l| l["left_out"].as_u64()).sum();
    assert_eq!(
        left_out as usize + failures.len(),
        3001,
        "every failure is written or counted"
    );
}
