//! The lock file: `toolhost.lock` beside the tools, the sha256 of every
//! component and of its policy, sorted by component name.
//!
//! ```toml
//! version = 1
//!
//! [components.calc]
//! wasm = "sha256:9f2c…"
//! policy = "sha256:41aa…"   # absent: the component must have no policy file
//!
//! [components.calc.source]  # where `toolhost pull` got it, if it did
//! registry = "127.0.0.1:5000"
//! repository = "tools/calc"
//! digest = "sha256:77e0…"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{TrustError, sha256};
use crate::catalog::is_valid_component_name;

/// The lock file's name, in the tools folder.
pub const LOCK_FILE: &str = "toolhost.lock";

/// The only lock format version so far.
const VERSION: u32 = 1;

/// What a tools folder may run: a [`LockedComponent`] per component name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Lock {
    /// The format version (1).
    pub version: u32,
    /// By component name (the file stem).
    #[serde(default)]
    pub components: BTreeMap<String, LockedComponent>,
}

/// One pinned component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockedComponent {
    /// The sha256 of `NAME.wasm` (`sha256:` and hex).
    pub wasm: String,
    /// The sha256 of `NAME.toml`; `None` pins that it has no policy file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Where it was pulled from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Where a component came from: an OCI registry, repository and the
/// manifest digest it was pulled by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Source {
    /// The registry host (and port).
    pub registry: String,
    /// The repository in it.
    pub repository: String,
    /// The manifest digest (`sha256:` and hex).
    pub digest: String,
}

impl Source {
    /// A provenance record.
    pub fn new(registry: String, repository: String, digest: String) -> Self {
        Self {
            registry,
            repository,
            digest,
        }
    }
}

impl LockedComponent {
    /// A pin for these hashes, with no provenance.
    pub fn new(wasm: String, policy: Option<String>) -> Self {
        Self {
            wasm,
            policy,
            source: None,
        }
    }
}

