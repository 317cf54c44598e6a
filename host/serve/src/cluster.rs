//! Several nodes behind one load balancer: the `[redis]` table of the
//! server configuration, and the shared store it opens.
//!
//! ```toml
//! [redis]
//! url = "redis://127.0.0.1:6379/0"  # rediss:// for TLS; redis://USER:PASSWORD@… for AUTH
//! prefix = "toolhost"               # keys live under it
//! nodes = 3                         # nodes sharing it: bounds batches; divides quotas in `local` mode
//! on_failure = "refuse"             # Redis down: "refuse" (429) or "local" (quota / nodes here)
//! timeout_ms = 250                  # one request; slower counts as down
//! connect_timeout_ms = 1000
//! retry_ms = 1000                   # after a failure, Redis is left alone this long
//! batch = 8                         # permits or slots a node takes at once
//! lease_ms = 1000                   # unused permits go back after this
//! slot_ttl_ms = 10000               # a dead node's slots come back after this
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toolhost_runtime::shared::{OnFailure, Shared, SharedConfig};

use crate::store::{RedisOptions, RedisSetupError, RedisStore};

/// The `[redis]` table: where the nodes share their quotas and cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[USER:PASSWORD@]HOST:PORT/DB`, or `rediss://` for TLS.
    pub url: String,
    /// Prepended to every key.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// This node's name [default: HOSTNAME-PID].
    #[serde(default)]
    pub node: Option<String>,
    /// The nodes sharing the store.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    /// What quotas do while Redis is down.
    #[serde(default)]
    pub on_failure: FailureMode,
    /// Milliseconds one request may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Milliseconds a connection attempt may take.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds Redis is left alone after it failed.
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
    /// Permits (or slots) a node takes at once, at most.
    #[serde(default = "default_batch")]
    pub batch: u64,
    /// Milliseconds a node keeps permits it has not used.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Milliseconds a node's slots outlive its last renewal.
    #[serde(default = "default_slot_ttl_ms")]
    pub slot_ttl_ms: u64,
}

/// What quotas do while Redis is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FailureMode {
    /// Refuse calls under a quota: 429 with `Retry-After`.
    #[default]
    Refuse,
    /// Each quota held by this node alone, divided by `nodes`.
    Local,
}

fn default_prefix() -> String {
    "toolhost".into()
}
fn default_nodes() -> u32 {
    2
}
fn default_timeout_ms() -> u64 {
    250
}
fn default_connect_timeout_ms() -> u64 {
    1000
}
fn default_retry_ms() -> u64 {
    1000
}
fn default_batch() -> u64 {
    8
}
fn default_lease_ms() -> u64 {
    1000
}
fn default_slot_ttl_ms() -> u64 {
    10_000
}

impl RedisConfig {
    /// The defaults, at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            node: None,
            nodes: default_nodes(),
            on_failure: FailureMode::default(),
            timeout_ms: default_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            retry_ms: default_retry_ms(),
            batch: default_batch(),
            lease_ms: default_lease_ms(),
            slot_ttl_ms: default_slot_ttl_ms(),
        }
    }

    /// Checks the values a file may get wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("nodes", u64::from(self.nodes)),
            ("timeout_ms", self.timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("retry_ms", self.retry_ms),
            ("batch", self.batch),
            ("lease_ms", self.lease_ms),
            ("slot_ttl_ms", self.slot_ttl_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("redis.{name} must be at least 1"));
            }
        }
        if self.slot_ttl_ms < 2 * self.lease_ms {
            return Err(format!(
                "redis.slot_ttl_ms ({}) must be at least twice lease_ms ({}): nodes renew \
                 their slots every half lease",
                self.slot_ttl_ms, self.lease_ms
            ));
        }
        if !(self.url.starts_with("redis://") || self.url.starts_with("rediss://")) {
            return Err("redis.url must start with redis:// or rediss://".into());
        }
        Ok(())
    }

    /// This node's name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "node".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The shared store on Redis; nothing is sent until first used, so a
    /// node starts while Redis is down. Run [`Shared::maintain`] beside the
    /// server (the executor does not).
    pub fn open(&self) -> Result<Arc<Shared>, RedisSetupError> {
        if self.url.starts_with("rediss://") {
            // TLS to Redis uses rustls with ring, like every other client here.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let ms = Duration::from_millis;
        let node = self.node_name();
        let store = RedisStore::new(&RedisOptions {
            url: self.url.clone(),
            prefix: self.prefix.clone(),
            node: node.clone(),
            slot_ttl: ms(self.slot_ttl_ms),
            connect_timeout: ms(self.connect_timeout_ms),
            timeout: ms(self.timeout_ms),
        })?;
        let mut config = SharedConfig::default();
        config.node = node;
        config.batch = self.batch;
        config.lease = ms(self.lease_ms);
        config.nodes = self.nodes;
        config.on_failure = match self.on_failure {
            FailureMode::Refuse => OnFailure::Refuse,
            FailureMode::Local => OnFailure::Local,
        };
        config.timeout = ms(self.timeout_ms);
        config.retry = ms(self.retry_ms);
        Ok(Shared::new(Arc::new(store), config))
    }
}
