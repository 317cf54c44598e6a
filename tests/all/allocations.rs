//! What one fresh-instance call allocates through the executor, beside the
//! bare wasmtime loop's call of the same tool (`toolhost::measure::Baseline`):
//! counted by the test binary's allocator on this thread, so the figure is a
//! count, not a timing. Both sides make the same store, instance and WASI
//! context; the difference is the executor's own work per call.

use std::sync::Arc;

use toolhost::measure::Baseline;
use toolhost::{CallOptions, ExecConfig, Executor};
use toolhost_artifacts as artifacts;

use crate::common;
use crate::heap::allocations_here;

/// What the executor allocates per call beyond the bare loop, at most: 12
/// when this test was written (the call id, twice, and the record's tool
/// name, the stderr capture and its box, the socket check, the call's place
/// among computing guests (2), the deadline callback, the boxed
/// instantiation, and the output's parse (2)).
const EXECUTOR_OWN: f64 = 12.0;

/// Allocations per call on this thread: the fewest of a few rounds, so a
/// round in which an epoch tick made a guest yield (a few allocations more)
/// does not count.
async fn per_call<F: Future<Output = ()>>(mut call: impl FnMut() -> F) -> f64 {
    const CALLS: u64 = 100;
    let mut fewest = f64::INFINITY;
    for _ in 0..5 {
        let before = allocations_here();
        for _ in 0..CALLS {
            call().await;
        }
        fewest = fewest.min((allocations_here() - before) as f64 / CALLS as f64);
    }
    fewest
}

#[tokio::test]
async fn a_call_allocates_little_beyond_the_bare_loop() {
    // No result cache: every call is a fresh instance, as in the bare loop.
    let mut config = ExecConfig::default();
    config.cache.max_entries = 0;
    let executor = Arc::new(Executor::with_config(common::executor().catalog(), config));
    let wasm = std::fs::read(artifacts::TRIVIAL).expect("the trivial guest");
    let bare = Baseline::new(&common::engine(), &wasm).expect("a bare loop");
    let executor_call = || async {
        let record = executor
            .call("guest_trivial__echo", "{}", CallOptions::default())
            .await;
        assert!(record.outcome.is_ok(), "{}", record.outcome);
    };
    let bare_call = || async {
        assert!(bare.call("echo", "{}").await.expect("a bare call"));
    };
    // Warm both up: pool slots, caches, lazily made state.
    for _ in 0..50 {
        executor_call().await;
        bare_call().await;
    }
    let through_executor = per_call(executor_call).await;
    let bare = per_call(bare_call).await;
    assert!(
        through_executor <= bare + EXECUTOR_OWN,
        "a call through the executor allocates {through_executor} times, the bare loop's \
         {bare}: more than {EXECUTOR_OWN} of its own"
    );
}
