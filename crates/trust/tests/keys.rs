//! cosign key files: fixtures written by an independent Python implementation
//! (`fixtures/keys/generate.py`), round trips, and precise errors for every malformation.

use std::time::{Duration, Instant};

use oci::{Algorithm, Digest};
use serde_json::Value;
use trust::keys::{ENCRYPTED_COSIGN_LABEL, ENCRYPTED_SIGSTORE_LABEL};
use trust::{KeyAlgorithm, KeyError, PublicKey, SignatureError, SigningKey};

use crate::support::{ecdsa_key, ed25519_key, pem, unpem};

const PASSWORD: &[u8] = b"testpass";

macro_rules! fixture {
    ($name:literal) => {
        (
            include_bytes!(concat!("fixtures/keys/", $name, ".key")).as_slice(),
            include_bytes!(concat!("fixtures/keys/", $name, ".pub")).as_slice(),
        )
    };
}

/// Loads an encrypted fixture, checks it against its `.pub` and that it signs verifiably.
fn check_encrypted_fixture(
    (key_pem, pub_pem): (&[u8], &[u8]),
    algorithm: KeyAlgorithm,
    label: &str,
    n: u64,
) {
    let (found_label, body) = unpem(key_pem);
    assert_eq!(found_label, label);
    let json: Value = serde_json::from_slice(&body).expect("fixture JSON");
    assert_eq!(json["kdf"]["params"]["N"], n);

    let key = SigningKey::from_pem(key_pem, Some(PASSWORD)).expect("fixture decrypts");
    let public = PublicKey::from_pem(pub_pem).expect("fixture public key");
    assert_eq!(key.algorithm(), algorithm);
    assert_eq!(key.public_key(), public);
    // The .pub was written by Python's cryptography: same bytes as Go's PEM encoder.
    assert_eq!(public.to_pem().as_bytes(), pub_pem);
    let signature = key.sign(b"message");
    public
        .verify(b"message", &signature)
        .expect("signature verifies");
}

#[test]
fn ecdsa_cosign_n32768_fixture_loads() {
    let f = fixture!("ecdsa-cosign-32768");
    check_encrypted_fixture(f, KeyAlgorithm::EcdsaP256, ENCRYPTED_COSIGN_LABEL, 32768);
}

#[test]
fn ecdsa_sigstore_n32768_fixture_loads() {
    let f = fixture!("ecdsa-sigstore-32768");
    check_encrypted_fixture(f, KeyAlgorithm::EcdsaP256, ENCRYPTED_SIGSTORE_LABEL, 32768);
}

#[test]
fn ed25519_cosign_n32768_fixture_loads() {
    let f = fixture!("ed25519-cosign-32768");
    check_encrypted_fixture(f, KeyAlgorithm::Ed25519, ENCRYPTED_COSIGN_LABEL, 32768);
}

#[test]
fn ed25519_sigstore_n32768_fixture_loads() {
    let f = fixture!("ed25519-sigstore-32768");
    check_encrypted_fixture(f, KeyAlgorithm::Ed25519, ENCRYPTED_SIGSTORE_LABEL, 32768);
}

#[test]
fn ecdsa_sigstore_n65536_fixture_loads() {
    let f = fixture!("ecdsa-sigstore-65536");
    check_encrypted_fixture(f, KeyAlgorithm::EcdsaP256, ENCRYPTED_SIGSTORE_LABEL, 65536);
}

#[test]
fn ecdsa_cosign_n131072_fixture_loads() {
    let f = fixture!("ecdsa-cosign-131072");
    check_encrypted_fixture(f, KeyAlgorithm::EcdsaP256, ENCRYPTED_COSIGN_LABEL, 131072);
}

#[test]
fn ed25519_sigstore_n131072_fixture_loads() {
    let f = fixture!("ed25519-sigstore-131072");
    check_encrypted_fixture(f, KeyAlgorithm::Ed25519, ENCRYPTED_SIGSTORE_LABEL, 131072);
}

#[test]
fn plain_pkcs8_and_sec1_keys_load() {
    for ((key_pem, pub_pem), algorithm) in [
        (fixture!("ecdsa-sec1"), KeyAlgorithm::EcdsaP256),
        (fixture!("ed25519-pkcs8"), KeyAlgorithm::Ed25519),
    ] {
        let key = SigningKey::from_pem(key_pem, None).expect("plain key loads");
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(key.public_key(), PublicKey::from_pem(pub_pem).expect("pub"));
    }
}

