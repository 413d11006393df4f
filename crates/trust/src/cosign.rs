//! How cosign stores signatures and attestations in a registry, and how one simple-signing
//! signature is verified.
//!
//! Tag scheme (cosign `specs/SIGNATURE_SPEC.md`, `pkg/oci/remote/options.go`): the
//! attachments of manifest `sha256:<hex>` live under the tag `sha256-<hex>.sig` (signatures),
//! `.att` (attestations) or `.sbom`. The tag points at an OCI image manifest whose every
//! layer is one attachment: a simple-signing payload with its base64 signature in the
//! `dev.cosignproject.cosign/signature` annotation, or a DSSE envelope with the predicate
//! type in the `predicateType` annotation.
//!
//! Limits, taken from cosign so that we accept what cosign accepts and no more:
//! - [`MAX_SIGNATURE_LAYERS`] = 1000 is `maxLayers` in cosign `pkg/oci/remote/signatures.go`
//!   (and `pkg/oci/mutate`): the most layers cosign reads from, or appends to, a signature
//!   manifest ("number of layers (%d) exceeded the limit (%d)"). cosign also has
//!   `maxAllowedSigsOrAtts = 100` in `pkg/cosign/fetch.go`, but that only bounds
//!   `cosign download`; verification goes through `maxLayers`.
//! - cosign refuses attachment blobs over `COSIGN_MAX_ATTACHMENT_SIZE`, 128 MiB by default
//!   (`pkg/oci/internal/signature/layer.go`). A simple-signing payload is a few hundred bytes,
//!   so [`MAX_PAYLOAD_BYTES`] bounds it far lower; attestations have their own, larger limit
//!   ([`crate::dsse::MAX_ATTESTATION_BYTES`]).
//!
//! Manifests written by [`append_layer`] keep the existing layers as they were (every field
//! of each layer descriptor), and come with the config cosign writes (go-containerregistry's
//! empty image plus one history entry and one diff ID per layer), so the same signature
//! layers give the same config blob as cosign's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci::{Algorithm, Digest};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::keys::{PublicKey, SignatureError};
use crate::payload::{PayloadError, SimpleSigning, parse_simple_signing};

/// Layer media type of a simple-signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature over the layer blob.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer media type of an attestation (a DSSE envelope).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Layer annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// Media type (and referrer `artifactType`) of a Sigstore bundle, cosign v3's default.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// cosign `maxLayers` (`pkg/oci/remote/signatures.go`): the most attachments per manifest.
pub const MAX_SIGNATURE_LAYERS: usize = 1000;
/// The largest simple-signing payload blob we fetch or parse.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `COSIGN_DOCKER_MEDIA_TYPES=1` makes cosign write Docker schema 2 manifests.
const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The three kinds of cosign attachment, each under its own tag suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachmentKind {
    Signature,
    Attestation,
    Sbom,
}

impl AttachmentKind {
    pub fn suffix(self) -> &'static str {
        match self {
            AttachmentKind::Signature => "sig",
            AttachmentKind::Attestation => "att",
            AttachmentKind::Sbom => "sbom",
        }
    }
}

/// The tag of `digest`'s attachments: `sha256-<hex>.sig`, `.att` or `.sbom`.
///
/// cosign signs sha256 digests; for a sha512 digest the result (139 characters) is longer
/// than the 128 characters an OCI tag may have.
pub fn signature_tag(digest: &Digest, kind: AttachmentKind) -> String {
    format!("{}-{}.{}", digest.algorithm(), digest.hex(), kind.suffix())
}

/// One layer of an attachment manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

impl LayerDescriptor {
    /// The base64 signature of a simple-signing layer, if the annotation is there.
    pub fn signature(&self) -> Option<&str> {
        self.annotations
            .get(SIGNATURE_ANNOTATION)
            .map(String::as_str)
    }

    fn to_json(&self) -> Value {
        let mut descriptor = Map::new();
        descriptor.insert("mediaType".into(), Value::String(self.media_type.clone()));
        descriptor.insert("digest".into(), Value::String(self.digest.to_string()));
        descriptor.insert("size".into(), Value::from(self.size));
        if !self.annotations.is_empty() {
            let annotations = self
                .annotations
                .iter()
                .map(|(key, value)| (key.clone(), Value::String(value.clone())))
                .collect();
            descriptor.insert("annotations".into(), Value::Object(annotations));
        }
        Value::Object(descriptor)
    }
}

/// A signature manifest and its config blob, ready to push (config first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    /// `false` when the layer was already there: `manifest` is then the existing manifest,
    /// byte for byte, and nothing needs to be pushed.
    pub changed: bool,
}

