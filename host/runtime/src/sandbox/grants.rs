//! What a policy grants, resolved once when the tool loads: environment
//! values and secrets read, directories made absolute, patterns parsed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::{HostPattern, Policy, PolicyError, ResolvedSecret};

/// A tool's grants, shared by all its calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grants {
    pub(crate) wall_clock: bool,
    /// Granted variables that are set, with their values.
    pub(crate) env: Vec<(String, String)>,
    /// Read-only directories: guest path, host directory.
    pub(crate) dirs: Vec<(String, PathBuf)>,
    /// Outbound HTTP; `None` when the policy lists no host.
    pub(crate) http: Option<Arc<HttpGrant>>,
}

/// Where outbound HTTP may go and what the host adds on the way.
#[derive(Debug)]
pub(crate) struct HttpGrant {
    pub(crate) allow: Vec<HostPattern>,
    pub(crate) allow_private: bool,
    pub(crate) secrets: Vec<ResolvedSecret>,
}

impl Grants {
    /// True when the grants let a guest reach or change anything outside its
    /// sandbox that could make two identical calls differ: the real time of
    /// day, the network, or directories whose content the host may change.
    /// Such a tool is never cached or speculated, whatever it declares.
    pub(crate) fn reaches_outside(&self) -> bool {
        self.wall_clock || self.http.is_some() || !self.dirs.is_empty()
    }

    /// Resolves `policy`, read from `path` (`None` for the empty default
    /// policy). A secret that cannot be read or a directory that does not
    /// exist refuses the policy, so the tool does not load.
    pub(crate) fn from_policy(policy: &Policy, path: Option<&Path>) -> Result<Self, PolicyError> {
        let caps = &policy.capabilities;
        let env = caps
            .env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect();
        let (dirs, secrets) = match path {
            Some(path) => (policy.resolve_dirs(path)?, policy.resolve_secrets(path)?),
            None => (Vec::new(), Vec::new()),
        };
        let allow = policy.http_patterns();
        let http = (!allow.is_empty()).then(|| {
            Arc::new(HttpGrant {
                allow,
                allow_private: caps.allow_private,
                secrets,
            })
        });
        Ok(Self {
            wall_clock: caps.wall_clock,
            env,
            dirs,
            http,
        })
    }
}
