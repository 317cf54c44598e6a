//! The executor benchmark suite: overhead, overlap of waiting calls, how fast
//! a deadline stops a looping guest, memory per call in flight, what fuel and
//! epochs cost, and what a rate-limit check costs. Every figure comes with
//! the baseline it is compared against, measured in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::BenchError;
use toolhost::batch::{BatchOptions, CallRequest};
use toolhost::measure::Baseline;
use toolhost::{
    CallOptions, Catalog, Engine, EngineConfig, ExecConfig, Executor, LoadOptions, Outcome,
};

/// Where the suite finds its components.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SuiteConfig {
    /// The bundled `sleep` component.
    pub sleep: PathBuf,
    /// The `misbehave` test guest (its `spin` and `busy` tools).
    pub misbehave: PathBuf,
    /// Sleep length for the overlap and overhead figures.
    pub sleep_ms: u64,
    /// Run the 10,000-in-flight memory figure too.
    pub ten_thousand: bool,
}

impl SuiteConfig {
    /// Components in `tools_dir` (sleep) and `guests_dir` (misbehave).
    pub fn new(sleep: PathBuf, misbehave: PathBuf) -> Self {
        Self {
            sleep,
            misbehave,
            sleep_ms: 100,
            ten_thousand: true,
        }
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct Spread {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        values
            .get(((values.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Spread {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: values.last().copied().unwrap_or(f64::NAN),
    }
}

/// Host time per call that is not the guest's own waiting.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Overhead {
    /// Calls in flight at once.
    pub in_flight: usize,
    /// Through the executor.
    pub executor: Spread,
    /// Through the bare wasmtime loop.
    pub bare: Spread,
}

/// N waiting calls at once against N×L and L.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Overlap {
    /// Calls.
    pub calls: usize,
    /// Wall time of all of them, in milliseconds.
    pub wall_ms: f64,
    /// N × L: the calls one after another.
    pub sequential_ms: f64,
    /// L: the limit.
    pub limit_ms: f64,
}

/// Memory with many calls in flight.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Resident {
    /// Calls in flight.
    pub in_flight: usize,
    /// Resident memory of the process before, in MiB.
    pub before_mib: f64,
    /// Resident memory with the calls in flight, in MiB.
    pub during_mib: f64,
    /// `(during - before)` per 1,000 calls, in MiB.
    pub per_thousand_mib: f64,
}

/// The whole suite's figures.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ExecutorSuite {
    /// Coordination overhead by calls in flight.
    pub overhead: Vec<Overhead>,
    /// Overlap of waiting calls.
    pub overlap: Vec<Overlap>,
    /// Deadline to return for a guest in an infinite loop (deadline 20 ms, 2 at once).
    pub deadline_to_return: Spread,
    /// Memory per calls in flight.
    pub resident: Vec<Resident>,
    /// Why the 10,000-in-flight figure is missing, when it was asked for and
    /// could not run (the rest of the suite runs regardless).
    pub ten_thousand_skipped: Option<String>,
    /// A CPU-bound guest: milliseconds with fuel and epochs, epochs only, neither.
    pub cpu_fuel_ms: f64,
    /// Same work, epoch interruption only.
    pub cpu_epoch_ms: f64,
    /// Same work, neither.
    pub cpu_neither_ms: f64,
    /// Nanoseconds per governor rate-limit check.
    pub rate_check_ns: f64,
    /// Nanoseconds per atomic increment, the baseline for the check.
    pub atomic_ns: f64,
}

async fn executor_for(engine: &Engine, paths: &[PathBuf]) -> Result<Arc<Executor>, BenchError> {
    // The suite holds up to 10,000 sleeps of one tool in flight to measure
    // the executor itself: no per-tool cap and no memory budget in the way.
    let mut load = LoadOptions::default();
    load.defaults.max_concurrency = 100_000;
    let catalog = Catalog::load_files(engine, paths, &load, &|_| {})
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    if let Some(failure) = catalog.failures().first() {
        return Err(BenchError::Setup(failure.to_string()));
    }
    let mut config = ExecConfig::default();
    config.cache.max_entries = 0;
    config.memory_budget_mb = None;
    Ok(Arc::new(Executor::with_config(Arc::new(catalog), config)))
}

/// The public name of the tool a component calls `inner`, whatever the file is named.
fn public(executor: &Executor, inner: &str) -> Result<String, BenchError> {
    executor
        .catalog()
        .tools()
        .find(|info| info.tool == inner)
        .map(|info| info.name.clone())
        .ok_or_else(|| setup(format!("no loaded component has a tool `{inner}`")))
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Runs the suite on a 2-worker tokio runtime.
pub fn executor_suite(config: &SuiteConfig) -> Result<ExecutorSuite, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(setup)?;
    runtime.block_on(async {
        let engine = Engine::new({
            let mut c = EngineConfig::default();
            c.max_instances = 2_000;
            c
        })
        .map_err(setup)?;
        let executor =
            executor_for(&engine, &[config.sleep.clone(), config.misbehave.clone()]).await?;
        let bare = Arc::new(
            Baseline::new(&engine, &std::fs::read(&config.sleep).map_err(setup)?)
                .map_err(|e| setup(format!("{e:#}")))?,
        );
        let mut overhead = Vec::new();
        for in_flight in [1, 100, 1000] {
            overhead.push(measure_overhead(&executor, &bare, in_flight, config.sleep_ms).await?);
        }
        let mut overlap = Vec::new();
        for calls in [10, 50, 200, 1000] {
            overlap.push(measure_overlap(&executor, calls, config.sleep_ms).await?);
        }
        let deadline_to_return = measure_deadline(&executor).await?;
        let mut resident = vec![measure_resident(&executor, 1000).await?];
        let mut ten_thousand_skipped = None;
        if config.ten_thousand {
            match measure_ten_thousand(&config.sleep).await {
                Ok(figure) => resident.push(figure),
                Err(error) => ten_thousand_skipped = Some(skip_reason(&error, max_map_count())),
            }
        }
        let cpu_fuel_ms = measure_cpu(&executor).await?;
        let epoch_only = Engine::new({
            let mut c = EngineConfig::default();
            c.fuel = false;
            c
        })
        .map_err(setup)?;
        let cpu_epoch_ms =
            measure_cpu(&executor_for(&epoch_only, std::slice::from_ref(&config.misbehave)).await?)
                .await?;
        let neither = Engine::new({
            let mut c = EngineConfig::default();
            c.fuel = false;
            c.epoch_interruption = false;
            c
        })
        .map_err(setup)?;
        let cpu_neither_ms =
            measure_cpu(&executor_for(&neither, std::slice::from_ref(&config.misbehave)).await?)
                .await?;
        let (rate_check_ns, atomic_ns) = measure_rate_check();
        Ok(ExecutorSuite {
            overhead,
            overlap,
            deadline_to_return,
            resident,
            ten_thousand_skipped,
            cpu_fuel_ms,
            cpu_epoch_ms,
            cpu_neither_ms,
            rate_check_ns,
            atomic_ns,
        })
    })
}

fn sleep_input(ms: u64, _call: usize) -> String {
    // The suite's executor has no result cache, so equal inputs all run.
    json!({"ms": ms}).to_string()
}

/// `elapsed - slept` per call with `in_flight` sleeps at once, through the
/// executor and through the bare loop.
async fn measure_overhead(
    executor: &Arc<Executor>,
    bare: &Arc<Baseline>,
    in_flight: usize,
    ms: u64,
) -> Result<Overhead, BenchError> {
    let rounds = if in_flight == 1 { 50 } else { 1 };
    let mut executor_extra = Vec::new();
    let mut bare_extra = Vec::new();
    for _ in 0..rounds {
        let calls = (0..in_flight)
            .map(|i| CallRequest::new("sleep", sleep_input(ms, i)))
            .collect();
        let result = executor.run_batch(calls, BatchOptions::default()).await;
        for record in &result.records {
            let slept = record
                .outcome
                .output()
                .and_then(|o| o["slept_ms"].as_f64())
                .ok_or_else(|| BenchError::Call(record.outcome.to_string()))?;
            executor_extra.push(record.elapsed_ms - slept);
        }
        let mut tasks = Vec::new();
        for i in 0..in_flight {
            let bare = bare.clone();
            let input = sleep_input(ms, i);
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let output = bare.call_output("sleep", &input).await;
                (start.elapsed(), output)
            }));
        }
        for task in tasks {
            let (elapsed, output) = task.await.map_err(setup)?;
            let output = output.map_err(|e| BenchError::Call(format!("{e:#}")))?;
            let slept = serde_json::from_str::<serde_json::Value>(&output)
                .ok()
                .and_then(|o| o["slept_ms"].as_f64())
                .unwrap_or(f64::NAN);
            bare_extra.push(elapsed.as_secs_f64() * 1e3 - slept);
        }
    }
    Ok(Overhead {
        in_flight,
        executor: spread(executor_extra),
        bare: spread(bare_extra),
    })
}

