//! Run with: `cargo run --release --example demo`
//!
//! Builds the bundled tools (the `toolhost-artifacts` build step compiles
//! `tools/` for wasm32-wasip2), loads the tools folder, shows the tools it
//! found, and makes a few real calls, each in a fresh sandbox, concurrently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use toolhost::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(toolhost_artifacts::TOOLS_DIR);
    let engine = Engine::new(EngineConfig::default())?;
    let start = Instant::now();
    let catalog = Catalog::load_dir(&engine, dir, &LoadOptions::default()).await?;
    let stats = catalog.stats();
    println!(
        "Loaded {} tools from {} components in {} in {:.0} ms ({} compiled, {} from the compile cache, {} refused)\n",
        catalog.tools().count(),
        stats.loaded,
        dir.display(),
        start.elapsed().as_secs_f64() * 1e3,
        stats.compiled,
        stats.cache_hits,
        stats.failed
    );
    for failure in catalog.failures() {
        println!("refused: {failure}");
    }
    for tool in catalog.tools() {
        let summary: String = tool.description.chars().take(90).collect();
        println!("  {:16} {summary}", tool.name);
    }

    let executor = Arc::new(Executor::new(Arc::new(catalog)));
    let calls = [
        (
            "calc",
            json!({"expression": "2 * (x + 3) ^ 2", "variables": {"x": 1.5}}),
        ),
        (
            "text__slugify",
            json!({"text": "Héllo, Wörld! Sandboxed tools"}),
        ),
        (
            "json__query",
            json!({"document": {"items": [{"name": "a"}, {"name": "b"}]}, "pointer": "/items/1/name"}),
        ),
        (
            "hash__digest",
            json!({"text": "hello", "algorithms": ["sha256"]}),
        ),
        ("clock__now", json!({})),
        ("sleep", json!({"ms": 200})),
        ("calc", json!({"expression": "sqrt(2"})),
        ("nope", json!({})),
    ];
    println!("\nEight calls at once, each in its own sandbox (sleep waits 200 ms):\n");
    let start = Instant::now();
    let mut running = Vec::new();
    for (tool, input) in calls {
        let executor = executor.clone();
        running.push(tokio::spawn(async move {
            let options = CallOptions::default().timeout(Duration::from_secs(2));
            executor.call_value(tool, &input, options).await
        }));
    }
    for call in running {
        let record = call.await?;
        let shown = match record.outcome.output() {
            Some(output) => output.to_string(),
            None => format!(
                "{}: {}",
                record.outcome.kind(),
                record.outcome.message().unwrap_or_default()
            ),
        };
        let shown: String = shown.chars().take(110).collect();
        println!(
            "  {:14} {:>8.2} ms  {shown}",
            record.tool, record.elapsed_ms
        );
    }
    println!(
        "\nAll eight took {:.0} ms of wall time.",
        start.elapsed().as_secs_f64() * 1e3
    );
    println!("\nThe same from the command line:");
    println!(
        "  cargo run --release -p toolhost -- list --tools {}",
        dir.display()
    );
    println!(
        "  cargo run --release -p toolhost -- call calc '{{\"expression\": \"1 + 2\"}}' --tools {}",
        dir.display()
    );
    Ok(())
}
