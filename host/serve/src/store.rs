//! The shared store on Redis: tenants' quotas, tools' rates and the result
//! cache of several `serve` nodes, each pool updated atomically by a Lua
//! script that reads Redis's own clock (so the nodes' clocks never matter).
//!
//! Keys, under the configured prefix (`toolhost` by default):
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:tenant:NAME:rate`, `P:tenant:NAME:fuel`, `P:tool:NAME:rate` | hash | a token bucket: `tokens`, `at` (ms) |
//! | `P:tenant:NAME:slots` | hash | slots held, by node |
//! | `P:tenant:NAME:slots:seq` | hash | the number of each node's last slot request applied |
//! | `P:nodes` | sorted set | each node's lease on its slots, by expiry (ms) |
//! | `P:cache:NAME` / `P:cache:NAME:HASH` | sorted set / string | a tenant's cached results, by age |
//!
//! A single Redis (or a primary with replicas): the scripts touch keys
//! they compute, which Redis Cluster does not allow.

use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use toolhost_runtime::shared::{CacheBounds, Grant, Holding, Pool, Store, StoreError};

/// The requests a store's nodes have sent, read from the text of Redis's
/// `INFO commandstats`: the scripts run (`EVALSHA`, `EVAL`), the cached
/// results read (`GET`) and the scripts loaded. (The report also counts the
/// commands a script runs inside Redis; those are not requests.) For
/// benchmarks and tests that count what sharing costs.
pub fn requests_in_commandstats(info: &str) -> u64 {
    const SENT: [&str; 4] = [
        "cmdstat_evalsha:",
        "cmdstat_eval:",
        "cmdstat_get:",
        "cmdstat_script|load:",
    ];
    info.lines()
        .filter(|line| SENT.iter().any(|kind| line.starts_with(kind)))
        .filter_map(|line| {
            line.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// How a node reaches Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisOptions {
    /// `redis://[USER:PASSWORD@]HOST:PORT/DB`, or `rediss://` for TLS.
    pub(crate) url: String,
    /// Prepended to every key, so several deployments can share one Redis.
    pub(crate) prefix: String,
    /// This node's name: it holds slots under it.
    pub(crate) node: String,
    /// How long a node's slots outlive its last renewal.
    pub(crate) slot_ttl: Duration,
    /// The longest a connection attempt may take.
    pub(crate) connect_timeout: Duration,
    /// The longest one request may take.
    pub(crate) timeout: Duration,
}

/// Why Redis could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("redis at {url}: {source}")]
pub struct RedisSetupError {
    url: String,
    #[source]
    source: RedisError,
}

/// The [`Store`] on Redis. Connects lazily and reconnects by itself: a
/// node starts (refusing or limiting locally, as configured) while Redis is
/// down, and uses it as soon as it answers.
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    node: String,
    slot_ttl_ms: u64,
    scripts: Scripts,
}

