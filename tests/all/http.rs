//! Outbound HTTP through the policy, against real servers on 127.0.0.1:
//! allowed hosts work; unlisted hosts, redirects to them and loopback
//! without an explicit grant are denied without a byte reaching them; a
//! secret reaches only its host and never the guest; the HTTP limits hold.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use toolhost::{CallOptions, Executor, Outcome, ToolErrorKind};
use toolhost_artifacts as artifacts;

use crate::common::{load_dir, tool_dir};
use crate::server::Server;

/// The http-probe guest in a folder of its own as `net`, under `policy`.
async fn net(policy: Option<&str>) -> (tempfile::TempDir, Executor) {
    let dir = tool_dir("net", artifacts::HTTP_PROBE, policy);
    let executor = load_dir(dir.path()).await;
    assert!(
        executor.catalog().failures().is_empty(),
        "{:?}",
        executor.catalog().failures()
    );
    (dir, executor)
}

async fn request(executor: &Executor, input: Value) -> Value {
    let record = executor
        .call_value("net__request", &input, CallOptions::default())
        .await;
    record
        .outcome
        .output()
        .unwrap_or_else(|| panic!("net__request did not run: {}", record.outcome))
        .clone()
}

/// Everything logged at warn and above, for the whole test binary.
pub(crate) fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_denied(output: &Value) {
    assert_eq!(output["error"]["kind"], "denied", "{output}");
    assert!(output["status"].is_null(), "{output}");
}

