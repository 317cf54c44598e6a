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

use super::{BenchError, reference};
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
    /// The figures to measure; empty for all of them.
    pub rows: Vec<Row>,
    /// Rounds of each tail figure (overhead, overlap, deadlines): each
    /// round gives its own percentiles, and the report is their median, so
    /// one unlucky round does not make the figure.
    pub rounds: usize,
    /// Where the 10,000-in-flight figure is measured.
    pub ten_thousand: TenThousand,
    /// The Python interpreter that runs the unsandboxed reference
    /// orchestrator beside the overlap figure; `None` leaves it out.
    pub python: Option<PathBuf>,
}

impl SuiteConfig {
    /// Components in `tools_dir` (sleep) and `guests_dir` (misbehave).
    pub fn new(sleep: PathBuf, misbehave: PathBuf) -> Self {
        Self {
            sleep,
            misbehave,
            sleep_ms: 100,
            rows: Vec::new(),
            rounds: 5,
            ten_thousand: TenThousand::Here,
            python: Some(PathBuf::from("python3")),
        }
    }

    fn wants(&self, row: Row) -> bool {
        self.rows.is_empty() || self.rows.contains(&row)
    }
}

/// One figure of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Row {
    /// Coordination overhead at 1, 100 and 1,000 sleeps in flight.
    Overhead,
    /// Wall time of 10 to 1,000 sleeps at once.
    Overlap,
    /// Deadline to return of looping guests, 2 and 100 at once.
    Deadline,
    /// Resident memory with 1,000 sleeps in flight.
    Resident,
    /// Resident memory with 10,000 sleeps in flight, on an engine of its own.
    TenThousand,
    /// A CPU-bound guest with fuel and epochs, epochs only, and neither.
    Cpu,
    /// What a rate-limit check costs.
    RateCheck,
}

/// Where the 10,000-in-flight figure runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TenThousand {
    /// In this process, after whatever else the suite measured.
    Here,
    /// The figure's baseline, in this process: 10,000 fresh instances of
    /// `sleep`, each held alive after one call, with no executor around them.
    HeldHere,
    /// In a fresh child process: this program run as
    /// `bench --suite executor --rows ten-thousand --ten-thousand-here --json`,
    /// so no earlier figure has warmed the pool or grown the heap; and its
    /// baseline ([`TenThousand::HeldHere`]) likewise in a child of its own.
    Child(PathBuf),
}

/// Percentiles of a set of durations, in milliseconds, measured in rounds:
/// `p50_ms` and `p99_ms` are the medians of the rounds' own percentiles.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct Spread {
    /// Median (median of the rounds' medians).
    pub p50_ms: f64,
    /// 99th percentile (median of the rounds' 99th percentiles).
    pub p99_ms: f64,
    /// The worst round's 99th percentile.
    pub p99_worst_ms: f64,
    /// Largest of all.
    pub max_ms: f64,
    /// Rounds measured.
    pub rounds: usize,
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    values
        .get(((values.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Combines rounds of samples: each round's percentiles, then their median.
fn spread(rounds: Vec<Vec<f64>>) -> Spread {
    let (mut p50s, mut p99s, mut max) = (Vec::new(), Vec::new(), f64::NAN);
    for mut values in rounds.into_iter().filter(|v| !v.is_empty()) {
        values.sort_by(f64::total_cmp);
        p50s.push(quantile(&values, 0.5));
        p99s.push(quantile(&values, 0.99));
        max = max.max(values.last().copied().unwrap_or(f64::NAN));
    }
    p50s.sort_by(f64::total_cmp);
    p99s.sort_by(f64::total_cmp);
    Spread {
        p50_ms: quantile(&p50s, 0.5),
        p99_ms: quantile(&p99s, 0.5),
        p99_worst_ms: p99s.last().copied().unwrap_or(f64::NAN),
        max_ms: max,
        rounds: p99s.len(),
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
    /// Wall time of all of them, in milliseconds (median of the rounds).
    pub wall_ms: f64,
    /// The slowest round's wall time.
    pub wall_worst_ms: f64,
    /// The same calls through the bare wasmtime loop (median of the rounds).
    pub bare_wall_ms: f64,
    /// N × L: the calls one after another.
    pub sequential_ms: f64,
    /// L: the limit.
    pub limit_ms: f64,
    /// The process's CPU time per call, in microseconds (median of the
    /// rounds), every thread counted: where the wall goes once the calls
    /// outnumber the cores. `None` where the kernel does not say.
    pub cpu_us_per_call: Option<f64>,
    /// The same for the bare loop.
    pub bare_cpu_us_per_call: Option<f64>,
    /// The same calls through the unsandboxed Python orchestrator, in a
    /// process of its own (median of as many rounds); `None` when it did not
    /// run.
    pub python_wall_ms: Option<f64>,
    /// Its process's CPU per call, in microseconds (median round).
    pub python_cpu_us_per_call: Option<f64>,
}

/// Memory with many calls in flight.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Resident {
    /// Calls in flight (or instances held).
    pub in_flight: usize,
    /// The baseline: fresh instances held after one call each, no executor.
    pub held: bool,
    /// Resident memory of the process before, in MiB.
    pub before_mib: f64,
    /// Resident memory with the calls in flight, in MiB.
    pub during_mib: f64,
    /// `(during - before)` per 1,000 calls, in MiB.
    pub per_thousand_mib: f64,
    /// The same for anonymous memory alone: what the calls took of their
    /// own, without the file pages they map (each instance maps its
    /// component's initial memory from the compiled file, one copy shared
    /// by all, but counted in RSS once per instance).
    pub anon_per_thousand_mib: f64,
    /// From submitting the calls to reading the memory, in ms.
    pub settled_ms: f64,
}

/// How soon looping guests return after their deadline.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Deadline {
    /// Looping guests at once (each with a 20 ms deadline).
    pub at_once: usize,
    /// `elapsed - deadline` per call.
    pub late: Spread,
}

/// A CPU-bound guest: what fuel and epochs cost.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Cpu {
    /// Milliseconds with fuel and epochs (best of 5).
    pub fuel_ms: f64,
    /// Same work, epoch interruption only.
    pub epoch_ms: f64,
    /// Same work, neither.
    pub neither_ms: f64,
}

/// What a rate-limit check costs.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RateCheck {
    /// Nanoseconds per governor rate-limit check.
    pub check_ns: f64,
    /// Nanoseconds per atomic increment, the baseline for the check.
    pub atomic_ns: f64,
}

