//! The on-disk compile cache: `DIR/<engine fingerprint>/<blake3 of the wasm>.cwasm`.
//!
//! Keyed by both, so a changed component or a host with other engine settings
//! never loads stale code. Files are written to a temporary name and renamed,
//! so a crash never leaves a half-written entry under a real key.
//!
//! Hashing means reading every component in full (tens of MB for the Python
//! and JavaScript tools), which dominated a warm start. So the hash of each
//! file is also remembered (`DIR/<fingerprint>/hashes/<blake3 of the path>`)
//! beside the file's identity: device, inode, size, and modification and
//! change times in nanoseconds. Any write to the file changes its change time
//! (which no user can set back), so a remembered hash is only used for the
//! very same bytes; otherwise the file is read and hashed again.

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

    fn memo(&self, path: &Path) -> Option<PathBuf> {
        let path = std::fs::canonicalize(path).ok()?;
        let key = blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex();
        Some(self.dir.join("hashes").join(&key.as_str()[..32]))
    }

    /// The content hash remembered for `path` as `identity` says it is now
    /// (see [`identity`]), if that is the version it was remembered for.
    pub(crate) fn known_hash(&self, path: &Path, identity: &str) -> Option<String> {
        let memo = std::fs::read_to_string(self.memo(path)?).ok()?;
        let (remembered, hash) = memo.rsplit_once(' ')?;
        (remembered == identity && hash.len() == 64).then(|| hash.to_string())
    }

    /// Remembers `hash` as the content hash of `path`, read after `identity`
    /// was taken: if the file changed meanwhile, its identity has too, and the
    /// memo is never used.
    pub(crate) fn remember_hash(&self, path: &Path, identity: &str, hash: &str) {
        let Some(memo) = self.memo(path) else {
            return;
        };
        let result = (|| -> std::io::Result<()> {
            let dir = memo.parent().unwrap_or(&self.dir);
            create_private_dir(dir)?;
            let tmp = memo.with_extension(temp_suffix());
            std::fs::write(&tmp, format!("{identity} {hash}"))?;
            std::fs::rename(&tmp, &memo)
        })();
        if let Err(error) = result {
            tracing::debug!(path = %path.display(), %error, "could not remember a content hash");
        }
    }

    /// Stores a compiled component; failures only cost a recompile later.
    pub(crate) fn put(&self, hash: &str, component: &Component) {
        let result = (|| -> Result<(), String> {
            create_private_dir(&self.dir).map_err(|e| e.to_string())?;
            let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
            let tmp = self.dir.join(format!("{hash}.{}", temp_suffix()));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, self.entry(hash)).map_err(|e| e.to_string())
        })();
        if let Err(error) = result {
            tracing::warn!(dir = %self.dir.display(), %error, "could not write the compile cache");
        }
    }
}

/// A temporary file's suffix no other writer uses, in this process or
/// another: two loads compiling the same component at once must not write
/// into one file.
fn temp_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{n}.tmp", std::process::id())
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

/// What identifies one version of a file without reading it.
#[cfg(unix)]
pub(crate) fn identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}:{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// Elsewhere nothing is remembered: every file is hashed.
#[cfg(not(unix))]
pub(crate) fn identity(_: &Path) -> Option<String> {
    None
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_hash_is_only_used_for_the_same_version() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache {
            dir: dir.path().join("cache"),
        };
        let file = dir.path().join("tool.wasm");
        std::fs::write(&file, b"one").unwrap();
        let before = identity(&file).unwrap();
        assert_eq!(cache.known_hash(&file, &before), None);
        let hash = blake3::hash(b"one").to_hex().to_string();
        cache.remember_hash(&file, &before, &hash);
        assert_eq!(cache.known_hash(&file, &before), Some(hash));

        // Same size, and the modification time set back: the change time still moves.
        std::thread::sleep(std::time::Duration::from_millis(10));
        let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let after = identity(&file).unwrap();
        assert_ne!(before, after);
        assert_eq!(cache.known_hash(&file, &after), None);
    }
}
