//! Several `toolhost serve` processes sharing one real Redis, as behind a
//! load balancer: quotas hold across nodes, a pure tool's cached result is
//! shared within a tenant only, Redis failing is a status (never a hang),
//! and a dead node's slots come back.

use std::time::Duration;

use serde_json::{Value, json};
use toolhost::serve::hash_key;

use super::common::{self, Served};
use super::redis_server::RedisServer;

const ALICE: &str = "alice-key-0123456789";
const BOB: &str = "bob-key-0123456789";
const ADMIN: &str = "admin-key-0123456789";

/// A folder with the `hash` (pure), `text` (not cached) and `sleep` tools.
fn tools() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, wasm) in [
        ("hash", toolhost_artifacts::HASH),
        ("text", toolhost_artifacts::TEXT),
        ("sleep", toolhost_artifacts::SLEEP),
    ] {
        std::fs::copy(wasm, dir.path().join(format!("{name}.wasm"))).expect("copy");
    }
    // The clock reaches outside the sandbox: `text`'s results are not cached.
    std::fs::write(
        dir.path().join("text.toml"),
        "[capabilities]\nwall_clock = true\n",
    )
    .expect("write text.toml");
    dir
}

/// Nodes sharing `redis`, each with `alice` (`alice` lines added) and
/// `bob`, and a `[redis]` table with `redis` lines added.
struct Cluster {
    nodes: Vec<Served>,
    tools: tempfile::TempDir,
    config: std::path::PathBuf,
    client: reqwest::Client,
}

impl Cluster {
    async fn start(count: usize, redis: &RedisServer, alice: &str, table: &str) -> Self {
        let tools = tools();
        let config = tools.path().join("serve.toml");
        let text = format!(
            "admin_keys = [\"{admin}\"]\n\n\
             [[tenant]]\nname = \"alice\"\nkeys = [\"{alice_key}\"]\ntools = [\"*\"]\n{alice}\n\n\
             [[tenant]]\nname = \"bob\"\nkeys = [\"{bob_key}\"]\ntools = [\"*\"]\n\n\
             [redis]\nurl = \"{url}\"\nnodes = {count}\n{table}\n",
            admin = hash_key(ADMIN),
            alice_key = hash_key(ALICE),
            bob_key = hash_key(BOB),
            url = redis.url(),
        );
        std::fs::write(&config, text).expect("write serve.toml");
        let mut cluster = Self {
            nodes: Vec::new(),
            tools,
            config,
            client: {
                let _ = common::http_client();
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("a client")
            },
        };
        for _ in 0..count {
            cluster.add().await;
        }
        cluster
    }

    async fn add(&mut self) {
        let config = self.config.to_str().expect("a UTF-8 path").to_string();
        let node = common::spawn_serve_with(self.tools.path(), &["--config", &config]).await;
        self.nodes.push(node);
    }

