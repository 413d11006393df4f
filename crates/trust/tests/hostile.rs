//! Hostile inputs: each yields its specific error, and no input panics any parser.

use std::collections::BTreeMap;

use oci::{Algorithm, Digest};
use proptest::prelude::*;
use serde_json::json;
use trust::cosign::{MAX_PAYLOAD_BYTES, SIMPLE_SIGNING_MEDIA_TYPE};
use trust::dsse::{INTOTO_PAYLOAD_TYPE, MAX_ATTESTATION_BYTES, sign_envelope};
use trust::keys::ENCRYPTED_SIGSTORE_LABEL;
use trust::{
    BundleError, CosignError, DsseError, Expected, KeyError, LayerDescriptor, PayloadError,
    PublicKey, SignatureError, SigningKey, VerifyError, append_layer, build_record,
    parse_attachment_manifest, parse_simple_signing, simple_signing_payload, verify_attestation,
    verify_bundle, verify_simple_signing,
};

use crate::support::{
    FIXTURE_REFERENCE, FIXTURE_REPOSITORY, base64, ecdsa_key, fixture_digest, pem,
};

fn expected() -> Expected {
    Expected {
        digest: fixture_digest(),
        repository: Some(FIXTURE_REPOSITORY.to_owned()),
    }
}

fn manifest_with_layers(count: usize) -> Vec<u8> {
    let layer = json!({
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "digest": fixture_digest().to_string(),
        "size": 245,
        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="},
    });
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": fixture_digest().to_string(), "size": 2},
        "layers": vec![layer; count],
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_manifest_with_5000_layers_is_refused_with_count_and_limit() {
    let error = parse_attachment_manifest(&manifest_with_layers(5000)).unwrap_err();
    assert!(
        matches!(
            error,
            CosignError::TooManyLayers {
                count: 5000,
                limit: 1000
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("5000") && message.contains("1000"),
        "{message}"
    );
}

#[test]
fn manifests_that_are_not_image_manifests_are_refused() {
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []});
    let error = parse_attachment_manifest(index.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(error, CosignError::NotImageManifest { .. }),
        "{error:?}"
    );

    let v1 = json!({"schemaVersion": 1, "layers": []});
    let error = parse_attachment_manifest(v1.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(&error, CosignError::SchemaVersion { found } if found == "1"),
        "{error:?}"
    );

    let bad_digest =
        json!({"schemaVersion": 2, "layers": [{"mediaType": "x", "digest": "md5:abc", "size": 1}]});
    let error = parse_attachment_manifest(bad_digest.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(error, CosignError::InvalidLayer { index: 0, .. }),
        "{error:?}"
    );

    let negative_size = json!({"schemaVersion": 2, "layers": [{"mediaType": "x", "digest": fixture_digest().to_string(), "size": -1}]});
    let error = parse_attachment_manifest(negative_size.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(error, CosignError::InvalidLayer { index: 0, .. }),
        "{error:?}"
    );

    let error = parse_attachment_manifest(b"\x00\xff not json").unwrap_err();
    assert!(matches!(error, CosignError::NotJson(_)), "{error:?}");

    let huge = vec![b' '; oci::MAX_MANIFEST_BYTES + 1];
    let error = parse_attachment_manifest(&huge).unwrap_err();
    assert!(matches!(error, CosignError::TooLarge { .. }), "{error:?}");

    let layer = LayerDescriptor {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
        digest: fixture_digest(),
        size: 1,
        annotations: BTreeMap::new(),
    };
    let error = append_layer(Some(index.to_string().as_bytes()), layer).unwrap_err();
    assert!(
        matches!(error, CosignError::NotImageManifest { .. }),
        "{error:?}"
    );
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_attachment_manifest(deep.as_bytes()).is_err());
    assert!(parse_simple_signing(deep.as_bytes()).is_err());
    let key = ecdsa_key().public_key();
    assert!(verify_attestation(deep.as_bytes(), &key, &fixture_digest()).is_err());
    assert!(verify_bundle(deep.as_bytes(), &key, &fixture_digest()).is_err());
}

/// Signs `payload` with the shared ECDSA key and verifies it against the fixture image.
fn verify_signed(payload: &[u8]) -> Result<trust::SimpleSigning, VerifyError> {
    let signature = base64(&ecdsa_key().sign(payload));
    verify_simple_signing(payload, &signature, &ecdsa_key().public_key(), &expected())
}

