//! A guest gets nothing its policy does not grant: no files, no environment,
//! no arguments, no sockets, no real time of day.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::common::{block_on, engine, load_options, ok};

#[tokio::test]
async fn a_probe_without_permission_gets_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();

    let output = ok("guest_probe__probe", json!({"tcp": address})).await;

    for (path, result) in output["files"].as_object().unwrap() {
        assert!(
            result.as_str().unwrap().starts_with("error"),
            "{path} was readable: {result}"
        );
    }
    for (path, result) in output["dirs"].as_object().unwrap() {
        assert!(
            result.as_str().unwrap().starts_with("error"),
            "{path} was listable: {result}"
        );
    }
    assert_eq!(
        output["env"],
        json!({}),
        "the guest saw environment variables"
    );
    assert_eq!(output["args"], json!([]));
    assert_eq!(
        output["wall_clock_unix"], 0,
        "the wall clock is frozen without a grant"
    );
    assert!(
        output["tcp"].as_str().unwrap().starts_with("error"),
        "tcp connect: {}",
        output["tcp"]
    );
    assert!(
        output["write"].as_str().unwrap().starts_with("error"),
        "file write: {}",
        output["write"]
    );
    // Nothing reached the listener.
    let mut buf = [0u8; 64];
    match listener.accept() {
        Ok((mut stream, _)) => panic!("the guest connected: {:?}", stream.read(&mut buf)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
}

#[test]
fn granted_env_and_clock_reach_the_guest_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(toolhost_artifacts::PROBE, dir.path().join("probe.wasm")).unwrap();
    std::fs::write(dir.path().join("probe.toml"), "[capabilities]\nwall_clock = true\nenv = [\"CARGO_PKG_NAME\", \"TOOLHOST_TEST_SURELY_UNSET\"]\n").unwrap();
    // cargo sets CARGO_PKG_NAME for the test process; PATH, HOME and the rest are not granted.
    let path = dir.path().to_path_buf();
    let seen = Arc::new(AtomicBool::new(false));
    let seen2 = seen.clone();
    block_on(async move {
        let engine = engine();
        let catalog = toolhost::Catalog::load_dir(&engine, &path, &load_options())
            .await
            .unwrap();
        assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
        let executor = toolhost::Executor::new(Arc::new(catalog));
        let record = executor
            .call_value("probe", &json!({}), toolhost::CallOptions::default())
            .await;
        let output = record.outcome.output().expect("probe ran").clone();
        let env = output["env"].as_object().unwrap();
        assert_eq!(
            env.get("CARGO_PKG_NAME").and_then(|v| v.as_str()),
            Some(env!("CARGO_PKG_NAME")),
            "{output}"
        );
        assert_eq!(
            env.len(),
            1,
            "only granted names that are set reach the guest: {output}"
        );
        assert!(output["wall_clock_unix"].as_i64().unwrap() > 1_700_000_000);
        seen2.store(true, Ordering::Relaxed);
    });
    assert!(seen.load(Ordering::Relaxed));
}
