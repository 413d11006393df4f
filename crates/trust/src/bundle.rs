//! Key-based Sigstore bundles: cosign v3's default signature format.
//!
//! `cosign sign` (v3, `--new-bundle-format`) signs an in-toto Statement with predicate type
//! [`COSIGN_SIGN_PREDICATE_TYPE`], predicate `{}` and the image digest as its subject
//! (`cmd/cosign/cli/sign/sign.go` `signDigestBundle`), wraps it in a DSSE envelope, and
//! stores it in a Sigstore bundle v0.3 (protobuf-specs `sigstore_bundle.proto`, JSON names):
//!
//! ```json
//! {"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
//!  "verificationMaterial":{"publicKey":{"hint":"<base64 SHA-256 of the SPKI>"}},
//!  "dsseEnvelope":{"payload":…,"payloadType":"application/vnd.in-toto+json","signatures":[{"sig":…}]}}
//! ```
//!
//! The bundle is pushed as an OCI 1.1 referrer of the image (`artifactType` =
//! [`crate::cosign::BUNDLE_MEDIA_TYPE`]); finding it is the caller's business.
//!
//! What is verified, and what is not: [`verify_bundle`] checks the DSSE signature with a
//! public key the caller trusts and that the Statement's subject is the expected digest.
//! It does **not** verify transparency-log entries (`tlogEntries`), RFC 3161 timestamps or
//! certificate chains: it is the equivalent of `cosign verify --key … --insecure-ignore-tlog`.
//! [`make_bundle`] writes bundles without log entries, which cosign accepts only with
//! `--insecure-ignore-tlog`. `verificationMaterial` is not used for verification: the key
//! is the caller's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci::Digest;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::cosign::BUNDLE_MEDIA_TYPE;
use crate::dsse::{
    DsseError, Envelope, INTOTO_PAYLOAD_TYPE, MAX_ATTESTATION_BYTES, STATEMENT_V1, Statement,
    envelope_json, verify_envelope,
};
use crate::keys::{PublicKey, SigningKey};

/// Predicate type of a cosign v3 image signature (cosign `pkg/types/predicate.go`).
pub const COSIGN_SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Bundle media types whose DSSE content has the layout verified here: v0.3 and the older
/// spellings of v0.2 and v0.1 (they differ only in `verificationMaterial`).
const ACCEPTED_MEDIA_TYPES: [&str; 3] = [
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// Why a bundle was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the bundle is not Sigstore bundle JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("unsupported bundle media type {found:?} (expected {BUNDLE_MEDIA_TYPE})")]
    UnsupportedMediaType { found: String },
    #[error(
        "the bundle holds a message signature (cosign sign-blob), not a DSSE envelope; \
         only DSSE bundles are verified"
    )]
    NotDsse,
    #[error("{0} (transparency-log entries are not checked, only the key signature)")]
    Dsse(DsseError),
}

#[derive(Deserialize)]
struct Bundle {
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(rename = "dsseEnvelope", default)]
    dsse_envelope: Option<Envelope>,
}

/// Verifies a key-signed bundle of at most [`MAX_ATTESTATION_BYTES`]: the DSSE signature by
/// `key` and a subject equal to `expected_digest`. Transparency-log entries are not checked.
///
/// The Statement may be an image signature ([`COSIGN_SIGN_PREDICATE_TYPE`]) or any other
/// attestation cosign v3 stores as a bundle; a caller that needs a *signature* must check
/// `predicate_type`.
pub fn verify_bundle(
    bytes: &[u8],
    key: &PublicKey,
    expected_digest: &Digest,
) -> Result<Statement, BundleError> {
    if bytes.len() > MAX_ATTESTATION_BYTES {
        return Err(BundleError::TooLarge {
            size: bytes.len(),
            limit: MAX_ATTESTATION_BYTES,
        });
    }
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(BundleError::NotJson)?;
    if !ACCEPTED_MEDIA_TYPES.contains(&bundle.media_type.as_str()) {
        return Err(BundleError::UnsupportedMediaType {
            found: bundle.media_type.chars().take(200).collect(),
        });
    }
    let envelope = bundle.dsse_envelope.ok_or(BundleError::NotDsse)?;
    verify_envelope(&envelope, key, expected_digest).map_err(BundleError::Dsse)
}

/// A bundle holding `key`'s cosign v3 signature of `digest`, without transparency-log
/// entries: the Statement is cosign's (`subject` with the digest only, predicate `{}`).
pub fn make_bundle(key: &SigningKey, digest: &Digest) -> Vec<u8> {
    let statement = json!({
        "_type": STATEMENT_V1,
        "subject": [{ "digest": { digest.algorithm().as_str(): digest.hex() } }],
        "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
        "predicate": {},
    })
    .to_string();
    let mut envelope = envelope_json(key, INTOTO_PAYLOAD_TYPE, statement.as_bytes());
    // protojson omits empty strings, so cosign's envelope inside a bundle has no `keyid`.
    if let Some(signatures) = envelope["signatures"].as_array_mut() {
        for signature in signatures {
            if let Some(signature) = signature.as_object_mut() {
                signature.remove("keyid");
            }
        }
    }
    let hint = STANDARD.encode(Sha256::digest(key.public_key().to_spki_der()));
    json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": { "publicKey": { "hint": hint } },
        "dsseEnvelope": envelope,
    })
    .to_string()
    .into_bytes()
}

/// Whether a verified Statement is a cosign v3 image signature rather than an attestation.
pub fn is_image_signature(statement: &Statement) -> bool {
    statement.predicate_type == COSIGN_SIGN_PREDICATE_TYPE && statement.predicate.is_object()
}
