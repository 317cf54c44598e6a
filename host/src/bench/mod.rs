//! Measurements behind `toolhost bench`. Each figure comes with a baseline
//! measured in the same run, so the ratio means something on any machine.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use toolhost::measure::Baseline;
mod reference;
mod suite;

pub use self::suite::{ExecutorSuite, Row, Spread, SuiteConfig, TenThousand, executor_suite};
use toolhost::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadOptions};

mod languages;
pub(crate) use self::languages::{LanguageCase, languages};

mod mcp;
pub(crate) use self::mcp::{McpBenchConfig, mcp};

mod shared;
pub(crate) use self::shared::{round_trips as redis_round_trips, shared_quotas};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Setting up failed (runtime, engine, loading the tool).
    #[error("could not set up the benchmark: {0}")]
    Setup(String),
    /// A call did not succeed, so the figures would be meaningless.
    #[error("a benchmark call failed: {0}")]
    Call(String),
}

/// Fresh-instance throughput at one thread count.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Throughput {
    /// Tokio worker threads.
    pub threads: usize,
    /// Calls per second through [`Executor::call`].
    pub executor_per_sec: f64,
    /// Calls per second of the bare wasmtime loop.
    pub bare_per_sec: f64,
    /// `executor_per_sec / bare_per_sec`.
    pub ratio: f64,
    /// No-op calls per second through the unsandboxed Python orchestrator,
    /// measured once per run (see [`python_throughput`]); `None` when it
    /// was not run.
    pub python_per_sec: Option<f64>,
}

/// No-op calls per second through the unsandboxed Python orchestrator
/// (`examples/bench/orchestrator.py`, one thread, as asyncio runs), run with
/// `python` in a process of its own: the best of `config.rounds` rounds of
/// `config.calls` calls, `config.concurrency` in flight.
///
/// # Errors
///
/// Why it could not run (no such interpreter, one older than 3.11).
pub fn python_throughput(python: &Path, config: &ThroughputConfig) -> Result<f64, String> {
    reference::noop(python, config.calls, config.concurrency, config.rounds)
}

/// What to measure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ThroughputConfig {
    /// Calls per measurement.
    pub calls: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Measurements of each side; the best is kept.
    pub rounds: usize,
}

impl Default for ThroughputConfig {
    fn default() -> Self {
        Self {
            calls: 50_000,
            concurrency: 64,
            rounds: 3,
        }
    }
}

/// Measures fresh-instance calls per second of `tool` in the component at
/// `wasm`, through the executor and through a bare wasmtime loop, on a tokio
/// runtime with `threads` workers.
pub fn throughput(
    wasm: &Path,
    tool: &str,
    input: &str,
    threads: usize,
    config: &ThroughputConfig,
) -> Result<Throughput, BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| setup(e.to_string()))?;
    runtime.block_on(async {
        let engine_config = {
            let mut c = EngineConfig::default();
            c.max_instances = (config.concurrency as u32 * 2).max(64);
            c
        };
        let engine = Engine::new(engine_config).map_err(|e| setup(e.to_string()))?;
        // As many calls of the one tool in flight as the bench asks for.
        let mut load = LoadOptions::default();
        load.defaults.max_concurrency =
            u32::try_from(config.concurrency.max(1)).unwrap_or(u32::MAX);
        let catalog = Catalog::load_files(&engine, &[wasm.to_path_buf()], &load, &|_| {})
            .await
            .map_err(|e| setup(e.to_string()))?;
        if let Some(failure) = catalog.failures().first() {
            return Err(setup(failure.to_string()));
        }
        let public = catalog
            .tools()
            .find(|info| info.tool == tool || info.name == tool)
            .ok_or_else(|| setup(format!("{} has no tool `{tool}`", wasm.display())))?;
        let (public, inner) = (public.name.clone(), public.tool.clone());
        // No result cache: every call must make a fresh instance, as the
        // bare loop does.
        let mut exec_config = toolhost::ExecConfig::default();
        exec_config.cache.max_entries = 0;
        let executor = Arc::new(Executor::with_config(Arc::new(catalog), exec_config));
        let bytes = std::fs::read(wasm).map_err(|e| setup(e.to_string()))?;
        let bare = Arc::new(Baseline::new(&engine, &bytes).map_err(|e| setup(format!("{e:#}")))?);

        // Warm both paths up (page faults, pool slots, caches).
        let warm = config.calls.min(2000);
        drive_with(&executor, &public, input, warm, config.concurrency).await?;
        drive_bare(&bare, &inner, input, warm, config.concurrency).await?;

        let (mut best_executor, mut best_bare) = (0.0f64, 0.0f64);
        for _ in 0..config.rounds.max(1) {
            let calls = config.calls;
            let elapsed = drive_with(&executor, &public, input, calls, config.concurrency).await?;
            best_executor = best_executor.max(calls as f64 / elapsed.as_secs_f64());
            let elapsed = drive_bare(&bare, &inner, input, calls, config.concurrency).await?;
            best_bare = best_bare.max(calls as f64 / elapsed.as_secs_f64());
        }
        Ok(Throughput {
            threads,
            executor_per_sec: best_executor,
            bare_per_sec: best_bare,
            ratio: best_executor / best_bare,
            python_per_sec: None,
        })
    })
}

async fn drive_with(
    executor: &Arc<Executor>,
    tool: &str,
    input: &str,
    calls: usize,
    concurrency: usize,
) -> Result<Duration, BenchError> {
    drive_options(
        executor,
        tool,
        input,
        calls,
        concurrency,
        CallOptions::default,
    )
    .await
}

/// [`drive`] of calls of `tool` with `input`, each with `options()`; a call
/// that does not end `ok` is the error.
async fn drive_options(
    executor: &Arc<Executor>,
    tool: &str,
    input: &str,
    calls: usize,
    concurrency: usize,
    options: impl Fn() -> CallOptions + Send + Sync + 'static,
) -> Result<Duration, BenchError> {
    let (executor, tool, input) = (executor.clone(), tool.to_string(), input.to_string());
    let options = Arc::new(options);
    drive(calls, concurrency, move || {
        let (executor, tool, input) = (executor.clone(), tool.clone(), input.clone());
        let options = options();
        async move {
            let record = executor.call(&tool, &input, options).await;
            if record.outcome.is_ok() {
                Ok(())
            } else {
                Err(record.outcome.to_string())
            }
        }
    })
    .await
    .map_err(BenchError::Call)
}

async fn drive_bare(
    bare: &Arc<Baseline>,
    tool: &str,
    input: &str,
    calls: usize,
    concurrency: usize,
) -> Result<Duration, BenchError> {
    let (bare, tool, input) = (bare.clone(), tool.to_string(), input.to_string());
    drive(calls, concurrency, move || {
        let (bare, tool, input) = (bare.clone(), tool.clone(), input.clone());
        async move {
            match bare.call(&tool, &input).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("the tool returned an error".to_string()),
                Err(e) => Err(format!("{e:#}")),
            }
        }
    })
    .await
    .map_err(BenchError::Call)
}

/// Runs `calls` calls made by `make`, `concurrency` at a time, on spawned
/// tasks; returns the wall time, or the first failure.
async fn drive<F, Fut>(calls: usize, concurrency: usize, make: F) -> Result<Duration, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let left = Arc::new(AtomicUsize::new(calls));
    let make = Arc::new(make);
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (left, make) = (left.clone(), make.clone());
        workers.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                make().await?;
            }
            Ok::<(), String>(())
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}
