//! Version comparison for every ecosystem the scanner matches.
//!
//! Matching an installed package against an advisory means asking "is this version before
//! that fixed version?", and every ecosystem answers differently: Debian's `1.0~rc1` sorts
//! before `1.0`, RPM's `1.0^post` after it, Maven's `1.0-SNAPSHOT` before `1.0` but `1.0-sp`
//! after, PEP 440's `1.0-1` is a post-release. Each scheme lives in its own file and follows
//! the authority named in that file's header, not a generic "loose semver"
//! (notes/scanning.md section 2). The algorithms are hand-written: no permissively licensed
//! Rust crate covers these schemes with the native tools' exact semantics (the `deb-version7`
//! port of dpkg is GPL-3, the `semver` crate implements Cargo's flavour rather than npm's
//! ranges, and `pep440_rs` refuses the legacy versions PyPI data still carries).
//!
//! What this module guarantees:
//! - every input, however malformed, gives an `Err` or a sane result, never a panic;
//!   inputs longer than [`MAX_VERSION_LEN`] bytes are refused, so time and memory are bounded;
//! - numbers of any length compare exactly (they are kept as digit strings), so
//!   `999999999999999999999 < 1000000000000000000000` everywhere;
//! - [`Version`] is a parsed form: parse the installed version once, then compare it with
//!   many advisory events without re-parsing.

mod apk;
mod composer;
mod dpkg;
mod go;
mod maven;
mod npm;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;
use std::fmt;

pub use apk::ApkVersion;
pub use composer::ComposerVersion;
pub use dpkg::DpkgVersion;
pub use go::{GoVersion, go_toolchain_to_semver};
pub use maven::MavenVersion;
pub use npm::{MAX_RANGE_LEN, NpmRange};
pub use pep440::Pep440Version;
pub use rpm::RpmVersion;
pub use rubygems::GemVersion;
pub use semver::SemverVersion;

/// The longest version string any scheme accepts, in bytes. Real versions are far shorter
/// (Debian's longest are under 100 bytes); the cap bounds parse time, memory and, for Maven,
/// the nesting depth of sub-lists.
pub const MAX_VERSION_LEN: usize = 1024;

