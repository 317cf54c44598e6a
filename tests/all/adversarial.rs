//! Every misbehaving guest ends in its own typed outcome, and the host serves
//! the next call normally: no leaked slot, no poisoned state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use toolhost::{CallOptions, CancellationToken, Outcome, ToolErrorKind};

use crate::common::{call, call_with, executor, host_still_serves, ok, wait_until};

/// Test guests and the tests that cover them; `every_test_guest_is_covered` keeps this honest.
pub const COVERED: &[&str] = &[
    "bad-describe",
    "bad-output",
    "deep-stack",
    "http-probe",
    "log-forge",
    "dyn-iface",
    "dyn-resource",
    "dyn-types",
    "dyn-world",
    "flood-list",
    "flood-out",
    "memory-bomb",
    "misbehave",
    "probe",
    "schema-bomb",
    "slow-describe",
    "trivial",
    "wrong-world",
];

#[test]
fn every_test_guest_is_covered() {
    for (name, _) in toolhost_artifacts::TEST_GUESTS {
        assert!(
            COVERED.contains(name),
            "test guest `{name}` has no test; add one and list it in COVERED"
        );
    }
    for name in COVERED {
        assert!(
            toolhost_artifacts::TEST_GUESTS
                .iter()
                .any(|(n, _)| n == name),
            "COVERED lists `{name}`, which is not a test guest"
        );
    }
}

#[tokio::test]
async fn a_timeout_stops_an_infinite_loop_and_charges_the_fuel_it_burned() {
    let options = CallOptions::default()
        .timeout(Duration::from_millis(100))
        .fuel(u64::MAX / 4);
    let record = call_with("guest_misbehave__spin", json!({}), options).await;
    assert!(
        matches!(record.outcome, Outcome::Timeout { .. }),
        "{}",
        record.outcome
    );
    assert!(record.outcome.message().unwrap().contains("100 ms"));
    // A guest stopped mid-loop used to be charged only the fuel it had used
    // before the loop (a few thousand units), so a tenant's fuel quota never
    // saw a looping guest. One millisecond of looping burns millions.
    let used = record.fuel_used.expect("fuel is counted");
    assert!(used > 1_000_000, "a looping guest was charged {used} fuel");
    host_still_serves().await;
}