/// The suite's figures; what was not asked for is empty.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct ExecutorSuite {
    /// Coordination overhead by calls in flight.
    pub overhead: Vec<Overhead>,
    /// Overlap of waiting calls.
    pub overlap: Vec<Overlap>,
    /// Deadline to return for guests in an infinite loop, by guests at once.
    pub deadline: Vec<Deadline>,
    /// Memory per calls in flight.
    pub resident: Vec<Resident>,
    /// Why the 10,000-in-flight figure is missing, when it was asked for and
    /// could not run (the rest of the suite runs regardless).
    pub ten_thousand_skipped: Option<String>,
    /// Why the Python orchestrator's figures are missing, when it could not
    /// run (no `python3` 3.11 or newer, say).
    pub python_skipped: Option<String>,
    /// A CPU-bound guest.
    pub cpu: Option<Cpu>,
    /// The rate-limit check.
    pub rate_check: Option<RateCheck>,
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

/// Runs the suite (the rows `config` asks for) on a 2-worker tokio runtime.
pub fn executor_suite(config: &SuiteConfig) -> Result<ExecutorSuite, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(setup)?;
    runtime.block_on(async {
        let mut suite = ExecutorSuite::default();
        let rounds = config.rounds.max(1);
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
        if config.wants(Row::Overhead) {
            for in_flight in [1, 100, 1000] {
                suite.overhead.push(
                    measure_overhead(&executor, &bare, in_flight, config.sleep_ms, rounds).await?,
                );
            }
        }
        if config.wants(Row::Overlap) {
            let mut python = config.python.as_deref();
            if python.is_none() {
                suite.python_skipped = Some("not asked for".into());
            }
            for calls in [10, 50, 200, 1000] {
                let mut overlap =
                    measure_overlap(&executor, &bare, calls, config.sleep_ms, rounds).await?;
                // In a process of its own, while this one waits.
                if let Some(program) = python {
                    match reference::sleeps(program, calls, config.sleep_ms, rounds) {
                        Ok(sleeps) => {
                            overlap.python_wall_ms = Some(sleeps.wall_ms);
                            overlap.python_cpu_us_per_call = Some(sleeps.cpu_us_per_call);
                        }
                        Err(reason) => {
                            suite.python_skipped = Some(reason);
                            python = None;
                        }
                    }
                }
                suite.overlap.push(overlap);
            }
        }
        if config.wants(Row::Deadline) {
            for at_once in [2, 100] {
                suite.deadline.push(Deadline {
                    at_once,
                    late: measure_deadline(&executor, at_once, rounds).await?,
                });
            }
        }
        if config.wants(Row::Resident) {
            suite
                .resident
                .push(measure_resident(&executor, 1000).await?);
        }
        if config.wants(Row::TenThousand) {
            let figures = match &config.ten_thousand {
                here @ (TenThousand::Here | TenThousand::HeldHere) => {
                    let held = matches!(here, TenThousand::HeldHere);
                    measure_ten_thousand(&config.sleep, held)
                        .await
                        .map(|figure| vec![figure])
                        .map_err(|e| skip_reason(&e, max_map_count()))
                }
                TenThousand::Child(program) => {
                    let calls = ten_thousand_in_child(program, config, false).await;
                    match calls {
                        Ok(calls) => ten_thousand_in_child(program, config, true)
                            .await
                            .map(|held| vec![calls, held]),
                        Err(reason) => Err(reason),
                    }
                }
            };
            match figures {
                Ok(figures) => suite.resident.extend(figures),
                Err(reason) => suite.ten_thousand_skipped = Some(reason),
            }
        }
        if config.wants(Row::Cpu) {
            suite.cpu = Some(measure_cpus(&executor, &config.misbehave).await?);
        }
        if config.wants(Row::RateCheck) {
            let (check_ns, atomic_ns) = measure_rate_check();
            suite.rate_check = Some(RateCheck {
                check_ns,
                atomic_ns,
            });
        }
        Ok(suite)
    })
}

