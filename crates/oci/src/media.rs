//! Manifest media types: the one place that knows which documents a registry stores as
//! manifests and how they are shaped.

use std::fmt;

/// The manifest media types Bonded accepts.
///
/// Docker schema 1 (`application/vnd.docker.distribution.manifest.v1+json` and its signed
/// variant) is deliberately absent: it is deprecated, unsigned-in-practice and distribution
/// itself refuses it by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl MediaType {
    pub const ALL: [MediaType; 4] = [
        MediaType::OciManifest,
        MediaType::OciIndex,
        MediaType::DockerManifest,
        MediaType::DockerManifestList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::OciManifest => "application/vnd.oci.image.manifest.v1+json",
            MediaType::OciIndex => "application/vnd.oci.image.index.v1+json",
            MediaType::DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
            MediaType::DockerManifestList => {
                "application/vnd.docker.distribution.manifest.list.v2+json"
            }
        }
    }

    /// Parses a media type, ignoring parameters (`; charset=utf-8`) and case.
    pub fn parse(s: &str) -> Option<MediaType> {
        let essence = s.split(';').next().unwrap_or("").trim();
        MediaType::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(essence))
    }

    /// An index lists other manifests; an image manifest lists blobs.
    pub fn is_index(self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Layer media types that may live outside the registry (`urls` on the descriptor), so a
/// manifest that names them is valid even if the registry does not hold the blob.
pub(crate) fn is_foreign_layer(media_type: &str) -> bool {
    media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}