#[test]
fn wrong_password_is_reported_as_such() {
    let (key_pem, _) = fixture!("ecdsa-cosign-32768");
    let error = SigningKey::from_pem(key_pem, Some(b"not the password")).unwrap_err();
    assert!(matches!(error, KeyError::WrongPassword), "{error:?}");
    assert_eq!(
        error.to_string(),
        "wrong password: the private key could not be decrypted"
    );
}

#[test]
fn encrypted_key_without_password_is_refused() {
    let (key_pem, _) = fixture!("ed25519-sigstore-32768");
    let error = SigningKey::from_pem(key_pem, None).unwrap_err();
    assert!(
        matches!(error, KeyError::PasswordRequired { .. }),
        "{error:?}"
    );
}

/// Rewrites the JSON inside an encrypted fixture.
fn tampered(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (key_pem, _) = fixture!("ecdsa-cosign-32768");
    let (label, body) = unpem(key_pem);
    let mut json: Value = serde_json::from_slice(&body).expect("fixture JSON");
    edit(&mut json);
    pem(&label, json.to_string().as_bytes())
}

#[test]
fn unaccepted_scrypt_costs_are_refused_before_any_work() {
    for (n, r, p) in [
        (1024u64, 8u64, 1u64),
        (1 << 30, 8, 1),
        (u64::MAX, 8, 1),
        (32768, 16, 1),
        (32768, 8, 2),
        (0, 8, 1),
    ] {
        let key = tampered(|json| {
            json["kdf"]["params"] = serde_json::json!({ "N": n, "r": r, "p": p });
        });
        let started = Instant::now();
        let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
        // Even N = 1024 would take milliseconds; the refusal must not run scrypt at all.
        assert!(started.elapsed() < Duration::from_millis(500));
        match error {
            KeyError::UnsupportedScryptParameters {
                n: en,
                r: er,
                p: ep,
            } => assert_eq!((en, er, ep), (n, r, p)),
            other => panic!("N={n} r={r} p={p}: {other:?}"),
        }
    }
}

#[test]
fn unknown_kdf_and_cipher_are_named() {
    let key = tampered(|json| json["kdf"]["name"] = "argon2id".into());
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnsupportedKdf { name } if name == "argon2id"),
        "{error:?}"
    );
    let key = tampered(|json| json["cipher"]["name"] = "aes-gcm".into());
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnsupportedCipher { name } if name == "aes-gcm"),
        "{error:?}"
    );
}

#[test]
fn malformed_encrypted_fields_get_precise_errors() {
    let key = tampered(|json| json["kdf"]["salt"] = "not base64!".into());
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(
            error,
            KeyError::FieldBase64 {
                field: "kdf.salt",
                ..
            }
        ),
        "{error:?}"
    );

    let key = tampered(|json| json["cipher"]["nonce"] = "AAAA".into());
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(error, KeyError::NonceLength { len: 3 }),
        "{error:?}"
    );

    let key = tampered(|json| json["ciphertext"] = "AAAAAAAAAAAAAAAAAAAA".into());
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(
        matches!(error, KeyError::CiphertextTooShort { len: 15 }),
        "{error:?}"
    );

    let key = tampered(|json| {
        json.as_object_mut().expect("object").remove("cipher");
    });
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(matches!(error, KeyError::EncryptedKeyJson(_)), "{error:?}");

    let key = pem(ENCRYPTED_SIGSTORE_LABEL, b"this is not JSON");
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(matches!(error, KeyError::EncryptedKeyJson(_)), "{error:?}");
}

#[test]
fn truncated_ciphertext_does_not_authenticate() {
    let key = tampered(|json| {
        let ciphertext = crate::support::unbase64(json["ciphertext"].as_str().expect("string"));
        let truncated = &ciphertext[..ciphertext.len() - 10];
        json["ciphertext"] = crate::support::base64(truncated).into();
    });
    let error = SigningKey::from_pem(&key, Some(PASSWORD)).unwrap_err();
    assert!(matches!(error, KeyError::WrongPassword), "{error:?}");
}

