//! `toolhost bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use toolhost::bench::{self, ThroughputConfig};

#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    /// The component to measure; a trivial tool measures the host, not the tool.
    #[arg(
        long,
        default_value = "target/guests/wasm32-wasip2/release/guest_trivial.wasm"
    )]
    wasm: PathBuf,
    /// The tool to call (its own or its public name).
    #[arg(long, default_value = "echo")]
    tool: String,
    /// The input of every call.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Calls per measurement.
    #[arg(long, default_value_t = 50_000)]
    calls: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Worker thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    threads: Vec<usize>,
    /// Print JSON instead of a markdown table.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if !args.wasm.exists() {
        anyhow::bail!(
            "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`, or pass --wasm",
            args.wasm.display()
        );
    }
    let mut config = ThroughputConfig::default();
    config.calls = args.calls;
    config.concurrency = args.concurrency;
    let mut rows = Vec::new();
    for threads in &args.threads {
        rows.push(bench::throughput(
            &args.wasm,
            &args.tool,
            &args.input,
            *threads,
            &config,
        )?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Fresh-instance calls of `{}` ({} calls, {} in flight, best of {} rounds)\n",
        args.tool, config.calls, config.concurrency, config.rounds
    );
    println!("| threads | executor calls/s | bare wasmtime calls/s | executor / bare |");
    println!("|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            row.threads, row.executor_per_sec, row.bare_per_sec, row.ratio
        );
    }
    Ok(ExitCode::SUCCESS)
}
