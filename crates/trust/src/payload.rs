//! The cosign "simple signing" payload: the JSON document a `.sig` signature signs.
//!
//! The format is containers/image's signature format (`docs/containers-signature.5.md`)
//! with the type cosign gives it:
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"…"},"image":{"docker-manifest-digest":"sha256:…"},
//!  "type":"cosign container image signature"},"optional":null}
//! ```
//!
//! [`simple_signing_payload`] writes the exact bytes sigstore-rs writes (keys sorted, no
//! whitespace, `"optional":null` without annotations), so a payload made here and one made by
//! sigstore-rs for the same image are the same blob.
//!
//! [`parse_simple_signing`] reads what cosign and containers/image write. It is as strict as
//! containers/image on `critical` (the three fields, the exact type string, a valid digest)
//! and as lenient as cosign elsewhere: unknown top-level fields are ignored and `optional`
//! may be missing, `null` or any object. The type `atomic container signature` belongs to
//! GPG simple signing (containers/image `signature/simple.go`); neither cosign nor
//! containers/image's sigstore code (`internal/signature/sigstore_payload.go`, which rejects
//! any other type) uses it for sigstore payloads, so it is refused here.

use std::collections::BTreeMap;
use std::str::FromStr;

use oci::{Digest, DigestError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::cosign::MAX_PAYLOAD_BYTES;

/// `critical.type` of every cosign simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// The claims of a simple-signing payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`, as signed (for example `host:5000/repo:tag`).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`: the manifest the signature is for.
    pub digest: Digest,
    /// `optional`: cosign's `-a key=value` annotations, containers/image's creator and
    /// timestamp; `None` when absent or `null`.
    pub optional: Option<Map<String, Value>>,
}

/// Why bytes are not a simple-signing payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is {size} bytes, over the {limit}-byte limit for signature payloads")]
    TooLarge { size: usize, limit: usize },
    #[error("the payload is not a simple-signing JSON document: {0}")]
    Malformed(serde_json::Error),
    #[error("the payload type is {found:?}; cosign signatures have type {SIMPLE_SIGNING_TYPE:?}")]
    UnexpectedType { found: String },
    #[error("the payload's docker-manifest-digest {value:?} is not a valid digest: {source}")]
    InvalidDigest { value: String, source: DigestError },
}

/// The simple-signing payload for `digest`, byte for byte as sigstore-rs writes it.
/// Annotations go into `optional` (sorted by key, string values), as cosign's `-a` does.
pub fn simple_signing_payload(
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let optional = if annotations.is_empty() {
        Value::Null
    } else {
        Value::Object(
            annotations
                .iter()
                .map(|(key, value)| (key.clone(), Value::String(value.clone())))
                .collect(),
        )
    };
    // Keys are written in sorted order, which is also what serde_json's default map does, so
    // the layout does not depend on whether another crate enables `preserve_order`.
    let payload = json!({
        "critical": {
            "identity": { "docker-reference": docker_reference },
            "image": { "docker-manifest-digest": digest.to_string() },
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": optional,
    });
    payload.to_string().into_bytes()
}

#[derive(Deserialize)]
struct Document {
    critical: Critical,
    #[serde(default)]
    optional: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Parses a simple-signing payload of at most [`MAX_PAYLOAD_BYTES`].
pub fn parse_simple_signing(bytes: &[u8]) -> Result<SimpleSigning, PayloadError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge {
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let document: Document = serde_json::from_slice(bytes).map_err(PayloadError::Malformed)?;
    let critical = document.critical;
    if critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(PayloadError::UnexpectedType {
            found: critical.kind.chars().take(200).collect(),
        });
    }
    let value = critical.image.docker_manifest_digest;
    let digest = Digest::from_str(&value).map_err(|source| PayloadError::InvalidDigest {
        value: value.chars().take(200).collect(),
        source,
    })?;
    Ok(SimpleSigning {
        docker_reference: critical.identity.docker_reference,
        digest,
        optional: document.optional,
    })
}
