//! Policies: what a tool may use and how much. Pure data, deny by default.
//!
//! A tool's policy is `NAME.toml` beside `NAME.wasm`. It is layered over the
//! host's defaults; a policy that does not parse or validate means the tool
//! does not load, never "loads with defaults".

#[cfg(test)]
mod fuzz;
mod pattern;
mod review;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use self::pattern::{HostPattern, Scheme, Target};
pub use self::review::{Granted, PolicyReview, review_dir};
pub(crate) use self::secret::ResolvedSecret;
pub use self::secret::Secret;

/// A tool's policy file, as written.
///
/// Secure defaults: an empty policy grants nothing (no wall clock, which
/// then reads 1970-01-01; no environment; no outbound HTTP; no directories;
/// no secrets) and keeps the host's default limits. Unknown keys are
/// refused, and a policy that does not parse or validate means the tool does
/// not load.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use toolhost_runtime::Policy;
///
/// let text = r#"
/// [limits]
/// timeout_ms = 2000
/// [capabilities]
/// http = ["https://api.example.com"]
/// "#;
/// let policy = Policy::parse(text, Path::new("fetch.toml"))?;
/// policy.validate(Path::new("fetch.toml"), 512)?;
/// assert_eq!(policy.capabilities.http, ["https://api.example.com"]);
/// assert!(!policy.capabilities.wall_clock);
/// // A key the host does not know is refused, not ignored.
/// assert!(Policy::parse("[capabilities]\nsockets = true\n", Path::new("x.toml")).is_err());
/// # Ok::<(), toolhost_runtime::PolicyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// Resource limits; unset fields keep the host's defaults.
    #[serde(default)]
    pub limits: LimitsPatch,
    /// What the tool may reach. Everything is denied unless granted here.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// When failed calls are tried again.
    #[serde(default)]
    pub retry: RetryPatch,
    /// Headers the host adds to outgoing requests, keyed by host pattern.
    /// Their values are read from the host's environment or files when the
    /// tool loads; the guest never sees them.
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
}

/// Retry settings as a policy states them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryPatch {
    /// Attempts in all, the first included (1 turns retries off).
    pub attempts: Option<u32>,
    /// The first backoff, in milliseconds; each retry doubles it, with jitter.
    pub backoff_ms: Option<u64>,
    /// The longest backoff, in milliseconds.
    pub max_backoff_ms: Option<u64>,
    /// Also retry traps (treat them as transient).
    pub on_trap: Option<bool>,
    /// Retry even though the tool does not declare itself idempotent.
    pub non_idempotent: Option<bool>,
}

/// The settled retry rules of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff.
    pub backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Retry traps too.
    pub on_trap: bool,
    /// Retry tools that are not idempotent.
    pub non_idempotent: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            on_trap: false,
            non_idempotent: false,
        }
    }
}

/// What a limit does when it is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnLimit {
    /// Wait for a permit (backpressure), up to the queue deadline.
    #[default]
    Wait,
    /// Refuse at once with the `rate-limited` outcome.
    Reject,
}

/// Limits as a policy states them: each one optional, overriding the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsPatch {
    /// Wall-clock budget of one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Fuel (roughly, wasm instructions) one call may burn.
    pub fuel: Option<u64>,
    /// Linear memory cap per call, in MiB: the sum over every memory of the
    /// component's instance.
    pub memory_mb: Option<u64>,
    /// Largest output one call may return, in KiB. Checked while the output
    /// is read from the guest; a tool error's text is cut to it.
    pub max_output_kb: Option<u64>,
    /// Calls of this tool in flight at once (default
    /// [`DEFAULT_MAX_CONCURRENCY`], 64); more wait or are refused, as
    /// `on_limit` says.
    pub max_concurrency: Option<u32>,
    /// Rate limit such as `"100/s"`, `"600/min"` or `"5000/h"`.
    pub rate: Option<String>,
    /// Burst size for `rate`; defaults to the rate's count.
    pub burst: Option<u32>,
    /// What the rate limit and the concurrency cap do when reached.
    pub on_limit: Option<OnLimit>,
    /// Limits on outbound HTTP, as `[limits.http]`.
    #[serde(default)]
    pub http: HttpLimitsPatch,
}

