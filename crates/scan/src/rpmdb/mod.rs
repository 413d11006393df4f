//! The rpm package database: which packages an RPM-based image (RHEL, CentOS, Fedora, SUSE,
//! Amazon Linux, CBL-Mariner, …) has installed, with the files each one owns.
//!
//! rpm has kept its database in three on-disk formats over time, all found in real images
//! (paths `{var/lib,usr/lib/sysimage,usr/share}/rpm/…`):
//!
//! - **Berkeley DB hash** `Packages` (rpm ≤ 4.15; RHEL ≤ 8, CentOS, Amazon Linux 2), read by
//!   `bdb.rs` without libdb (rpm ≥ 4.16 does the same with its read-only `bdb_ro` backend);
//! - **NDB** `Packages.db` (rpm's own format, SUSE), read by `ndb.rs`;
//! - **SQLite** `rpmdb.sqlite` (rpm ≥ 4.16; Fedora 33+, RHEL 9, Mariner), read by `sqlite.rs`
//!   through SQLite itself (rusqlite), opened in memory and defensively.
//!
//! Each format only stores opaque records keyed by an instance number; every record is an
//! rpm header blob, decoded by `header.rs`. [`read`] returns one [`RpmPackage`] per header, in
//! instance order (rpm numbers headers as it installs them).
//!
//! Guarantees: the input is hostile. Every offset and count is checked, every chain walk is
//! cycle-safe, no allocation exceeds what the input size implies (header bytes in total never
//! exceed the input length, expanded file lists never exceed [`FILE_PATH_EXPANSION`] times
//! their header), and any malformed structure gives an [`RpmDbError`] rather than a panic. A
//! database that is structurally broken yields an error, not a silently shortened list,
//! because a missing package means missed vulnerabilities.
//!
//! Pseudo-packages such as `gpg-pubkey` (imported signing keys) are headers like any other and
//! are returned; they have no ARCH, so their `arch` is empty.

mod bdb;
mod header;
mod ndb;
mod sqlite;

pub use bdb::BdbError;
pub use header::HeaderError;
pub use ndb::NdbError;
pub use sqlite::SqliteError;

use header::{Header, tag, text};
use thiserror::Error;

/// The expanded file paths of one package may take at most this many times the bytes of its
/// header. Real headers spend far more than a path's worth of bytes on each file (digest,
/// size, mode, owner, flags), so this never trips on a genuine package.
pub const FILE_PATH_EXPANSION: usize = 8;

/// One installed package, as recorded in its rpm header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// Empty for headers without ARCH, such as `gpg-pubkey`.
    pub arch: String,
    pub source_rpm: Option<String>,
    pub vendor: Option<String>,
    pub license: Option<String>,
    pub modularity_label: Option<String>,
    /// Absolute paths of the files the package owns, for file ownership.
    pub files: Vec<String>,
}

impl RpmPackage {
    /// `[epoch:]version-release`, the form rpm advisories and version comparison use.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package name, taken from SOURCERPM `name-version-release.arch.rpm`
    /// (`openssl-3.0.7-1.el9.src.rpm` gives `openssl`). Version and release never contain
    /// `-`, and the arch (`src`, `nosrc`) never contains `.`, so splitting from the right is
    /// unambiguous even for names with dashes.
    pub fn source_name(&self) -> Option<String> {
        let stem = self.source_rpm.as_deref()?.strip_suffix(".rpm")?;
        let (name_version_release, _arch) = stem.rsplit_once('.')?;
        let (name_version, _release) = name_version_release.rsplit_once('-')?;
        let (name, _version) = name_version.rsplit_once('-')?;
        (!name.is_empty()).then(|| name.to_owned())
    }

    fn from_header_blob(blob: &[u8]) -> Result<Self, HeaderError> {
        let header = Header::parse(blob)?;
        let required = |tag: i32, name: &'static str| -> Result<String, HeaderError> {
            header
                .string(tag)?
                .filter(|value| !value.is_empty())
                .map(text)
                .ok_or(HeaderError::MissingTag { tag, name })
        };
        // rpm prints an absent tag as "(none)"; like go-rpmdb, that literal text means absent.
        let optional = |tag: i32| -> Result<Option<String>, HeaderError> {
            Ok(header
                .string(tag)?
                .filter(|value| !value.is_empty() && *value != b"(none)")
                .map(text))
        };
        Ok(Self {
            name: required(tag::NAME, "NAME")?,
            epoch: header.int32(tag::EPOCH)?,
            version: required(tag::VERSION, "VERSION")?,
            release: required(tag::RELEASE, "RELEASE")?,
            arch: optional(tag::ARCH)?.unwrap_or_default(),
            source_rpm: optional(tag::SOURCERPM)?,
            vendor: optional(tag::VENDOR)?,
            license: optional(tag::LICENSE)?,
            modularity_label: optional(tag::MODULARITYLABEL)?,
            files: header.file_paths(blob.len().saturating_mul(FILE_PATH_EXPANSION))?,
        })
    }
}

