//! The server's configuration file: tenants, their hashed API keys, the
//! tools each may call, their quotas and the limits that narrow every
//! tool's policy for them. Pure data, like policies: unknown keys are an
//! error and a file that does not validate means the server does not start.
//!
//! ```toml
//! admin_keys = ["blake3:…"]     # may read /metrics; none = /metrics refused
//! admin_calls_tools = false     # true: admin keys call every tool, as tenant `admin`
//! locked = false                # true: only what the tools folder's toolhost.lock pins loads
//! trusted_keys = []             # ["ed25519:…"]: components must be signed by one of these
//! max_body_kb = 1024            # request bodies, `/mcp` included
//! memory_budget_mb = 8192       # calls in flight together; default: half the machine's
//! tenant_concurrency = 64       # for tenants without their own; default: half the pool
//! header_timeout_ms = 10_000    # a request head (or the next, on a kept-alive connection)
//! max_connections = 10_000      # open at once; at most 3/4 of the open-file limit
//! body_timeout_ms = 30_000      # a request body, once the key is checked
//! send_timeout_ms = 30_000      # an answer the client takes nothing of for this
//!                               # long is closed; default: body_timeout_ms
//! mcp_max_sessions = 1024       # MCP sessions open at once, all tenants
//! mcp_max_sessions_per_tenant = 32
//! mcp_session_idle_s = 300      # an MCP session without a message ends
//!
//! [[tenant]]
//! name = "acme"
//! keys = ["blake3:9f2c…"]       # `toolhost serve hash-key` prints one
//! tools = ["calc", "text__*"]   # names or `prefix*`; `*` for all
//! rate = "200/s"                # calls; 429 with Retry-After past it
//! concurrency = 16              # calls in flight at once (default: tenant_concurrency)
//! fuel_per_minute = 50_000_000_000
//! reach_outside = false         # no tool that may use network, dirs or clock
//! [tenant.limits]               # may only lower the tool's own policy
//! timeout_ms = 2000
//! fuel = 1_000_000_000
//! memory_mb = 32
//! max_output_kb = 256
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cluster::RedisConfig;
use toolhost_runtime::Ceiling;
use toolhost_runtime::parse_rate;
use toolhost_runtime::tenancy::{Tenant, ToolFilter};

