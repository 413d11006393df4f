//! Detectors: which files in a layer matter, and what each one says. The layer walker asks
//! [`classify`] about every regular file (by path, size and mode only, before reading a
//! byte), reads just the files it names, and hands their bytes to [`analyze`]. A detector
//! never sees the filesystem, so it cannot follow a link or escape the layer.

mod apk;
mod binaries;
mod dpkg;
mod language;
mod os_release;
mod rfc822;
mod rpm;

use crate::limits::Limits;
use crate::model::{Distro, Package};

/// A file the scanner wants to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    OsRelease {
        priority: u8,
    },
    DpkgStatus,
    DpkgList,
    ApkInstalled,
    RpmDatabase,
    Language(language::LanguageFile),
    JavaArchive,
    /// A file with an executable bit: maybe a Go or cargo-auditable binary.
    Executable,
}

/// What one file contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// A distribution, with the priority of the file that named it.
    pub distro: Option<(u8, Distro)>,
    pub packages: Vec<Package>,
    /// Files owned by an OS package: (path relative to the root, owning package name).
    pub owned_files: Vec<(String, String)>,
    /// What could not be read in this file, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Java archive extensions (jar, war, ear, and the Jenkins and Hudson plugin formats).
const JAVA_EXTENSIONS: [&str; 6] = [".jar", ".war", ".ear", ".par", ".jpi", ".hpi"];

/// `mode` is the tar entry's permission bits.
impl Evidence {
    /// About how many bytes this evidence keeps in memory.
    pub fn retained_bytes(&self) -> u64 {
        let package: usize = self
            .packages
            .iter()
            .map(|p| {
                96 + p.name.len()
                    + p.version.len()
                    + p.evidence.len()
                    + p.source_name.as_ref().map_or(0, String::len)
                    + p.source_version.as_ref().map_or(0, String::len)
                    + p.licenses.iter().map(String::len).sum::<usize>()
            })
            .sum();
        let owned: usize = self
            .owned_files
            .iter()
            .map(|(a, b)| 48 + a.len() + b.len())
            .sum();
        let notes: usize = self.notes.iter().map(String::len).sum();
        (package + owned + notes) as u64
    }
}

pub(crate) fn classify(path: &str, mode: u32) -> Option<FileKind> {
    if let Some(priority) = os_release::priority(path) {
        return Some(FileKind::OsRelease { priority });
    }
    if path == "var/lib/dpkg/status"
        || (path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with(".md5sums"))
    {
        return Some(FileKind::DpkgStatus);
    }
    if path.starts_with("var/lib/dpkg/info/") && path.ends_with(".list") {
        return Some(FileKind::DpkgList);
    }
    if path == "lib/apk/db/installed" || path == "usr/lib/apk/db/installed" {
        return Some(FileKind::ApkInstalled);
    }
    if rpm::is_database(path) {
        return Some(FileKind::RpmDatabase);
    }
    if let Some(lang) = language::classify(path) {
        return Some(FileKind::Language(lang));
    }
    if JAVA_EXTENSIONS.iter().any(|ext| path.ends_with(ext)) {
        return Some(FileKind::JavaArchive);
    }
    (mode & 0o111 != 0).then_some(FileKind::Executable)
}

/// Reads one file. Text formats are decoded lossily: a stray byte in a description must not
/// hide the packages around it.
pub(crate) fn analyze(kind: FileKind, path: &str, bytes: &[u8], limits: &Limits) -> Evidence {
    let mut evidence = Evidence::default();
    match kind {
        FileKind::Executable => {
            binaries::executable(path, bytes, &mut evidence);
            return evidence;
        }
        FileKind::JavaArchive => {
            binaries::java_archive(path, bytes, limits, &mut evidence);
            return evidence;
        }
        FileKind::RpmDatabase => {
            rpm::analyze(path, bytes, &mut evidence);
            return evidence;
        }
        _ => {}
    }
    let text = String::from_utf8_lossy(bytes);
    match kind {
        FileKind::OsRelease { priority } => {
            evidence.distro = os_release::parse(path, &text).map(|d| (priority, d));
        }
        FileKind::DpkgStatus => evidence.packages = dpkg::parse_status(&text, path),
        FileKind::DpkgList => {
            if let Some(owner) = dpkg::list_owner(path) {
                evidence.owned_files = dpkg::parse_list(&text)
                    .into_iter()
                    .map(|p| (p, owner.to_owned()))
                    .collect();
            }
        }
        FileKind::ApkInstalled => {
            let (packages, owned) = apk::parse_installed(&text, path);
            evidence.packages = packages;
            evidence.owned_files = owned;
        }
        FileKind::Language(lang) => evidence.packages = language::parse(lang, path, &text),
        FileKind::Executable | FileKind::JavaArchive | FileKind::RpmDatabase => {}
    }
    evidence
}
