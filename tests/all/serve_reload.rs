//! Hot reload: a loop of calls runs while the component behind them is
//! replaced by a broken file, then by a new version; no call is lost, every
//! call gets a valid outcome, and the broken file never replaces the working
//! version.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use toolhost::{CallOptions, ComponentState, Executor};
use toolhost_artifacts as artifacts;

use super::common;

/// Writes `bytes` to `dir/name` through a rename, as a deploy would.
fn replace(dir: &Path, name: &str, bytes: &[u8]) {
    let temp = dir.join(format!(".{name}.partial"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, dir.join(name)).unwrap();
}

/// The same component with a custom section appended: a new version (new
/// content hash) that publishes the same tools.
fn new_version(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"toolhost-test-version";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&payload);
    bytes
}

async fn next_catalog(changes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .expect("the folder change is picked up")
        .expect("the executor lives");
}

fn state(executor: &Executor, component: &str) -> Option<(ComponentState, Option<String>)> {
    executor
        .catalog()
        .status()
        .into_iter()
        .find(|s| s.component == component)
        .map(|s| (s.state, s.hash))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_replacement_and_a_broken_version_never_serves() {
    let calc = std::fs::read(artifacts::CALC).unwrap();
    let (dir, executor, watch, mut changes) = watched("calc", artifacts::CALC, None).await;
    let (_, first_hash) = state(&executor, "calc").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let executor = executor.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let input = format!(r#"{{"expression": "{worker} * 100000 + {i}"}}"#);
                    let record = executor.call("calc", &input, CallOptions::default()).await;
                    let expected = (worker * 100_000 + i) as f64;
                    outcomes.push((
                        record.outcome.output().and_then(|o| o["value"].as_f64()),
                        expected,
                        record.outcome.kind(),
                    ));
                    i += 1;
                    // Leave the reloader some of the two cores.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                outcomes
            })
        })
        .collect();

    // A broken file: the working version keeps serving and the status says so.
    replace(dir.path(), "calc.wasm", b"\0asm this is not a component");
    next_catalog(&mut changes).await;
    let (kept, kept_hash) = state(&executor, "calc").unwrap();
    assert_eq!(kept, ComponentState::KeptPrevious);
    assert_eq!(kept_hash, first_hash);
    assert!(
        executor
            .catalog()
            .failures()
            .iter()
            .any(|f| f.to_string().contains("calc.wasm"))
    );

    // A new version replaces it.
    replace(dir.path(), "calc.wasm", &new_version(&calc, "v2"));
    next_catalog(&mut changes).await;
    let (loaded, new_hash) = state(&executor, "calc").unwrap();
    assert_eq!(loaded, ComponentState::Loaded);
    assert_ne!(new_hash, first_hash);

    // A new component appears beside it (whole: a copy would show a
    // half-written file to a reload on a slow machine).
    replace(
        dir.path(),
        "hash.wasm",
        &std::fs::read(artifacts::HASH).unwrap(),
    );
    next_catalog(&mut changes).await;
    assert!(executor.catalog().tool("hash__digest").is_some());

    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for worker in workers {
        for (value, expected, kind) in worker.await.unwrap() {
            assert_eq!(kind, "ok", "every call during the swaps succeeds");
            assert_eq!(value, Some(expected));
            total += 1;
        }
    }
    assert!(total > 8, "the loop ran ({total} calls)");
    assert_eq!(watch.counters().snapshot().reloads, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_component_is_dropped_and_a_bad_policy_does_not_load() {
    let dir = common::tool_dir("calc", artifacts::CALC, None);
    std::fs::copy(artifacts::HASH, dir.path().join("hash.wasm")).unwrap();
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let _watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let mut changes = executor.catalog_changes();
    assert!(executor.catalog().tools().any(|t| t.component == "hash"));

    std::fs::remove_file(dir.path().join("hash.wasm")).unwrap();
    next_catalog(&mut changes).await;
    assert!(!executor.catalog().tools().any(|t| t.component == "hash"));
    let record = executor
        .call("hash__digest", "{}", CallOptions::default())
        .await;
    assert_eq!(record.outcome.kind(), "unknown-tool");

    // A policy that does not parse: the component stops serving (fail
    // closed: neither the bad policy's grants nor the old ones apply).
    std::fs::write(
        dir.path().join("calc.toml"),
        "[limits]\ntimeout_ms = \"soon\"\n",
    )
    .unwrap();
    next_catalog(&mut changes).await;
    let status = executor.catalog().status();
    let calc = status.iter().find(|s| s.component == "calc").unwrap();
    assert_eq!(state_name(calc.state), "withdrawn", "{calc:?}");
    assert!(calc.tools.is_empty(), "{calc:?}");
    assert!(
        calc.error
            .as_deref()
            .unwrap_or_default()
            .contains("calc.toml"),
        "{calc:?}"
    );
    let record = executor
        .call("calc", r#"{"expression": "1+1"}"#, CallOptions::default())
        .await;
    assert_eq!(record.outcome.kind(), "unknown-tool");
}

/// A file written again and again (a log mistakenly kept in the tools
/// folder, or a hostile writer) must not hold back every reload: the
/// removal of another component still takes effect while the writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_without_pause_does_not_starve_the_reload() {
    let dir = common::tool_dir("calc", artifacts::CALC, None);
    std::fs::copy(artifacts::HASH, dir.path().join("hash.wasm")).unwrap();
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let _watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, busy) = (stop.clone(), dir.path().join("busy.toml"));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                std::fs::write(&busy, format!("# {n}\n")).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(dir.path().join("hash.wasm")).unwrap();
    let mut gone = false;
    for _ in 0..600 {
        if !executor.catalog().tools().any(|t| t.component == "hash") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        gone,
        "the removal never took effect while a file kept changing"
    );
}