/// Why a server configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: could not read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The server configuration as written in its file. Every field has a
/// default (the values in the module's example, but `admin_keys`,
/// `memory_budget_mb` and the tenants), and [`ServeConfig::default`] holds them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Hashed keys that may read `/metrics` and the tool list.
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Whether admin keys may also call tools (every tool, as the tenant
    /// `admin`, with no quota but `tenant_concurrency` on each node); by
    /// default they are refused with 403.
    #[serde(default)]
    pub admin_calls_tools: bool,
    /// Trust: refuse any component or policy that the tools folder's
    /// `toolhost.lock` does not pin (like `--locked`), at start and on reload.
    #[serde(default)]
    pub locked: bool,
    /// Trust: public keys (`ed25519:HEX`); when any is set, every component
    /// must carry a signature (`NAME.wasm.sig`) by one of them.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Largest request body, in KiB, on every route (`/mcp` included).
    #[serde(default = "default_body_kb")]
    pub max_body_kb: u64,
    /// Milliseconds a connection has to send a request's head: from when it
    /// opens, or from the previous answer on a kept-alive connection. A
    /// client that sends nothing, or its headers too slowly, is dropped.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// Connections open at once. At the cap, the server closes a
    /// connection without a request in flight to make room for a new one
    /// (the oldest of the address holding the most connections, never the
    /// one taken last), or lets the new one wait in the listen queue while
    /// no connection can be closed. Never more than three quarters of the
    /// process's open-file limit, so that a flood of connections leaves
    /// files for the host itself (tools, caches, Redis).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Milliseconds a request has to send its body once its key was
    /// checked; past it, 408.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Milliseconds a connection may take nothing of what the server sends
    /// it (an answer, an SSE event) before it is closed and the answer's
    /// buffers freed; `body_timeout_ms` when unset.
    #[serde(default)]
    pub send_timeout_ms: Option<u64>,
    /// MCP sessions open at once, every tenant together; past it, 503.
    #[serde(default = "default_max_sessions")]
    pub mcp_max_sessions: usize,
    /// MCP sessions one tenant may hold open at once; past it, 429.
    #[serde(default = "default_max_sessions_per_tenant")]
    pub mcp_max_sessions_per_tenant: usize,
    /// Seconds an MCP session lives without a message.
    #[serde(default = "default_session_idle_s")]
    pub mcp_session_idle_s: u64,
    /// Memory, in MiB, that the calls in flight may use together (their
    /// memory caps plus a fixed overhead each); calls beyond it queue. `None`
    /// takes the default: half of the machine's memory, or of the cgroup's
    /// limit when lower ([`toolhost_runtime::default_memory_budget_mb`]).
    #[serde(default)]
    pub memory_budget_mb: Option<u64>,
    /// Calls in flight at once for each tenant that sets no `concurrency`
    /// of its own. `None` takes the default: half of the executor's pool
    /// ([`toolhost_runtime::Executor::pool_size`]), at least 1, so that one tenant alone
    /// never holds every slot. Past it, a tenant's calls are refused (429).
    #[serde(default)]
    pub tenant_concurrency: Option<u32>,
    /// The tenants.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Quotas and the result cache shared with other nodes through Redis
    /// (see [`RedisConfig`]); without it every limit is this node's own.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

fn default_body_kb() -> u64 {
    1024
}

fn default_header_timeout_ms() -> u64 {
    10_000
}

fn default_max_connections() -> usize {
    10_000
}

fn default_body_timeout_ms() -> u64 {
    30_000
}

/// At about 61 KB a session, 1,024 sessions hold some 64 MB.
fn default_max_sessions() -> usize {
    1024
}

fn default_max_sessions_per_tenant() -> usize {
    32
}

fn default_session_idle_s() -> u64 {
    // rmcp's own default: five minutes.
    300
}

impl Default for ServeConfig {
    /// No tenants, no admin keys, every setting at its documented default.
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// One tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantConfig {
    /// The tenant's name, used in metrics and logs.
    pub name: String,
    /// Hashed API keys (`blake3:<hex>`).
    pub keys: Vec<String>,
    /// The tools it may call: names, `prefix*` patterns, or `*`.
    pub tools: Vec<String>,
    /// Calls per period, such as `"100/s"`.
    pub rate: Option<String>,
    /// Burst for `rate`; defaults to its count.
    pub burst: Option<u32>,
    /// Calls in flight at once; defaults to the server's `tenant_concurrency`.
    /// A call through `/v1/…` counts until its answer has been handed to
    /// the connection, so unread answers count too.
    pub concurrency: Option<u32>,
    /// Fuel its calls may burn per minute, all tools together.
    pub fuel_per_minute: Option<u64>,
    /// May call tools whose policy reaches outside the sandbox (network,
    /// directories, wall clock). Defaults to true; false narrows.
    #[serde(default = "yes")]
    pub reach_outside: bool,
    /// Limits that narrow every tool's own.
    #[serde(default)]
    pub limits: TenantLimits,
}

fn yes() -> bool {
    true
}

/// A tenant's ceilings on the tool policies' limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantLimits {
    /// Wall-clock budget of one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Fuel one call may burn.
    pub fuel: Option<u64>,
    /// Linear memory cap, in MiB.
    pub memory_mb: Option<u64>,
    /// Largest output, in KiB.
    pub max_output_kb: Option<u64>,
}

/// Hashes an API key the way the configuration stores it: `blake3:<hex>`.
/// Keys are long random tokens, so a fast hash is the right one.
pub fn hash_key(key: &str) -> String {
    format!("blake3:{}", blake3::hash(key.as_bytes()).to_hex())
}