/// Outbound HTTP limits as a policy states them (`[limits.http]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpLimitsPatch {
    /// Largest response body one request may receive, in KiB.
    pub max_response_kb: Option<u64>,
    /// Time one request may take, from connecting to the body's last byte, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Requests one call may send.
    pub max_requests: Option<u32>,
}

/// Capabilities a tool is granted. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Capabilities {
    /// See the real time of day. Without it the wall clock reads
    /// 1970-01-01T00:00:00Z (the monotonic clock always works).
    #[serde(default)]
    pub wall_clock: bool,
    /// Names of host environment variables passed through to the guest.
    #[serde(default)]
    pub env: Vec<String>,
    /// Hosts the tool may send HTTP requests to: `[scheme://]host[:port]`,
    /// with `*.example.com` for the names below a domain and `*` for a
    /// port or for any host. Empty: no outbound HTTP.
    #[serde(default)]
    pub http: Vec<String>,
    /// Let requests reach loopback, private, link-local and other
    /// non-public addresses. Off: every address a host resolves to must be
    /// public, or the request is denied.
    #[serde(default)]
    pub allow_private: bool,
    /// Directories the guest may read: guest path (absolute) to host path
    /// (relative to the policy's folder). Read-only.
    #[serde(default)]
    pub read_dirs: BTreeMap<String, String>,
}

/// Calls of one tool in flight at once unless its policy says otherwise:
/// enough to keep two cores busy with short calls and to overlap waits, few
/// enough that one busy tool leaves most of the memory budget to the others
/// (64 calls at the default 64 MiB cap reserve about 4 GiB).
pub const DEFAULT_MAX_CONCURRENCY: u32 = 64;

/// The limits that apply to one call, with every value settled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Wall-clock budget of one call.
    pub timeout: Duration,
    /// Fuel one call may burn.
    pub fuel: u64,
    /// Linear memory cap per call (all memories together), in bytes.
    pub memory_bytes: u64,
    /// Largest output, in bytes.
    pub max_output_bytes: u64,
    /// Calls of this tool in flight at once.
    pub max_concurrency: u32,
    /// Rate limit, if any.
    pub rate: Option<Rate>,
    /// What the rate limit and the concurrency cap do when reached.
    pub on_limit: OnLimit,
    /// When failed calls are tried again.
    pub retry: Retry,
    /// Outbound HTTP limits.
    pub http: HttpLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            fuel: 2_000_000_000,
            memory_bytes: 64 << 20,
            max_output_bytes: 1 << 20,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            rate: None,
            on_limit: OnLimit::Wait,
            retry: Retry::default(),
            http: HttpLimits::default(),
        }
    }
}

/// The outbound HTTP limits that apply to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Largest response body one request may receive, in bytes.
    pub max_response_bytes: u64,
    /// Time one request may take, from connecting to the body's last byte.
    pub timeout: Duration,
    /// Requests one call may send.
    pub max_requests: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 4 << 20,
            timeout: Duration::from_secs(10),
            max_requests: 16,
        }
    }
}

/// A rate limit: `count` calls per `per`, bursting to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rate {
    /// Calls allowed per period.
    pub count: u32,
    /// The period.
    pub per: Duration,
    /// How many calls may come at once.
    pub burst: u32,
}

/// Upper bounds no policy may exceed.
pub(crate) const MAX_TIMEOUT_MS: u64 = 600_000;
const MAX_OUTPUT_KB: u64 = 64 << 10;
const MAX_RESPONSE_KB: u64 = 256 << 10;
const MAX_REQUESTS: u32 = 10_000;

