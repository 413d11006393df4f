//! cosign simple signing: the payload byte layout, the `.sig` manifest, and verification
//! against real signatures captured from sigstore-rs and skopeo.

use std::collections::BTreeMap;

use oci::{Algorithm, Digest};
use proptest::prelude::*;
use serde_json::Value;
use trust::cosign::{
    DSSE_MEDIA_TYPE, MAX_SIGNATURE_LAYERS, PREDICATE_TYPE_ANNOTATION, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
};
use trust::{
    AttachmentKind, CosignError, Expected, LayerDescriptor, PublicKey, SignatureError, VerifyError,
    append_layer, parse_attachment_manifest, parse_simple_signing, signature_tag,
    simple_signing_payload, verify_simple_signing,
};

use crate::support::{
    COSIGN_PUB, FIXTURE_REFERENCE, FIXTURE_REPOSITORY, SIGSTORE_RS_MANIFEST, SIGSTORE_RS_PAYLOAD,
    SKOPEO_MANIFEST, base64, digest, ecdsa_key, ed25519_key, fixture_digest, other_digest,
};

fn expected(repository: Option<&str>) -> Expected {
    Expected {
        digest: fixture_digest(),
        repository: repository.map(str::to_owned),
    }
}

#[test]
fn payload_matches_sigstore_rs_byte_for_byte() {
    let payload = simple_signing_payload(FIXTURE_REFERENCE, &fixture_digest(), &BTreeMap::new());
    assert_eq!(payload.len(), 245);
    assert_eq!(payload, SIGSTORE_RS_PAYLOAD);
}

#[test]
fn annotations_go_into_optional_sorted() {
    let annotations = BTreeMap::from([
        ("zeta".to_owned(), "last".to_owned()),
        ("env".to_owned(), "prod \"quoted\"".to_owned()),
    ]);
    let payload = simple_signing_payload(FIXTURE_REFERENCE, &fixture_digest(), &annotations);
    let text = String::from_utf8(payload.clone()).expect("UTF-8");
    assert!(
        text.ends_with(r#""optional":{"env":"prod \"quoted\"","zeta":"last"}}"#),
        "{text}"
    );
    let parsed = parse_simple_signing(&payload).expect("parses");
    let optional = parsed.optional.expect("optional");
    assert_eq!(optional["env"], "prod \"quoted\"");
    assert_eq!(parsed.docker_reference, FIXTURE_REFERENCE);
}

#[test]
fn captured_sigstore_rs_signature_verifies() {
    let key = PublicKey::from_pem(COSIGN_PUB).expect("cosign.pub");
    let layers = parse_attachment_manifest(SIGSTORE_RS_MANIFEST).expect("manifest");
    assert_eq!(layers.len(), 1);
    let layer = &layers[0];
    assert_eq!(layer.media_type, SIMPLE_SIGNING_MEDIA_TYPE);
    assert_eq!(layer.size, 245);
    assert_eq!(
        layer.digest,
        Digest::compute(Algorithm::Sha256, SIGSTORE_RS_PAYLOAD)
    );
    let signature = layer.signature().expect("signature annotation");
    let signed = verify_simple_signing(
        SIGSTORE_RS_PAYLOAD,
        signature,
        &key,
        &expected(Some(FIXTURE_REPOSITORY)),
    )
    .expect("real signature verifies");
    assert_eq!(signed.digest, fixture_digest());
    assert_eq!(signed.docker_reference, FIXTURE_REFERENCE);
    assert_eq!(signed.optional, None);
}

#[test]
fn manifest_written_by_skopeo_parses() {
    let layers = parse_attachment_manifest(SKOPEO_MANIFEST).expect("manifest");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].media_type, SIMPLE_SIGNING_MEDIA_TYPE);
    assert_eq!(layers[0].size, 250);
    assert!(
        layers[0]
            .signature()
            .is_some_and(|s| s.starts_with("MEYCIQCi1lrm"))
    );
}

