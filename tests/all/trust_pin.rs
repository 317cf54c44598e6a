//! Pinning: under `locked`, a component one byte away from the version the
//! lock file pins is refused at start, naming both hashes; on hot reload it
//! is refused while the pinned version keeps answering calls; rewriting the
//! lock file is what accepts it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toolhost::trust::{Lock, sha256};
use toolhost::{
    CallOptions, Catalog, ComponentState, Executor, LoadError, LoadOptions, TrustError,
};
use toolhost_artifacts as artifacts;

use super::common;

/// `wasm` with a custom section appended that ends in `tag`: a valid
/// component publishing the same tools, with a content hash of its own.
/// Two tags of one length give versions that differ in exactly one byte.
pub(super) fn version(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"toolhost-test-version";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    assert!(payload.len() < 128, "one LEB128 byte of size");
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    bytes.push(payload.len() as u8);
    bytes.extend_from_slice(&payload);
    bytes
}

pub(super) fn locked_options() -> LoadOptions {
    let mut options = common::load_options();
    options.trust.locked = true;
    options
}

/// Writes `bytes` to `dir/name` through a rename, as a deploy would.
fn replace(dir: &Path, name: &str, bytes: &[u8]) {
    let temp = dir.join(format!(".{name}.partial"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, dir.join(name)).unwrap();
}

/// A folder with calc at version `v1`, pinned by its lock file.
fn pinned_calc() -> (tempfile::TempDir, Vec<u8>) {
    let calc = std::fs::read(artifacts::CALC).unwrap();
    let pinned = version(&calc, "v1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.wasm"), &pinned).unwrap();
    Lock::scan(dir.path()).unwrap().write(dir.path()).unwrap();
    (dir, pinned)
}

fn mismatch(catalog: &Catalog) -> Option<(String, String, String)> {
    catalog.failures().iter().find_map(|failure| match failure {
        LoadError::Trust(TrustError::Mismatch {
            expected, found, ..
        }) => Some((expected.clone(), found.clone(), failure.to_string())),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_one_byte_off_the_lock_is_refused_at_start() {
    let (dir, pinned) = pinned_calc();
    let changed = version(&std::fs::read(artifacts::CALC).unwrap(), "v2");
    assert_eq!(
        pinned.iter().zip(&changed).filter(|(a, b)| a != b).count(),
        1
    );
    std::fs::write(dir.path().join("calc.wasm"), &changed).unwrap();

    // Unlocked, the changed component is a working component.
    let open = Catalog::load_dir(&common::engine(), dir.path(), &common::load_options())
        .await
        .unwrap();
    assert!(open.tool("calc").is_some(), "{:?}", open.failures());

    let locked = Catalog::load_dir(&common::engine(), dir.path(), &locked_options())
        .await
        .unwrap();
    assert!(locked.tool("calc").is_none(), "an unpinned version loaded");
    let (expected, found, message) = mismatch(&locked).expect("a lock refusal");
    assert_eq!(expected, sha256(&pinned));
    assert_eq!(found, sha256(&changed));
    for part in ["calc.wasm", "toolhost.lock", &expected, &found] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    let status = locked.status();
    assert_eq!(status[0].state, ComponentState::Failed);

    // A policy the lock does not know is refused too (it would add grants).
    std::fs::write(dir.path().join("calc.wasm"), &pinned).unwrap();
    std::fs::write(dir.path().join("calc.toml"), "[limits]\ntimeout_ms = 900\n").unwrap();
    let locked = Catalog::load_dir(&common::engine(), dir.path(), &locked_options())
        .await
        .unwrap();
    assert!(locked.tool("calc").is_none());
    let (expected, _, message) = mismatch(&locked).expect("a lock refusal of the policy");
    assert_eq!(expected, "none");
    assert!(message.contains("calc.toml"), "{message}");

    // No lock file at all: nothing loads under `locked`.
    std::fs::remove_file(dir.path().join("calc.toml")).unwrap();
    std::fs::remove_file(dir.path().join("toolhost.lock")).unwrap();
    let locked = Catalog::load_dir(&common::engine(), dir.path(), &locked_options())
        .await
        .unwrap();
    assert!(locked.tool("calc").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_reload_an_unpinned_version_is_refused_and_the_pinned_one_keeps_serving() {
    let (dir, pinned) = pinned_calc();
    let catalog = Catalog::load_dir(&common::engine(), dir.path(), &locked_options())
        .await
        .unwrap();
    assert!(catalog.tool("calc").is_some(), "{:?}", catalog.failures());
    let executor = Arc::new(Executor::new(Arc::new(catalog)));
    let watch = toolhost::watch(executor.clone(), dir.path(), locked_options()).unwrap();
    let mut changes = executor.catalog_changes();

    let changed = version(&std::fs::read(artifacts::CALC).unwrap(), "v2");
    replace(dir.path(), "calc.wasm", &changed);
    next_catalog(&mut changes).await;
    let status = executor.catalog().status();
    assert_eq!(status[0].state, ComponentState::KeptPrevious, "{status:?}");
    let serving = status[0].hash.clone();
    let (expected, found, _) = mismatch(&executor.catalog()).expect("the refusal is reported");
    assert_eq!((expected, found), (sha256(&pinned), sha256(&changed)));
    assert!(
        status[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains(&sha256(&changed))),
        "{status:?}"
    );
    assert!(watch.counters().snapshot().rejected >= 1);
    let record = executor
        .call("calc", r#"{"expression": "6 * 7"}"#, CallOptions::default())
        .await;
    assert_eq!(record.outcome.output().unwrap()["value"], 42.0);

    // Accepting it is editing the lock file.
    Lock::scan(dir.path()).unwrap().write(dir.path()).unwrap();
    next_catalog(&mut changes).await;
    let status = executor.catalog().status();
    assert_eq!(status[0].state, ComponentState::Loaded, "{status:?}");
    assert_ne!(status[0].hash, serving);
}

async fn next_catalog(changes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(Duration::from_secs(30), changes.changed())
        .await
        .expect("the folder change is picked up")
        .expect("the executor lives");
}
