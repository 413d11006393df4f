//! What the scanner says is in an image: packages with their provenance, the distribution,
//! and the layers they came from. Detectors produce these; the matcher, the SBOM writers and
//! the registry consume them.

use serde::{Deserialize, Serialize};

/// The kind of package, which decides its ecosystem, its version scheme and its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    Deb,
    Apk,
    Rpm,
    Python,
    Npm,
    Go,
    Cargo,
    Maven,
    Gem,
    Composer,
}

impl PackageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Python => "python",
            PackageKind::Npm => "npm",
            PackageKind::Go => "go",
            PackageKind::Cargo => "cargo",
            PackageKind::Maven => "maven",
            PackageKind::Gem => "gem",
            PackageKind::Composer => "composer",
        }
    }

    pub fn is_os(self) -> bool {
        matches!(self, PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm)
    }

    /// The ecosystem key a language package is matched under (see
    /// [`crate::advisory::ecosystem_key`]); OS packages need the distribution, so `None`.
    pub fn language_ecosystem(self) -> Option<&'static str> {
        match self {
            PackageKind::Python => Some("pypi"),
            PackageKind::Npm => Some("npm"),
            PackageKind::Go => Some("go"),
            PackageKind::Cargo => Some("crates.io"),
            PackageKind::Maven => Some("maven"),
            PackageKind::Gem => Some("rubygems"),
            PackageKind::Composer => Some("packagist"),
            PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => None,
        }
    }
}

/// The distribution an image is built on, from `etc/os-release` and its relatives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` from os-release, lower case: `debian`, `ubuntu`, `alpine`, `rhel`, …
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `3.18.4`. Empty when the release has none (Debian sid).
    pub version_id: String,
    #[serde(default)]
    pub codename: Option<String>,
    #[serde(default)]
    pub pretty_name: Option<String>,
}

impl Distro {
    /// The DB ecosystem key for this distribution's packages: `debian:12`, `ubuntu:22.04`,
    /// `alpine:3.18`. Debian point releases (`12.4` in `debian_version`) use the major number;
    /// Alpine keys its secdb by `major.minor`.
    pub fn ecosystem_key(&self) -> Option<String> {
        let version = self.version_id.trim();
        let major_minor = || {
            let mut parts = version.split('.');
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) => format!("{a}.{b}"),
                (Some(a), None) => a.to_owned(),
                _ => String::new(),
            }
        };
        match self.id.as_str() {
            "debian" => {
                let major = version.split('.').next().unwrap_or_default();
                (!major.is_empty()).then(|| format!("debian:{major}"))
            }
            "ubuntu" => (!version.is_empty()).then(|| format!("ubuntu:{version}")),
            "alpine" => (!version.is_empty()).then(|| format!("alpine:{}", major_minor())),
            "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" | "fedora" => {
                let major = version.split('.').next().unwrap_or_default();
                (!major.is_empty()).then(|| format!("{}:{major}", self.id))
            }
            _ => None,
        }
    }

    /// The purl `distro` qualifier: `debian-12`, `alpine-3.18.4`.
    pub fn purl_qualifier(&self) -> String {
        if self.version_id.is_empty() {
            self.id.clone()
        } else {
            format!("{}-{}", self.id, self.version_id)
        }
    }
}

/// One installed package, with where it was found and which layer brought it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub kind: PackageKind,
    /// The package name as its ecosystem spells it (Maven: `artifactId`; see `namespace`).
    pub name: String,
    pub version: String,
    /// Maven `groupId`, npm scope (with `@`), Go module path prefix stays in `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The source package (dpkg `Source:`, apk `o:`, rpm `SOURCERPM`), when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// The file the package was read from, relative to the image root (no leading `/`).
    pub evidence: String,
    /// The OS package that owns the evidence file, for language packages installed by the
    /// distribution (Debian's `python3-requests`). Such packages match only the distribution's
    /// feed, through their owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The index (0-based, in manifest order) of the layer that introduced this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
}

impl Package {
    /// A package with only its kind, name, version and evidence file known.
    pub fn new(kind: PackageKind, name: &str, version: &str, evidence: &str) -> Package {
        Package {
            kind,
            name: name.to_owned(),
            version: version.to_owned(),
            namespace: None,
            source_name: None,
            source_version: None,
            arch: None,
            licenses: Vec::new(),
            evidence: evidence.to_owned(),
            owner: None,
            layer: None,
        }
    }

    /// The name used to look the package up in a vulnerability feed: the source package for
    /// distributions that key their data by it, the PEP 503 name for Python, `group:artifact`
    /// for Maven, `@scope/name` for npm.
    pub fn lookup_names(&self) -> Vec<String> {
        match self.kind {
            PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => {
                let mut names = vec![self.name.clone()];
                if let Some(source) = &self.source_name
                    && source != &self.name
                {
                    names.push(source.clone());
                }
                names
            }
            PackageKind::Python => vec![crate::advisory::normalize_pypi_name(&self.name)],
            PackageKind::Maven => match &self.namespace {
                Some(group) => vec![format!("{group}:{}", self.name)],
                None => vec![self.name.clone()],
            },
            PackageKind::Npm => match &self.namespace {
                Some(scope) => vec![format!("{scope}/{}", self.name)],
                None => vec![self.name.clone()],
            },
            PackageKind::Go | PackageKind::Cargo | PackageKind::Gem | PackageKind::Composer => {
                vec![self.name.clone()]
            }
        }
    }
}

/// Facts about one layer of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The digest of the layer blob as the manifest names it.
    pub digest: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry), computed
    /// while scanning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<String>,
    /// The `created_by` of the matching non-empty history entry in the image config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Everything found in an image: the merged view after applying every layer in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
    pub layers: Vec<LayerInfo>,
    pub packages: Vec<Package>,
    /// Things the scanner noticed but could not use (a file over a limit, a corrupt database),
    /// so a report can say what it did not see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
