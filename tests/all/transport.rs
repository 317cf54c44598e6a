//! Hostile clients over real transports: `toolhost serve` and `toolhost mcp`
//! as processes, driven through loopback sockets and pipes the way a client
//! that hangs up, stops reading or is told to stop would drive them. What is
//! asserted is how each call ends, what the server counted, its memory
//! (`/proc`) and that it still answers; never how long anything took.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use toolhost_artifacts as artifacts;

use crate::common::{self, Served};

/// `misbehave` with one call at a time, refused (not queued) past it, and
/// budgets no test reaches: only the client can end a `spin` early.
const ONE_AT_A_TIME: &str = "[limits]\ntimeout_ms = 600000\nfuel = 1_000_000_000_000_000\n\
                             max_concurrency = 1\non_limit = \"reject\"\n";

/// The sum of the `/metrics` counters of `tool` that ended `outcome`.
fn counted(metrics: &str, tool: &str, outcome: &str) -> u64 {
    let tool = format!("tool=\"{tool}\"");
    let outcome = format!("outcome=\"{outcome}\"}}");
    metrics
        .lines()
        .filter(|l| l.starts_with("toolhost_calls_total{") && l.contains(&tool))
        .filter(|l| l.contains(&outcome))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `/metrics` for up to a minute until `done` holds.
async fn wait_for_metrics(served: &Served, what: &str, done: impl Fn(&str) -> bool) {
    let mut metrics = String::new();
    for _ in 0..3000 {
        metrics = served.metrics().await;
        if done(&metrics) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {what}:\n{metrics}");
}

/// A raw HTTP/1.1 POST written to a fresh socket, which the caller closes.
async fn post_raw(served: &Served, path: &str, body: &str) -> tokio::net::TcpStream {
    let address = served.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    socket
}

/// A client that closes its socket while its plain (not streaming) call
/// runs cancels that call at once: counted `cancelled`, and the tool's only
/// slot is free for the next call, which gets a record, not a 429. Without
/// the cancellation the spin would hold the slot for its 10-minute deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_its_call_at_once() {
    let tools = common::tool_dir("misbehave", artifacts::MISBEHAVE, Some(ONE_AT_A_TIME));
    let served = common::spawn_serve(tools.path(), &[]).await;
    let spin = json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "misbehave__spin", "arguments": "{}"}}]});
    let requests = [
        ("/v1/tools/misbehave__spin/call", "{}".to_string()),
        ("/v1/tool-calls", spin.to_string()),
    ];
    let client = common::http_client();
    for (hung_up, (path, body)) in (1..).zip(requests) {
        let socket = post_raw(&served, path, &body).await;
        wait_for_metrics(&served, "in flight", |m| {
            m.lines().any(|l| l == "toolhost_in_flight 1")
        })
        .await;
        drop(socket);
        wait_for_metrics(&served, "counted cancelled", |m| {
            counted(m, "misbehave__spin", "cancelled") == hung_up
        })
        .await;
        // The same component's one slot is free again.
        let response = client
            .post(served.url("/v1/tools/misbehave__busy/call"))
            .header("content-type", "application/json")
            .body(r#"{"iterations": 1000}"#)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        let text = response.text().await.expect("a body");
        let record: Value = serde_json::from_str(&text).expect("a record");
        assert_eq!(record["outcome"], "ok", "{path}: {record}");
    }
    let metrics = served.metrics().await;
    assert_eq!(counted(&metrics, "misbehave__spin", "timeout"), 0);
    assert!(metrics.lines().any(|l| l == "toolhost_in_flight 0"));
}

/// `schema-bomb` as `schema_bomb`, with room for several heavy checks.
const SCHEMAS: &str = "[limits]\ntimeout_ms = 120000\n";

