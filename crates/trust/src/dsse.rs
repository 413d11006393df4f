//! DSSE v1 envelopes carrying in-toto Statements: cosign's attestation format.
//!
//! Specifications: DSSE `protocol.md` and `envelope.md` (secure-systems-lab/dsse) and the
//! in-toto Statement v1 (`in-toto/attestation` `spec/v1/statement.md`).
//!
//! - The signature covers the pre-authentication encoding, never the JSON envelope:
//!   `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where LEN is the
//!   byte length in ASCII decimal without leading zeros ([`pae`]).
//! - envelope.md: "Either standard or URL-safe encoding is allowed" for the base64 fields,
//!   so both are accepted, with or without padding.
//! - The payload type must be `application/vnd.in-toto+json`; the Statement `_type` may be
//!   v1 or v0.1 (cosign wrote v0.1 until v2.2), and some subject must name the image's digest.
//!
//! Bounds: envelopes over [`MAX_ATTESTATION_BYTES`] and envelopes with more than
//! [`MAX_ENVELOPE_SIGNATURES`] signatures are refused before any signature is checked, so a
//! hostile envelope cannot make us run thousands of verifications.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use oci::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::keys::{PublicKey, SignatureError, SigningKey};

/// DSSE payload type of in-toto Statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of in-toto Statement v0.1, still found in older cosign attestations.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The largest attestation (DSSE envelope or Sigstore bundle) we parse. cosign's own limit
/// on attachment blobs is 128 MiB (`COSIGN_MAX_ATTACHMENT_SIZE`); SBOM attestations of
/// images are usually well under a few MiB, and a server holds the whole envelope, its
/// decoded payload and the parsed predicate in memory, hence a lower bound.
pub const MAX_ATTESTATION_BYTES: usize = 32 * 1024 * 1024;
/// The most signatures checked in one envelope (cosign writes one).
pub const MAX_ENVELOPE_SIGNATURES: usize = 16;

/// cosign `attest --type` aliases (`cmd/cosign/cli/options/predicate.go`,
/// `pkg/cosign/attestation/attestation.go`; help text "slsaprovenance|slsaprovenance02|
/// slsaprovenance1|link|spdx|spdxjson|cyclonedx|vuln|openvex|custom").
const PREDICATE_ALIASES: [(&str, &str); 10] = [
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
];

/// A verified in-toto Statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// `_type`: [`STATEMENT_V1`] or [`STATEMENT_V01`].
    pub statement_type: String,
    pub subjects: Vec<Subject>,
    pub predicate_type: String,
    /// `Value::Null` when the Statement has no predicate.
    pub predicate: Value,
}

/// One `subject` entry: what the Statement is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub name: Option<String>,
    /// Algorithm name (`sha256`) to lower-case hex.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

/// Why an envelope or Statement was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("the attestation is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the attestation is not a DSSE envelope: {0}")]
    Envelope(serde_json::Error),
    #[error("the envelope's {field} is not valid base64")]
    Base64 { field: &'static str },
    #[error("the envelope's payloadType is {found:?}, expected {INTOTO_PAYLOAD_TYPE:?}")]
    WrongPayloadType { found: String },
    #[error("the envelope has no signatures")]
    NoSignatures,
    #[error("the envelope has {count} signatures, more than the {limit} we check")]
    TooManySignatures { count: usize, limit: usize },
    #[error("no signature in the envelope verifies with key {key_id}: {reason}")]
    BadSignature {
        key_id: String,
        reason: SignatureError,
    },
    #[error("the signed payload is not an in-toto Statement: {0}")]
    Statement(serde_json::Error),
    #[error(
        "unsupported in-toto Statement type {found:?} (expected {STATEMENT_V1} or {STATEMENT_V01})"
    )]
    UnsupportedStatementType { found: String },
    #[error(
        "the attestation is about {}, not {expected}",
        if found.is_empty() { "no digest".to_owned() } else { found.join(", ") }
    )]
    SubjectMismatch {
        expected: Digest,
        found: Vec<String>,
    },
    #[error(
        "unknown predicate type {alias:?}: use an absolute URI or one of slsaprovenance, \
         slsaprovenance02, slsaprovenance1, link, spdx, spdxjson, cyclonedx, vuln, openvex, custom"
    )]
    UnknownPredicateType { alias: String },
}

