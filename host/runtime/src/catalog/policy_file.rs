//! The policy file beside a component (`NAME.toml`): read once, checked
//! against the lock file when pinning is on, and resolved into grants and
//! limits.

use std::path::{Path, PathBuf};

use super::{LoadError, LoadOptions};
use crate::policy::{Limits, Policy};
use crate::sandbox::Grants;
use crate::trust;
use crate::{Engine, PolicyError};

/// Reads and resolves the policy beside the component at `wasm`
/// (`NAME.toml`; none grants nothing): its grants, with every secret and
/// directory resolved, and its limits over `defaults`. With pinning on, the
/// policy text is checked against the lock file first.
pub(super) fn resolve_policy(
    engine: &Engine,
    wasm: &Path,
    options: &LoadOptions,
) -> Result<(Grants, Limits), LoadError> {
    let policy = read_policy(wasm)?;
    trust::check_policy(
        &options.trust,
        wasm,
        policy.as_ref().map(|(_, text)| text.as_bytes()),
    )?;
    Ok(resolve_policy_text(engine, policy, &options.defaults)?)
}

/// The policy file beside `wasm` and its text, if there is one.
pub(super) fn read_policy(wasm: &Path) -> Result<Option<(PathBuf, String)>, PolicyError> {
    let path = wasm.with_extension("toml");
    match crate::disk::read_text(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PolicyError::Read { path, source }),
    }
}

/// Resolves policy text read by [`read_policy`].
pub(super) fn resolve_policy_text(
    engine: &Engine,
    policy: Option<(PathBuf, String)>,
    defaults: &Limits,
) -> Result<(Grants, Limits), PolicyError> {
    let (policy, path) = match &policy {
        Some((path, text)) => {
            let policy = Policy::parse(text, path)?;
            policy.validate(path, engine.config().max_memory_mb)?;
            (policy, Some(path.as_path()))
        }
        None => (Policy::default(), None),
    };
    let grants = Grants::from_policy(&policy, path)?;
    Ok((grants, policy.limits(defaults)))
}