struct Scripts {
    take_bucket: Script,
    give_bucket: Script,
    take_slots: Script,
    hold_slots: Script,
    renew: Script,
    cache_put: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Redis's clock in milliseconds, first line of every script.
const NOW: &str = "local t = redis.call('TIME')\n\
                   local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// A token bucket, refilled to `now`. KEYS[1] the bucket; ARGV[1]
/// capacity, ARGV[2] refill per second.
const REFILL: &str = "local cap = tonumber(ARGV[1])\n\
    local rate = math.max(tonumber(ARGV[2]), 1e-9) / 1000\n\
    local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')\n\
    local tokens = tonumber(state[1])\n\
    local at = tonumber(state[2])\n\
    if tokens == nil or at == nil then tokens = cap; at = now end\n\
    tokens = math.min(cap, tokens + math.max(0, now - at) * rate)\n";

/// A node's slot request, numbered: `hold(slots, seqs, node, held, seq)`
/// lowers what `slots` counts under `node` to `held`, and says true,
/// unless `seqs` has a higher or equal number for `node` (the request came
/// too late; false). `seq` stays a string: it is stored as it came.
const HOLD: &str = "local function hold(slots, seqs, node, held, seq)\n\
      local last = redis.call('HGET', seqs, node)\n\
      if last and tonumber(seq) <= tonumber(last) then return false end\n\
      redis.call('HSET', seqs, node, seq)\n\
      local mine = tonumber(redis.call('HGET', slots, node) or '0')\n\
      held = tonumber(held)\n\
      if mine > held then\n\
        if held > 0 then redis.call('HSET', slots, node, held)\n\
        else redis.call('HDEL', slots, node) end\n\
      end\n\
      return true\n\
    end\n";

/// Stores the bucket and lets it expire once it would be full anyway.
const SAVE: &str = "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)\n\
    redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate) + 60000)\n";

impl RedisStore {
    /// A store on `options.url`; nothing is sent until first used.
    pub(crate) fn new(options: &RedisOptions) -> Result<Self, RedisSetupError> {
        let setup = |source| RedisSetupError {
            url: redacted(&options.url),
            source,
        };
        let client = redis::Client::open(options.url.as_str()).map_err(setup)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(setup)?;
        let script = |body: &str| Script::new(&format!("{NOW}{body}"));
        Ok(Self {
            connection,
            prefix: options.prefix.clone(),
            node: options.node.clone(),
            slot_ttl_ms: u64::try_from(options.slot_ttl.as_millis()).unwrap_or(u64::MAX),
            scripts: Scripts {
                // ARGV[3] want, ARGV[4] min: {granted, wait ms}.
                take_bucket: script(&format!(
                    "{REFILL}local want = tonumber(ARGV[3])\n\
                     local min = math.min(tonumber(ARGV[4]), cap)\n\
                     local granted = math.min(want, math.floor(tokens))\n\
                     local wait = 0\n\
                     if granted < min then granted = 0; wait = math.ceil((min - tokens) / rate) end\n\
                     tokens = tokens - granted\n{SAVE}return {{granted, wait}}"
                )),
                // ARGV[3] amount.
                give_bucket: script(&format!(
                    "{REFILL}tokens = math.min(cap, tokens + tonumber(ARGV[3]))\n{SAVE}return 1"
                )),
                // KEYS[1] the slots, KEYS[2] the nodes, KEYS[3] the slot
                // requests' numbers; ARGV[1] capacity, ARGV[2] want, ARGV[3]
                // min, ARGV[4] node, ARGV[5] ttl ms, ARGV[6] held, ARGV[7]
                // seq. The node's count is lowered to what it holds; slots
                // of nodes whose lease lapsed are freed first.
                take_slots: script(&format!(
                    "{HOLD}redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])\n\
                     if not hold(KEYS[1], KEYS[3], ARGV[4], ARGV[6], ARGV[7]) then return {{0, 0}} end\n\
                     local held = redis.call('HGETALL', KEYS[1])\n\
                     local used = 0\n\
                     for i = 1, #held, 2 do\n\
                       local expiry = redis.call('ZSCORE', KEYS[2], held[i])\n\
                       if not expiry or tonumber(expiry) < now then\n\
                         redis.call('HDEL', KEYS[1], held[i])\n\
                         redis.call('HDEL', KEYS[3], held[i])\n\
                       else used = used + tonumber(held[i + 1]) end\n\
                     end\n\
                     local granted = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)\n\
                     if granted < tonumber(ARGV[3]) then return {{0, 1000}} end\n\
                     redis.call('HINCRBY', KEYS[1], ARGV[4], granted)\n\
                     return {{granted, 0}}"
                )),
                // KEYS[1] the slots, KEYS[2] the slot requests' numbers;
                // ARGV[1] node, ARGV[2] held, ARGV[3] seq.
                hold_slots: script(&format!(
                    "{HOLD}hold(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])\nreturn 1"
                )),
                // KEYS[1] the nodes; ARGV[1] node, ARGV[2] ttl ms.
                renew: script(
                    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n\
                     redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)\n\
                     return 1",
                ),
                // KEYS[1] the index, KEYS[2] the entry; ARGV[1] value,
                // ARGV[2] ttl ms, ARGV[3] max entries, ARGV[4] max bytes.
                // The index scores entries by age; field sizes in a hash
                // beside it (KEYS[1]..':bytes', with the total under '#').
                cache_put: script(
                    "local ttl = tonumber(ARGV[2])\n\
                     local sizes = KEYS[1] .. ':bytes'\n\
                     local function drop(key)\n\
                       local size = tonumber(redis.call('HGET', sizes, key) or '0')\n\
                       redis.call('HDEL', sizes, key)\n\
                       redis.call('HINCRBY', sizes, '#', -size)\n\
                       redis.call('ZREM', KEYS[1], key)\n\
                       redis.call('DEL', key)\n\
                     end\n\
                     for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)) do drop(key) end\n\
                     if redis.call('ZSCORE', KEYS[1], KEYS[2]) then drop(KEYS[2]) end\n\
                     local size = string.len(ARGV[1])\n\
                     if size > tonumber(ARGV[4]) then return 0 end\n\
                     redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)\n\
                     redis.call('ZADD', KEYS[1], now, KEYS[2])\n\
                     redis.call('HSET', sizes, KEYS[2], size)\n\
                     local total = redis.call('HINCRBY', sizes, '#', size)\n\
                     while redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[3]) or total > tonumber(ARGV[4]) do\n\
                       local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]\n\
                       if not oldest then break end\n\
                       drop(oldest)\n\
                       total = tonumber(redis.call('HGET', sizes, '#') or '0')\n\
                     end\n\
                     redis.call('PEXPIRE', KEYS[1], ttl)\n\
                     redis.call('PEXPIRE', sizes, ttl)\n\
                     return 1",
                ),
            },
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn failed(error: RedisError) -> StoreError {
    StoreError(error.to_string())
}

impl Store for RedisStore {
    fn take<'a>(
        &'a self,
        key: &'a str,
        pool: Pool,
        want: u64,
        min: u64,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let (granted, wait_ms): (u64, u64) = match pool {
                Pool::Bucket {
                    capacity,
                    per_second,
                } => {
                    self.scripts
                        .take_bucket
                        .key(self.key(key))
                        .arg(capacity)
                        .arg(per_second)
                        .arg(want)
                        .arg(min)
                        .invoke_async(&mut connection)
                        .await
                }
                _ => {
                    return Err(StoreError(
                        "not a bucket: slots are taken by take_slots".into(),
                    ));
                }
            }
            .map_err(failed)?;
            Ok(Grant {
                granted,
                retry_after: Duration::from_millis(wait_ms),
            })
        })
    }

