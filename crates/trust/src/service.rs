//! The registry's trust service: it verifies every signature and attestation pushed to the
//! registry against every trust authority, records per manifest which authorities have
//! validly signed it and which signatures are invalid and why, keeps the verified SLSA
//! provenance as the image's build history, and holds the server's own signing key
//! (authority `bonded`).
//!
//! What counts as a signature (cosign's storage forms, see `../shared/notes/signing.md` §4):
//! - a manifest tagged `sha256-<hex>.sig` whose layers are simple-signing payloads carrying
//!   the `dev.cosignproject.cosign/signature` annotation (the tag names the signed digest);
//! - a manifest tagged `sha256-<hex>.att` whose layers are DSSE envelopes (attestations);
//! - an OCI 1.1 referrer (a manifest with `subject`) with such layers, or with a Sigstore
//!   bundle layer.
//!
//! Guarantees:
//! - Verdicts are recomputed from the stored bytes whenever they could change: when an
//!   attachment is pushed, at start-up (so a crash between a push and its verification
//!   loses nothing), and after any authority changes.
//! - Only verified facts are recorded as signers or build history; everything else is
//!   recorded as invalid with its reason.
//! - [`TrustService::generation`] moves after every change of a verdict, so caches built on
//!   verdicts (the pull policy's) see a signature on the next pull after its push.
//! - Nothing here talks to the network: blobs and manifests come from the stores.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use oci::{Digest, Manifest, ManifestKind, Reference, RepositoryName, Tag};
use registry::{ManifestObserver, StoredEvent};
use serde_json::{Value, json};
use store::{
    AttachmentKind, AttachmentRecord, AttachmentVia, AuthorityOrigin, AuthorityRow, BlobStore,
    MetaStore, Signers, StoreError, TrustStore,
};

use crate::attach::LayerContent;
use crate::cosign::{self, DSSE_MEDIA_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE};
use crate::keys::{PublicKey, SigningKey};
use crate::{bundle, dsse, provenance};

/// The authority the server's own key belongs to.
pub const SERVER_AUTHORITY: &str = "bonded";

/// What went wrong in the trust service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("authority {name:?}: {reason}")]
    Authority { name: String, reason: String },
    #[error("authority {name:?} is defined in the {origin} and cannot be changed through the API")]
    ReadOnlyAuthority { name: String, origin: &'static str },
    #[error("the server has no signing key")]
    NoServerKey,
}

/// A named set of public keys, parsed.
#[derive(Debug, Clone)]
pub struct Authority {
    pub name: String,
    pub keys: Vec<PublicKey>,
    pub origin: AuthorityOrigin,
}

