//! Schemas as host work: a tool's schemas are measured at load, a costly one
//! is refused with the tool's name and the limit (the component's other tools
//! still load), checks run under the call's deadline off the async workers,
//! and output that breaks the declared output schema is not `ok`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use toolhost::serve::{ServeConfig, Server, hash_key};
use toolhost::{CallOptions, LoadError, Outcome};
use tower::ServiceExt;

use crate::common::{call, call_with, executor, host_still_serves};

const KEY: &str = "schema-key-0123456789";

/// `guest_schema_bomb__heavy`'s input with this many items is just under
/// what its schema is checked on, and every item passes every branch, so
/// no check is skipped.
const HEAVY_ITEMS: usize = 1_900;

fn heavy_input() -> Value {
    json!({"xs": vec![0; HEAVY_ITEMS]})
}

fn refusal(tool: &str) -> String {
    let catalog = executor().catalog();
    catalog
        .failures()
        .iter()
        .find_map(|failure| match failure {
            LoadError::Tool { tool: t, .. } if t == tool => Some(failure.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("`{tool}` was not refused: {:?}", catalog.failures()))
}

#[tokio::test]
async fn a_schema_bomb_is_refused_at_load_and_the_other_tools_load() {
    let catalog = executor().catalog();
    for tool in ["bomb", "regex"] {
        assert!(
            catalog
                .tool(&format!("guest_schema_bomb__{tool}"))
                .is_none()
        );
    }
    let bomb = refusal("bomb");
    assert!(
        bomb.contains("schema_bomb") && bomb.contains("`bomb`") && bomb.contains("20000"),
        "{bomb}"
    );
    assert!(bomb.contains("keyword checks"), "{bomb}");
    let regex = refusal("regex");
    assert!(
        regex.contains("look-around") || regex.contains("not a valid JSON Schema"),
        "{regex}"
    );
    for tool in ["ordinary", "heavy", "bad_output"] {
        assert!(
            catalog
                .tool(&format!("guest_schema_bomb__{tool}"))
                .is_some(),
            "{tool}"
        );
    }
    let record = call("guest_schema_bomb__ordinary", json!({"text": "hi"})).await;
    assert_eq!(record.outcome.output(), Some(&json!({"text": "hi"})));
    // The component loaded: only its tools were refused.
    let status = catalog.status();
    let component = status
        .iter()
        .find(|s| s.component == "guest_schema_bomb")
        .expect("listed");
    assert_eq!(component.state, toolhost::ComponentState::Loaded);
    assert!(
        component
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("`bomb`")
    );
}

#[tokio::test]
async fn output_that_breaks_the_output_schema_is_not_ok() {
    let record = call("guest_schema_bomb__bad_output", json!({})).await;
    let Outcome::Trap { message } = &record.outcome else {
        panic!("{}", record.outcome);
    };
    assert!(
        message.contains("does not match the tool's output schema") && message.contains("/n"),
        "{message}"
    );
    host_still_serves().await;
}

#[tokio::test]
async fn a_deadline_ends_a_long_schema_check() {
    let options = CallOptions::default().timeout(Duration::from_millis(1));
    let record = call_with("guest_schema_bomb__heavy", heavy_input(), options).await;
    let Outcome::Timeout { message } = &record.outcome else {
        panic!("{}", record.outcome);
    };
    assert!(message.contains("checked against the schema"), "{message}");
    // Without a short deadline the same input is checked to its end.
    let record = call("guest_schema_bomb__heavy", heavy_input()).await;
    assert!(record.outcome.is_ok(), "{}", record.outcome);
    host_still_serves().await;
}

#[tokio::test]
async fn input_past_what_the_schema_is_checked_on_is_refused_unchecked() {
    let record = call(
        "guest_schema_bomb__heavy",
        json!({"xs": vec![0; 20 * HEAVY_ITEMS]}),
    )
    .await;
    let Outcome::InvalidInput { message } = &record.outcome else {
        panic!("{}", record.outcome);
    };
    assert!(message.contains("is checked on at most"), "{message}");
}

fn server() -> Server {
    let text = format!(
        r#"
[[tenant]]
name = "schemas"
keys = ["{key}"]
tools = ["guest_schema_bomb__*"]
"#,
        key = hash_key(KEY),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, text).unwrap();
    Server::new(executor(), &ServeConfig::load(&path).unwrap(), None).unwrap()
}

/// On this test's single-threaded runtime, a check made on the async worker
/// would run to its end before `/healthz` could answer.
#[tokio::test]
async fn healthz_answers_while_a_heavy_check_runs() {
    let router = server().router();
    let request = Request::post("/v1/tools/guest_schema_bomb__heavy/call")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(heavy_input().to_string()))
        .unwrap();
    let heavy = tokio::spawn(router.clone().oneshot(request));
    // Let the heavy call start its check.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let started = Instant::now();
    let health = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        !heavy.is_finished(),
        "/healthz answered only after the heavy check ({:?})",
        started.elapsed()
    );
    let ordinary = Request::post("/v1/tools/guest_schema_bomb__ordinary/call")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"text":"meanwhile"}"#))
        .unwrap();
    let response = router.clone().oneshot(ordinary).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !heavy.is_finished(),
        "another call waited for the heavy check"
    );
    let response = heavy.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The figure for the report: how long the costliest accepted schema takes
/// on the largest input it is checked on.
/// Run with: `cargo test --release -p toolhost-tests --test all schema::worst_accepted_check -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn worst_accepted_check() {
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let record = call("guest_schema_bomb__heavy", heavy_input()).await;
        times.push(start.elapsed());
        assert!(record.outcome.is_ok(), "{}", record.outcome);
    }
    times.sort();
    println!(
        "heavy: {} bytes of input, checks took min {:?}, median {:?}, max {:?}",
        heavy_input().to_string().len(),
        times[0],
        times[2],
        times[4]
    );
}
