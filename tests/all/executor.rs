//! The executor: caps, rate limits, the queue, branch strategies with real
//! kills, retries, the result cache, plans, and that no result is lost or
//! delivered twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use toolhost::batch::{BatchOptions, CallRequest, Event, Score, Strategy};
use toolhost::plan::{Plan, Step};
use toolhost::{CallOptions, Catalog, ExecConfig, Executor, Outcome};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, engine, load_options};

/// Loads `(file stem, component path, policy)` into a fresh executor.
fn executor_with(files: &[(&str, &str, Option<&str>)], config: ExecConfig) -> Arc<Executor> {
    let dir = tempfile::tempdir().unwrap();
    for (name, wasm, policy) in files {
        std::fs::copy(wasm, dir.path().join(format!("{name}.wasm"))).unwrap();
        if let Some(policy) = policy {
            std::fs::write(dir.path().join(format!("{name}.toml")), policy).unwrap();
        }
    }
    let path = dir.path().to_path_buf();
    let catalog = block_on(async move {
        Catalog::load_dir(&engine(), &path, &load_options())
            .await
            .unwrap()
    });
    assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
    Arc::new(Executor::with_config(Arc::new(catalog), config))
}

fn sleep_calls(n: usize, ms: u64) -> Vec<CallRequest> {
    (0..n)
        .map(|_| CallRequest::json("sleep", &json!({"ms": ms})))
        .collect()
}

fn kinds(records: &[toolhost::CallRecord]) -> Vec<&'static str> {
    records.iter().map(|r| r.outcome.kind()).collect()
}

#[tokio::test]
async fn a_component_cap_holds_under_load() {
    let executor = executor_with(
        &[(
            "sleep",
            artifacts::SLEEP,
            Some("[limits]\nmax_concurrency = 3\n"),
        )],
        ExecConfig::default(),
    );
    let result = executor
        .run_batch(sleep_calls(12, 30), BatchOptions::default())
        .await;
    assert!(
        result.records.iter().all(|r| r.outcome.is_ok()),
        "{:?}",
        kinds(&result.records)
    );
    assert_eq!(
        executor.peak_in_flight(Some("sleep")),
        3,
        "never more than the cap, and the cap was used"
    );
    assert_eq!(executor.in_flight(), 0);
}

#[tokio::test]
async fn a_global_cap_holds_across_components() {
    let mut config = ExecConfig::default();
    config.max_in_flight = 2;
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("echo", artifacts::TRIVIAL, None),
        ],
        config,
    );
    let mut calls = sleep_calls(6, 20);
    calls.extend((0..6).map(|i| CallRequest::json("echo", &json!({"value": i}))));
    let result = executor.run_batch(calls, BatchOptions::default()).await;
    assert!(result.records.iter().all(|r| r.outcome.is_ok()));
    assert!(executor.peak_in_flight(None) <= 2);
}

#[tokio::test]
async fn a_reject_cap_refuses_the_overflow_at_once() {
    let policy = "[limits]\nmax_concurrency = 2\non_limit = \"reject\"\n";
    let executor = executor_with(
        &[("sleep", artifacts::SLEEP, Some(policy))],
        ExecConfig::default(),
    );
    let result = executor
        .run_batch(sleep_calls(6, 300), BatchOptions::default())
        .await;
    let ok = result.records.iter().filter(|r| r.outcome.is_ok()).count();
    let refused: Vec<_> = result
        .records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::RateLimited { .. }))
        .collect();
    assert_eq!((ok, refused.len()), (2, 4), "{:?}", kinds(&result.records));
    assert!(
        refused[0]
            .outcome
            .message()
            .unwrap()
            .contains("already in flight")
    );
    assert_eq!(executor.stats().rate_limited, 4);
}

