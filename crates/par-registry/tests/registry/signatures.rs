//! OpenPGP detached signatures made by gpg: ed25519 and RSA keys, binary and armored
//! signatures and keys, tampering, unknown signers, and the three policies.

use std::path::{Path, PathBuf};

use par_registry::{
    parse_source, verify_detached, ConfigError, FetchError, Fetcher, PublicKeyFile, SignatureError,
    SignaturePolicy, SignatureStatus,
};

use crate::support::gpg::{gpg, KEYS};
use crate::support::server::{Route, TestServer};
use crate::support::{config, fetcher, files_in, sha256_hex};

fn trusted(armored: bool) -> Vec<PublicKeyFile> {
    ["ed25519", "rsa"]
        .iter()
        .map(|k| PublicKeyFile::load(&gpg().public_key(k, armored)).unwrap())
        .collect()
}

#[test]
fn gpg_signatures_verify_with_every_key_and_encoding() {
    let g = gpg();
    for key in ["ed25519", "rsa"] {
        for armored_sig in [false, true] {
            for armored_key in [false, true] {
                let signer = verify_detached(
                    &g.payload(),
                    &g.signature(key, armored_sig),
                    &trusted(armored_key),
                )
                .unwrap_or_else(|e| {
                    panic!("{key} sig armored={armored_sig} key armored={armored_key}: {e}")
                });
                assert_eq!(signer, g.fingerprint(key));
            }
        }
    }
}

#[test]
fn key_files_list_their_fingerprints() {
    for key in KEYS {
        let file = PublicKeyFile::load(&gpg().public_key(key, true)).unwrap();
        assert_eq!(file.fingerprints(), vec![gpg().fingerprint(key)]);
    }
}

#[test]
fn a_tampered_file_is_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gpg().payload_bytes();
    bytes[1000] ^= 1;
    let tampered = dir.path().join("tampered.apkg");
    std::fs::write(&tampered, bytes).unwrap();
    for key in ["ed25519", "rsa"] {
        let error =
            verify_detached(&tampered, &gpg().signature(key, false), &trusted(true)).unwrap_err();
        assert_eq!(
            error,
            SignatureError::Bad {
                fingerprint: gpg().fingerprint(key)
            }
        );
        assert!(error.to_string().starts_with("bad signature"));
    }
}

#[test]
fn a_signature_by_an_untrusted_key_is_an_unknown_key() {
    let error = verify_detached(
        &gpg().payload(),
        &gpg().signature("other", true),
        &trusted(true),
    )
    .unwrap_err();
    assert_eq!(
        error,
        SignatureError::UnknownKey {
            key_id: gpg().fingerprint("other")
        }
    );
}

#[test]
fn garbage_is_a_malformed_signature_and_a_secret_key_is_refused() {
    let error = verify_detached(&gpg().payload(), b"not a signature", &trusted(true)).unwrap_err();
    assert!(matches!(error, SignatureError::Malformed(_)), "{error}");
    let key = std::fs::read(gpg().public_key("ed25519", false)).unwrap();
    let error = verify_detached(&gpg().payload(), &key, &trusted(true)).unwrap_err();
    assert!(matches!(error, SignatureError::Malformed(_)), "{error}");
    // A secret key packet (tag 5), as `gpg --export-secret-keys` would write.
    let error = PublicKeyFile::parse(&[0x94, 0x01, 0x04], "secret.gpg").unwrap_err();
    assert!(error.to_string().contains("secret key"), "{error}");
}

/// A directory holding the signed payload as `kit.apkg`, plus the given signature files.
fn local_package(dir: &Path, signatures: &[(&str, &str, bool)]) -> PathBuf {
    let path = dir.join("kit.apkg");
    std::fs::copy(gpg().payload(), &path).unwrap();
    for (key, ext, armored) in signatures {
        std::fs::write(
            dir.join(format!("kit.apkg.{ext}")),
            gpg().signature(key, *armored),
        )
        .unwrap();
    }
    path
}

async fn policy_fetcher(cache: &Path, policy: SignaturePolicy) -> Fetcher {
    let mut cfg = config(cache);
    cfg.signature_policy = policy;
    cfg.trusted_keys = vec![
        gpg().public_key("ed25519", true),
        gpg().public_key("rsa", false),
    ];
    fetcher(cfg).await
}