/// The DSSE v1 pre-authentication encoding of `payload` with `payload_type`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// An in-toto Statement v1 about one subject.
pub fn statement(
    subject_name: &str,
    digest: &Digest,
    predicate_type: &str,
    predicate: Value,
) -> Vec<u8> {
    json!({
        "_type": STATEMENT_V1,
        "subject": [{
            "name": subject_name,
            "digest": { digest.algorithm().as_str(): digest.hex() },
        }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
    .to_string()
    .into_bytes()
}

/// The predicate type URI for a cosign `--type` alias; an absolute URI passes through.
///
/// Like cosign (Go `url.ParseRequestURI`), a value that is not an alias must be an absolute
/// URI (`scheme:…`) or an absolute path, without control characters.
pub fn predicate_type_for(alias: &str) -> Result<String, DsseError> {
    if let Some((_, uri)) = PREDICATE_ALIASES.iter().find(|(name, _)| *name == alias) {
        return Ok((*uri).to_owned());
    }
    if is_request_uri(alias) {
        return Ok(alias.to_owned());
    }
    Err(DsseError::UnknownPredicateType {
        alias: alias.chars().take(200).collect(),
    })
}

fn is_request_uri(value: &str) -> bool {
    if value.is_empty() || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if value.starts_with('/') {
        return true;
    }
    let Some((scheme, _rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A DSSE envelope with one signature by `key`, as cosign writes it (`keyid` empty).
pub fn sign_envelope(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    envelope_json(key, payload_type, payload)
        .to_string()
        .into_bytes()
}

pub(crate) fn envelope_json(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Value {
    let signature = key.sign(&pae(payload_type, payload));
    json!({
        "payloadType": payload_type,
        "payload": STANDARD.encode(payload),
        "signatures": [{ "keyid": "", "sig": STANDARD.encode(signature) }],
    })
}

/// The envelope as it appears on the wire (also inside a Sigstore bundle).
#[derive(Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    statement_type: String,
    #[serde(rename = "subject")]
    subjects: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default)]
    predicate: Value,
}

/// Verifies an attestation: an envelope of at most [`MAX_ATTESTATION_BYTES`], with an in-toto
/// payload, a signature by `key` over its PAE, and a subject whose digest is
/// `expected_digest`. Returns the Statement.
pub fn verify_attestation(
    envelope: &[u8],
    key: &PublicKey,
    expected_digest: &Digest,
) -> Result<Statement, DsseError> {
    if envelope.len() > MAX_ATTESTATION_BYTES {
        return Err(DsseError::TooLarge {
            size: envelope.len(),
            limit: MAX_ATTESTATION_BYTES,
        });
    }
    let envelope: Envelope = serde_json::from_slice(envelope).map_err(DsseError::Envelope)?;
    verify_envelope(&envelope, key, expected_digest)
}

pub(crate) fn verify_envelope(
    envelope: &Envelope,
    key: &PublicKey,
    expected_digest: &Digest,
) -> Result<Statement, DsseError> {
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(DsseError::WrongPayloadType {
            found: envelope.payload_type.chars().take(200).collect(),
        });
    }
    if envelope.signatures.is_empty() {
        return Err(DsseError::NoSignatures);
    }
    if envelope.signatures.len() > MAX_ENVELOPE_SIGNATURES {
        return Err(DsseError::TooManySignatures {
            count: envelope.signatures.len(),
            limit: MAX_ENVELOPE_SIGNATURES,
        });
    }
    let payload = decode_base64("payload", &envelope.payload)?;
    let signed = pae(&envelope.payload_type, &payload);
    // One good signature is enough; a signature that is not even base64 only decides the
    // error when no signature could be checked at all.
    let mut failure = None;
    let verified = envelope.signatures.iter().any(|signature| {
        let Ok(signature) = decode_base64("signature", &signature.sig) else {
            return false;
        };
        key.verify(&signed, &signature)
            .map_err(|reason| failure = Some(reason))
            .is_ok()
    });
    if !verified {
        return Err(match failure {
            Some(reason) => DsseError::BadSignature {
                key_id: key.key_id(),
                reason,
            },
            None => DsseError::Base64 { field: "signature" },
        });
    }
    let statement = parse_statement(&payload)?;
    check_subject(&statement, expected_digest)?;
    Ok(statement)
}

fn parse_statement(payload: &[u8]) -> Result<Statement, DsseError> {
    let raw: RawStatement = serde_json::from_slice(payload).map_err(DsseError::Statement)?;
    if raw.statement_type != STATEMENT_V1 && raw.statement_type != STATEMENT_V01 {
        return Err(DsseError::UnsupportedStatementType {
            found: raw.statement_type.chars().take(200).collect(),
        });
    }
    Ok(Statement {
        statement_type: raw.statement_type,
        subjects: raw.subjects,
        predicate_type: raw.predicate_type,
        predicate: raw.predicate,
    })
}

fn check_subject(statement: &Statement, expected: &Digest) -> Result<(), DsseError> {
    let algorithm = expected.algorithm().as_str();
    let matches = statement.subjects.iter().any(|subject| {
        subject
            .digest
            .get(algorithm)
            .is_some_and(|hex| hex.eq_ignore_ascii_case(expected.hex()))
    });
    if matches {
        return Ok(());
    }
    const SHOWN: usize = 5;
    let found = statement
        .subjects
        .iter()
        .flat_map(|subject| subject.digest.iter())
        .take(SHOWN)
        .map(|(algorithm, hex)| {
            format!("{algorithm}:{}", hex.chars().take(128).collect::<String>())
        })
        .collect();
    Err(DsseError::SubjectMismatch {
        expected: expected.clone(),
        found,
    })
}

/// DSSE base64: standard or URL-safe alphabet, padding optional.
fn decode_base64(field: &'static str, value: &str) -> Result<Vec<u8>, DsseError> {
    let url_safe = value.contains(['-', '_']);
    let padded = value.ends_with('=');
    let engine = match (url_safe, padded) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    engine
        .decode(value)
        .map_err(|_| DsseError::Base64 { field })
}
