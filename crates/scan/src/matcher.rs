//! Matching an inventory against the vulnerability DB.
//!
//! Source selection, the main accuracy rule: an OS package is matched only against its own
//! distribution release's feed, under its source package name for Debian, Ubuntu and Alpine
//! (their trackers key advisories by source package) and with the source version (a binNMU's
//! `+b1` is not a different fix level). A language package that an OS package owns is not
//! matched against the language feed at all: the distribution's feed covers it through its
//! owner, with backported fixes that the upstream version number cannot show.
//!
//! Ranges follow the OSV evaluation rules (ossf/osv-schema `docs/schema.md`,
//! "Evaluation"): events are sorted by version, `introduced` opens a vulnerable interval
//! (`"0"` from the start), `fixed` closes it at that version, `last_affected` closes it after
//! that version, `limit` bounds the range. A version that cannot be compared makes the
//! finding `unknown`, never silently clean. Findings whose ids alias one another are merged
//! into one.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::advisory::{
    AffectedPackage, AffectedStatus, Event, RangeKind, Severity, SeverityRating,
};
use crate::db::{Candidate, DbError, VulnDb};
use crate::model::{Inventory, Package, PackageKind};
use crate::version::{Scheme, Version};

/// What is known about one vulnerability in one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// Affected, and a fixed version exists ([`Finding::fixed_version`]).
    Fixed,
    /// Affected, and no fix is available yet.
    Affected,
    /// The vendor postponed the fix.
    FixDeferred,
    /// The vendor decided not to fix it.
    WillNotFix,
    /// The release is out of support for this package.
    EndOfLife,
    /// The data says the package may be affected but could not be evaluated (an unparseable
    /// version, an undetermined vendor status).
    Unknown,
    /// A VEX statement says the package is not affected (kept for the record).
    NotAffected,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Fixed => "fixed",
            FindingStatus::Affected => "affected",
            FindingStatus::FixDeferred => "fix_deferred",
            FindingStatus::WillNotFix => "will_not_fix",
            FindingStatus::EndOfLife => "end_of_life",
            FindingStatus::Unknown => "unknown",
            FindingStatus::NotAffected => "not_affected",
        }
    }
}

/// One advisory record that contributed to a finding, for the explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchEvidence {
    pub advisory: String,
    pub source: String,
    pub ecosystem: String,
    /// The package name that was looked up (the source package for distributions).
    pub name: String,
    /// The version that was compared, and the comparator.
    pub version: String,
    pub scheme: String,
    /// What decided: `range [0, 3.7.9-2+deb12u1)`, `versions list`, `vendor status will_not_fix`.
    pub reason: String,
}

/// A VEX statement that changed a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VexApplied {
    pub status: crate::advisory::VexStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
    pub document: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The preferred id: a CVE when the group has one.
    pub id: String,
    /// Every other id of the merged group (GHSA, PYSEC, DSA, …), sorted.
    pub aliases: Vec<String>,
    /// Index into [`Inventory::packages`].
    pub package: usize,
    pub status: FindingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    pub severity: Severity,
    /// Where `severity` came from (`debian`, `ghsa`, `cvss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<SeverityRating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    pub evidence: Vec<MatchEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vex: Option<VexApplied>,
}

