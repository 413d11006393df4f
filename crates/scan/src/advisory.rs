//! The normalized advisory model every importer produces and the vulnerability DB stores.
//!
//! Sources disagree on shape (OSV, the Debian tracker, DSA/DLA lists, Alpine secdb, OpenVEX),
//! so each importer turns its input into these records and nothing downstream knows where a
//! record came from except through [`Advisory::source`]. Ranges keep OSV semantics
//! (ossf/osv-schema `docs/schema.md`, "Evaluation"): events `introduced`, `fixed`,
//! `last_affected` and `limit`, plus an explicit `versions` list.

use serde::{Deserialize, Serialize};

/// One advisory as a source published it: an id, its aliases, and the packages it affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The source's own identifier: `CVE-2023-5981`, `GHSA-…`, `PYSEC-…`, `DSA-5380-1`.
    pub id: String,
    /// Other identifiers for the same vulnerability (OSV `aliases`; a DSA's CVE list).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Which importer produced it: `osv`, `debian-tracker`, `debian-dsa`, `debian-dla`,
    /// `alpine-secdb`.
    pub source: String,
    #[serde(default)]
    pub summary: Option<String>,
    /// RFC 3339 timestamps, as published.
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    /// Set when the source withdrew the advisory; withdrawn advisories never match.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub severity: Vec<SeverityRating>,
    /// Reference URLs.
    #[serde(default)]
    pub references: Vec<String>,
    pub affected: Vec<AffectedPackage>,
}

/// A severity as one source rated it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityRating {
    /// Who rated it: `nvd`, `ghsa`, `debian`, `osv`, …
    pub source: String,
    /// The level, where the source gives one or it follows from the CVSS score.
    #[serde(default)]
    pub level: Option<Severity>,
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, or the source's own scheme name (`debian-urgency`).
    #[serde(default)]
    pub method: Option<String>,
    /// A CVSS vector string such as `CVSS:3.1/AV:N/AC:L/…`, when the source has one.
    #[serde(default)]
    pub vector: Option<String>,
    /// The base score, when the source gives it or it can be computed from the vector.
    #[serde(default)]
    pub score: Option<f32>,
}

/// Severity levels, in rank order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// CVSS v3/v4 qualitative bands (FIRST CVSS v3.1 specification, section 5).
    pub fn from_cvss_score(score: f32) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Unknown
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Parses `low`, `LOW`, `moderate` (GHSA, Red Hat), `important` (Red Hat).
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" | "negligible" | "unimportant" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" | "important" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            "unknown" | "none" | "" => Some(Severity::Unknown),
            _ => None,
        }
    }
}

/// One package an advisory covers, in one ecosystem (and, for distributions, one release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The normalized ecosystem key; see [`ecosystem_key`].
    pub ecosystem: String,
    /// The package name, normalized for its ecosystem: the *source* package for Debian,
    /// Ubuntu and Alpine (`o:` origin); PEP 503 for PyPI; as published elsewhere.
    pub name: String,
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicitly affected versions (OSV `affected[].versions`).
    #[serde(default)]
    pub versions: Vec<String>,
    /// What the source says about this package when it is not simply "the ranges decide".
    #[serde(default)]
    pub status: AffectedStatus,
    /// A severity the source gives for this package only (Debian urgency per release).
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// OSV range types. `Git` ranges are kept but never match: images carry no commit ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    Semver,
    Ecosystem,
    Git,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// OSV range events. `Introduced("0")` means "from the beginning"; `Limit("*")` means none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// The status model: what a source says about one package beyond its ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum AffectedStatus {
    /// The ranges and versions decide (a fixed version is an event in a range).
    #[default]
    Ranges,
    /// Affected in every version, no fix yet (Debian `open`, no DSA planned or not).
    Unfixed,
    /// The vendor decided not to fix (Debian `ignored`, Red Hat "Will not fix").
    WillNotFix,
    /// The vendor postponed the fix (Debian `postponed`).
    FixDeferred,
    /// The release is out of support for this package (Debian urgency `end-of-life`).
    EndOfLife,
    /// The vendor says this release was never affected (Debian `fixed_version` "0", secdb "0").
    NotAffected,
    /// The vendor has not decided yet (Debian `undetermined`).
    Unknown,
}

/// A VEX statement from a vendor document (OpenVEX) kept in the DB and applied at match time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VexStatement {
    /// The vulnerability the statement is about (`CVE-…`, `GHSA-…`), plus its aliases.
    pub vulnerability: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Product identifiers as package URLs (`pkg:golang/…@v1.2.3`, `pkg:oci/…`). A purl
    /// without a version covers every version.
    pub products: Vec<String>,
    /// Subcomponent purls; when present, the statement covers only these inside the products.
    #[serde(default)]
    pub subcomponents: Vec<String>,
    pub status: VexStatus,
    #[serde(default)]
    pub justification: Option<String>,
    #[serde(default)]
    pub impact_statement: Option<String>,
    #[serde(default)]
    pub action_statement: Option<String>,
    /// Author and timestamp of the document, for the finding's explanation.
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Where the statement came from (the document's `@id` or file name).
    pub document: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

/// The ecosystem keys the DB is indexed by. Language ecosystems are their OSV names in
/// lower case; distributions carry their release: `debian:12`, `ubuntu:22.04`,
/// `alpine:3.18` (no leading `v`), `rhel:9`.
///
/// Maps an OSV `affected[].package.ecosystem` string to the key, or `None` for ecosystems
/// the scanner cannot detect (so the importer can skip them and count them).
pub fn ecosystem_key(osv_ecosystem: &str) -> Option<String> {
    let (base, rest) = match osv_ecosystem.split_once(':') {
        Some((b, r)) => (b, Some(r)),
        None => (osv_ecosystem, None),
    };
    let key = match (base, rest) {
        ("PyPI", None) => "pypi".to_owned(),
        ("npm", None) => "npm".to_owned(),
        ("Go", None) => "go".to_owned(),
        ("crates.io", None) => "crates.io".to_owned(),
        ("Maven", _) => "maven".to_owned(),
        ("RubyGems", None) => "rubygems".to_owned(),
        ("Packagist", None) => "packagist".to_owned(),
        ("NuGet", None) => "nuget".to_owned(),
        ("Bitnami", None) => "bitnami".to_owned(),
        ("Debian", Some(release)) => format!("debian:{}", release.trim()),
        ("Alpine", Some(release)) => {
            format!("alpine:{}", release.trim().trim_start_matches('v'))
        }
        ("Ubuntu", Some(release)) => {
            // `Ubuntu:22.04:LTS`, `Ubuntu:Pro:14.04:LTS`: the key is the version number.
            let version = release
                .split(':')
                .find(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
            format!("ubuntu:{version}")
        }
        _ => return None,
    };
    Some(key)
}

/// PEP 503 name normalization: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_separator = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystem_keys() {
        assert_eq!(ecosystem_key("PyPI").as_deref(), Some("pypi"));
        assert_eq!(ecosystem_key("Debian:12").as_deref(), Some("debian:12"));
        assert_eq!(
            ecosystem_key("Alpine:v3.18").as_deref(),
            Some("alpine:3.18")
        );
        assert_eq!(
            ecosystem_key("Ubuntu:Pro:14.04:LTS").as_deref(),
            Some("ubuntu:14.04")
        );
        assert_eq!(ecosystem_key("Hackage"), None);
    }

    #[test]
    fn pypi_names() {
        assert_eq!(normalize_pypi_name("Django"), "django");
        assert_eq!(normalize_pypi_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_pypi_name("a__b-.c"), "a-b-c");
    }
}
