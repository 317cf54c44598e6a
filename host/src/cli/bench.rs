//! `toolhost bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use toolhost::bench::{self, LanguageCase, ThroughputConfig};

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
    /// Instead, compare tools by language: Rust (--wasm), Python
    /// (`units.wasm`) and JavaScript (`markdown.wasm`) from --tools-dir:
    /// size, cold compile, start-to-ready with and without the compile
    /// cache, memory per call and the latency of a trivial call.
    #[arg(long)]
    languages: bool,
    /// Where `units.wasm` and `markdown.wasm` are, for --languages.
    #[arg(long, default_value = "target/tools")]
    tools_dir: PathBuf,
}

pub(super) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if !args.wasm.exists() {
        anyhow::bail!(
            "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`, or pass --wasm",
            args.wasm.display()
        );
    }
    if args.languages {
        return languages(&args);
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

fn languages(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let units = args.tools_dir.join("units.wasm");
    let markdown = args.tools_dir.join("markdown.wasm");
    for path in [&units, &markdown] {
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist; build the bundled tools with `cargo build --release -p toolhost-artifacts`, or pass --tools-dir",
                path.display()
            );
        }
    }
    let cases = [
        LanguageCase::new("rust", &args.wasm, &args.tool, &args.input),
        LanguageCase::new(
            "python",
            &units,
            "convert",
            r#"{"value": 1, "from": "m", "to": "ft"}"#,
        ),
        LanguageCase::new(
            "js",
            &markdown,
            "stats",
            r##"{"markdown": "# Hi\n\nOne two."}"##,
        ),
    ];
    let calls = args.calls.min(2000);
    let rows = bench::languages(&cases, calls)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Per language, one run ({calls} sequential fresh-instance calls each)\n");
    println!(
        "| language | tool | size | cold compile | ready, no cache | ready, cached | memory / call | call p50 | call p99 | fuel / call |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | `{}` | {:.1} MB | {:.0} ms | {:.0} ms | {:.1} ms | {:.1} MiB | {:.0} µs | {:.0} µs | {} |",
            row.language,
            row.tool,
            row.size_bytes as f64 / 1e6,
            row.compile_ms,
            row.ready_uncached_ms,
            row.ready_cached_ms,
            row.memory_per_call_bytes as f64 / f64::from(1 << 20),
            row.call_p50_us,
            row.call_p99_us,
            row.call_fuel,
        );
    }
    Ok(ExitCode::SUCCESS)
}