/// Errors from parsing a version or an npm range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{scheme} version is empty")]
    Empty { scheme: &'static str },
    #[error("{scheme} version is {len} bytes long, more than the limit of {max}")]
    TooLong {
        scheme: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid {scheme} version {input:?} at byte {offset}: {reason}")]
    Invalid {
        scheme: &'static str,
        input: String,
        offset: usize,
        reason: &'static str,
    },
    #[error("npm range is {len} bytes long, more than the limit of {max}")]
    RangeTooLong { len: usize, max: usize },
    #[error("invalid npm range {input:?}: {reason} ({detail:?})")]
    InvalidRange {
        input: String,
        reason: &'static str,
        detail: String,
    },
}

impl VersionError {
    pub(crate) fn invalid(
        scheme: Scheme,
        input: &str,
        offset: usize,
        reason: &'static str,
    ) -> Self {
        VersionError::Invalid {
            scheme: scheme.name(),
            input: input.to_owned(),
            offset,
            reason,
        }
    }
}

/// The version schemes, one per comparison authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Debian and Ubuntu: Debian Policy 5.6.12, `deb-version(7)`.
    Dpkg,
    /// Alpine, Wolfi, Chainguard: apk-tools `src/version.c`.
    Apk,
    /// RHEL and the other RPM distributions: rpm `rpmvercmp` over `[epoch:]version[-release]`.
    Rpm,
    /// PyPI: PEP 440 as `packaging` implements it.
    Pep440,
    /// OSV `SEMVER` ranges, npm, crates.io, Bitnami: SemVer 2.0.0 section 11.
    Semver,
    /// Go modules and the Go toolchain: `golang.org/x/mod/semver`.
    Go,
    /// Maven: `ComparableVersion` (maven-artifact 3.8).
    Maven,
    /// RubyGems: `Gem::Version`.
    RubyGems,
    /// Packagist: PHP `version_compare`, as Composer uses it.
    Composer,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 9] = [
        Scheme::Dpkg,
        Scheme::Apk,
        Scheme::Rpm,
        Scheme::Pep440,
        Scheme::Semver,
        Scheme::Go,
        Scheme::Maven,
        Scheme::RubyGems,
        Scheme::Composer,
    ];

    /// The scheme for a DB ecosystem key (see `advisory::ecosystem_key`): `debian:12` and
    /// `ubuntu:22.04` are dpkg, `alpine:3.18` (also `wolfi`, `chainguard`) apk, the RPM
    /// distributions (`rhel`, `fedora`, `centos`, `rocky`, `alma`, `amzn`, `sles`,
    /// `opensuse*`, `mariner`, `oracle`) rpm, and the language ecosystems by their OSV name
    /// in lower case. `None` for keys no scheme covers.
    pub fn for_ecosystem(key: &str) -> Option<Scheme> {
        let base = key.split_once(':').map_or(key, |(base, _)| base);
        let scheme = match base {
            "debian" | "ubuntu" => Scheme::Dpkg,
            "alpine" | "wolfi" | "chainguard" => Scheme::Apk,
            "rhel" | "fedora" | "centos" | "rocky" | "alma" | "almalinux" | "amzn" | "sles"
            | "mariner" | "oracle" | "ol" => Scheme::Rpm,
            b if b.starts_with("opensuse") => Scheme::Rpm,
            "pypi" => Scheme::Pep440,
            "npm" | "crates.io" | "bitnami" => Scheme::Semver,
            "go" => Scheme::Go,
            "maven" => Scheme::Maven,
            "rubygems" => Scheme::RubyGems,
            "packagist" => Scheme::Composer,
            _ => return None,
        };
        Some(scheme)
    }

    /// A short stable name: `dpkg`, `apk`, `rpm`, `pep440`, `semver`, `go`, `maven`,
    /// `rubygems`, `composer`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Pep440 => "pep440",
            Scheme::Semver => "semver",
            Scheme::Go => "go",
            Scheme::Maven => "maven",
            Scheme::RubyGems => "rubygems",
            Scheme::Composer => "composer",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compares two version strings under one scheme.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(scheme, a)?.cmp(&Version::parse(scheme, b)?))
}

/// A parsed version of one scheme, for comparing one installed version against many
/// advisory events cheaply.
///
/// `Ord` and `Eq` follow the scheme's own order, so two different strings can be equal
/// (`1.0` and `1.0.0` in Maven, `1:0` and `1:0-0` in dpkg). Versions of different schemes
/// never compare equal: they order by [`Scheme`] first, which carries no meaning, so callers
/// must not mix schemes. Every scheme's order is total except Maven's, which mirrors
/// `ComparableVersion` and so is not transitive on some odd qualifier chains (see
/// [`MavenVersion`]); do not sort untrusted Maven versions with the standard sorts, which
/// may panic on an inconsistent order.
#[derive(Debug, Clone)]
pub struct Version {
    original: Box<str>,
    parsed: Parsed,
}

#[derive(Debug, Clone)]
enum Parsed {
    Dpkg(DpkgVersion),
    Apk(ApkVersion),
    Rpm(RpmVersion),
    Pep440(Pep440Version),
    Semver(SemverVersion),
    Go(GoVersion),
    Maven(MavenVersion),
    RubyGems(GemVersion),
    Composer(ComposerVersion),
}