/// Why an attachment manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("the attachment manifest is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("the attachment manifest is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the attachment manifest is not an image manifest (mediaType {media_type:?})")]
    NotImageManifest { media_type: String },
    #[error("the attachment manifest has schemaVersion {found}, expected 2")]
    SchemaVersion { found: String },
    #[error(
        "the attachment manifest has {count} layers, over cosign's limit of {limit} \
         signatures per image"
    )]
    TooManyLayers { count: usize, limit: usize },
    #[error("layer {index} of the attachment manifest is invalid: {reason}")]
    InvalidLayer { index: usize, reason: String },
}

/// The fields of an image manifest this module reads; every other field is kept as is.
#[derive(Deserialize)]
struct ManifestHead {
    #[serde(rename = "schemaVersion")]
    schema_version: Value,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Value>,
}

#[derive(Deserialize)]
struct RawLayer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Reads the layers of a `.sig`/`.att`/`.sbom` manifest. Layers of media types this crate
/// does not know are returned too; callers skip them.
pub fn parse_attachment_manifest(bytes: &[u8]) -> Result<Vec<LayerDescriptor>, CosignError> {
    let head = parse_head(bytes)?;
    head.layers
        .iter()
        .enumerate()
        .map(|(index, layer)| parse_layer(index, layer))
        .collect()
}

fn parse_head(bytes: &[u8]) -> Result<ManifestHead, CosignError> {
    if bytes.len() > oci::MAX_MANIFEST_BYTES {
        return Err(CosignError::TooLarge {
            size: bytes.len(),
            limit: oci::MAX_MANIFEST_BYTES,
        });
    }
    let head: ManifestHead = serde_json::from_slice(bytes).map_err(CosignError::NotJson)?;
    if head.schema_version != 2 {
        return Err(CosignError::SchemaVersion {
            found: head.schema_version.to_string().chars().take(40).collect(),
        });
    }
    if let Some(media_type) = &head.media_type
        && media_type != OCI_MANIFEST_MEDIA_TYPE
        && media_type != DOCKER_MANIFEST_MEDIA_TYPE
    {
        return Err(CosignError::NotImageManifest {
            media_type: media_type.chars().take(200).collect(),
        });
    }
    if head.layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(CosignError::TooManyLayers {
            count: head.layers.len(),
            limit: MAX_SIGNATURE_LAYERS,
        });
    }
    Ok(head)
}

fn parse_layer(index: usize, layer: &Value) -> Result<LayerDescriptor, CosignError> {
    let invalid = |reason: String| CosignError::InvalidLayer { index, reason };
    let raw = RawLayer::deserialize(layer).map_err(|e| invalid(e.to_string()))?;
    let digest = Digest::from_str(&raw.digest).map_err(|e| invalid(e.to_string()))?;
    Ok(LayerDescriptor {
        media_type: raw.media_type,
        digest,
        size: raw.size,
        annotations: raw.annotations.unwrap_or_default(),
    })
}

/// Adds `layer` to an attachment manifest (or starts one), as `cosign sign` and
/// containers/image do. An identical layer (same digest and same signature annotation)
/// already present leaves the manifest unchanged, so signing twice is harmless.
pub fn append_layer(
    existing_manifest: Option<&[u8]>,
    layer: LayerDescriptor,
) -> Result<SignatureManifest, CosignError> {
    let (mut document, mut layers, existing) = match existing_manifest {
        None => (Map::new(), Vec::new(), Vec::new()),
        Some(bytes) => {
            let head = parse_head(bytes)?;
            let parsed = head
                .layers
                .iter()
                .enumerate()
                .map(|(index, layer)| parse_layer(index, layer))
                .collect::<Result<Vec<_>, _>>()?;
            let document = serde_json::from_slice::<Map<String, Value>>(bytes)
                .map_err(CosignError::NotJson)?;
            (document, head.layers, parsed)
        }
    };
    let diff_ids = |layers: &[LayerDescriptor]| -> Vec<Digest> {
        layers.iter().map(|layer| layer.digest.clone()).collect()
    };
    if let (Some(bytes), true) = (
        existing_manifest,
        existing
            .iter()
            .any(|old| old.digest == layer.digest && old.signature() == layer.signature()),
    ) {
        return Ok(SignatureManifest {
            manifest: bytes.to_vec(),
            config: signature_config(&diff_ids(&existing)),
            changed: false,
        });
    }
    if existing.len() + 1 > MAX_SIGNATURE_LAYERS {
        return Err(CosignError::TooManyLayers {
            count: existing.len() + 1,
            limit: MAX_SIGNATURE_LAYERS,
        });
    }
    layers.push(layer.to_json());
    let mut all = existing;
    all.push(layer);
    let config = signature_config(&diff_ids(&all));
    let config_descriptor = json!({
        "mediaType": OCI_CONFIG_MEDIA_TYPE,
        "digest": Digest::compute(Algorithm::Sha256, &config).to_string(),
        "size": config.len(),
    });
    document.insert("schemaVersion".into(), Value::from(2));
    document.insert("mediaType".into(), Value::from(OCI_MANIFEST_MEDIA_TYPE));
    document.insert("config".into(), config_descriptor);
    document.insert("layers".into(), Value::Array(layers));
    Ok(SignatureManifest {
        manifest: Value::Object(document).to_string().into_bytes(),
        config,
        changed: true,
    })
}

