//! OSV importer: records of the OSV schema 1.7 (ossf/osv-schema `docs/schema.md`,
//! `validation/schema.json`), from one file, a directory tree (a GHSA or vulndb checkout) or
//! an osv.dev bulk export zip (`<Ecosystem>/all.zip`, one `<ID>.json` per member).
//!
//! Mapping decisions:
//! - `affected[].package.ecosystem` goes through [`ecosystem_key`]; entries in ecosystems the
//!   scanner cannot detect (Hackage, GHC, entries with no package such as PSF's CPython GIT
//!   ranges) are dropped and counted in [`ImportStats::unsupported_ecosystems`]; a record left
//!   with no affected package at all is skipped with that reason. PyPI names are PEP 503
//!   normalized ([`normalize_pypi_name`]); other names are kept as published.
//! - Ranges, events and `versions` are kept as given, `GIT` ranges included (their `repo` is
//!   dropped: they never match an image anyway). An event must hold exactly one of
//!   `introduced`, `fixed`, `last_affected`, `limit` (schema.md, "affected[].ranges[].events");
//!   a record breaking that rule, or using an unknown range type, is malformed.
//! - Aliases are `aliases` plus `upstream`. `upstream` (schema 1.6) names the record this one
//!   derives from: Ubuntu's `UBUNTU-CVE-2014-2901` and Debian's `DEBIAN-CVE-…` carry their CVE
//!   only there, and the CVE is how users, VEX statements and other feeds refer to the flaw.
//!   `related` is not an alias (a different flaw) and is dropped.
//! - `summary`, or when absent the first line of `details` cut at 300 characters.
//! - Severities: each `severity[]` entry becomes a [`SeverityRating`] rated by the record's
//!   publisher (the id prefix in lower case: `ghsa`, `rustsec`, `go`, `bit`, …). CVSS v2, v3.x
//!   and v4 vectors get their base score computed with the RustSec `cvss` crate (pure Rust,
//!   no dependencies, all three versions) and the level of that version's qualitative scale;
//!   an unparsable or incomplete vector is kept without a score. The `Ubuntu` type is a
//!   priority word rated by `ubuntu`. `database_specific.severity` (GHSA, Bitnami) becomes a
//!   level-only rating. Per-package: Debian's `ecosystem_specific.urgency` is mapped like the
//!   tracker's urgency ([`debian::urgency_severity`]), and `affected[].severity` (schema 1.5,
//!   Bitnami) gives the package's level and joins the advisory's ratings.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{
    ImportError, ImportStats, MAX_RECORD_BYTES, Record, Sink, debian, emit, io_error, json_error,
    read_capped, summary_line,
};
use crate::advisory::{
    Advisory, AffectedPackage, AffectedStatus, Event, Range, RangeKind, Severity, SeverityRating,
    ecosystem_key, normalize_pypi_name,
};

/// Deepest directory level [`import_directory`] descends to (a GHSA checkout needs 5).
const MAX_DIRECTORY_DEPTH: usize = 16;

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    aliases: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    upstream: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    severity: Vec<OsvSeverity>,
    #[serde(default, deserialize_with = "null_as_empty")]
    affected: Vec<OsvAffected>,
    #[serde(default, deserialize_with = "null_as_empty")]
    references: Vec<OsvReference>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    #[serde(default)]
    package: Option<OsvPackage>,
    #[serde(default, deserialize_with = "null_as_empty")]
    severity: Vec<OsvSeverity>,
    #[serde(default, deserialize_with = "null_as_empty")]
    ranges: Vec<OsvRange>,
    #[serde(default, deserialize_with = "null_as_empty")]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    events: Vec<OsvEvent>,
}

#[derive(Deserialize)]
struct OsvEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

#[derive(Deserialize)]
struct OsvReference {
    url: String,
}

/// `null` where a list is expected means an empty list (RustSec writes `"aliases": null`).
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// What became of one OSV record.
enum Outcome {
    Advisory(Advisory),
    /// Valid, but nothing in it the scanner can use; the reason is recorded.
    Unusable(String, String),
}

