//! What the compile cache trusts, and how that is checked.
//!
//! A cache entry is native code that the host maps and runs (wasmtime's
//! `deserialize` is `unsafe` for that reason), so whoever can write into the
//! cache can run code as the user of the host. The cache is therefore used
//! only when nobody but that user (and root) could have written it:
//!
//! - the cache folder, its engine folder and its `hashes/` folder are real
//!   folders (not symbolic links), owned by this process's user, and not
//!   writable by group or others; otherwise the whole cache is refused;
//! - an entry is loaded only if it is a regular file (not a symbolic link),
//!   owned by this user and not writable by group or others;
//! - entry names are built only from 64 lowercase hex digits, so a remembered
//!   hash can never name a path outside the cache;
//! - files are written under an unpredictable name created exclusively
//!   (`O_EXCL`: a planted file or symbolic link makes the write fail rather
//!   than be followed), owner-only, then renamed into place.
//!
//! The folders above the cache folder are not checked: they are the user's
//! choice (`TOOLHOST_CACHE`, `XDG_CACHE_HOME`, `HOME`). Without any of those
//! the cache goes to a folder of this user's own (see [`fallback_dir`]),
//! never to one fixed path that every user shares.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What a cache path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Folder,
    File,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Folder => "folder",
            Self::File => "regular file",
        })
    }
}

/// Why a cache folder or entry is not trusted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Untrusted {
    /// The user id could not be learned, so ownership cannot be checked.
    #[error("could not learn this process's user id: {0}")]
    Uid(std::io::Error),
    /// A folder could not be created or inspected.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The path is a symbolic link.
    #[error("{} is a symbolic link, not a real {kind}", path.display())]
    Symlink { path: PathBuf, kind: Kind },
    /// The path is not what it should be (a folder or a regular file).
    #[error("{} is not a {kind}", path.display())]
    WrongKind { path: PathBuf, kind: Kind },
    /// The path belongs to another user.
    #[error("{} belongs to user {owner}, not to this user ({uid})", path.display())]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    /// Group or others may write to the path.
    #[error("{} is writable by group or others (mode {mode:03o})", path.display())]
    Writable { path: PathBuf, mode: u32 },
    /// Ownership cannot be checked on this platform.
    #[cfg(not(unix))]
    #[error("file ownership cannot be checked on this platform")]
    Unsupported,
}

/// True for what `blake3::Hash::to_hex` writes: 64 lowercase hex digits.
/// Only such strings ever become part of a cache path.
pub(crate) fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The user id this process creates files as, learned once from a file it
/// creates (no `unsafe`, no extra dependency).
#[cfg(unix)]
pub(crate) fn current_uid() -> Result<u32, Untrusted> {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    if let Some(uid) = UID.get() {
        return Ok(*uid);
    }
    let (file, path) =
        create_exclusive(&std::env::temp_dir(), "uid-probe").map_err(Untrusted::Uid)?;
    let meta = file.metadata();
    drop(file);
    let _ = std::fs::remove_file(&path);
    let uid = meta.map_err(Untrusted::Uid)?.uid();
    Ok(*UID.get_or_init(|| uid))
}

#[cfg(not(unix))]
pub(crate) fn current_uid() -> Result<u32, Untrusted> {
    Err(Untrusted::Unsupported)
}

/// Creates `dir` (and, if `parents`, the folders above it) owner-only when
/// missing, then checks it is a private folder of user `uid`.
pub(crate) fn private_dir(dir: &Path, uid: u32, parents: bool) -> Result<(), Untrusted> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(parents);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(Untrusted::Io {
                path: dir.into(),
                source,
            });
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| Untrusted::Io {
        path: dir.into(),
        source,
    })?;
    check(dir, &meta, uid, Kind::Folder)
}

/// Checks what `symlink_metadata` said about `path`: the right kind (a folder
/// or a regular file, never a symbolic link), owned by `uid`, and not
/// writable by group or others.
#[cfg(unix)]
pub(crate) fn check(
    path: &Path,
    meta: &std::fs::Metadata,
    uid: u32,
    kind: Kind,
) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt;
    let path = || path.to_path_buf();
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err(Untrusted::Symlink { path: path(), kind });
    }
    let right_kind = match kind {
        Kind::Folder => file_type.is_dir(),
        Kind::File => file_type.is_file(),
    };
    if !right_kind {
        return Err(Untrusted::WrongKind { path: path(), kind });
    }
    if meta.uid() != uid {
        return Err(Untrusted::Owner {
            path: path(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Untrusted::Writable { path: path(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check(_: &Path, _: &std::fs::Metadata, _: u32, _: Kind) -> Result<(), Untrusted> {
    Err(Untrusted::Unsupported)
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// created exclusively under an unpredictable name, owner-only, then renamed
/// over `path` (a rename replaces a symbolic link; it never follows one).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a cache file has no folder"))?;
    let (mut file, tmp) = create_exclusive(dir, "tmp")?;
    let written = file.write_all(bytes).and_then(|()| file.flush());
    drop(file);
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new owner-only file in `dir` under a name nobody can guess, created with
/// `O_EXCL` (`create_new`): if anything, even a dangling symbolic link,
/// already has that name, creation fails instead of writing through it.
pub(crate) fn create_exclusive(dir: &Path, what: &str) -> std::io::Result<(File, PathBuf)> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut last = None;
    for _ in 0..8 {
        let path = dir.join(format!(".{what}.{}", unpredictable()));
        match options.open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// 24 hex digits from the standard library's randomly seeded hasher keys,
/// the clock, the process id and a counter.
fn unpredictable() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.finish().to_le_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.finalize().to_hex()[..24].to_string()
}

/// The default cache root, from the environment `var` reads:
/// `$TOOLHOST_CACHE`, else `$XDG_CACHE_HOME/toolhost`, else
/// `$HOME/.cache/toolhost`, else [`fallback_dir`].
pub(crate) fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(dir) = var("TOOLHOST_CACHE") {
        return dir.into();
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("toolhost");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".cache/toolhost");
    }
    fallback_dir(var("XDG_RUNTIME_DIR"))
}

/// With no home folder: `$XDG_RUNTIME_DIR/toolhost-cache` (that folder is the
/// user's own, mode 0700), else `toolhost-cache-<uid>` in the temp folder. The
/// latter is a shared folder, so someone else may have made that name first:
/// the checks on opening refuse it then (and the host runs uncached), as
/// they refuse any folder that is not private to this user.
pub(crate) fn fallback_dir(runtime_dir: Option<OsString>) -> PathBuf {
    if let Some(dir) = runtime_dir.filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("toolhost-cache");
    }
    let user = current_uid().map_or_else(|_| "unknown".to_string(), |uid| uid.to_string());
    std::env::temp_dir().join(format!("toolhost-cache-{user}"))
}
