//! The on-disk compile cache: `DIR/<engine fingerprint>/<blake3 of the wasm>.cwasm`.
//!
//! Keyed by both, so a changed component or a host with other engine settings
//! never loads stale code. Files are written to a temporary name and renamed,
//! so a crash never leaves a half-written entry under a real key. An entry is
//! native code, so the cache is only used while nobody else could have
//! written it: see [`trust`] for what is checked.
//!
//! Hashing means reading every component in full (tens of MB for the Python
//! and JavaScript tools), which dominated a warm start. So the hash of each
//! file is also remembered (`DIR/<fingerprint>/hashes/<blake3 of the path>`)
//! beside the file's identity: device, inode, size, and modification and
//! change times in nanoseconds. Any write to the file changes its change time
//! (which no user can set back), so a remembered hash is only used for the
//! very same bytes; otherwise the file is read and hashed again.

mod trust;

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use self::trust::{Kind, Untrusted, is_hash};
use crate::Engine;

#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    /// The user every folder and entry must belong to.
    uid: u32,
}

impl CompileCache {
    /// Opens (creating what is missing) the cache under `root` for engines
    /// with this fingerprint, if it is private to this process's user: the
    /// root, the engine folder and `hashes/` must be real folders, owned by
    /// the user and writable by nobody else.
    pub(crate) fn open(root: &Path, fingerprint: &str) -> Result<Self, Untrusted> {
        let uid = trust::current_uid()?;
        trust::private_dir(root, uid, true)?;
        let dir = root.join(fingerprint);
        trust::private_dir(&dir, uid, false)?;
        trust::private_dir(&dir.join("hashes"), uid, false)?;
        Ok(Self { dir, uid })
    }

    /// The entry for a content hash; only a real hash makes a path.
    fn entry(&self, hash: &str) -> Option<PathBuf> {
        is_hash(hash).then(|| self.dir.join(format!("{hash}.cwasm")))
    }

    /// A cached compilation of the wasm with this hash, if there is a good
    /// one: a regular file of this user's that nobody else may write, which
    /// wasmtime accepts. Anything else found under the name is removed.
    pub(crate) fn get(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.entry(hash)?;
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let checked = trust::check(&path, &meta, self.uid, Kind::File)
            .map_err(|problem| problem.to_string())
            .and_then(|()| load(engine, &path).map_err(|error| format!("{error:#}")));
        match checked {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "discarding an unusable compile cache entry");
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
    /// (see [`identity`]), if that is the version it was remembered for and
    /// the value is a hash (anything else is ignored, and the file hashed).
    pub(crate) fn known_hash(&self, path: &Path, identity: &str) -> Option<String> {
        let memo = std::fs::read_to_string(self.memo(path)?).ok()?;
        let (remembered, hash) = memo.rsplit_once(' ')?;
        (remembered == identity && is_hash(hash)).then(|| hash.to_string())
    }

    /// Remembers `hash` as the content hash of `path`, read after `identity`
    /// was taken: if the file changed meanwhile, its identity has too, and the
    /// memo is never used.
    pub(crate) fn remember_hash(&self, path: &Path, identity: &str, hash: &str) {
        let Some(memo) = self.memo(path).filter(|_| is_hash(hash)) else {
            return;
        };
        let written = trust::write_atomically(&memo, format!("{identity} {hash}").as_bytes());
        if let Err(error) = written {
            tracing::debug!(path = %path.display(), %error, "could not remember a content hash");
        }
    }

    /// Stores a compiled component; failures only cost a recompile later.
    pub(crate) fn put(&self, hash: &str, component: &Component) {
        let Some(entry) = self.entry(hash) else {
            return;
        };
        let result = component
            .serialize()
            .map_err(|e| format!("{e:#}"))
            .and_then(|bytes| trust::write_atomically(&entry, &bytes).map_err(|e| e.to_string()));
        if let Err(error) = result {
            tracing::warn!(dir = %self.dir.display(), %error, "could not write the compile cache");
        }
    }
}

/// Loads a cache entry by mapping the file.
///
/// This is the crate's one `unsafe` call. wasmtime marks deserialising as
/// unsafe because the bytes are trusted to be its own output. These files are
/// only ever written by [`CompileCache::put`], and a file is only loaded from
/// a cache that [`CompileCache::open`] found private to this user (real
/// folders, owned by the user, writable by nobody else) when it is itself a
/// regular file of the user's that nobody else may write, under a name made
/// of a content hash; wasmtime still checks the header, its version and the
/// engine settings before using one.
#[expect(
    unsafe_code,
    reason = "deserialising our own compile cache, from folders and files checked to be private to this user; see the doc comment"
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

/// The default cache root: `$TOOLHOST_CACHE`, else `$XDG_CACHE_HOME/toolhost`,
/// else `~/.cache/toolhost`; with none of those, a folder of this user's own:
/// `$XDG_RUNTIME_DIR/toolhost-cache`, else `toolhost-cache-<uid>` in the temp
/// folder (never one path every user shares). Whatever the folder, it is only
/// used if it is private to this user; otherwise the host warns and compiles
/// without a cache.
pub fn default_cache_dir() -> PathBuf {
    trust::cache_dir_from(|name| std::env::var_os(name))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn cache_in(dir: &Path) -> CompileCache {
        CompileCache::open(&dir.join("cache"), "0123456789abcdef").unwrap()
    }

    #[test]
    fn a_remembered_hash_is_only_used_for_the_same_version() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path());
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

