//! One engine and one catalog shared by the tests: an engine reserves a lot of
//! virtual memory for its instance pool, so the tests do not make one each.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use toolhost::{CallOptions, CallRecord, Catalog, Engine, EngineConfig, Executor, LoadOptions};
use toolhost_artifacts as artifacts;

/// A private compile cache for the test run, so tests never touch the user's.
pub fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .to_path_buf()
}

pub fn load_options() -> LoadOptions {
    let mut options = LoadOptions::default();
    options.cache_dir = Some(cache_dir());
    options
}

pub fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::new(EngineConfig::default()).expect("engine"))
        .clone()
}

/// Runs an async block to completion on its own runtime, from any context.
pub fn block_on<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(work)
    })
    .join()
    .expect("loader thread")
}

/// Every test guest and bundled tool, loaded once.
pub fn executor() -> Arc<Executor> {
    static EXECUTOR: OnceLock<Arc<Executor>> = OnceLock::new();
    EXECUTOR
        .get_or_init(|| {
            let mut paths: Vec<PathBuf> = artifacts::TEST_GUESTS
                .iter()
                .map(|(_, path)| PathBuf::from(path))
                .collect();
            paths.extend(bundled_paths());
            let engine = engine();
            let catalog = block_on(async move {
                Catalog::load_files(&engine, &paths, &load_options(), &|_| {})
                    .await
                    .expect("load")
            });
            Arc::new(Executor::new(Arc::new(catalog)))
        })
        .clone()
}

pub fn bundled_paths() -> Vec<PathBuf> {
    [
        artifacts::CALC,
        artifacts::TEXT,
        artifacts::JSON,
        artifacts::HASH,
        artifacts::CLOCK,
        artifacts::SLEEP,
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

pub async fn call(tool: &str, input: Value) -> CallRecord {
    executor()
        .call_value(tool, &input, CallOptions::default())
        .await
}

pub async fn call_with(tool: &str, input: Value, options: CallOptions) -> CallRecord {
    executor().call_value(tool, &input, options).await
}

/// The output of a call that must succeed.
pub async fn ok(tool: &str, input: Value) -> Value {
    let record = call(tool, input).await;
    match record.outcome.output() {
        Some(output) => output.clone(),
        None => panic!("{tool} failed: {}", record.outcome),
    }
}

/// The call after a misbehaving one must be served normally.
pub async fn host_still_serves() {
    let output = ok(
        "guest_trivial__echo",
        serde_json::json!({"value": "still here"}),
    )
    .await;
    assert_eq!(output["value"], "still here");
}

/// A fresh folder with `name.wasm` (a copy of `wasm`) and, if given,
/// `name.toml` holding `policy`. Write more files into it before [`load_dir`].
pub fn tool_dir(name: &str, wasm: &str, policy: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(wasm, dir.path().join(format!("{name}.wasm"))).expect("copy the component");
    if let Some(policy) = policy {
        std::fs::write(dir.path().join(format!("{name}.toml")), policy).expect("write the policy");
    }
    dir
}

/// Loads a folder into an executor of its own.
pub async fn load_dir(dir: &std::path::Path) -> Executor {
    let catalog = Catalog::load_dir(&engine(), dir, &load_options())
        .await
        .expect("the folder loads");
    Executor::new(Arc::new(catalog))
}

/// The `toolhost` binary of this build profile, built (or brought up to date:
/// `cargo test` does not build another package's binary) once per test run.
pub fn toolhost_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/all-HASH -> target/<profile>/toolhost
        let profile_dir = exe
            .parent()
            .and_then(std::path::Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join(format!("toolhost{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "--quiet", "-p", "toolhost", "--bin", "toolhost"]);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo to build toolhost");
        assert!(
            status.success() && bin.exists(),
            "{} could not be built; run `cargo build --release -p toolhost`",
            bin.display()
        );
        bin
    })
    .clone()
}

/// An HTTP client for loopback tests (reqwest with the ring TLS provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A server configuration from its TOML text, read from a file as
/// `toolhost serve --config` reads it.
pub fn serve_config(text: &str) -> toolhost::serve::ServeConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, text).expect("write serve.toml");
    toolhost::serve::ServeConfig::load(&path).expect("the config loads")
}

