//! Tenants that share one server, tried as a hostile tenant would over a
//! real loopback socket: the result cache answers a tenant only from its own
//! calls, under its own ceilings and at its own expense, and a tenant that
//! floods the shared pool does not hold up another tenant's call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use toolhost::serve::{ServeConfig, Server, hash_key};
use toolhost::{CallOptions, ExecConfig, Executor};

use super::common;
use super::serve_api::listen;

pub(super) const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";
pub(super) const ADMIN: &str = "admin-key-0123456789";

/// An admin key and two tenants with every tool: `alice`, with `alice`
/// added to her entry, and `bob`, with `bob` added to his.
pub(super) fn config(alice: &str, bob: &str) -> ServeConfig {
    let text = format!(
        "admin_keys = [\"{admin}\"]\nmax_body_kb = 64\n\n\
         [[tenant]]\nname = \"{alice}\"\nkeys = [\"{alice_key}\"]\ntools = [\"*\"]\n\n\
         [[tenant]]\nname = \"bob\"\nkeys = [\"{bob_key}\"]\ntools = [\"*\"]\n{bob}\n",
        admin = hash_key(ADMIN),
        alice_key = hash_key(ALICE),
        bob_key = hash_key(BOB),
    );
    common::serve_config(&text)
}

/// A server over an executor of its own (its own result cache and pool)
/// on the shared catalog, listening on loopback until dropped.
pub(super) struct Api {
    base: String,
    client: reqwest::Client,
    executor: Arc<Executor>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    pub(super) async fn start(exec: ExecConfig, config: &ServeConfig) -> Self {
        let executor = Arc::new(Executor::with_config(common::executor().catalog(), exec));
        let server = Server::new(executor.clone(), config, None).unwrap();
        let (base, stop, _task) = listen(&server).await;
        Self {
            base,
            client: common::http_client(),
            executor,
            _stop: stop,
        }
    }

    /// POSTs `body` to `path` with `key`: the status and the body text.
    pub(super) async fn post(&self, key: &str, path: &str, body: String) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Calls `tool` as `key`: the status and the record.
    pub(super) async fn call(&self, key: &str, tool: &str, input: &Value) -> (u16, Value) {
        let (status, text) = self
            .post(key, &format!("/v1/tools/{tool}/call"), input.to_string())
            .await;
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, body)
    }

    /// The `/metrics` text, read with the admin key.
    pub(super) async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }
}

