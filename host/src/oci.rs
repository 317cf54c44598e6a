//! Components in OCI registries: `toolhost push` and `toolhost pull`, in
//! the standard Wasm OCI artifact layout (the CNCF TAG Runtime's, which
//! `wkg` and `oci-wasm` use): an image manifest whose config has media type
//! `application/vnd.wasm.config.v0+json` and whose one layer is the
//! component, media type `application/wasm`.
//!
//! A signature made with `toolhost sign` travels in the manifest's
//! annotation [`SIGNATURE_ANNOTATION`] (the manifest digest covers it).
//! Pulling checks the layer's sha256 against the manifest and, when pulled
//! by digest, the manifest's digest against the reference; with trusted keys
//! it verifies the signature before anything is written. The component is
//! written as `NAME.wasm` (whole, through a rename) and the tools folder's
//! lock file pins it with its provenance.
//!
//! This lives in the `toolhost` crate, not the runtime: the OCI client
//! brings reqwest, which the runtime must not depend on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use toolhost_runtime::TrustOptions;
use toolhost_runtime::trust::{Lock, LockedComponent, Signature, Source, sha256, signature_path};

/// The config media type of a Wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the component layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The manifest annotation that carries a component's signature file.
pub const SIGNATURE_ANNOTATION: &str = "dev.toolhost.signature";

/// Why a push or a pull failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The reference does not parse.
    #[error(
        "{reference}: not an OCI reference ({message}); write oci://REGISTRY/REPOSITORY:TAG or @sha256:DIGEST"
    )]
    Reference {
        /// The reference as given.
        reference: String,
        /// The parser's message.
        message: String,
    },
    /// The registry refused or could not be reached.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// The client's message.
        message: String,
    },
    /// What the registry sent is not a Wasm component artifact.
    #[error("{reference}: not a Wasm component artifact: {message}")]
    Layout {
        /// The reference.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// A digest did not match its content.
    #[error("{reference}: digest mismatch: expected {expected}, got {found}; nothing was written")]
    Digest {
        /// The reference.
        reference: String,
        /// The digest the manifest or reference names.
        expected: String,
        /// The digest of what arrived.
        found: String,
    },
    /// A trust check (signature, lock file) refused it.
    #[error(transparent)]
    Trust(#[from] toolhost_runtime::TrustError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a pull wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pulled {
    /// The component file written.
    pub path: PathBuf,
    /// The manifest digest it was pulled by.
    pub digest: String,
    /// The component's sha256.
    pub sha256: String,
}

/// Parses `oci://REGISTRY/REPOSITORY:TAG` (or `@sha256:…`; the `oci://`
/// prefix is optional).
pub fn parse_reference(text: &str) -> Result<Reference, OciError> {
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    bare.parse::<Reference>().map_err(|e| OciError::Reference {
        reference: text.into(),
        message: e.to_string(),
    })
}

/// True for a registry on this machine (`127.0.0.1`, `localhost`, `[::1]`,
/// with any port): the only ones spoken to over plain HTTP without `insecure`.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

fn client(reference: &Reference, insecure: bool) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = reference.resolve_registry().to_string();
    let protocol = if insecure || is_loopback(&registry) {
        ClientProtocol::HttpsExcept(vec![registry])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    })
}

fn registry_error(reference: &Reference) -> impl Fn(OciDistributionError) -> OciError {
    let reference = reference.whole();
    move |e| OciError::Registry {
        reference: reference.clone(),
        message: e.to_string(),
    }
}