/// The state as the status JSON spells it.
fn state_name(state: ComponentState) -> String {
    serde_json::to_value(state)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// `wasm` as `name` (with `policy`) in a folder of its own, loaded and
/// watched, with a receiver of its catalog changes.
async fn watched(
    name: &str,
    wasm: &str,
    policy: Option<&str>,
) -> (
    tempfile::TempDir,
    Arc<Executor>,
    toolhost::FolderWatch,
    tokio::sync::watch::Receiver<u64>,
) {
    let dir = common::tool_dir(name, wasm, policy);
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let changes = executor.catalog_changes();
    (dir, executor, watch, changes)
}

/// What four calls get under a rate of one an hour that rejects.
const ONE_OF_FOUR: [&str; 4] = ["ok", "rate-limited", "rate-limited", "rate-limited"];

/// The outcome kind of a call of `tool` with each input, one after another.
async fn kinds(
    executor: &Executor,
    tool: &str,
    inputs: impl Iterator<Item = String>,
) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for input in inputs {
        let record = executor.call(tool, &input, CallOptions::default()).await;
        kinds.push(record.outcome.kind());
    }
    kinds
}

const SECRET_POLICY: &str = "[capabilities]\nhttp = [\"api.example.com\"]\n\n[secrets]\n\"api.example.com\" = { header = \"Authorization\", value = \"Bearer ${file:key.txt}\" }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_can_no_longer_be_read_withdraws_the_component() {
    let dir = common::tool_dir("calc", artifacts::CALC, Some(SECRET_POLICY));
    std::fs::write(dir.path().join("key.txt"), "s3cret").unwrap();
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let _watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let mut changes = executor.catalog_changes();
    assert!(executor.catalog().tool("calc").is_some());

    // The key is revoked; an unrelated change reloads the folder.
    std::fs::remove_file(dir.path().join("key.txt")).unwrap();
    replace(
        dir.path(),
        "hash.wasm",
        &std::fs::read(artifacts::HASH).unwrap(),
    );
    next_catalog(&mut changes).await;
    let status = executor.catalog().status();
    let calc = status.iter().find(|s| s.component == "calc").unwrap();
    assert_eq!(state_name(calc.state), "withdrawn", "{calc:?}");
    assert!(calc.tools.is_empty(), "{calc:?}");
    let record = executor
        .call("calc", r#"{"expression": "1+1"}"#, CallOptions::default())
        .await;
    assert_eq!(record.outcome.kind(), "unknown-tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_keeps_serving_under_the_new_policy() {
    let calc = std::fs::read(artifacts::CALC).unwrap();
    let (dir, executor, _watch, mut changes) = watched(
        "calc",
        artifacts::CALC,
        Some("[limits]\nrate = \"1000/s\"\n"),
    )
    .await;
    // Distinct inputs: a cached result would not show the limits.
    let sums = |from: u32, to: u32| (from..to).map(|i| format!(r#"{{"expression": "1+{i}"}}"#));
    assert_eq!(kinds(&executor, "calc", sums(0, 1)).await, ["ok"]);

    // A new version that does not compile and a tighter policy at once: the
    // previous version keeps serving, under the new policy.
    std::fs::write(
        dir.path().join("calc.toml"),
        "[limits]\nrate = \"1/h\"\non_limit = \"reject\"\n",
    )
    .unwrap();
    replace(dir.path(), "calc.wasm", &calc[..calc.len() / 2]);
    // (The two writes may land in one reload or two.)
    while state(&executor, "calc").unwrap().0 != ComponentState::KeptPrevious {
        next_catalog(&mut changes).await;
    }
    assert_eq!(kinds(&executor, "calc", sums(1, 5)).await, ONE_OF_FOUR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_limits_apply_to_new_calls_after_a_reload() {
    let (dir, executor, _watch, mut changes) = watched(
        "sleep",
        artifacts::SLEEP,
        Some("[limits]\nmax_concurrency = 32\nrate = \"1000/s\"\n"),
    )
    .await;
    let naps = |from: u64, to: u64| (from..to).map(|ms| format!(r#"{{"ms": {ms}}}"#));
    // The gates exist, sized by the first policy. (Each call asks a
    // different sleep: a cached result would not show the limits.)
    assert_eq!(kinds(&executor, "sleep", naps(0, 1)).await, ["ok"]);

    // Concurrency 32 -> 1: with one call in flight, the next is refused.
    std::fs::write(
        dir.path().join("sleep.toml"),
        "[limits]\nmax_concurrency = 1\non_limit = \"reject\"\n",
    )
    .unwrap();
    next_catalog(&mut changes).await;
    let held = {
        let executor = executor.clone();
        tokio::spawn(async move { kinds(&executor, "sleep", naps(3000, 3001)).await })
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while executor.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first call starts");
    assert_eq!(
        kinds(&executor, "sleep", naps(1, 2)).await,
        ["rate-limited"]
    );
    assert_eq!(held.await.unwrap(), ["ok"]);

    // Rate 1000/s -> 1/h: one call of four runs.
    std::fs::write(
        dir.path().join("sleep.toml"),
        "[limits]\nrate = \"1/h\"\non_limit = \"reject\"\n",
    )
    .unwrap();
    next_catalog(&mut changes).await;
    assert_eq!(kinds(&executor, "sleep", naps(2, 6)).await, ONE_OF_FOUR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_watched_policy_does_not_reload_and_changing_it_does_once() {
    let (dir, _executor, watch, mut changes) = watched(
        "calc",
        artifacts::CALC,
        Some("[limits]\nfuel = 1_000_000\n"),
    )
    .await;
    let policy = dir.path().join("calc.toml");
    let quiet = || tokio::time::sleep(Duration::from_secs(2));

    // `cat calc.toml`, a few times: opens and reads only.
    for _ in 0..5 {
        std::fs::read_to_string(&policy).unwrap();
        std::fs::read(dir.path().join("calc.wasm")).unwrap();
    }
    quiet().await;
    assert_eq!(watch.counters().snapshot().reloads, 0);

    // New content reloads, once: the reload's own reads start no other.
    std::fs::write(&policy, "[limits]\nfuel = 2_000_000\n").unwrap();
    next_catalog(&mut changes).await;
    quiet().await;
    assert_eq!(watch.counters().snapshot().reloads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_runs_on_the_catalog_its_caller_checked() {
    let calc_dir = common::tool_dir("calc", artifacts::CALC, None);
    let hash_dir = common::tool_dir("hash", artifacts::HASH, None);
    let executor = common::load_dir(calc_dir.path()).await;
    let checked = executor.catalog();
    let other = common::load_dir(hash_dir.path()).await;
    // A reload lands between the check and the call.
    executor.set_catalog(other.catalog());
    let input = r#"{"expression": "2+2"}"#;
    let record = executor
        .call("calc", input, CallOptions::default().on_catalog(checked))
        .await;
    assert_eq!(record.outcome.kind(), "ok", "{}", record.outcome);
    let record = executor.call("calc", input, CallOptions::default()).await;
    assert_eq!(record.outcome.kind(), "unknown-tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_why_a_component_failed_without_host_detail() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use toolhost::serve::{ServeConfig, Server, hash_key};
    use tower::ServiceExt;

    const VAR: &str = "TOOLHOST_TEST_UNSET_SECRET_VARIABLE";
    let policy = format!(
        "[capabilities]\nhttp = [\"api.example.com\"]\n\n[secrets]\n\"api.example.com\" = {{ header = \"X-Key\", value = \"${{env:{VAR}}}\" }}\n"
    );
    let dir = common::tool_dir("calc", artifacts::CALC, Some(&policy));
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let failure = executor.catalog().failures()[0].to_string();
    assert!(
        failure.contains(VAR),
        "the operator's log says which: {failure}"
    );
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("serve.toml");
    let text = format!(
        "admin_keys = [\"{}\"]\n\n[[tenant]]\nname = \"acme\"\nkeys = [\"{}\"]\ntools = [\"calc\"]\n",
        hash_key("admin-key-0123456789"),
        hash_key("acme-key-0123456789")
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::new(executor, &ServeConfig::load(&config).unwrap(), None).unwrap();
    let request = Request::get("/v1/tools")
        .header(header::AUTHORIZATION, "Bearer acme-key-0123456789")
        .body(Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let calc = &listed["status"]["components"][0];
    assert_eq!(calc["component"], "calc", "{body}");
    assert_eq!(calc["state"], "failed", "{body}");
    assert!(calc["error"].is_string(), "{body}");
    let folder = dir.path().display().to_string();
    assert!(!body.contains(VAR), "{body}");
    assert!(!body.contains(&folder), "{body}");
    assert!(!body.contains("calc.toml"), "{body}");
}