impl Finding {
    /// The id and every alias.
    pub fn all_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// A single advisory's verdict on a single package, before merging aliases.
struct RawMatch {
    /// Ids that identify the vulnerability: matches sharing one are merged.
    ids: BTreeSet<String>,
    /// Ids shown as aliases that must not merge findings (a DSA that fixed several CVEs).
    related: BTreeSet<String>,
    status: FindingStatus,
    fixed: Option<String>,
    package_severity: Option<Severity>,
    candidate: Candidate,
    evidence: MatchEvidence,
    scheme: Scheme,
}

/// Matches every package of `inventory`; findings are ordered by package, then id.
pub fn match_inventory(db: &VulnDb, inventory: &Inventory) -> Result<Vec<Finding>, DbError> {
    let distro_key = inventory.distro.as_ref().and_then(|d| d.ecosystem_key());
    let mut findings = Vec::new();
    for (index, package) in inventory.packages.iter().enumerate() {
        let raw = match_package(db, distro_key.as_deref(), package)?;
        findings.extend(merge_aliases(index, raw));
    }
    Ok(findings)
}

/// What matching could not cover, for the report: OS packages with no distribution feed to
/// match against (an unknown distribution, or one the DB holds no data for). Such packages
/// are not reported as clean.
pub fn coverage_notes(db: &VulnDb, inventory: &Inventory) -> Result<Vec<String>, DbError> {
    let os = inventory.packages.iter().filter(|p| p.kind.is_os()).count();
    if os == 0 {
        return Ok(Vec::new());
    }
    let key = inventory.distro.as_ref().and_then(|d| d.ecosystem_key());
    let note = match (&inventory.distro, key) {
        (None, _) => Some(format!(
            "{os} OS packages were not matched: no os-release names the distribution"
        )),
        (Some(d), None) => Some(format!(
            "{os} OS packages were not matched: no vulnerability feed is known for {} {}",
            d.id, d.version_id
        )),
        (Some(_), Some(key)) if !db.has_ecosystem(&key)? => Some(format!(
            "{os} OS packages were not matched: the vulnerability DB has no data for {key}"
        )),
        _ => None,
    };
    Ok(note.into_iter().collect())
}

/// The lookups for a package: (ecosystem, name, version to compare).
fn lookups(distro_key: Option<&str>, package: &Package) -> Vec<(String, String, String)> {
    match package.kind {
        PackageKind::Deb | PackageKind::Apk => {
            let Some(eco) = distro_key else {
                return Vec::new();
            };
            let name = package
                .source_name
                .clone()
                .unwrap_or_else(|| package.name.clone());
            let version = match package.kind {
                PackageKind::Deb => package
                    .source_version
                    .clone()
                    .unwrap_or_else(|| package.version.clone()),
                _ => package.version.clone(),
            };
            vec![(eco.to_owned(), name, version)]
        }
        PackageKind::Rpm => {
            let Some(eco) = distro_key else {
                return Vec::new();
            };
            vec![(
                eco.to_owned(),
                package.name.clone(),
                package.version.clone(),
            )]
        }
        _ if package.owner.is_some() => Vec::new(),
        kind => {
            let Some(eco) = kind.language_ecosystem() else {
                return Vec::new();
            };
            package
                .lookup_names()
                .into_iter()
                .map(|name| (eco.to_owned(), name, package.version.clone()))
                .collect()
        }
    }
}

/// One candidate's verdict on one installed version.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Index into the candidates of the package.
    index: usize,
    status: FindingStatus,
    fixed: Option<String>,
    reason: String,
}

/// Every candidate's verdict on `version`, memoized in the DB handle: across many images the
/// same package versions recur, and each is evaluated once.
fn verdicts(
    db: &VulnDb,
    scheme: Scheme,
    key: crate::db::VersionKey,
    candidates: &[Candidate],
) -> Arc<Vec<Verdict>> {
    if let Some(found) = db.verdicts.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return found;
    }
    let found: Arc<Vec<Verdict>> = Arc::new(
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.advisory.withdrawn.is_none())
            .filter_map(|(index, c)| {
                let (status, fixed, reason) = evaluate(scheme, &key.2, &c.package)?;
                Some(Verdict {
                    index,
                    status,
                    fixed,
                    reason,
                })
            })
            .collect(),
    );
    if let Ok(mut memo) = db.verdicts.lock() {
        if memo.len() >= 200_000 {
            memo.clear();
        }
        memo.insert(key, found.clone());
    }
    found
}

