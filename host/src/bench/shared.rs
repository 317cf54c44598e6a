//! What sharing quotas through Redis adds to a call: the same tenant's
//! calls through one executor with its quotas in this process and through
//! one with them in Redis, measured in turns in the same run, and the
//! requests Redis served per call.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use toolhost::tenancy::{Caller, Observer, Tenant};
use toolhost::{CallOptions, CallRecord, Catalog, Engine, EngineConfig, Executor, LoadOptions};

use super::{BenchError, drive_options};

/// One row: calls at `in_flight`, local against Redis.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SharedRow {
    /// Calls in flight at once.
    pub in_flight: usize,
    /// Microseconds per call with the quotas in this process (best round).
    pub local_us: f64,
    /// Microseconds per call with the quotas in Redis (best round).
    pub redis_us: f64,
    /// `redis_us - local_us`.
    pub added_us: f64,
    /// Requests Redis served per call (`INFO commandstats`: scripts, GETs).
    pub round_trips_per_call: f64,
}

struct Quiet;

impl Observer for Quiet {
    fn refused(&self, _: &str, _: &'static str) {}
    fn settled(&self, _: &str, _: &CallRecord) {}
}

/// Measures `calls` calls of `tool` at 1 and 50 in flight, quotas local
/// against quotas in the Redis at `port` on loopback.
pub fn shared_quotas(
    wasm: &Path,
    tool: &str,
    input: &str,
    port: u16,
    calls: usize,
) -> Result<Vec<SharedRow>, BenchError> {
    let setup = |e: String| BenchError::Setup(e);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| setup(e.to_string()))?;
    runtime.block_on(async {
        let engine = Engine::new(EngineConfig::default()).map_err(|e| setup(e.to_string()))?;
        let mut load = LoadOptions::default();
        load.defaults.max_concurrency = 64;
        let catalog = Arc::new(
            Catalog::load_files(&engine, &[wasm.to_path_buf()], &load, &|_| {})
                .await
                .map_err(|e| setup(e.to_string()))?,
        );
        let public = catalog
            .tools()
            .find(|info| info.tool == tool || info.name == tool)
            .map(|info| info.name.clone())
            .ok_or_else(|| setup(format!("{} has no tool `{tool}`", wasm.display())))?;
        // A tenant with every quota set, generous enough never to refuse:
        // the cost of keeping them, not of being refused.
        let mut tenant = Tenant::unlimited("bench");
        tenant.rate = Some(toolhost::parse_rate("1000000/s", None).map_err(setup)?);
        tenant.concurrency = Some(10_000);
        tenant.fuel_per_minute = Some(u64::MAX / 4);
        let mut redis = toolhost::serve::RedisConfig::new(format!("redis://127.0.0.1:{port}"));
        redis.node = Some("bench".into());
        let shared = redis.open().map_err(|e| setup(e.to_string()))?;
        let maintain = tokio::spawn(shared.clone().maintain());
        let executor = |shared| {
            let mut config = toolhost::ExecConfig::default();
            config.cache.max_entries = 0;
            config.shared = shared;
            Arc::new(Executor::with_config(catalog.clone(), config))
        };
        let local = (executor(None), Caller::new(tenant.clone()));
        let remote = (
            executor(Some(shared.clone())),
            Caller::observed(tenant, Arc::new(Quiet), Some(shared)),
        );
        let mut rows = Vec::new();
        for in_flight in [1, 50] {
            let n = if in_flight == 1 { calls / 5 } else { calls };
            run(&local, &public, input, n.min(2000), in_flight).await?;
            run(&remote, &public, input, n.min(2000), in_flight).await?;
            let (mut best_local, mut best_redis, mut trips) = (f64::MAX, f64::MAX, 0.0f64);
            for _ in 0..3 {
                let elapsed = run(&local, &public, input, n, in_flight).await?;
                best_local = best_local.min(elapsed.as_secs_f64() * 1e6 / n as f64);
                let before = round_trips(port).map_err(|e| setup(e.to_string()))?;
                let elapsed = run(&remote, &public, input, n, in_flight).await?;
                let after = round_trips(port).map_err(|e| setup(e.to_string()))?;
                best_redis = best_redis.min(elapsed.as_secs_f64() * 1e6 / n as f64);
                trips = trips.max(after.saturating_sub(before) as f64 / n as f64);
            }
            rows.push(SharedRow {
                in_flight,
                local_us: best_local,
                redis_us: best_redis,
                added_us: best_redis - best_local,
                round_trips_per_call: trips,
            });
        }
        maintain.abort();
        Ok(rows)
    })
}

async fn run(
    (executor, caller): &(Arc<Executor>, Caller),
    tool: &str,
    input: &str,
    calls: usize,
    in_flight: usize,
) -> Result<Duration, BenchError> {
    let caller = caller.clone();
    drive_options(executor, tool, input, calls, in_flight, move || {
        CallOptions::default().tenant(caller.clone())
    })
    .await
}

/// Requests the Redis at `port` has served: scripts, `GET`s, script loads.
pub fn round_trips(port: u16) -> std::io::Result<u64> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"INFO commandstats\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let length: usize = line.trim_start_matches('$').trim().parse().unwrap_or(0);
    let mut bulk = vec![0; length];
    reader.read_exact(&mut bulk)?;
    Ok(toolhost::serve::requests_in_commandstats(
        &String::from_utf8_lossy(&bulk),
    ))
}
