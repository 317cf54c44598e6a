//! MCP with a client we did not write: the official MCP Python SDK
//! (`tests/mcp/client.py`) against `toolhost mcp` on stdio and against the
//! streamable HTTP service mounted in axum on 127.0.0.1, each both with the
//! `initialize` handshake (protocol 2025-11-25) and without it (2026-07-28,
//! `server/discover`). The script runs one scenario and prints what it saw
//! as JSON; the assertions are here.
//!
//! The pinned SDK is installed by the tests themselves, once, with
//! `pip install --target` into `target/python/mcp-2.3.0` (see
//! [`sdk_dir`]): nothing outside `target/` changes. Python 3 with pip is a
//! prerequisite; without it these tests fail and say so.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use toolhost::{Catalog, Executor};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, cache_dir, engine, load_options, toolhost_bin};

/// The script prints this line when it waits for `tools/list_changed`.
const WAITING: &str = "waiting for tools/list_changed";

/// `calc` and `sleep`; `sleep` may run one call at a time and refuses others,
/// so a cancelled call that still ran would keep the next one out.
fn tools_dir(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for wasm in [artifacts::CALC, artifacts::SLEEP].iter().chain(extra) {
        let name = Path::new(wasm).file_name().expect("a file name");
        std::fs::copy(wasm, dir.path().join(name)).expect("copy the component");
    }
    std::fs::write(
        dir.path().join("sleep.toml"),
        "[limits]\ntimeout_ms = 120000\nmax_concurrency = 1\non_limit = \"reject\"\n",
    )
    .expect("write the policy");
    dir
}

/// The version of the official MCP Python SDK the tests run.
const SDK_VERSION: &str = "2.3.0";

/// The folder holding the pinned SDK, installed on first use.
///
/// pip writes into a fresh temporary folder that is renamed into place only
/// when the install succeeded, so an interrupted install is never taken for
/// a finished one, and a second test process that finishes first wins.
fn sdk_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(artifacts::PYTHON_DIR).join(format!("mcp-{SDK_VERSION}"));
        if dir.join("mcp").is_dir() {
            return dir;
        }
        let partial = dir.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let output = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(["--no-warn-script-location", "--target"])
            .arg(&partial)
            .arg(format!("mcp=={SDK_VERSION}"))
            .output()
            .expect("python3 must be installed (with pip) to run the MCP client tests");
        assert!(
            output.status.success(),
            "installing the official MCP Python SDK with `python3 -m pip install --target {} mcp=={SDK_VERSION}` failed:\n{}",
            partial.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        if std::fs::rename(&partial, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        assert!(dir.join("mcp").is_dir(), "pip did not install mcp into {}", dir.display());
        dir
    })
}

/// Runs the client script; `on_line` sees each line it prints before the
/// last, which is the JSON result.
fn run_client(args: &[&str], mut on_line: impl FnMut(&str)) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/client.py");
    let mut child = Command::new("python3")
        .env("PYTHONPATH", sdk_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run the MCP client tests");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut last = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the client's output");
        on_line(&line);
        last = line;
    }
    let output = child.wait_with_output().expect("wait for the client");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(3),
        "the official MCP Python SDK does not import from {}\n{stderr}",
        sdk_dir().display()
    );
    assert!(
        output.status.success(),
        "the MCP client failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("bad client output {last:?}: {e}"))
}

fn tool<'a>(out: &'a Value, name: &str) -> &'a Value {
    out["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("`{name}` is not listed: {}", out["tools"]))
}