impl Lock {
    /// The lock file of `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(LOCK_FILE)
    }

    /// Reads `dir/toolhost.lock`.
    pub fn read(dir: &Path) -> Result<Self, TrustError> {
        let path = Self::path(dir);
        let text = crate::disk::read_text(&path).map_err(|source| TrustError::LockFile {
            path: path.clone(),
            problem: format!("could not be read: {source}"),
        })?;
        Self::parse(&text, &path)
    }

    /// Reads `dir/toolhost.lock`, or an empty lock if there is none.
    pub fn read_or_default(dir: &Path) -> Result<Self, TrustError> {
        if Self::path(dir).exists() {
            Self::read(dir)
        } else {
            Ok(Self {
                version: VERSION,
                components: BTreeMap::new(),
            })
        }
    }

    /// Parses lock text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TrustError> {
        let lock: Self = toml::from_str(text).map_err(|e| TrustError::LockFile {
            path: path.into(),
            problem: format!("does not parse: {}", e.to_string().trim_end()),
        })?;
        if lock.version != VERSION {
            return Err(TrustError::LockFile {
                path: path.into(),
                problem: format!("has version {}; this host reads {VERSION}", lock.version),
            });
        }
        for (name, component) in &lock.components {
            let hashes = std::iter::once(&component.wasm).chain(&component.policy);
            if let Some(bad) = hashes.into_iter().find(|h| !is_sha256(h)) {
                return Err(TrustError::LockFile {
                    path: path.into(),
                    problem: format!("has {bad:?} for `{name}`, not sha256: and 64 hex digits"),
                });
            }
        }
        Ok(lock)
    }

    /// The sha256 of the policy beside `wasm` (`NAME.toml`), as the lock
    /// records it; `None` when there is none.
    pub fn policy_hash(wasm: &Path) -> Result<Option<String>, TrustError> {
        let path = wasm.with_extension("toml");
        match crate::disk::read_regular(&path, crate::disk::MAX_TEXT_BYTES) {
            Ok(bytes) => Ok(Some(sha256(&bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TrustError::Io { path, source }),
        }
    }

    /// Hashes every `*.wasm` of `dir` and its policy. Provenance already
    /// recorded in `dir`'s lock file is kept for components whose hash did
    /// not change.
    pub fn scan(dir: &Path) -> Result<Self, TrustError> {
        let previous = Self::read_or_default(dir)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrustError::Io { path, source }
        };
        let mut lock = Self {
            version: VERSION,
            components: BTreeMap::new(),
        };
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(name) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| path.extension().is_some_and(|e| e == "wasm") && path.is_file())
                .filter(|s| is_valid_component_name(s))
            else {
                continue;
            };
            let wasm = crate::disk::read_regular(&path, crate::disk::MAX_COMPONENT_BYTES)
                .map_err(io(&path))?;
            let wasm = sha256(&wasm);
            let policy = Self::policy_hash(&path)?;
            let source = previous
                .components
                .get(name)
                .filter(|old| old.wasm == wasm)
                .and_then(|old| old.source.clone());
            lock.components.insert(
                name.to_string(),
                LockedComponent {
                    wasm,
                    policy,
                    source,
                },
            );
        }
        Ok(lock)
    }

    /// The lock as its file holds it: a comment, then sorted TOML.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# toolhost.lock: the sha256 of every component and policy this folder may run.\n\
             # Written by `toolhost lock`; under `--locked` anything else is refused.\n\n{body}"
        )
    }

    /// Writes `dir/toolhost.lock` whole (see [`write_whole`](super::write_whole)).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, TrustError> {
        let path = Self::path(dir);
        super::write_whole(&path, self.to_text().as_bytes()).map_err(|source| TrustError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Checks a component's hash and its policy's (`None`: it has none).
    pub(crate) fn check(
        &self,
        wasm: &Path,
        hash: &str,
        policy: Option<&str>,
    ) -> Result<(), TrustError> {
        let pinned = self.pinned(wasm, hash)?;
        if pinned.wasm != hash {
            return Err(TrustError::Mismatch {
                path: wasm.into(),
                lock: self.lock_path(wasm),
                expected: pinned.wasm.clone(),
                found: hash.into(),
            });
        }
        self.check_policy(wasm, policy)
    }

    /// Checks the policy hash of the component at `wasm`.
    pub(crate) fn check_policy(&self, wasm: &Path, policy: Option<&str>) -> Result<(), TrustError> {
        let pinned = self.pinned(wasm, "unknown")?;
        if pinned.policy.as_deref() != policy {
            return Err(TrustError::Mismatch {
                path: wasm.with_extension("toml"),
                lock: self.lock_path(wasm),
                expected: pinned.policy.clone().unwrap_or_else(|| "none".into()),
                found: policy.unwrap_or("none").into(),
            });
        }
        Ok(())
    }

    fn pinned(&self, wasm: &Path, found: &str) -> Result<&LockedComponent, TrustError> {
        let name = wasm.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        self.components
            .get(name)
            .ok_or_else(|| TrustError::NotLocked {
                path: wasm.into(),
                lock: self.lock_path(wasm),
                found: found.into(),
            })
    }

    fn lock_path(&self, wasm: &Path) -> PathBuf {
        Self::path(wasm.parent().unwrap_or(Path::new(".")))
    }
}

fn is_sha256(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_writes_sorted_text_that_reads_back_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.wasm"), b"bee").unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"ay").unwrap();
        std::fs::write(dir.path().join("a.toml"), b"[limits]\n").unwrap();
        let lock = Lock::scan(dir.path()).unwrap();
        let path = lock.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.find("[components.a]").unwrap() < text.find("[components.b]").unwrap());
        let back = Lock::read(dir.path()).unwrap();
        assert_eq!(back, lock);
        let a = dir.path().join("a.wasm");
        back.check(&a, &sha256(b"ay"), Some(&sha256(b"[limits]\n")))
            .unwrap();
        // One byte changed: both hashes are named.
        let error = back
            .check(&a, &sha256(b"az"), Some(&sha256(b"[limits]\n")))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&sha256(b"ay")) && error.contains(&sha256(b"az")),
            "{error}"
        );
        // A policy appearing where the lock pins none is refused.
        let b = dir.path().join("b.wasm");
        let error = back
            .check(&b, &sha256(b"bee"), Some(&sha256(b"x")))
            .unwrap_err();
        assert!(error.to_string().contains("expected none"), "{error}");
        // A component the lock does not list is refused.
        let c = dir.path().join("c.wasm");
        assert!(matches!(
            back.check(&c, &sha256(b"c"), None),
            Err(TrustError::NotLocked { .. })
        ));
    }

    #[test]
    fn a_malformed_lock_is_refused() {
        let path = Path::new("toolhost.lock");
        for text in [
            "version = 2\n",
            "version = 1\n[components.a]\nwasm = \"md5:00\"\n",
            "version = 1\nextra = true\n",
        ] {
            assert!(Lock::parse(text, path).is_err(), "{text}");
        }
    }
}