#[tokio::test]
async fn a_reject_rate_limit_says_when_to_come_back() {
    // Per minute: the five calls fall in one window however slow the machine.
    let policy = "[limits]\nrate = \"2/min\"\non_limit = \"reject\"\n";
    let executor = executor_with(
        &[("sleep", artifacts::SLEEP, Some(policy))],
        ExecConfig::default(),
    );
    let mut outcomes = Vec::new();
    for ms in 0..5 {
        // Distinct inputs: `sleep` is pure, so a repeated input would be a cache hit.
        outcomes.push(
            executor
                .call_value("sleep", &json!({"ms": ms}), CallOptions::default())
                .await
                .outcome,
        );
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
    for outcome in &outcomes[2..] {
        let Outcome::RateLimited {
            retry_after_ms,
            message,
        } = outcome
        else {
            panic!("{outcome}")
        };
        assert!(
            *retry_after_ms >= 1 && *retry_after_ms <= 60_000,
            "{retry_after_ms}"
        );
        assert!(message.contains("rate limit"), "{message}");
    }
}

#[tokio::test]
async fn a_wait_rate_limit_applies_backpressure_instead() {
    let policy = "[limits]\nrate = \"50/s\"\nburst = 1\n";
    let executor = executor_with(
        &[("sleep", artifacts::SLEEP, Some(policy))],
        ExecConfig::default(),
    );
    let result = executor
        .run_batch(sleep_calls(5, 0), BatchOptions::default())
        .await;
    assert!(
        result.records.iter().all(|r| r.outcome.is_ok()),
        "{:?}",
        kinds(&result.records)
    );
}

#[tokio::test]
async fn waiting_past_the_queue_deadline_is_refused() {
    let mut config = ExecConfig::default();
    config.queue_timeout = Duration::from_millis(50);
    let executor = executor_with(
        &[(
            "sleep",
            artifacts::SLEEP,
            Some("[limits]\nmax_concurrency = 1\n"),
        )],
        config,
    );
    let result = executor
        .run_batch(sleep_calls(2, 1000), BatchOptions::default())
        .await;
    let mut kinds = kinds(&result.records);
    kinds.sort();
    assert_eq!(kinds, ["ok", "rate-limited"]);
    let refused = result.records.iter().find(|r| !r.outcome.is_ok()).unwrap();
    assert!(
        refused
            .outcome
            .message()
            .unwrap()
            .contains("queue deadline"),
        "{}",
        refused.outcome
    );
}

#[tokio::test]
async fn per_caller_caps_keep_tenants_apart() {
    let mut config = ExecConfig::default();
    config.caller_concurrency = Some(1);
    config.queue_timeout = Duration::from_millis(100);
    let executor = executor_with(&[("sleep", artifacts::SLEEP, None)], config);
    let call = |caller: &str| {
        CallRequest::json("sleep", &json!({"ms": 500}))
            .with_options(CallOptions::default().caller(caller))
    };
    let result = executor
        .run_batch(
            vec![call("alice"), call("alice"), call("bob")],
            BatchOptions::default(),
        )
        .await;
    let alice: Vec<_> = result.records[..2]
        .iter()
        .map(|r| r.outcome.kind())
        .collect();
    assert!(
        alice.contains(&"ok") && alice.contains(&"rate-limited"),
        "{alice:?}"
    );
    assert!(
        result.records[2].outcome.is_ok(),
        "bob is not held back by alice"
    );
}

#[tokio::test]
async fn events_arrive_in_completion_order_and_each_call_finishes_once() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
            ("misbehave", artifacts::MISBEHAVE, None),
        ],
        ExecConfig::default(),
    );
    let mut calls = Vec::new();
    for i in 0..300 {
        calls.push(match i % 5 {
            0 => CallRequest::json("sleep", &json!({"ms": (i % 7) * 3})),
            1 => CallRequest::json("calc", &json!({"expression": format!("{i} * 2")})),
            2 => CallRequest::json("calc", &json!({"expression": "1 / 0"})),
            3 => CallRequest::json("misbehave__panic", &json!({})),
            _ => CallRequest::json("misbehave__spin", &json!({})).with_options(
                CallOptions::default()
                    .timeout(Duration::from_millis(20))
                    .fuel(u64::MAX / 4),
            ),
        });
    }
    // One result in the cache before the batch, so that repeats of it are
    // hits however the batch's own calls interleave.
    let warm = executor
        .call_value("sleep", &json!({"ms": 0}), CallOptions::default())
        .await;
    assert_eq!(warm.outcome.kind(), "ok", "{}", warm.outcome);
    let mut batch = executor.submit(calls, BatchOptions::default());
    let mut finished = HashSet::new();
    let mut started = HashSet::new();
    let mut cached = 0;
    let mut done = false;
    while let Some(event) = batch.next().await {
        assert!(!done, "nothing comes after Done");
        match event {
            Event::Started { index, .. } => {
                assert!(started.insert(index), "started twice: {index}")
            }
            Event::Finished { index, record } => {
                assert!(finished.insert(index), "finished twice: {index}");
                assert_eq!(
                    started.contains(&index),
                    !record.cached,
                    "a call starts a sandbox unless the cache answers it"
                );
                cached += usize::from(record.cached);
                let expected = ["ok", "ok", "tool-error", "trap", "timeout"][index % 5];
                assert_eq!(
                    record.outcome.kind(),
                    expected,
                    "call {index}: {}",
                    record.outcome
                );
                if index % 5 == 1 {
                    assert_eq!(record.outcome.output().unwrap()["value"], json!(index * 2));
                }
            }
            Event::Done { report } => {
                assert_eq!(report.calls, 300);
                assert_eq!(report.ok, 120);
                done = true;
            }
            _ => {}
        }
    }
    assert!(done);
    assert_eq!(finished.len(), 300);
    assert_eq!(started.len() + cached, 300);
    assert!(cached > 0, "repeated sleep inputs are cache hits");
    assert_eq!(executor.in_flight(), 0);
}