const LOOPBACK: &str = "[capabilities]\nhttp = [\"http://127.0.0.1:*\"]\nallow_private = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_host_works() {
    let server = Server::start().await;
    let (_dir, executor) = net(Some(LOOPBACK)).await;

    let output = request(&executor, json!({"url": server.url("/json")})).await;
    assert_eq!(output["status"], 200, "{output}");
    assert_eq!(output["body"], r#"{"hello":"world"}"#);

    // The SDK's one-liner, through the whole stack.
    let record = executor
        .call_value(
            "net__get_json",
            &json!({"url": server.url("/json")}),
            CallOptions::default(),
        )
        .await;
    assert_eq!(
        record.outcome.output(),
        Some(&json!({"hello": "world"})),
        "{}",
        record.outcome
    );

    // A POST with a body arrives intact.
    let output = request(
        &executor,
        json!({"url": server.url("/echo"), "method": "POST", "body": "ping", "headers": {"x-guest": "yes"}}),
    )
    .await;
    let echoed: Value = serde_json::from_str(output["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["body"], "ping");
    assert_eq!(server.seen().len(), 3);
    assert_eq!(server.seen()[2].method, "POST");
    assert_eq!(server.seen()[2].header("x-guest"), Some("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_on_the_list_is_denied_and_never_contacted() {
    let allowed = Server::start().await;
    let other = Server::start().await;
    let policy = format!(
        "[capabilities]\nhttp = [\"http://{}\", \"api.example.com\"]\nallow_private = true\n",
        allowed.addr
    );
    let (_dir, executor) = net(Some(&policy)).await;

    // Same address, another port: not on the list.
    let logs = logs();
    let record = executor
        .call_value(
            "net__request",
            &json!({"url": other.url("/json")}),
            CallOptions::default(),
        )
        .await;
    assert_denied(record.outcome.output().expect("the probe ran"));
    // The refusal is logged with the tool, the call id and the target.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let line = logged
        .lines()
        .find(|l| l.contains(&record.call_id) && l.contains("outbound HTTP request denied"))
        .unwrap_or_else(|| panic!("no log line for call {}: {logged}", record.call_id));
    assert!(line.contains("tool=net__request"), "{line}");
    assert!(line.contains(&other.addr.to_string()), "{line}");
    // A name that is not listed: refused before any lookup.
    assert_denied(&request(&executor, json!({"url": "http://not-listed.example.org/"})).await);
    // A listed name with the wrong scheme-default port.
    assert_denied(&request(&executor, json!({"url": "https://api.example.com:8443/"})).await);
    assert!(other.seen().is_empty(), "the unlisted server was contacted");

    // The SDK's one-liner turns the refusal into a `denied` tool error.
    let record = executor
        .call_value(
            "net__get_json",
            &json!({"url": other.url("/json")}),
            CallOptions::default(),
        )
        .await;
    match &record.outcome {
        Outcome::ToolError {
            error: ToolErrorKind::Denied,
            message,
        } => {
            assert!(message.contains(&other.addr.to_string()), "{message}");
            assert!(message.contains("policy"), "{message}");
        }
        other => panic!("expected a denied tool error, got {other}"),
    }
    // The listed one still works.
    assert_eq!(
        request(&executor, json!({"url": allowed.url("/json")})).await["status"],
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_policy_every_request_is_denied() {
    let server = Server::start().await;
    let (_dir, executor) = net(None).await;
    assert_denied(&request(&executor, json!({"url": server.url("/json")})).await);
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_host_not_on_the_list_is_denied() {
    let allowed = Server::start().await;
    let elsewhere = Server::start().await;
    let policy = format!(
        "[capabilities]\nhttp = [\"http://{}\"]\nallow_private = true\n",
        allowed.addr
    );
    let (_dir, executor) = net(Some(&policy)).await;
    let url = allowed.url(&format!("/redirect?to={}", elsewhere.url("/json")));

    // The host does not follow redirects: the guest sees the 302 itself.
    let output = request(&executor, json!({"url": url})).await;
    assert_eq!(output["status"], 302, "{output}");
    assert_eq!(output["headers"]["location"], elsewhere.url("/json"));

    // Following it is a new request, checked like any other.
    let output = request(&executor, json!({"url": url, "follow": 5})).await;
    assert_denied(&output);
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect target was contacted"
    );
    assert_eq!(allowed.seen().len(), 2);

    // A redirect that stays on the list is followed.
    let same = allowed.url(&format!("/redirect?to={}", allowed.url("/json")));
    let output = request(&executor, json!({"url": same, "follow": 5})).await;
    assert_eq!(output["status"], 200, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_without_an_explicit_grant_is_denied() {
    let server = Server::start().await;
    let policy = "[capabilities]\nhttp = [\"http://127.0.0.1:*\", \"http://localhost:*\", \"http://[::1]:*\"]\n";
    let (_dir, executor) = net(Some(policy)).await;
    let port = server.addr.port();
    for url in [
        server.url("/json"),
        format!("http://localhost:{port}/json"),
        format!("http://[::1]:{port}/json"),
    ] {
        let output = request(&executor, json!({"url": url})).await;
        assert_denied(&output);
    }
    assert!(
        server.seen().is_empty(),
        "loopback was reached without allow_private"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_its_host_only_and_the_guest_never_sees_it() {
    let with_secret = Server::start().await;
    let without = Server::start().await;
    let token = format!("tok-{}-{}", std::process::id(), with_secret.addr.port());
    let policy = format!(
        "[capabilities]\nhttp = [\"http://127.0.0.1:*\"]\nallow_private = true\n\n\
         [secrets]\n\"http://{}\" = {{ header = \"Authorization\", value = \"Bearer ${{file:token.txt}}\" }}\n",
        with_secret.addr
    );
    let dir = tool_dir("net", artifacts::HTTP_PROBE, Some(&policy));
    std::fs::write(dir.path().join("token.txt"), format!("{token}\n")).unwrap();
    let executor = load_dir(dir.path()).await;
    assert!(
        executor.catalog().failures().is_empty(),
        "{:?}",
        executor.catalog().failures()
    );

    let mut everything_the_guest_saw = Vec::new();
    // The echo server repeats the request headers in its body and a header.
    let echoed = request(&executor, json!({"url": with_secret.url("/echo")})).await;
    everything_the_guest_saw.push(echoed.clone());
    // The guest tries to set the header itself: the host's value wins.
    let overridden = request(
        &executor,
        json!({"url": with_secret.url("/echo"), "headers": {"authorization": "Bearer guest-made"}}),
    )
    .await;
    everything_the_guest_saw.push(overridden);
    // Another allowed host, not the secret's.
    everything_the_guest_saw.push(request(&executor, json!({"url": without.url("/echo")})).await);
    // Error texts: a denied host, a refused connection, an oversized answer.
    everything_the_guest_saw
        .push(request(&executor, json!({"url": "http://denied.example.org/"})).await);
    everything_the_guest_saw.push(request(&executor, json!({"url": "http://127.0.0.1:9/"})).await);

    // The host added it on the way out, on the secret's host only.
    let seen = with_secret.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
    }
    assert!(without.seen()[0].header("authorization").is_none());

    // The echo came back redacted, in the body and in the header.
    assert_eq!(echoed["status"], 200);
    let body = echoed["body"].as_str().unwrap();
    assert!(body.contains("[REDACTED]"), "{body}");
    assert_eq!(echoed["headers"]["x-echo-authorization"], "[REDACTED]");
    // No environment either.
    assert_eq!(echoed["env"], json!({}));

    let all = serde_json::to_string(&everything_the_guest_saw).unwrap();
    assert!(!all.contains(&token), "the guest saw the secret: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_secret_is_injected_and_hidden_too() {
    // cargo sets CARGO_PKG_NAME for the test process; it stands in for a key.
    let server = Server::start().await;
    let policy = format!(
        "[capabilities]\nhttp = [\"http://{0}\"]\nallow_private = true\n\
         [secrets]\n\"http://{0}\" = {{ header = \"X-Api-Key\", value = \"${{env:CARGO_PKG_NAME}}\" }}\n",
        server.addr
    );
    let (_dir, executor) = net(Some(&policy)).await;
    let output = request(&executor, json!({"url": server.url("/echo")})).await;
    assert_eq!(
        server.seen()[0].header("x-api-key"),
        Some(env!("CARGO_PKG_NAME"))
    );
    assert!(
        !output.to_string().contains(env!("CARGO_PKG_NAME")),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_limits_hold() {
    let server = Server::start().await;
    let policy = format!(
        "{LOOPBACK}\n[limits.http]\nmax_requests = 2\nmax_response_kb = 16\ntimeout_ms = 3000\n"
    );
    let (_dir, executor) = net(Some(&policy)).await;

    let record = executor
        .call_value(
            "net__count",
            &json!({"url": server.url("/json"), "n": 4}),
            CallOptions::default(),
        )
        .await;
    let output = record.outcome.output().expect("count ran");
    assert_eq!(output["ok"], 2, "{output}");
    assert_eq!(output["errors"].as_array().unwrap().len(), 2);
    assert!(
        output["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{output}"
    );
    assert_eq!(server.seen().len(), 2);

    // The budget is per call: the next call starts afresh.
    let big = request(&executor, json!({"url": server.url("/big")})).await;
    assert_eq!(big["error"]["kind"], "failed", "{big}");
    assert!(
        big["error"]["message"].as_str().unwrap().contains("larger"),
        "{big}"
    );

    let slow = request(&executor, json!({"url": server.url("/slow")})).await;
    assert_eq!(slow["error"]["kind"], "retryable", "{slow}");
    assert!(
        slow["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in time"),
        "{slow}"
    );
}

/// A response to a request that carries a secret is redacted as it
/// streams, not read whole into host memory first (and copied there, once
/// per step of the redaction): an 8 MiB answer must not take the host's
/// heap, whatever the guest does with it. Read on one thread, where the
/// server, the executor and the guest run alone.
#[tokio::test]
async fn a_large_answer_to_a_secret_bearing_request_streams_through() {
    let server = Server::start().await;
    let policy = format!(
        "[capabilities]\nhttp = [\"http://{0}\"]\nallow_private = true\n\n\
         [limits.http]\nmax_response_kb = 16384\n\n\
         [secrets]\n\"http://{0}\" = {{ header = \"Authorization\", value = \"Bearer ${{file:token.txt}}\" }}\n",
        server.addr
    );
    let dir = tool_dir("net", artifacts::HTTP_PROBE, Some(&policy));
    std::fs::write(dir.path().join("token.txt"), "tok-streamed\n").unwrap();
    let executor = load_dir(dir.path()).await;
    assert!(
        executor.catalog().failures().is_empty(),
        "{:?}",
        executor.catalog().failures()
    );
    let _ = crate::heap::peak_since_last();
    let record = executor
        .call_value(
            "net__count",
            &json!({"url": server.url("/huge"), "n": 1}),
            CallOptions::default(),
        )
        .await;
    let peak = crate::heap::peak_since_last();
    let output = record.outcome.output().cloned();
    assert_eq!(
        output,
        Some(json!({"ok": 1, "errors": []})),
        "{}",
        record.outcome
    );
    assert!(
        peak < 4 << 20,
        "the host's heap rose by {} MiB for an 8 MiB answer",
        peak >> 20
    );
    // What reaches the guest is still redacted.
    let echoed = request(&executor, json!({"url": server.url("/echo")})).await;
    assert!(!echoed.to_string().contains("tok-streamed"), "{echoed}");
}