/// The CPU-bound guest on engines with fuel and epochs, epochs only, neither.
async fn measure_cpus(
    executor: &Arc<Executor>,
    misbehave: &std::path::Path,
) -> Result<Cpu, BenchError> {
    let fuel_ms = measure_cpu(executor).await?;
    let mut only_epochs = EngineConfig::default();
    only_epochs.fuel = false;
    let mut neither = only_epochs.clone();
    neither.epoch_interruption = false;
    let mut figures = Vec::new();
    for config in [only_epochs, neither] {
        let engine = Engine::new(config).map_err(setup)?;
        let executor = executor_for(&engine, &[misbehave.to_path_buf()]).await?;
        figures.push(measure_cpu(&executor).await?);
    }
    Ok(Cpu {
        fuel_ms,
        epoch_ms: figures[0],
        neither_ms: figures[1],
    })
}

fn sleep_input(ms: u64, _call: usize) -> String {
    // The suite's executor has no result cache, so equal inputs all run.
    json!({"ms": ms}).to_string()
}

/// `elapsed - slept` per call with `in_flight` sleeps at once, through the
/// executor and through the bare loop, in `rounds` rounds (a round of one
/// call in flight is 20 calls one after another).
async fn measure_overhead(
    executor: &Arc<Executor>,
    bare: &Arc<Baseline>,
    in_flight: usize,
    ms: u64,
    rounds: usize,
) -> Result<Overhead, BenchError> {
    let batches = if in_flight == 1 { 20 } else { 1 };
    let mut executor_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    for _ in 0..rounds {
        let mut executor_extra = Vec::new();
        let mut bare_extra = Vec::new();
        for _ in 0..batches {
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
            for (elapsed, output) in bare_sleeps(bare, in_flight, ms).await? {
                let slept = serde_json::from_str::<serde_json::Value>(&output)
                    .ok()
                    .and_then(|o| o["slept_ms"].as_f64())
                    .unwrap_or(f64::NAN);
                bare_extra.push(elapsed.as_secs_f64() * 1e3 - slept);
            }
        }
        executor_rounds.push(executor_extra);
        bare_rounds.push(bare_extra);
    }
    Ok(Overhead {
        in_flight,
        executor: spread(executor_rounds),
        bare: spread(bare_rounds),
    })
}

/// `calls` sleeps of `ms` through the bare loop, all at once, each on its own
/// task: each one's time and output, in order.
async fn bare_sleeps(
    bare: &Arc<Baseline>,
    calls: usize,
    ms: u64,
) -> Result<Vec<(Duration, String)>, BenchError> {
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let (bare, input) = (bare.clone(), sleep_input(ms, i));
            tokio::spawn(async move {
                let start = Instant::now();
                let output = bare.call_output("sleep", &input).await;
                (start.elapsed(), output)
            })
        })
        .collect();
    let mut done = Vec::with_capacity(calls);
    for task in tasks {
        let (elapsed, output) = task.await.map_err(setup)?;
        done.push((
            elapsed,
            output.map_err(|e| BenchError::Call(format!("{e:#}")))?,
        ));
    }
    Ok(done)
}