impl ServeConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config.tenants().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        if let Some(redis) = &config.redis {
            redis.validate().map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        }
        Ok(config)
    }

    /// The tenants as enforced, each with its key hashes; an error names the
    /// tenant and the key at fault.
    pub(crate) fn tenants(&self) -> Result<Vec<TenantKeys>, String> {
        let mut seen_keys = std::collections::HashSet::new();
        let mut seen_names = std::collections::HashSet::new();
        for key in &self.admin_keys {
            parse_hash(key).map_err(|e| format!("admin_keys: {e}"))?;
        }
        if self.max_body_kb == 0 {
            return Err("max_body_kb must be at least 1".into());
        }
        if self.memory_budget_mb == Some(0) {
            return Err("memory_budget_mb must be at least 1".into());
        }
        if self.tenant_concurrency == Some(0) {
            return Err("tenant_concurrency must be at least 1".into());
        }
        for (name, value) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("body_timeout_ms", self.body_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms()),
            ("mcp_max_sessions", self.mcp_max_sessions as u64),
            (
                "mcp_max_sessions_per_tenant",
                self.mcp_max_sessions_per_tenant as u64,
            ),
            ("mcp_session_idle_s", self.mcp_session_idle_s),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.admin_calls_tools && self.tenants.iter().any(|t| t.name == ADMIN_TENANT) {
            return Err(format!(
                "with admin_calls_tools, admin keys call as the tenant `{ADMIN_TENANT}`: \
                 no other tenant may have that name"
            ));
        }
        self.tenants
            .iter()
            .map(|t| {
                let at = |message: String| format!("tenant `{}`: {message}", t.name);
                if t.name.is_empty() || !seen_names.insert(t.name.clone()) {
                    return Err(format!(
                        "tenant names must be unique and not empty: `{}`",
                        t.name
                    ));
                }
                if t.keys.is_empty() {
                    return Err(at("`keys` must hold at least one hashed key".into()));
                }
                let mut hashes = Vec::new();
                for key in &t.keys {
                    let hash = parse_hash(key).map_err(at)?;
                    if !seen_keys.insert(hash) {
                        return Err(at(format!("key {key} is given to more than one tenant")));
                    }
                    hashes.push(hash);
                }
                if t.tools
                    .iter()
                    .any(|p| p.is_empty() || p.strip_suffix('*').unwrap_or(p).contains('*'))
                {
                    return Err(at("`tools` entries are names, `prefix*` or `*`".into()));
                }
                let rate = t
                    .rate
                    .as_deref()
                    .map(|r| parse_rate(r, t.burst))
                    .transpose()
                    .map_err(at)?;
                if t.concurrency == Some(0) || t.fuel_per_minute == Some(0) {
                    return Err(at(
                        "`concurrency` and `fuel_per_minute` must be at least 1".into()
                    ));
                }
                let l = &t.limits;
                if [l.timeout_ms, l.fuel, l.memory_mb, l.max_output_kb].contains(&Some(0)) {
                    return Err(at("`limits` values must be at least 1".into()));
                }
                let mut tenant = Tenant::unlimited(t.name.clone());
                tenant.tools = ToolFilter::new(t.tools.clone());
                tenant.rate = rate;
                tenant.concurrency = t.concurrency;
                tenant.fuel_per_minute = t.fuel_per_minute;
                tenant.reach_outside = t.reach_outside;
                tenant.ceiling = ceiling(l);
                Ok((tenant, hashes))
            })
            .collect()
    }
}

/// The tenant admin keys act as: in metrics, and when they may call tools.
pub(crate) const ADMIN_TENANT: &str = "admin";

/// The settings of a running server, as read from its configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) max_body_bytes: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_tenant: usize,
    pub(crate) session_idle: Duration,
}

impl ServeConfig {
    /// `send_timeout_ms`, or `body_timeout_ms` when it is unset.
    fn send_timeout_ms(&self) -> u64 {
        self.send_timeout_ms.unwrap_or(self.body_timeout_ms)
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            max_body_bytes: usize::try_from(self.max_body_kb << 10).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            max_connections: self.max_connections,
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            send_timeout: Duration::from_millis(self.send_timeout_ms()),
            max_sessions: self.mcp_max_sessions,
            max_sessions_per_tenant: self.mcp_max_sessions_per_tenant,
            session_idle: Duration::from_secs(self.mcp_session_idle_s),
        }
    }
}

fn ceiling(limits: &TenantLimits) -> Ceiling {
    let mut ceiling = Ceiling::default();
    ceiling.timeout = limits.timeout_ms.map(Duration::from_millis);
    ceiling.fuel = limits.fuel;
    ceiling.memory_mb = limits.memory_mb;
    // Saturating: a shift would wrap a huge value to a tiny ceiling.
    ceiling.max_output_bytes = limits.max_output_kb.map(|kb| kb.saturating_mul(1024));
    ceiling
}

/// The concurrency of a tenant that sets none, on an executor whose pool
/// holds `pool` calls: half of it, at least 1.
pub(crate) fn default_tenant_concurrency(pool: usize) -> u32 {
    u32::try_from(pool / 2).unwrap_or(u32::MAX).max(1)
}

/// A tenant and the hashes of its keys.
pub(crate) type TenantKeys = (Tenant, Vec<[u8; 32]>);

