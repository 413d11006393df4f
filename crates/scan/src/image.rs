//! Where images come from: an OCI image layout directory (`oci:PATH[:TAG]`), a `docker save`
//! archive (`docker-archive:PATH`), or a registry (see [`crate::remote`]). Each source
//! resolves a reference to one or more image manifests (an index gives one per platform) and
//! opens layer blobs as byte streams. Manifests and configs are small and read whole, with a
//! size cap, and their digests are checked; layers are streamed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci::{Digest, Manifest, ManifestKind};
use serde::Deserialize;

/// Manifests, indexes and configs larger than this are refused (configs are JSON of a few KiB;
/// the registry refuses manifests over 4 MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{what} is not valid: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("no image named {wanted:?} in {location}; available: {available}")]
    NotFound {
        wanted: String,
        location: String,
        available: String,
    },
    #[error("the index has no manifest for platform {wanted}; available: {available}")]
    NoPlatform { wanted: String, available: String },
    #[error("registry: {0}")]
    Remote(String),
}

/// Which children of an index to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformChoice {
    /// `os/arch[/variant]`.
    One(String),
    All,
}

impl PlatformChoice {
    /// The host's platform in OCI spelling (`linux/amd64`, `linux/arm64`).
    pub fn host() -> PlatformChoice {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        PlatformChoice::One(format!("linux/{arch}"))
    }
}

/// One image manifest, resolved and ready to scan.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// What the user asked for, for reports.
    pub name: String,
    /// The image manifest's digest (`None` for a docker archive, which has no manifest).
    pub manifest_digest: Option<String>,
    pub platform: Option<String>,
    /// The image config: the source of `diff_ids`, history and labels.
    pub config: serde_json::Value,
    pub config_digest: String,
    pub layers: Vec<LayerRef>,
}

/// One layer to read.
#[derive(Debug, Clone)]
pub struct LayerRef {
    /// The blob digest as the manifest names it (for a docker archive, the diff_id).
    pub digest: String,
    pub size: Option<u64>,
    /// Where the bytes are, in the source's own terms.
    pub(crate) locator: Locator,
}

impl LayerRef {
    /// A layer that a [`BlobSource`] outside this crate finds by its digest (a registry's own
    /// blob store).
    pub fn by_digest(digest: Digest, size: Option<u64>) -> LayerRef {
        LayerRef {
            digest: digest.to_string(),
            size,
            locator: Locator::Remote(digest),
        }
    }
}

impl ResolvedImage {
    /// An image from a manifest and config its caller already holds and has verified (the
    /// registry's own store). Fails for an index or a config that is not JSON.
    pub fn from_parts(
        name: String,
        manifest_digest: &Digest,
        manifest: &Manifest,
        config_bytes: &[u8],
    ) -> Result<ResolvedImage, ImageError> {
        let ManifestKind::Image { config, layers } = &manifest.kind else {
            return Err(invalid(
                manifest_digest.to_string(),
                "an index is not an image",
            ));
        };
        let config_json: serde_json::Value = serde_json::from_slice(config_bytes)
            .map_err(|e| invalid(format!("config {}", config.digest), e))?;
        Ok(ResolvedImage {
            name,
            manifest_digest: Some(manifest_digest.to_string()),
            platform: config_platform(&config_json),
            config: config_json,
            config_digest: config.digest.to_string(),
            layers: layers
                .iter()
                .map(|l| LayerRef::by_digest(l.digest.clone(), Some(l.size)))
                .collect(),
        })
    }
}