/// Converts one OSV JSON document. `Err` means the bytes are not a valid OSV record.
fn convert(bytes: &[u8], stats: &mut ImportStats) -> Result<Outcome, RecordError> {
    let record: OsvRecord = serde_json::from_slice(super::strip_bom(bytes))?;
    let publisher = publisher(&record.id);
    let mut severity: Vec<SeverityRating> = record
        .severity
        .iter()
        .map(|s| rating(&publisher, s))
        .collect();
    if let Some(level) = database_severity(record.database_specific.as_ref()) {
        severity.push(SeverityRating {
            source: publisher.clone(),
            level: Some(level),
            method: None,
            vector: None,
            score: None,
        });
    }
    let mut affected = Vec::new();
    for entry in &record.affected {
        let Some(package) = affected_package(entry, &publisher, &mut severity, stats)? else {
            continue;
        };
        affected.push(package);
    }
    if affected.is_empty() {
        let reason = if record.affected.is_empty() {
            "no affected packages".to_owned()
        } else {
            "no affected package in an ecosystem the scanner detects".to_owned()
        };
        return Ok(Outcome::Unusable(record.id, reason));
    }
    let aliases = aliases(&record);
    Ok(Outcome::Advisory(Advisory {
        summary: summary(record.summary.as_deref(), record.details.as_deref()),
        aliases,
        source: "osv".to_owned(),
        published: record.published,
        modified: record.modified,
        withdrawn: record.withdrawn,
        severity,
        references: record.references.into_iter().map(|r| r.url).collect(),
        affected,
        id: record.id,
    }))
}

/// Why one record could not be read.
#[derive(Debug)]
enum RecordError {
    Json(serde_json::Error),
    Shape(String),
}

impl From<serde_json::Error> for RecordError {
    fn from(e: serde_json::Error) -> Self {
        RecordError::Json(e)
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Json(e) => write!(f, "invalid OSV JSON: {e}"),
            RecordError::Shape(reason) => f.write_str(reason),
        }
    }
}

/// Converts one `affected[]` entry, or returns `None` for an unsupported ecosystem.
fn affected_package(
    entry: &OsvAffected,
    publisher: &str,
    advisory_severity: &mut Vec<SeverityRating>,
    stats: &mut ImportStats,
) -> Result<Option<AffectedPackage>, RecordError> {
    let Some(package) = &entry.package else {
        *stats
            .unsupported_ecosystems
            .entry("(none)".to_owned())
            .or_default() += 1;
        return Ok(None);
    };
    let Some(ecosystem) = ecosystem_key(&package.ecosystem) else {
        *stats
            .unsupported_ecosystems
            .entry(package.ecosystem.clone())
            .or_default() += 1;
        return Ok(None);
    };
    let name = if ecosystem == "pypi" {
        normalize_pypi_name(&package.name)
    } else {
        package.name.clone()
    };
    let ranges = entry
        .ranges
        .iter()
        .map(range)
        .collect::<Result<Vec<_>, _>>()?;
    let mut level = None;
    for s in &entry.severity {
        let r = rating(publisher, s);
        level = level.max(r.level);
        if !advisory_severity.contains(&r) {
            advisory_severity.push(r);
        }
    }
    let urgency = entry
        .ecosystem_specific
        .as_ref()
        .and_then(|e| e.get("urgency"))
        .and_then(Value::as_str)
        .and_then(debian::urgency_severity);
    Ok(Some(AffectedPackage {
        ecosystem,
        name,
        ranges,
        versions: entry.versions.clone(),
        status: AffectedStatus::Ranges,
        severity: urgency.or(level),
    }))
}

fn range(range: &OsvRange) -> Result<Range, RecordError> {
    let kind = match range.kind.as_str() {
        "SEMVER" => RangeKind::Semver,
        "ECOSYSTEM" => RangeKind::Ecosystem,
        "GIT" => RangeKind::Git,
        other => return Err(RecordError::Shape(format!("unknown range type {other:?}"))),
    };
    let events = range.events.iter().map(event).collect::<Result<_, _>>()?;
    Ok(Range { kind, events })
}

/// "Each object in the events array must contain exactly one of introduced, fixed,
/// last_affected, limit" (schema.md).
fn event(event: &OsvEvent) -> Result<Event, RecordError> {
    match (
        &event.introduced,
        &event.fixed,
        &event.last_affected,
        &event.limit,
    ) {
        (Some(v), None, None, None) => Ok(Event::Introduced(v.clone())),
        (None, Some(v), None, None) => Ok(Event::Fixed(v.clone())),
        (None, None, Some(v), None) => Ok(Event::LastAffected(v.clone())),
        (None, None, None, Some(v)) => Ok(Event::Limit(v.clone())),
        _ => Err(RecordError::Shape(
            "a range event must hold exactly one of introduced, fixed, last_affected, limit"
                .to_owned(),
        )),
    }
}

/// The rater of a record's severities: its id prefix, `GHSA-…` → `ghsa`.
fn publisher(id: &str) -> String {
    id.split('-').next().unwrap_or(id).to_ascii_lowercase()
}