/// Names an authority may have: they appear in policies, messages and URLs.
pub fn valid_authority_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Parses an authority's PEM keys; one bad key refuses the whole authority.
pub fn parse_authority(
    name: &str,
    pems: &[String],
    origin: AuthorityOrigin,
) -> Result<Authority, ServiceError> {
    let fail = |reason: String| ServiceError::Authority {
        name: name.chars().take(80).collect(),
        reason,
    };
    if !valid_authority_name(name) {
        return Err(fail(
            "names are 1 to 64 characters: lower-case letters, digits, '-', '_', '.'".into(),
        ));
    }
    if pems.len() > MAX_AUTHORITY_KEYS {
        return Err(fail(format!("more than {MAX_AUTHORITY_KEYS} keys")));
    }
    let keys = pems
        .iter()
        .enumerate()
        .map(|(i, pem)| {
            PublicKey::from_pem(pem.as_bytes()).map_err(|e| fail(format!("key {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Authority {
        name: name.to_owned(),
        keys,
        origin,
    })
}

/// Keys one authority may hold (each signature layer is tried against every key).
pub const MAX_AUTHORITY_KEYS: usize = 32;

/// Payload bytes verified per attachment manifest; layers beyond are recorded as not
/// verified.
pub const MAX_VERIFIED_BYTES_PER_MANIFEST: u64 = 64 << 20;

/// Verifications running at once (each on a blocking thread).
const CONCURRENT_VERIFICATIONS: usize = 2;

/// The trust service. Cheap to share (`Arc`).
pub struct TrustService {
    meta: Arc<dyn MetaStore>,
    trust: Arc<dyn TrustStore>,
    blobs: Arc<dyn BlobStore>,
    authorities: RwLock<Arc<Vec<Authority>>>,
    server_key: Option<Arc<SigningKey>>,
    generation: AtomicU64,
    /// Verifications running on the blocking pool at once.
    verifying: tokio::sync::Semaphore,
    /// Held (shared) while an attachment is verified and recorded, and (exclusive) while the
    /// authorities change and everything is re-verified, so a verdict computed with a key
    /// that is being removed can never be written after the re-verification.
    authority_change: tokio::sync::RwLock<()>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TrustService {
    /// Builds the service: stores the configuration's authorities (dropping configuration
    /// authorities no longer in the file), registers the server key as authority `bonded`,
    /// loads every authority and re-verifies every stored attachment.
    pub async fn start(
        meta: Arc<dyn MetaStore>,
        trust: Arc<dyn TrustStore>,
        blobs: Arc<dyn BlobStore>,
        configured: Vec<(String, Vec<String>)>,
        server_key: Option<Arc<SigningKey>>,
    ) -> Result<Arc<TrustService>, ServiceError> {
        let now = now();
        let mut names = Vec::new();
        for (name, pems) in configured {
            parse_authority(&name, &pems, AuthorityOrigin::Config)?;
            if name == SERVER_AUTHORITY {
                return Err(ServiceError::Authority {
                    name,
                    reason: "this name is reserved for the server's own key".into(),
                });
            }
            trust
                .put_authority(&AuthorityRow {
                    name: name.clone(),
                    keys: pems,
                    origin: AuthorityOrigin::Config,
                    updated_at: now,
                })
                .await?;
            names.push(name);
        }
        trust
            .prune_authorities(AuthorityOrigin::Config, &names)
            .await?;
        match &server_key {
            Some(key) => {
                trust
                    .put_authority(&AuthorityRow {
                        name: SERVER_AUTHORITY.to_owned(),
                        keys: vec![key.public_key().to_pem()],
                        origin: AuthorityOrigin::Server,
                        updated_at: now,
                    })
                    .await?
            }
            None => {
                trust
                    .prune_authorities(AuthorityOrigin::Server, &[])
                    .await?
            }
        }
        let service = Arc::new(TrustService {
            meta,
            trust,
            blobs,
            authorities: RwLock::new(Arc::new(Vec::new())),
            server_key,
            generation: AtomicU64::new(1),
            verifying: tokio::sync::Semaphore::new(CONCURRENT_VERIFICATIONS),
            authority_change: tokio::sync::RwLock::new(()),
        });
        service.reload_authorities().await?;
        service.reverify_all().await?;
        Ok(service)
    }

    /// Moves whenever a verdict may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn authorities(&self) -> Arc<Vec<Authority>> {
        match self.authorities.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    async fn reload_authorities(&self) -> Result<(), ServiceError> {
        let mut parsed = Vec::new();
        for row in self.trust.authorities().await? {
            match parse_authority(&row.name, &row.keys, row.origin) {
                Ok(a) => parsed.push(a),
                // Stored keys were valid when stored; a key this build cannot read is
                // skipped loudly rather than taking the registry down.
                Err(e) => tracing::error!(error = %e, "skipping an authority"),
            }
        }
        match self.authorities.write() {
            Ok(mut a) => *a = Arc::new(parsed),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(parsed),
        }
        Ok(())
    }

    /// `PUT /api/v1/authorities/<name>`: creates or replaces an API authority, then
    /// re-verifies every attachment against the new set.
    ///
    /// The work runs in its own task: a client that hangs up cannot leave the verdicts
    /// half re-verified.
    pub async fn put_authority(
        self: &Arc<Self>,
        name: &str,
        pems: Vec<String>,
    ) -> Result<(), ServiceError> {
        let this = Arc::clone(self);
        let name = name.to_owned();
        tokio::spawn(async move { this.replace_authority(&name, pems).await })
            .await
            .map_err(|e| ServiceError::Authority {
                name: String::new(),
                reason: format!("the update did not finish: {e}"),
            })?
    }

    async fn replace_authority(&self, name: &str, pems: Vec<String>) -> Result<(), ServiceError> {
        parse_authority(name, &pems, AuthorityOrigin::Api)?;
        let _exclusive = self.authority_change.write().await;
        if let Some(existing) = self.trust.authority(name).await?
            && existing.origin != AuthorityOrigin::Api
        {
            return Err(ServiceError::ReadOnlyAuthority {
                name: name.to_owned(),
                origin: match existing.origin {
                    AuthorityOrigin::Server => "server (its own signing key)",
                    _ => "configuration file",
                },
            });
        }
        if name == SERVER_AUTHORITY {
            return Err(ServiceError::ReadOnlyAuthority {
                name: name.to_owned(),
                origin: "server (its own signing key)",
            });
        }
        self.trust
            .put_authority(&AuthorityRow {
                name: name.to_owned(),
                keys: pems,
                origin: AuthorityOrigin::Api,
                updated_at: now(),
            })
            .await?;
        self.reload_authorities().await?;
        self.reverify_all_locked().await?;
        Ok(())
    }

    /// The stored form of an authority.
    pub async fn authority(&self, name: &str) -> Result<Option<AuthorityRow>, ServiceError> {
        Ok(self.trust.authority(name).await?)
    }

    /// Re-verifies every stored attachment, and drops the verdicts of tag attachments whose
    /// tag no longer points at them.
    pub async fn reverify_all(&self) -> Result<usize, ServiceError> {
        let _exclusive = self.authority_change.write().await;
        self.reverify_all_locked().await
    }

    async fn reverify_all_locked(&self) -> Result<usize, ServiceError> {
        self.trust.prune_stale_attachments().await?;
        let mut verified = 0;
        for candidate in self.trust.attachment_candidates().await? {
            let (Ok(repo), Ok(digest)) = (
                RepositoryName::from_str(&candidate.repository),
                Digest::from_str(&candidate.digest),
            ) else {
                continue;
            };
            let Some(stored) = self.meta.manifest_by_digest(&repo, &digest).await? else {
                continue;
            };
            let Ok(manifest) = Manifest::parse(Some(&stored.media_type), &stored.content) else {
                continue;
            };
            let tag = candidate.tag.as_deref().and_then(|t| Tag::from_str(t).ok());
            if self
                .examine_locked(&repo, &digest, &manifest, tag.as_ref())
                .await?
            {
                verified += 1;
            }
        }
        self.bump();
        Ok(verified)
    }

    /// Verifies `manifest` if it is an attachment and records the verdict. Returns whether
    /// it was one.
    async fn examine(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        manifest: &Manifest,
        tag: Option<&Tag>,
    ) -> Result<bool, ServiceError> {
        let _shared = self.authority_change.read().await;
        self.examine_locked(repo, digest, manifest, tag).await
    }

    /// [`Self::examine`], with the authority lock already held.
    async fn examine_locked(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        manifest: &Manifest,
        tag: Option<&Tag>,
    ) -> Result<bool, ServiceError> {
        let Some(found) = attachment_of(manifest, tag) else {
            return Ok(false);
        };
        let (report, signers) = self.verify_layers(&found, manifest).await;
        let record = AttachmentRecord {
            repository: repo.to_string(),
            source_digest: digest.to_string(),
            subject: found.subject.to_string(),
            via: found.via,
            kind: found.kind,
            report: report.to_string(),
            signers,
            verified_at: now(),
        };
        self.trust.record_attachment(&record).await?;
        self.bump();
        Ok(true)
    }

    /// Verifies each layer against every key of every authority.
    async fn verify_layers(&self, found: &Found, manifest: &Manifest) -> (Value, BTreeSet<String>) {
        let authorities = self.authorities();
        let mut signers = BTreeSet::new();
        let layers = match &manifest.kind {
            ManifestKind::Image { layers, .. } if layers.len() > cosign::MAX_SIGNATURE_LAYERS => {
                let reason = format!(
                    "the manifest has {} layers; at most {} signatures or attestations are read per image",
                    layers.len(),
                    cosign::MAX_SIGNATURE_LAYERS
                );
                return (report_json(found, Vec::new(), Some(reason)), signers);
            }
            ManifestKind::Image { layers, .. } => layers,
            ManifestKind::Index { .. } => {
                let reason = "an index is not a signature manifest".to_owned();
                return (report_json(found, Vec::new(), Some(reason)), signers);
            }
        };
        let mut entries = Vec::new();
        // The same blob and signature repeated across layers is verified once, and the bytes
        // verified per manifest are bounded: a push of a thousand layers that all point at one
        // large envelope costs one verification, not a thousand.
        let mut seen: BTreeMap<(String, Option<String>), Value> = BTreeMap::new();
        let mut budget = MAX_VERIFIED_BYTES_PER_MANIFEST;
        for (index, layer) in layers.iter().enumerate() {
            let signature = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                .cloned();
            let key = (layer.digest.to_string(), signature);
            let mut entry = match seen.get(&key) {
                Some(entry) => entry.clone(),
                None if layer.size > budget => invalid(format!(
                    "not verified: the layers of this manifest exceed {MAX_VERIFIED_BYTES_PER_MANIFEST} bytes"
                )),
                None => {
                    budget = budget.saturating_sub(layer.size);
                    let entry = self.verify_layer(found, layer, &authorities).await;
                    seen.insert(key, entry.clone());
                    entry
                }
            };
            // Only a signature signs: an attestation (a DSSE envelope, a bundle of another
            // predicate) in a signature manifest proves what its statement says, not that its
            // signer vouches for the image.
            let role = entry.get("role").and_then(Value::as_str);
            if found.kind == AttachmentKind::Signature
                && role == Some("signature")
                && let Some(names) = entry.get("authorities").and_then(Value::as_array)
            {
                signers.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            entry["layer"] = json!(index);
            entry["digest"] = json!(layer.digest.to_string());
            entry["media_type"] = json!(layer.media_type);
            entries.push(entry);
        }
        (report_json(found, entries, None), signers)
    }

    async fn verify_layer(
        &self,
        found: &Found,
        layer: &oci::Descriptor,
        authorities: &[Authority],
    ) -> Value {
        let kind = match layer.media_type.as_str() {
            SIMPLE_SIGNING_MEDIA_TYPE => LayerKind::SimpleSigning,
            DSSE_MEDIA_TYPE => LayerKind::Attestation,
            m if m == cosign::BUNDLE_MEDIA_TYPE => LayerKind::Bundle,
            other => {
                return invalid(format!(
                    "layer media type {other} is not a signature or attestation"
                ));
            }
        };
        let limit = crate::attach::payload_limit(&layer.media_type);
        if layer.size > limit {
            return invalid(format!(
                "the payload is {} bytes; at most {limit} are read",
                layer.size
            ));
        }
        let payload = match self.read_payload(&layer.digest, limit).await {
            Ok(p) => p,
            Err(reason) => return invalid(reason),
        };
        // Verification is CPU work proportional to the payload and the keys: it runs on the
        // blocking pool, a few at a time, so a hostile push cannot stall the request threads.
        let Ok(_permit) = self.verifying.acquire().await else {
            return invalid("the trust service is shutting down".to_owned());
        };
        let (found, layer, authorities) = (found.clone(), layer.clone(), authorities.to_vec());
        tokio::task::spawn_blocking(move || {
            verify_payload(kind, &found, &layer, &payload, &authorities)
        })
        .await
        .unwrap_or_else(|e| invalid(format!("verification failed: {e}")))
    }

    async fn read_payload(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, String> {
        let mut body = self
            .blobs
            .read(digest, None)
            .await
            .map_err(|e| format!("the payload blob {digest} cannot be read: {e}"))?;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| format!("the payload blob {digest} cannot be read: {e}"))?;
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(format!("the payload is larger than {limit} bytes"));
            }
            out.extend_from_slice(&chunk);
        }
        if Digest::compute(digest.algorithm(), &out) != *digest {
            return Err(format!("the payload blob does not hash to {digest}"));
        }
        Ok(out)
    }

    /// Who has validly signed `digest` in `repository`.
    pub async fn signers(&self, repository: &str, digest: &str) -> Result<Signers, StoreError> {
        self.trust.signers(repository, digest).await
    }

    /// The `GET …/signatures` document: authorities, every attachment's verdicts, build
    /// history.
    pub async fn signatures_view(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Value, ServiceError> {
        let signers = self
            .trust
            .signers(repo.as_str(), &digest.to_string())
            .await?;
        let attachments = self
            .trust
            .attachments(repo.as_str(), &digest.to_string())
            .await?;
        let mut signatures = Vec::new();
        let mut attestations = Vec::new();
        let mut builds = Vec::new();
        for a in attachments {
            let report: Value = serde_json::from_str(&a.report).unwrap_or(Value::Null);
            for layer in report
                .get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut entry = layer.clone();
                entry["source"] = json!(a.source_digest);
                entry["via"] = json!(a.via.as_str());
                if let Some(build) = layer.get("build").filter(|b| !b.is_null())
                    && layer.get("valid") == Some(&Value::Bool(true))
                {
                    let mut b = build.clone();
                    b["authorities"] = layer.get("authorities").cloned().unwrap_or(Value::Null);
                    b["attestation"] = json!(a.source_digest);
                    builds.push(b);
                }
                match layer.get("role").and_then(Value::as_str) {
                    Some("signature") => signatures.push(entry),
                    Some(_) => attestations.push(entry),
                    None => match a.kind {
                        AttachmentKind::Signature => signatures.push(entry),
                        AttachmentKind::Attestation => attestations.push(entry),
                    },
                }
            }
            if let Some(error) = report.get("error").filter(|e| !e.is_null()) {
                let entry = json!({ "source": a.source_digest, "via": a.via.as_str(), "valid": false, "reason": error });
                match a.kind {
                    AttachmentKind::Signature => signatures.push(entry),
                    AttachmentKind::Attestation => attestations.push(entry),
                }
            }
        }
        Ok(json!({
            "repository": repo.to_string(),
            "digest": digest.to_string(),
            "signed_by": signers.direct,
            "signed_by_index": signers.via_index,
            "signatures": signatures,
            "attestations": attestations,
            "build_history": builds,
        }))
    }

    /// A cosign signature of `digest` by the server key: the simple-signing payload naming
    /// `docker_reference` and the base64 signature, ready to be stored as a `.sig` layer.
    pub fn server_signature(
        &self,
        docker_reference: &str,
        digest: &Digest,
        annotations: &BTreeMap<String, String>,
    ) -> Result<LayerContent, ServiceError> {
        let key = self.server_key.as_ref().ok_or(ServiceError::NoServerKey)?;
        Ok(LayerContent::signed(
            key,
            docker_reference,
            digest,
            annotations,
        ))
    }
}

/// The predicate type prefix of OpenVEX attestations (`https://openvex.dev/ns/v0.2.0`).
pub const OPENVEX_PREFIX: &str = "https://openvex.dev/ns";
/// The largest OpenVEX predicate kept with its verdict.
const MAX_VEX_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    SimpleSigning,
    Attestation,
    Bundle,
}

/// Verifies one payload with every key of every authority; the entry says whether it is a
/// signature or an attestation (`role`), and which authorities verified it.
fn verify_payload(
    kind: LayerKind,
    found: &Found,
    layer: &oci::Descriptor,
    payload: &[u8],
    authorities: &[Authority],
) -> Value {
    match kind {
        LayerKind::SimpleSigning => {
            let annotations = layer.annotations.clone().unwrap_or_default();
            let Some(signature) = annotations.get(SIGNATURE_ANNOTATION) else {
                return invalid(format!(
                    "the layer has no {SIGNATURE_ANNOTATION} annotation"
                ));
            };
            let mut entry = verify_with_authorities(authorities, |key| {
                cosign::verify_simple_signing(
                    payload,
                    signature,
                    key,
                    &cosign::Expected {
                        digest: found.subject.clone(),
                        repository: None,
                    },
                )
                .map(|signed| {
                    json!({
                        "docker_reference": signed.docker_reference,
                        "optional": signed.optional,
                    })
                })
                .map_err(|e| e.to_string())
            });
            entry["role"] = json!("signature");
            entry
        }
        LayerKind::Attestation | LayerKind::Bundle => {
            let mut entry = verify_with_authorities(authorities, |key| {
                let statement = if kind == LayerKind::Bundle {
                    bundle::verify_bundle(payload, key, &found.subject)
                        .map_err(|e| e.to_string())?
                } else {
                    dsse::verify_attestation(payload, key, &found.subject)
                        .map_err(|e| e.to_string())?
                };
                let build = provenance::build_record(&statement)
                    .map(|b| serde_json::to_value(b).unwrap_or(Value::Null));
                // A bundle is a signature when its verified statement is cosign's image
                // signature, never because an (unsigned) manifest annotation says so.
                let role = if kind == LayerKind::Bundle && bundle::is_image_signature(&statement) {
                    "signature"
                } else {
                    "attestation"
                };
                let mut verified = json!({ "predicate_type": statement.predicate_type, "build": build, "role": role });
                // A verified OpenVEX statement is kept whole (bounded), so the evidence of
                // policies can apply it to the image's findings.
                if statement.predicate_type.starts_with(OPENVEX_PREFIX)
                    && serde_json::to_vec(&statement.predicate)
                        .is_ok_and(|b| b.len() <= MAX_VEX_BYTES)
                {
                    verified["vex"] = statement.predicate.clone();
                }
                Ok(verified)
            });
            if entry.get("role").is_none() {
                entry["role"] = json!(if kind == LayerKind::Attestation {
                    "attestation"
                } else {
                    "signature"
                });
            }
            if kind == LayerKind::Attestation
                && let Some(p) = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("predicateType"))
            {
                entry["annotated_predicate_type"] = json!(p);
            }
            entry
        }
    }
}

/// An attachment: what it signs, how it was found, what it carries.
#[derive(Debug, Clone)]
struct Found {
    subject: Digest,
    via: AttachmentVia,
    kind: AttachmentKind,
}

/// Whether `manifest` (pushed under `tag`) is a signature or attestation attachment.
fn attachment_of(manifest: &Manifest, tag: Option<&Tag>) -> Option<Found> {
    if let Some(tag) = tag {
        let t = tag.as_str();
        let (hex, kind) = if let Some(hex) = t
            .strip_prefix("sha256-")
            .and_then(|r| r.strip_suffix(".sig"))
        {
            (hex, AttachmentKind::Signature)
        } else if let Some(hex) = t
            .strip_prefix("sha256-")
            .and_then(|r| r.strip_suffix(".att"))
        {
            (hex, AttachmentKind::Attestation)
        } else {
            return referrer_attachment(manifest);
        };
        let subject = Digest::from_str(&format!("sha256:{hex}")).ok()?;
        return Some(Found {
            subject,
            via: AttachmentVia::Tag,
            kind,
        });
    }
    referrer_attachment(manifest)
}

fn referrer_attachment(manifest: &Manifest) -> Option<Found> {
    let subject = manifest.subject.as_ref()?.digest.clone();
    let ManifestKind::Image { layers, .. } = &manifest.kind else {
        return None;
    };
    let has = |m: &str| layers.iter().any(|l| l.media_type == m);
    let kind = if has(SIMPLE_SIGNING_MEDIA_TYPE) {
        AttachmentKind::Signature
    } else if has(cosign::BUNDLE_MEDIA_TYPE) {
        // Whether a bundle signs or attests is decided per layer from its verified statement
        // (`verify_payload`), never from the manifest's unsigned annotations.
        AttachmentKind::Signature
    } else if has(DSSE_MEDIA_TYPE) {
        AttachmentKind::Attestation
    } else {
        return None;
    };
    Some(Found {
        subject,
        via: AttachmentVia::Referrer,
        kind,
    })
}

fn invalid(reason: String) -> Value {
    json!({ "valid": false, "reason": reason })
}

fn report_json(found: &Found, layers: Vec<Value>, error: Option<String>) -> Value {
    json!({
        "subject": found.subject.to_string(),
        "kind": found.kind.as_str(),
        "via": found.via.as_str(),
        "layers": layers,
        "error": error,
    })
}

/// Tries `check` with every key of every authority. Valid when at least one key verifies;
/// the entry then names the authorities and key ids, and carries what `check` returned.
/// Invalid otherwise, with the most telling reason: a key that verified the signature but
/// whose payload names another image says more than "no key verifies".
fn verify_with_authorities(
    authorities: &[Authority],
    check: impl Fn(&PublicKey) -> Result<Value, String>,
) -> Value {
    let mut names = BTreeSet::new();
    let mut key_ids = BTreeSet::new();
    let mut facts = Value::Null;
    let mut reasons = BTreeSet::new();
    let mut tried = 0;
    for authority in authorities {
        for key in &authority.keys {
            tried += 1;
            match check(key) {
                Ok(f) => {
                    names.insert(authority.name.clone());
                    key_ids.insert(key.key_id());
                    facts = f;
                }
                Err(reason) => {
                    reasons.insert(reason);
                }
            }
        }
    }
    if !names.is_empty() {
        let mut entry = json!({ "valid": true, "authorities": names, "key_ids": key_ids });
        if let (Value::Object(e), Value::Object(f)) = (&mut entry, facts) {
            e.extend(f);
        }
        return entry;
    }
    let reason = if tried == 0 {
        "no trust authority is configured, so no signature can be verified".to_owned()
    } else {
        // Errors other than a plain mismatch (a payload naming another digest, a signature
        // that is not DER, a malformed envelope) come first: they are what a user needs.
        let telling: Vec<&String> = reasons
            .iter()
            .filter(|r| !r.contains("does not match the signed bytes"))
            .collect();
        match telling.first() {
            Some(r) => (*r).clone(),
            None => format!(
                "does not verify with any of the {tried} keys of authorities {}",
                authorities
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    invalid(reason)
}

#[async_trait]
impl ManifestObserver for TrustService {
    async fn manifest_stored(&self, event: StoredEvent<'_>) {
        if event.manifest.is_index() {
            // A new index may vouch for children that are already signed through it.
            self.bump();
        }
        if let Err(e) = self
            .examine(event.repository, event.digest, event.manifest, event.tag)
            .await
        {
            tracing::error!(repository = %event.repository, digest = %event.digest, error = %e,
                "cannot record the verification of a signature manifest");
        }
    }

    async fn manifest_deleted(&self, repository: &RepositoryName, reference: &Reference) {
        if let Reference::Tag(tag) = reference {
            let t = tag.as_str();
            let found = t.strip_prefix("sha256-").and_then(|r| {
                r.strip_suffix(".sig")
                    .map(|h| (h, AttachmentKind::Signature))
                    .or_else(|| {
                        r.strip_suffix(".att")
                            .map(|h| (h, AttachmentKind::Attestation))
                    })
            });
            if let Some((hex, kind)) = found
                && let Err(e) = self
                    .trust
                    .forget_tag_attachments(repository.as_str(), &format!("sha256:{hex}"), kind)
                    .await
            {
                tracing::error!(repository = %repository, tag = t, error = %e,
                    "cannot forget the signatures of a deleted tag");
            }
        }
        self.bump();
    }
}