/// The on-disk format of an rpm database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpmDbFormat {
    BerkeleyDb,
    Ndb,
    Sqlite,
}

/// Recognises the format from the file's magic numbers alone.
pub fn detect(bytes: &[u8]) -> Option<RpmDbFormat> {
    if bdb::has_magic(bytes) {
        Some(RpmDbFormat::BerkeleyDb)
    } else if ndb::has_magic(bytes) {
        Some(RpmDbFormat::Ndb)
    } else if sqlite::has_magic(bytes) {
        Some(RpmDbFormat::Sqlite)
    } else {
        None
    }
}

/// Bounds on what one database may make the reader do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmDbLimits {
    /// More headers than this is an error (real images hold hundreds to a few thousand).
    pub max_packages: usize,
    /// A larger header blob is an error (rpm itself refuses data stores of 256 MiB or more;
    /// real headers stay below a few MiB).
    pub max_header_bytes: usize,
}

impl Default for RpmDbLimits {
    fn default() -> Self {
        Self {
            max_packages: 50_000,
            max_header_bytes: 64 << 20,
        }
    }
}

/// Why a database could not be read.
#[derive(Debug, Error)]
pub enum RpmDbError {
    #[error("not an rpm database: no Berkeley DB hash, NDB or SQLite signature")]
    UnknownFormat,
    #[error("Berkeley DB: {0}")]
    BerkeleyDb(#[from] BdbError),
    #[error("NDB: {0}")]
    Ndb(#[from] NdbError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] SqliteError),
    #[error("header instance {instance}: {source}")]
    Header {
        instance: u32,
        #[source]
        source: HeaderError,
    },
    #[error("header instance {instance} is {len} bytes, over the {limit}-byte limit")]
    HeaderTooLarge {
        instance: u32,
        len: usize,
        limit: usize,
    },
    #[error("the database holds more than {limit} packages")]
    TooManyPackages { limit: usize },
    #[error("the headers add up to more bytes than the {input_len}-byte database holds")]
    HeadersExceedInput { input_len: usize },
}

/// Reads every package header of an rpm database held entirely in memory.
pub fn read(bytes: &[u8], limits: &RpmDbLimits) -> Result<Vec<RpmPackage>, RpmDbError> {
    let format = detect(bytes).ok_or(RpmDbError::UnknownFormat)?;
    let mut collector = Collector {
        limits,
        input_len: bytes.len(),
        header_bytes: 0,
        packages: Vec::new(),
    };
    let mut visit = |instance: u32, blob: &[u8]| collector.add(instance, blob);
    match format {
        RpmDbFormat::BerkeleyDb => bdb::for_each_header(bytes, limits, &mut visit)?,
        RpmDbFormat::Ndb => ndb::for_each_header(bytes, limits, &mut visit)?,
        RpmDbFormat::Sqlite => sqlite::for_each_header(bytes, limits, &mut visit)?,
    }
    let mut packages = collector.packages;
    packages.sort_by_key(|(instance, _)| *instance);
    Ok(packages.into_iter().map(|(_, package)| package).collect())
}

/// What a format reader calls for each header blob it finds, with its instance number.
type Visit<'v> = dyn FnMut(u32, &[u8]) -> Result<(), RpmDbError> + 'v;

/// Fails before a reader allocates for a header it has only seen the declared size of.
fn check_header_size(instance: u32, len: usize, limits: &RpmDbLimits) -> Result<(), RpmDbError> {
    if len > limits.max_header_bytes {
        return Err(RpmDbError::HeaderTooLarge {
            instance,
            len,
            limit: limits.max_header_bytes,
        });
    }
    Ok(())
}

/// Decodes headers as the format readers hand them over, enforcing the limits.
struct Collector<'l> {
    limits: &'l RpmDbLimits,
    input_len: usize,
    header_bytes: usize,
    packages: Vec<(u32, RpmPackage)>,
}

impl Collector<'_> {
    fn add(&mut self, instance: u32, blob: &[u8]) -> Result<(), RpmDbError> {
        if self.packages.len() >= self.limits.max_packages {
            return Err(RpmDbError::TooManyPackages {
                limit: self.limits.max_packages,
            });
        }
        check_header_size(instance, blob.len(), self.limits)?;
        self.header_bytes = self.header_bytes.saturating_add(blob.len());
        if self.header_bytes > self.input_len {
            return Err(RpmDbError::HeadersExceedInput {
                input_len: self.input_len,
            });
        }
        let package = RpmPackage::from_header_blob(blob)
            .map_err(|source| RpmDbError::Header { instance, source })?;
        self.packages.push((instance, package));
        Ok(())
    }
}
