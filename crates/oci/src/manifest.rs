//! Manifest validation and reference extraction.
//!
//! A registry must refuse a manifest it could not serve back meaningfully: unparseable JSON, an
//! unknown media type, a manifest whose `mediaType` field contradicts the `Content-Type` it was
//! pushed with, descriptors with malformed digests or negative sizes. [`Manifest::parse`]
//! checks all of that and returns the facts the store needs (referenced blobs and manifests,
//! the subject, the artifact type and annotations), without ever re-serializing the bytes.
//!
//! Hostile input: the size is capped by the caller at [`MAX_MANIFEST_BYTES`]; serde_json refuses
//! nesting deeper than 128 levels, so deeply nested JSON is an error, not a stack overflow;
//! duplicate keys in the typed fields are rejected by serde (`duplicate field`), so a manifest
//! cannot show one `layers` array to us and another to a client.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::media::{MediaType, is_foreign_layer};

/// The largest manifest accepted on PUT (4 MiB, as distribution and Trow).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    #[error("manifest is not valid JSON for {media_type}: {reason}")]
    Invalid {
        media_type: MediaType,
        reason: String,
    },
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch { header: String, body: String },
    #[error("manifest schemaVersion must be 2, found {found}")]
    SchemaVersion { found: i64 },
}

/// A content descriptor as it appears in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub platform: Option<serde_json::Value>,
}

/// What kind of document a manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image (or artifact) manifest: a config blob and layer blobs.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An index or manifest list: child manifests.
    Index { manifests: Vec<Descriptor> },
}

/// A validated manifest. Holds extracted facts only; the bytes stay with the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: MediaType,
    pub kind: ManifestKind,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: i64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Validates `bytes` pushed with `content_type`.
    ///
    /// When `content_type` is absent or not a manifest type (some clients send
    /// `application/json`), the body's own `mediaType` decides; if neither names a known type
    /// the manifest is refused.
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let header_type = content_type.and_then(MediaType::parse);
        // Peek at the body first so that an unknown Content-Type with a known body type works.
        let probe: Result<RawManifest, _> = serde_json::from_slice(bytes);
        let body_type = probe
            .as_ref()
            .ok()
            .and_then(|r| r.media_type.as_deref())
            .map(|s| (s, MediaType::parse(s)));

        let media_type = match (header_type, body_type) {
            (Some(h), Some((raw, Some(b)))) if h != b => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.as_str().to_owned(),
                    body: raw.to_owned(),
                });
            }
            (Some(h), Some((raw, None))) => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.as_str().to_owned(),
                    body: raw.to_owned(),
                });
            }
            (Some(h), _) => h,
            (None, Some((_, Some(b)))) if is_generic(content_type) => b,
            (None, _) => {
                return Err(ManifestError::UnsupportedMediaType {
                    media_type: content_type
                        .or(body_type.map(|(raw, _)| raw))
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
        };
        let raw = probe.map_err(|e| ManifestError::Invalid {
            media_type,
            reason: e.to_string(),
        })?;
        if raw.schema_version != 2 {
            return Err(ManifestError::SchemaVersion {
                found: raw.schema_version,
            });
        }
        let invalid = |reason: &str| ManifestError::Invalid {
            media_type,
            reason: reason.to_owned(),
        };
        let kind = if media_type.is_index() {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(invalid("an index must not have config or layers"));
            }
            ManifestKind::Index {
                manifests: raw.manifests.ok_or_else(|| invalid("missing manifests"))?,
            }
        } else {
            if raw.manifests.is_some() {
                return Err(invalid("an image manifest must not have manifests"));
            }
            ManifestKind::Image {
                config: raw.config.ok_or_else(|| invalid("missing config"))?,
                layers: raw.layers.ok_or_else(|| invalid("missing layers"))?,
            }
        };
        // Image spec 1.1, manifest.md: "artifactType ... MUST comply with RFC 6838" and, when
        // set, the config is usually the empty descriptor. We only check it is not empty.
        if raw.artifact_type.as_deref() == Some("") {
            return Err(invalid("artifactType must not be empty"));
        }
        Ok(Manifest {
            media_type,
            kind,
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations,
        })
    }

    /// Blobs this manifest requires the repository to hold: the config and every layer, except
    /// foreign (non-distributable) layers that carry `urls`.
    pub fn required_blobs(&self) -> Vec<&Digest> {
        match &self.kind {
            ManifestKind::Image { config, layers } => std::iter::once(config)
                .chain(
                    layers
                        .iter()
                        .filter(|l| !(is_foreign_layer(&l.media_type) && has_urls(l))),
                )
                .map(|d| &d.digest)
                .collect(),
            ManifestKind::Index { .. } => Vec::new(),
        }
    }

    /// Manifests this index requires the repository to hold.
    pub fn required_manifests(&self) -> Vec<&Digest> {
        match &self.kind {
            ManifestKind::Index { manifests } => manifests.iter().map(|d| &d.digest).collect(),
            ManifestKind::Image { .. } => Vec::new(),
        }
    }

    /// The artifact type reported by the referrers API (distribution-spec v1.1, "Listing
    /// Referrers"): `artifactType` if set, else the config's media type for an image manifest,
    /// else none.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref().or(match &self.kind {
            ManifestKind::Image { config, .. } => Some(config.media_type.as_str()),
            ManifestKind::Index { .. } => None,
        })
    }

    /// Whether this is a container image (something that runs, so something to scan): an
    /// image manifest with no `artifactType`, an image config (OCI or Docker), and only
    /// filesystem layers. Signatures, attestations and SBOMs stored as manifests are not.
    pub fn is_container_image(&self) -> bool {
        const CONFIGS: [&str; 2] = [
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.docker.container.image.v1+json",
        ];
        let ManifestKind::Image { config, layers } = &self.kind else {
            return false;
        };
        self.artifact_type.is_none()
            && CONFIGS.contains(&config.media_type.as_str())
            && layers.iter().all(|l| is_filesystem_layer(&l.media_type))
    }
}