/// Publishes the component at `wasm` as `reference`, with its signature
/// file (`FILE.sig`), if there is one, in the manifest. Returns the
/// manifest digest.
pub async fn push(reference: &str, wasm: &Path, insecure: bool) -> Result<String, OciError> {
    let reference = parse_reference(reference)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OciError::Io { path, source }
    };
    let bytes = std::fs::read(wasm).map_err(io(wasm))?;
    let hash = sha256(&bytes);
    let config = serde_json::json!({
        "created": chrono::Utc::now().to_rfc3339(),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [hash],
        "component": {"exports": [], "imports": []},
    });
    let config = Config::new(
        serde_json::to_vec(&config).unwrap_or_default(),
        CONFIG_MEDIA_TYPE.into(),
        None,
    );
    let layers = [ImageLayer::new(bytes, LAYER_MEDIA_TYPE.into(), None)];
    let signature = signature_path(wasm);
    let annotations = match std::fs::read_to_string(&signature) {
        Ok(text) => Some(BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            annotation_of(&text),
        )])),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(OciError::Io {
                path: signature,
                source,
            });
        }
    };
    let manifest = OciImageManifest::build(&layers, &config, annotations);
    let client = client(&reference, insecure);
    let auth = RegistryAuth::Anonymous;
    client
        .push(&reference, &layers, config, &auth, Some(manifest))
        .await
        .map_err(registry_error(&reference))?;
    client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .map_err(registry_error(&reference))
}

/// Fetches `reference` into `tools` as `NAME.wasm` (`name`, or the last
/// part of the repository), checking digests and, with trusted keys in
/// `trust`, its signature; then pins it in the folder's lock file with its
/// provenance.
pub async fn pull(
    reference: &str,
    tools: &Path,
    name: Option<&str>,
    insecure: bool,
    trust: &TrustOptions,
) -> Result<Pulled, OciError> {
    let given = reference;
    let reference = parse_reference(reference)?;
    let whole = reference.whole();
    let name = name.map(str::to_string).unwrap_or_else(|| {
        reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string()
    });
    if !toolhost_runtime::is_valid_component_name(&name) {
        return Err(OciError::Reference {
            reference: given.into(),
            message: format!("`{name}` is not a usable component name; pass --name"),
        });
    }
    let client = client(&reference, insecure);
    let (manifest, layer, digest) = fetch(&client, &reference).await?;
    let found = sha256(&layer);
    if let Some(expected) = reference.digest()
        && expected != digest
    {
        return Err(OciError::Digest {
            reference: whole,
            expected: expected.into(),
            found: digest,
        });
    }
    let path = tools.join(format!("{name}.wasm"));
    let signature = manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        .map(|value| signature_of(value));
    if !trust.trusted_keys.is_empty() {
        let text = signature
            .clone()
            .ok_or(toolhost_runtime::TrustError::Unsigned {
                path: path.clone(),
                signature: signature_path(&path),
            })?;
        let parsed = Signature::parse(&text).map_err(|problem| {
            toolhost_runtime::TrustError::BadSignature {
                path: path.clone(),
                signature: signature_path(&path),
                problem,
            }
        })?;
        // The same checks the loader makes, on the bytes about to be written.
        parsed.check(&path, &found, &trust.trusted_keys)?;
    }
    // A pull pins a new component, never a changed policy: a policy the
    // lock already pins otherwise is refused, as the loader refuses it
    // (`toolhost lock` is the one way to accept a change).
    let mut lock = Lock::read_or_default(tools)?;
    let policy = Lock::policy_hash(&path)?;
    if let Some(previous) = lock.components.get(&name)
        && previous.policy != policy
    {
        return Err(toolhost_runtime::TrustError::Mismatch {
            path: path.with_extension("toml"),
            lock: Lock::path(tools),
            expected: previous.policy.clone().unwrap_or_else(|| "none".into()),
            found: policy.unwrap_or_else(|| "none".into()),
        }
        .into());
    }
    write_whole(&path, &layer)?;
    if let Some(text) = signature {
        write_whole(&signature_path(&path), text.as_bytes())?;
    }
    let mut pinned = LockedComponent::new(found.clone(), policy);
    pinned.source = Some(Source::new(
        reference.resolve_registry().to_string(),
        reference.repository().to_string(),
        digest.clone(),
    ));
    lock.components.insert(name, pinned);
    lock.write(tools)?;
    Ok(Pulled {
        path,
        digest,
        sha256: found,
    })
}

/// The most a pulled component may be.
const MAX_PULLED_BYTES: u64 = 256 << 20;

/// How long the manifest may take to arrive, and the component.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(60);
const LAYER_TIMEOUT: Duration = Duration::from_secs(600);