#[test]
fn captured_signature_refuses_another_key_digest_or_repository() {
    let key = PublicKey::from_pem(COSIGN_PUB).expect("cosign.pub");
    let signature = parse_attachment_manifest(SIGSTORE_RS_MANIFEST).expect("manifest")[0]
        .signature()
        .expect("signature")
        .to_owned();

    let other_key = ecdsa_key().public_key();
    let error = verify_simple_signing(SIGSTORE_RS_PAYLOAD, &signature, &other_key, &expected(None))
        .unwrap_err();
    match &error {
        VerifyError::BadSignature { key_id, reason } => {
            assert_eq!(key_id, &other_key.key_id());
            assert_eq!(reason, &SignatureError::Mismatch);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().starts_with(&format!(
            "the signature does not verify with key {}",
            other_key.key_id()
        )),
        "{error}"
    );

    let error = verify_simple_signing(
        SIGSTORE_RS_PAYLOAD,
        &signature,
        &key,
        &Expected {
            digest: other_digest(),
            repository: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(&error, VerifyError::DigestMismatch { expected, signed }
            if *expected == other_digest() && *signed == fixture_digest()),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the signature is for image {}, not {}",
            fixture_digest(),
            other_digest()
        )
    );

    let error = verify_simple_signing(
        SIGSTORE_RS_PAYLOAD,
        &signature,
        &key,
        &expected(Some("127.0.0.1:45000/demo/other")),
    )
    .unwrap_err();
    assert!(
        matches!(&error, VerifyError::ReferenceMismatch { expected, signed }
            if expected == "127.0.0.1:45000/demo/other" && signed == FIXTURE_REFERENCE),
        "{error:?}"
    );
}

/// Signs a payload naming `reference` with a generated key.
fn signed_payload(reference: &str) -> (Vec<u8>, String, PublicKey) {
    let payload = simple_signing_payload(reference, &fixture_digest(), &BTreeMap::new());
    let signature = base64(&ecdsa_key().sign(&payload));
    (payload, signature, ecdsa_key().public_key())
}

#[test]
fn repository_comparison_follows_docker_normalization() {
    let accepted = [
        ("busybox:latest", "docker.io/library/busybox"),
        ("busybox", "index.docker.io/library/busybox"),
        ("index.docker.io/library/busybox@sha256:abc", "busybox"),
        ("docker.io/foo/bar:1", "foo/bar"),
        ("localhost/foo:1", "localhost/foo"),
        ("localhost:5000/foo@sha256:00", "localhost:5000/foo"),
        (
            "Registry.Example.com/team/app:v2",
            "registry.example.com/team/app",
        ),
        (FIXTURE_REFERENCE, FIXTURE_REPOSITORY),
    ];
    for (signed_reference, repository) in accepted {
        let (payload, signature, key) = signed_payload(signed_reference);
        verify_simple_signing(&payload, &signature, &key, &expected(Some(repository)))
            .unwrap_or_else(|e| panic!("{signed_reference} vs {repository}: {e}"));
    }
    let refused = [
        ("busybox", "docker.io/other/busybox"),
        ("foo/bar", "quay.io/foo/bar"),
        ("127.0.0.1:45000/demo/hello", "127.0.0.1:45001/demo/hello"),
        ("127.0.0.1:45000/demo/hello:v1", "127.0.0.1:45000/demo"),
        ("127.0.0.1:45000/demo/hello-copy:v1", FIXTURE_REPOSITORY),
        ("", FIXTURE_REPOSITORY),
    ];
    for (signed_reference, repository) in refused {
        let (payload, signature, key) = signed_payload(signed_reference);
        let error = verify_simple_signing(&payload, &signature, &key, &expected(Some(repository)))
            .unwrap_err();
        assert!(
            matches!(error, VerifyError::ReferenceMismatch { .. }),
            "{signed_reference} vs {repository}: {error:?}"
        );
    }
}

#[test]
fn without_an_expected_repository_any_reference_is_accepted() {
    let (payload, signature, key) = signed_payload("quay.io/elsewhere/image:tag");
    verify_simple_signing(&payload, &signature, &key, &expected(None)).expect("accepted");
}

#[test]
fn ed25519_signatures_verify_too() {
    let payload = simple_signing_payload(FIXTURE_REFERENCE, &fixture_digest(), &BTreeMap::new());
    let signature = base64(&ed25519_key().sign(&payload));
    verify_simple_signing(
        &payload,
        &signature,
        &ed25519_key().public_key(),
        &expected(Some(FIXTURE_REPOSITORY)),
    )
    .expect("verifies");
}

#[test]
fn signature_tags_follow_cosign() {
    let d = fixture_digest();
    let hex = d.hex();
    assert_eq!(
        signature_tag(&d, AttachmentKind::Signature),
        format!("sha256-{hex}.sig")
    );
    assert_eq!(
        signature_tag(&d, AttachmentKind::Attestation),
        format!("sha256-{hex}.att")
    );
    assert_eq!(
        signature_tag(&d, AttachmentKind::Sbom),
        format!("sha256-{hex}.sbom")
    );
}

fn simple_signing_layer(payload: &[u8], signature: &str) -> LayerDescriptor {
    LayerDescriptor {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
        digest: Digest::compute(Algorithm::Sha256, payload),
        size: payload.len() as u64,
        annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), signature.to_owned())]),
    }
}

fn cosign_config(diff_ids: &[&Digest]) -> String {
    let history = vec![r#"{"created":"0001-01-01T00:00:00Z"}"#; diff_ids.len()].join(",");
    let ids = diff_ids
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{history}],"os":"","rootfs":{{"type":"layers","diff_ids":[{ids}]}},"config":{{}}}}"#
    )
}

#[test]
fn first_signature_starts_a_manifest_with_cosigns_config() {
    let (payload, signature, _) = signed_payload(FIXTURE_REFERENCE);
    let layer = simple_signing_layer(&payload, &signature);
    let written = append_layer(None, layer.clone()).expect("append");
    assert!(written.changed);
    assert_eq!(
        String::from_utf8(written.config.clone()).expect("UTF-8"),
        cosign_config(&[&layer.digest])
    );
    let manifest: Value = serde_json::from_slice(&written.manifest).expect("JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["config"]["digest"],
        Digest::compute(Algorithm::Sha256, &written.config).to_string()
    );
    assert_eq!(manifest["config"]["size"], written.config.len());
    assert_eq!(
        parse_attachment_manifest(&written.manifest).expect("parses"),
        vec![layer]
    );
}

