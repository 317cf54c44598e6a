//! `toolhost bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench::{
    self, ExecutorSuite, LanguageCase, Row, Spread, SuiteConfig, TenThousand, ThroughputConfig,
};
use clap::{Args, ValueEnum};

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
    #[arg(long, default_value_t = 50_000, value_parser = at_least_one())]
    calls: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    concurrency: usize,
    /// Worker thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2], value_parser = at_least_one())]
    threads: Vec<usize>,
    /// Print JSON instead of a markdown table.
    #[arg(long)]
    json: bool,
    /// What to measure: fresh-instance throughput, the executor suite, or both.
    #[arg(long, value_enum, default_value_t = Suite::Throughput)]
    suite: Suite,
    /// The `sleep` component, for the executor suite.
    #[arg(long, default_value = "target/tools/sleep.wasm")]
    sleep: PathBuf,
    /// The `misbehave` test guest, for the executor suite.
    #[arg(
        long,
        default_value = "target/guests/wasm32-wasip2/release/guest_misbehave.wasm"
    )]
    misbehave: PathBuf,
    /// Skip the 10,000-calls-in-flight memory figure.
    #[arg(long)]
    no_ten_thousand: bool,
    /// The executor suite's figures to measure, comma-separated (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<Row>,
    /// Rounds of each tail figure of the executor suite; the report is the
    /// median of the rounds' percentiles and the worst round's p99.
    #[arg(long, default_value_t = 5, value_parser = at_least_one())]
    rounds: usize,
    /// Measure the 10,000-in-flight figure in this process (the suite
    /// otherwise runs it in a fresh child process).
    #[arg(long, hide = true)]
    ten_thousand_here: bool,
    /// With --ten-thousand-here, measure the figure's baseline instead:
    /// fresh instances held after one call each, no executor.
    #[arg(long, hide = true, requires = "ten_thousand_here")]
    ten_thousand_held: bool,
    /// Instead, compare tools by language: Rust (--wasm), Python
    /// (`units.wasm`) and JavaScript (`markdown.wasm`) from --tools-dir:
    /// size, cold compile, start-to-ready with and without the compile
    /// cache, memory per call and the latency of a trivial call.
    #[arg(long)]
    languages: bool,
    /// Where `units.wasm` and `markdown.wasm` are, for --languages; the
    /// folder whose start-up --mcp times.
    #[arg(long, default_value = "target/tools")]
    tools_dir: PathBuf,
    /// Instead, measure MCP over stdio: `toolhost mcp` as a child process
    /// serving --wasm, driven by a lean JSON-RPC client (20,000 calls of
    /// --tool with 50 in flight, 2,000 sequential calls, 10 start-ups with
    /// --tools-dir, then 2 s idle), each figure beside the same work done
    /// in-process.
    #[arg(long)]
    mcp: bool,
    /// Instead, measure what sharing quotas through Redis adds per call
    /// (at 1 and 50 in flight, against the same quotas in this process)
    /// and the Redis requests per call. Without a port, starts its own
    /// `redis-server` (Debian package `redis-server`) on a free loopback port.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "0")]
    redis: Option<u16>,
    /// The Python (3.11 or newer) that runs the unsandboxed reference
    /// orchestrator, `examples/bench/orchestrator.py`, beside the
    /// throughput and overlap figures.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Leave the Python orchestrator out.
    #[arg(long)]
    no_python: bool,
}

/// A count that must be at least one (calls, calls in flight, threads,
/// rounds): zero is refused before anything runs.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Suite {
    /// Fresh-instance calls per second against a bare wasmtime loop.
    Throughput,
    /// Overhead, overlap, deadlines, memory, fuel and rate-limit costs.
    Executor,
    /// Both.
    All,
}

