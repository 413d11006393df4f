//! DSSE envelopes and in-toto Statements.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use trust::dsse::{
    INTOTO_PAYLOAD_TYPE, MAX_ENVELOPE_SIGNATURES, STATEMENT_V01, STATEMENT_V1, pae,
    predicate_type_for, sign_envelope, statement,
};
use trust::{DsseError, SignatureError, verify_attestation};

use crate::support::{base64, ecdsa_key, ed25519_key, fixture_digest, other_digest};

#[test]
fn pae_matches_the_dsse_specification() {
    // DSSE protocol.md, "Test Vectors".
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
}

#[test]
fn statement_has_the_v1_shape() {
    let bytes = statement(
        "127.0.0.1:45000/demo/hello",
        &fixture_digest(),
        "https://slsa.dev/provenance/v1",
        json!({"k": "v"}),
    );
    let value: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        value,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": "127.0.0.1:45000/demo/hello",
                "digest": {"sha256": fixture_digest().hex()},
            }],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"k": "v"},
        })
    );
}

#[test]
fn signed_envelopes_verify_with_both_algorithms() {
    for key in [ecdsa_key(), ed25519_key()] {
        let payload = statement("img", &fixture_digest(), "https://example.com/p", json!({}));
        let envelope = sign_envelope(key, INTOTO_PAYLOAD_TYPE, &payload);
        let json: Value = serde_json::from_slice(&envelope).expect("JSON");
        assert_eq!(json["payloadType"], INTOTO_PAYLOAD_TYPE);
        assert_eq!(json["signatures"][0]["keyid"], "");
        assert_eq!(json["payload"], base64(&payload));

        let verified =
            verify_attestation(&envelope, &key.public_key(), &fixture_digest()).expect("verifies");
        assert_eq!(verified.statement_type, STATEMENT_V1);
        assert_eq!(verified.predicate_type, "https://example.com/p");
        assert_eq!(verified.subjects[0].name.as_deref(), Some("img"));
        assert_eq!(verified.predicate, json!({}));
    }
}