#[tokio::test]
async fn fetch_verifies_a_binary_sig_then_an_armored_asc() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = local_package(dir.path(), &[("ed25519", "sig", false)]);
    let fetcher = policy_fetcher(&dir.path().join("cache"), SignaturePolicy::Required).await;

    let fetched = fetcher
        .fetch(&parse_source(pkg.to_str().unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        fetched.signature,
        SignatureStatus::Verified {
            fingerprint: gpg().fingerprint("ed25519")
        }
    );

    let other = tempfile::tempdir().unwrap();
    let pkg = local_package(other.path(), &[("rsa", "asc", true)]);
    let fetched = fetcher
        .fetch(&parse_source(pkg.to_str().unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        fetched.signature,
        SignatureStatus::Verified {
            fingerprint: gpg().fingerprint("rsa")
        }
    );
}

#[tokio::test]
async fn a_bad_or_unknown_signature_fails_the_fetch_and_caches_nothing() {
    for (policy, key) in [
        (SignaturePolicy::IfPresent, "other"),
        (SignaturePolicy::Required, "other"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pkg = local_package(dir.path(), &[(key, "sig", false)]);
        let cache = dir.path().join("cache");
        let fetcher = policy_fetcher(&cache, policy).await;

        let error = fetcher
            .fetch(&parse_source(pkg.to_str().unwrap()).unwrap())
            .await
            .unwrap_err();

        assert!(
            matches!(
                &error,
                FetchError::Signature {
                    source: SignatureError::UnknownKey { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("kit.apkg"), "{error}");
        assert!(files_in(&cache, "blobs/sha256").is_empty());
    }
    let dir = tempfile::tempdir().unwrap();
    let pkg = local_package(dir.path(), &[("ed25519", "sig", false)]);
    let mut bytes = std::fs::read(&pkg).unwrap();
    bytes[7] ^= 0xff;
    std::fs::write(&pkg, bytes).unwrap();
    let fetcher = policy_fetcher(&dir.path().join("cache"), SignaturePolicy::IfPresent).await;
    let error = fetcher
        .fetch(&parse_source(pkg.to_str().unwrap()).unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("bad signature"), "{error}");
}

#[tokio::test]
async fn policies_decide_what_a_missing_signature_means() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = local_package(dir.path(), &[]);
    let source = parse_source(pkg.to_str().unwrap()).unwrap();

    let required = policy_fetcher(&dir.path().join("c1"), SignaturePolicy::Required).await;
    let error = required.fetch(&source).await.unwrap_err();
    assert!(
        matches!(
            &error,
            FetchError::Signature {
                source: SignatureError::Missing { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("kit.apkg.sig"), "{error}");
    assert!(files_in(&dir.path().join("c1"), "blobs/sha256").is_empty());

    let if_present = policy_fetcher(&dir.path().join("c2"), SignaturePolicy::IfPresent).await;
    assert_eq!(
        if_present.fetch(&source).await.unwrap().signature,
        SignatureStatus::Absent
    );

    let off = policy_fetcher(&dir.path().join("c3"), SignaturePolicy::Off).await;
    assert_eq!(
        off.fetch(&source).await.unwrap().signature,
        SignatureStatus::NotChecked
    );
}

#[tokio::test]
async fn over_http_off_never_asks_for_signatures_and_cached_blobs_reverify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = gpg().payload_bytes();
    server.put("/kit.apkg", Route::ok(body.clone()));
    server.put("/kit.apkg.asc", Route::ok(gpg().signature("rsa", true)));
    let text = format!("{}#sha256={}", server.url("/kit.apkg"), sha256_hex(&body));
    let source = parse_source(&text).unwrap();

    let off = policy_fetcher(&dir.path().join("off"), SignaturePolicy::Off).await;
    off.fetch(&source).await.unwrap();
    assert_eq!(
        server.hits("/kit.apkg.sig") + server.hits("/kit.apkg.asc"),
        0
    );

    let required = policy_fetcher(&dir.path().join("req"), SignaturePolicy::Required).await;
    let first = required.fetch(&source).await.unwrap();
    let hits = server.total_hits();
    let second = required.fetch(&source).await.unwrap();

    // .sig was looked for (404) before .asc was found.
    assert_eq!(server.hits("/kit.apkg.sig"), 1);
    assert_eq!(first.signature, second.signature);
    assert!(matches!(second.signature, SignatureStatus::Verified { .. }));
    assert_eq!(
        server.total_hits(),
        hits,
        "the cached signature was re-checked offline"
    );
}

#[tokio::test]
async fn required_without_trusted_keys_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.signature_policy = SignaturePolicy::Required;
    let error = Fetcher::new(cfg.clone()).await.err().unwrap();
    assert!(matches!(error, ConfigError::RequiredWithoutKeys));

    cfg.trusted_keys = vec![dir.path().join("missing.asc")];
    let error = Fetcher::new(cfg).await.err().unwrap();
    assert!(error.to_string().contains("missing.asc"), "{error}");
}

#[test]
fn flipping_any_byte_of_a_signature_never_panics_or_verifies_wrongly() {
    let g = gpg();
    let keys = trusted(false);
    for key in ["ed25519", "rsa"] {
        let original = g.signature(key, false);
        let mut accepted = 0;
        for i in 0..original.len() {
            let mut sig = original.clone();
            sig[i] ^= 0x41;
            if let Ok(signer) = verify_detached(&g.payload(), &sig, &keys) {
                // Only bytes outside the signed data (the unhashed issuer key id, which
                // the hashed issuer fingerprint overrides) can change harmlessly.
                assert_eq!(signer, g.fingerprint(key));
                accepted += 1;
            }
        }
        assert!(
            accepted <= 10,
            "{key}: {accepted} modified signatures verified"
        );
    }
}