/// The config blob cosign writes for a signature image: go-containerregistry's empty image
/// after `mutate.Append` of the layers, in Go's field order.
fn signature_config(diff_ids: &[Digest]) -> Vec<u8> {
    let history = vec![r#"{"created":"0001-01-01T00:00:00Z"}"#; diff_ids.len()].join(",");
    let diff_ids = diff_ids
        .iter()
        .map(|digest| format!("\"{digest}\""))
        .collect::<Vec<_>>()
        .join(",");
    // Digests print as `algorithm:hex`, which never needs JSON escaping.
    format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{history}],"os":"","rootfs":{{"type":"layers","diff_ids":[{diff_ids}]}},"config":{{}}}}"#
    )
    .into_bytes()
}

/// What a simple-signing signature must claim to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The manifest that was pulled; the payload's `docker-manifest-digest` must equal it.
    pub digest: Digest,
    /// `host[:port]/path`. When set, the payload's `docker-reference`, without its tag or
    /// digest, must name the same repository (Docker Hub names are normalized:
    /// `index.docker.io` is `docker.io`, one-segment names are under `library/`).
    pub repository: Option<String>,
}

/// Why a simple-signing signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature annotation is not valid base64: {0}")]
    SignatureBase64(base64::DecodeError),
    #[error("the signature does not verify with key {key_id}: {reason}")]
    BadSignature {
        key_id: String,
        reason: SignatureError,
    },
    #[error("the signed payload is invalid: {0}")]
    Payload(PayloadError),
    #[error("the signature is for image {signed}, not {expected}")]
    DigestMismatch { expected: Digest, signed: Digest },
    #[error("the signature names repository {signed:?}, expected {expected:?}")]
    ReferenceMismatch { expected: String, signed: String },
}

/// Verifies one `.sig` layer: `payload` is the layer blob, `signature_b64` its
/// [`SIGNATURE_ANNOTATION`]. Checks run in containers/image's order: base64, cryptography,
/// payload, digest, reference. Nothing in the payload is trusted before the signature
/// verifies.
pub fn verify_simple_signing(
    payload: &[u8],
    signature_b64: &str,
    key: &PublicKey,
    expected: &Expected,
) -> Result<SimpleSigning, VerifyError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(VerifyError::Payload(PayloadError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        }));
    }
    let signature = STANDARD
        .decode(signature_b64)
        .map_err(VerifyError::SignatureBase64)?;
    key.verify(payload, &signature)
        .map_err(|reason| VerifyError::BadSignature {
            key_id: key.key_id(),
            reason,
        })?;
    let signed = parse_simple_signing(payload).map_err(VerifyError::Payload)?;
    if signed.digest != expected.digest {
        return Err(VerifyError::DigestMismatch {
            expected: expected.digest.clone(),
            signed: signed.digest,
        });
    }
    if let Some(repository) = &expected.repository {
        let expected_repository = normalize_repository(repository);
        let signed_repository =
            normalize_repository(strip_tag_and_digest(&signed.docker_reference));
        if expected_repository != signed_repository {
            return Err(VerifyError::ReferenceMismatch {
                expected: expected_repository.to_string(),
                signed: signed.docker_reference.chars().take(300).collect(),
            });
        }
    }
    Ok(signed)
}

/// `host/path` of a reference: drops `@digest`, then a `:tag` after the last `/`.
fn strip_tag_and_digest(reference: &str) -> &str {
    let name = reference
        .split_once('@')
        .map_or(reference, |(name, _digest)| name);
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => name,
    }
}

/// A repository name with Docker's defaults applied, for comparison only.
#[derive(Debug, PartialEq, Eq)]
struct NormalizedRepository {
    host: String,
    path: String,
}

impl fmt::Display for NormalizedRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// Docker's rules (`distribution/reference` `ParseNormalizedNamed`): the first component is
/// a host if it contains `.` or `:` or is `localhost`; otherwise the name is on Docker Hub,
/// whose host is `docker.io` (`index.docker.io` is an alias) and whose one-segment names
/// live under `library/`.
fn normalize_repository(name: &str) -> NormalizedRepository {
    const HUB: &str = "docker.io";
    let (host, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_ascii_lowercase(), rest)
        }
        _ => (HUB.to_owned(), name),
    };
    let host = if host == "index.docker.io" {
        HUB.to_owned()
    } else {
        host
    };
    let path = if host == HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    NormalizedRepository { host, path }
}