/// Why a policy was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: could not read the policy: {source}")]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse, or had an unknown key or a wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The policy file.
        path: PathBuf,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{path}: `{key}` {reason}")]
    Invalid {
        /// The policy file.
        path: PathBuf,
        /// The key, e.g. `limits.memory_mb`.
        key: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path, max_memory_mb: u64) -> Result<Self, PolicyError> {
        let text = crate::disk::read_text(path).map_err(|source| PolicyError::Read {
            path: path.into(),
            source,
        })?;
        let policy = Self::parse(&text, path)?;
        policy.validate(path, max_memory_mb)?;
        Ok(policy)
    }

    /// Parses policy TOML; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: path.into(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Checks every value; `max_memory_mb` is the engine's ceiling.
    pub fn validate(&self, path: &Path, max_memory_mb: u64) -> Result<(), PolicyError> {
        let invalid = |key: &str, reason: String| PolicyError::Invalid {
            path: path.into(),
            key: key.into(),
            reason,
        };
        let l = &self.limits;
        if let Some(ms) = l.timeout_ms
            && !(1..=MAX_TIMEOUT_MS).contains(&ms)
        {
            return Err(invalid(
                "limits.timeout_ms",
                format!("must be from 1 to {MAX_TIMEOUT_MS}, got {ms}"),
            ));
        }
        if l.fuel == Some(0) {
            return Err(invalid("limits.fuel", "must be greater than 0".into()));
        }
        if let Some(mb) = l.memory_mb
            && !(1..=max_memory_mb).contains(&mb)
        {
            return Err(invalid(
                "limits.memory_mb",
                format!("must be from 1 to {max_memory_mb} (the engine's ceiling), got {mb}"),
            ));
        }
        if let Some(kb) = l.max_output_kb
            && !(1..=MAX_OUTPUT_KB).contains(&kb)
        {
            return Err(invalid(
                "limits.max_output_kb",
                format!("must be from 1 to {MAX_OUTPUT_KB}, got {kb}"),
            ));
        }
        if l.max_concurrency == Some(0) {
            return Err(invalid(
                "limits.max_concurrency",
                "must be at least 1".into(),
            ));
        }
        if let Some(rate) = &l.rate {
            parse_rate(rate, l.burst).map_err(|reason| invalid("limits.rate", reason))?;
        } else if l.burst.is_some() {
            return Err(invalid(
                "limits.burst",
                "is set but `limits.rate` is not".into(),
            ));
        }
        let r = &self.retry;
        if let Some(attempts) = r.attempts
            && !(1..=10).contains(&attempts)
        {
            return Err(invalid(
                "retry.attempts",
                format!("must be from 1 to 10, got {attempts}"),
            ));
        }
        if let Some(ms) = r.backoff_ms
            && ms > 60_000
        {
            return Err(invalid(
                "retry.backoff_ms",
                format!("must be at most 60000, got {ms}"),
            ));
        }
        if let Some(ms) = r.max_backoff_ms
            && ms > 600_000
        {
            return Err(invalid(
                "retry.max_backoff_ms",
                format!("must be at most 600000, got {ms}"),
            ));
        }
        for name in &self.capabilities.env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(invalid(
                    "capabilities.env",
                    format!("{name:?} is not an environment variable name"),
                ));
            }
        }
        self.validate_http(path)?;
        for guest in self.capabilities.read_dirs.keys() {
            check_guest_dir(guest, self.capabilities.read_dirs.keys())
                .map_err(|reason| invalid(&format!("capabilities.read_dirs.{guest:?}"), reason))?;
        }
        Ok(())
    }

    fn validate_http(&self, path: &Path) -> Result<(), PolicyError> {
        let invalid = |key: &str, reason: String| PolicyError::Invalid {
            path: path.into(),
            key: key.into(),
            reason,
        };
        let h = &self.limits.http;
        if let Some(kb) = h.max_response_kb
            && !(1..=MAX_RESPONSE_KB).contains(&kb)
        {
            return Err(invalid(
                "limits.http.max_response_kb",
                format!("must be from 1 to {MAX_RESPONSE_KB}, got {kb}"),
            ));
        }
        if let Some(ms) = h.timeout_ms
            && !(1..=MAX_TIMEOUT_MS).contains(&ms)
        {
            return Err(invalid(
                "limits.http.timeout_ms",
                format!("must be from 1 to {MAX_TIMEOUT_MS}, got {ms}"),
            ));
        }
        if let Some(n) = h.max_requests
            && n > MAX_REQUESTS
        {
            return Err(invalid(
                "limits.http.max_requests",
                format!("must be from 0 to {MAX_REQUESTS}, got {n}"),
            ));
        }
        for pattern in &self.capabilities.http {
            HostPattern::parse(pattern).map_err(|reason| invalid("capabilities.http", reason))?;
        }
        for (pattern, secret) in &self.secrets {
            let key = format!("secrets.{pattern:?}");
            HostPattern::parse(pattern).map_err(|reason| invalid(&key, reason))?;
            secret::check(secret)
                .map_err(|(field, reason)| invalid(&format!("{key}.{field}"), reason))?;
        }
        Ok(())
    }

    /// The allow-list, parsed. Call [`Policy::validate`] first; a pattern
    /// that does not parse is dropped here (so it allows nothing).
    pub(crate) fn http_patterns(&self) -> Vec<HostPattern> {
        self.capabilities
            .http
            .iter()
            .filter_map(|p| HostPattern::parse(p).ok())
            .collect()
    }

    /// Reads every secret's value. `path` is the policy file: relative
    /// `${file:..}` paths start from its folder. A variable that is not set
    /// or a file that cannot be read refuses the policy, naming it.
    pub(crate) fn resolve_secrets(&self, path: &Path) -> Result<Vec<ResolvedSecret>, PolicyError> {
        let base = path.parent().unwrap_or(Path::new("."));
        self.secrets
            .iter()
            .map(|(pattern, secret)| {
                secret::resolve(pattern, secret, base).map_err(|reason| PolicyError::Invalid {
                    path: path.into(),
                    key: format!("secrets.{pattern:?}.value"),
                    reason,
                })
            })
            .collect()
    }

    /// The granted directories as (guest path, host directory), host paths
    /// made absolute from the policy's folder. Each must be a directory.
    pub(crate) fn resolve_dirs(&self, path: &Path) -> Result<Vec<(String, PathBuf)>, PolicyError> {
        let base = path.parent().unwrap_or(Path::new("."));
        self.capabilities
            .read_dirs
            .iter()
            .map(|(guest, host)| {
                let invalid = |reason: String| PolicyError::Invalid {
                    path: path.into(),
                    key: format!("capabilities.read_dirs.{guest:?}"),
                    reason,
                };
                let joined = base.join(host);
                let dir = joined.canonicalize().map_err(|e| {
                    invalid(format!(
                        "the host directory {} cannot be opened: {e}",
                        joined.display()
                    ))
                })?;
                if !dir.is_dir() {
                    return Err(invalid(format!("{} is not a directory", dir.display())));
                }
                Ok((guest.clone(), dir))
            })
            .collect()
    }

    /// The settled limits: `base` with this policy's values laid over it.
    /// Call [`Policy::validate`] first; an invalid rate is dropped here.
    pub fn limits(&self, base: &Limits) -> Limits {
        let l = &self.limits;
        Limits {
            timeout: l.timeout_ms.map_or(base.timeout, Duration::from_millis),
            fuel: l.fuel.unwrap_or(base.fuel),
            memory_bytes: l.memory_mb.map_or(base.memory_bytes, |mb| mb << 20),
            max_output_bytes: l.max_output_kb.map_or(base.max_output_bytes, |kb| kb << 10),
            max_concurrency: l.max_concurrency.unwrap_or(base.max_concurrency),
            rate: l
                .rate
                .as_deref()
                .and_then(|r| parse_rate(r, l.burst).ok())
                .or(base.rate),
            on_limit: l.on_limit.unwrap_or(base.on_limit),
            retry: self.retry(&base.retry),
            http: HttpLimits {
                max_response_bytes: l
                    .http
                    .max_response_kb
                    .map_or(base.http.max_response_bytes, |kb| kb << 10),
                timeout: l
                    .http
                    .timeout_ms
                    .map_or(base.http.timeout, Duration::from_millis),
                max_requests: l.http.max_requests.unwrap_or(base.http.max_requests),
            },
        }
    }

    fn retry(&self, base: &Retry) -> Retry {
        let r = &self.retry;
        let backoff = r.backoff_ms.map_or(base.backoff, Duration::from_millis);
        Retry {
            attempts: r.attempts.unwrap_or(base.attempts),
            backoff,
            max_backoff: r
                .max_backoff_ms
                .map_or(base.max_backoff, Duration::from_millis)
                .max(backoff),
            on_trap: r.on_trap.unwrap_or(base.on_trap),
            non_idempotent: r.non_idempotent.unwrap_or(base.non_idempotent),
        }
    }
}