#[tokio::test]
async fn first_success_kills_the_rest_and_nothing_else() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
        ],
        ExecConfig::default(),
    );
    let long = CallOptions::default().timeout(Duration::from_secs(60));
    let calls = vec![
        CallRequest::json("calc", &json!({"expression": "nope("})),
        CallRequest::json("sleep", &json!({"ms": 30_000})).with_options(long.clone()),
        CallRequest::json("sleep", &json!({"ms": 30_001})).with_options(long),
        CallRequest::json("sleep", &json!({"ms": 100})),
    ];
    let result = executor
        .run_batch(calls, BatchOptions::strategy(Strategy::FirstSuccess))
        .await;
    let report = &result.report;
    assert_eq!(
        kinds(&result.records),
        ["tool-error", "cancelled", "cancelled", "ok"]
    );
    assert_eq!(report.kept, [3]);
    assert_eq!(
        report.cancelled,
        [
            result.records[1].call_id.clone(),
            result.records[2].call_id.clone()
        ]
    );
    assert!(
        result.records[1]
            .outcome
            .message()
            .unwrap()
            .contains("first-success")
    );
    assert!(
        report.saved_ms > 0.0,
        "the two stopped sleeps count as time saved: {report:?}"
    );
    assert_eq!(executor.in_flight(), 0);
}

#[tokio::test]
async fn keep_top_n_stops_once_nothing_running_can_beat_the_best() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
        ],
        ExecConfig::default(),
    );
    let mut calls: Vec<CallRequest> = [5, 9, 7]
        .iter()
        .map(|v| CallRequest::json("calc", &json!({"expression": v.to_string()})))
        .collect();
    calls.extend(sleep_calls(2, 30_000));
    // The sleeps can score at most 1; the calcs could score anything.
    let bound: toolhost::batch::Bound =
        Arc::new(|index| if index >= 3 { 1.0 } else { f64::INFINITY });
    let strategy = Strategy::KeepTopN {
        n: 2,
        score: Score::Pointer("/value".into()),
        bound: Some(bound),
    };
    let result = executor
        .run_batch(calls, BatchOptions::strategy(strategy))
        .await;
    assert_eq!(
        kinds(&result.records),
        ["ok", "ok", "ok", "cancelled", "cancelled"]
    );
    assert_eq!(result.report.kept, [1, 2], "9 and 7");
    assert_eq!(result.report.cancelled.len(), 2);
}