/// What both transports must show.
fn assert_scenario(out: &Value) {
    let init = &out["initialize"];
    // `initialize` answers `serverInfo`; `server/discover` stamps it in `_meta`.
    let server = match init.get("serverInfo") {
        Some(info) => info,
        None => &init["_meta"]["io.modelcontextprotocol/serverInfo"],
    };
    assert_eq!(server["name"], "toolhost", "{init}");
    assert_eq!(init["capabilities"]["tools"]["listChanged"], true);

    let calc = tool(out, "calc");
    assert_eq!(calc["inputSchema"]["type"], "object");
    assert!(calc["inputSchema"]["properties"]["expression"].is_object());
    assert_eq!(calc["outputSchema"]["type"], "object");
    assert!(calc["description"].as_str().is_some_and(|d| !d.is_empty()));
    let hints = &calc["annotations"];
    assert_eq!(hints["readOnlyHint"], true, "{hints}");
    assert_eq!(hints["idempotentHint"], true, "{hints}");
    assert_eq!(hints["destructiveHint"], false, "{hints}");
    assert_eq!(hints["openWorldHint"], false, "{hints}");

    let ok = &out["call_ok"];
    assert_eq!(ok["isError"], false, "{ok}");
    assert_eq!(ok["structuredContent"]["value"], 14, "{ok}");
    let text: Value =
        serde_json::from_str(ok["content"][0]["text"].as_str().expect("a text block"))
            .expect("the text block is JSON");
    assert_eq!(text, ok["structuredContent"]);

    let failed = &out["call_failed"];
    assert_eq!(failed["isError"], true, "{failed}");
    let text: Value =
        serde_json::from_str(failed["content"][0]["text"].as_str().expect("a text block"))
            .expect("the error text is the outcome as JSON");
    assert_eq!(text["outcome"], "tool-error", "{text}");
    assert!(
        text["message"]
            .as_str()
            .is_some_and(|m| m.contains("division by zero")),
        "{text}"
    );

    let unknown = &out["call_unknown"];
    assert_eq!(
        unknown["raised"], true,
        "an unknown tool is a protocol error: {unknown}"
    );
    assert_eq!(unknown["code"], -32602, "invalid params: {unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("`calc`")),
        "the error names the close match: {unknown}"
    );

    let progress = &out["call_progress"];
    assert_eq!(progress["result"]["structuredContent"]["requested_ms"], 350);
    let reports = progress["progress"].as_array().expect("progress reports");
    assert!(reports.len() >= 2, "sleep reports every 100 ms: {progress}");
    let last = reports.last().expect("a report");
    assert_eq!(
        (last["progress"].as_f64(), last["total"].as_f64()),
        (Some(350.0), Some(350.0))
    );

    let cancel = &out["cancel"];
    assert_eq!(
        cancel["started"], true,
        "the long sleep reported progress: {cancel}"
    );
    assert_eq!(
        cancel["refused_while_running"], true,
        "while the long sleep runs it holds the only slot: {cancel}"
    );
    assert!(
        cancel.get("long_sleep_finished").is_none(),
        "the cancelled call must not finish: {cancel}"
    );
    assert!(
        cancel["retry_ok_after_s"].is_number(),
        "after the cancellation the slot is free again long before the one-minute sleep would end: {cancel}"
    );
}

fn stdio(modern: bool) {
    let dir = tools_dir(&[]);
    let bin = toolhost_bin();
    let cache = cache_dir();
    let mut args = vec!["stdio"];
    if modern {
        args.push("--modern");
    }
    args.extend([
        "--",
        bin.to_str().expect("a UTF-8 path"),
        "mcp",
        "--tools",
        dir.path().to_str().expect("a UTF-8 path"),
        "--cache-dir",
        cache.to_str().expect("a UTF-8 path"),
    ]);
    let out = run_client(&args, |_| {});
    assert_scenario(&out);
}

#[test]
fn stdio_server_serves_the_python_sdk() {
    stdio(false);
}

#[test]
fn stdio_server_serves_the_python_sdk_without_a_handshake() {
    stdio(true);
}

/// How the HTTP endpoint is mounted for a test.
#[derive(Clone, Copy, PartialEq)]
enum Mount {
    /// `mcp::http_service` alone: no keys.
    Bare,
    /// In `serve`, the client holding a tenant's key.
    Tenant,
}