#[test]
fn validly_signed_but_invalid_payloads_are_payload_errors() {
    let error = verify_signed(b"this is not JSON").unwrap_err();
    assert!(
        matches!(error, VerifyError::Payload(PayloadError::Malformed(_))),
        "{error:?}"
    );

    let atomic = json!({
        "critical": {
            "identity": {"docker-reference": FIXTURE_REFERENCE},
            "image": {"docker-manifest-digest": fixture_digest().to_string()},
            "type": "atomic container signature",
        },
        "optional": null,
    })
    .to_string();
    let error = verify_signed(atomic.as_bytes()).unwrap_err();
    assert!(
        matches!(&error, VerifyError::Payload(PayloadError::UnexpectedType { found })
            if found == "atomic container signature"),
        "{error:?}"
    );

    let bad_digest = json!({
        "critical": {
            "identity": {"docker-reference": FIXTURE_REFERENCE},
            "image": {"docker-manifest-digest": "sha256:short"},
            "type": "cosign container image signature",
        },
    })
    .to_string();
    let error = verify_signed(bad_digest.as_bytes()).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::Payload(PayloadError::InvalidDigest { .. })
        ),
        "{error:?}"
    );

    let extra_critical = json!({
        "critical": {
            "identity": {"docker-reference": FIXTURE_REFERENCE},
            "image": {"docker-manifest-digest": fixture_digest().to_string()},
            "type": "cosign container image signature",
            "surprise": true,
        },
    })
    .to_string();
    let error = verify_signed(extra_critical.as_bytes()).unwrap_err();
    assert!(
        matches!(error, VerifyError::Payload(PayloadError::Malformed(_))),
        "{error:?}"
    );
}

#[test]
fn huge_payloads_are_refused_before_any_work() {
    let huge = vec![b'{'; MAX_PAYLOAD_BYTES + 1];
    let error =
        verify_simple_signing(&huge, "", &ecdsa_key().public_key(), &expected()).unwrap_err();
    assert!(
        matches!(error, VerifyError::Payload(PayloadError::TooLarge { size, limit })
            if size == huge.len() && limit == MAX_PAYLOAD_BYTES),
        "{error:?}"
    );
    assert!(matches!(
        parse_simple_signing(&huge),
        Err(PayloadError::TooLarge { .. })
    ));

    let huge = vec![b' '; MAX_ATTESTATION_BYTES + 1];
    let key = ecdsa_key().public_key();
    assert!(matches!(
        verify_attestation(&huge, &key, &fixture_digest()),
        Err(DsseError::TooLarge { .. })
    ));
    assert!(matches!(
        verify_bundle(&huge, &key, &fixture_digest()),
        Err(BundleError::TooLarge { .. })
    ));
}

#[test]
fn truncated_garbage_and_empty_signatures_are_bad_signatures() {
    let payload = simple_signing_payload(FIXTURE_REFERENCE, &fixture_digest(), &BTreeMap::new());
    let key = ecdsa_key().public_key();
    let good = ecdsa_key().sign(&payload);
    for (signature, expected_reason) in [
        (
            good[..good.len() - 1].to_vec(),
            SignatureError::NotDer {
                len: good.len() - 1,
            },
        ),
        (vec![0x42; 71], SignatureError::NotDer { len: 71 }),
        (Vec::new(), SignatureError::NotDer { len: 0 }),
    ] {
        let error =
            verify_simple_signing(&payload, &base64(&signature), &key, &expected()).unwrap_err();
        match error {
            VerifyError::BadSignature { reason, .. } => assert_eq!(reason, expected_reason),
            other => panic!("{other:?}"),
        }
    }
    for invalid in ["not base64!", "MEUCIQ", "====", "MEUC IQ=="] {
        let error = verify_simple_signing(&payload, invalid, &key, &expected()).unwrap_err();
        assert!(
            matches!(error, VerifyError::SignatureBase64(_)),
            "{invalid}: {error:?}"
        );
    }
}

#[test]
fn a_signature_over_another_digest_does_not_transfer() {
    let other = Digest::compute(Algorithm::Sha256, b"another image");
    let payload = simple_signing_payload(FIXTURE_REFERENCE, &other, &BTreeMap::new());
    let error = verify_signed(&payload).unwrap_err();
    assert!(
        matches!(&error, VerifyError::DigestMismatch { signed, .. } if *signed == other),
        "{error:?}"
    );
}

