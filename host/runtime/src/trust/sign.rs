//! Detached ed25519 signatures over a component's name and sha256.
//!
//! A signature lives beside its component as `NAME.wasm.sig`, five lines of
//! text:
//!
//! ```text
//! toolhost-signature v2
//! key ed25519:<64 hex digits: the public key>
//! name <the component's name: its file is NAME.wasm>
//! hash sha256:<64 hex digits: the component's content hash>
//! signature <128 hex digits>
//! ```
//!
//! The signed message is `toolhost-signature v2\nname NAME\nhash HASH`, so a
//! signature is for one content under one name: a registry or mirror
//! cannot pass off another component its publisher signed (a `shell` tool,
//! say) as the one asked for (`calc`), where the name picks the policy and
//! the tenants' grants it runs under. Signatures of the first format
//! (`toolhost-signature v1`, the hash alone) are refused with that reason.
//!
//! Public keys are written `ed25519:` and hex, the form
//! `trusted_keys` takes; a secret key file holds
//! `toolhost-ed25519-secret-key <64 hex digits>` and is created owner-only.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::TrustError;

const HEADER: &str = "toolhost-signature v2";
/// The first format, which signed the hash alone.
const HEADER_V1: &str = "toolhost-signature v1";
const SECRET_HEADER: &str = "toolhost-ed25519-secret-key";

/// An ed25519 public key, written `ed25519:` and 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0.as_bytes()))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = TrustError;

    fn from_str(text: &str) -> Result<Self, TrustError> {
        let bad = |problem: &str| TrustError::BadKey {
            what: text.chars().take(80).collect(),
            problem: problem.into(),
        };
        let hex_text = text
            .trim()
            .strip_prefix("ed25519:")
            .ok_or_else(|| bad("a public key is written `ed25519:` and 64 hex digits"))?;
        let bytes: [u8; 32] = decode_hex(hex_text)
            .ok_or_else(|| bad("a public key is written `ed25519:` and 64 hex digits"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| bad("not a point on the curve"))
    }
}

impl PublicKey {
    /// Reads a public key file (one line, `ed25519:` and hex).
    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let text = crate::disk::read_text(path).map_err(|source| TrustError::Io {
            path: path.into(),
            source,
        })?;
        text.parse().map_err(|error| match error {
            TrustError::BadKey { problem, .. } => TrustError::BadKey {
                what: path.display().to_string(),
                problem,
            },
            other => other,
        })
    }
}

/// An ed25519 secret key. Its `Debug` shows only the public half.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public: {})", self.public())
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, TrustError> {
        use std::io::Read as _;
        let path = Path::new("/dev/urandom");
        let mut seed = [0u8; 32];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|source| TrustError::Io {
                path: path.into(),
                source,
            })?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let text = crate::disk::read_text(path).map_err(|source| TrustError::Io {
            path: path.into(),
            source,
        })?;
        let seed = text
            .trim()
            .strip_prefix(SECRET_HEADER)
            .and_then(|rest| decode_hex::<32>(rest.trim()))
            .ok_or_else(|| TrustError::BadKey {
                what: path.display().to_string(),
                problem: format!("a secret key file holds `{SECRET_HEADER}` and 64 hex digits"),
            })?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Writes the key to a new file only its owner can read; an existing
    /// file is not overwritten.
    pub fn write_new(&self, path: &Path) -> Result<(), TrustError> {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let text = format!("{SECRET_HEADER} {}\n", hex::encode(self.0.to_bytes()));
        options
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|source| TrustError::Io {
                path: path.into(),
                source,
            })
    }
}

/// Where the signature of the component at `wasm` lives: `NAME.wasm.sig`.
pub fn signature_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// A detached signature of one component: its name and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key that made it.
    pub key: PublicKey,
    /// The component's name it signs (its file is `NAME.wasm`).
    pub name: String,
    /// The content hash it signs (`sha256:` and hex).
    pub hash: String,
    signature: ed25519_dalek::Signature,
}

/// The name of the component at `wasm`, as its file gives it (`NAME.wasm`):
/// what a signature must name.
pub fn component_name(wasm: &Path) -> Option<&str> {
    wasm.file_stem()?.to_str()
}