#[tokio::test]
async fn a_timeout_stops_a_guest_blocked_in_a_host_call() {
    let record = call_with(
        "sleep",
        json!({"ms": 60_000}),
        CallOptions::default().timeout(Duration::from_millis(50)),
    )
    .await;
    assert!(
        matches!(record.outcome, Outcome::Timeout { .. }),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

#[tokio::test]
async fn fuel_stops_a_loop_at_exactly_its_budget() {
    let record = call_with(
        "guest_misbehave__spin",
        json!({}),
        CallOptions::default().fuel(10_000_000),
    )
    .await;
    assert!(
        matches!(record.outcome, Outcome::OutOfFuel { .. }),
        "{}",
        record.outcome
    );
    assert_eq!(record.fuel_used, Some(10_000_000));
    host_still_serves().await;
}

#[tokio::test]
async fn fuel_accounting_is_deterministic() {
    let first = call("guest_misbehave__busy", json!({"iterations": 100_000})).await;
    let second = call("guest_misbehave__busy", json!({"iterations": 100_000})).await;
    assert!(first.outcome.is_ok(), "{}", first.outcome);
    assert_eq!(first.outcome, second.outcome);
    assert_eq!(first.fuel_used, second.fuel_used);
    let more = call("guest_misbehave__busy", json!({"iterations": 200_000})).await;
    assert!(more.fuel_used > first.fuel_used);
}

#[tokio::test]
async fn the_memory_cap_stops_a_memory_bomb() {
    let record = call_with(
        "guest_misbehave__alloc",
        json!({"mb": 200, "mode": "vec"}),
        CallOptions::default().memory_mb(32),
    )
    .await;
    assert!(
        matches!(record.outcome, Outcome::MemoryLimit { .. }),
        "{}",
        record.outcome
    );
    assert!(record.memory_peak_bytes.unwrap() <= 32 << 20);
    host_still_serves().await;
}

#[tokio::test]
async fn a_refused_allocation_can_be_handled_by_the_guest() {
    let record = call_with(
        "guest_misbehave__alloc",
        json!({"mb": 200, "mode": "try"}),
        CallOptions::default().memory_mb(32),
    )
    .await;
    assert!(
        matches!(
            record.outcome,
            Outcome::ToolError {
                error: ToolErrorKind::Failed,
                ..
            }
        ),
        "{}",
        record.outcome
    );
    let output = ok(
        "guest_misbehave__alloc",
        json!({"mb": 1000, "mode": "grow"}),
    )
    .await;
    assert_eq!(output["refused"], true);
    assert!(output["allocated_mb"].as_u64().unwrap() < 64, "{output}");
}

#[tokio::test]
async fn memory_under_the_cap_is_usable() {
    let record = call_with(
        "guest_misbehave__alloc",
        json!({"mb": 100, "mode": "vec"}),
        CallOptions::default().memory_mb(128),
    )
    .await;
    assert!(record.outcome.is_ok(), "{}", record.outcome);
    assert!(record.memory_peak_bytes.unwrap() >= 100 << 20);
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow_trap() {
    let record = call("guest_misbehave__recurse", json!({"depth": 100_000_000u64})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("stack overflow")),
        "{}",
        record.outcome
    );
    let output = ok("guest_misbehave__recurse", json!({"depth": 100})).await;
    assert_eq!(output["result"], 100);
    host_still_serves().await;
}

/// A Rust guest's locals whose address is taken live on a shadow stack in
/// linear memory: unbounded recursion runs that stack below address 0 and
/// faults at the top of the address space, which wasmtime calls an
/// out-of-bounds access. It is still a stack overflow, and is called one.
#[tokio::test]
async fn shadow_stack_exhaustion_is_a_stack_overflow_trap() {
    let record = call("guest_deep_stack__shadow", json!({})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("stack overflow")),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

/// A guest that wrote far more to stderr than the host keeps before it
/// panicked still ends with its panic's message: the host keeps the end of
/// stderr as well as its start.
#[tokio::test]
async fn a_panic_after_a_flood_of_stderr_still_names_the_panic() {
    let record = call("guest_misbehave__panic", json!({"noise_bytes": 200_000})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("deliberate panic")),
        "{}",
        record.outcome
    );
}

#[tokio::test]
async fn a_panic_is_a_trap_with_the_panic_message() {
    let record = call("guest_misbehave__panic", json!({})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("deliberate panic")),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

#[tokio::test]
async fn an_explicit_trap_is_a_trap() {
    let record = call("guest_misbehave__trap", json!({})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("unreachable")),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

#[tokio::test]
async fn huge_output_is_refused_and_small_output_passes() {
    let record = call("guest_misbehave__big_output", json!({"bytes": 2_000_000})).await;
    assert!(
        matches!(record.outcome, Outcome::OutputTooLarge { .. }),
        "{}",
        record.outcome
    );
    let output = ok("guest_misbehave__big_output", json!({"bytes": 1000})).await;
    assert_eq!(output["data"].as_str().unwrap().len(), 1000);
    host_still_serves().await;
}

#[tokio::test]
async fn output_that_would_outgrow_the_calls_memory_once_parsed_is_refused() {
    // 800 KB of `[0,0,…]` is 400,000 values: about 13 MiB on the host once
    // parsed, past a call capped at 4 MiB (6 MiB with its overhead), though
    // under the 1 MiB output cap. A twentieth of it fits.
    let capped = || CallOptions::default().memory_mb(4);
    let record = call_with(
        "guest_misbehave__many_values",
        json!({"count": 400_000}),
        capped(),
    )
    .await;
    // Only the kind on failure: the outcome's text would hold every zero.
    assert!(
        matches!(&record.outcome, Outcome::OutputTooLarge { message } if message.contains("host memory parsed")),
        "{}",
        record.outcome.kind()
    );
    let fits = call_with(
        "guest_misbehave__many_values",
        json!({"count": 20_000}),
        capped(),
    )
    .await;
    assert!(fits.outcome.is_ok(), "{}", fits.outcome.kind());
    host_still_serves().await;
}

#[tokio::test]
async fn input_that_would_outgrow_the_calls_memory_once_parsed_is_refused_unparsed() {
    // The same 400,000 zeros as an input: under the 1 MiB input cap, about
    // 13 MiB on the host once parsed, past what a call capped at 4 MiB may
    // use (6 MiB with its overhead). The host refuses it before parsing it,
    // not after building the tree and handing the text to the guest.
    let zeros = |count: usize| json!({"document": vec![0; count], "pointer": "/0"});
    let capped = || CallOptions::default().memory_mb(4);
    let record = call_with("json__query", zeros(400_000), capped()).await;
    assert!(
        matches!(&record.outcome, Outcome::InvalidInput { message } if message.contains("once parsed")),
        "{}",
        record.outcome.kind()
    );
    let fits = call_with("json__query", zeros(20_000), capped()).await;
    assert_eq!(
        fits.outcome.output(),
        Some(&json!({"value": 0})),
        "{}",
        fits.outcome.kind()
    );
    host_still_serves().await;
}

#[tokio::test]
async fn output_that_is_not_json_breaks_the_contract() {
    let record = call("guest_bad_output__bad_output", json!({})).await;
    assert!(
        matches!(&record.outcome, Outcome::Trap { message } if message.contains("not valid JSON")),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

#[tokio::test]
async fn a_flood_of_host_calls_is_capped() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut options = CallOptions::default();
    options.events = Some(tx);
    let record = call_with(
        "guest_misbehave__flood_host",
        json!({"logs": 20_000, "progress": 20_000}),
        options,
    )
    .await;
    assert!(record.outcome.is_ok(), "{}", record.outcome);
    let mut logs = 0;
    let mut progress = 0;
    while let Ok(event) = rx.try_recv() {
        match event {
            toolhost::GuestEvent::Log { .. } => logs += 1,
            toolhost::GuestEvent::Progress { .. } => progress += 1,
            _ => {}
        }
    }
    assert_eq!(logs, 1000, "log lines past the budget are dropped");
    assert!(
        (1..20_000).contains(&progress),
        "progress is coalesced, got {progress}"
    );
    host_still_serves().await;
}

/// Reports that each say "finished" (`done == total`) are coalesced like any
/// other: a guest cannot flood a progress consumer by claiming to be done,
/// and the last report still arrives.
#[tokio::test]
async fn a_flood_of_finished_progress_is_coalesced_and_the_last_report_arrives() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut options = CallOptions::default();
    options.events = Some(tx);
    let record = call_with(
        "guest_misbehave__flood_host",
        json!({"progress": 20_000, "finished": true}),
        options,
    )
    .await;
    assert!(record.outcome.is_ok(), "{}", record.outcome);
    let mut reports = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let toolhost::GuestEvent::Progress { done, total, .. } = event {
            reports.push((done, total));
        }
    }
    assert!(
        (1..20_000).contains(&reports.len()),
        "progress is coalesced, got {} reports",
        reports.len()
    );
    assert_eq!(
        reports.last(),
        Some(&(20_000, Some(20_000))),
        "the last report is sent"
    );
}

#[tokio::test]
async fn a_flood_of_stdout_is_absorbed() {
    let output = ok("guest_misbehave__stdout_flood", json!({"bytes": 5_000_000})).await;
    assert_eq!(output["stdout_written"], 5_000_000);
    assert_eq!(output["stdout_error"], serde_json::Value::Null);
    host_still_serves().await;
}

/// Nothing reads what a guest writes to stdout, so the host keeps none of
/// it: a call in flight that flooded stdout holds no more of the host's heap
/// than one that wrote nothing, but for the 16 KiB of stderr it keeps (its
/// first and last 8 KiB, for a panic's message). Read on one thread, where
/// these calls run alone.
#[tokio::test]
async fn a_call_in_flight_keeps_none_of_its_stdout() {
    const CALLS: usize = 8;
    const BYTES: isize = 16 << 10;
    let executor = Arc::new(toolhost::Executor::new(executor().catalog()));
    let mut held = Vec::new();
    for bytes in [0, BYTES] {
        let before = crate::heap::live_here();
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let executor = executor.clone();
                tokio::spawn(async move {
                    let input = json!({"bytes": bytes, "then_ms": 3000}).to_string();
                    executor
                        .call(
                            "guest_misbehave__stdout_flood",
                            &input,
                            CallOptions::default(),
                        )
                        .await
                })
            })
            .collect();
        wait_until(&executor, "every call in flight", |e| {
            e.in_flight() == CALLS
        })
        .await;
        // The writes take microseconds; the calls then wait 3 s.
        tokio::time::sleep(Duration::from_millis(300)).await;
        held.push(crate::heap::live_here() - before);
        for call in calls {
            let record = call.await.expect("a record");
            let output = record.outcome.output().expect("the flood call succeeds");
            assert_eq!(output["stdout_written"], json!(bytes), "{output}");
            assert_eq!(output["stdout_error"], json!(null), "{output}");
        }
    }
    let per_call = (held[1] - held[0]) / CALLS as isize;
    assert!(
        per_call < BYTES + BYTES / 2,
        "a call that wrote {BYTES} bytes to stdout and to stderr holds {per_call} bytes more \
         than one that wrote nothing (stderr keeps {BYTES}; stdout should keep none)"
    );
}

#[tokio::test]
async fn cancelling_stops_a_call() {
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        canceller.cancel();
    });
    let options = CallOptions::default()
        .cancel(cancel)
        .timeout(Duration::from_secs(30));
    let record = call_with("guest_misbehave__wait_cancel", json!({}), options).await;
    assert!(
        matches!(record.outcome, Outcome::Cancelled { .. }),
        "{}",
        record.outcome
    );
    host_still_serves().await;
}

