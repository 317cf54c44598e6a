//! Side by side: the same host costs for tools written in different
//! languages (Rust, Python, JavaScript), measured in one run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchError;
use toolhost::measure;
use toolhost::{CallOptions, Catalog, Engine, EngineConfig, Executor, LoadEvent, LoadOptions};

/// One component to measure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LanguageCase {
    /// A label: `rust`, `python`, `js`.
    pub language: String,
    /// The component.
    pub wasm: PathBuf,
    /// The tool to call (its own or its public name).
    pub tool: String,
    /// A cheap input for it.
    pub input: String,
}

impl LanguageCase {
    /// A case to measure.
    pub fn new(language: &str, wasm: &Path, tool: &str, input: &str) -> Self {
        Self {
            language: language.into(),
            wasm: wasm.into(),
            tool: tool.into(),
            input: input.into(),
        }
    }
}

/// What one language's component costs the host.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LanguageCost {
    /// The label.
    pub language: String,
    /// The tool called.
    pub tool: String,
    /// Size of the component file.
    pub size_bytes: u64,
    /// `Component::new`, with nothing cached.
    pub compile_ms: f64,
    /// From nothing to a catalog ready to call, compiling (no cache).
    pub ready_uncached_ms: f64,
    /// The same with the compiled component in the on-disk cache.
    pub ready_cached_ms: f64,
    /// Peak linear memory of one call's instance (its size, not all resident).
    pub memory_per_call_bytes: u64,
    /// Resident memory per call in flight: the growth while many fresh
    /// instances are held at once, each after running one call.
    pub resident_per_instance_bytes: u64,
    /// Median wall time of one fresh-instance call through the executor.
    pub call_p50_us: f64,
    /// 99th percentile of the same.
    pub call_p99_us: f64,
    /// Median fuel of one call (wasm instructions, roughly).
    pub call_fuel: u64,
}

/// Measures each case: size, cold compile, start-to-ready without and with
/// the compile cache, memory per call and the latency of `calls` sequential
/// calls. Each case gets its own fresh cache folder.
pub fn languages(cases: &[LanguageCase], calls: usize) -> Result<Vec<LanguageCost>, BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(e.to_string()))?;
    let engine = Engine::new(EngineConfig::default()).map_err(|e| setup(e.to_string()))?;
    let mut costs = Vec::new();
    for case in cases {
        costs.push(runtime.block_on(measure(&engine, case, calls.max(1)))?);
    }
    Ok(costs)
}

async fn measure(
    engine: &Engine,
    case: &LanguageCase,
    calls: usize,
) -> Result<LanguageCost, BenchError> {
    let setup = |e: String| BenchError::Setup(format!("{}: {e}", case.wasm.display()));
    let size_bytes = std::fs::metadata(&case.wasm)
        .map_err(|e| setup(e.to_string()))?
        .len();
    let cache = tempfile_dir().map_err(|e| setup(e.to_string()))?;
    let paths = [case.wasm.clone()];

    let compile = Mutex::new(Duration::ZERO);
    let observe = |event: &LoadEvent| {
        if let LoadEvent::Compiled { elapsed, .. } = event
            && let Ok(mut compile) = compile.lock()
        {
            *compile = *elapsed;
        }
    };
    let options = {
        let mut c = LoadOptions::default();
        c.cache_dir = Some(cache.clone());
        c
    };
    let start = Instant::now();
    let catalog = Catalog::load_files(engine, &paths, &options, &observe)
        .await
        .map_err(|e| setup(e.to_string()))?;
    let ready_uncached = start.elapsed();
    if let Some(failure) = catalog.failures().first() {
        return Err(setup(failure.to_string()));
    }
    drop(catalog);

    let start = Instant::now();
    let catalog = Catalog::load_files(engine, &paths, &options, &|_| {})
        .await
        .map_err(|e| setup(e.to_string()))?;
    let ready_cached = start.elapsed();
    if catalog.stats().cache_hits != 1 {
        return Err(setup(
            "the second load did not come from the compile cache".into(),
        ));
    }
    let _ = std::fs::remove_dir_all(&cache);

    let public = catalog
        .tools()
        .find(|info| info.tool == case.tool || info.name == case.tool)
        .map(|info| info.name.clone())
        .ok_or_else(|| setup(format!("no tool `{}`", case.tool)))?;
    let executor = Executor::new(Arc::new(catalog));
    // First, while the pool's slots are still untouched.
    let resident = resident_per_instance(&executor, &public, &case.input, HELD).await?;
    let mut times = Vec::with_capacity(calls);
    let mut memory = 0;
    let mut fuel = Vec::with_capacity(calls);
    // A few calls first, so page faults and pool slots are warm.
    for i in 0..calls + 5 {
        let start = Instant::now();
        // Every call runs in a fresh instance: the result cache would answer
        // these pure tools without one.
        let options = {
            let mut c = CallOptions::default();
            c.no_cache = true;
            c
        };
        let record = executor.call(&public, &case.input, options).await;
        let elapsed = start.elapsed();
        if !record.outcome.is_ok() {
            return Err(BenchError::Call(format!("{public}: {}", record.outcome)));
        }
        if i >= 5 {
            times.push(elapsed);
            memory = memory.max(record.memory_peak_bytes.unwrap_or(0));
            fuel.push(record.fuel_used.unwrap_or(0));
        }
    }
    times.sort();
    fuel.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(LanguageCost {
        language: case.language.clone(),
        tool: public,
        size_bytes,
        compile_ms: compile.lock().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
        ready_uncached_ms: ready_uncached.as_secs_f64() * 1e3,
        ready_cached_ms: ready_cached.as_secs_f64() * 1e3,
        memory_per_call_bytes: memory,
        resident_per_instance_bytes: resident,
        call_p50_us: micros(times[times.len() / 2]),
        call_p99_us: micros(times[(times.len() * 99 / 100).min(times.len() - 1)]),
        call_fuel: fuel[fuel.len() / 2],
    })
}

/// Instances held at once for the resident-memory figure.
const HELD: usize = 200;

/// Resident memory growth per instance while `n` fresh instances of the
/// tool's component are alive, each after one call.
async fn resident_per_instance(
    executor: &Executor,
    tool: &str,
    input: &str,
    n: usize,
) -> Result<u64, BenchError> {
    let catalog = executor.catalog();
    if catalog.tool(tool).is_none() {
        return Err(BenchError::Setup(format!("no tool `{tool}`")));
    }
    let before = resident_bytes();
    let held = measure::hold(&catalog, tool, input, n)
        .await
        .map_err(|e| BenchError::Call(format!("{tool}: holding {n} instances: {e:#}")))?;
    let during = resident_bytes();
    drop(held);
    Ok(during.saturating_sub(before) / n as u64)
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// A fresh, empty folder for one case's compile cache.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("toolhost-bench-{}-{nanos}", std::process::id()));
    // Created here and now, owner-only: the compile cache refuses a folder
    // another user could have made or could write.
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    Ok(dir)
}
