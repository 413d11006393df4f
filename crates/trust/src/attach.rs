//! Signing and verifying an image in a repository: finding its signatures and attestations
//! (OCI 1.1 referrers first, then cosign's `sha256-<hex>.sig`/`.att` tags), verifying each,
//! and writing new ones the way cosign stores them (a layer appended to the tag's manifest).
//!
//! The repository is reached through [`Repository`], which the caller implements over a
//! registry client (the CLI) or the registry itself; this module does no I/O of its own.
//!
//! Guarantees: every blob read is bounded ([`MAX_PAYLOAD_BYTES`]) and verified against its
//! digest by the accessor; at most [`cosign::MAX_SIGNATURE_LAYERS`] layers are read per
//! manifest and at most [`MAX_REFERRER_MANIFESTS`] referrers; a verdict names the exact
//! reason a signature was refused.

use std::collections::BTreeMap;

use oci::{Digest, Manifest, ManifestKind, MediaType};
use serde_json::Value;

use crate::cosign::{
    self, AttachmentKind, DSSE_MEDIA_TYPE, Expected, LayerDescriptor, MAX_PAYLOAD_BYTES,
    SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE,
};
use crate::dsse::{self, Statement};
use crate::keys::{PublicKey, SigningKey};
use crate::{bundle, payload};

/// Referrer manifests holding signatures (or attestations) read for one image.
pub const MAX_REFERRER_MANIFESTS: usize = 64;
/// Referrer manifests fetched for one image, relevant or not.
pub const MAX_REFERRERS_READ: usize = 512;

/// A manifest as fetched: its bytes, media type and digest.
pub type Document = (Vec<u8>, Option<String>, Digest);

/// One repository of a registry, as this module needs it. Errors are messages.
pub trait Repository {
    /// The manifest at `reference` (tag or digest): bytes, media type, digest; `None` if
    /// there is none.
    fn manifest(&self, reference: &str) -> Result<Option<Document>, String>;
    /// A blob, at most `max_bytes`, verified against `digest`.
    fn blob(&self, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>, String>;
    /// The referrers of `digest`; `None` when the registry has no referrers API.
    fn referrers(&self, digest: &Digest) -> Result<Option<Vec<oci::Descriptor>>, String>;
    fn push_blob(&self, bytes: &[u8]) -> Result<Digest, String>;
    fn push_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, String>;
}

/// A signature or attestation layer found for an image, and what verifying it found.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Where it was found: `referrer sha256:…` or the tag.
    pub source: String,
    pub layer: usize,
    /// The verified payload (simple signing) or statement (attestation), or why it failed.
    pub outcome: Result<Value, String>,
}

/// A signature layer ready to be stored: the payload blob and its descriptor.
#[derive(Debug, Clone)]
pub struct LayerContent {
    pub payload: Vec<u8>,
    pub descriptor: LayerDescriptor,
}

impl LayerContent {
    /// Signs `digest` with `key` in cosign's simple-signing form.
    pub fn signed(
        key: &SigningKey,
        docker_reference: &str,
        digest: &Digest,
        annotations: &BTreeMap<String, String>,
    ) -> LayerContent {
        use base64::Engine;
        let payload = payload::simple_signing_payload(docker_reference, digest, annotations);
        let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload));
        let descriptor = LayerDescriptor {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
            digest: Digest::compute(oci::Algorithm::Sha256, &payload),
            size: payload.len() as u64,
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), signature)]),
        };
        LayerContent {
            payload,
            descriptor,
        }
    }
}

/// Appends a layer to the attachment manifest at `tag` (creating it) and pushes it.
pub fn append_to_tag(
    repo: &dyn Repository,
    tag: &str,
    blob: &[u8],
    layer: LayerDescriptor,
) -> Result<Digest, String> {
    let existing = repo.manifest(tag)?.map(|(bytes, _, _)| bytes);
    let built = cosign::append_layer(existing.as_deref(), layer).map_err(|e| e.to_string())?;
    repo.push_blob(blob)?;
    repo.push_blob(&built.config)?;
    repo.push_manifest(tag, MediaType::OciManifest.as_str(), &built.manifest)
}

