//! The memory cap is one cap per call, whatever the component's shape: a
//! component of eight core modules, each with a linear memory of its own,
//! gets the cap once, not eight times. Written in the component text format
//! and loaded through the catalog as a plain-export component, like any tool
//! dropped into a tools folder.

use std::path::Path;

use serde_json::json;
use toolhost::{CallOptions, Outcome};

use crate::common;

/// One module with a memory of its own, instantiated once per memory.
const MEMORIES: usize = 8;
const CAP_MB: u64 = 16;
/// Pages (64 KiB) in `CAP_MB`.
const CAP_PAGES: u64 = CAP_MB * 16;

/// A component whose `fill(pages)` grows each of its [`MEMORIES`] memories
/// by `pages` and traps (`unreachable`) if any grow is refused; it returns
/// the pages it grew in all.
fn many_memories() -> Vec<u8> {
    let mut text = String::from(
        "(component\n\
         (core module $grower (memory 0)\n\
           (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0))))\n",
    );
    for i in 0..MEMORIES {
        text += &format!("(core instance $g{i} (instantiate $grower))\n");
    }
    text += "(core module $fill\n";
    for i in 0..MEMORIES {
        text += &format!("(import \"g{i}\" \"grow\" (func $g{i} (param i32) (result i32)))\n");
    }
    text += "(func (export \"fill\") (param $pages i32) (result i32)\n";
    for i in 0..MEMORIES {
        text += &format!(
            "(if (i32.eq (call $g{i} (local.get $pages)) (i32.const -1)) (then unreachable))\n"
        );
    }
    text += &format!("(i32.mul (local.get $pages) (i32.const {MEMORIES}))))\n");
    text += "(core instance $main (instantiate $fill";
    for i in 0..MEMORIES {
        text += &format!(" (with \"g{i}\" (instance $g{i}))");
    }
    text += "))\n(func (export \"fill\") (param \"pages\" u32) (result u32)\n\
             (canon lift (core func $main \"fill\"))))\n";
    wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn load(dir: &Path) -> (toolhost::Executor, String) {
    std::fs::write(dir.join("memories.wasm"), many_memories()).unwrap();
    std::fs::write(
        dir.join("memories.toml"),
        format!("[limits]\nmemory_mb = {CAP_MB}\n"),
    )
    .unwrap();
    let executor = common::load_dir(dir).await;
    let catalog = executor.catalog();
    assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
    let name = catalog
        .tools()
        .map(|t| t.name.clone())
        .find(|name| name.ends_with("fill"))
        .expect("the export is a tool");
    (executor, name)
}

#[tokio::test]
async fn eight_memories_share_one_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (executor, fill) = load(dir.path()).await;
    // Each memory grows to the whole cap: the first may, the others not.
    let record = executor
        .call_value(&fill, &json!({"pages": CAP_PAGES}), CallOptions::default())
        .await;
    let Outcome::MemoryLimit { message } = &record.outcome else {
        panic!(
            "{MEMORIES} memories of {CAP_MB} MiB each under a cap of {CAP_MB} MiB: {}",
            record.outcome
        );
    };
    assert!(message.contains("memory"), "{message}");
    let peak = record.memory_peak_bytes.expect("a peak");
    assert!(peak <= CAP_MB << 20, "{peak} bytes in all");
    // Within the cap together, they may.
    let pages = CAP_PAGES / MEMORIES as u64;
    let record = executor
        .call_value(&fill, &json!({"pages": pages}), CallOptions::default())
        .await;
    assert_eq!(
        record.outcome.output(),
        Some(&json!(CAP_PAGES)),
        "{}",
        record.outcome
    );
}