/// SIGTERM while calls wait for and run costly input checks (off the async
/// workers, at most one per core): the server stops taking requests, every
/// call it took is answered, and it exits 0 once they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_costly_input_checks_drains_and_exits_cleanly() {
    let tools = common::tool_dir("schema_bomb", artifacts::SCHEMA_BOMB, Some(SCHEMAS));
    let served = common::spawn_serve(tools.path(), &[]).await;
    // Just under what the heavy schema is checked on: every item passes
    // every branch, so no check is cut short.
    let input = json!({"xs": vec![0; 1_900]}).to_string();
    let client = common::http_client();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (client, url, input) = (
                client.clone(),
                served.url("/v1/tools/schema_bomb__heavy/call"),
                input.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(input)
                    .send()
                    .await?;
                let text = response.text().await?;
                Ok::<Value, reqwest::Error>(serde_json::from_str(&text).expect("a record"))
            })
        })
        .collect();
    // The requests are on their way (not an assertion: whichever calls the
    // server took before the signal must be answered, and the others
    // refused, never lost).
    tokio::time::sleep(Duration::from_millis(150)).await;
    served.terminate();
    let mut answered = 0;
    for call in calls {
        match call.await.expect("the client task") {
            Ok(record) => {
                assert_eq!(record["outcome"], "ok", "{record}");
                answered += 1;
            }
            // Sent after the listener closed.
            Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
        }
    }
    let exit = served.exit_within(Duration::from_secs(180)).await;
    assert!(
        exit.success(),
        "the server exits cleanly after draining: {exit}"
    );
    assert!(answered >= 1, "no call was in flight when the signal came");
}

/// `toolhost mcp` on stdio, as a process whose pipes the test holds.
struct McpProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl McpProcess {
    fn start(tools: &std::path::Path) -> Self {
        let mut child = Command::new(common::toolhost_bin())
            .arg("mcp")
            .arg("--tools")
            .arg(tools)
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start toolhost mcp");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut mcp = Self {
            child,
            stdin,
            stdout,
        };
        mcp.send(
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "slow-reader", "version": "0"}}}),
        );
        mcp.answer(0);
        mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    /// Reads messages until the answer to `id`; returns it and how many
    /// other messages (notifications) came before it.
    fn answer(&mut self, id: u64) -> (Value, usize) {
        let mut others = 0;
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).expect("read the server");
            assert!(read > 0, "the server closed stdout before answering {id}");
            let message: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if message["id"] == id {
                return (message, others);
            }
            others += 1;
        }
    }

    fn vm_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `misbehave` whose calls end by a 3 s deadline, whatever fuel they burn.
const FLOOD_POLICY: &str = "[limits]\ntimeout_ms = 3000\nfuel = 1_000_000_000_000_000\n";

/// An MCP client that asks for progress on a tool reporting it in a tight
/// loop, then stops reading: the call still ends by its own deadline, the
/// server's memory stays bounded (reports are coalesced, never queued), and
/// once the client reads again it gets the result and the server answers
/// its next request.
#[test]
fn an_mcp_client_that_stops_reading_progress_does_not_hold_the_server() {
    const MIB_KIB: u64 = 1024;
    let tools = common::tool_dir("misbehave", artifacts::MISBEHAVE, Some(FLOOD_POLICY));
    let mut mcp = McpProcess::start(tools.path());
    let baseline = mcp.vm_rss_kib();
    mcp.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "misbehave__flood_host",
        // Every report claims to be finished, as a guest would that tries
        // to slip past the host's coalescing.
        "arguments": {"progress": 1_000_000_000_000u64, "finished": true},
        "_meta": {"progressToken": "flood"}}}),
    );
    // Not reading: the pipe fills and the server's writes block. Sample the
    // server's memory past the call's deadline.
    let mut peak = baseline;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(mcp.vm_rss_kib());
    }
    assert!(
        peak < baseline + 256 * MIB_KIB,
        "the server grew from {} MiB to {} MiB while the client did not read",
        baseline / MIB_KIB,
        peak / MIB_KIB
    );
    let (answer, notifications) = mcp.answer(1);
    let result = &answer["result"];
    assert_eq!(result["isError"], true, "{answer}");
    let text = result["content"][0]["text"].as_str().expect("a text block");
    let record: Value = serde_json::from_str(text).expect("the outcome as JSON");
    assert!(
        ["timeout", "out-of-fuel"].contains(&record["outcome"].as_str().unwrap_or_default()),
        "the call ends by its own budget: {record}"
    );
    assert!(notifications >= 1, "some progress went out");
    mcp.send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "misbehave__busy", "arguments": {"iterations": 10}}}),
    );
    let (answer, _) = mcp.answer(2);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

/// `flood-list` with a 16 MiB output cap, so its lift budget is wasmtime's
/// own 128 MiB ceiling (8 times the cap).
const BIG_CAP: &str = "[limits]\nmax_output_kb = 16384\nmemory_mb = 64\n";
const MIB: u64 = 1 << 20;

