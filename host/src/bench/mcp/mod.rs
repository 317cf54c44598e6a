//! `toolhost bench --mcp`: `toolhost mcp` as a child process driven over
//! pipes by a lean JSON-RPC client, against the same calls made through the
//! executor in this process.
//!
//! Three figures: the server's CPU per call with many calls in flight (its
//! utime + stime from `/proc/<pid>/stat`; with pipes as its stdio, and again
//! with Unix sockets, as Node starts a child), the sequential round trip, and
//! the time from spawning the server to its first `tools/list` answer. And
//! what the server does idle: connected, with no call in flight, once the
//! calls above are over.

mod client;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use self::client::{Server, Stdio, initialize, process_cpu};

/// How long the idle figure watches the server, after a pause that lets
/// the last calls' work end.
const IDLE_FOR: Duration = Duration::from_secs(2);
const IDLE_AFTER: Duration = Duration::from_millis(300);
use super::BenchError;
use toolhost::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadOptions};

/// What to measure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct McpBenchConfig {
    /// The `toolhost` executable to run as `toolhost mcp`.
    pub program: PathBuf,
    /// A component with a trivial tool; it is served alone.
    pub wasm: PathBuf,
    /// The tool's own name in `wasm`.
    pub tool: String,
    /// The folder whose start-up is timed (the bundled tools).
    pub tools_dir: PathBuf,
    /// The compile cache both sides use; `None` for the default one.
    pub cache_dir: Option<PathBuf>,
    /// Calls in the CPU measurement.
    pub calls: usize,
    /// Calls in flight at once in the CPU measurement.
    pub concurrency: usize,
    /// Sequential calls in the round-trip measurement.
    pub sequential: usize,
    /// Start-ups timed (after one that warms the cache).
    pub startups: usize,
}

impl McpBenchConfig {
    /// The defaults: 20,000 calls with 50 in flight, 2,000 sequential calls
    /// and 10 start-ups.
    pub fn new(program: PathBuf, wasm: PathBuf, tool: String, tools_dir: PathBuf) -> Self {
        Self {
            program,
            wasm,
            tool,
            tools_dir,
            cache_dir: None,
            calls: 20_000,
            concurrency: 50,
            sequential: 2_000,
            startups: 10,
        }
    }
}

/// The figures, each beside its in-process baseline.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct McpBench {
    /// Calls in the CPU measurement, and how many were in flight.
    pub calls: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Server CPU (user + system) per call over MCP stdio, in µs, with pipes
    /// as stdin and stdout.
    pub server_cpu_per_call_us: f64,
    /// The same with Unix sockets as stdin and stdout (as Node starts a child).
    pub server_cpu_per_call_sockets_us: f64,
    /// Process CPU per call of the same calls through [`Executor::call`], in µs.
    pub executor_cpu_per_call_us: f64,
    /// Sequential round trip over MCP stdio, p50 and p99, in µs.
    pub round_trip_p50_us: f64,
    /// See `round_trip_p50_us`.
    pub round_trip_p99_us: f64,
    /// Sequential [`Executor::call`] latency, p50 and p99, in µs.
    pub executor_p50_us: f64,
    /// See `executor_p50_us`.
    pub executor_p99_us: f64,
    /// Spawn to the first `tools/list` answer, median and best, in ms.
    pub startup_median_ms: f64,
    /// See `startup_median_ms`.
    pub startup_best_ms: f64,
    /// Engine plus catalog load of the same folder in this process, median, in ms.
    pub load_median_ms: f64,
    /// Tools the start-up listing returned.
    pub tools_listed: usize,
    /// The connected server's CPU with no call in flight, after the calls,
    /// as a share of one core (from clock ticks of 10 ms).
    pub idle_cpu_percent: f64,
    /// The same server's threads waking up per second, idle.
    pub idle_wakeups_per_sec: f64,
}