#[test]
fn malformed_pem_is_a_pem_error() {
    for input in [
        b"".as_slice(),
        b"no PEM here",
        b"-----BEGIN PUBLIC KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let error = PublicKey::from_pem(input).unwrap_err();
        assert!(matches!(error, KeyError::Pem(_)), "{input:?}: {error:?}");
        let error = SigningKey::from_pem(input, Some(PASSWORD)).unwrap_err();
        assert!(matches!(error, KeyError::Pem(_)), "{input:?}: {error:?}");
    }
}

#[test]
fn text_around_the_pem_block_is_ignored() {
    let (_, pub_pem) = fixture!("ecdsa-cosign-32768");
    let mut decorated = b"# cosign public key\n".to_vec();
    decorated.extend_from_slice(pub_pem);
    decorated.extend_from_slice(b"trailing notes\n");
    let key = PublicKey::from_pem(&decorated).expect("decorated PEM");
    assert_eq!(key, PublicKey::from_pem(pub_pem).expect("pub"));
}

#[test]
fn unsupported_key_types_name_their_oid() {
    let (rsa_key, rsa_pub) = fixture!("rsa-2048");
    let error = PublicKey::from_pem(rsa_pub).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnsupportedKeyType { oid } if oid == "1.2.840.113549.1.1.1"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("unsupported key type 1.2.840.113549.1.1.1 (RSA)"),
        "{error}"
    );
    let error = SigningKey::from_pem(rsa_key, None).unwrap_err();
    assert!(
        matches!(error, KeyError::UnsupportedKeyType { .. }),
        "{error:?}"
    );

    let (p384_key, p384_pub) = fixture!("p384");
    let error = PublicKey::from_pem(p384_pub).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnsupportedCurve { oid } if oid == "1.3.132.0.34"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("1.3.132.0.34 (P-384)"),
        "{error}"
    );
    let error = SigningKey::from_pem(p384_key, None).unwrap_err();
    assert!(
        matches!(error, KeyError::UnsupportedCurve { .. }),
        "{error:?}"
    );
}

#[test]
fn wrong_pem_types_are_named() {
    let (key_pem, pub_pem) = fixture!("ed25519-pkcs8");
    let error = PublicKey::from_pem(key_pem).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnexpectedPemType { label, .. } if label == "PRIVATE KEY"),
        "{error:?}"
    );
    let error = SigningKey::from_pem(pub_pem, None).unwrap_err();
    assert!(
        matches!(&error, KeyError::UnexpectedPemType { label, .. } if label == "PUBLIC KEY"),
        "{error:?}"
    );
}

#[test]
fn generated_keys_round_trip_through_encrypted_pem() {
    for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
        let key = SigningKey::try_generate(algorithm).expect("generate");
        let encrypted = key.to_encrypted_pem(b"correct horse").expect("encrypt");
        let (label, body) = unpem(encrypted.as_bytes());
        assert_eq!(label, ENCRYPTED_SIGSTORE_LABEL);
        assert!(encrypted.lines().all(|line| line.len() <= 64));
        let json: Value = serde_json::from_slice(&body).expect("JSON body");
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(
            json["kdf"]["params"],
            serde_json::json!({"N": 32768, "r": 8, "p": 1})
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        let field = |pointer: &str| {
            crate::support::unbase64(
                json.pointer(pointer)
                    .and_then(Value::as_str)
                    .expect("field"),
            )
        };
        assert_eq!(field("/kdf/salt").len(), 32);
        assert_eq!(field("/cipher/nonce").len(), 24);

        let loaded =
            SigningKey::from_pem(encrypted.as_bytes(), Some(b"correct horse")).expect("decrypts");
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(loaded.algorithm(), algorithm);
    }
}

#[test]
fn two_encryptions_use_fresh_salt_and_nonce() {
    let key = ed25519_key();
    let first = key.to_encrypted_pem(b"pw").expect("encrypt");
    let second = key.to_encrypted_pem(b"pw").expect("encrypt");
    assert_ne!(first, second);
}

#[test]
fn pkcs8_pem_round_trips() {
    for key in [ecdsa_key(), ed25519_key()] {
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let loaded = SigningKey::from_pem(pem.as_bytes(), None).expect("loads");
        assert_eq!(loaded.public_key(), key.public_key());
    }
}

