//! Trust: which component versions a host agrees to run.
//!
//! Two independent checks, both off by default and both made on the very
//! bytes the catalog then compiles (a file is read once, hashed, checked and
//! compiled from that one copy):
//!
//! - **Pinning** ([`Lock`], `toolhost.lock` beside the tools): with
//!   [`TrustOptions::locked`], a component or policy whose sha256 is not the
//!   one the lock file records is refused, naming the file and both hashes.
//!   Editing the lock file (`toolhost lock`) is the one way to accept a new
//!   version.
//! - **Signatures** ([`Signature`], `NAME.wasm.sig` beside the component):
//!   with [`TrustOptions::trusted_keys`] set, a component loads only with a
//!   detached ed25519 signature, by one of those keys, over its sha256.
//!
//! A refusal is a [`TrustError`], which the catalog reports like any other
//! load failure (status, log, metrics); on a hot reload the previous
//! version keeps serving.

mod lock;
mod sign;

use std::path::{Path, PathBuf};

pub use self::lock::{LOCK_FILE, Lock, LockedComponent, Source};
pub use self::sign::{PublicKey, SecretKey, Signature, component_name, signature_path};
pub use crate::disk::write_whole;

/// What the catalog checks before a component loads.
///
/// Secure default: nothing is checked (a plain tools folder keeps working);
/// turn on [`TrustOptions::locked`] and set [`TrustOptions::trusted_keys`]
/// to pin and to require signatures.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrustOptions {
    /// Refuse any component or policy whose sha256 is not in the folder's
    /// `toolhost.lock`.
    pub locked: bool,
    /// When not empty, every component must carry a valid signature by one
    /// of these keys.
    pub trusted_keys: Vec<PublicKey>,
}

impl TrustOptions {
    /// True when any check is on, so the catalog must read and hash every file.
    pub fn is_on(&self) -> bool {
        self.locked || !self.trusted_keys.is_empty()
    }
}

/// The sha256 of `bytes` as `sha256:` and 64 lowercase hex digits, the form
/// lock files and signatures use.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Why a component, a policy, a lock file or a signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The lock file is missing or does not parse.
    #[error(
        "{path}: the lock file {problem}; run `toolhost lock --tools DIR` to write it, then review it"
    )]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The file is not pinned: the lock file does not list it.
    #[error(
        "{path}: not in the lock file {lock} (found {found}); to accept it, run `toolhost lock` and review the change"
    )]
    NotLocked {
        /// The component or policy.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Its hash now.
        found: String,
    },
    /// The file's hash is not the one the lock file records.
    #[error(
        "{path}: refused by the lock file {lock}: expected {expected}, found {found}; to accept this version, run `toolhost lock` and review the change"
    )]
    Mismatch {
        /// The component or policy.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the lock file records (`none` for a policy it says is absent).
        expected: String,
        /// What the file hashes to now (`none` when it is absent).
        found: String,
    },
    /// Trust is configured and the component has no signature beside it.
    #[error(
        "{path}: unsigned: no signature file {signature}; sign it with `toolhost sign --key KEY`"
    )]
    Unsigned {
        /// The component.
        path: PathBuf,
        /// Where its signature was looked for.
        signature: PathBuf,
    },
    /// The signature file does not parse, or is not for this content, or
    /// does not verify.
    #[error("{path}: bad signature ({signature}): {problem}")]
    BadSignature {
        /// The component.
        path: PathBuf,
        /// The signature file.
        signature: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The signature is valid but made by a key the host does not trust.
    #[error("{path}: signed by {key}, which is not in `trusted_keys`")]
    UntrustedKey {
        /// The component.
        path: PathBuf,
        /// The key that signed it.
        key: String,
    },
    /// A key file or key text does not parse.
    #[error("{what}: not a toolhost ed25519 key: {problem}")]
    BadKey {
        /// The file, or the text.
        what: String,
        /// What is wrong.
        problem: String,
    },
}

impl TrustError {
    /// The file the error is about (the component for signature errors).
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::LockFile { path, .. }
            | Self::NotLocked { path, .. }
            | Self::Mismatch { path, .. }
            | Self::Unsigned { path, .. }
            | Self::BadSignature { path, .. }
            | Self::UntrustedKey { path, .. } => path,
            Self::BadKey { what, .. } => Path::new(what),
        }
    }

    /// A short, stable name of the refusal, for metrics labels and logs:
    /// `lock` (pinning) or `signature`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LockFile { .. } | Self::NotLocked { .. } | Self::Mismatch { .. } => "lock",
            Self::Unsigned { .. }
            | Self::BadSignature { .. }
            | Self::UntrustedKey { .. }
            | Self::BadKey { .. } => "signature",
            Self::Io { .. } => "io",
        }
    }
}

/// Checks one component and its policy text against `options`: the lock
/// file of the component's folder (read now, so an edit of it applies to
/// the next load) and its signature.
pub(crate) fn check(
    options: &TrustOptions,
    wasm: &Path,
    bytes: &[u8],
    policy: Option<&[u8]>,
) -> Result<(), TrustError> {
    let hash = sha256(bytes);
    if options.locked {
        let dir = wasm.parent().unwrap_or(Path::new("."));
        let lock = Lock::read(dir)?;
        lock.check(wasm, &hash, policy.map(sha256).as_deref())?;
    }
    if !options.trusted_keys.is_empty() {
        Signature::verify_file(wasm, &hash, &options.trusted_keys)?;
    }
    Ok(())
}

/// Checks only the policy text of `wasm` against its folder's lock file,
/// when pinning is on (a reload keeping a previous component's code checks
/// the policy it will run under).
pub(crate) fn check_policy(
    options: &TrustOptions,
    wasm: &Path,
    policy: Option<&[u8]>,
) -> Result<(), TrustError> {
    if !options.locked {
        return Ok(());
    }
    let dir = wasm.parent().unwrap_or(Path::new("."));
    Lock::read(dir)?.check_policy(wasm, policy.map(sha256).as_deref())
}