/// Parses `blake3:<64 hex digits>`.
pub(crate) fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text.strip_prefix("blake3:").ok_or_else(|| {
        format!("key {text:?} must be a hash `blake3:<hex>` (see `toolhost serve hash-key`), not a plain key")
    })?;
    blake3::Hash::from_hex(hex)
        .map(|h| *h.as_bytes())
        .map_err(|_| format!("key {text:?}: `blake3:` must be followed by 64 hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<TenantKeys>, String> {
        let config: ServeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.tenants()
    }

    #[test]
    fn a_tenant_parses_with_hashed_keys_and_ceilings() {
        let text = format!(
            "[[tenant]]\nname = \"acme\"\nkeys = [\"{}\"]\ntools = [\"calc\", \"text__*\"]\nrate = \"5/s\"\n[tenant.limits]\ntimeout_ms = 100\n",
            hash_key("secret")
        );
        let tenants = parse(&text).unwrap();
        let (tenant, keys) = &tenants[0];
        assert_eq!(keys[0], *blake3::hash(b"secret").as_bytes());
        assert!(tenant.tools.allows("calc") && tenant.tools.allows("text__slugify"));
        assert!(!tenant.tools.allows("calculator") && !tenant.tools.allows("json"));
        assert_eq!(tenant.rate.unwrap().count, 5);
        assert_eq!(tenant.ceiling.timeout, Some(Duration::from_millis(100)));
        assert!(tenant.reach_outside);
    }

    #[test]
    fn the_send_bound_is_its_own_or_the_body_s() {
        let settings = |text: &str| toml::from_str::<ServeConfig>(text).unwrap().settings();
        let both = settings("body_timeout_ms = 2000\n");
        assert_eq!(both.send_timeout, Duration::from_millis(2000));
        let apart = settings("body_timeout_ms = 2000\nsend_timeout_ms = 90000\n");
        assert_eq!(apart.body_timeout, Duration::from_millis(2000));
        assert_eq!(apart.send_timeout, Duration::from_millis(90_000));
        let zero = parse("send_timeout_ms = 0\n").unwrap_err();
        assert!(
            zero.contains("send_timeout_ms must be at least 1"),
            "{zero}"
        );
    }

    #[test]
    fn non_ascii_tool_patterns_load_and_match() {
        let key = hash_key("k");
        let text = format!(
            "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = [\"é\", \"ü*\", \"日本\"]\n"
        );
        let tenants = parse(&text).unwrap();
        let tools = &tenants[0].0.tools;
        assert!(tools.allows("é") && tools.allows("üx") && tools.allows("日本"));
        assert!(!tools.allows("e") && !tools.allows("日"));
        let text = format!("[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = [\"日*本\"]\n");
        assert!(parse(&text).unwrap_err().contains("prefix*"));
    }

    #[test]
    fn a_huge_output_ceiling_saturates_instead_of_wrapping() {
        let key = hash_key("k");
        let text = format!(
            "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = []\n[tenant.limits]\nmax_output_kb = {}\n",
            1_u64 << 54
        );
        let tenants = parse(&text).unwrap();
        assert_eq!(tenants[0].0.ceiling.max_output_bytes, Some(u64::MAX));
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let key = hash_key("k");
        for (text, needle) in [
            (
                "[[tenant]]\nname = \"a\"\nkeys = [\"plain\"]\ntools = []\n",
                "blake3",
            ),
            (
                &format!("[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = [\"a*b\"]\n"),
                "prefix*",
            ),
            (
                &format!(
                    "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = []\nrate = \"fast\"\n"
                ),
                "not a rate",
            ),
            (
                &format!(
                    "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = []\n[[tenant]]\nname = \"b\"\nkeys = [\"{key}\"]\ntools = []\n"
                ),
                "more than one tenant",
            ),
            (
                &format!(
                    "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = []\nsurprise = 1\n"
                ),
                "unknown field",
            ),
            (
                &format!(
                    "[[tenant]]\nname = \"a\"\nkeys = [\"{key}\"]\ntools = []\n[tenant.limits]\nfuel = 0\n"
                ),
                "at least 1",
            ),
            ("memory_budget_mb = 0\n", "memory_budget_mb"),
            ("tenant_concurrency = 0\n", "tenant_concurrency"),
            (
                "mcp_max_sessions_per_tenant = 0\n",
                "mcp_max_sessions_per_tenant",
            ),
            ("header_timeout_ms = 0\n", "header_timeout_ms"),
            ("max_connections = 0\n", "max_connections"),
            (
                &format!(
                    "admin_calls_tools = true\n[[tenant]]\nname = \"admin\"\nkeys = [\"{key}\"]\ntools = []\n"
                ),
                "tenant `admin`",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(needle), "{error} should mention {needle}");
        }
    }
}