#[tokio::test]
async fn keep_top_n_without_a_bound_waits_for_the_deadline() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
        ],
        ExecConfig::default(),
    );
    let mut calls = vec![CallRequest::json("calc", &json!({"expression": "3"}))];
    calls.extend(sleep_calls(1, 30_000));
    let strategy = Strategy::KeepTopN {
        n: 1,
        score: Score::Pointer("/value".into()),
        bound: None,
    };
    let result = executor
        .run_batch(
            calls,
            // Long enough for calc on a loaded machine; the sleep is longer.
            BatchOptions::strategy(strategy).deadline(Duration::from_secs(2)),
        )
        .await;
    assert_eq!(kinds(&result.records), ["ok", "timeout"]);
    assert!(
        result.records[1]
            .outcome
            .message()
            .unwrap()
            .contains("batch deadline")
    );
    assert!(result.report.deadline_passed);
    assert_eq!(result.report.kept, [0]);
}

#[tokio::test]
async fn cancel_on_better_result_uses_the_callers_predicate() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
        ],
        ExecConfig::default(),
    );
    let calls = vec![
        CallRequest::json("calc", &json!({"expression": "2"})),
        CallRequest::json("sleep", &json!({"ms": 50})),
        CallRequest::json("sleep", &json!({"ms": 30_000})),
    ];
    let better: Arc<dyn Fn(&toolhost::CallRecord) -> bool + Send + Sync> = Arc::new(|record| {
        record
            .outcome
            .output()
            .and_then(|o| o.get("requested_ms"))
            .is_some()
    });
    let result = executor
        .run_batch(
            calls,
            BatchOptions::strategy(Strategy::CancelOnBetter(better)),
        )
        .await;
    assert_eq!(kinds(&result.records), ["ok", "ok", "cancelled"]);
    assert_eq!(result.report.kept, [1]);
}

#[tokio::test]
async fn dropping_a_batch_kills_its_calls() {
    let executor = executor_with(&[("sleep", artifacts::SLEEP, None)], ExecConfig::default());
    let mut batch = executor.submit(sleep_calls(20, 60_000), BatchOptions::default());
    let mut started = 0;
    while started < 20 {
        if let Some(Event::Started { .. }) = batch.next().await {
            started += 1;
        }
    }
    assert_eq!(executor.in_flight(), 20);
    drop(batch);
    for _ in 0..1000 {
        if executor.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "calls still in flight after the batch was dropped: {}",
        executor.in_flight()
    );
}

#[tokio::test]
async fn a_handle_cancels_one_call() {
    let executor = executor_with(&[("sleep", artifacts::SLEEP, None)], ExecConfig::default());
    let batch = executor.submit(sleep_calls(2, 200), BatchOptions::default());
    batch.handles()[0].cancel();
    let result = batch.finish().await;
    assert_eq!(kinds(&result.records), ["cancelled", "ok"]);
}

