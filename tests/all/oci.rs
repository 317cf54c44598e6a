//! `push` then `pull` against a real registry on loopback (Debian's
//! `docker-registry`, the CNCF distribution registry, started here in a temp
//! dir): by tag and by digest, with provenance pinned in the lock file and
//! the signature carried along; a tampered blob in the registry's storage
//! is refused and nothing is written; a registry of the test's own that
//! lies about its layers cannot make a pull fetch without bound.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;

use toolhost::TrustOptions;
use toolhost::trust::{Lock, SecretKey, Signature, sha256, signature_path};
use toolhost_artifacts as artifacts;

/// A `docker-registry` process with filesystem storage in a temp dir;
/// stopped when dropped.
struct Registry {
    child: Child,
    addr: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start `docker-registry` ({e}): install the Debian package \
                     `docker-registry` (apt-get install docker-registry)"
                )
            });
        let registry = Self {
            child,
            addr,
            storage,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The file holding the blob with this digest.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trusting(key: &SecretKey) -> TrustOptions {
    let mut trust = TrustOptions::default();
    trust.trusted_keys = vec![key.public()];
    trust
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_by_tag_and_digest_and_a_tampered_blob_is_refused() {
    let registry = Registry::start();
    let publish = tempfile::tempdir().unwrap();
    let calc = publish.path().join("calc.wasm");
    std::fs::copy(artifacts::CALC, &calc).unwrap();
    let bytes = read(&calc);
    let key = SecretKey::generate().unwrap();
    std::fs::write(
        signature_path(&calc),
        Signature::sign(&key, "calc", &sha256(&bytes)).to_text(),
    )
    .unwrap();

    let tag = format!("oci://{}/tools/calc:v1", registry.addr);
    let digest = toolhost::oci::push(&tag, &calc, false).await.unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");

    // By tag, with trust: the component, its signature and the lock entry.
    let tools = tempfile::tempdir().unwrap();
    let pulled = toolhost::oci::pull(&tag, tools.path(), None, false, &trusting(&key))
        .await
        .unwrap();
    assert_eq!(pulled.digest, digest);
    assert_eq!(read(&tools.path().join("calc.wasm")), bytes);
    assert!(signature_path(&tools.path().join("calc.wasm")).exists());
    let lock = Lock::read(tools.path()).unwrap();
    let pinned = &lock.components["calc"];
    assert_eq!(pinned.wasm, sha256(&bytes));
    let source = pinned.source.as_ref().unwrap();
    assert_eq!(
        (source.registry.as_str(), source.repository.as_str()),
        (registry.addr.as_str(), "tools/calc")
    );
    assert_eq!(source.digest, digest);

    // By digest, under another name.
    let by_digest = format!("oci://{}/tools/calc@{digest}", registry.addr);
    toolhost::oci::pull(
        &by_digest,
        tools.path(),
        Some("calc2"),
        false,
        &TrustOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(read(&tools.path().join("calc2.wasm")), bytes);

    // Signed by a key we do not trust: refused, nothing written.
    let stranger = SecretKey::generate().unwrap();
    let error = toolhost::oci::pull(
        &tag,
        tools.path(),
        Some("calc3"),
        false,
        &trusting(&stranger),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("not in `trusted_keys`"),
        "{error}"
    );
    assert!(!tools.path().join("calc3.wasm").exists());

    // One byte of the stored blob changed: refused, nothing written.
    let blob = registry.blob(&sha256(&bytes));
    let mut tampered = read(&blob);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(&blob, tampered).unwrap();
    let error = toolhost::oci::pull(
        &tag,
        tools.path(),
        Some("calc4"),
        false,
        &TrustOptions::default(),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("digest") || message.contains("Digest"),
        "{message}"
    );
    assert!(!tools.path().join("calc4.wasm").exists());
}

/// `calc.wasm`, unsigned, pushed to `registry` as `tools/calc:v1`: the
/// folder it was published from, its path there and its tag.
async fn published_calc(registry: &Registry) -> (tempfile::TempDir, PathBuf, String) {
    let publish = tempfile::tempdir().unwrap();
    let calc = publish.path().join("calc.wasm");
    std::fs::copy(artifacts::CALC, &calc).unwrap();
    let tag = format!("oci://{}/tools/calc:v1", registry.addr);
    toolhost::oci::push(&tag, &calc, false).await.unwrap();
    (publish, calc, tag)
}

/// A registry (or a mirror) that serves another component its publisher
/// signed, under the name asked for: the signature names the component it
/// is for, so the pull is refused and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_refuses_another_signed_component_served_under_the_name() {
    let registry = Registry::start();
    let publish = tempfile::tempdir().unwrap();
    let text = publish.path().join("text.wasm");
    std::fs::copy(artifacts::TEXT, &text).unwrap();
    let key = SecretKey::generate().unwrap();
    let signature = Signature::sign(&key, "text", &sha256(&read(&text)));
    std::fs::write(signature_path(&text), signature.to_text()).unwrap();
    // `text`, signed as `text`, pushed where `calc` is expected.
    let tag = format!("oci://{}/tools/calc:v1", registry.addr);
    toolhost::oci::push(&tag, &text, false).await.unwrap();

    let tools = tempfile::tempdir().unwrap();
    let error = toolhost::oci::pull(&tag, tools.path(), None, false, &trusting(&key))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("signs the component `text`"),
        "{error}"
    );
    assert!(!tools.path().join("calc.wasm").exists());
    assert!(!tools.path().join("text.wasm").exists());
}

/// Whoever can write the tools folder may plant links under the names a
/// pull used to write through first (`.NAME.wasm.partial`,
/// `.toolhost.lock.partial`): a pull must not write the registry's bytes,
/// or the lock, to where they point.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_never_writes_through_a_planted_link() {
    let registry = Registry::start();
    let (_publish, calc, tag) = published_calc(&registry).await;

    let tools = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    for planted in [".calc.wasm.partial", ".toolhost.lock.partial"] {
        let victim = elsewhere.path().join(planted);
        std::fs::write(&victim, "victim").unwrap();
        std::os::unix::fs::symlink(&victim, tools.path().join(planted)).unwrap();
    }
    toolhost::oci::pull(&tag, tools.path(), None, false, &TrustOptions::default())
        .await
        .unwrap();
    assert_eq!(read(&tools.path().join("calc.wasm")), read(&calc));
    for planted in [".calc.wasm.partial", ".toolhost.lock.partial"] {
        assert_eq!(
            std::fs::read_to_string(elsewhere.path().join(planted)).unwrap(),
            "victim",
            "the pull wrote through {planted}"
        );
    }
}