#[test]
fn appending_keeps_existing_layers_and_is_idempotent() {
    let old_layers = parse_attachment_manifest(SIGSTORE_RS_MANIFEST).expect("manifest");
    let old_manifest: Value = serde_json::from_slice(SIGSTORE_RS_MANIFEST).expect("JSON");
    let (payload, signature, _) = signed_payload(FIXTURE_REFERENCE);
    let layer = simple_signing_layer(&payload, &signature);

    let written = append_layer(Some(SIGSTORE_RS_MANIFEST), layer.clone()).expect("append");
    assert!(written.changed);
    let manifest: Value = serde_json::from_slice(&written.manifest).expect("JSON");
    assert_eq!(
        manifest["layers"][0], old_manifest["layers"][0],
        "kept as it was"
    );
    let layers = parse_attachment_manifest(&written.manifest).expect("parses");
    assert_eq!(layers, vec![old_layers[0].clone(), layer.clone()]);
    assert_eq!(
        String::from_utf8(written.config.clone()).expect("UTF-8"),
        cosign_config(&[&old_layers[0].digest, &layer.digest])
    );

    // Signing the same payload with the same signature again changes nothing.
    let again = append_layer(Some(&written.manifest), layer.clone()).expect("append");
    assert!(!again.changed);
    assert_eq!(again.manifest, written.manifest);

    // A new signature over the same payload (ECDSA signatures differ) is a new layer.
    let mut resigned = layer.clone();
    resigned.annotations.insert(
        SIGNATURE_ANNOTATION.to_owned(),
        base64(&ecdsa_key().sign(b"something else")),
    );
    let third = append_layer(Some(&written.manifest), resigned).expect("append");
    assert!(third.changed);
    assert_eq!(
        parse_attachment_manifest(&third.manifest)
            .expect("parses")
            .len(),
        3
    );
}

#[test]
fn attestation_layers_are_returned_with_their_annotations() {
    let envelope = br#"{"payloadType":"x","payload":"","signatures":[]}"#;
    let layer = LayerDescriptor {
        media_type: DSSE_MEDIA_TYPE.to_owned(),
        digest: Digest::compute(Algorithm::Sha256, envelope),
        size: envelope.len() as u64,
        annotations: BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            (
                PREDICATE_TYPE_ANNOTATION.to_owned(),
                "https://slsa.dev/provenance/v1".to_owned(),
            ),
        ]),
    };
    let unknown = LayerDescriptor {
        media_type: "application/vnd.example.unknown".to_owned(),
        digest: digest("sha256:2222222222222222222222222222222222222222222222222222222222222222"),
        size: 1,
        annotations: BTreeMap::new(),
    };
    let first = append_layer(None, layer.clone()).expect("append");
    let second = append_layer(Some(&first.manifest), unknown.clone()).expect("append");
    assert_eq!(
        parse_attachment_manifest(&second.manifest).expect("parses"),
        vec![layer, unknown]
    );
}

#[test]
fn a_full_manifest_refuses_one_more_layer() {
    let layers: Vec<Value> = (0..MAX_SIGNATURE_LAYERS)
        .map(|i| {
            serde_json::json!({
                "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                "digest": Digest::compute(Algorithm::Sha256, &i.to_le_bytes()).to_string(),
                "size": 8,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "layers": layers,
    })
    .to_string();
    assert_eq!(
        parse_attachment_manifest(manifest.as_bytes())
            .expect("exactly at the limit")
            .len(),
        MAX_SIGNATURE_LAYERS
    );
    let (payload, signature, _) = signed_payload(FIXTURE_REFERENCE);
    let error = append_layer(
        Some(manifest.as_bytes()),
        simple_signing_layer(&payload, &signature),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            CosignError::TooManyLayers {
                count: 1001,
                limit: 1000
            }
        ),
        "{error:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single-byte change of the payload or of the decoded signature is caught.
    #[test]
    fn any_single_byte_change_fails_verification(
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        in_signature in any::<bool>(),
        ed25519 in any::<bool>(),
    ) {
        let key = if ed25519 { ed25519_key() } else { ecdsa_key() };
        let mut payload = simple_signing_payload(FIXTURE_REFERENCE, &fixture_digest(), &BTreeMap::new());
        let mut signature = key.sign(&payload);
        let public = key.public_key();
        let expected = expected(Some(FIXTURE_REPOSITORY));
        prop_assert!(verify_simple_signing(&payload, &base64(&signature), &public, &expected).is_ok());
        if in_signature {
            let index = position.index(signature.len());
            signature[index] ^= flip;
        } else {
            let index = position.index(payload.len());
            payload[index] ^= flip;
        }
        let result = verify_simple_signing(&payload, &base64(&signature), &public, &expected);
        prop_assert!(
            matches!(result, Err(VerifyError::BadSignature { .. })),
            "{:?}",
            result
        );
    }
}
