//! `toolhost policy check`: validate every policy of a tools folder and say,
//! for each tool, what it is granted. Secret values are read (so a missing
//! variable is caught) but never kept or shown: only their hosts and headers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Limits, Policy, PolicyError};

/// What one tool is granted, with every value settled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Granted {
    /// The limits of one call (the defaults under the policy).
    pub limits: Limits,
    /// Whether the real wall clock is visible.
    pub wall_clock: bool,
    /// Environment variable names passed through.
    pub env: Vec<String>,
    /// Host patterns outbound HTTP may reach.
    pub http: Vec<String>,
    /// Whether non-public addresses may be reached.
    pub allow_private: bool,
    /// Read-only directories: guest path and host directory.
    pub read_dirs: Vec<(String, PathBuf)>,
    /// Secrets: host pattern and header name (never the value).
    pub secrets: Vec<(String, String)>,
}

impl Granted {
    fn from_policy(
        policy: &Policy,
        path: Option<&Path>,
        defaults: &Limits,
    ) -> Result<Self, PolicyError> {
        let read_dirs = match path {
            Some(path) => {
                // Read every secret to prove it resolves; the values are dropped here.
                policy.resolve_secrets(path)?;
                policy.resolve_dirs(path)?
            }
            None => Vec::new(),
        };
        let secrets = policy
            .secrets
            .iter()
            .map(|(pattern, secret)| (pattern.clone(), secret.header.clone()))
            .collect();
        Ok(Self {
            limits: policy.limits(defaults),
            wall_clock: policy.capabilities.wall_clock,
            env: policy.capabilities.env.clone(),
            http: policy.capabilities.http.clone(),
            allow_private: policy.capabilities.allow_private,
            read_dirs,
            secrets,
        })
    }

    /// Whether the tool is granted nothing beyond the sandbox's defaults.
    pub fn is_nothing(&self) -> bool {
        !self.wall_clock
            && self.env.is_empty()
            && self.http.is_empty()
            && self.read_dirs.is_empty()
            && self.secrets.is_empty()
    }

    /// As JSON, for `--json` output.
    pub fn to_json(&self) -> Value {
        let l = &self.limits;
        json!({
            "wall_clock": self.wall_clock,
            "env": self.env,
            "http": self.http,
            "allow_private": self.allow_private,
            "read_dirs": self.read_dirs.iter().map(|(g, h)| json!({"guest": g, "host": h.display().to_string(), "mode": "read-only"})).collect::<Vec<_>>(),
            "secrets": self.secrets.iter().map(|(p, h)| json!({"host": p, "header": h})).collect::<Vec<_>>(),
            "limits": {
                "timeout_ms": l.timeout.as_millis() as u64,
                "fuel": l.fuel,
                "memory_mb": l.memory_bytes >> 20,
                "max_output_kb": l.max_output_bytes >> 10,
                "max_concurrency": l.max_concurrency,
                "rate": l.rate.map(|r| format!("{}/{}s burst {}", r.count, r.per.as_secs(), r.burst)),
                "http": {
                    "max_response_kb": l.http.max_response_bytes >> 10,
                    "timeout_ms": l.http.timeout.as_millis() as u64,
                    "max_requests": l.http.max_requests,
                },
            },
        })
    }
}

/// The review of one tool's policy.
#[derive(Debug)]
#[non_exhaustive]
pub struct PolicyReview {
    /// The tool's file stem.
    pub tool: String,
    /// `NAME.wasm`, if it exists.
    pub component: Option<PathBuf>,
    /// `NAME.toml`, if it exists.
    pub policy: Option<PathBuf>,
    /// What is granted, or why the policy is refused (the tool would not load).
    pub result: Result<Granted, PolicyError>,
}

/// Reviews every `NAME.wasm` and `NAME.toml` in `dir` (not recursive), in
/// name order. `max_memory_mb` is the engine's ceiling, `defaults` the host's limits.
pub fn review_dir(
    dir: &Path,
    max_memory_mb: u64,
    defaults: &Limits,
) -> std::io::Result<Vec<PolicyReview>> {
    let mut tools: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let slot = tools.entry(stem.to_string()).or_default();
        match ext {
            "wasm" => slot.0 = Some(path.clone()),
            "toml" => slot.1 = Some(path.clone()),
            _ => {}
        }
    }
    Ok(tools
        .into_iter()
        .filter(|(_, (wasm, toml))| wasm.is_some() || toml.is_some())
        .map(|(tool, (component, policy))| {
            let result = match &policy {
                Some(path) => Policy::load(path, max_memory_mb)
                    .and_then(|p| Granted::from_policy(&p, Some(path), defaults)),
                None => Granted::from_policy(&Policy::default(), None, defaults),
            };
            PolicyReview {
                tool,
                component,
                policy,
                result,
            }
        })
        .collect())
}