/// A guest directory must be absolute and plain (no `.`, `..` or empty
/// parts), and may not lie inside another granted one.
fn check_guest_dir<'a>(guest: &str, all: impl Iterator<Item = &'a String>) -> Result<(), String> {
    if !guest.starts_with('/') || guest.len() < 2 {
        return Err("the guest path must be absolute, such as \"/data\", and not \"/\"".into());
    }
    // Split by hand: `Path::components` drops a `.` that is not first, so
    // it would let `/.` (the root again) and `/data/.` through.
    if guest.contains('\0')
        || guest[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("the guest path may not contain `.`, `..`, `//` or end in `/`".into());
    }
    for other in all {
        if other != guest && guest.starts_with(&format!("{other}/")) {
            return Err(format!("lies inside the granted directory {other:?}"));
        }
    }
    Ok(())
}

/// Parses `"N/s"`, `"N/min"` or `"N/h"` (also `sec`, `second`, `m`, `minute`, `hour`).
pub fn parse_rate(text: &str, burst: Option<u32>) -> Result<Rate, String> {
    let (count, unit) = text.split_once('/').ok_or_else(|| {
        format!("{text:?} is not a rate; write it like \"100/s\", \"600/min\" or \"5000/h\"")
    })?;
    let count: u32 = count.trim().replace('_', "").parse().map_err(|_| {
        format!(
            "{text:?}: the count {:?} is not a whole number",
            count.trim()
        )
    })?;
    if count == 0 {
        return Err(format!("{text:?}: the count must be at least 1"));
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => return Err(format!("{text:?}: unknown unit {other:?}; use s, min or h")),
    };
    let burst = burst.unwrap_or(count);
    if burst == 0 {
        return Err("burst must be at least 1".into());
    }
    Ok(Rate { count, per, burst })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        let policy = Policy::parse(text, Path::new("t.toml"))?;
        policy.validate(Path::new("t.toml"), 512)?;
        Ok(policy)
    }

    #[test]
    fn empty_policy_grants_nothing() {
        let policy = parse("").unwrap();
        assert_eq!(policy, Policy::default());
        assert!(!policy.capabilities.wall_clock);
        assert!(policy.capabilities.env.is_empty());
        assert_eq!(policy.limits(&Limits::default()), Limits::default());
    }

    #[test]
    fn limits_layer_over_the_defaults() {
        let policy =
            parse("[limits]\ntimeout_ms = 250\nmemory_mb = 16\nrate = \"600/min\"\n").unwrap();
        let limits = policy.limits(&Limits::default());
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, 16 << 20);
        assert_eq!(limits.fuel, Limits::default().fuel);
        assert_eq!(
            limits.rate,
            Some(Rate {
                count: 600,
                per: Duration::from_secs(60),
                burst: 600
            })
        );
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = parse("[limits]\ntimeout = 5\n").unwrap_err().to_string();
        assert!(err.contains("t.toml") && err.contains("timeout"), "{err}");
        let err = parse("[capabilities]\nnetwork = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("network"), "{err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let err = parse("[limits]\nfuel = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (text, key) in [
            ("[limits]\ntimeout_ms = 0", "limits.timeout_ms"),
            ("[limits]\nmemory_mb = 100000", "limits.memory_mb"),
            ("[limits]\nfuel = 0", "limits.fuel"),
            ("[limits]\nmax_output_kb = 0", "limits.max_output_kb"),
            ("[limits]\nmax_concurrency = 0", "limits.max_concurrency"),
            ("[limits]\nrate = \"fast\"", "limits.rate"),
            ("[limits]\nrate = \"10/fortnight\"", "limits.rate"),
            ("[limits]\nburst = 3", "limits.burst"),
            ("[retry]\nattempts = 0", "retry.attempts"),
            ("[retry]\nbackoff_ms = 100000", "retry.backoff_ms"),
            ("[capabilities]\nenv = [\"A=B\"]", "capabilities.env"),
            (
                "[limits.http]\nmax_response_kb = 0",
                "limits.http.max_response_kb",
            ),
            ("[limits.http]\ntimeout_ms = 0", "limits.http.timeout_ms"),
            (
                "[limits.http]\nmax_requests = 99999",
                "limits.http.max_requests",
            ),
            (
                "[capabilities]\nhttp = [\"ftp://x.org\"]",
                "capabilities.http",
            ),
            ("[capabilities]\nhttp = [\"*.*.org\"]", "capabilities.http"),
            (
                "[capabilities]\nread_dirs = { \"/a/../b\" = \".\" }",
                "capabilities.read_dirs.\"/a/../b\"",
            ),
            (
                "[capabilities]\nread_dirs = { \"/.\" = \".\" }",
                "capabilities.read_dirs.\"/.\"",
            ),
            (
                "[capabilities]\nread_dirs = { \"/data/.\" = \".\" }",
                "capabilities.read_dirs.\"/data/.\"",
            ),
            (
                "[capabilities]\nread_dirs = { \"/a\" = \".\", \"/a/b\" = \".\" }",
                "capabilities.read_dirs.\"/a/b\"",
            ),
            (
                "[secrets]\n\"x.org\" = { header = \"Host\", value = \"${env:A}\" }",
                "secrets.\"x.org\".header",
            ),
            (
                "[secrets]\n\"x.org/p\" = { header = \"X-Key\", value = \"${env:A}\" }",
                "secrets.\"x.org/p\"",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(
                matches!(&err, PolicyError::Invalid { key: k, .. } if k == key),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100/s", None).unwrap().count, 100);
        assert_eq!(
            parse_rate("5_000 / h", Some(10)).unwrap(),
            Rate {
                count: 5000,
                per: Duration::from_secs(3600),
                burst: 10
            }
        );
        assert!(parse_rate("0/s", None).is_err());
        assert!(parse_rate("10", None).is_err());
    }

    #[test]
    fn capabilities_and_secrets_parse_and_round_trip() {
        let text = "[limits.http]\nmax_requests = 4\n\n[capabilities]\nhttp = [\"api.example.com\", \"*.wikipedia.org\", \"127.0.0.1:8080\", \"http://localhost:*\"]\nallow_private = true\nread_dirs = { \"/data\" = \"./fixtures/data\" }\n\n[secrets]\n\"api.example.com\" = { header = \"Authorization\", value = \"Bearer ${env:EXAMPLE_KEY}\" }\n";
        let policy = parse(text).unwrap();
        assert_eq!(policy.http_patterns().len(), 4);
        assert!(policy.capabilities.allow_private);
        assert_eq!(policy.capabilities.read_dirs["/data"], "./fixtures/data");
        assert_eq!(policy.secrets["api.example.com"].header, "Authorization");
        let limits = policy.limits(&Limits::default());
        assert_eq!(limits.http.max_requests, 4);
        assert_eq!(limits.http.timeout, HttpLimits::default().timeout);
        let again = toml::to_string(&policy).unwrap();
        assert_eq!(parse(&again).unwrap(), policy);
        // Unknown keys inside the new tables are refused too.
        assert!(parse("[limits.http]\nmax_bytes = 1").is_err());
        assert!(
            parse("[secrets]\n\"a.org\" = { header = \"X\", value = \"${env:A}\", scope = 1 }")
                .is_err()
        );
    }

    #[test]
    fn round_trips_through_toml() {
        let policy = parse("[limits]\nfuel = 1000\nrate = \"5/s\"\nburst = 2\non_limit = \"reject\"\n[retry]\nattempts = 2\non_trap = true\n[capabilities]\nwall_clock = true\nenv = [\"LANG\"]\n").unwrap();
        let text = toml::to_string(&policy).unwrap();
        assert_eq!(parse(&text).unwrap(), policy);
    }
}
