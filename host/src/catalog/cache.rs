//! The on-disk compile cache: `DIR/<engine fingerprint>/<blake3 of the wasm>.cwasm`.
//!
//! Keyed by both, so a changed component or a host with other engine settings
//! never loads stale code. Files are written to a temporary name and renamed,
//! so a crash never leaves a half-written entry under a real key.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::Engine;

#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(crate) fn new(root: &Path, engine: &Engine) -> Self {
        Self {
            dir: root.join(engine.fingerprint()),
        }
    }

    fn entry(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}.cwasm"))
    }

    /// A cached compilation of the wasm with this hash, if there is a good one.
    pub(crate) fn get(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.entry(hash);
        if !path.exists() {
            return None;
        }
        match load(engine, &path) {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "discarding an unusable compile cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a recompile later.
    pub(crate) fn put(&self, hash: &str, component: &Component) {
        let result = (|| -> Result<(), String> {
            create_private_dir(&self.dir).map_err(|e| e.to_string())?;
            let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
            let tmp = self.dir.join(format!("{hash}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, self.entry(hash)).map_err(|e| e.to_string())
        })();
        if let Err(error) = result {
            tracing::warn!(dir = %self.dir.display(), %error, "could not write the compile cache");
        }
    }
}

/// Loads a cache entry by mapping the file.
///
/// This is the crate's one `unsafe` call. wasmtime marks deserialising as
/// unsafe because the bytes are trusted to be its own output: these files are
/// only ever written by [`CompileCache::put`] into a directory the host
/// creates with owner-only permissions, and wasmtime still checks the header,
/// its version and the engine settings before using one.
#[expect(
    unsafe_code,
    reason = "deserialising our own compile cache; see the doc comment"
)]
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see above; the file is our own `Component::serialize` output.
    unsafe { Component::deserialize_file(engine.wasmtime(), path) }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The default cache root: `$TOOLHOST_CACHE`, else `$XDG_CACHE_HOME/toolhost`,
/// else `~/.cache/toolhost`, else a folder in the temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TOOLHOST_CACHE") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("toolhost");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/toolhost");
    }
    std::env::temp_dir().join("toolhost-cache")
}
