//! The one wasmtime [`Engine`](wasmtime::Engine) a host runs on, and the
//! epoch ticker that lets deadlines stop guests that never yield.
//!
//! This is the thin wrapper that owns wasmtime's configuration: the component
//! model, async calls, the pooling allocator with memories and tables kept
//! resident, epoch interruption and fuel. The rest of the crate asks it for
//! what it needs and never configures wasmtime itself.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::turns::Turns;

/// How the engine is built. The defaults suit a server on a small machine.
///
/// Secure defaults: fuel is counted and epoch interruption is on, so a guest
/// that computes past its deadline is stopped whether or not it ever yields
/// (deadlines are checked every 1 ms tick); no tool gets more than 512 MiB of
/// linear memory whatever its policy asks; at most 1,000 instances exist at
/// once, from a pool reserved up front.
///
/// # Examples
///
/// ```
/// use toolhost_runtime::{Engine, EngineConfig};
///
/// let mut config = EngineConfig::default();
/// config.max_instances = 32;
/// config.max_memory_mb = 128;
/// let engine = Engine::new(config)?;
/// assert_eq!(engine.config().max_memory_mb, 128);
/// # Ok::<(), toolhost_runtime::EngineError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How many tool instances may exist at once (the pool's size). Calls
    /// beyond it wait for a free slot.
    pub max_instances: u32,
    /// The largest linear memory any tool may be granted, in MiB. A policy may
    /// ask for less, never more.
    pub max_memory_mb: u64,
    /// Count fuel (deterministic CPU budgets). Costs a little speed.
    pub fuel: bool,
    /// Epoch interruption: what stops a guest that computes past its
    /// deadline. Turning it off leaves only fuel to stop a looping guest;
    /// it exists to measure what it costs.
    pub epoch_interruption: bool,
    /// How often the epoch ticks; deadlines are checked at this granularity.
    pub epoch_tick: Duration,
    /// Use the pooling instance allocator (fast, fixed virtual reservation).
    /// Without it instances are allocated on demand.
    pub pooling: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory_mb: 512,
            fuel: true,
            epoch_interruption: true,
            epoch_tick: Duration::from_millis(1),
            pooling: true,
        }
    }
}

/// An error building the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("could not create the wasmtime engine: {0}")]
    Create(String),
    /// A setting is out of range.
    #[error("invalid engine setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The shared wasmtime engine plus its epoch ticker. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: wasmtime::Engine,
    config: EngineConfig,
    fingerprint: String,
    ticker: Arc<Ticker>,
}

/// The epoch ticker's state. It ticks only while a guest may be computing
/// ([`Engine::busy`]) or waits for a turn, and a few ticks after; then its
/// thread is parked, so a host whose calls all wait on host calls (a sleep,
/// a slow server), or that has no calls, makes no wake-ups at all.
#[derive(Debug)]
struct Ticker {
    stop: AtomicBool,
    /// Guests being polled: only those can compute.
    busy: AtomicUsize,
    /// Ticks made so far.
    ticks: AtomicU64,
    thread: OnceLock<thread::Thread>,
    /// The line of guests computing through ticks; the ticker wakes those
    /// whose deadline passed while they waited.
    turns: Arc<Turns>,
}

impl Ticker {
    fn new(tick: Duration) -> Self {
        Self {
            stop: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            ticks: AtomicU64::new(0),
            thread: OnceLock::new(),
            turns: Arc::new(Turns::new(tick)),
        }
    }

    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// Keeps the epoch ticking while held: a guest's future holds one while it
/// is polled, the only time guest code runs, so its deadline is always
/// checked.
#[derive(Debug)]
pub(crate) struct Busy<'a>(&'a Ticker);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Per-component limits of the pool: generous enough for componentize-py and
/// jco output, which hold many core instances, memories and tables.
/// Measured: a componentize-py component instantiates 14 core modules (one
/// memory, two tables), a componentize-js one 4, a Rust one 3.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
/// Core instances in the pool per component instance slot: enough for every
/// slot to hold a Python tool (14), so the executor's slot count, not the
/// core-instance pool, is what limits calls in flight. A core instance slot
/// is only a count (its VM context is allocated per instance), so this costs
/// no reserved memory.
const CORE_INSTANCES_PER_SLOT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 8;
const TABLES_PER_COMPONENT: u32 = 32;