async fn measure_overlap(
    executor: &Arc<Executor>,
    calls: usize,
    ms: u64,
) -> Result<Overlap, BenchError> {
    let requests = (0..calls)
        .map(|i| CallRequest::new("sleep", sleep_input(ms, i)))
        .collect();
    let start = Instant::now();
    let result = executor.run_batch(requests, BatchOptions::default()).await;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    if let Some(bad) = result.records.iter().find(|r| !r.outcome.is_ok()) {
        return Err(BenchError::Call(bad.outcome.to_string()));
    }
    Ok(Overlap {
        calls,
        wall_ms,
        sequential_ms: (calls as u64 * ms) as f64,
        limit_ms: ms as f64,
    })
}

/// `elapsed - deadline` for `spin` with a 20 ms deadline, 200 calls, 2 at once.
async fn measure_deadline(executor: &Arc<Executor>) -> Result<Spread, BenchError> {
    let deadline = Duration::from_millis(20);
    let spin = public(executor, "spin")?;
    let mut late = Vec::new();
    // Two at a time: one looping guest per worker thread.
    for _ in 0..100 {
        let options = CallOptions::default().timeout(deadline).fuel(u64::MAX / 4);
        let calls = (0..2)
            .map(|_| CallRequest::new(spin.clone(), "{}").with_options(options.clone()))
            .collect();
        for record in executor
            .run_batch(calls, BatchOptions::default())
            .await
            .records
        {
            if !matches!(record.outcome, Outcome::Timeout { .. }) {
                return Err(BenchError::Call(record.outcome.to_string()));
            }
            late.push(record.elapsed_ms - deadline.as_secs_f64() * 1e3);
        }
    }
    Ok(spread(late))
}

fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn measure_resident(executor: &Arc<Executor>, calls: usize) -> Result<Resident, BenchError> {
    let before_mib = resident_mib();
    let options = CallOptions::default().timeout(Duration::from_secs(60));
    let requests = (0..calls)
        .map(|i| CallRequest::new("sleep", sleep_input(3_000, i)).with_options(options.clone()))
        .collect();
    let batch = executor.submit(requests, BatchOptions::default());
    let start = Instant::now();
    while executor.in_flight() < calls && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if executor.in_flight() < calls {
        let in_flight = executor.in_flight();
        let records = batch.finish().await.records;
        let first = records
            .iter()
            .find(|r| !r.outcome.is_ok())
            .map(|r| r.outcome.to_string());
        return Err(BenchError::Call(format!(
            "only {in_flight} of {calls} calls got in flight; first failure: {first:?}"
        )));
    }
    let during_mib = resident_mib();
    drop(batch);
    while executor.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Resident {
        in_flight: calls,
        before_mib,
        during_mib,
        per_thousand_mib: (during_mib - before_mib) * 1000.0 / calls as f64,
    })
}

/// 10,000 `sleep` calls in flight on an engine of their own.
async fn measure_ten_thousand(sleep: &std::path::Path) -> Result<Resident, BenchError> {
    let engine = Engine::new({
        let mut c = EngineConfig::default();
        c.max_instances = 10_100;
        c
    })
    .map_err(setup)?;
    let executor = executor_for(&engine, &[sleep.to_path_buf()]).await?;
    measure_resident(&executor, 10_000).await
}