impl Version {
    /// Parses `input` under `scheme`. Empty input, input longer than [`MAX_VERSION_LEN`] and
    /// input with a NUL byte are refused for every scheme; what else is refused is the
    /// scheme's own rule (see each scheme's type).
    pub fn parse(scheme: Scheme, input: &str) -> Result<Version, VersionError> {
        check_input(scheme, input)?;
        let parsed = match scheme {
            Scheme::Dpkg => Parsed::Dpkg(DpkgVersion::parse(input)?),
            Scheme::Apk => Parsed::Apk(ApkVersion::parse(input)?),
            Scheme::Rpm => Parsed::Rpm(RpmVersion::parse(input)?),
            Scheme::Pep440 => Parsed::Pep440(Pep440Version::parse(input)?),
            Scheme::Semver => Parsed::Semver(SemverVersion::parse(input)?),
            Scheme::Go => Parsed::Go(GoVersion::parse(input)?),
            Scheme::Maven => Parsed::Maven(MavenVersion::parse(input)?),
            Scheme::RubyGems => Parsed::RubyGems(GemVersion::parse(input)?),
            Scheme::Composer => Parsed::Composer(ComposerVersion::parse(input)?),
        };
        Ok(Version {
            original: input.into(),
            parsed,
        })
    }

    pub fn scheme(&self) -> Scheme {
        match self.parsed {
            Parsed::Dpkg(_) => Scheme::Dpkg,
            Parsed::Apk(_) => Scheme::Apk,
            Parsed::Rpm(_) => Scheme::Rpm,
            Parsed::Pep440(_) => Scheme::Pep440,
            Parsed::Semver(_) => Scheme::Semver,
            Parsed::Go(_) => Scheme::Go,
            Parsed::Maven(_) => Scheme::Maven,
            Parsed::RubyGems(_) => Scheme::RubyGems,
            Parsed::Composer(_) => Scheme::Composer,
        }
    }

    /// The string this version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.parsed, &other.parsed) {
            (Parsed::Dpkg(a), Parsed::Dpkg(b)) => a.cmp(b),
            (Parsed::Apk(a), Parsed::Apk(b)) => a.cmp(b),
            (Parsed::Rpm(a), Parsed::Rpm(b)) => a.cmp(b),
            (Parsed::Pep440(a), Parsed::Pep440(b)) => a.cmp(b),
            (Parsed::Semver(a), Parsed::Semver(b)) => a.cmp(b),
            (Parsed::Go(a), Parsed::Go(b)) => a.cmp(b),
            (Parsed::Maven(a), Parsed::Maven(b)) => a.cmp(b),
            (Parsed::RubyGems(a), Parsed::RubyGems(b)) => a.cmp(b),
            (Parsed::Composer(a), Parsed::Composer(b)) => a.cmp(b),
            _ => self.scheme().cmp(&other.scheme()),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

fn check_input(scheme: Scheme, input: &str) -> Result<(), VersionError> {
    if input.is_empty() {
        return Err(VersionError::Empty {
            scheme: scheme.name(),
        });
    }
    if input.len() > MAX_VERSION_LEN {
        return Err(VersionError::TooLong {
            scheme: scheme.name(),
            len: input.len(),
            max: MAX_VERSION_LEN,
        });
    }
    if let Some(offset) = input.find('\0') {
        return Err(VersionError::invalid(scheme, input, offset, "NUL byte"));
    }
    Ok(())
}

/// A non-negative integer of any length, kept as its decimal digits without leading zeros
/// (zero is the empty string), so comparing never overflows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Numeral(Box<[u8]>);

impl Numeral {
    /// `digits` must hold ASCII digits only; the empty string is zero.
    pub(crate) fn from_digits(digits: &str) -> Numeral {
        Numeral::from_bytes(digits.as_bytes())
    }

    /// Like [`Numeral::from_digits`], for a byte slice of ASCII digits.
    pub(crate) fn from_bytes(digits: &[u8]) -> Numeral {
        Numeral(strip_zeros(digits).into())
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    /// The value, if it fits in a `u64`.
    pub(crate) fn to_u64(&self) -> Option<u64> {
        self.0.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?
                .checked_add(u64::from(d.wrapping_sub(b'0')))
        })
    }
}

impl Ord for Numeral {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_digits(&self.0, &other.0)
    }
}

impl PartialOrd for Numeral {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The length of the run of ASCII digits at the start of `bytes`.
pub(crate) fn digit_run(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Compares two runs of ASCII digits by numeric value, whatever their length.
pub(crate) fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (strip_zeros(a), strip_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    digits.split_at(zeros).1
}
