//! Semantic versions (OSV `SEMVER` ranges, npm, crates.io, Bitnami).
//!
//! Authority: SemVer 2.0.0 section 11 ("Precedence"): compare major, minor and patch
//! numerically; "When major, minor, and patch are equal, a pre-release version has lower
//! precedence than a normal version"; pre-release identifiers compare one by one, numeric
//! ones numerically, alphanumeric ones in ASCII order, numeric before alphanumeric, and "A
//! larger set of pre-release fields has a higher precedence than a smaller set, if all of
//! the preceding identifiers are equal". Build metadata (`+...`) is ignored.
//!
//! Parsing is lenient because advisory data is: a leading `v` is accepted (`v1.2.3`, as Go
//! and many tags write it), missing minor and patch numbers are zero (OSV's `introduced:
//! "0"`), numbers may have leading zeros, and components past the patch compare as further
//! numbers (`1.2.3.4 > 1.2.3`; SemVer itself has none). Identifiers must still be non-empty
//! and made of `[0-9A-Za-z-]`. npm's strict grammar for ranges lives in `npm.rs`; Go's in
//! `go.rs`.

use std::cmp::Ordering;

use super::{Numeral, Scheme, VersionError, compare_digits, digit_run};

/// A parsed semantic version.
#[derive(Debug, Clone)]
pub struct SemverVersion {
    core: Vec<Numeral>,
    pre: Vec<Identifier>,
}

/// A pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identifier {
    /// All digits; compares by value.
    Numeric(Box<str>),
    Alphanumeric(Box<str>),
}

impl Identifier {
    pub(crate) fn new(text: &str) -> Identifier {
        if digit_run(text.as_bytes()) == text.len() {
            Identifier::Numeric(text.into())
        } else {
            Identifier::Alphanumeric(text.into())
        }
    }
}

impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => {
                compare_digits(a.as_bytes(), b.as_bytes())
            }
            (Identifier::Numeric(_), Identifier::Alphanumeric(_)) => Ordering::Less,
            (Identifier::Alphanumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
            (Identifier::Alphanumeric(a), Identifier::Alphanumeric(b)) => {
                a.as_bytes().cmp(b.as_bytes())
            }
        }
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer 11.3/11.4: no pre-release sorts after any pre-release; otherwise identifier by
/// identifier, a shorter list that is a prefix of the other sorting first.
pub(crate) fn compare_prerelease(a: &[Identifier], b: &[Identifier]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// Whether `text` is a non-empty dot-separated list of non-empty `[0-9A-Za-z-]` identifiers.
pub(crate) fn is_identifier_list(text: &str) -> bool {
    text.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl SemverVersion {
    pub fn parse(input: &str) -> Result<SemverVersion, VersionError> {
        let invalid = |offset, reason| VersionError::invalid(Scheme::Semver, input, offset, reason);
        let text = input.strip_prefix(['v', 'V']).unwrap_or(input);
        let prefix = input.len() - text.len();
        let (text, build) = match text.split_once('+') {
            Some((text, build)) => (text, Some(build)),
            None => (text, None),
        };
        let (core_text, pre_text) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut core = Vec::new();
        let mut offset = prefix;
        for part in core_text.split('.') {
            if part.is_empty() || digit_run(part.as_bytes()) != part.len() {
                return Err(invalid(
                    offset,
                    "version numbers must be non-empty runs of digits",
                ));
            }
            core.push(Numeral::from_digits(part));
            offset += part.len() + 1;
        }
        let pre = match pre_text {
            Some(pre) if !is_identifier_list(pre) => {
                return Err(invalid(
                    prefix + core_text.len() + 1,
                    "invalid pre-release identifier",
                ));
            }
            Some(pre) => pre.split('.').map(Identifier::new).collect(),
            None => Vec::new(),
        };
        if build.is_some_and(|build| !is_identifier_list(build)) {
            return Err(invalid(prefix + text.len() + 1, "invalid build metadata"));
        }
        Ok(SemverVersion { core, pre })
    }
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Numeral::default();
        let len = self.core.len().max(other.core.len());
        (0..len)
            .map(|i| {
                let a = self.core.get(i).unwrap_or(&zero);
                let b = other.core.get(i).unwrap_or(&zero);
                a.cmp(b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| compare_prerelease(&self.pre, &other.pre))
    }
}

impl PartialOrd for SemverVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SemverVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SemverVersion {}

impl SemverVersion {
    /// Builds a version from already validated parts (for the Go scheme).
    pub(crate) fn from_parts(core: Vec<Numeral>, pre: Vec<Identifier>) -> SemverVersion {
        SemverVersion { core, pre }
    }
}