/// A pull pins the component it brings, never a policy changed on disk
/// since the lock was written: `toolhost lock` is the one way to accept
/// that change (the loader refuses it under `--locked`), and a pull that
/// re-pinned it would accept it silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_does_not_pin_a_policy_changed_since_the_lock() {
    let registry = Registry::start();
    let (_publish, _, tag) = published_calc(&registry).await;

    let tools = tempfile::tempdir().unwrap();
    let trust = TrustOptions::default();
    let pull = || toolhost::oci::pull(&tag, tools.path(), None, false, &trust);
    pull().await.unwrap();
    assert_eq!(
        Lock::read(tools.path()).unwrap().components["calc"].policy,
        None
    );
    // Someone grants the tool the network.
    std::fs::write(
        tools.path().join("calc.toml"),
        "[capabilities]\nhttp = [\"https://example.org\"]\n",
    )
    .unwrap();
    let error = pull().await.unwrap_err().to_string();
    assert!(
        error.contains("calc.toml") && error.contains("toolhost lock"),
        "{error}"
    );
    assert_eq!(
        Lock::read(tools.path()).unwrap().components["calc"].policy,
        None
    );
    // Accepted the one way there is, the pull goes through.
    Lock::scan(tools.path())
        .unwrap()
        .write(tools.path())
        .unwrap();
    pull().await.unwrap();
    assert!(
        Lock::read(tools.path()).unwrap().components["calc"]
            .policy
            .is_some()
    );
}

#[test]
fn plain_http_only_to_loopback() {
    assert!(toolhost::oci::is_loopback("127.0.0.1:5000"));
    assert!(toolhost::oci::is_loopback("localhost:5000"));
    assert!(!toolhost::oci::is_loopback("registry.example.com"));
    assert!(!toolhost::oci::is_loopback("127.0.0.1.nip.io:5000"));
}

/// A registry of the test's making on a free loopback port: it serves
/// `manifest` for any tag and, for any blob, `blob` pieces without end;
/// it counts the blob requests.
struct Hostile {
    addr: String,
    blobs: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start(manifest: serde_json::Value) -> Self {
        use axum::http::header::CONTENT_TYPE;
        let blobs = Arc::new(AtomicUsize::new(0));
        let counted = blobs.clone();
        let manifest = manifest.to_string();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (manifest, counted) = (manifest.clone(), counted.clone());
            async move {
                let path = request.uri().path().to_string();
                if path.contains("/manifests/") {
                    return (
                        [(CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json")],
                        manifest,
                    )
                        .into_response();
                }
                if path.contains("/blobs/") {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let pieces = futures::stream::repeat_with(|| {
                        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(
                            &[0u8; 4096],
                        ))
                    });
                    return axum::body::Body::from_stream(pieces).into_response();
                }
                axum::http::StatusCode::OK.into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            blobs,
            server,
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn descriptor(media_type: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{}", "ab".repeat(32)), "size": size})
}

/// A registry that lists a thousand layers, or a layer bigger than it said
/// it is, sent without end: the pull is refused from the manifest before
/// any blob is fetched, or as soon as the layer passes its declared size.
/// Before, the client fetched every layer, and each whole, before anything
/// was checked (memory without bound, and no end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_registry_cannot_make_a_pull_fetch_without_bound() {
    let config = descriptor("application/vnd.wasm.config.v0+json", 2);
    let manifest = |layers: Vec<serde_json::Value>| serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": layers});
    let pull = |addr: String| async move {
        let tools = tempfile::tempdir().unwrap();
        let tag = format!("oci://{addr}/tools/calc:v1");
        let trust = TrustOptions::default();
        let call = toolhost::oci::pull(&tag, tools.path(), None, false, &trust);
        let result = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("the pull ended");
        assert!(!tools.path().join("calc.wasm").exists());
        result.unwrap_err().to_string()
    };

    let many = Hostile::start(manifest(vec![descriptor("application/wasm", 10); 1000])).await;
    let error = pull(many.addr.clone()).await;
    assert!(error.contains("exactly one layer"), "{error}");
    assert_eq!(many.blobs.load(Ordering::SeqCst), 0, "a blob was fetched");

    let huge = Hostile::start(manifest(vec![descriptor("application/wasm", 1 << 40)])).await;
    let error = pull(huge.addr.clone()).await;
    assert!(error.contains("at most"), "{error}");
    assert_eq!(huge.blobs.load(Ordering::SeqCst), 0, "a blob was fetched");

    let endless = Hostile::start(manifest(vec![descriptor("application/wasm", 10)])).await;
    let error = pull(endless.addr.clone()).await;
    assert!(error.contains("10 bytes"), "{error}");
}