/// Wall time of `calls` sleeps at once, through the executor and through
/// the bare loop.
async fn measure_overlap(
    executor: &Arc<Executor>,
    bare: &Arc<Baseline>,
    calls: usize,
    ms: u64,
    rounds: usize,
) -> Result<Overlap, BenchError> {
    let (mut walls, mut bare_walls) = (Vec::new(), Vec::new());
    let (mut cpus, mut bare_cpus) = (Vec::new(), Vec::new());
    // `None` when the sum went down: a thread that ended took its time along.
    let per_call = |before: Option<Duration>| {
        Some(cpu_time()?.checked_sub(before?)?.as_secs_f64() * 1e6 / calls as f64)
    };
    for _ in 0..rounds {
        let (start, cpu) = (Instant::now(), cpu_time());
        bare_sleeps(bare, calls, ms).await?;
        bare_walls.push(start.elapsed().as_secs_f64() * 1e3);
        bare_cpus.extend(per_call(cpu));
        let requests = (0..calls)
            .map(|i| CallRequest::new("sleep", sleep_input(ms, i)))
            .collect();
        let (start, cpu) = (Instant::now(), cpu_time());
        let result = executor.run_batch(requests, BatchOptions::default()).await;
        walls.push(start.elapsed().as_secs_f64() * 1e3);
        cpus.extend(per_call(cpu));
        if let Some(bad) = result.records.iter().find(|r| !r.outcome.is_ok()) {
            return Err(BenchError::Call(bad.outcome.to_string()));
        }
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (!values.is_empty()).then(|| quantile(&values, 0.5))
    };
    walls.sort_by(f64::total_cmp);
    bare_walls.sort_by(f64::total_cmp);
    Ok(Overlap {
        calls,
        wall_ms: quantile(&walls, 0.5),
        wall_worst_ms: walls.last().copied().unwrap_or(f64::NAN),
        bare_wall_ms: quantile(&bare_walls, 0.5),
        sequential_ms: (calls as u64 * ms) as f64,
        limit_ms: ms as f64,
        cpu_us_per_call: median(cpus),
        bare_cpu_us_per_call: median(bare_cpus),
        python_wall_ms: None,
        python_cpu_us_per_call: None,
    })
}

/// CPU time this process's threads have run so far (Linux's per-thread
/// `schedstat`, in nanoseconds); `None` where there is no such file.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        // A thread that ended between the listing and the read counts nothing.
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// `elapsed - deadline` for `spin` with a 20 ms deadline, `at_once` calls
/// at once, at least 200 calls a round.
async fn measure_deadline(
    executor: &Arc<Executor>,
    at_once: usize,
    rounds: usize,
) -> Result<Spread, BenchError> {
    let deadline = Duration::from_millis(20);
    let spin = public(executor, "spin")?;
    let batches = 200usize.div_ceil(at_once);
    let mut all = Vec::new();
    for _ in 0..rounds {
        let mut late = Vec::new();
        for _ in 0..batches {
            let options = CallOptions::default().timeout(deadline).fuel(u64::MAX / 4);
            let calls = (0..at_once)
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
        all.push(late);
    }
    Ok(spread(all))
}

/// This process's resident memory in MiB, from `/proc/self/status`: all of
/// it, and the part that is its own (anonymous) rather than file pages it
/// maps (which the kernel counts once per mapping, though they are one copy
/// in the page cache).
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: f64,
    anon: f64,
}

fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Memory {
        rss: field("VmRSS:"),
        anon: field("RssAnon:"),
    }
}

/// Holds `calls` sleeps in flight and reads the process's resident memory
/// once it has settled: every call admitted and no longer growing, so each
/// guest is inside its sleep (a call counts as in flight from admission,
/// before its instance exists).
async fn measure_resident(executor: &Arc<Executor>, calls: usize) -> Result<Resident, BenchError> {
    let before = memory();
    let options = CallOptions::default().timeout(Duration::from_secs(120));
    let requests = (0..calls)
        .map(|i| CallRequest::new("sleep", sleep_input(60_000, i)).with_options(options.clone()))
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
    let during = settled().await;
    drop(batch);
    while executor.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(resident(calls, false, before, during, start))
}

