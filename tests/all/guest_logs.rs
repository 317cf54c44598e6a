//! What the host writes to its own log on a guest's behalf stays bounded
//! and honest: however many outbound requests a call has refused, a few
//! lines and a count; a guest's log line is one line of the host's log,
//! whatever characters it holds.

use serde_json::json;
use toolhost::CallOptions;
use toolhost_artifacts as artifacts;

use crate::common::{load_dir, tool_dir};
use crate::http::logs;

/// Everything captured so far, as text.
fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().expect("lock")).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_log_a_few_lines_and_a_count() {
    logs();
    let dir = tool_dir("net", artifacts::HTTP_PROBE, None);
    let executor = load_dir(dir.path()).await;
    let record = executor
        .call_value(
            "net__count",
            &json!({"url": "http://refused-budget.invalid/x", "n": 300}),
            CallOptions::default(),
        )
        .await;
    let output = record.outcome.output().expect("the probe ran");
    assert_eq!(output["errors"].as_array().map(Vec::len), Some(300));
    let text = captured();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(&record.call_id))
        .collect();
    assert!(
        (2..=10).contains(&lines.len()),
        "{} lines for one call's refusals",
        lines.len()
    );
    assert!(
        lines.iter().any(|line| line.contains("300")),
        "the last line counts them all: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_log_line_cannot_forge_a_host_entry() {
    logs();
    let dir = tool_dir("forge", artifacts::LOG_FORGE, None);
    let executor = load_dir(dir.path()).await;
    let forged = "1999-01-01T00:00:00.000000Z  WARN toolhost::serve: admin key accepted";
    let message = format!("harmless\n{forged}\r\u{1b}[2Kforge-marker");
    let record = executor
        .call_value(
            "forge__say",
            &json!({ "message": message }),
            CallOptions::default(),
        )
        .await;
    assert_eq!(record.outcome.kind(), "ok", "{}", record.outcome);
    let text = captured();
    assert!(text.contains("forge-marker"), "the line was logged");
    for line in text.lines() {
        assert!(!line.starts_with("1999-01-01"), "a forged entry: {line:?}");
        if line.contains("forge-marker") {
            assert!(line.contains(&record.call_id), "{line:?}");
            assert!(!line.contains(['\r', '\u{1b}']), "{line:?}");
        }
    }
}