/// Runs `program args` in `dir` with `envs` added, and fails with its output
/// if it fails. Flags of the outer build do not leak into it.
pub fn run_in(
    dir: &std::path::Path,
    program: &str,
    args: &[&str],
    envs: &[(&str, &std::path::Path)],
) {
    let mut command = std::process::Command::new(program);
    command
        .current_dir(dir)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (key, value) in envs {
        command.env(key, value);
    }
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(key);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {program} (a prerequisite): {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed in {}:\n{}\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `toolhost serve --no-watch --tools TOOLS` with `args`, on its own
/// process; its stderr is read on a thread (so it never blocks on a full
/// pipe), echoed with a `server: ` prefix and sent line by line.
pub fn serve_process(
    tools: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    serve_process_with_files(tools, args, None)
}

/// [`serve_process`], with at most `open_files` file descriptors (soft and
/// hard limit, set by the shell's `ulimit -n`) when given.
pub fn serve_process_with_files(
    tools: &std::path::Path,
    args: &[&str],
    open_files: Option<u32>,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut command = match open_files {
        Some(n) => {
            let mut sh = std::process::Command::new("sh");
            sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                .arg(toolhost_bin());
            sh
        }
        None => std::process::Command::new(toolhost_bin()),
    };
    let mut child = command
        .args(["serve", "--no-watch"])
        .arg("--tools")
        .arg(tools)
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run toolhost serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("server: {line}");
            let _ = lines.send(line);
        }
    });
    (child, receiver)
}

/// The `http://ADDRESS` a server from [`serve_process`] names on stderr,
/// once it answers `/readyz`; `None` when it stops first.
pub async fn serve_base(lines: std::sync::mpsc::Receiver<String>) -> Option<String> {
    let address = tokio::task::spawn_blocking(move || {
        while let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(120)) {
            if let Some((_, rest)) = line.split_once(" on http://") {
                return Some(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        None
    })
    .await
    .expect("the stderr reader")?;
    let base = format!("http://{address}");
    let client = http_client();
    for _ in 0..1200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// A `toolhost serve` process on a free loopback port, started by
/// [`spawn_serve`] and killed (if still running) when dropped.
#[derive(Debug)]
pub struct Served {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// Starts `toolhost serve --no-auth --no-watch` over the folder `tools` on
/// port 0 (the server names the port it got on stderr), with `args` added,
/// and waits until `/readyz` answers.
pub async fn spawn_serve(tools: &std::path::Path, args: &[&str]) -> Served {
    let mut all = vec!["--no-auth"];
    all.extend_from_slice(args);
    spawn_serve_with(tools, &all).await
}

/// Starts `toolhost serve --no-watch` over the folder `tools` on port 0
/// with `args` (a `--config`, or `--no-auth`), and waits until `/readyz`
/// answers.
pub async fn spawn_serve_with(tools: &std::path::Path, args: &[&str]) -> Served {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (child, lines) = serve_process(tools, &all);
    let mut served = Served {
        child: Some(child),
        base: String::new(),
    };
    served.base = serve_base(lines)
        .await
        .expect("the server names its address and becomes ready");
    served
}

impl Served {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not yet waited for").id()
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` text (the server has no keys: anyone may read it).
    pub async fn metrics(&self) -> String {
        http_client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics text")
    }

    /// A `/proc/PID/status` field of the server (`VmRSS:`, `VmHWM:`) in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in the server's status"))
    }

    /// Sends the server SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for the server to exit and returns how it did;
    /// fails if it is still running then.
    pub async fn exit_within(mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("not yet waited for");
        let polls = within.as_millis() / 50 + 1;
        for _ in 0..polls {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server was still running {within:?} later");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `done` for up to a minute (bounded: a wrong executor fails, not hangs).
pub async fn wait_until(executor: &Executor, what: &str, done: impl Fn(&Executor) -> bool) {
    for _ in 0..12_000 {
        if done(executor) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("never {what}: {:?}", executor.stats());
}
