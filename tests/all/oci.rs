//! `push` then `pull` against a real registry on loopback (Debian's
//! `docker-registry`, the CNCF distribution registry, started here in a temp
//! dir): by tag and by digest, with provenance pinned in the lock file and
//! the signature carried along; a tampered blob in the registry's storage
//! is refused and nothing is written.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        Signature::sign(&key, &sha256(&bytes)).to_text(),
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

#[test]
fn plain_http_only_to_loopback() {
    assert!(toolhost::oci::is_loopback("127.0.0.1:5000"));
    assert!(toolhost::oci::is_loopback("localhost:5000"));
    assert!(!toolhost::oci::is_loopback("registry.example.com"));
    assert!(!toolhost::oci::is_loopback("127.0.0.1.nip.io:5000"));
}