impl Engine {
    /// Builds an engine and starts its epoch ticker thread.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        if config.max_instances == 0 {
            return Err(EngineError::Invalid {
                field: "max_instances",
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=4096).contains(&config.max_memory_mb) {
            return Err(EngineError::Invalid {
                field: "max_memory_mb",
                reason: "must be from 1 to 4096".into(),
            });
        }
        if config.epoch_tick.is_zero() {
            return Err(EngineError::Invalid {
                field: "epoch_tick",
                reason: "must be longer than zero".into(),
            });
        }
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(config.epoch_interruption)
            .consume_fuel(config.fuel)
            .parallel_compilation(true)
            .max_wasm_stack(1 << 20);
        if config.pooling {
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(&config)));
        }
        let engine =
            wasmtime::Engine::new(&wasm).map_err(|e| EngineError::Create(format!("{e:#}")))?;
        let fingerprint = fingerprint(&engine);
        let ticker = Arc::new(Ticker::new(config.epoch_tick));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker.clone()).map_err(|e| {
            EngineError::Create(format!("could not start the epoch ticker thread: {e}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                fingerprint,
                ticker,
            }),
        })
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// A short hex string that changes whenever compiled code from this
    /// engine would not load in another: wasmtime's version and settings.
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// Starts the epoch ticking (if it was idle) until the guard is dropped.
    pub(crate) fn busy(&self) -> Busy<'_> {
        let ticker = &self.inner.ticker;
        if ticker.busy.fetch_add(1, Ordering::SeqCst) == 0 {
            ticker.wake();
        }
        Busy(ticker)
    }

    /// The line of guests computing through epoch ticks.
    pub(crate) fn turns(&self) -> &Arc<Turns> {
        &self.inner.ticker.turns
    }

    /// Epoch ticks made so far.
    #[cfg(test)]
    pub(crate) fn ticks(&self) -> u64 {
        self.inner.ticker.ticks.load(Ordering::SeqCst)
    }

    /// A small engine without the pool, for tests.
    #[cfg(test)]
    pub(crate) fn small() -> Self {
        Self::new(EngineConfig {
            max_instances: 4,
            pooling: false,
            ..EngineConfig::default()
        })
        .unwrap()
    }

    /// Waits (at most 10 s) until the tick count stops moving: it never
    /// does while the ticker runs, as it ticks every millisecond.
    #[cfg(test)]
    pub(crate) fn settle(&self) {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let before = self.ticks();
            thread::sleep(Duration::from_millis(50));
            if self.ticks() == before {
                return;
            }
            assert!(
                std::time::Instant::now() < give_up,
                "the epoch kept ticking with no guest polled"
            );
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::SeqCst);
        self.ticker.wake();
    }
}

fn pooling(config: &EngineConfig) -> PoolingAllocationConfig {
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_SLOT))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .max_memory_size((config.max_memory_mb as usize) << 20)
        // Keeping the first MiB of each slot resident turns most of the
        // per-call madvise/mmap work into resetting the pages a call
        // dirtied (found with `pagemap_scan` where the kernel has it).
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto)
        .max_unused_warm_slots(n);
    pool
}

fn fingerprint(engine: &wasmtime::Engine) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Ticks the ticker makes with no guest polled before it parks: calls that
/// follow each other closely (one worker running them back to back polls
/// no guest between two) would otherwise wake it from its park, a system
/// call, every few calls.
const IDLE_TICKS: u32 = 20;

/// The ticker is what stops a guest that never yields: without it no deadline
/// could interrupt a loop, so failing to start it fails the engine. It parks
/// once no guest has been polled and none has waited for a turn for
/// [`IDLE_TICKS`] ticks; the next [`Engine::busy`] wakes it (a wake before it
/// parks is kept by the thread, so none is lost), and once woken it ticks
/// at least that many times, so a guest that joins the line without being
/// polled (behind holders nobody polls) is swept too.
fn spawn_ticker(
    engine: wasmtime::Engine,
    tick: Duration,
    ticker: Arc<Ticker>,
) -> std::io::Result<()> {
    let state = ticker.clone();
    let handle = thread::Builder::new()
        .name("toolhost-epoch".into())
        .spawn(move || {
            // Parked at first: an engine nobody calls never ticks.
            let mut idle = IDLE_TICKS;
            let mut waiting = false;
            while !state.stop.load(Ordering::SeqCst) {
                if state.busy.load(Ordering::SeqCst) != 0 || waiting {
                    idle = 0;
                } else if idle >= IDLE_TICKS {
                    thread::park();
                    idle = 0;
                    continue;
                } else {
                    idle += 1;
                }
                thread::sleep(tick);
                engine.increment_epoch();
                state.ticks.fetch_add(1, Ordering::SeqCst);
                // Two ticks late: guests holding turns expire waiters on
                // time; this is for a line nobody is computing in.
                let now = std::time::Instant::now();
                waiting = state.turns.sweep(now.checked_sub(tick * 2).unwrap_or(now));
            }
        })?;
    // Set before the engine exists for anyone to call `busy`.
    let _ = ticker.thread.set(handle.thread().clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn the_epoch_ticks_only_while_a_guest_may_compute() {
        let engine = Engine::small();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(engine.ticks(), 0, "an idle engine ticked");
        let busy = engine.busy();
        let give_up = Instant::now() + Duration::from_secs(10);
        while engine.ticks() < 3 {
            assert!(Instant::now() < give_up, "the ticker did not wake");
            thread::sleep(Duration::from_millis(1));
        }
        drop(busy);
        engine.settle();
        // And it wakes again for the next poll.
        let _busy = engine.busy();
        let ticked = engine.ticks();
        while engine.ticks() <= ticked {
            assert!(Instant::now() < give_up, "the ticker did not wake again");
            thread::sleep(Duration::from_millis(1));
        }
    }
}