/// Runs every measurement. Each call has a distinct input, so every call
/// is a fresh instance (no result-cache hits) on both sides.
pub fn mcp(config: &McpBenchConfig) -> Result<McpBench, BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let dir = std::env::temp_dir().join(format!("toolhost-bench-mcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| setup(format!("{}: {e}", dir.display())))?;
    let copy = dir.join(format!("{}.wasm", config.tool));
    std::fs::copy(&config.wasm, &copy)
        .map_err(|e| setup(format!("{}: {e}", config.wasm.display())))?;
    let result = measure(config, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(config: &McpBenchConfig, dir: &Path) -> Result<McpBench, BenchError> {
    let mut server = Server::spawn(config, dir)?;
    server.handshake()?;
    let tool = server.public_name(&config.tool)?;
    // Warm up: compile caches, the instance pool, the server's threads.
    for i in 0..200 {
        server.call(&tool, i)?;
    }
    let mut round_trips = Vec::with_capacity(config.sequential);
    for i in 0..config.sequential {
        let start = Instant::now();
        server.call(&tool, 1_000_000 + i)?;
        round_trips.push(start.elapsed());
    }
    let before = server.cpu()?;
    server.pipeline(&tool, config.calls, config.concurrency)?;
    let server_cpu = server.cpu()? - before;
    let (idle_cpu, idle_switches) = idle(&server)?;
    drop(server);
    let server_cpu_sockets = pipeline_cpu(config, dir, Stdio::Sockets)?;

    let (executor_cpu, executor_latencies) = baseline(config, dir)?;
    let (startups, load, tools_listed) = startup(config)?;
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / config.calls as f64;
    Ok(McpBench {
        calls: config.calls,
        concurrency: config.concurrency,
        server_cpu_per_call_us: per_call(server_cpu),
        server_cpu_per_call_sockets_us: per_call(server_cpu_sockets),
        executor_cpu_per_call_us: per_call(executor_cpu),
        round_trip_p50_us: percentile(&mut round_trips, 0.50).as_secs_f64() * 1e6,
        round_trip_p99_us: percentile(&mut round_trips, 0.99).as_secs_f64() * 1e6,
        executor_p50_us: percentile(&mut executor_latencies.clone(), 0.50).as_secs_f64() * 1e6,
        executor_p99_us: percentile(&mut executor_latencies.clone(), 0.99).as_secs_f64() * 1e6,
        startup_median_ms: percentile(&mut startups.clone(), 0.5).as_secs_f64() * 1e3,
        startup_best_ms: startups
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        load_median_ms: percentile(&mut load.clone(), 0.5).as_secs_f64() * 1e3,
        tools_listed,
        idle_cpu_percent: idle_cpu.as_secs_f64() * 100.0 / IDLE_FOR.as_secs_f64(),
        idle_wakeups_per_sec: idle_switches as f64 / IDLE_FOR.as_secs_f64(),
    })
}

/// The server's CPU and context switches over [`IDLE_FOR`], connected and
/// with nothing in flight.
fn idle(server: &Server) -> Result<(Duration, u64), BenchError> {
    std::thread::sleep(IDLE_AFTER);
    let (cpu, switches) = (server.cpu()?, server.switches()?);
    std::thread::sleep(IDLE_FOR);
    Ok((
        server.cpu()? - cpu,
        server.switches()?.saturating_sub(switches),
    ))
}

/// Server CPU over `config.calls` calls with `config.concurrency` in flight,
/// on a fresh child whose stdio is `stdio` (after the same warm-up).
fn pipeline_cpu(config: &McpBenchConfig, dir: &Path, stdio: Stdio) -> Result<Duration, BenchError> {
    let mut server = Server::spawn_with(config, dir, stdio)?;
    server.handshake()?;
    let tool = server.public_name(&config.tool)?;
    for i in 0..200 {
        server.call(&tool, i)?;
    }
    let before = server.cpu()?;
    server.pipeline(&tool, config.calls, config.concurrency)?;
    Ok(server.cpu()? - before)
}

/// The same calls through an executor in this process, on a runtime shaped
/// like the server's (one worker per core).
fn baseline(config: &McpBenchConfig, dir: &Path) -> Result<(Duration, Vec<Duration>), BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(e.to_string()))?;
    runtime.block_on(async {
        let engine = Engine::new(EngineConfig::default()).map_err(|e| setup(e.to_string()))?;
        let catalog = Catalog::load_dir(&engine, dir, &load_options(config))
            .await
            .map_err(|e| setup(e.to_string()))?;
        let executor = Arc::new(Executor::new(Arc::new(catalog)));
        let tool = executor
            .catalog()
            .tools()
            .next()
            .map(|info| info.name.clone())
            .ok_or_else(|| setup("the component publishes no tool".into()))?;
        let call = move |i: usize| {
            let (executor, tool) = (executor.clone(), tool.clone());
            async move {
                let input = format!(r#"{{"value": {i}}}"#);
                let record = executor.call(&tool, &input, CallOptions::default()).await;
                match record.outcome.is_ok() {
                    true => Ok(()),
                    false => Err(BenchError::Call(record.outcome.to_string())),
                }
            }
        };
        for i in 0..200 {
            call(i).await?;
        }
        let mut latencies = Vec::with_capacity(config.sequential);
        for i in 0..config.sequential {
            let start = Instant::now();
            call(1_000_000 + i).await?;
            latencies.push(start.elapsed());
        }
        let next = Arc::new(AtomicUsize::new(0));
        let before = process_cpu(std::process::id())?;
        let workers: Vec<_> = (0..config.concurrency)
            .map(|_| {
                let (next, call) = (next.clone(), call.clone());
                let calls = config.calls;
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= calls {
                            return Ok(());
                        }
                        call(2_000_000 + i).await?;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .await
                .map_err(|e| BenchError::Call(e.to_string()))??;
        }
        let cpu = process_cpu(std::process::id())? - before;
        Ok((cpu, latencies))
    })
}

/// Spawn to the first `tools/list` answer of the bundled tools, after one
/// start that warms the compile cache; and, as the baseline, an engine and
/// a catalog load of the same folder in this process.
fn startup(config: &McpBenchConfig) -> Result<(Vec<Duration>, Vec<Duration>, usize), BenchError> {
    let mut times = Vec::with_capacity(config.startups);
    let mut listed = 0;
    for round in 0..=config.startups {
        let start = Instant::now();
        let mut server = Server::spawn(config, &config.tools_dir)?;
        server.send(&initialize(1))?;
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        server.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))?;
        server.flush()?;
        let list = server.response(2)?;
        let elapsed = start.elapsed();
        listed = list["result"]["tools"].as_array().map_or(0, Vec::len);
        if round > 0 {
            times.push(elapsed);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let mut loads = Vec::with_capacity(config.startups);
    for _ in 0..config.startups {
        let start = Instant::now();
        runtime.block_on(async {
            let engine = Engine::new(EngineConfig::default())
                .map_err(|e| BenchError::Setup(e.to_string()))?;
            Catalog::load_dir(&engine, &config.tools_dir, &load_options(config))
                .await
                .map_err(|e| BenchError::Setup(e.to_string()))
        })?;
        loads.push(start.elapsed());
    }
    Ok((times, loads, listed))
}

fn load_options(config: &McpBenchConfig) -> LoadOptions {
    let mut options = LoadOptions::default();
    if let Some(dir) = &config.cache_dir {
        options.cache_dir = Some(dir.clone());
    }
    options
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[index]
}