fn match_package(
    db: &VulnDb,
    distro_key: Option<&str>,
    package: &Package,
) -> Result<Vec<RawMatch>, DbError> {
    let mut out = Vec::new();
    for (ecosystem, name, version) in lookups(distro_key, package) {
        let Some(scheme) = Scheme::for_ecosystem(&ecosystem) else {
            continue;
        };
        let candidates = db.candidates(&ecosystem, &name)?;
        let key = (ecosystem.clone(), name.clone(), version.clone());
        for verdict in verdicts(db, scheme, key, &candidates).iter() {
            let Some(candidate) = candidates.get(verdict.index) else {
                continue;
            };
            let evidence = MatchEvidence {
                advisory: candidate.advisory.id.clone(),
                source: candidate.advisory.source.clone(),
                ecosystem: ecosystem.clone(),
                name: name.clone(),
                version: version.clone(),
                scheme: scheme.name().to_owned(),
                reason: verdict.reason.clone(),
            };
            for (ids, related) in id_groups(candidate) {
                out.push(RawMatch {
                    ids,
                    related,
                    status: verdict.status,
                    fixed: verdict.fixed.clone(),
                    package_severity: candidate.package.severity,
                    candidate: candidate.clone(),
                    evidence: evidence.clone(),
                    scheme,
                });
            }
        }
    }
    Ok(out)
}

/// The id sets an advisory contributes: (ids that merge, related ids that do not). A Debian
/// DSA or DLA fixes several CVEs at once, so it joins each CVE's finding as a related id
/// instead of merging distinct CVEs into one.
fn id_groups(candidate: &Candidate) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let head = &candidate.advisory;
    let cves: Vec<&String> = head
        .aliases
        .iter()
        .filter(|a| a.starts_with("CVE-"))
        .collect();
    if head.source.starts_with("debian-d") && !cves.is_empty() {
        return cves
            .into_iter()
            .map(|cve| {
                (
                    BTreeSet::from([cve.clone()]),
                    BTreeSet::from([head.id.clone()]),
                )
            })
            .collect();
    }
    let mut ids: BTreeSet<String> = head.aliases.iter().cloned().collect();
    ids.insert(head.id.clone());
    vec![(ids, BTreeSet::new())]
}

/// Decides one affected-package record. `None` means the record does not apply to this
/// version (outside every range, or the vendor says not affected).
fn evaluate(
    scheme: Scheme,
    version: &str,
    affected: &AffectedPackage,
) -> Option<(FindingStatus, Option<String>, String)> {
    let vendor =
        |status: FindingStatus| Some((status, None, format!("vendor status {}", status.as_str())));
    match affected.status {
        AffectedStatus::NotAffected => None,
        AffectedStatus::Unfixed => vendor(FindingStatus::Affected),
        AffectedStatus::WillNotFix => vendor(FindingStatus::WillNotFix),
        AffectedStatus::FixDeferred => vendor(FindingStatus::FixDeferred),
        AffectedStatus::EndOfLife => vendor(FindingStatus::EndOfLife),
        AffectedStatus::Unknown => vendor(FindingStatus::Unknown),
        AffectedStatus::Ranges => evaluate_ranges(scheme, version, affected),
    }
}

fn evaluate_ranges(
    scheme: Scheme,
    version: &str,
    affected: &AffectedPackage,
) -> Option<(FindingStatus, Option<String>, String)> {
    let installed = Version::parse(scheme, version);
    let mut unknown = None;
    for range in &affected.ranges {
        if range.kind == RangeKind::Git {
            continue;
        }
        // SEMVER ranges use SemVer order; Go's own comparator is SemVer with Go's spelling.
        let range_scheme = match (range.kind, scheme) {
            (RangeKind::Semver, Scheme::Go) => Scheme::Go,
            (RangeKind::Semver, _) => Scheme::Semver,
            _ => scheme,
        };
        let installed = if range_scheme == scheme {
            installed.clone()
        } else {
            Version::parse(range_scheme, version)
        };
        let Ok(installed) = installed else {
            unknown = Some(format!(
                "installed version {version:?} is not a valid {} version",
                range_scheme.name()
            ));
            continue;
        };
        match in_range(range_scheme, &installed, &range.events) {
            Ok(RangeVerdict::Outside) => {}
            Ok(RangeVerdict::Inside { fixed, description }) => {
                let status = if fixed.is_some() {
                    FindingStatus::Fixed
                } else {
                    FindingStatus::Affected
                };
                return Some((status, fixed, description));
            }
            Err(bad) => {
                unknown = Some(format!(
                    "advisory version {bad:?} is not a valid {} version",
                    range_scheme.name()
                ))
            }
        }
    }
    if !affected.versions.is_empty() {
        let listed = affected.versions.iter().any(|v| {
            v == version
                || matches!((Version::parse(scheme, v), &installed), (Ok(a), Ok(b)) if a.cmp(b) == Ordering::Equal)
        });
        if listed {
            return Some((
                FindingStatus::Affected,
                None,
                "listed in the advisory's versions".to_owned(),
            ));
        }
    }
    unknown.map(|reason| (FindingStatus::Unknown, None, reason))
}