/// The figure for `n` calls (or, `held`, instances) from the memory
/// `before` and `during`, read `start.elapsed()` after they began.
fn resident(n: usize, held: bool, before: Memory, during: Memory, start: Instant) -> Resident {
    let per_thousand = |after: f64, before: f64| (after - before) * 1000.0 / n as f64;
    Resident {
        in_flight: n,
        held,
        before_mib: before.rss,
        during_mib: during.rss,
        per_thousand_mib: per_thousand(during.rss, before.rss),
        anon_per_thousand_mib: per_thousand(during.anon, before.anon),
        settled_ms: start.elapsed().as_secs_f64() * 1e3,
    }
}

/// The process's memory once it has grown by less than 0.1 MiB in each of
/// five samples 20 ms apart (at most 20 s).
async fn settled() -> Memory {
    let start = Instant::now();
    let (mut last, mut steady) = (memory(), 0);
    while steady < 5 && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = memory();
        steady = if (now.rss - last.rss).abs() < 0.1 {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    last
}

/// 10,000 `sleep` calls in flight on an engine of their own; or, `held`,
/// the baseline: 10,000 fresh instances held after one call each.
async fn measure_ten_thousand(sleep: &std::path::Path, held: bool) -> Result<Resident, BenchError> {
    let engine = Engine::new({
        let mut c = EngineConfig::default();
        c.max_instances = 10_100;
        c
    })
    .map_err(setup)?;
    let executor = executor_for(&engine, &[sleep.to_path_buf()]).await?;
    if held {
        measure_held(&executor, 10_000).await
    } else {
        measure_resident(&executor, 10_000).await
    }
}

/// Resident memory of `n` fresh instances of `sleep`, each made and called
/// as a call makes it (same grants, limits and store settings), then held
/// alive: what the instances themselves take, without the executor's own
/// part of a call in flight (its task, admission, records).
async fn measure_held(executor: &Arc<Executor>, n: usize) -> Result<Resident, BenchError> {
    let before = memory();
    let start = Instant::now();
    let catalog = executor.catalog();
    let held = toolhost::measure::hold(&catalog, &public(executor, "sleep")?, r#"{"ms":0}"#, n)
        .await
        .map_err(|e| BenchError::Call(format!("holding {n} instances: {e:#}")))?;
    let figure = resident(n, true, before, settled().await, start);
    drop(held);
    Ok(figure)
}

/// The 10,000-in-flight figure from a fresh child process running
/// `program`, or why it is missing.
async fn ten_thousand_in_child(
    program: &std::path::Path,
    config: &SuiteConfig,
    held: bool,
) -> Result<Resident, String> {
    let output = run_ten_thousand_child(program, config, held).await;
    let child = output.map_err(|e| skip_reason(&e, max_map_count()))?;
    if let Some(reason) = child["ten_thousand_skipped"].as_str() {
        return Err(reason.to_string());
    }
    let figure = &child["resident"][0];
    let number = |field: &str| {
        figure[field]
            .as_f64()
            .ok_or_else(|| format!("the child's figures have no `{field}`"))
    };
    Ok(Resident {
        in_flight: 10_000,
        held,
        before_mib: number("before_mib")?,
        during_mib: number("during_mib")?,
        per_thousand_mib: number("per_thousand_mib")?,
        anon_per_thousand_mib: number("anon_per_thousand_mib")?,
        settled_ms: number("settled_ms")?,
    })
}

/// Runs the child and reads its JSON.
async fn run_ten_thousand_child(
    program: &std::path::Path,
    config: &SuiteConfig,
    held: bool,
) -> Result<serde_json::Value, BenchError> {
    let mut command = std::process::Command::new(program);
    command
        .args(["bench", "--suite", "executor", "--rows", "ten-thousand"])
        .args(["--ten-thousand-here", "--json", "--sleep"])
        .arg(&config.sleep)
        .arg("--misbehave")
        .arg(&config.misbehave);
    if held {
        command.arg("--ten-thousand-held");
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(setup)?
        .map_err(|e| setup(format!("could not run {}: {e}", program.display())))?;
    if !output.status.success() {
        return Err(setup(format!(
            "the child measuring 10,000 calls in flight failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| setup(format!("the child's figures are not JSON: {e}")))
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
             enable the figure with `sudo sysctl -w vm.max_map_count=262144`, or leave it out with --no-ten-thousand (or --rows)"
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
            .block_on(measure_ten_thousand(missing, false))
            .expect_err("a missing component cannot run");
        assert!(matches!(error, BenchError::Setup(_)), "{error}");
    }
}
