//! Read-only directories: the probe guest reads what is granted, and every
//! way out — `..`, absolute paths, symlinks that lead outside — is refused by
//! the host, whatever the guest asks. Writes are refused too.

use serde_json::{Value, json};
use toolhost::CallOptions;
use toolhost_artifacts as artifacts;

use crate::common::{load_dir, tool_dir};

/// `data/` (granted as `/data`) holds `ok.txt`, `sub/inner.txt`, a symlink
/// to `ok.txt` and a symlink to `../outside.txt`, which sits beside `data/`.
fn fixture(policy: &str) -> tempfile::TempDir {
    let dir = tool_dir("probe", artifacts::PROBE, Some(policy));
    let root = dir.path();
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::write(root.join("data/ok.txt"), "granted content").unwrap();
    std::fs::write(root.join("data/sub/inner.txt"), "inner content").unwrap();
    std::fs::write(root.join("outside.txt"), "OUTSIDE-SECRET").unwrap();
    std::os::unix::fs::symlink("ok.txt", root.join("data/inside_link")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", root.join("data/escape")).unwrap();
    std::os::unix::fs::symlink(root.join("outside.txt"), root.join("data/absolute_escape"))
        .unwrap();
    dir
}

async fn probe(dir: &std::path::Path, input: Value) -> Value {
    let executor = load_dir(dir).await;
    assert!(
        executor.catalog().failures().is_empty(),
        "{:?}",
        executor.catalog().failures()
    );
    let record = executor
        .call_value("probe", &input, CallOptions::default())
        .await;
    record.outcome.output().expect("the probe ran").clone()
}

#[tokio::test]
async fn granted_files_read_and_every_escape_is_refused() {
    let dir = fixture("[capabilities]\nread_dirs = { \"/data\" = \"data\" }\n");
    let output = probe(
        dir.path(),
        json!({
            "read": [
                "/data/ok.txt",
                "/data/sub/inner.txt",
                "/data/inside_link",
                "/data/../outside.txt",
                "/data/sub/../../outside.txt",
                "/data/escape",
                "/data/absolute_escape",
                "/outside.txt",
                dir.path().join("outside.txt").display().to_string(),
                "../outside.txt",
            ],
            "list": ["/data", "/data/.."],
            "write_to": "/data/new.txt",
        }),
    )
    .await;
    let files = &output["files"];
    let read = |path: &str| files[path].as_str().unwrap().to_string();
    assert!(read("/data/ok.txt").contains("granted content"), "{output}");
    assert!(
        read("/data/sub/inner.txt").contains("inner content"),
        "{output}"
    );
    assert!(
        read("/data/inside_link").contains("granted content"),
        "{output}"
    );
    for escape in [
        "/data/../outside.txt",
        "/data/sub/../../outside.txt",
        "/data/escape",
        "/data/absolute_escape",
        "/outside.txt",
        "../outside.txt",
    ] {
        assert!(
            read(escape).starts_with("error"),
            "{escape} was readable: {output}"
        );
    }
    assert!(
        read(&dir.path().join("outside.txt").display().to_string()).starts_with("error"),
        "the host path was readable: {output}"
    );
    assert!(!output.to_string().contains("OUTSIDE-SECRET"), "{output}");

    let dirs = &output["dirs"];
    let listed = dirs["/data"].as_str().unwrap();
    assert!(
        listed.starts_with("ok: ") && listed.contains("ok.txt"),
        "{output}"
    );
    assert!(
        dirs["/data/.."].as_str().unwrap().starts_with("error"),
        "{output}"
    );
    assert!(dirs["/"].as_str().unwrap().starts_with("error"), "{output}");

    // Read-only: the write was refused and left nothing behind.
    assert!(
        output["write"].as_str().unwrap().starts_with("error"),
        "{output}"
    );
    assert!(!dir.path().join("data/new.txt").exists());
}

#[test]
fn a_grant_of_a_missing_directory_stops_the_tool() {
    let dir = tool_dir(
        "probe",
        artifacts::PROBE,
        Some("[capabilities]\nread_dirs = { \"/data\" = \"no-such-dir\" }\n"),
    );
    let path = dir.path().to_path_buf();
    let executor = crate::common::block_on(async move { load_dir(&path).await });
    let catalog = executor.catalog();
    let failures = catalog.failures();
    assert_eq!(failures.len(), 1);
    let message = failures[0].to_string();
    assert!(message.contains("probe.toml"), "{message}");
    assert!(
        message.contains("capabilities.read_dirs.\"/data\""),
        "{message}"
    );
    assert!(message.contains("no-such-dir"), "{message}");
}