/// Stable, never panics whatever `cmp` answers, O(n²).
fn insertion_sort<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && cmp(&items[j - 1], &items[j]) == Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

enum RangeVerdict {
    Outside,
    Inside {
        fixed: Option<String>,
        description: String,
    },
}

/// OSV's algorithm over one range. `Err` carries the event version that did not parse.
fn in_range(scheme: Scheme, installed: &Version, events: &[Event]) -> Result<RangeVerdict, String> {
    let mut parsed: Vec<(Option<Version>, &Event)> = Vec::with_capacity(events.len());
    for event in events {
        let raw = match event {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        };
        let version = match (event, raw.as_str()) {
            (Event::Introduced(_), "0") | (Event::Limit(_), "*") => None,
            _ => Some(Version::parse(scheme, raw).map_err(|_| raw.clone())?),
        };
        parsed.push((version, event));
    }
    // "0" sorts first and "*" last; ties keep the record's order. An insertion sort, because
    // some schemes' orders are not total (Maven's `ComparableVersion` is not), and the
    // standard sorts may panic on such a comparator; event lists are short.
    insertion_sort(&mut parsed, |(a, ea), (b, eb)| {
        // `introduced: "0"` ranks before every version and `limit: "*"` after every one.
        let rank = |v: &Option<Version>, e: &Event| match (v, e) {
            (None, Event::Limit(_)) => 2,
            (None, _) => 0,
            (Some(_), _) => 1,
        };
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            _ => rank(a, ea).cmp(&rank(b, eb)),
        }
    });
    let mut vulnerable = false;
    let mut opened_at: Option<&str> = None;
    let mut fixed: Option<String> = None;
    for (version, event) in &parsed {
        let at_or_after = |v: &Option<Version>| v.as_ref().is_none_or(|v| installed >= v);
        match event {
            Event::Introduced(raw) => {
                if at_or_after(version) {
                    vulnerable = true;
                    opened_at = Some(raw);
                    fixed = None;
                }
            }
            Event::Fixed(raw) => {
                if at_or_after(version) {
                    vulnerable = false;
                } else if vulnerable && fixed.is_none() {
                    fixed = Some(raw.clone());
                }
            }
            Event::LastAffected(_) => {
                if version.as_ref().is_some_and(|v| installed > v) {
                    vulnerable = false;
                }
            }
            Event::Limit(_) => {
                if version.as_ref().is_some_and(|v| installed >= v) {
                    vulnerable = false;
                }
            }
        }
    }
    if !vulnerable {
        return Ok(RangeVerdict::Outside);
    }
    let upper = match &fixed {
        Some(f) => format!("{f})"),
        None => "∞)".to_owned(),
    };
    Ok(RangeVerdict::Inside {
        description: format!("range [{}, {upper}", opened_at.unwrap_or("0")),
        fixed,
    })
}