impl Signature {
    /// Signs the component `name` (see [`component_name`]) whose content
    /// is `hash` (`sha256:` and hex) with `key`.
    pub fn sign(key: &SecretKey, name: &str, hash: &str) -> Self {
        Self {
            key: key.public(),
            name: name.into(),
            hash: hash.into(),
            signature: key.0.sign(&message(name, hash)),
        }
    }

    /// The signature file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}\nkey {}\nname {}\nhash {}\nsignature {}\n",
            self.key,
            self.name,
            self.hash,
            hex::encode(self.signature.to_bytes())
        )
    }

    /// Parses a signature file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(HEADER) => {}
            Some(HEADER_V1) => {
                return Err(format!(
                    "`{HEADER_V1}` signs the content alone, not the component's name; \
                     sign it again (`toolhost sign`) for `{HEADER}`"
                ));
            }
            _ => return Err(format!("the first line must be `{HEADER}`")),
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| format!("expected a `{name} …` line"))
        };
        let key = field("key")?
            .parse()
            .map_err(|e: TrustError| e.to_string())?;
        let name = field("name")?.to_string();
        if !crate::catalog::is_valid_component_name(&name) {
            return Err("the name is not a component's name".into());
        }
        let hash = field("hash")?.to_string();
        let bytes: [u8; 64] =
            decode_hex(field("signature")?).ok_or("the signature must be 128 hex digits")?;
        if lines.any(|line| !line.trim().is_empty()) {
            return Err("unexpected lines after `signature`".into());
        }
        Ok(Self {
            key,
            name,
            hash,
            signature: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }

    /// True when the signature is `key`'s over `name` and `hash`.
    pub fn verifies(&self) -> bool {
        self.key
            .0
            .verify_strict(&message(&self.name, &self.hash), &self.signature)
            .is_ok()
    }

    /// Checks the signature beside `wasm`: present, over `wasm`'s name and
    /// `hash`, by one of `trusted`, and valid.
    pub fn verify_file(wasm: &Path, hash: &str, trusted: &[PublicKey]) -> Result<Self, TrustError> {
        let signature = signature_path(wasm);
        let text = match crate::disk::read_text(&signature) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustError::Unsigned {
                    path: wasm.into(),
                    signature,
                });
            }
            Err(error) => {
                return Err(TrustError::Io {
                    path: signature,
                    source: error,
                });
            }
        };
        let parsed = Self::parse(&text).map_err(|problem| TrustError::BadSignature {
            path: wasm.into(),
            signature: signature.clone(),
            problem,
        })?;
        parsed.check(wasm, hash, trusted)?;
        Ok(parsed)
    }

    /// Checks that this signature, for the component at `wasm`, is over its
    /// name (see [`component_name`]) and `hash`, by one of `trusted`, and
    /// valid.
    pub fn check(&self, wasm: &Path, hash: &str, trusted: &[PublicKey]) -> Result<(), TrustError> {
        let bad = |problem: String| TrustError::BadSignature {
            path: wasm.into(),
            signature: signature_path(wasm),
            problem,
        };
        if self.hash != hash {
            return Err(bad(format!(
                "it signs {}, but the component is {hash}",
                self.hash
            )));
        }
        if !trusted.contains(&self.key) {
            return Err(TrustError::UntrustedKey {
                path: wasm.into(),
                key: self.key.to_string(),
            });
        }
        let name = component_name(wasm).unwrap_or_default();
        if self.name != name {
            return Err(bad(format!(
                "it signs the component `{}`, but this one is `{name}`",
                self.name
            )));
        }
        if !self.verifies() {
            return Err(bad(format!(
                "the signature does not verify with {}",
                self.key
            )));
        }
        Ok(())
    }
}

fn message(name: &str, hash: &str) -> Vec<u8> {
    format!("{HEADER}\nname {name}\nhash {hash}").into_bytes()
}

fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::sha256;

    #[test]
    fn signed_unsigned_wrongly_signed_and_untrusted() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("a.wasm");
        std::fs::write(&wasm, b"component").unwrap();
        let hash = sha256(b"component");
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let trusted = [key.public()];

        let unsigned = Signature::verify_file(&wasm, &hash, &trusted).unwrap_err();
        assert!(
            matches!(unsigned, TrustError::Unsigned { .. }),
            "{unsigned}"
        );

        std::fs::write(
            signature_path(&wasm),
            Signature::sign(&key, "a", &hash).to_text(),
        )
        .unwrap();
        Signature::verify_file(&wasm, &hash, &trusted).unwrap();

        // Another content's signature.
        let changed = sha256(b"componenT");
        let error = Signature::verify_file(&wasm, &changed, &trusted).unwrap_err();
        assert!(matches!(error, TrustError::BadSignature { .. }), "{error}");

        // A signature whose bytes were altered.
        let mut text = Signature::sign(&key, "a", &hash).to_text();
        let at = text.rfind(' ').unwrap() + 1;
        let flipped = if &text[at..=at] == "0" { "1" } else { "0" };
        text.replace_range(at..=at, flipped);
        std::fs::write(signature_path(&wasm), text).unwrap();
        let error = Signature::verify_file(&wasm, &hash, &trusted).unwrap_err();
        assert!(matches!(error, TrustError::BadSignature { .. }), "{error}");

        std::fs::write(
            signature_path(&wasm),
            Signature::sign(&other, "a", &hash).to_text(),
        )
        .unwrap();
        let error = Signature::verify_file(&wasm, &hash, &trusted).unwrap_err();
        assert!(matches!(error, TrustError::UntrustedKey { .. }), "{error}");
    }

    #[test]
    fn a_signature_is_for_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let trusted = [key.public()];
        let hash = sha256(b"a shell tool");
        // Another component its publisher signed, served as `calc`.
        let calc = dir.path().join("calc.wasm");
        std::fs::write(&calc, b"a shell tool").unwrap();
        let shell = Signature::sign(&key, "shell", &hash);
        std::fs::write(signature_path(&calc), shell.to_text()).unwrap();
        let error = Signature::verify_file(&calc, &hash, &trusted).unwrap_err();
        assert!(
            matches!(&error, TrustError::BadSignature { problem, .. } if problem.contains("`shell`")),
            "{error}"
        );
        // The name is signed: edited in the file, the signature fails.
        let edited = shell.to_text().replace("name shell", "name calc");
        std::fs::write(signature_path(&calc), edited).unwrap();
        let error = Signature::verify_file(&calc, &hash, &trusted).unwrap_err();
        assert!(
            matches!(&error, TrustError::BadSignature { problem, .. } if problem.contains("does not verify")),
            "{error}"
        );
        std::fs::write(
            signature_path(&calc),
            Signature::sign(&key, "calc", &hash).to_text(),
        )
        .unwrap();
        Signature::verify_file(&calc, &hash, &trusted).unwrap();
    }

    #[test]
    fn a_first_format_signature_is_refused_with_the_reason() {
        let key = SecretKey::generate().unwrap();
        let hash = sha256(b"component");
        let v1 = format!(
            "{HEADER_V1}\nkey {}\nhash {hash}\nsignature {}\n",
            key.public(),
            hex::encode(
                key.0
                    .sign(format!("{HEADER_V1}\n{hash}").as_bytes())
                    .to_bytes()
            )
        );
        let error = Signature::parse(&v1).unwrap_err();
        assert!(error.contains("sign it again"), "{error}");
    }

    #[test]
    fn keys_round_trip_through_text_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap();
        let path = dir.path().join("k.key");
        key.write_new(&path).unwrap();
        assert!(key.write_new(&path).is_err(), "never overwritten");
        let back = SecretKey::read(&path).unwrap();
        assert_eq!(back.public(), key.public());
        let text = key.public().to_string();
        assert_eq!(text.parse::<PublicKey>().unwrap(), key.public());
        assert!("ed25519:00".parse::<PublicKey>().is_err());
        assert!(!format!("{key:?}").contains(&hex::encode(key.0.to_bytes())));
    }
}