const TENANT_KEY: &str = "acme-mcp-key-0123456789";
const ADMIN_KEY: &str = "admin-mcp-key-0123456789";

/// A tenant that may use `calc`, `sleep` and the trivial tools (not yet loaded).
fn serve_config() -> toolhost::serve::ServeConfig {
    use toolhost::serve::hash_key;
    let text = format!(
        "admin_keys = [\"{}\"]\n[[tenant]]\nname = \"acme\"\nkeys = [\"{}\"]\ntools = [\"calc\", \"sleep\", \"guest_trivial__*\"]\n",
        hash_key(ADMIN_KEY),
        hash_key(TENANT_KEY)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, text).expect("write the config");
    toolhost::serve::ServeConfig::load(&path).expect("the config loads")
}

/// The HTTP service in axum on 127.0.0.1 over `calc` and `sleep`; when the
/// client waits for `tools/list_changed`, the catalog is swapped for one
/// that also has `guest_trivial__echo`.
fn http(modern: bool, mount: Mount) {
    let dir = tools_dir(&[]);
    let bigger = tools_dir(&[artifacts::TRIVIAL]);
    let (executor, reloaded) = block_on({
        let (dir, bigger) = (dir.path().to_path_buf(), bigger.path().to_path_buf());
        async move {
            let load = |path: PathBuf| async move {
                Catalog::load_dir(&engine(), &path, &load_options())
                    .await
                    .expect("the folder loads")
            };
            let executor = Executor::new(Arc::new(load(dir).await));
            (Arc::new(executor), Arc::new(load(bigger).await))
        }
    });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let cancel = toolhost::CancellationToken::new();
    let server = toolhost::serve::Server::new(executor.clone(), &serve_config(), None)
        .expect("the server starts");
    let app = match mount {
        Mount::Bare => axum::Router::new().nest_service(
            "/mcp",
            toolhost::mcp::http_service(executor.clone(), cancel.clone()),
        ),
        Mount::Tenant => {
            toolhost::router_with_mcp(&server, toolhost::mcp::McpHttpConfig::default())
        }
    };
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let url = format!("http://{addr}/mcp");
    let mut args = vec!["http", "--list-changed", &url];
    if modern {
        args.push("--modern");
    }
    if mount == Mount::Tenant {
        args.extend(["--key", TENANT_KEY]);
    }
    let out = run_client(&args, |line| {
        if line == WAITING {
            executor.set_catalog(reloaded.clone());
        }
    });
    assert_scenario(&out);
    assert_eq!(
        out["list_changed"], true,
        "no tools/list_changed after the swap: {out}"
    );
    let after = out["tools_after_change"].as_array().expect("the new list");
    assert!(
        after.iter().any(|name| name == "guest_trivial__echo"),
        "the new list has the new tool: {after:?}"
    );
    assert_eq!(executor.in_flight(), 0, "the cancelled call is not running");
    if mount == Mount::Tenant {
        // The session's calls counted under the tenant whose key opened it.
        let metrics = runtime.block_on(async {
            crate::common::http_client()
                .get(format!("http://{addr}/metrics"))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics text")
        });
        assert!(
            metrics.contains(r#"toolhost_calls_total{tool="calc",tenant="acme",outcome="ok"} 1"#),
            "{metrics}"
        );
        server.drain();
    }
    cancel.cancel();
}

#[test]
fn http_service_serves_the_python_sdk_and_announces_reloads() {
    http(false, Mount::Bare);
}

#[test]
fn http_service_announces_reloads_to_subscriptions_without_a_handshake() {
    http(true, Mount::Bare);
}

#[test]
fn serve_mcp_serves_a_tenant_session_to_the_python_sdk() {
    http(false, Mount::Tenant);
}

#[test]
fn serve_mcp_serves_a_tenant_without_a_handshake() {
    http(true, Mount::Tenant);
}
