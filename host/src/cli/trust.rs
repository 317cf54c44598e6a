//! `toolhost lock`, `keygen`, `sign` and `verify`, the trust flags every
//! loading command shares (`--locked`, `--trusted-key`), and `--audit-log`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use toolhost::trust::{
    Lock, PublicKey, SecretKey, Signature, component_name, sha256, signature_path,
};
use toolhost::{AuditLog, TrustOptions};

/// Which component versions a loading command accepts.
#[derive(Debug, Args, Default)]
pub(super) struct TrustArgs {
    /// Refuse any component or policy whose sha256 is not in the tools
    /// folder's `toolhost.lock` (write it with `toolhost lock`), at start
    /// and on reload.
    #[arg(long)]
    pub(super) locked: bool,
    /// Require every component to be signed (`NAME.wasm.sig`) by this public
    /// key (`ed25519:HEX`, or a `.pub` file); repeat for several.
    #[arg(long = "trusted-key", value_name = "KEY")]
    pub(super) trusted_keys: Vec<String>,
    /// `locked` and `trusted_keys` from a configuration file, added to the flags.
    #[arg(skip)]
    from_config: (bool, Vec<String>),
}

impl TrustArgs {
    /// Adds a configuration file's `locked` and `trusted_keys` to the flags.
    pub(super) fn add_config(&mut self, locked: bool, trusted_keys: &[String]) {
        self.from_config.0 |= locked;
        self.from_config.1.extend_from_slice(trusted_keys);
    }

    /// The options for the loader.
    pub(super) fn options(&self) -> anyhow::Result<TrustOptions> {
        let mut options = TrustOptions::default();
        options.locked = self.locked || self.from_config.0;
        for key in self.trusted_keys.iter().chain(&self.from_config.1) {
            options.trusted_keys.push(parse_key(key)?);
        }
        Ok(options)
    }
}

/// Where `serve` and `mcp` write their audit log.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    /// Write one JSON line per security event (capability use, secrets
    /// injected by name, policy refusals, kills, authentication failures,
    /// components loaded, refused or swapped) to PATH, or `-` for stdout.
    /// Off by default.
    #[arg(long, value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// Rotate the audit log to `PATH.1` when it reaches this size.
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    audit_log_rotate_mb: u64,
}

impl AuditArgs {
    /// True when the audit log goes to stdout.
    pub(super) fn is_stdout(&self) -> bool {
        self.audit_log.as_deref() == Some(Path::new("-"))
    }

    /// The audit log, if one was asked for.
    pub(super) fn open(&self) -> anyhow::Result<Option<Arc<AuditLog>>> {
        self.audit_log
            .as_deref()
            .map(|path| {
                Ok(Arc::new(AuditLog::open(
                    path,
                    self.audit_log_rotate_mb << 20,
                )?))
            })
            .transpose()
    }
}

/// A public key given as text or as the path of a `.pub` file.
fn parse_key(key: &str) -> anyhow::Result<PublicKey> {
    if key.starts_with("ed25519:") {
        return Ok(key.parse()?);
    }
    Ok(PublicKey::read(Path::new(key))?)
}

#[derive(Debug, Args)]
pub(super) struct LockArgs {
    /// The tools folder to pin.
    #[arg(long, env = "TOOLHOST_TOOLS", default_value = "target/tools")]
    tools: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct KeygenArgs {
    /// Writes the secret key to `NAME.key` (owner-only) and the public key
    /// to `NAME.pub`.
    #[arg(long, default_value = "toolhost")]
    name: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct SignArgs {
    /// The secret key file (from `toolhost keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The components to sign; each gets `FILE.sig` beside it.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct VerifyArgs {
    /// A trusted public key (`ed25519:HEX` or a `.pub` file); repeat for several.
    #[arg(long = "trusted-key", value_name = "KEY", required = true)]
    trusted_keys: Vec<String>,
    /// The components to check against their `FILE.sig`.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub(super) fn lock(args: LockArgs) -> anyhow::Result<ExitCode> {
    let lock = Lock::scan(&args.tools)?;
    let path = lock.write(&args.tools)?;
    println!(
        "pinned {} components in {}",
        lock.components.len(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate()?;
    let secret = args.name.with_extension("key");
    let public = args.name.with_extension("pub");
    key.write_new(&secret)?;
    std::fs::write(&public, format!("{}\n", key.public()))
        .with_context(|| format!("could not write {}", public.display()))?;
    println!("{}", key.public());
    eprintln!(
        "secret key: {} (keep it private); public key: {} (put it in `trusted_keys`)",
        secret.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = SecretKey::read(&args.key)?;
    for file in &args.files {
        let bytes =
            std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
        let name = component_name(file)
            .filter(|name| toolhost::is_valid_component_name(name))
            .with_context(|| {
                format!(
                    "{} is not named like a component (NAME.wasm, NAME of letters, digits, `-` and `_`): \
                     a signature names the component it is for",
                    file.display()
                )
            })?;
        let signature = Signature::sign(&key, name, &sha256(&bytes));
        let path = signature_path(file);
        std::fs::write(&path, signature.to_text())
            .with_context(|| format!("could not write {}", path.display()))?;
        println!(
            "{}: signed `{}` ({}) with {}",
            path.display(),
            signature.name,
            signature.hash,
            signature.key
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted = args
        .trusted_keys
        .iter()
        .map(|key| parse_key(key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut failed = false;
    for file in &args.files {
        let bytes =
            std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
        match Signature::verify_file(file, &sha256(&bytes), &trusted) {
            Ok(signature) => println!("{}: ok, signed by {}", file.display(), signature.key),
            Err(error) => {
                eprintln!("refused: {error}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