/// `os/arch` from an image config.
fn config_platform(config: &serde_json::Value) -> Option<String> {
    match (
        config.get("os").and_then(|o| o.as_str()),
        config.get("architecture").and_then(|a| a.as_str()),
    ) {
        (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Locator {
    File(PathBuf),
    ArchiveRange { offset: u64, len: u64 },
    Remote(Digest),
}

/// Something layers can be read from.
pub trait BlobSource: Sync {
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}

impl ResolvedImage {
    /// `created_by` for each layer, from the config history entries that are not
    /// `empty_layer` (OCI image-spec `config.md`, "history").
    pub fn created_by(&self) -> Vec<Option<String>> {
        let history = self.config.get("history").and_then(|h| h.as_array());
        let non_empty: Vec<Option<String>> = history
            .into_iter()
            .flatten()
            .filter(|h| {
                !h.get("empty_layer")
                    .and_then(|e| e.as_bool())
                    .unwrap_or(false)
            })
            .map(|h| {
                h.get("created_by")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            })
            .collect();
        // Only trust the history when it lines up with the layers.
        if non_empty.len() == self.layers.len() {
            non_empty
        } else {
            vec![None; self.layers.len()]
        }
    }

    /// The `rootfs.diff_ids` the config claims (not verified here).
    pub fn claimed_diff_ids(&self) -> Vec<Option<String>> {
        let ids = self
            .config
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array());
        (0..self.layers.len())
            .map(|i| {
                ids.and_then(|ids| ids.get(i))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .collect()
    }
}

fn read_capped(mut reader: impl Read, what: &str, limit: u64) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    (&mut reader)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ImageError::Io {
            path: PathBuf::from(what),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(ImageError::TooLarge {
            what: what.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

pub(crate) fn verify(what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let actual = Digest::compute(expected.algorithm(), bytes);
    if &actual != expected {
        return Err(ImageError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

fn invalid(what: impl Into<String>, reason: impl std::fmt::Display) -> ImageError {
    ImageError::Invalid {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Does an index child's `platform` object match `os/arch[/variant]`?
pub(crate) fn platform_string(platform: &serde_json::Value) -> Option<String> {
    let os = platform.get("os")?.as_str()?;
    let arch = platform.get("architecture")?.as_str()?;
    Some(match platform.get("variant").and_then(|v| v.as_str()) {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    })
}

fn platform_matches(wanted: &str, actual: &str) -> bool {
    // `linux/arm64` matches `linux/arm64/v8`; an explicit variant must match exactly.
    actual == wanted || actual.starts_with(&format!("{wanted}/"))
}

/// Fetches a manifest by digest: its bytes and, when the source knows it, its media type.
pub(crate) type FetchManifest<'a> =
    dyn Fn(&Digest) -> Result<(Vec<u8>, Option<String>), ImageError> + 'a;

/// Reads a manifest and follows an index to the chosen platforms. Shared by every source:
/// `fetch` returns the bytes and media type of a manifest or blob by digest.
pub(crate) fn resolve_manifest(
    name: &str,
    digest: Digest,
    platform: &PlatformChoice,
    fetch_manifest: &FetchManifest<'_>,
    fetch_blob: &dyn Fn(&Digest) -> Result<Vec<u8>, ImageError>,
    locate: &dyn Fn(&oci::Descriptor) -> Locator,
) -> Result<Vec<ResolvedImage>, ImageError> {
    resolve_at(
        name,
        digest,
        platform,
        fetch_manifest,
        fetch_blob,
        locate,
        false,
    )
}

/// The most images one reference may expand to (`--platform all` on an index).
const MAX_PLATFORMS: usize = 64;

fn resolve_at(
    name: &str,
    digest: Digest,
    platform: &PlatformChoice,
    fetch_manifest: &FetchManifest<'_>,
    fetch_blob: &dyn Fn(&Digest) -> Result<Vec<u8>, ImageError>,
    locate: &dyn Fn(&oci::Descriptor) -> Locator,
    inside_index: bool,
) -> Result<Vec<ResolvedImage>, ImageError> {
    let (bytes, media_type) = fetch_manifest(&digest)?;
    verify(&format!("manifest {digest}"), &digest, &bytes)?;
    let manifest = Manifest::parse(media_type.as_deref(), &bytes)
        .map_err(|e| invalid(format!("manifest {digest}"), e))?;
    match manifest.kind {
        ManifestKind::Index { .. } if inside_index => Err(invalid(
            format!("manifest {digest}"),
            "an index inside an index is not an image",
        )),
        ManifestKind::Index { manifests } => {
            let mut available = Vec::new();
            let mut chosen = Vec::new();
            for child in &manifests {
                // Attestation manifests (BuildKit `unknown/unknown`) are not images.
                let Some(p) = child.platform.as_ref().and_then(platform_string) else {
                    continue;
                };
                if p == "unknown/unknown" {
                    continue;
                }
                available.push(p.clone());
                let wanted = match platform {
                    PlatformChoice::All => true,
                    PlatformChoice::One(w) => platform_matches(w, &p),
                };
                if wanted {
                    chosen.push(child.digest.clone());
                }
            }
            if matches!(platform, PlatformChoice::One(_)) {
                // `linux/arm` could match v6 and v7: take the first, as docker does.
                chosen.truncate(1);
            }
            if chosen.is_empty() {
                return Err(ImageError::NoPlatform {
                    wanted: match platform {
                        PlatformChoice::One(w) => w.clone(),
                        PlatformChoice::All => "all".into(),
                    },
                    available: available.join(", "),
                });
            }
            if chosen.len() > MAX_PLATFORMS {
                return Err(invalid(
                    format!("index {digest}"),
                    format!(
                        "{} platforms; at most {MAX_PLATFORMS} are scanned at once",
                        chosen.len()
                    ),
                ));
            }
            let mut out = Vec::new();
            for child in chosen {
                // One level of nesting only: an index of indexes is not an image.
                let mut images = resolve_at(
                    name,
                    child,
                    &PlatformChoice::All,
                    fetch_manifest,
                    fetch_blob,
                    locate,
                    true,
                )?;
                out.append(&mut images);
            }
            Ok(out)
        }
        ManifestKind::Image { config, layers } => {
            let config_bytes = fetch_blob(&config.digest)?;
            verify(
                &format!("config {}", config.digest),
                &config.digest,
                &config_bytes,
            )?;
            let config_json: serde_json::Value = serde_json::from_slice(&config_bytes)
                .map_err(|e| invalid(format!("config {}", config.digest), e))?;
            Ok(vec![ResolvedImage {
                name: name.to_owned(),
                manifest_digest: Some(digest.to_string()),
                platform: config_platform(&config_json),
                config: config_json,
                config_digest: config.digest.to_string(),
                layers: layers
                    .iter()
                    .map(|l| LayerRef {
                        digest: l.digest.to_string(),
                        size: Some(l.size),
                        locator: locate(l),
                    })
                    .collect(),
            }])
        }
    }
}

/// An OCI image layout directory (OCI image-spec `image-layout.md`).
pub struct OciLayout {
    root: PathBuf,
}

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<oci::Descriptor>,
}

impl OciLayout {
    pub fn new(root: &Path) -> OciLayout {
        OciLayout {
            root: root.to_owned(),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|source| ImageError::Io {
            path: path.clone(),
            source,
        })?;
        read_capped(file, &path.display().to_string(), MAX_DOCUMENT_BYTES)
    }

    /// Resolves `tag` (the `org.opencontainers.image.ref.name` annotation), or the only
    /// manifest of `index.json` when no tag is given.
    pub fn resolve(
        &self,
        tag: Option<&str>,
        platform: &PlatformChoice,
    ) -> Result<Vec<ResolvedImage>, ImageError> {
        let index_path = self.root.join("index.json");
        let file = File::open(&index_path).map_err(|source| ImageError::Io {
            path: index_path.clone(),
            source,
        })?;
        let bytes = read_capped(file, &index_path.display().to_string(), MAX_DOCUMENT_BYTES)?;
        let index: LayoutIndex = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(index_path.display().to_string(), e))?;
        let ref_name = |d: &oci::Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .cloned()
        };
        let chosen: Vec<&oci::Descriptor> = match tag {
            Some(t) => index
                .manifests
                .iter()
                .filter(|d| ref_name(d).as_deref() == Some(t))
                .collect(),
            None => index.manifests.iter().collect(),
        };
        let descriptor = match chosen.as_slice() {
            [one] => *one,
            _ => {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .map(|d| ref_name(d).unwrap_or_else(|| d.digest.to_string()))
                    .collect();
                return Err(ImageError::NotFound {
                    wanted: tag.unwrap_or("(the only image)").to_owned(),
                    location: self.root.display().to_string(),
                    available: available.join(", "),
                });
            }
        };
        let name = format!(
            "oci:{}{}",
            self.root.display(),
            tag.map(|t| format!(":{t}")).unwrap_or_default()
        );
        let media_type = descriptor.media_type.clone();
        let top = descriptor.digest.clone();
        resolve_manifest(
            &name,
            descriptor.digest.clone(),
            platform,
            &|d| {
                let bytes = self.read_blob(d)?;
                // The index names the media type of the top manifest; children carry their
                // own `mediaType` field, which `Manifest::parse` reads.
                Ok((bytes, (d == &top).then(|| media_type.clone())))
            },
            &|d| self.read_blob(d),
            &|l| Locator::File(self.blob_path(&l.digest)),
        )
    }
}

impl BlobSource for OciLayout {
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        match &layer.locator {
            Locator::File(path) => {
                let file = File::open(path).map_err(|source| ImageError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(Box::new(file))
            }
            _ => Err(invalid(&layer.digest, "not a layout blob")),
        }
    }
}

/// A `docker save` archive: `manifest.json` names the config and the layer files inside the
/// tar. The archive is indexed once (entry offsets), then read with seeks.
pub struct DockerArchive {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl DockerArchive {
    pub fn open(path: &Path) -> Result<DockerArchive, ImageError> {
        let io_err = |source| ImageError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        let mut entries = HashMap::new();
        for entry in archive.entries().map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .to_owned();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
            if entries.len() > 100_000 {
                return Err(invalid(
                    path.display().to_string(),
                    "more than 100000 entries",
                ));
            }
        }
        Ok(DockerArchive {
            path: path.to_owned(),
            entries,
        })
    }

    fn read_entry(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let &(offset, len) = self.entries.get(name).ok_or_else(|| {
            invalid(
                self.path.display().to_string(),
                format!("has no entry {name:?}"),
            )
        })?;
        if len > MAX_DOCUMENT_BYTES {
            return Err(ImageError::TooLarge {
                what: name.to_owned(),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        read_capped(self.open_range(offset, len)?, name, MAX_DOCUMENT_BYTES)
    }

    fn open_range(&self, offset: u64, len: u64) -> Result<impl Read + Send + use<>, ImageError> {
        let mut file = File::open(&self.path).map_err(|source| ImageError::Io {
            path: self.path.clone(),
            source,
        })?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|source| ImageError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(file.take(len))
    }

    /// The archive's images (`docker save` can hold several); `None` picks the only one.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Vec<ResolvedImage>, ImageError> {
        let manifest: Vec<DockerManifestEntry> =
            serde_json::from_slice(&self.read_entry("manifest.json")?)
                .map_err(|e| invalid("manifest.json", e))?;
        let chosen: Vec<&DockerManifestEntry> = match tag {
            Some(t) => manifest
                .iter()
                .filter(|m| m.repo_tags.iter().flatten().any(|r| r == t))
                .collect(),
            None => manifest.iter().collect(),
        };
        let entry = match chosen.as_slice() {
            [one] => *one,
            _ => {
                let available: Vec<String> = manifest
                    .iter()
                    .flat_map(|m| m.repo_tags.clone().unwrap_or_default())
                    .collect();
                return Err(ImageError::NotFound {
                    wanted: tag.unwrap_or("(the only image)").to_owned(),
                    location: self.path.display().to_string(),
                    available: available.join(", "),
                });
            }
        };
        let config_bytes = self.read_entry(&entry.config)?;
        let config_digest = Digest::compute(oci::Algorithm::Sha256, &config_bytes);
        let config: serde_json::Value =
            serde_json::from_slice(&config_bytes).map_err(|e| invalid(&entry.config, e))?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut layers = Vec::new();
        for (i, name) in entry.layers.iter().enumerate() {
            let &(offset, len) =
                self.entries
                    .get(name.trim_start_matches("./"))
                    .ok_or_else(|| {
                        invalid(
                            self.path.display().to_string(),
                            format!("has no layer entry {name:?}"),
                        )
                    })?;
            layers.push(LayerRef {
                digest: diff_ids.get(i).cloned().unwrap_or_else(|| name.clone()),
                size: Some(len),
                locator: Locator::ArchiveRange { offset, len },
            });
        }
        Ok(vec![ResolvedImage {
            name: format!("docker-archive:{}", self.path.display()),
            manifest_digest: None,
            platform: config_platform(&config),
            config,
            config_digest: config_digest.to_string(),
            layers,
        }])
    }
}

impl BlobSource for DockerArchive {
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        match layer.locator {
            Locator::ArchiveRange { offset, len } => Ok(Box::new(self.open_range(offset, len)?)),
            _ => Err(invalid(&layer.digest, "not an archive entry")),
        }
    }
}