/// Signs `digest` as `docker_reference` (`host/repository`) and stores the signature under
/// cosign's `.sig` tag. Returns the tag.
pub fn sign(
    repo: &dyn Repository,
    key: &SigningKey,
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<String, String> {
    let layer = LayerContent::signed(key, docker_reference, digest, annotations);
    let tag = cosign::signature_tag(digest, AttachmentKind::Signature);
    append_to_tag(repo, &tag, &layer.payload, layer.descriptor)?;
    Ok(tag)
}

/// Attests `digest`: an in-toto statement about `subject_name` with `predicate`, in a DSSE
/// envelope signed by `key`, stored under cosign's `.att` tag. Returns the tag.
pub fn attest(
    repo: &dyn Repository,
    key: &SigningKey,
    subject_name: &str,
    digest: &Digest,
    predicate_type: &str,
    predicate: Value,
) -> Result<String, String> {
    let statement = dsse::statement(subject_name, digest, predicate_type, predicate);
    let envelope = dsse::sign_envelope(key, dsse::INTOTO_PAYLOAD_TYPE, &statement);
    // cosign's attestation layers carry the predicate type and an empty signature
    // annotation: the signature is inside the envelope (`static.NewAttestation`).
    let layer = LayerDescriptor {
        media_type: DSSE_MEDIA_TYPE.to_owned(),
        digest: Digest::compute(oci::Algorithm::Sha256, &envelope),
        size: envelope.len() as u64,
        annotations: BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            (
                cosign::PREDICATE_TYPE_ANNOTATION.to_owned(),
                predicate_type.to_owned(),
            ),
        ]),
    };
    let tag = cosign::signature_tag(digest, AttachmentKind::Attestation);
    append_to_tag(repo, &tag, &envelope, layer)?;
    Ok(tag)
}

/// An attachment manifest found for an image: where, and its layers (or why they could not
/// be read).
type Found = (String, Result<Vec<oci::Descriptor>, String>);

/// The attachment manifests of `digest` that may hold `kind`: referrers with layers of that
/// kind first, then the cosign tag.
fn attachment_manifests(
    repo: &dyn Repository,
    digest: &Digest,
    kind: AttachmentKind,
) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    if let Some(referrers) = repo.referrers(digest)? {
        let mut relevant_found = 0;
        for referrer in referrers.iter().take(MAX_REFERRERS_READ) {
            if relevant_found == MAX_REFERRER_MANIFESTS {
                break;
            }
            let Some((bytes, media_type, _)) = repo.manifest(&referrer.digest.to_string())? else {
                continue;
            };
            let layers = layers_of(&bytes, media_type.as_deref());
            let relevant = match &layers {
                Ok(layers) => layers.iter().any(|l| holds(kind, &l.media_type)),
                Err(_) => true,
            };
            if relevant {
                relevant_found += 1;
                found.push((format!("referrer {}", referrer.digest), layers));
            }
        }
    }
    let tag = cosign::signature_tag(digest, kind);
    if let Some((bytes, media_type, _)) = repo.manifest(&tag)? {
        found.push((
            format!("tag {tag}"),
            layers_of(&bytes, media_type.as_deref()),
        ));
    }
    Ok(found)
}

/// Finds and verifies every signature of `digest` with `key`. `repository` is the
/// `host/repository` payloads must name (`None`: any).
pub fn verify(
    repo: &dyn Repository,
    key: &PublicKey,
    digest: &Digest,
    repository: Option<&str>,
) -> Result<Vec<Verdict>, String> {
    let expected = Expected {
        digest: digest.clone(),
        repository: repository.map(str::to_owned),
    };
    verdicts(
        repo,
        digest,
        AttachmentKind::Signature,
        |layer, blob| match layer.media_type.as_str() {
            SIMPLE_SIGNING_MEDIA_TYPE => {
                let signature = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                    .ok_or_else(|| format!("the layer has no {SIGNATURE_ANNOTATION} annotation"))?;
                cosign::verify_simple_signing(blob, signature, key, &expected)
                    .map_err(|e| e.to_string())?;
                serde_json::from_slice(blob).map_err(|e| e.to_string())
            }
            _ => {
                let statement =
                    bundle::verify_bundle(blob, key, digest).map_err(|e| e.to_string())?;
                // A bundle signs the image only if its verified statement is cosign's image
                // signature; one of another predicate is an attestation.
                if !bundle::is_image_signature(&statement) {
                    return Err(format!(
                        "the bundle is an attestation ({}), not a signature",
                        statement.predicate_type
                    ));
                }
                Ok(statement_json(&statement))
            }
        },
    )
}