    /// A remembered value names a cache entry, so only a hash is believed: a
    /// planted `../` path (of a hash's length) or upper-case hex is ignored.
    #[test]
    fn a_remembered_value_that_is_not_a_hash_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path());
        let file = dir.path().join("tool.wasm");
        std::fs::write(&file, b"one").unwrap();
        let identity = identity(&file).unwrap();
        let memo = cache.memo(&file).unwrap();
        std::fs::create_dir_all(memo.parent().unwrap()).unwrap();
        let escape = format!("{:/<61}tmp", "../../../../../..");
        let upper = blake3::hash(b"one").to_hex().to_ascii_uppercase();
        for planted in [escape.as_str(), upper.as_str(), &"0".repeat(63)] {
            std::fs::write(&memo, format!("{identity} {planted}")).unwrap();
            assert_eq!(cache.known_hash(&file, &identity), None, "{planted}");
        }
    }

    /// Symbolic links planted where the cache writes, pointing at a file
    /// outside it: at the final name and at every temporary name the cache
    /// used to pick (process id and a counter), the file outside is untouched.
    #[test]
    fn a_symlink_planted_where_the_cache_writes_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path());
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"victim").unwrap();
        let file = dir.path().join("tool.wasm");
        std::fs::write(&file, b"one").unwrap();
        let memo = cache.memo(&file).unwrap();
        let hashes = memo.parent().unwrap();
        std::fs::create_dir_all(hashes).unwrap();
        let pid = std::process::id();
        for n in 0..2000 {
            let name = memo.with_extension(format!("{pid}.{n}.tmp"));
            std::os::unix::fs::symlink(&victim, name).unwrap();
        }
        std::os::unix::fs::symlink(&victim, &memo).unwrap();

        let hash = blake3::hash(b"one").to_hex().to_string();
        cache.remember_hash(&file, &identity(&file).unwrap(), &hash);
        assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
        let written = std::fs::symlink_metadata(&memo).unwrap();
        assert!(written.file_type().is_file());
        assert_eq!(written.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_cache_that_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        assert!(CompileCache::open(&root, "fp").is_ok());
        for (path, mode) in [
            (root.clone(), 0o777),
            (root.join("fp"), 0o770),
            (root.join("fp/hashes"), 0o702),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let refused = CompileCache::open(&root, "fp").unwrap_err();
            assert!(
                matches!(&refused, Untrusted::Writable { path: p, .. } if *p == path),
                "{refused}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        assert!(CompileCache::open(&root, "fp").is_ok());
    }

    #[test]
    fn a_cache_of_another_user_or_behind_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let elsewhere = dir.path().join("elsewhere");
        CompileCache::open(&elsewhere, "fp").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &root).unwrap();
        let refused = CompileCache::open(&root, "fp").unwrap_err();
        assert!(matches!(refused, Untrusted::Symlink { .. }), "{refused}");

        std::fs::remove_file(&root).unwrap();
        CompileCache::open(&root, "fp").unwrap();
        match std::os::unix::fs::chown(root.join("fp"), Some(65534), None) {
            Ok(()) => {
                let refused = CompileCache::open(&root, "fp").unwrap_err();
                assert!(
                    matches!(refused, Untrusted::Owner { owner: 65534, .. }),
                    "{refused}"
                );
            }
            // Only root may give a file away; the integration tests say so too.
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied),
        }
    }

    #[test]
    fn without_a_home_the_cache_is_private_to_the_user() {
        let none = |_: &str| None;
        let uid = trust::current_uid().unwrap();
        assert_eq!(
            trust::cache_dir_from(none),
            std::env::temp_dir().join(format!("toolhost-cache-{uid}"))
        );
        let runtime = |name: &str| (name == "XDG_RUNTIME_DIR").then(|| "/run/user/7".into());
        assert_eq!(
            trust::cache_dir_from(runtime),
            PathBuf::from("/run/user/7/toolhost-cache")
        );
    }

    #[test]
    fn temporary_names_are_not_predictable() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = trust::create_exclusive(dir.path(), "tmp").unwrap();
        let (_, b) = trust::create_exclusive(dir.path(), "tmp").unwrap();
        assert_ne!(a, b);
        for path in [&a, &b] {
            let name = path.file_name().unwrap().to_str().unwrap();
            let random = name.strip_prefix(".tmp.").unwrap();
            assert!(
                random.len() == 24 && random.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}"
            );
        }
    }
}
