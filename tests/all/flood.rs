//! Nothing a guest returns crosses into the host unbounded: an output, an
//! error text, a `describe()` or a plain export's result over its cap is
//! refused while it is read from the guest, not copied whole and measured.
//!
//! What these tests can observe of "not copied": the outcome's message. A
//! result refused at the boundary is reported as passing "more than N bytes"
//! (the budget; its real size was never read), where a result copied first
//! and measured after is reported with its exact size.

use std::path::Path;

use serde_json::json;
use toolhost::{CallOptions, Catalog, LoadError, Outcome, ToolErrorKind};
use toolhost_artifacts as artifacts;

use crate::common::{call_with, engine, host_still_serves, load_options, ok};

const MIB: u64 = 1 << 20;

/// Room in the guest for a 64 MiB string and its copy.
fn roomy() -> CallOptions {
    CallOptions::default().memory_mb(256)
}

fn refused_at_the_boundary(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::OutputTooLarge { .. }),
        "{outcome}"
    );
    let message = outcome.message().unwrap();
    assert!(
        message.contains("refused it before copying"),
        "the result was copied before it was refused: {message}"
    );
}

#[tokio::test]
async fn a_64_mib_output_is_refused_before_it_is_copied() {
    let record = call_with(
        "guest_flood_out__output",
        json!({"bytes": 64 * MIB}),
        roomy(),
    )
    .await;
    refused_at_the_boundary(&record.outcome);
    assert!(record.outcome.message().unwrap().contains("1048576 bytes"));
    host_still_serves().await;
}

#[tokio::test]
async fn output_within_the_cap_still_comes_back_whole() {
    let output = ok("guest_flood_out__output", json!({"bytes": 1000})).await;
    assert_eq!(output.as_str().unwrap().len(), 998);
}

#[tokio::test]
async fn a_64_mib_error_text_is_refused_before_it_is_copied() {
    let record = call_with(
        "guest_flood_out__error",
        json!({"bytes": 64 * MIB}),
        roomy(),
    )
    .await;
    refused_at_the_boundary(&record.outcome);
    host_still_serves().await;
}

#[tokio::test]
async fn error_text_over_the_output_cap_is_cut_with_a_marker() {
    let mut options = CallOptions::default();
    options.ceiling.max_output_bytes = Some(1024);
    let record = call_with("guest_flood_out__error", json!({"bytes": 10_240}), options).await;
    let Outcome::ToolError { error, message } = &record.outcome else {
        panic!("{}", record.outcome);
    };
    assert_eq!(*error, ToolErrorKind::Failed);
    assert!(message.starts_with(&"e".repeat(1024)), "{message}");
    assert!(
        message.ends_with(" [cut: the text was 10240 bytes, over the limit of 1024]"),
        "{message}"
    );
}

#[tokio::test]
async fn a_plain_export_returning_aliased_strings_is_refused_while_lifted() {
    // 262,144 strings that all point at one 400-byte buffer: 2 MiB of guest
    // memory, over 100 MB of host values if lifted whole.
    let record = call_with(
        "guest_flood_list__aliased",
        json!({"count": 262_144, "bytes": 400}),
        CallOptions::default(),
    )
    .await;
    refused_at_the_boundary(&record.outcome);
    // The same shape, small, lifts and comes back.
    let output = ok("guest_flood_list__copied", json!({"count": 3, "bytes": 2})).await;
    assert_eq!(output, json!(["aa", "aa", "aa"]));
    let output = ok("guest_flood_list__aliased", json!({"count": 2, "bytes": 1})).await;
    assert_eq!(output, json!(["a", "a"]));
    host_still_serves().await;
}

/// `flood-out` as `name`, describing `tools` tools of `bytes`-byte descriptions.
fn describe_bomb(dir: &Path, name: &str, tools: usize, bytes: usize) {
    std::fs::copy(artifacts::FLOOD_OUT, dir.join(format!("{name}.wasm"))).unwrap();
    let cfg = dir.join(format!("cfg-{name}"));
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("describe"), format!("{tools} {bytes}")).unwrap();
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[limits]\nmemory_mb = 256\n\n[capabilities]\nread_dirs = {{ \"/cfg\" = \"./cfg-{name}\" }}\n"
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn describe_bombs_are_refused_at_load_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    describe_bomb(dir.path(), "count", 1001, 10);
    describe_bomb(dir.path(), "many", 100_000, 8);
    describe_bomb(dir.path(), "wide", 1, 300_000);
    describe_bomb(dir.path(), "huge", 50, 1 << 20);
    describe_bomb(dir.path(), "fine", 3, 100);
    std::fs::copy(artifacts::TRIVIAL, dir.path().join("trivial.wasm")).unwrap();

    let catalog = Catalog::load_dir(&engine(), dir.path(), &load_options())
        .await
        .unwrap();
    let failure = |name: &str| {
        catalog
            .failures()
            .iter()
            .find(|f| f.path().file_stem().is_some_and(|s| s == name))
            .map(|f| {
                assert!(matches!(f, LoadError::Describe { .. }), "{f}");
                f.to_string()
            })
            .unwrap_or_else(|| panic!("`{name}` was not refused"))
    };
    let count = failure("count");
    assert!(
        count.contains("1001 tools, over the cap of 1000"),
        "{count}"
    );
    let wide = failure("wide");
    assert!(wide.contains("over the cap of 256 KiB per tool"), "{wide}");
    for name in ["many", "huge"] {
        let message = failure(name);
        assert!(message.contains("refused before being copied"), "{message}");
        assert!(message.contains("1000 tools, 4096 KiB"), "{message}");
    }
    assert_eq!(catalog.failures().len(), 4, "{:?}", catalog.failures());
    assert!(catalog.tool("fine__t2").is_some());
    assert!(catalog.tool("trivial__echo").is_some());
}
