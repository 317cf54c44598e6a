//! The bundled `fetch`, `http_json` and `files` tools through the host:
//! working under a policy that grants them, `denied` without one.

use serde_json::{Value, json};
use toolhost::{CallOptions, Executor, Outcome, ToolErrorKind};
use toolhost_artifacts as artifacts;

use crate::common::{load_dir, tool_dir};
use crate::server::Server;

async fn load(name: &str, wasm: &str, policy: Option<&str>) -> (tempfile::TempDir, Executor) {
    let dir = tool_dir(name, wasm, policy);
    if name == "files" {
        std::fs::create_dir_all(dir.path().join("docs/notes")).unwrap();
        std::fs::write(
            dir.path().join("docs/readme.md"),
            "# Title\nhello world\nbye\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("docs/notes/todo.txt"),
            "buy milk\nsay Hello\n",
        )
        .unwrap();
    }
    let executor = load_dir(dir.path()).await;
    assert!(
        executor.catalog().failures().is_empty(),
        "{:?}",
        executor.catalog().failures()
    );
    (dir, executor)
}

async fn call(executor: &Executor, tool: &str, input: Value) -> Outcome {
    executor
        .call_value(tool, &input, CallOptions::default())
        .await
        .outcome
}

fn ok(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Ok { output } => output,
        other => panic!("expected ok, got {other}"),
    }
}

fn assert_denied(outcome: &Outcome) {
    assert!(
        matches!(
            outcome,
            Outcome::ToolError {
                error: ToolErrorKind::Denied,
                ..
            }
        ),
        "expected denied, got {outcome}"
    );
}

const LOOPBACK: &str = "[capabilities]\nhttp = [\"http://127.0.0.1:*\"]\nallow_private = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reduces_a_page_to_text() {
    let server = Server::start().await;
    let (_dir, executor) = load("fetch", artifacts::FETCH, Some(LOOPBACK)).await;
    let output = ok(call(&executor, "fetch", json!({"url": server.url("/html")})).await);
    assert_eq!(output["status"], 200);
    assert_eq!(output["content_type"], "text/html");
    assert_eq!(output["title"], "Test page");
    assert_eq!(
        output["text"],
        "Hello\n\nFrom the loopback server & friends."
    );
    assert_eq!(output["truncated"], false);

    let cut = ok(call(
        &executor,
        "fetch",
        json!({"url": server.url("/html"), "max_chars": 5}),
    )
    .await);
    assert_eq!(cut["text"], "Hello");
    assert_eq!(cut["truncated"], true);

    let missing = call(
        &executor,
        "fetch",
        json!({"url": server.url("/status/404")}),
    )
    .await;
    assert!(
        matches!(&missing, Outcome::ToolError { error: ToolErrorKind::Failed, message } if message.contains("404")),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_network_tools_without_a_policy_are_denied() {
    let server = Server::start().await;
    let (_a, fetch) = load("fetch", artifacts::FETCH, None).await;
    assert_denied(&call(&fetch, "fetch", json!({"url": server.url("/html")})).await);
    let (_b, api) = load("http_json", artifacts::HTTP_JSON, None).await;
    assert_denied(&call(&api, "http_json", json!({"url": server.url("/json")})).await);
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_calls_an_api() {
    let server = Server::start().await;
    let (_dir, executor) = load("http_json", artifacts::HTTP_JSON, Some(LOOPBACK)).await;
    let output = ok(call(
        &executor,
        "http_json",
        json!({"url": server.url("/echo"), "method": "POST", "query": {"q": "a b", "n": 2},
               "headers": {"x-trace": "t1"}, "body": {"name": "ada"}}),
    )
    .await);
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(output["json"]["method"], "POST");
    let sent: Value = serde_json::from_str(output["json"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"name": "ada"}));
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/echo?n=2&q=a%20b");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-trace"), Some("t1"));

    // A 4xx is an answer the model can read; a 5xx is retryable.
    let not_found = ok(call(
        &executor,
        "http_json",
        json!({"url": server.url("/status/404")}),
    )
    .await);
    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["json"], json!({"status": 404}));
    let failing = call(
        &executor,
        "http_json",
        json!({"url": server.url("/status/503")}),
    )
    .await;
    assert!(
        matches!(
            failing,
            Outcome::ToolError {
                error: ToolErrorKind::Retryable,
                ..
            }
        ),
        "{failing}"
    );
}

#[tokio::test]
async fn files_lists_reads_and_greps_its_grant_only() {
    let policy = "[capabilities]\nread_dirs = { \"/docs\" = \"docs\" }\n";
    let (_dir, executor) = load("files", artifacts::FILES, Some(policy)).await;

    let roots = ok(call(&executor, "files__list", json!({})).await);
    let names: Vec<&str> = roots["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/docs/notes", "/docs/readme.md"]);
    let all = ok(call(&executor, "files__list", json!({"recursive": true})).await);
    assert_eq!(all["entries"].as_array().unwrap().len(), 3);

    let read = ok(call(
        &executor,
        "files__read",
        json!({"path": "/docs/readme.md", "max_bytes": 7}),
    )
    .await);
    assert_eq!(read["text"], "# Title");
    assert_eq!(read["truncated"], true);
    assert_eq!(read["size"], 24);

    let found = ok(call(
        &executor,
        "files__grep",
        json!({"pattern": "hello", "ignore_case": true}),
    )
    .await);
    let hits: Vec<(String, u64)> = found["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        hits,
        [
            ("/docs/notes/todo.txt".to_string(), 2),
            ("/docs/readme.md".to_string(), 2)
        ]
    );

    for path in ["/docs/../files.toml", "/etc/passwd", "docs/readme.md"] {
        let outcome = call(&executor, "files__read", json!({"path": path})).await;
        assert!(
            matches!(outcome, Outcome::ToolError { .. }),
            "{path}: {outcome}"
        );
    }
}

#[tokio::test]
async fn files_without_a_grant_is_denied() {
    let (_dir, executor) = load("files", artifacts::FILES, None).await;
    assert_denied(&call(&executor, "files__list", json!({})).await);
    assert_denied(&call(&executor, "files__read", json!({"path": "/etc/passwd"})).await);
}