/// Finds and verifies every attestation of `digest` with `key`, keeping those whose
/// predicate type is `predicate_type` (when given).
pub fn verify_attestations(
    repo: &dyn Repository,
    key: &PublicKey,
    digest: &Digest,
    predicate_type: Option<&str>,
) -> Result<Vec<Verdict>, String> {
    verdicts(repo, digest, AttachmentKind::Attestation, |_, blob| {
        let statement = dsse::verify_attestation(blob, key, digest).map_err(|e| e.to_string())?;
        if let Some(wanted) = predicate_type
            && statement.predicate_type != wanted
        {
            return Err(format!(
                "the predicate type is {}, not {wanted}",
                statement.predicate_type
            ));
        }
        Ok(statement_json(&statement))
    })
}

fn statement_json(statement: &Statement) -> Value {
    serde_json::to_value(statement).unwrap_or(Value::Null)
}

fn verdicts(
    repo: &dyn Repository,
    digest: &Digest,
    kind: AttachmentKind,
    check: impl Fn(&oci::Descriptor, &[u8]) -> Result<Value, String>,
) -> Result<Vec<Verdict>, String> {
    let mut out = Vec::new();
    for (source, layers) in attachment_manifests(repo, digest, kind)? {
        let layers = match layers {
            Ok(layers) => layers,
            Err(reason) => {
                out.push(Verdict {
                    source,
                    layer: 0,
                    outcome: Err(reason),
                });
                continue;
            }
        };
        for (index, layer) in layers.iter().enumerate() {
            if !holds(kind, &layer.media_type) {
                continue;
            }
            let limit = payload_limit(&layer.media_type);
            let outcome = if layer.size > limit {
                Err(format!(
                    "the payload is {} bytes; at most {limit} are read",
                    layer.size
                ))
            } else {
                repo.blob(&layer.digest, limit)
                    .and_then(|blob| check(layer, &blob))
            };
            out.push(Verdict {
                source: source.clone(),
                layer: index,
                outcome,
            });
        }
    }
    Ok(out)
}

/// How much of a layer is read: simple-signing payloads are small; attestations carry whole
/// SBOMs and provenance documents.
pub fn payload_limit(media_type: &str) -> u64 {
    if media_type == SIMPLE_SIGNING_MEDIA_TYPE {
        MAX_PAYLOAD_BYTES as u64
    } else {
        dsse::MAX_ATTESTATION_BYTES as u64
    }
}

fn holds(kind: AttachmentKind, media_type: &str) -> bool {
    match kind {
        AttachmentKind::Signature => {
            media_type == SIMPLE_SIGNING_MEDIA_TYPE || media_type == cosign::BUNDLE_MEDIA_TYPE
        }
        _ => media_type == DSSE_MEDIA_TYPE,
    }
}

fn layers_of(bytes: &[u8], media_type: Option<&str>) -> Result<Vec<oci::Descriptor>, String> {
    let manifest = Manifest::parse(media_type, bytes).map_err(|e| e.to_string())?;
    match manifest.kind {
        ManifestKind::Image { layers, .. } if layers.len() > cosign::MAX_SIGNATURE_LAYERS => {
            Err(format!(
                "the signature manifest has {} layers; at most {} are read",
                layers.len(),
                cosign::MAX_SIGNATURE_LAYERS
            ))
        }
        ManifestKind::Image { layers, .. } => Ok(layers),
        ManifestKind::Index { .. } => Err("an index is not a signature manifest".to_owned()),
    }
}