/// A plain export returning 262,144 strings that alias one 400-byte buffer:
/// about 110 MB of host values once lifted (within the lift budget), whose
/// JSON would be 105 MB, over the 16 MiB output cap. The JSON is written
/// from the lifted values under the cap, so it stops at the cap; building a
/// JSON tree of the values first would cost the server as much again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_export_result_stops_at_the_output_cap_while_written() {
    let tools = common::tool_dir("flood_list", artifacts::FLOOD_LIST, Some(BIG_CAP));
    let served = common::spawn_serve(tools.path(), &[]).await;
    let client = common::http_client();
    let call = |count: u64| {
        let (client, url) = (
            client.clone(),
            served.url("/v1/tools/flood_list__aliased/call"),
        );
        async move {
            let body = json!({"count": count, "bytes": 400}).to_string();
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("an answer");
            let text = response.text().await.expect("a body");
            serde_json::from_str::<Value>(&text).expect("a record")
        }
    };
    let small = call(3).await;
    assert_eq!(small["outcome"], "ok", "{small}");
    let before = served.status_kib("VmHWM:") << 10;
    let record = call(262_144).await;
    let after = served.status_kib("VmHWM:") << 10;
    assert_eq!(record["outcome"], "output-too-large", "{record}");
    let message = record["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("over the limit of 16777216 bytes"),
        "refused while written, not at the lift boundary: {message}"
    );
    let grew = after.saturating_sub(before);
    eprintln!(
        "server peak grew by {} MiB (lift budget 128 MiB, output cap 16 MiB)",
        grew / MIB
    );
    // The lifted values (at most the lift budget) and the capped text (a
    // buffer that doubles up to the cap), with room to spare; a JSON tree of
    // the values would add about 110 MB more.
    assert!(
        grew < (128 + 2 * 16 + 40) * MIB,
        "the server's peak grew by {} MiB",
        grew / MIB
    );
    let small = call(2).await;
    assert_eq!(small["outcome"], "ok", "{small}");
}

/// `toolhost mcp` started the way Node starts a child (its stdin and stdout
/// are Unix sockets, not pipes) is served, and reads its input as a
/// non-blocking socket rather than through tokio's blocking stdin (which
/// hands every read to another thread): fd 0 carries `O_NONBLOCK`.
#[test]
fn mcp_over_unix_sockets_is_served_from_non_blocking_sockets() {
    use std::os::unix::net::UnixStream;

    let tools = common::tool_dir("calc", artifacts::CALC, None);
    let (ours_in, theirs_in) = UnixStream::pair().expect("a socket pair");
    let (ours_out, theirs_out) = UnixStream::pair().expect("a socket pair");
    let mut child = Command::new(common::toolhost_bin())
        .arg("mcp")
        .arg("--tools")
        .arg(tools.path())
        .arg("--cache-dir")
        .arg(common::cache_dir())
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::null())
        .spawn()
        .expect("start toolhost mcp");
    let mut input = ours_in;
    let mut output = BufReader::new(ours_out);
    let mut ask = |message: Value, id: Option<u64>| -> Value {
        writeln!(input, "{message}").expect("write to the server");
        let Some(id) = id else {
            return Value::Null;
        };
        let mut line = String::new();
        loop {
            line.clear();
            let read = output.read_line(&mut line).expect("read the server");
            assert!(
                read > 0,
                "the server closed its output before answering {id}"
            );
            let answer: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if answer["id"] == id {
                return answer;
            }
        }
    };
    let init = ask(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "node-like", "version": "0"}}}),
        Some(0),
    );
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    ask(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        None,
    );
    for id in 1..=20 {
        let answer = ask(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "calc", "arguments": {"expression": format!("{id} * 2")}}}),
            Some(id),
        );
        assert_eq!(
            answer["result"]["structuredContent"]["value"],
            json!(id * 2),
            "{answer}"
        );
    }
    let fdinfo = std::fs::read_to_string(format!("/proc/{}/fdinfo/0", child.id()))
        .expect("the server's fdinfo");
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|octal| u32::from_str_radix(octal.trim(), 8).ok())
        .expect("fd 0's flags");
    const O_NONBLOCK: u32 = 0o4000;
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(
        flags & O_NONBLOCK,
        0,
        "stdin is read with blocking reads (flags {flags:o})"
    );
}