/// A call's future is allocated once and held for as long as the call
/// runs or waits: with 10,000 calls in flight, each KiB of it is 10 MiB.
/// It was 6,512 bytes: every `async fn` on the way kept its arguments
/// twice, the guard kept the guest's future twice, and instantiating's
/// future (over a KiB, done with before the guest runs) kept its room.
#[tokio::test]
async fn a_call_s_future_keeps_no_room_twice() {
    let executor = executor_with(&[("sleep", artifacts::SLEEP, None)], ExecConfig::default());
    let call = executor.call("sleep", r#"{"ms": 1}"#, CallOptions::default());
    let bytes = size_of_val(&call);
    // 3,152 bytes with rustc 1.95; a batch's call, in mimalloc's 3.5 KiB class.
    assert!(bytes <= 3_400, "a call's future is {bytes} bytes");
    drop(call);
    let record = executor
        .call("sleep", r#"{"ms": 1}"#, CallOptions::default())
        .await;
    assert!(record.outcome.is_ok(), "{:?}", record.outcome);
}

/// Waits until this runtime runs no more tasks than `before` (at most a
/// minute): the batch's calls and its driver have all ended, so everything
/// the batch will hold for its reader is there.
async fn until_settled(before: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..12_000 {
        if metrics.num_alive_tasks() <= before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("tasks still alive: {}", metrics.num_alive_tasks());
}

#[tokio::test]
async fn an_unread_batch_keeps_each_call_s_newest_progress_not_every_report() {
    let executor = executor_with(&[("sleep", artifacts::SLEEP, None)], ExecConfig::default());
    let before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    // Each call reports progress every 100 ms of its second: ten reports.
    let batch = executor.submit(sleep_calls(8, 1_000), BatchOptions::default());
    // Nobody reads the batch while its calls run.
    until_settled(before).await;
    let events: Vec<Event> = batch.collect().await;
    let mut newest = vec![Vec::new(); 8];
    for event in &events {
        if let Event::Progress { index, done, .. } = event {
            newest[*index].push(*done);
        }
    }
    for (index, reports) in newest.iter().enumerate() {
        // Ten were held before.
        assert_eq!(
            reports.len(),
            1,
            "call {index} kept {} progress reports: {reports:?}",
            reports.len()
        );
        assert_eq!(
            reports.last(),
            Some(&1_000),
            "call {index}: the newest is kept"
        );
    }
    let finished = events
        .iter()
        .filter(|e| matches!(e, Event::Finished { record, .. } if record.outcome.is_ok()))
        .count();
    assert_eq!(finished, 8);
}

/// Runs `calls` calls that each log `lines` lines of about 200 bytes, in a
/// batch streaming log lines that is read only once every call has ended:
/// the log lines it gave, how many it dropped, and its calls' outcomes.
async fn read_late(calls: usize, lines: u64) -> (usize, u64, Vec<&'static str>) {
    let executor = executor_with(
        &[("misbehave", artifacts::MISBEHAVE, None)],
        ExecConfig::default(),
    );
    let calls = (0..calls)
        .map(|_| CallRequest::json("misbehave__flood_host", &json!({"logs": lines})))
        .collect();
    let mut options = BatchOptions::default();
    options.guest_logs = true;
    let before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let batch = executor.submit(calls, options);
    until_settled(before).await;
    let events: Vec<Event> = batch.collect().await;
    let logged = events
        .iter()
        .filter(|e| matches!(e, Event::Log { .. }))
        .count();
    let Some(Event::Done { report }) = events.last() else {
        panic!("the batch ends with Done");
    };
    let outcomes = events
        .iter()
        .filter_map(|e| match e {
            Event::Finished { record, .. } => Some(record.outcome.kind()),
            _ => None,
        })
        .collect();
    (logged, report.logs_dropped, outcomes)
}

#[tokio::test]
async fn an_unread_batch_holds_a_bounded_backlog_of_log_lines() {
    let (logged, dropped, outcomes) = read_late(8, 1_000).await;
    assert!(logged <= 1_024, "{logged} unread log lines were held");
    assert_eq!(
        logged as u64 + dropped,
        8_000,
        "every line is delivered or counted"
    );
    assert_eq!(outcomes, ["ok"; 8]);
}

#[tokio::test]
async fn a_batch_within_the_backlog_bound_gets_every_log_line() {
    // 1,000 lines in all: under the bound however late they are read.
    let (logged, dropped, outcomes) = read_late(2, 500).await;
    assert_eq!((logged, dropped), (1_000, 0));
    assert_eq!(outcomes, ["ok"; 2]);
}

const RETRY: &str = "[retry]\nattempts = 3\nbackoff_ms = 1\nnon_idempotent = true\n";

#[tokio::test]
async fn retries_stop_at_the_bound() {
    let executor = executor_with(
        &[("misbehave", artifacts::MISBEHAVE, Some(RETRY))],
        ExecConfig::default(),
    );
    let result = executor.submit(
        vec![CallRequest::json("misbehave__retryable", &json!({}))],
        BatchOptions::default(),
    );
    let events: Vec<Event> = result.collect().await;
    let retries = events
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    let record = events
        .iter()
        .find_map(|e| match e {
            Event::Finished { record, .. } => Some(record),
            _ => None,
        })
        .unwrap();
    assert_eq!(retries, 2, "{record:?}");
    assert_eq!(record.attempts, 3);
    assert!(matches!(
        record.outcome,
        Outcome::ToolError {
            error: toolhost::ToolErrorKind::Retryable,
            ..
        }
    ));
    assert_eq!(executor.stats().retries, 2);
}

#[tokio::test]
async fn tools_that_are_not_idempotent_are_not_retried_by_default() {
    let executor = executor_with(
        &[("misbehave", artifacts::MISBEHAVE, None)],
        ExecConfig::default(),
    );
    let record = executor
        .call_value("misbehave__retryable", &json!({}), CallOptions::default())
        .await;
    assert_eq!(record.attempts, 1);
    let record = executor
        .call_value("misbehave__trap", &json!({}), CallOptions::default())
        .await;
    assert_eq!(
        record.attempts, 1,
        "traps are not transient unless the policy says so"
    );
}

#[tokio::test]
async fn traps_are_retried_when_the_policy_marks_them_transient() {
    let policy = format!("{RETRY}on_trap = true\n");
    let executor = executor_with(
        &[("misbehave", artifacts::MISBEHAVE, Some(&policy))],
        ExecConfig::default(),
    );
    let record = executor
        .call_value("misbehave__trap", &json!({}), CallOptions::default())
        .await;
    assert_eq!((record.outcome.kind(), record.attempts), ("trap", 3));
}

#[tokio::test]
async fn the_retry_budget_bounds_retries_across_calls() {
    let mut config = ExecConfig::default();
    config.retry_budget = Some(toolhost::parse_rate("1/h", Some(2)).unwrap());
    let executor = executor_with(&[("misbehave", artifacts::MISBEHAVE, Some(RETRY))], config);
    let mut attempts = 0;
    for _ in 0..3 {
        attempts += executor
            .call_value("misbehave__retryable", &json!({}), CallOptions::default())
            .await
            .attempts;
    }
    assert_eq!(attempts, 3 + 2, "two retries in the budget, then none");
}

#[tokio::test]
async fn the_cache_serves_pure_tools_only() {
    let executor = executor_with(
        &[
            ("calc", artifacts::CALC, None),
            (
                "clock",
                artifacts::CLOCK,
                Some("[capabilities]\nwall_clock = true\n"),
            ),
        ],
        ExecConfig::default(),
    );
    let first = executor
        .call_value(
            "calc",
            &json!({"expression": "x + y", "variables": {"x": 1, "y": 2}}),
            CallOptions::default(),
        )
        .await;
    let second = executor
        .call_value(
            "calc",
            &json!({"variables": {"y": 2, "x": 1}, "expression": "x + y"}),
            CallOptions::default(),
        )
        .await;
    assert!(
        !first.cached && second.cached,
        "the same input in another key order is a hit"
    );
    assert_eq!(first.outcome, second.outcome);
    assert_eq!(
        second.fuel_used, first.fuel_used,
        "no guest ran, but a hit is charged what the call it repeats burned"
    );
    assert!(
        !executor
            .call_value(
                "calc",
                &json!({"expression": "x + y", "variables": {"x": 1, "y": 3}}),
                CallOptions::default()
            )
            .await
            .cached
    );
    assert!(executor.catalog().is_pure("calc"));

    // `add` declares itself pure, but this policy grants the real clock:
    // two identical calls may differ, so the host does not cache it.
    assert!(!executor.catalog().is_pure("clock__add"));
    let input = json!({"start": "2024-01-31", "months": 1});
    executor
        .call_value("clock__add", &input, CallOptions::default())
        .await;
    assert!(
        !executor
            .call_value("clock__add", &input, CallOptions::default())
            .await
            .cached
    );
    let stats = executor.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (1, 2));
}

#[tokio::test]
async fn a_plan_runs_dependents_after_their_inputs_and_the_rest_in_parallel() {
    let executor = executor_with(
        &[
            ("sleep", artifacts::SLEEP, None),
            ("calc", artifacts::CALC, None),
        ],
        ExecConfig::default(),
    );
    let plan = Plan::new(vec![
        Step::new("wait_a", "sleep", json!({"ms": 150})),
        Step::new("wait_b", "sleep", json!({"ms": 150})),
        Step::new("area", "calc", json!({"expression": "pi * r^2", "variables": {"r": {"$from": "radius", "pointer": "/value"}}})),
        Step::new("radius", "calc", json!({"expression": "a + b", "variables": {
            "a": {"$from": "wait_a", "pointer": "/requested_ms"},
            "b": {"$from": "wait_b", "pointer": "/requested_ms"}
        }})),
    ])
    .unwrap();
    let result = executor.run_plan(&plan, CallOptions::default()).await;
    let value = |id: &str| {
        result.step(id).unwrap().outcome.output().unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(value("radius"), 300.0);
    assert!((value("area") - std::f64::consts::PI * 90_000.0).abs() < 1e-6);
    assert_eq!(
        executor.peak_in_flight(Some("sleep")),
        2,
        "the two independent waits ran at once"
    );
}

#[tokio::test]
async fn a_failed_step_fails_its_dependents_clearly() {
    let executor = executor_with(&[("calc", artifacts::CALC, None)], ExecConfig::default());
    let plan = Plan::new(vec![
        Step::new("bad", "calc", json!({"expression": "1 / 0"})),
        Step::new(
            "next",
            "calc",
            json!({"expression": "x", "variables": {"x": {"$from": "bad", "pointer": "/value"}}}),
        ),
        Step::new(
            "last",
            "calc",
            json!({"expression": "x", "variables": {"x": {"$from": "next", "pointer": "/value"}}}),
        ),
        Step::new("fine", "calc", json!({"expression": "1"})),
        Step::new(
            "missing",
            "calc",
            json!({"expression": "x", "variables": {"x": {"$from": "fine", "pointer": "/nope"}}}),
        ),
    ])
    .unwrap();
    let result = executor.run_plan(&plan, CallOptions::default()).await;
    let kind = |id: &str| result.step(id).unwrap().outcome.kind();
    assert_eq!(
        [
            kind("bad"),
            kind("next"),
            kind("last"),
            kind("fine"),
            kind("missing")
        ],
        ["tool-error", "skipped", "skipped", "ok", "invalid-input"]
    );
    let skipped = result.step("last").unwrap().outcome.message().unwrap();
    assert!(
        skipped.contains("step `bad` ended in tool-error"),
        "{skipped}"
    );
    assert!(
        result
            .step("missing")
            .unwrap()
            .outcome
            .message()
            .unwrap()
            .contains("/nope")
    );
}

#[test]
fn plans_are_checked_before_they_run() {
    let err = Plan::new(vec![
        Step::new("a", "calc", json!({"x": {"$from": "b"}})),
        Step::new("b", "calc", json!({"x": {"$from": "a"}})),
    ]);
    assert!(matches!(err, Err(toolhost::plan::PlanError::Cycle(_))));
}

/// A plan may be a chain of any length: when its first step fails, every
/// step after it is skipped, walked without recursion and without scanning
/// the whole plan once per step.
#[tokio::test]
async fn a_long_chain_after_a_failed_step_is_skipped_whole() {
    const STEPS: usize = 100_000;
    let executor = executor_with(&[("calc", artifacts::CALC, None)], ExecConfig::default());
    let steps = (0..STEPS)
        .map(|i| match i {
            0 => Step::new("s0", "no_such_tool", json!({})),
            _ => Step::new(
                format!("s{i}"),
                "calc",
                json!({"expression": {"$from": format!("s{}", i - 1)}}),
            ),
        })
        .collect();
    let plan = Plan::new(steps).expect("a chain is a plan");
    let result = executor.run_plan(&plan, CallOptions::default()).await;
    assert_eq!(result.steps.len(), STEPS);
    assert_eq!(result.steps[0].1.outcome.kind(), "unknown-tool");
    let skipped = result
        .steps
        .iter()
        .filter(|(_, record)| matches!(record.outcome, Outcome::Skipped { .. }))
        .count();
    assert_eq!(skipped, STEPS - 1);
    let last = result.step(&format!("s{}", STEPS - 1)).unwrap();
    assert!(
        last.outcome
            .message()
            .unwrap()
            .contains("step `s0` ended in"),
        "{}",
        last.outcome
    );
}

/// CPU time (user + system, in clock ticks) of the threads in `tids`.
fn threads_cpu(tids: &[String]) -> u64 {
    tids.iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
        .map(|stat| {
            // Fields after the command (which is in parentheses): state is
            // the first, utime the 12th and stime the 13th.
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            field(11).unwrap_or(0) + field(12).unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_hundred_looping_guests_end_as_timeouts_beside_quick_calls_and_stop_burning_cpu() {
    // All 100 at once on 2 workers: more computing guests than workers, so
    // most wait for a turn, and many are still waiting when their deadline
    // passes.
    let policy = "[limits]\nmax_concurrency = 200\nfuel = 1_000_000_000_000\n";
    let executor = executor_with(
        &[
            ("calc", artifacts::CALC, None),
            ("misbehave", artifacts::MISBEHAVE, Some(policy)),
        ],
        ExecConfig::default(),
    );
    let tids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let runtime = {
        let tids = tids.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // `/proc/thread-self` names this thread's own task.
                if let Ok(link) = std::fs::read_link("/proc/thread-self")
                    && let Some(tid) = link.file_name()
                {
                    tids.lock()
                        .unwrap()
                        .push(tid.to_string_lossy().into_owned());
                }
            })
            .build()
            .unwrap()
    };
    let result = runtime.block_on(async {
        let mut calls = Vec::new();
        for i in 0..120 {
            calls.push(if i % 6 == 5 {
                CallRequest::json("calc", &json!({"expression": format!("{i} + 1")}))
            } else {
                CallRequest::json("misbehave__spin", &json!({}))
                    .with_options(CallOptions::default().timeout(Duration::from_millis(30)))
            });
        }
        executor.run_batch(calls, BatchOptions::default()).await
    });
    for (i, record) in result.records.iter().enumerate() {
        let expected = if i % 6 == 5 { "ok" } else { "timeout" };
        assert_eq!(
            record.outcome.kind(),
            expected,
            "call {i}: {}",
            record.outcome
        );
    }
    assert_eq!(executor.in_flight(), 0);
    // Every looping guest was stopped: the workers are idle now. (Were one
    // still looping, they would burn a tick of CPU per 10 ms of wall time.)
    let tids = tids.lock().unwrap().clone();
    assert_eq!(tids.len(), 2, "both workers were seen");
    let before = threads_cpu(&tids);
    std::thread::sleep(Duration::from_millis(500));
    let burned = threads_cpu(&tids) - before;
    assert!(
        burned <= 5,
        "the workers burned {burned} ticks of CPU in 500 ms after every call had ended"
    );
}

/// A client names the tool it calls, and may send a name of a MiB: the
/// refusal quotes a bounded part of it and still suggests tools for names
/// that are close.
#[tokio::test]
async fn a_huge_unknown_name_gets_a_short_refusal() {
    let executor = executor_with(&[("calc", artifacts::CALC, None)], ExecConfig::default());
    let huge = "c".repeat(1 << 20);
    let record = executor.call(&huge, "{}", CallOptions::default()).await;
    let Outcome::UnknownTool { message } = &record.outcome else {
        panic!("{:?}", record.outcome.kind());
    };
    assert!(message.len() < 1024, "{} bytes", message.len());
    assert!(message.starts_with("no tool named `cccc"), "{message}");
    let record = executor.call("cals", "{}", CallOptions::default()).await;
    let Outcome::UnknownTool { message } = &record.outcome else {
        panic!("{:?}", record.outcome.kind());
    };
    assert!(message.contains("did you mean `calc`"), "{message}");
}

/// A library caller's timeout may be any `Duration`: one too long to add to
/// a clock is refused as the call's outcome, never a panic in the host; a
/// batch deadline too far to reach is no deadline.
#[tokio::test]
async fn a_timeout_of_duration_max_is_refused_not_a_panic() {
    let executor = executor_with(&[("calc", artifacts::CALC, None)], ExecConfig::default());
    let input = r#"{"expression": "1 + 1"}"#;
    let record = executor
        .call("calc", input, CallOptions::default().timeout(Duration::MAX))
        .await;
    let Outcome::InvalidInput { message } = &record.outcome else {
        panic!("{:?}", record.outcome);
    };
    assert!(message.contains("timeout"), "{message}");
    let record = executor
        .call(
            "calc",
            input,
            CallOptions::default().timeout(Duration::from_secs(60)),
        )
        .await;
    assert!(record.outcome.is_ok(), "{:?}", record.outcome);

    let calls = vec![CallRequest::json("calc", &json!({"expression": "3"}))];
    let result = executor
        .run_batch(
            calls,
            BatchOptions::strategy(Strategy::All).deadline(Duration::MAX),
        )
        .await;
    assert_eq!(kinds(&result.records), ["ok"]);
    assert!(!result.report.deadline_passed);
}