#[tokio::test]
async fn many_misbehaving_calls_at_once_leak_no_slot() {
    // An executor of its own, so other tests' calls do not count as in flight.
    let executor = Arc::new(toolhost::Executor::new(executor().catalog().clone()));
    let mut calls = Vec::new();
    for i in 0..40 {
        let executor = executor.clone();
        calls.push(tokio::spawn(async move {
            let (tool, input) = match i % 4 {
                0 => ("guest_misbehave__spin", json!({})),
                1 => ("guest_misbehave__panic", json!({})),
                2 => ("guest_misbehave__alloc", json!({"mb": 500, "mode": "vec"})),
                _ => ("guest_trivial__echo", json!({"value": i})),
            };
            // Only the spinners get a short deadline: the others must end by
            // their own fault, however long a loaded machine makes them wait.
            let timeout = if i % 4 == 0 { 200 } else { 30_000 };
            let options = CallOptions::default()
                .timeout(Duration::from_millis(timeout))
                .fuel(u64::MAX / 4);
            (i, executor.call_value(tool, &input, options).await)
        }));
    }
    for call in calls {
        let (i, record) = call.await.unwrap();
        let expected = ["timeout", "trap", "memory-limit", "ok"][i % 4];
        assert_eq!(
            record.outcome.kind(),
            expected,
            "call {i}: {}",
            record.outcome
        );
        if i % 4 == 3 {
            assert_eq!(record.outcome.output().unwrap()["value"], i);
        }
    }
    assert_eq!(executor.in_flight(), 0);
    host_still_serves().await;
}
