//! `toolhost bench --mcp`: prints the MCP figures beside their baselines.

use std::path::Path;
use std::process::ExitCode;

use crate::bench::{self, McpBenchConfig};
use anyhow::Context;

pub(super) fn run(
    wasm: &Path,
    tool: &str,
    tools_dir: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    for path in [wasm, tools_dir] {
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`",
                path.display()
            );
        }
    }
    let program = std::env::current_exe().context("cannot find the toolhost executable")?;
    let config = McpBenchConfig::new(program, wasm.into(), tool.into(), tools_dir.into());
    let figures = bench::mcp(&config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = &figures;
    println!(
        "MCP over stdio: `toolhost mcp` as a child process, calls of `{tool}` (a fresh instance each)\n"
    );
    println!("| figure | MCP stdio | in-process baseline | ratio | target |");
    println!("|---|--:|--:|--:|--:|");
    println!(
        "| server CPU / call, {} in flight, pipes as stdio | {:.1} µs | {:.1} µs (executor) | {:.2} | ≤ 40 µs |",
        f.concurrency,
        f.server_cpu_per_call_us,
        f.executor_cpu_per_call_us,
        f.server_cpu_per_call_us / f.executor_cpu_per_call_us
    );
    println!(
        "| server CPU / call, {} in flight, sockets as stdio | {:.1} µs | {:.1} µs (executor) | {:.2} | ≤ 40 µs |",
        f.concurrency,
        f.server_cpu_per_call_sockets_us,
        f.executor_cpu_per_call_us,
        f.server_cpu_per_call_sockets_us / f.executor_cpu_per_call_us
    );
    println!(
        "| sequential round trip p50 | {:.0} µs | {:.0} µs (executor call) | {:.2} | ≤ 250 µs |",
        f.round_trip_p50_us,
        f.executor_p50_us,
        f.round_trip_p50_us / f.executor_p50_us
    );
    println!(
        "| sequential round trip p99 | {:.0} µs | {:.0} µs (executor call) | {:.2} | |",
        f.round_trip_p99_us,
        f.executor_p99_us,
        f.round_trip_p99_us / f.executor_p99_us
    );
    println!(
        "| start to first tools/list ({} tools, warm cache), median (best) | {:.1} ms ({:.1}) | {:.1} ms (engine + load in-process) | {:.2} | ≤ 30 ms |",
        f.tools_listed,
        f.startup_median_ms,
        f.startup_best_ms,
        f.load_median_ms,
        f.startup_median_ms / f.load_median_ms
    );
    println!(
        "| idle, connected, after the calls: CPU of one core, wake-ups | {:.1} %, {:.0}/s | – | | ~0 % |",
        f.idle_cpu_percent, f.idle_wakeups_per_sec
    );
    Ok(ExitCode::SUCCESS)
}