    fn give<'a>(
        &'a self,
        key: &'a str,
        pool: Pool,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = match pool {
                Pool::Bucket {
                    capacity,
                    per_second,
                } => {
                    self.scripts
                        .give_bucket
                        .key(self.key(key))
                        .arg(capacity)
                        .arg(per_second)
                        .arg(amount)
                        .invoke_async(&mut connection)
                        .await
                }
                _ => {
                    return Err(StoreError(
                        "not a bucket: slots are given back by hold_slots".into(),
                    ));
                }
            }
            .map_err(failed)?;
            Ok(())
        })
    }

    fn take_slots<'a>(
        &'a self,
        key: &'a str,
        capacity: u64,
        want: u64,
        min: u64,
        holding: Holding,
    ) -> BoxFuture<'a, Result<Grant, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let slots = self.key(key);
            let (granted, wait_ms): (u64, u64) = self
                .scripts
                .take_slots
                .key(&slots)
                .key(self.key("nodes"))
                .key(format!("{slots}:seq"))
                .arg(capacity)
                .arg(want)
                .arg(min)
                .arg(&self.node)
                .arg(self.slot_ttl_ms)
                .arg(holding.held)
                .arg(holding.seq)
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            Ok(Grant {
                granted,
                retry_after: Duration::from_millis(wait_ms),
            })
        })
    }

    fn hold_slots<'a>(
        &'a self,
        key: &'a str,
        holding: Holding,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let slots = self.key(key);
            let _: i64 = self
                .scripts
                .hold_slots
                .key(&slots)
                .key(format!("{slots}:seq"))
                .arg(&self.node)
                .arg(holding.held)
                .arg(holding.seq)
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn renew(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = self
                .scripts
                .renew
                .key(self.key("nodes"))
                .arg(&self.node)
                .arg(self.slot_ttl_ms)
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }

    fn cache_get<'a>(
        &'a self,
        partition: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            redis::cmd("GET")
                .arg(self.key(&format!("cache:{partition}:{key}")))
                .query_async(&mut connection)
                .await
                .map_err(failed)
        })
    }

    fn cache_put<'a>(
        &'a self,
        partition: &'a str,
        key: &'a str,
        value: Vec<u8>,
        bounds: CacheBounds,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = self
                .scripts
                .cache_put
                .key(self.key(&format!("cache:{partition}")))
                .key(self.key(&format!("cache:{partition}:{key}")))
                .arg(value)
                .arg(
                    u64::try_from(bounds.ttl.as_millis())
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .arg(bounds.max_entries)
                .arg(bounds.max_bytes)
                .invoke_async(&mut connection)
                .await
                .map_err(failed)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use toolhost_runtime::shared::{Holding, Store};

    use super::{RedisOptions, RedisStore, redacted, requests_in_commandstats};

    /// A real `redis-server` on a free loopback port, killed when dropped.
    struct Redis(Child, u16);

    impl Redis {
        fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "could not start redis-server ({e}): this test needs a real Redis; \
                         install the Debian package `redis-server`"
                    )
                });
            // Made first, so a server that never listens is killed too.
            let redis = Self(child, port);
            for _ in 0..200 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return redis;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            panic!("redis-server did not listen on port {port}");
        }

        fn store(&self, node: &str) -> RedisStore {
            RedisStore::new(&RedisOptions {
                url: format!("redis://127.0.0.1:{}", self.1),
                prefix: "t".into(),
                node: node.into(),
                slot_ttl: Duration::from_secs(60),
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(5),
            })
            .expect("a store")
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The scripts' rule for slot requests that arrive out of order: a
    /// request numbered at or below the last one applied for its node is
    /// ignored, so a late give-back never takes away slots a newer request
    /// took (the cap would be exceeded), and a late take never adds slots
    /// a newer give-back let go (they would leak for good).
    #[tokio::test]
    async fn late_slot_requests_are_ignored_by_the_scripts() {
        let redis = Redis::start();
        let (a, b) = (redis.store("a"), redis.store("b"));
        let holding = |held, seq| Holding { held, seq };
        /// Asks for `want` of 4 slots, holding `held`, as request `seq`.
        async fn take(store: &RedisStore, want: u64, held: u64, seq: u64) -> u64 {
            store
                .take_slots(KEY, 4, want, 1, Holding { held, seq })
                .await
                .expect("redis answers")
                .granted
        }
        const KEY: &str = "tenant:acme:slots";
        let key = KEY;
        assert_eq!(take(&a, 2, 0, 1).await, 2);
        // A gives both back (request 3); its take numbered 2 arrives after.
        a.hold_slots(key, holding(0, 3)).await.unwrap();
        assert_eq!(take(&a, 2, 0, 2).await, 0, "a late take is ignored");
        // So B finds all 4 free: none leaked to A.
        assert_eq!(take(&b, 4, 0, 1).await, 4);
        b.hold_slots(key, holding(0, 2)).await.unwrap();

        // A takes 3 (request 5); a give-back numbered 4 arrives after it.
        assert_eq!(take(&a, 3, 0, 5).await, 3);
        a.hold_slots(key, holding(0, 4)).await.unwrap();
        // A still holds 3, so B gets 1: the cap of 4 holds.
        assert_eq!(take(&b, 4, 0, 3).await, 1);
        // The same number twice is late too.
        a.hold_slots(key, holding(0, 5)).await.unwrap();
        assert_eq!(take(&b, 4, 1, 4).await, 0);
        // A newer give-back is applied.
        a.hold_slots(key, holding(0, 6)).await.unwrap();
        assert_eq!(take(&b, 4, 1, 5).await, 3);
    }

    #[test]
    fn the_requests_counted_are_the_ones_a_node_sends() {
        let info = "# Commandstats\r\n\
            cmdstat_evalsha:calls=40,usec=900,usec_per_call=22.50,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_eval:calls=2,usec=80,usec_per_call=40.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_get:calls=7,usec=10,usec_per_call=1.43,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_script|load:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_hget:calls=100,usec=50,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_info:calls=3,usec=300,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n";
        // The commands scripts run inside Redis (`hget`) and `INFO` itself
        // are not requests.
        assert_eq!(requests_in_commandstats(info), 54);
        assert_eq!(requests_in_commandstats(""), 0);
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("redis://user:secret@127.0.0.1:6379/0"),
            "redis://…@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