/// The hand-written PKCS#8 DER is what the RustCrypto encoders (and Go) write.
#[test]
fn pkcs8_encoding_matches_the_rustcrypto_encoders() {
    use pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

    let (_, der) = unpem(ecdsa_key().to_pkcs8_pem().as_bytes());
    let secret = p256::ecdsa::SigningKey::from_pkcs8_der(&der).expect("p256 parses it");
    assert_eq!(
        secret.to_pkcs8_der().expect("encodes").as_bytes(),
        der.as_slice()
    );

    let (_, der) = unpem(ed25519_key().to_pkcs8_pem().as_bytes());
    let parsed = ed25519_dalek::SigningKey::from_pkcs8_der(&der).expect("dalek parses it");
    let reference = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: parsed.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_der()
    .expect("encodes");
    assert_eq!(reference.as_bytes(), der.as_slice());
    assert_eq!(
        parsed.verifying_key().as_bytes().as_slice(),
        &ed25519_key().public_key().to_spki_der()[12..]
    );
}

#[test]
fn key_id_is_sha256_of_the_spki() {
    let (_, pub_pem) = fixture!("ecdsa-sigstore-32768");
    let (_, spki) = unpem(pub_pem);
    let key = PublicKey::from_pem(pub_pem).expect("pub");
    assert_eq!(key.to_spki_der(), spki);
    assert_eq!(
        key.key_id(),
        Digest::compute(Algorithm::Sha256, &spki).hex()
    );
    let (_, pub_pem) = fixture!("ed25519-cosign-32768");
    let (_, spki) = unpem(pub_pem);
    assert_eq!(
        PublicKey::from_pem(pub_pem).expect("pub").to_spki_der(),
        spki
    );
}

#[test]
fn ecdsa_signatures_are_der_and_checked_as_der() {
    let key = ecdsa_key();
    let signature = key.sign(b"payload");
    assert_eq!(signature.first(), Some(&0x30), "DER SEQUENCE");
    let public = key.public_key();
    public.verify(b"payload", &signature).expect("verifies");
    assert_eq!(
        public.verify(b"payload!", &signature),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        public.verify(b"payload", &[0u8; 64]),
        Err(SignatureError::NotDer { len: 64 })
    );
    assert_eq!(
        public.verify(b"payload", &[]),
        Err(SignatureError::NotDer { len: 0 })
    );
}

/// Go's `ecdsa.SignASN1` does not normalize S, so half of cosign's signatures have a high
/// S; they must verify (as with Go's `ecdsa.VerifyASN1`).
#[test]
fn high_s_ecdsa_signatures_verify_like_go() {
    let key = ecdsa_key();
    let public = key.public_key();
    for message in [b"one".as_slice(), b"two", b"three", b"four"] {
        let der = key.sign(message);
        let signature = p256::ecdsa::Signature::from_der(&der).expect("DER");
        let (r, s) = signature.split_scalars();
        let mirrored = p256::ecdsa::Signature::from_scalars(r, -*s).expect("n - s");
        for candidate in [signature, mirrored] {
            public
                .verify(message, candidate.to_der().as_bytes())
                .expect("both S forms verify");
        }
    }
}

#[test]
fn ed25519_signatures_are_64_bytes() {
    let key = ed25519_key();
    let signature = key.sign(b"payload");
    assert_eq!(signature.len(), 64);
    let public = key.public_key();
    public.verify(b"payload", &signature).expect("verifies");
    assert_eq!(
        public.verify(b"payload", &signature[..63]),
        Err(SignatureError::WrongLength { len: 63 })
    );
    assert_eq!(
        public.verify(b"other", &signature),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn algorithm_names_parse_and_print() {
    for (name, algorithm) in [
        ("ecdsa-p256", KeyAlgorithm::EcdsaP256),
        ("ecdsa", KeyAlgorithm::EcdsaP256),
        ("p256", KeyAlgorithm::EcdsaP256),
        ("ed25519", KeyAlgorithm::Ed25519),
    ] {
        assert_eq!(name.parse::<KeyAlgorithm>().expect("parses"), algorithm);
    }
    assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "ecdsa-p256");
    assert_eq!(KeyAlgorithm::Ed25519.to_string(), "ed25519");
    assert!(matches!(
        "rsa".parse::<KeyAlgorithm>(),
        Err(KeyError::UnknownAlgorithm { .. })
    ));
}

#[test]
fn debug_output_shows_no_secret() {
    let key = ecdsa_key();
    let debug = format!("{key:?}");
    let pkcs8 = key.to_pkcs8_pem();
    let body_line = pkcs8.lines().nth(1).expect("body");
    assert!(debug.contains(&key.public_key().key_id()));
    assert!(!debug.contains(body_line));
}