/// Groups matches whose id sets overlap and turns each group into one finding.
fn merge_aliases(package: usize, raw: Vec<RawMatch>) -> Vec<Finding> {
    let mut groups: Vec<Vec<RawMatch>> = Vec::new();
    for m in raw {
        let overlapping: Vec<usize> = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.iter().any(|x| !x.ids.is_disjoint(&m.ids)))
            .map(|(i, _)| i)
            .collect();
        let mut merged = vec![m];
        for i in overlapping.into_iter().rev() {
            merged.extend(groups.swap_remove(i));
        }
        groups.push(merged);
    }
    let mut findings: Vec<Finding> = groups.into_iter().map(|g| finding(package, g)).collect();
    findings.sort_by(|a, b| a.id.cmp(&b.id));
    findings
}

fn finding(package: usize, group: Vec<RawMatch>) -> Finding {
    let ids: BTreeSet<String> = group.iter().flat_map(|m| m.ids.iter().cloned()).collect();
    let related: BTreeSet<String> = group
        .iter()
        .flat_map(|m| m.related.iter().cloned())
        .collect();
    let id = ids
        .iter()
        .find(|i| i.starts_with("CVE-"))
        .or_else(|| ids.iter().find(|i| i.starts_with("GHSA-")))
        .or_else(|| ids.iter().next())
        .cloned()
        .unwrap_or_default();
    let aliases = ids.union(&related).filter(|i| **i != id).cloned().collect();
    // The most actionable verdict wins: a known fix (the highest fixed version, so that every
    // source's fix is in it), then affected, then the vendor statuses.
    let status = group
        .iter()
        .map(|m| m.status)
        .min()
        .unwrap_or(FindingStatus::Unknown);
    let fixed_version = group
        .iter()
        .filter(|m| m.status == FindingStatus::Fixed)
        .filter_map(|m| m.fixed.as_ref().map(|f| (m.scheme, f)))
        .max_by(|(sa, a), (sb, b)| {
            if sa == sb {
                crate::version::compare(*sa, a, b).unwrap_or(Ordering::Equal)
            } else {
                Ordering::Equal
            }
        })
        .map(|(_, f)| f.clone());
    let (severity, severity_source) = choose_severity(&group);
    let mut ratings: Vec<SeverityRating> = Vec::new();
    let mut references: Vec<String> = Vec::new();
    for m in &group {
        for r in &m.candidate.advisory.severity {
            if !ratings.contains(r) {
                ratings.push(r.clone());
            }
        }
        for r in &m.candidate.advisory.references {
            if !references.contains(r) {
                references.push(r.clone());
            }
        }
    }
    Finding {
        id,
        aliases,
        package,
        status,
        fixed_version,
        severity,
        severity_source,
        ratings,
        summary: group
            .iter()
            .find_map(|m| m.candidate.advisory.summary.clone()),
        references,
        evidence: group.into_iter().map(|m| m.evidence).collect(),
        vex: None,
    }
}