#[test]
fn a_payload_naming_another_repository_is_refused() {
    let payload = simple_signing_payload(
        "evil.example.com/demo/hello:v1",
        &fixture_digest(),
        &BTreeMap::new(),
    );
    let error = verify_signed(&payload).unwrap_err();
    assert!(
        matches!(error, VerifyError::ReferenceMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn an_envelope_claiming_another_payload_type_is_refused() {
    let statement = trust::dsse::statement("x", &fixture_digest(), "p:x", json!({}));
    let envelope = sign_envelope(
        ecdsa_key(),
        "application/vnd.dev.cosign.simplesigning.v1+json",
        &statement,
    );
    let error =
        verify_attestation(&envelope, &ecdsa_key().public_key(), &fixture_digest()).unwrap_err();
    assert!(
        matches!(error, DsseError::WrongPayloadType { .. }),
        "{error:?}"
    );
}

#[test]
fn malformed_key_files_never_reach_scrypt() {
    let body = json!({
        "kdf": {"name": "scrypt", "params": {"N": 1e300, "r": 8, "p": 1}, "salt": ""},
        "cipher": {"name": "nacl/secretbox", "nonce": ""},
        "ciphertext": "",
    })
    .to_string();
    let error = SigningKey::from_pem(&pem(ENCRYPTED_SIGSTORE_LABEL, body.as_bytes()), Some(b"x"))
        .unwrap_err();
    assert!(matches!(error, KeyError::EncryptedKeyJson(_)), "{error:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let key = ecdsa_key().public_key();
        let _ = parse_simple_signing(&bytes);
        let _ = parse_attachment_manifest(&bytes);
        let layer = LayerDescriptor {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
            digest: fixture_digest(),
            size: 1,
            annotations: BTreeMap::new(),
        };
        let _ = append_layer(Some(&bytes), layer);
        let _ = PublicKey::from_pem(&bytes);
        let _ = SigningKey::from_pem(&bytes, Some(b"pw"));
        let _ = verify_attestation(&bytes, &key, &fixture_digest());
        let _ = verify_bundle(&bytes, &key, &fixture_digest());
        let _ = verify_simple_signing(&bytes, &String::from_utf8_lossy(&bytes), &key, &expected());
        let _ = key.verify(&bytes, &bytes);
    }

    /// Arbitrary bytes inside a well-formed PEM frame reach the DER and JSON parsers.
    #[test]
    fn arbitrary_pem_bodies_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        label in prop::sample::select(vec![
            "PUBLIC KEY", "PRIVATE KEY", "EC PRIVATE KEY",
            "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY",
        ]),
    ) {
        let framed = pem(label, &body);
        let _ = PublicKey::from_pem(&framed);
        let _ = SigningKey::from_pem(&framed, Some(b"pw"));
    }

    /// Arbitrary JSON shapes (depth-limited) never panic the JSON consumers.
    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let bytes = value.to_string().into_bytes();
        let key = ecdsa_key().public_key();
        let _ = parse_simple_signing(&bytes);
        let _ = parse_attachment_manifest(&bytes);
        let _ = verify_attestation(&bytes, &key, &fixture_digest());
        let _ = verify_bundle(&bytes, &key, &fixture_digest());
        for predicate_type in ["https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"] {
            let _ = build_record(&trust::Statement {
                statement_type: "https://in-toto.io/Statement/v1".to_owned(),
                subjects: Vec::new(),
                predicate_type: predicate_type.to_owned(),
                predicate: value.clone(),
            });
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "critical",
        "optional",
        "identity",
        "image",
        "type",
        "docker-reference",
        "docker-manifest-digest",
        "schemaVersion",
        "mediaType",
        "layers",
        "digest",
        "size",
        "annotations",
        "payloadType",
        "payload",
        "signatures",
        "sig",
        "dsseEnvelope",
        "builder",
        "id",
        "buildType",
        "invocation",
        "configSource",
        "uri",
        "materials",
        "buildDefinition",
        "externalParameters",
        "workflow",
        "repository",
        "ref",
        "resolvedDependencies",
        "runDetails",
        "gitCommit",
        "sha1",
    ])
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(INTOTO_PAYLOAD_TYPE)),
        Just(serde_json::Value::from("git+https://h/r@refs/x")),
        Just(serde_json::Value::from(fixture_digest().to_string())),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}
