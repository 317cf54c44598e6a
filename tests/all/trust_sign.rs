//! Signatures: with trusted keys configured, a component signed by one of
//! them loads; an unsigned one, one whose signature is for other bytes and
//! one signed by a key not in the list do not, and each says why.

use toolhost::trust::{SecretKey, Signature, sha256, signature_path};
use toolhost::{Catalog, ComponentState, LoadError, TrustError};
use toolhost_artifacts as artifacts;

use super::common;
use super::trust_pin::version;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_loads_unsigned_wrongly_signed_and_untrusted_do_not() {
    let calc = std::fs::read(artifacts::CALC).unwrap();
    let trusted = SecretKey::generate().unwrap();
    let stranger = SecretKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8], signature: Option<Signature>| {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        if let Some(signature) = signature {
            std::fs::write(signature_path(&path), signature.to_text()).unwrap();
        }
    };
    let signed = version(&calc, "signed");
    write(
        "signed",
        &signed,
        Some(Signature::sign(&trusted, "signed", &sha256(&signed))),
    );
    write("unsigned", &version(&calc, "unsigned"), None);
    // Signed, then one byte changed.
    let original = version(&calc, "wrongly1");
    let tampered = version(&calc, "wrongly2");
    write(
        "wrongly",
        &tampered,
        Some(Signature::sign(&trusted, "wrongly", &sha256(&original))),
    );
    let other = version(&calc, "other");
    write(
        "other",
        &other,
        Some(Signature::sign(&stranger, "other", &sha256(&other))),
    );

    let mut options = common::load_options();
    options.trust.trusted_keys = vec![trusted.public()];
    let catalog = Catalog::load_dir(&common::engine(), dir.path(), &options)
        .await
        .unwrap();
    let state = |component: &str| {
        catalog
            .status()
            .into_iter()
            .find(|s| s.component == component)
            .unwrap()
    };
    assert_eq!(state("signed").state, ComponentState::Loaded);
    for refused in ["unsigned", "wrongly", "other"] {
        let status = state(refused);
        assert_eq!(status.state, ComponentState::Failed, "{status:?}");
        assert!(status.tools.is_empty());
    }
    let reason = |component: &str| {
        catalog
            .failures()
            .iter()
            .find(|f| f.path().ends_with(format!("{component}.wasm")))
            .unwrap()
    };
    assert!(matches!(
        reason("unsigned"),
        LoadError::Trust(TrustError::Unsigned { .. })
    ));
    assert!(matches!(
        reason("wrongly"),
        LoadError::Trust(TrustError::BadSignature { .. })
    ));
    assert!(matches!(
        reason("other"),
        LoadError::Trust(TrustError::UntrustedKey { .. })
    ));
    assert!(
        reason("other")
            .to_string()
            .contains(&stranger.public().to_string()),
        "{}",
        reason("other")
    );

    // Without trust configured, all four load: the refusals above are the
    // signatures', not the components'.
    let open = Catalog::load_dir(&common::engine(), dir.path(), &common::load_options())
        .await
        .unwrap();
    assert_eq!(open.stats().loaded, 4, "{:?}", open.failures());
}