    /// Calls `tool` on node `node` as `key`: status, `Retry-After`, record.
    async fn call(
        &self,
        node: usize,
        key: &str,
        tool: &str,
        input: &Value,
    ) -> (u16, Option<String>, Value) {
        let response = self
            .client
            .post(self.nodes[node].url(&format!("/v1/tools/{tool}/call")))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(input.to_string())
            .send()
            .await
            .expect("every request gets an answer in time");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, retry_after, body)
    }

    async fn metrics(&self, node: usize) -> String {
        self.client
            .get(self.nodes[node].url("/metrics"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("text")
    }
}

fn digest(i: usize) -> Value {
    json!({"text": format!("message {i}"), "key": "k"})
}

fn stats(i: usize) -> Value {
    json!({"text": format!("message {i}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_quota_holds_across_three_nodes() {
    let redis = RedisServer::start();
    // 30 an hour with a burst of 30: no refill worth counting during the test.
    let cluster = Cluster::start(3, &redis, "rate = \"30/h\"\nburst = 30", "").await;
    let before = redis.round_trips();
    let mut admitted = 0;
    let mut refused = 0;
    for i in 0..90 {
        let (status, retry_after, body) =
            cluster.call(i % 3, ALICE, "text__stats", &stats(i)).await;
        match status {
            200 => admitted += 1,
            429 => {
                refused += 1;
                assert!(retry_after.is_some(), "a 429 says when to retry: {body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let commands = redis.round_trips() - before;
    eprintln!(
        "3 nodes: {admitted} admitted, {refused} refused, {commands} Redis round trips for 90 calls"
    );
    // One node alone admits 30; batching lets the nodes hold at most one
    // batch each unused (batch = min(8, 30 / (2 × 3)) = 5), never more
    // than the quota. One more permit for a refill during the test.
    assert!(
        (15..=31).contains(&admitted),
        "3 nodes admitted {admitted} calls of a quota of 30"
    );
    assert!(
        commands < 60,
        "{commands} Redis round trips for 90 calls: batches should need far fewer"
    );
    // Bob's quota is his own: alice's refusals cost him nothing.
    let (status, _, body) = cluster.call(0, BOB, "text__stats", &stats(0)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_quota_holds_across_nodes() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(3, &redis, "concurrency = 2", "").await;
    let calls = (0..6).map(|i| {
        let cluster = &cluster;
        async move {
            cluster
                .call(i % 3, ALICE, "sleep", &json!({"ms": 1500}))
                .await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|(status, ..)| *status == 200).count();
    let busy = answers
        .iter()
        .filter(|(status, _, body)| *status == 429 && body.to_string().contains("in flight"))
        .count();
    assert!(
        (1..=2).contains(&ok) && ok + busy == 6,
        "6 calls at once on 3 nodes with a quota of 2: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_result_is_shared_between_nodes_within_a_tenant_only() {
    let redis = RedisServer::start();
    let cluster = Cluster::start(2, &redis, "", "").await;
    let input = digest(7);
    let (status, _, first) = cluster.call(0, ALICE, "hash__digest", &input).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("cached").is_none(), "{first}");
    // The entry reaches Redis in the background.
    let mut stored = false;
    for _ in 0..200 {
        if redis
            .command("KEYS toolhost:cache:alice:*")
            .is_ok_and(|r| r != "*0")
        {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(stored, "node 0 never put its result in Redis");
    let (_, _, hit) = cluster.call(1, ALICE, "hash__digest", &input).await;
    assert_eq!(
        hit["cached"], true,
        "node 1 answers alice from node 0's call: {hit}"
    );
    assert_eq!(hit["output"], first["output"]);
    let (_, _, bob) = cluster.call(1, BOB, "hash__digest", &input).await;
    assert!(
        bob.get("cached").is_none(),
        "bob is answered from alice's call: {bob}"
    );
    assert!(
        cluster
            .metrics(1)
            .await
            .contains("toolhost_node_info{node=")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_with_a_status_and_the_limits_resume_when_it_is_back() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::start(
        2,
        &redis,
        "rate = \"1000/s\"",
        "retry_ms = 200\ntimeout_ms = 200",
    )
    .await;
    let (status, _, body) = cluster.call(0, ALICE, "hash__digest", &digest(0)).await;
    assert_eq!(status, 200, "{body}");
    redis.kill();
    for i in 0..10 {
        let (status, retry_after, body) = cluster
            .call(i % 2, ALICE, "hash__digest", &digest(100 + i))
            .await;
        // Permits leased before Redis died may still admit a call or two.
        assert!(
            status == 429 || status == 200,
            "call {i} with Redis down: {status} {body}"
        );
        if status == 429 {
            assert!(retry_after.is_some(), "{body}");
            assert!(body.to_string().contains("shared quotas"), "{body}");
        }
    }
    let metrics = cluster.metrics(0).await;
    assert!(metrics.contains("toolhost_shared_store_up 0"), "{metrics}");
    redis.restart();
    // Each node finds Redis again on its own, within a few retry times.
    for node in 0..2 {
        let mut back = false;
        for i in 0..100 {
            let (status, ..) = cluster
                .call(node, ALICE, "hash__digest", &digest(200 + i))
                .await;
            if status == 200 {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(back, "node {node} never served again after Redis came back");
    }
    // Permits leased before Redis died are spent first; then the rate is
    // taken from Redis again.
    for i in 0..20 {
        let (status, _, body) = cluster
            .call(i % 2, ALICE, "hash__digest", &digest(300 + i))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        redis.command("EXISTS toolhost:tenant:alice:rate").unwrap(),
        ":1",
        "the rate is kept in Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_in_local_mode_keeps_serving_within_a_share_of_the_quota() {
    let mut redis = RedisServer::start();
    let cluster = Cluster::start(
        2,
        &redis,
        "rate = \"20/h\"\nburst = 20",
        "retry_ms = 200\ntimeout_ms = 200\non_failure = \"local\"",
    )
    .await;
    redis.kill();
    let mut admitted = 0;
    for i in 0..40 {
        let (status, _, body) = cluster.call(0, ALICE, "hash__digest", &digest(i)).await;
        assert!(status == 200 || status == 429, "{status} {body}");
        admitted += usize::from(status == 200);
    }
    // Node 0 alone holds 20 / 2 nodes = 10.
    assert_eq!(admitted, 10, "node 0 admitted {admitted} with Redis down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_slots_come_back_after_the_lease() {
    let redis = RedisServer::start();
    let mut cluster = Cluster::start(
        2,
        &redis,
        "concurrency = 2",
        "lease_ms = 300\nslot_ttl_ms = 1500",
    )
    .await;
    // Two long calls on node 0 hold both of alice's slots.
    for _ in 0..2 {
        let client = cluster.client.clone();
        let url = cluster.nodes[0].url("/v1/tools/sleep/call");
        tokio::spawn(async move {
            let _ = client
                .post(url)
                .bearer_auth(ALICE)
                .header("content-type", "application/json")
                .body(json!({"ms": 60_000}).to_string())
                .send()
                .await;
        });
    }
    let mut held = false;
    for _ in 0..200 {
        if cluster.metrics(0).await.contains("toolhost_in_flight 2") {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(held, "node 0 never held both slots");
    let (status, _, body) = cluster.call(1, ALICE, "sleep", &json!({"ms": 1})).await;
    assert_eq!(status, 429, "both slots are held on node 0: {body}");
    // Node 0 dies without giving anything back.
    drop(cluster.nodes.remove(0));
    let mut freed = false;
    for _ in 0..100 {
        let (status, ..) = cluster.call(0, ALICE, "sleep", &json!({"ms": 1})).await;
        if status == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the dead node's slots never came back");
}