fn outcome(record: &Value) -> &str {
    record["outcome"].as_str().unwrap_or("(none)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_gets_no_hit_on_another_tenants_call() {
    let api = Api::start(ExecConfig::default(), &config("alice", "")).await;
    let secret = json!({"text": "alice's webhook body", "key": "alice's HMAC key"});
    let (status, first) = api.call(ALICE, "hash__digest", &secret).await;
    assert_eq!((status, outcome(&first)), (200, "ok"), "{first}");
    let (_, again) = api.call(ALICE, "hash__digest", &secret).await;
    assert_eq!(
        again["cached"], true,
        "alice's own repeat is a hit: {again}"
    );

    let (status, bob) = api.call(BOB, "hash__digest", &secret).await;
    assert_eq!((status, outcome(&bob)), (200, "ok"), "{bob}");
    assert_eq!(bob["output"], first["output"]);
    assert!(
        bob.get("cached").is_none(),
        "bob learns that alice asked this: {bob}"
    );
    assert!(bob["fuel_used"].is_u64(), "bob's call ran: {bob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_entry_never_lifts_a_tenants_ceilings() {
    // Bob may have outputs of 1 KiB at most: alice's 12 KB answer is not his.
    let api = Api::start(
        ExecConfig::default(),
        &config("alice", "[tenant.limits]\nmax_output_kb = 1"),
    )
    .await;
    let long = json!({"text": "word ".repeat(2400), "to": "upper"});
    let (_, alice) = api.call(ALICE, "text__case", &long).await;
    assert_eq!(outcome(&alice), "ok", "{alice}");
    let (_, bob) = api.call(BOB, "text__case", &long).await;
    assert_eq!(outcome(&bob), "output-too-large", "{bob}");

    // Bob may burn 5,000 fuel a call: alice's costlier answer is not his.
    let api = Api::start(
        ExecConfig::default(),
        &config("alice", "[tenant.limits]\nfuel = 5_000"),
    )
    .await;
    let costly = json!({"text": "x".repeat(4000), "algorithms": ["sha512", "blake3"]});
    let (_, alice) = api.call(ALICE, "hash__digest", &costly).await;
    assert_eq!(outcome(&alice), "ok", "{alice}");
    assert!(alice["fuel_used"].as_u64().unwrap() > 5_000, "{alice}");
    let (_, bob) = api.call(BOB, "hash__digest", &costly).await;
    assert_eq!(outcome(&bob), "out-of-fuel", "{bob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_are_charged_to_the_tenants_fuel_quota() {
    let input = json!({"text": "the same question, again and again"});
    // What one call burns, measured on an executor of its own.
    let fresh = Executor::with_config(common::executor().catalog(), ExecConfig::default());
    let fuel = fresh
        .call_value("hash__digest", &input, CallOptions::default())
        .await
        .fuel_used
        .expect("fuel is counted");
    // Bob's quota pays for about four calls a minute.
    let api = Api::start(
        ExecConfig::default(),
        &config("alice", &format!("fuel_per_minute = {}", fuel * 4)),
    )
    .await;
    let (_, first) = api.call(BOB, "hash__digest", &input).await;
    assert_eq!(outcome(&first), "ok", "{first}");
    let (_, hit) = api.call(BOB, "hash__digest", &input).await;
    assert_eq!(hit["cached"], true, "{hit}");
    assert_eq!(
        hit["fuel_used"].as_u64(),
        Some(fuel),
        "a hit costs what the call it repeats burned: {hit}"
    );
    let mut refused = None;
    for _ in 0..20 {
        let (status, record) = api.call(BOB, "hash__digest", &input).await;
        if status == 429 {
            refused = Some(record);
            break;
        }
    }
    let refused = refused.expect("twenty hits for free: the quota never ran out");
    assert!(refused.to_string().contains("fuel budget"), "{refused}");
}

#[tokio::test]
async fn a_hit_honours_the_callers_own_limits() {
    let executor = Executor::with_config(common::executor().catalog(), ExecConfig::default());
    let input = json!({"text": "y".repeat(2000), "algorithms": ["sha512"]});
    let first = executor
        .call_value("hash__digest", &input, CallOptions::default().caller("c"))
        .await;
    let fuel = first.fuel_used.unwrap();
    let hit = executor
        .call_value("hash__digest", &input, CallOptions::default().caller("c"))
        .await;
    assert!(hit.cached && hit.fuel_used == Some(fuel), "{hit:?}");
    let starved = executor
        .call_value(
            "hash__digest",
            &input,
            CallOptions::default().caller("c").fuel(fuel / 2),
        )
        .await;
    assert_eq!(starved.outcome.kind(), "out-of-fuel", "{starved:?}");
    assert_eq!(starved.fuel_used, Some(fuel / 2), "charged all it had");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_tenant_does_not_hold_up_a_quiet_one() {
    const POOL: usize = 4;
    const FLOOD: usize = 16;
    // Bob floods the pool of 4 with calls of 2 s: with the default
    // per-tenant concurrency, and with a limit of his own above the pool.
    for greedy in ["", "concurrency = 100"] {
        let mut exec = ExecConfig::default();
        exec.max_in_flight = POOL;
        exec.queue_timeout = Duration::from_secs(5);
        let api = Arc::new(Api::start(exec, &config("alice", greedy)).await);
        let answered = Arc::new(AtomicUsize::new(0));
        let flood: Vec<_> = (0..FLOOD)
            .map(|_| {
                let (api, answered) = (api.clone(), answered.clone());
                tokio::spawn(async move {
                    let (status, _) = api.call(BOB, "sleep", &json!({"ms": 2000})).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    status
                })
            })
            .collect();
        // Every flood call is running, waiting or answered before alice asks.
        while answered.load(Ordering::SeqCst) + api.executor.in_flight() + api.executor.queued()
            < FLOOD
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (status, quiet) = api
            .call(ALICE, "calc", &json!({"expression": "6 * 7"}))
            .await;
        assert_eq!(
            (status, outcome(&quiet)),
            (200, "ok"),
            "bob with {greedy:?} held alice up: {quiet}"
        );
        for task in flood {
            task.abort();
        }
    }
}