fn rating(publisher: &str, severity: &OsvSeverity) -> SeverityRating {
    let score = severity.score.trim();
    match severity.kind.as_str() {
        "CVSS_V2" | "CVSS_V3" | "CVSS_V4" => {
            let computed = cvss_base(score);
            SeverityRating {
                source: publisher.to_owned(),
                level: computed.map(|(_, level)| level),
                method: Some(severity.kind.clone()),
                vector: Some(score.to_owned()),
                score: computed.map(|(value, _)| value),
            }
        }
        "Ubuntu" => SeverityRating {
            source: "ubuntu".to_owned(),
            level: Severity::parse(score),
            method: Some(severity.kind.clone()),
            vector: None,
            score: None,
        },
        other => SeverityRating {
            source: publisher.to_owned(),
            level: None,
            method: Some(other.to_owned()),
            vector: Some(score.to_owned()),
            score: None,
        },
    }
}

/// The base score of a CVSS vector and the level of its version's qualitative scale, or
/// `None` when the vector does not parse or lacks a base metric.
pub fn cvss_base(vector: &str) -> Option<(f32, Severity)> {
    let parsed = cvss::Cvss::from_str(vector).ok()?;
    if let cvss::Cvss::CvssV30(v) | cvss::Cvss::CvssV31(v) = &parsed {
        // The crate scores a v3 vector with missing base metrics as if they were zero;
        // CVSS v3.1 section 2 makes all eight mandatory.
        use cvss::v3::MetricType as M;
        let present: Vec<M> = v.metrics().map(|(m, _)| m).collect();
        let base = [M::AV, M::AC, M::PR, M::UI, M::S, M::C, M::I, M::A];
        if !base.iter().all(|m| present.contains(m)) {
            return None;
        }
    }
    let score = parsed.score();
    if !(0.0..=10.0).contains(&score) {
        return None;
    }
    let level = match parsed.severity() {
        cvss::Severity::None => Severity::Unknown,
        cvss::Severity::Low => Severity::Low,
        cvss::Severity::Medium => Severity::Medium,
        cvss::Severity::High => Severity::High,
        cvss::Severity::Critical => Severity::Critical,
    };
    Some((score as f32, level))
}

/// `database_specific.severity`: GHSA's `LOW`…`CRITICAL`, Bitnami's `Critical`.
fn database_severity(database_specific: Option<&Value>) -> Option<Severity> {
    database_specific?
        .get("severity")?
        .as_str()
        .and_then(Severity::parse)
}

fn aliases(record: &OsvRecord) -> Vec<String> {
    let mut seen = HashSet::new();
    seen.insert(record.id.as_str());
    record
        .aliases
        .iter()
        .chain(&record.upstream)
        .filter(|a| seen.insert(a.as_str()))
        .cloned()
        .collect()
}

fn summary(summary: Option<&str>, details: Option<&str>) -> Option<String> {
    summary
        .and_then(summary_line)
        .or_else(|| details.and_then(summary_line))
}

/// Hands a converted record to the sink, or records why there is none.
fn deliver(
    outcome: Outcome,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    match outcome {
        Outcome::Advisory(advisory) => emit(sink, stats, Record::Advisory(advisory)),
        Outcome::Unusable(id, reason) => {
            stats.skip(id, reason);
            Ok(())
        }
    }
}

/// Imports one OSV JSON file; a malformed file is an error.
pub(super) fn import_file(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let bytes = read_capped(path, MAX_RECORD_BYTES)?;
    match convert(&bytes, stats) {
        Ok(outcome) => deliver(outcome, sink, stats),
        Err(RecordError::Json(e)) => Err(json_error(path, &e)),
        Err(RecordError::Shape(reason)) => Err(ImportError::Malformed {
            path: path.to_owned(),
            reason,
        }),
    }
}