impl Manifest {
    /// Whether a container runtime could run this, judged the way runtimes judge it and not by
    /// what the manifest says of itself: docker, containerd and podman ignore `artifactType`
    /// and `subject`. An image manifest may run when it has a filesystem layer. An index may
    /// run unless every manifest it lists is marked as an artifact and names no platform (a
    /// runtime picks children by platform, and one without a platform matches any): that is
    /// the shape of the referrers fallback index and of attestation lists.
    pub fn may_run(&self) -> bool {
        match &self.kind {
            ManifestKind::Image { layers, .. } => {
                layers.iter().any(|l| is_filesystem_layer(&l.media_type))
            }
            ManifestKind::Index { manifests } => manifests.iter().any(|m| {
                let platform_os = m
                    .platform
                    .as_ref()
                    .and_then(|p| p.get("os"))
                    .and_then(|os| os.as_str());
                m.artifact_type.is_none() || platform_os.is_some_and(|os| os != "unknown")
            }),
        }
    }

    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index { .. })
    }
}

/// OCI `application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]` (and the non-distributable
/// variants) and Docker's `rootfs.diff.tar[.gzip]` (and foreign) layer types.
fn is_filesystem_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

fn has_urls(d: &Descriptor) -> bool {
    d.urls.as_ref().is_some_and(|u| !u.is_empty())
}

fn is_generic(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence.is_empty()
                || essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("application/octet-stream")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const D2: &str = "sha256:9785108e788a86ba71e2e6a315ecca4917de050f0eea9980aec7d70c57a6154b";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":16}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_image_manifest() {
        let m =
            Manifest::parse(Some(MediaType::OciManifest.as_str()), image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, MediaType::OciManifest);
        assert_eq!(m.required_blobs().len(), 2);
        assert_eq!(
            m.effective_artifact_type(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn container_images_are_told_from_artifacts() {
        let parse = |text: &str| {
            Manifest::parse(Some(MediaType::OciManifest.as_str()), text.as_bytes()).unwrap()
        };
        assert!(parse(&image("")).is_container_image());
        assert!(
            !parse(&image(r#","artifactType":"application/vnd.example+json""#))
                .is_container_image()
        );
        // A cosign signature: image config, but a simple-signing payload as its layer.
        let sig = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{D2}","size":16}}]}}"#
        );
        assert!(!parse(&sig).is_container_image());
    }

    #[test]
    fn subject_and_artifact_type() {
        let extra = format!(
            r#","artifactType":"application/vnd.example+json","subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":7}},"annotations":{{"k":"v"}}"#
        );
        let m = Manifest::parse(
            Some(MediaType::OciManifest.as_str()),
            image(&extra).as_bytes(),
        )
        .unwrap();
        assert_eq!(m.subject.as_ref().unwrap().digest.to_string(), D1);
        assert_eq!(
            m.effective_artifact_type(),
            Some("application/vnd.example+json")
        );
    }

    #[test]
    fn refuses_bad_manifests() {
        let ct = Some(MediaType::OciManifest.as_str());
        assert!(Manifest::parse(ct, b"not json").is_err());
        assert!(Manifest::parse(ct, b"{}").is_err());
        assert!(matches!(
            Manifest::parse(Some("application/vnd.foo"), image("").as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
                | Err(ManifestError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            Manifest::parse(Some(MediaType::OciIndex.as_str()), image("").as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        let bad_digest = image("").replace(D2, "sha256:1234");
        assert!(Manifest::parse(ct, bad_digest.as_bytes()).is_err());
        let negative = image("").replace("\"size\":16", "\"size\":-1");
        assert!(Manifest::parse(ct, negative.as_bytes()).is_err());
        let dup = image(r#","layers":[]"#);
        assert!(
            Manifest::parse(ct, dup.as_bytes()).is_err(),
            "duplicate key"
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Manifest::parse(ct, deep.as_bytes()).is_err());
        let v1 = image("").replace("\"schemaVersion\":2", "\"schemaVersion\":1");
        assert!(matches!(
            Manifest::parse(ct, v1.as_bytes()),
            Err(ManifestError::SchemaVersion { found: 1 })
        ));
    }

    #[test]
    fn generic_content_type_falls_back_to_body() {
        let m = Manifest::parse(Some("application/json"), image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, MediaType::OciManifest);
        let no_type = image("").replace(
            r#""mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            "",
        );
        assert!(Manifest::parse(None, no_type.as_bytes()).is_err());
        assert!(Manifest::parse(Some(MediaType::OciManifest.as_str()), no_type.as_bytes()).is_ok());
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D2}","size":16,"urls":["https://example.com/l"]}}]}}"#
        );
        let m =
            Manifest::parse(Some(MediaType::DockerManifest.as_str()), docker.as_bytes()).unwrap();
        assert_eq!(m.required_blobs().len(), 1);
    }

    #[test]
    fn index_children() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":2,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = Manifest::parse(Some(MediaType::OciIndex.as_str()), index.as_bytes()).unwrap();
        assert_eq!(m.required_manifests().len(), 1);
        assert!(m.required_blobs().is_empty());
        assert_eq!(m.effective_artifact_type(), None);
    }
}
