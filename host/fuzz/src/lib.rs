//! Test-only support for the property-based fuzz tests (`cargo test --lib fuzz`).
//!
//! Every fuzz test runs its property through [`check`]. By default a property
//! runs one short batch of cases, so the whole suite stays fast. With
//! `TOOLHOST_FUZZ_SECS=N` in the environment each property instead keeps
//! running fresh batches (each with a new random seed) until `N` seconds have
//! passed, or until one case fails: proptest itself has no total-duration
//! option.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The variable that turns on the long mode: seconds per property.
pub const LONG_RUN_VAR: &str = "TOOLHOST_FUZZ_SECS";

/// The proptest configuration of one batch of `cases` cases.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        // Failures are reported with their shrunk input; no files in the tree.
        failure_persistence: None,
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

/// The long mode's duration, when `TOOLHOST_FUZZ_SECS` asks for one.
fn long_run() -> Option<Duration> {
    std::env::var(LONG_RUN_VAR)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
}

/// Runs `property` on values of `strategy`: one batch of `cases` cases, or
/// batch after batch for the long mode's duration. Panics with the smallest
/// failing input proptest finds (a panic inside `property` is a failure too).
pub fn check<S>(
    name: &str,
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let deadline = long_run().map(|secs| Instant::now() + secs);
    let mut batches = 0_u64;
    loop {
        let mut runner = TestRunner::new(config(cases));
        if let Err(failure) = runner.run(&strategy, &property) {
            panic!("{name}: {failure} (in batch {})", batches + 1);
        }
        batches += 1;
        match deadline {
            Some(deadline) if Instant::now() < deadline => {}
            _ => break,
        }
    }
    if deadline.is_some() {
        eprintln!(
            "{name}: {} cases in {batches} batches, no failure",
            batches * u64::from(cases)
        );
    }
}

/// Any JSON value: every type, numbers of every kind, strings with any
/// characters, nested up to `depth` levels.
pub fn json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-1000_i64..1000).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}|\\PC{0,4}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