/// Imports every `*.json` file under `root` (sorted, symlinks not followed); a malformed file
/// is skipped with its reason.
pub(super) fn import_directory(
    root: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let mut pending = vec![(root.to_owned(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let mut entries = std::fs::read_dir(&dir)
            .and_then(|it| {
                it.map(|e| e.map(|e| e.path()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| io_error(&dir, e))?;
        entries.sort();
        let mut subdirectories = Vec::new();
        for path in entries {
            let file_type = std::fs::symlink_metadata(&path)
                .map_err(|e| io_error(&path, e))?
                .file_type();
            if file_type.is_dir() {
                if depth + 1 < MAX_DIRECTORY_DEPTH {
                    subdirectories.push((path, depth + 1));
                } else {
                    stats.skip(path.display().to_string(), "directory nested too deep");
                }
            } else if file_type.is_file() && path.extension().is_some_and(|e| e == "json") {
                import_directory_file(&path, sink, stats)?;
            }
        }
        // Reverse so that popping visits subdirectories in sorted order.
        pending.extend(subdirectories.into_iter().rev());
    }
    Ok(())
}

fn import_directory_file(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let bytes = match read_capped(path, MAX_RECORD_BYTES) {
        Ok(bytes) => bytes,
        Err(e @ ImportError::FileTooLarge { .. }) => return Err(e),
        Err(e) => {
            stats.skip(path.display().to_string(), e.to_string());
            return Ok(());
        }
    };
    match convert(&bytes, stats) {
        Ok(outcome) => deliver(outcome, sink, stats),
        Err(e) => {
            stats.skip(path.display().to_string(), e.to_string());
            Ok(())
        }
    }
}

/// Imports an osv.dev bulk export, one member at a time. A member over [`MAX_RECORD_BYTES`]
/// (declared or actual) is an error; an unreadable or malformed member is skipped.
pub(super) fn import_zip(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| zip_error(path, &e))?;
    for index in 0..archive.len() {
        let Some(bytes) = read_member(path, &mut archive, index, stats)? else {
            continue;
        };
        let (name, bytes) = bytes;
        match convert(&bytes, stats) {
            Ok(outcome) => deliver(outcome, sink, stats)?,
            Err(e) => stats.skip(name, e.to_string()),
        }
    }
    Ok(())
}

/// Reads one zip member as `(name, bytes)`, or `None` when it is skipped.
fn read_member(
    path: &Path,
    archive: &mut zip::ZipArchive<File>,
    index: usize,
    stats: &mut ImportStats,
) -> Result<Option<(String, Vec<u8>)>, ImportError> {
    let member = match archive.by_index(index) {
        Ok(member) => member,
        Err(e) => {
            stats.skip(format!("zip member #{index}"), e.to_string());
            return Ok(None);
        }
    };
    let name = match member.name() {
        Ok(name) => name.into_owned(),
        Err(e) => {
            stats.skip(format!("zip member #{index}"), e.to_string());
            return Ok(None);
        }
    };
    if member.is_dir() {
        return Ok(None);
    }
    if !name.ends_with(".json") {
        stats.skip(name, "not a .json member");
        return Ok(None);
    }
    let too_large = || ImportError::EntryTooLarge {
        path: path.to_owned(),
        entry: name.clone(),
        limit: MAX_RECORD_BYTES,
    };
    if member.size() > MAX_RECORD_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // The declared size may lie: read at most one byte past the limit.
    if let Err(e) = member.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes) {
        stats.skip(name, e.to_string());
        return Ok(None);
    }
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(too_large());
    }
    Ok(Some((name, bytes)))
}

fn zip_error(path: &Path, error: &zip::result::ZipError) -> ImportError {
    ImportError::Zip {
        path: PathBuf::from(path),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_scores() {
        let (score, level) = cvss_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!((score, level), (9.8, Severity::Critical));
        assert_eq!(cvss_base("CVSS:3.1/AV:N/AC:L"), None);
        assert_eq!(cvss_base("not a vector"), None);
        let (score, level) = cvss_base("AV:N/AC:L/Au:N/C:P/I:P/A:P").unwrap();
        assert_eq!((score, level), (7.5, Severity::High));
    }

    #[test]
    fn events_hold_exactly_one_bound() {
        let two = OsvEvent {
            introduced: Some("0".into()),
            fixed: Some("1".into()),
            last_affected: None,
            limit: None,
        };
        assert!(event(&two).is_err());
    }

    #[test]
    fn debian_urgency_is_the_package_severity() {
        // The shape of a Debian OSV record (`DEBIAN-CVE-…`): the CVE only in `upstream`, the
        // tracker's urgency in `ecosystem_specific`.
        let record = br#"{"id": "DEBIAN-CVE-2010-4756", "upstream": ["CVE-2010-4756"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                          "ecosystem_specific": {"urgency": "unimportant"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#;
        let mut stats = ImportStats::default();
        let Ok(Outcome::Advisory(a)) = convert(record, &mut stats) else {
            panic!("not converted");
        };
        assert_eq!(a.aliases, ["CVE-2010-4756"]);
        assert_eq!(a.affected[0].ecosystem, "debian:12");
        assert_eq!(a.affected[0].severity, Some(Severity::Low));
    }

    #[test]
    fn summary_falls_back_to_details() {
        assert_eq!(
            summary(None, Some("\nFirst line.\nSecond.")).as_deref(),
            Some("First line.")
        );
        assert_eq!(summary(Some(" "), None), None);
    }
}