/// The severity shown: the distribution's own rating for its package first (it knows its
/// build), then a level a source states (GHSA), then the highest CVSS band.
fn choose_severity(group: &[RawMatch]) -> (Severity, Option<String>) {
    if let Some((s, m)) = group
        .iter()
        .filter_map(|m| m.package_severity.map(|s| (s, m)))
        .filter(|(s, _)| *s != Severity::Unknown)
        .max_by_key(|(s, _)| *s)
    {
        return (s, Some(m.candidate.advisory.source.clone()));
    }
    let ratings = group
        .iter()
        .flat_map(|m| m.candidate.advisory.severity.iter());
    if let Some(r) = ratings
        .clone()
        .filter(|r| r.level.is_some_and(|l| l != Severity::Unknown) && r.method.is_none())
        .max_by_key(|r| r.level)
    {
        return (r.level.unwrap_or(Severity::Unknown), Some(r.source.clone()));
    }
    if let Some(r) = ratings
        .filter_map(|r| r.score.map(|s| (Severity::from_cvss_score(s), r)))
        .max_by_key(|(s, _)| *s)
    {
        return (
            r.0,
            Some(r.1.method.clone().unwrap_or_else(|| "cvss".to_owned())),
        );
    }
    (Severity::Unknown, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisory::Range;

    fn affected(kind: RangeKind, events: Vec<Event>, versions: &[&str]) -> AffectedPackage {
        AffectedPackage {
            ecosystem: "pypi".into(),
            name: "x".into(),
            ranges: vec![Range { kind, events }],
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            status: AffectedStatus::Ranges,
            severity: None,
        }
    }

    fn verdict(
        scheme: Scheme,
        version: &str,
        a: &AffectedPackage,
    ) -> Option<(FindingStatus, Option<String>)> {
        evaluate(scheme, version, a).map(|(s, f, _)| (s, f))
    }

    #[test]
    fn osv_events() {
        use Event::*;
        let a = affected(
            RangeKind::Ecosystem,
            vec![
                Introduced("1.0".into()),
                Fixed("1.5".into()),
                Introduced("2.0".into()),
                LastAffected("2.3".into()),
            ],
            &[],
        );
        assert_eq!(verdict(Scheme::Pep440, "0.9", &a), None);
        assert_eq!(
            verdict(Scheme::Pep440, "1.2", &a),
            Some((FindingStatus::Fixed, Some("1.5".into())))
        );
        assert_eq!(verdict(Scheme::Pep440, "1.5", &a), None);
        assert_eq!(
            verdict(Scheme::Pep440, "2.3", &a),
            Some((FindingStatus::Affected, None)),
            "last_affected is inclusive"
        );
        assert_eq!(verdict(Scheme::Pep440, "2.3.1", &a), None);
    }

    #[test]
    fn zero_star_and_limit_sort_by_rank() {
        use Event::*;
        // Out of order on purpose: "0" must sort first and "*" last.
        let a = affected(
            RangeKind::Ecosystem,
            vec![
                Fixed("1.0".into()),
                Limit("*".into()),
                Introduced("0".into()),
            ],
            &[],
        );
        assert_eq!(
            verdict(Scheme::Pep440, "0.5", &a),
            Some((FindingStatus::Fixed, Some("1.0".into())))
        );
        assert_eq!(verdict(Scheme::Pep440, "2.0", &a), None);
        let limited = affected(
            RangeKind::Ecosystem,
            vec![Introduced("0".into()), Limit("3.0".into())],
            &[],
        );
        assert_eq!(
            verdict(Scheme::Pep440, "2.9", &limited),
            Some((FindingStatus::Affected, None))
        );
        assert_eq!(verdict(Scheme::Pep440, "3.0", &limited), None);
    }

    #[test]
    fn versions_list_git_ranges_and_unparseable_versions() {
        use Event::*;
        let listed = affected(
            RangeKind::Git,
            vec![Introduced("abc123".into()), Fixed("def456".into())],
            &["1.1", "1.2"],
        );
        assert_eq!(
            verdict(Scheme::Pep440, "1.2", &listed),
            Some((FindingStatus::Affected, None))
        );
        assert_eq!(
            verdict(Scheme::Pep440, "1.3", &listed),
            None,
            "GIT ranges never match"
        );
        let a = affected(
            RangeKind::Ecosystem,
            vec![Introduced("0".into()), Fixed("2.0".into())],
            &[],
        );
        assert_eq!(
            verdict(Scheme::Dpkg, "not a version!", &a).map(|v| v.0),
            Some(FindingStatus::Unknown),
            "an unreadable installed version is unknown, not clean"
        );
    }

    #[test]
    fn vendor_statuses() {
        let mut a = affected(RangeKind::Ecosystem, Vec::new(), &[]);
        for (status, want) in [
            (AffectedStatus::Unfixed, Some(FindingStatus::Affected)),
            (AffectedStatus::WillNotFix, Some(FindingStatus::WillNotFix)),
            (
                AffectedStatus::FixDeferred,
                Some(FindingStatus::FixDeferred),
            ),
            (AffectedStatus::EndOfLife, Some(FindingStatus::EndOfLife)),
            (AffectedStatus::Unknown, Some(FindingStatus::Unknown)),
            (AffectedStatus::NotAffected, None),
        ] {
            a.status = status;
            assert_eq!(verdict(Scheme::Dpkg, "1.0-1", &a).map(|v| v.0), want);
        }
    }
}