/// The kernel's `vm.max_map_count`, where it can be read.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Says why the 10,000-in-flight figure could not run and how to enable it.
fn skip_reason(error: &BenchError, max_map_count: Option<u64>) -> String {
    let text = error.to_string();
    let out_of_maps = text.contains("Cannot allocate memory") || text.contains("os error 12");
    match max_map_count {
        Some(count) if out_of_maps => format!(
            "{text}. 10,000 instances need more memory mappings than vm.max_map_count ({count}) allows; \
             enable the figure with `sudo sysctl -w vm.max_map_count=262144`, or leave it out with --no-ten-thousand"
        ),
        _ => format!("{text}; leave the figure out with --no-ten-thousand"),
    }
}

/// Best of 5 runs of `busy` with 20 million iterations.
async fn measure_cpu(executor: &Arc<Executor>) -> Result<f64, BenchError> {
    let busy = public(executor, "busy")?;
    let mut best = f64::INFINITY;
    for i in 0..5 {
        let input = json!({"iterations": 20_000_000 + i}).to_string();
        let options = CallOptions::default()
            .fuel(u64::MAX / 4)
            .timeout(Duration::from_secs(60));
        let record = executor.call(&busy, &input, options).await;
        if !record.outcome.is_ok() {
            return Err(BenchError::Call(record.outcome.to_string()));
        }
        best = best.min(record.elapsed_ms);
    }
    Ok(best)
}

fn measure_rate_check() -> (f64, f64) {
    let n = 2_000_000u32;
    let limiter =
        governor::RateLimiter::direct(governor::Quota::per_second(std::num::NonZeroU32::MAX));
    let start = Instant::now();
    let mut passed = 0u32;
    for _ in 0..n {
        passed += u32::from(limiter.check().is_ok());
    }
    let check_ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    for _ in 0..n {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let atomic_ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    std::hint::black_box((passed, counter.load(Ordering::Relaxed)));
    (check_ns, atomic_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_shortage_says_how_to_enable_the_figure() {
        let error =
            BenchError::Setup("failed to mmap: Cannot allocate memory (os error 12)".into());
        let reason = skip_reason(&error, Some(65_530));
        assert!(reason.contains("vm.max_map_count (65530)"), "{reason}");
        assert!(reason.contains("sysctl -w vm.max_map_count="), "{reason}");
        assert!(reason.contains("--no-ten-thousand"), "{reason}");
    }

    #[test]
    fn another_failure_is_named_as_it_is() {
        let error = BenchError::Call("only 12 of 10000 calls got in flight".into());
        let reason = skip_reason(&error, Some(65_530));
        assert!(reason.contains("only 12 of 10000"), "{reason}");
        assert!(!reason.contains("max_map_count"), "{reason}");
    }

    #[test]
    fn the_figure_is_skipped_not_fatal_when_it_cannot_run() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // A component that cannot load stands in for any setup failure.
        let missing = std::path::Path::new("/nonexistent/sleep.wasm");
        let error = runtime
            .block_on(measure_ten_thousand(missing))
            .expect_err("a missing component cannot run");
        assert!(matches!(error, BenchError::Setup(_)), "{error}");
    }
}