/// The manifest of `reference`, its one layer's bytes and the manifest's
/// digest. The manifest is read and checked first (a Wasm config, exactly
/// one `application/wasm` layer of a size that is no more than
/// [`MAX_PULLED_BYTES`]); only then is the layer fetched, by the digest the
/// manifest names, and refused past its declared size or its timeout. A
/// hostile registry cannot make a pull fetch a thousand layers, or read a
/// body without end.
async fn fetch(
    client: &Client,
    reference: &Reference,
) -> Result<(OciImageManifest, Vec<u8>, String), OciError> {
    let whole = reference.whole();
    let layout = |message: String| OciError::Layout {
        reference: whole.clone(),
        message,
    };
    let late = |what: &str, limit: Duration| OciError::Registry {
        reference: whole.clone(),
        message: format!("{what} did not arrive within {} s", limit.as_secs()),
    };
    let (manifest, digest) = tokio::time::timeout(
        MANIFEST_TIMEOUT,
        client.pull_image_manifest(reference, &RegistryAuth::Anonymous),
    )
    .await
    .map_err(|_| late("the manifest", MANIFEST_TIMEOUT))?
    .map_err(registry_error(reference))?;
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(layout(format!(
            "its config is {}, not {CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        )));
    }
    let [descriptor] = manifest.layers.as_slice() else {
        return Err(layout(format!(
            "it must have exactly one layer, not {}",
            manifest.layers.len()
        )));
    };
    if descriptor.media_type != LAYER_MEDIA_TYPE {
        return Err(layout(format!(
            "its layer is {}, not {LAYER_MEDIA_TYPE}",
            descriptor.media_type
        )));
    }
    let size = u64::try_from(descriptor.size)
        .ok()
        .filter(|&size| size <= MAX_PULLED_BYTES)
        .ok_or_else(|| {
            layout(format!(
                "its layer says it is {} bytes; a component may be at most {MAX_PULLED_BYTES}",
                descriptor.size
            ))
        })?;
    let mut layer = Capped {
        bytes: Vec::new(),
        cap: size,
    };
    tokio::time::timeout(
        LAYER_TIMEOUT,
        client.pull_blob(reference, descriptor, &mut layer),
    )
    .await
    .map_err(|_| late("the component", LAYER_TIMEOUT))?
    .map_err(|error| match error {
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            OciError::Digest {
                reference: whole.clone(),
                expected,
                found: actual,
            }
        }
        other => registry_error(reference)(other),
    })?;
    Ok((manifest, layer.bytes, digest))
}

/// A buffer that refuses a write past `cap` bytes: what a layer said it
/// holds.
struct Capped {
    bytes: Vec<u8>,
    cap: u64,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if (self.bytes.len() + data.len()) as u64 > self.cap {
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the layer is longer than the {} bytes it declared",
                    self.cap
                ),
            )));
        }
        self.bytes.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A signature file as one line: its lines joined by `; ` (registries
/// parse manifests strictly, and the client writes canonical JSON, whose
/// strings keep a newline raw).
fn annotation_of(signature: &str) -> String {
    signature.trim_end().lines().collect::<Vec<_>>().join("; ")
}

/// The signature file back from [`annotation_of`].
fn signature_of(annotation: &str) -> String {
    format!("{}\n", annotation.replace("; ", "\n"))
}

/// Writes `bytes` to `path` whole (see [`write_whole`](toolhost_runtime::trust::write_whole)).
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    toolhost_runtime::trust::write_whole(path, bytes).map_err(|source| OciError::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_loopback() {
        let r = parse_reference("oci://127.0.0.1:5000/tools/calc:v1").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "tools/calc");
        assert_eq!(r.tag(), Some("v1"));
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("ghcr.io") && !is_loopback("127.0.0.1.example.com:5000"));
    }

    #[test]
    fn a_signature_survives_the_annotation() {
        let text =
            "toolhost-signature v2\nkey ed25519:ab\nname calc\nhash sha256:cd\nsignature ef\n";
        let one_line = annotation_of(text);
        assert!(!one_line.contains('\n'));
        assert_eq!(signature_of(&one_line), text);
    }
}
