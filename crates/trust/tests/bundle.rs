//! Key-signed Sigstore bundles (cosign v3 signatures).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci::{Algorithm, Digest};
use serde_json::{Value, json};
use trust::bundle::{COSIGN_SIGN_PREDICATE_TYPE, is_image_signature};
use trust::cosign::BUNDLE_MEDIA_TYPE;
use trust::dsse::{INTOTO_PAYLOAD_TYPE, sign_envelope, statement};
use trust::{BundleError, DsseError, make_bundle, verify_bundle};

use crate::support::{ecdsa_key, ed25519_key, fixture_digest, other_digest, unbase64};

#[test]
fn made_bundles_have_cosigns_shape_and_verify() {
    for key in [ecdsa_key(), ed25519_key()] {
        let bundle = make_bundle(key, &fixture_digest());
        let json: Value = serde_json::from_slice(&bundle).expect("JSON");
        assert_eq!(json["mediaType"], BUNDLE_MEDIA_TYPE);
        let spki = key.public_key().to_spki_der();
        let hint = STANDARD.encode(Digest::compute(Algorithm::Sha256, &spki).hex().as_bytes());
        // The hint is base64 of the raw SHA-256, not of its hex form.
        assert_ne!(json["verificationMaterial"]["publicKey"]["hint"], hint);
        let hint = json["verificationMaterial"]["publicKey"]["hint"]
            .as_str()
            .expect("hint");
        assert_eq!(
            hex_of(&unbase64(hint)),
            Digest::compute(Algorithm::Sha256, &spki).hex()
        );
        let envelope = &json["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], INTOTO_PAYLOAD_TYPE);
        assert!(envelope["signatures"][0].get("keyid").is_none());
        let statement: Value =
            serde_json::from_slice(&unbase64(envelope["payload"].as_str().expect("payload")))
                .expect("statement");
        assert_eq!(
            statement,
            json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"digest": {"sha256": fixture_digest().hex()}}],
                "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
                "predicate": {},
            })
        );

        let verified =
            verify_bundle(&bundle, &key.public_key(), &fixture_digest()).expect("verifies");
        assert!(is_image_signature(&verified));
        assert_eq!(verified.subjects[0].name, None);
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn another_digest_or_key_is_refused() {
    let bundle = make_bundle(ecdsa_key(), &fixture_digest());
    let error = verify_bundle(&bundle, &ecdsa_key().public_key(), &other_digest()).unwrap_err();
    assert!(
        matches!(error, BundleError::Dsse(DsseError::SubjectMismatch { .. })),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("(transparency-log entries are not checked, only the key signature)"),
        "{error}"
    );
    let error = verify_bundle(&bundle, &ed25519_key().public_key(), &fixture_digest()).unwrap_err();
    assert!(
        matches!(error, BundleError::Dsse(DsseError::BadSignature { .. })),
        "{error:?}"
    );
}

#[test]
fn attestation_bundles_verify_but_are_not_signatures() {
    let payload = statement(
        "img",
        &fixture_digest(),
        "https://slsa.dev/provenance/v1",
        json!({"buildDefinition": {}}),
    );
    let envelope: Value =
        serde_json::from_slice(&sign_envelope(ecdsa_key(), INTOTO_PAYLOAD_TYPE, &payload))
            .expect("JSON");
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    })
    .to_string();
    let verified = verify_bundle(
        bundle.as_bytes(),
        &ecdsa_key().public_key(),
        &fixture_digest(),
    )
    .expect("verifies");
    assert!(!is_image_signature(&verified));
}

#[test]
fn other_bundle_contents_are_named() {
    let key = ecdsa_key().public_key();
    let message = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "x"}},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": ""}, "signature": ""},
    })
    .to_string();
    let error = verify_bundle(message.as_bytes(), &key, &fixture_digest()).unwrap_err();
    assert!(matches!(error, BundleError::NotDsse), "{error:?}");

    let future = json!({"mediaType": "application/vnd.dev.sigstore.bundle.v0.9+json"}).to_string();
    let error = verify_bundle(future.as_bytes(), &key, &fixture_digest()).unwrap_err();
    assert!(
        matches!(&error, BundleError::UnsupportedMediaType { found }
            if found == "application/vnd.dev.sigstore.bundle.v0.9+json"),
        "{error:?}"
    );

    let error = verify_bundle(b"[]", &key, &fixture_digest()).unwrap_err();
    assert!(matches!(error, BundleError::NotJson(_)), "{error:?}");
}
