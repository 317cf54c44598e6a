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
    let dir = common::tool_dir("calc", artifacts::CALC, None);
    let executor = Arc::new(common::load_dir(dir.path()).await);
    let watch = toolhost::watch(executor.clone(), dir.path(), common::load_options()).unwrap();
    let mut changes = executor.catalog_changes();
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

    // A policy that does not parse: the component keeps its working version
    // (fail closed: the bad policy's grants never apply).
    std::fs::write(
        dir.path().join("calc.toml"),
        "[limits]\ntimeout_ms = \"soon\"\n",
    )
    .unwrap();
    next_catalog(&mut changes).await;
    let status = executor.catalog().status();
    let calc = status.iter().find(|s| s.component == "calc").unwrap();
    assert_eq!(calc.state, ComponentState::KeptPrevious);
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
    assert_eq!(record.outcome.kind(), "ok");
}