pub(super) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(port) = args.redis {
        return redis(&args, port);
    }
    if args.mcp {
        return super::bench_mcp::run(&args.wasm, &args.tool, &args.tools_dir, args.json);
    }
    if args.languages {
        if !args.wasm.exists() {
            anyhow::bail!(
                "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`, or pass --wasm",
                args.wasm.display()
            );
        }
        return languages(&args);
    }
    if args.suite != Suite::Throughput {
        for path in [&args.sleep, &args.misbehave] {
            if !path.exists() {
                anyhow::bail!(
                    "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`",
                    path.display()
                );
            }
        }
        let mut config = SuiteConfig::new(args.sleep.clone(), args.misbehave.clone());
        config.rows = args.rows.clone();
        if args.no_ten_thousand {
            if config.rows.is_empty() {
                config.rows = Row::value_variants().to_vec();
            }
            config.rows.retain(|row| *row != Row::TenThousand);
        }
        config.rounds = args.rounds;
        config.python = (!args.no_python).then(|| args.python.clone());
        config.ten_thousand = if !args.ten_thousand_here {
            TenThousand::Child(std::env::current_exe()?)
        } else if args.ten_thousand_held {
            TenThousand::HeldHere
        } else {
            TenThousand::Here
        };
        let suite = bench::executor_suite(&config)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&suite)?);
        } else {
            print_suite(&suite);
        }
        if args.suite == Suite::Executor {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !args.wasm.exists() {
        anyhow::bail!(
            "{} does not exist; build the guests with `cargo build --release -p toolhost-artifacts`, or pass --wasm",
            args.wasm.display()
        );
    }
    let config = ThroughputConfig {
        calls: args.calls,
        concurrency: args.concurrency,
        ..ThroughputConfig::default()
    };
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
    // The reference, in a process of its own, once: asyncio runs one thread.
    let python = (!args.no_python).then(|| bench::python_throughput(&args.python, &config));
    if let Some(Ok(per_sec)) = python {
        for row in &mut rows {
            row.python_per_sec = Some(per_sec);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Fresh-instance calls of `{}` ({} calls, {} in flight, best of {} rounds), beside \
         no-op calls of the unsandboxed Python orchestrator (examples/bench/orchestrator.py, \
         one thread, as asyncio runs; same calls, rounds and calls in flight)\n",
        args.tool, config.calls, config.concurrency, config.rounds
    );
    println!(
        "| threads | executor calls/s | bare wasmtime calls/s | executor / bare | Python calls/s | executor / Python |"
    );
    println!("|--:|--:|--:|--:|--:|--:|");
    for row in &rows {
        let (python, ratio) = row.python_per_sec.map_or_else(
            || ("–".to_string(), "–".to_string()),
            |p| {
                (
                    format!("{p:.0}"),
                    format!("{:.2}", row.executor_per_sec / p),
                )
            },
        );
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {python} | {ratio} |",
            row.threads, row.executor_per_sec, row.bare_per_sec, row.ratio
        );
    }
    if let Some(Err(reason)) = python {
        println!("\nThe Python orchestrator did not run: {reason}");
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
        "| language | tool | size | cold compile | ready, no cache | ready, cached | linear memory / call | resident / call | call p50 | call p99 | fuel / call |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        println!(
            "| {} | `{}` | {:.1} MB | {:.0} ms | {:.0} ms | {:.1} ms | {:.1} MiB | {:.2} MiB | {:.0} µs | {:.0} µs | {} |",
            row.language,
            row.tool,
            row.size_bytes as f64 / 1e6,
            row.compile_ms,
            row.ready_uncached_ms,
            row.ready_cached_ms,
            row.memory_per_call_bytes as f64 / f64::from(1 << 20),
            row.resident_per_instance_bytes as f64 / f64::from(1 << 20),
            row.call_p50_us,
            row.call_p99_us,
            row.call_fuel,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_suite(s: &ExecutorSuite) {
    let ms = |x: &Spread| {
        format!(
            "{:.3} | {:.3} | {:.3} | {:.3}",
            x.p50_ms, x.p99_ms, x.p99_worst_ms, x.max_ms
        )
    };
    if let Some(first) = s.overhead.first() {
        println!(
            "Coordination overhead: elapsed minus the guest's own sleep, per call (ms; median of {} rounds' percentiles, the worst round's p99, the largest)\n",
            first.executor.rounds
        );
        println!(
            "| in flight | executor p50 | executor p99 | worst p99 | max | bare p50 | bare p99 | worst p99 | max | executor p99 / bare p99 |"
        );
        println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for o in &s.overhead {
            println!(
                "| {} | {} | {} | {:.2} |",
                o.in_flight,
                ms(&o.executor),
                ms(&o.bare),
                o.executor.p99_ms / o.bare.p99_ms
            );
        }
    }
    if !s.overlap.is_empty() {
        println!(
            "\nN calls of `sleep` at once (median round, slowest round, the bare loop's median round, \
             the unsandboxed Python orchestrator's median round (examples/bench/orchestrator.py, \
             a process of its own, as many rounds); each process's CPU per call, every thread, \
             median round)\n"
        );
        println!(
            "| N | wall (ms) | slowest (ms) | bare wall (ms) | Python wall (ms) | N x L (ms) | L (ms) | wall / L | wall / bare | wall / Python | CPU/call (µs) | bare CPU/call (µs) | Python CPU/call (µs) |"
        );
        println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let us = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"));
        for o in &s.overlap {
            let to_python = o
                .python_wall_ms
                .map_or_else(|| "–".to_string(), |p| format!("{:.3}", o.wall_ms / p));
            println!(
                "| {} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.3} | {:.3} | {to_python} | {} | {} | {} |",
                o.calls,
                o.wall_ms,
                o.wall_worst_ms,
                o.bare_wall_ms,
                us(o.python_wall_ms),
                o.sequential_ms,
                o.limit_ms,
                o.wall_ms / o.limit_ms,
                o.wall_ms / o.bare_wall_ms,
                us(o.cpu_us_per_call),
                us(o.bare_cpu_us_per_call),
                us(o.python_cpu_us_per_call)
            );
        }
        if let Some(reason) = &s.python_skipped {
            println!("\nThe Python orchestrator's figures are missing: {reason}");
        }
    }
    if !s.deadline.is_empty() {
        println!("\nDeadline to return, infinite loop, 20 ms deadline (ms past the deadline)\n");
        println!("| guests at once | p50 | p99 | worst p99 | max |");
        println!("|--:|--:|--:|--:|--:|");
        for d in &s.deadline {
            println!("| {} | {} |", d.at_once, ms(&d.late));
        }
    }
    if !s.resident.is_empty() || s.ten_thousand_skipped.is_some() {
        println!(
            "\nResident memory with sleeps in flight, read once it stops growing (MiB; \
             anonymous: without the component's file pages each instance maps)\n"
        );
        println!(
            "| calls in flight | RSS before | RSS during | RSS per 1,000 | anonymous per 1,000 | settled after (ms) |"
        );
        println!("|--:|--:|--:|--:|--:|--:|");
        for r in &s.resident {
            let what = if r.held {
                format!(
                    "{} (baseline: instances held after a call, no executor)",
                    r.in_flight
                )
            } else {
                r.in_flight.to_string()
            };
            println!(
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
                what,
                r.before_mib,
                r.during_mib,
                r.per_thousand_mib,
                r.anon_per_thousand_mib,
                r.settled_ms
            );
        }
    }
    if let Some(reason) = &s.ten_thousand_skipped {
        println!(
            "| 10000 | skipped | | | | |\n\nThe 10,000-in-flight figure was skipped: {reason}"
        );
    }
    if let Some(cpu) = &s.cpu {
        println!("\nCPU-bound guest (busy, 20M iterations, best of 5)\n");
        println!(
            "| fuel + epoch | epoch only | neither | fuel+epoch / neither | epoch / neither |"
        );
        println!("|--:|--:|--:|--:|--:|");
        println!(
            "| {:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {:.2} |",
            cpu.fuel_ms,
            cpu.epoch_ms,
            cpu.neither_ms,
            cpu.fuel_ms / cpu.neither_ms,
            cpu.epoch_ms / cpu.neither_ms
        );
    }
    if let Some(rate) = &s.rate_check {
        println!(
            "\nRate-limit check: {:.1} ns (an atomic increment: {:.1} ns)\n",
            rate.check_ns, rate.atomic_ns
        );
    }
}

/// `toolhost bench --redis`: shared quotas against local ones.
fn redis(args: &BenchArgs, port: u16) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let dir = tempfile::tempdir()?;
    let mut own = None;
    let port = if port == 0 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("could not start redis-server (install the Debian package `redis-server`)")?;
        own = Some(KillOnDrop(child));
        let mut ready = false;
        for _ in 0..200 {
            if bench::redis_round_trips(port).is_ok() {
                ready = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        anyhow::ensure!(ready, "redis-server did not start on port {port}");
        port
    } else {
        port
    };
    let calls = args.calls.min(20_000);
    let rows = bench::shared_quotas(&args.wasm, &args.tool, &args.input, port, calls)?;
    drop(own);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Quotas in Redis against the same quotas in this process: `{}`, {calls} calls at 50 in \
         flight, {} at 1, best of 3 turns each\n",
        args.tool,
        calls / 5
    );
    println!("| in flight | local µs/call | Redis µs/call | added µs/call | Redis requests/call |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:+.1} | {:.3} |",
            row.in_flight, row.local_us, row.redis_us, row.added_us, row.round_trips_per_call
        );
    }
    Ok(ExitCode::SUCCESS)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