fn envelope(payload_type: &str, payload: &[u8], signatures: &[Vec<u8>]) -> Vec<u8> {
    json!({
        "payloadType": payload_type,
        "payload": base64(payload),
        "signatures": signatures
            .iter()
            .map(|s| json!({"keyid": "", "sig": base64(s)}))
            .collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

fn signed(payload: &[u8]) -> Vec<u8> {
    let signature = ecdsa_key().sign(&pae(INTOTO_PAYLOAD_TYPE, payload));
    envelope(INTOTO_PAYLOAD_TYPE, payload, &[signature])
}

#[test]
fn statement_v01_is_accepted() {
    let payload = json!({
        "_type": STATEMENT_V01,
        "subject": [{"name": "x", "digest": {"sha256": fixture_digest().hex()}}],
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "predicate": {"builder": {"id": "b"}},
    })
    .to_string();
    let verified = verify_attestation(
        &signed(payload.as_bytes()),
        &ecdsa_key().public_key(),
        &fixture_digest(),
    )
    .expect("verifies");
    assert_eq!(verified.statement_type, STATEMENT_V01);
}

#[test]
fn a_statement_about_another_digest_is_refused() {
    let payload = statement("img", &other_digest(), "https://example.com/p", json!({}));
    let error = verify_attestation(
        &signed(&payload),
        &ecdsa_key().public_key(),
        &fixture_digest(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, DsseError::SubjectMismatch { expected, found }
            if *expected == fixture_digest() && found == &vec![other_digest().to_string()]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the attestation is about {}, not {}",
            other_digest(),
            fixture_digest()
        )
    );
}

#[test]
fn a_wrong_payload_type_is_refused_before_the_signature() {
    let payload = statement("img", &fixture_digest(), "p:x", json!({}));
    let signature = ecdsa_key().sign(&pae("application/json", &payload));
    let envelope = envelope("application/json", &payload, &[signature]);
    let error =
        verify_attestation(&envelope, &ecdsa_key().public_key(), &fixture_digest()).unwrap_err();
    assert!(
        matches!(&error, DsseError::WrongPayloadType { found } if found == "application/json"),
        "{error:?}"
    );
}

#[test]
fn wrong_key_and_tampered_payload_are_bad_signatures() {
    let payload = statement("img", &fixture_digest(), "p:x", json!({}));
    let good = signed(&payload);
    let error =
        verify_attestation(&good, &ed25519_key().public_key(), &fixture_digest()).unwrap_err();
    // A DER ECDSA signature is 70-72 bytes, never a 64-byte Ed25519 signature.
    assert!(
        matches!(&error, DsseError::BadSignature { key_id, reason: SignatureError::WrongLength { .. } }
            if *key_id == ed25519_key().public_key().key_id()),
        "{error:?}"
    );

    let mut json: Value = serde_json::from_slice(&good).expect("JSON");
    let tampered = statement("img", &fixture_digest(), "p:y", json!({}));
    json["payload"] = base64(&tampered).into();
    let error = verify_attestation(
        json.to_string().as_bytes(),
        &ecdsa_key().public_key(),
        &fixture_digest(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            DsseError::BadSignature {
                reason: SignatureError::Mismatch,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn one_good_signature_among_bad_ones_is_enough() {
    let payload = statement("img", &fixture_digest(), "p:x", json!({}));
    let good = ecdsa_key().sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    let other = ed25519_key().sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    let envelope = envelope(
        INTOTO_PAYLOAD_TYPE,
        &payload,
        &[other, b"junk".to_vec(), good],
    );
    verify_attestation(&envelope, &ecdsa_key().public_key(), &fixture_digest())
        .expect("the ECDSA signature verifies");
}

#[test]
fn envelope_limits_and_shapes() {
    let payload = statement("img", &fixture_digest(), "p:x", json!({}));
    let key = ecdsa_key().public_key();

    let none = envelope(INTOTO_PAYLOAD_TYPE, &payload, &[]);
    let error = verify_attestation(&none, &key, &fixture_digest()).unwrap_err();
    assert!(matches!(error, DsseError::NoSignatures), "{error:?}");

    let signature = ecdsa_key().sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    let many = envelope(
        INTOTO_PAYLOAD_TYPE,
        &payload,
        &vec![signature; MAX_ENVELOPE_SIGNATURES + 1],
    );
    let error = verify_attestation(&many, &key, &fixture_digest()).unwrap_err();
    assert!(
        matches!(
            error,
            DsseError::TooManySignatures {
                count: 17,
                limit: 16
            }
        ),
        "{error:?}"
    );

    let unknown_type = json!({
        "_type": "https://in-toto.io/Statement/v2",
        "subject": [{"digest": {"sha256": fixture_digest().hex()}}],
        "predicateType": "p:x",
    })
    .to_string();
    let error =
        verify_attestation(&signed(unknown_type.as_bytes()), &key, &fixture_digest()).unwrap_err();
    assert!(
        matches!(&error, DsseError::UnsupportedStatementType { found }
            if found == "https://in-toto.io/Statement/v2"),
        "{error:?}"
    );

    let error = verify_attestation(&signed(b"not json"), &key, &fixture_digest()).unwrap_err();
    assert!(matches!(error, DsseError::Statement(_)), "{error:?}");

    let error = verify_attestation(b"{}", &key, &fixture_digest()).unwrap_err();
    assert!(matches!(error, DsseError::Envelope(_)), "{error:?}");
}

#[test]
fn url_safe_unpadded_base64_is_accepted() {
    let payload = statement("img?>>", &fixture_digest(), "p:x", json!({"a": "~~~???"}));
    let signature = ecdsa_key().sign(&pae(INTOTO_PAYLOAD_TYPE, &payload));
    let envelope = json!({
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": URL_SAFE_NO_PAD.encode(&payload),
        "signatures": [{"sig": URL_SAFE_NO_PAD.encode(&signature)}],
    })
    .to_string();
    verify_attestation(
        envelope.as_bytes(),
        &ecdsa_key().public_key(),
        &fixture_digest(),
    )
    .expect("verifies");
}

#[test]
fn predicate_aliases_follow_cosign() {
    let cases = [
        ("custom", "https://cosign.sigstore.dev/attestation/v1"),
        ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
        ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
        ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
        ("spdx", "https://spdx.dev/Document"),
        ("spdxjson", "https://spdx.dev/Document"),
        ("cyclonedx", "https://cyclonedx.org/bom"),
        ("link", "https://in-toto.io/Link/v1"),
        ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
        ("openvex", "https://openvex.dev/ns"),
        (
            "https://example.com/my-predicate/v1",
            "https://example.com/my-predicate/v1",
        ),
        ("urn:example:predicate", "urn:example:predicate"),
        ("/relative/to/root", "/relative/to/root"),
    ];
    for (alias, uri) in cases {
        assert_eq!(predicate_type_for(alias).expect(alias), uri);
    }
    for bad in [
        "",
        "slsa",
        "SLSAPROVENANCE",
        "1http://x",
        "http://a\nb",
        ":nothing",
    ] {
        let error = predicate_type_for(bad).unwrap_err();
        assert!(
            matches!(&error, DsseError::UnknownPredicateType { alias } if alias == bad),
            "{bad:?}: {error:?}"
        );
    }
}
