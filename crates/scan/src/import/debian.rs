//! Debian security tracker importers: the JSON export
//! (`https://security-tracker.debian.org/tracker/data/json`) and the DSA/DLA lists
//! (`data/DSA/list`, `data/DLA/list` of salsa.debian.org/security-tracker-team/security-tracker).
//! No crate reads either format, so both are parsed here: the JSON with `serde_json` as a
//! stream, the lists line by line.
//!
//! Tracker JSON, `{source package: {CVE: {description, releases: {codename: {status,
//! fixed_version, urgency, nodsa, nodsa_reason, repositories}}}}}`: one [`Advisory`] per CVE
//! (or `TEMP-…` id, kept as is), with one [`AffectedPackage`] per (release, source package),
//! ecosystem `debian:<major>`. Status:
//! - `resolved` with `fixed_version` `"0"` → [`AffectedStatus::NotAffected`] (the tracker's
//!   convention for "never affected"); with a version → range `[introduced 0, fixed V]`.
//! - `open` with urgency `end-of-life` → [`AffectedStatus::EndOfLife`]; with `nodsa_reason`
//!   `ignored` → [`AffectedStatus::WillNotFix`], `postponed` → [`AffectedStatus::FixDeferred`];
//!   otherwise [`AffectedStatus::Unfixed`].
//! - `undetermined` → [`AffectedStatus::Unknown`].
//!
//! The urgency becomes the package's severity with Trivy's mapping
//! (`aquasecurity/trivy-db` `pkg/vulnsrc/debian/debian.go`, `severityFromUrgency`); see
//! [`urgency_severity`].
//!
//! Releases are numbered from their codename (buzz 1.1 … trixie 13, forky 14, duke 15).
//! `sid` (unstable) has no number and keeps its name: `debian:sid`, so that a sid image can
//! still be matched; a DB builder that does not want it drops that one key. Unknown codenames
//! are skipped and reported.
//!
//! DSA/DLA lists: a header `[29 Mar 2023] DSA-5380-1 xorg-server - security update`, then
//! indented lines: `{CVE-… CVE-…}` (the aliases), `[bullseye] - xorg-server 2:1.20.11-1+deb11u6`
//! (one per release; the version may be a tag such as `<not-affected>`, `<end-of-life>` or
//! `<unfixed>`, and be followed by notes in parentheses, sometimes with an urgency), and
//! `NOTE:` lines (free text, ignored). One [`Advisory`] per DSA/DLA id, source `debian-dsa` or
//! `debian-dla`, published on the header's date (as RFC 3339, midnight UTC).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::Value;

use super::{
    ImportError, ImportStats, Record, Sink, emit, json_error, open_buffered, read_line_capped,
    summary_line,
};
use crate::advisory::{
    Advisory, AffectedPackage, AffectedStatus, Event, Range, RangeKind, Severity,
};

/// Debian urgency to severity, following Trivy: `unimportant` and `low` → Low, `medium` →
/// Medium, `high` → High, `not yet assigned` and `end-of-life` → Unknown. The `*` and `**`
/// suffixes (urgency derived from NVD rather than set by the team) are ignored.
///
/// Clair maps one step higher (`low` → Medium, `medium` → High, `high` → Critical;
/// `quay/claircore` `debian/severity.go`); Bonded follows Trivy so that the same urgency reads
/// the same in both tools' most common comparison.
pub fn urgency_severity(urgency: &str) -> Option<Severity> {
    match urgency.trim().trim_end_matches('*').trim() {
        "unimportant" | "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "not yet assigned" | "end-of-life" => Some(Severity::Unknown),
        _ => None,
    }
}

/// The ecosystem key of a Debian release codename, `bookworm` → `debian:12`.
pub fn release_ecosystem(codename: &str) -> Option<String> {
    let number = match codename {
        "buzz" => "1.1",
        "rex" => "1.2",
        "bo" => "1.3",
        "hamm" => "2.0",
        "slink" => "2.1",
        "potato" => "2.2",
        "woody" => "3.0",
        "sarge" => "3.1",
        "etch" => "4",
        "lenny" => "5",
        "squeeze" => "6",
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        "sid" => "sid",
        _ => return None,
    };
    Some(format!("debian:{number}"))
}

fn fixed_range(version: &str) -> Vec<Range> {
    vec![Range {
        kind: RangeKind::Ecosystem,
        events: vec![
            Event::Introduced("0".to_owned()),
            Event::Fixed(version.to_owned()),
        ],
    }]
}

fn tracker_url(id: &str) -> String {
    format!("https://security-tracker.debian.org/tracker/{id}")
}

// ---------------------------------------------------------------------------------------
// Tracker JSON
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TrackerIssue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "releases")]
    releases: BTreeMap<String, TrackerRelease>,
}

#[derive(Deserialize)]
struct TrackerRelease {
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    nodsa_reason: Option<String>,
}

/// `releases` is an object, except that the export writes an empty one as `[]`.
fn releases<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, TrackerRelease>, D::Error> {
    struct Releases;
    impl<'de> Visitor<'de> for Releases {
        type Value = BTreeMap<String, TrackerRelease>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of releases (or an empty list)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            match seq.next_element::<de::IgnoredAny>()? {
                None => Ok(BTreeMap::new()),
                Some(_) => Err(de::Error::custom("releases must be an object")),
            }
        }
    }
    deserializer.deserialize_any(Releases)
}

/// Reads the tracker JSON one source package at a time, grouping by CVE, then emits one
/// advisory per CVE in id order. A malformed CVE entry is skipped; malformed JSON is an error.
pub(super) fn import_tracker_json(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let mut advisories = BTreeMap::new();
    let mut deserializer = serde_json::Deserializer::from_reader(open_buffered(path)?);
    TrackerSeed {
        advisories: &mut advisories,
        stats,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|e| json_error(path, &e))?;
    for advisory in advisories.into_values() {
        if advisory.affected.is_empty() {
            stats.skip(advisory.id, "no release data");
            continue;
        }
        emit(sink, stats, Record::Advisory(advisory))?;
    }
    Ok(())
}

struct TrackerSeed<'a> {
    advisories: &'a mut BTreeMap<String, Advisory>,
    stats: &'a mut ImportStats,
}

impl<'de> DeserializeSeed<'de> for TrackerSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TrackerSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object keyed by source package")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(package) = map.next_key::<String>()? {
            let issues: Value = map.next_value()?;
            let Value::Object(issues) = issues else {
                self.stats.skip(package, "not an object keyed by CVE");
                continue;
            };
            for (id, issue) in issues {
                match serde_json::from_value::<TrackerIssue>(issue) {
                    Ok(issue) => add_issue(self.advisories, self.stats, &package, id, issue),
                    Err(e) => self.stats.skip(format!("{package}/{id}"), e.to_string()),
                }
            }
        }
        Ok(())
    }
}

fn add_issue(
    advisories: &mut BTreeMap<String, Advisory>,
    stats: &mut ImportStats,
    package: &str,
    id: String,
    issue: TrackerIssue,
) {
    let mut affected = Vec::new();
    for (codename, release) in &issue.releases {
        match release_package(package, codename, release) {
            Ok(p) => affected.push(p),
            Err(reason) => stats.skip(format!("{package}/{id}/{codename}"), reason),
        }
    }
    let advisory = advisories.entry(id.clone()).or_insert_with(|| Advisory {
        references: vec![tracker_url(&id)],
        id,
        aliases: Vec::new(),
        source: "debian-tracker".to_owned(),
        summary: None,
        published: None,
        modified: None,
        withdrawn: None,
        severity: Vec::new(),
        affected: Vec::new(),
    });
    if advisory.summary.is_none() {
        advisory.summary = issue.description.as_deref().and_then(summary_line);
    }
    advisory.affected.extend(affected);
}

fn release_package(
    package: &str,
    codename: &str,
    release: &TrackerRelease,
) -> Result<AffectedPackage, String> {
    let ecosystem =
        release_ecosystem(codename).ok_or_else(|| format!("unknown release {codename:?}"))?;
    let urgency = release.urgency.as_deref().unwrap_or("");
    let end_of_life = urgency.trim_end_matches('*') == "end-of-life";
    let (status, ranges) = match (release.status.as_str(), release.fixed_version.as_deref()) {
        ("resolved", Some("0")) => (AffectedStatus::NotAffected, Vec::new()),
        ("resolved", Some(version)) if !version.trim().is_empty() => {
            (AffectedStatus::Ranges, fixed_range(version.trim()))
        }
        ("resolved", _) => return Err("resolved without a fixed version".to_owned()),
        ("open", _) if end_of_life => (AffectedStatus::EndOfLife, Vec::new()),
        ("open", _) => (open_status(release.nodsa_reason.as_deref()), Vec::new()),
        ("undetermined", _) => (AffectedStatus::Unknown, Vec::new()),
        (other, _) => return Err(format!("unknown status {other:?}")),
    };
    Ok(AffectedPackage {
        ecosystem,
        name: package.to_owned(),
        ranges,
        versions: Vec::new(),
        status,
        severity: urgency_severity(urgency),
    })
}

/// An open issue's status from its `nodsa_reason` (the `<no-dsa>`, `<ignored>`, `<postponed>`
/// annotations of `data/CVE/list`).
fn open_status(nodsa_reason: Option<&str>) -> AffectedStatus {
    match nodsa_reason {
        Some("ignored") => AffectedStatus::WillNotFix,
        Some("postponed") => AffectedStatus::FixDeferred,
        _ => AffectedStatus::Unfixed,
    }
}

// ---------------------------------------------------------------------------------------
// DSA / DLA lists
// ---------------------------------------------------------------------------------------

struct Header<'a> {
    published: String,
    id: &'a str,
    summary: &'a str,
}

/// Whether `line` is a DSA/DLA list header (`[29 Mar 2023] DSA-5380-1 …`).
pub(super) fn is_advisory_list_header(line: &str) -> bool {
    parse_header(line).is_some()
}

fn parse_header(line: &str) -> Option<Header<'_>> {
    let (date, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let published = rfc3339_date(date)?;
    let (id, rest) = rest.trim_start().split_once(' ').unwrap_or((rest, ""));
    let number = id
        .strip_prefix("DSA-")
        .or_else(|| id.strip_prefix("DLA-"))?;
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    // `<packages> - <title>`; old entries use `--`, a few have no title.
    let rest = rest.trim();
    let summary = rest
        .split_once(" -- ")
        .or_else(|| rest.split_once(" - "))
        .map_or(rest, |(_, title)| title.trim());
    Some(Header {
        published,
        id,
        summary,
    })
}

/// `29 Mar 2023` → `2023-03-29T00:00:00Z`.
fn rfc3339_date(date: &str) -> Option<String> {
    let mut parts = date.split_whitespace();
    let day: u8 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) || !(1990..=9999).contains(&year) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"))
}

/// Streams a DSA or DLA list, emitting each advisory when the next header (or the end of the
/// file) closes it. Unrecognized lines are skipped and reported with their line number.
pub(super) fn import_advisory_list(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let mut reader = open_buffered(path)?;
    let mut line = String::new();
    let mut line_number = 0;
    let mut current: Option<Advisory> = None;
    loop {
        line_number += 1;
        if !read_line_capped(&mut reader, &mut line, path, line_number)? {
            break;
        }
        if let Some(header) = parse_header(&line) {
            finish(current.take(), sink, stats)?;
            current = Some(new_list_advisory(&header));
            continue;
        }
        let body = line.trim();
        if body.is_empty() || body.starts_with("NOTE:") {
            continue;
        }
        let location = format!("line {line_number}");
        match current.as_mut() {
            Some(advisory) if line.starts_with(char::is_whitespace) => {
                if let Err(reason) = add_body_line(advisory, body) {
                    stats.skip(format!("{} ({location})", advisory.id), reason);
                }
            }
            _ => stats.skip(location, "not a header or an indented advisory line"),
        }
    }
    finish(current, sink, stats)
}

fn new_list_advisory(header: &Header<'_>) -> Advisory {
    let source = if header.id.starts_with("DLA-") {
        "debian-dla"
    } else {
        "debian-dsa"
    };
    Advisory {
        id: header.id.to_owned(),
        aliases: Vec::new(),
        source: source.to_owned(),
        summary: Some(header.summary.to_owned()).filter(|s| !s.is_empty()),
        published: Some(header.published.clone()),
        modified: None,
        withdrawn: None,
        severity: Vec::new(),
        references: vec![tracker_url(header.id)],
        affected: Vec::new(),
    }
}

fn finish(
    advisory: Option<Advisory>,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    match advisory {
        None => Ok(()),
        Some(a) if a.affected.is_empty() => {
            stats.skip(a.id, "no package lines (an announcement, not a fix)");
            Ok(())
        }
        Some(a) => emit(sink, stats, Record::Advisory(a)),
    }
}

/// Adds one indented line (`{CVE…}` or `[release] - package version (notes)`).
fn add_body_line(advisory: &mut Advisory, body: &str) -> Result<(), String> {
    if let Some(ids) = body.strip_prefix('{') {
        let ids = ids.strip_suffix('}').ok_or("unterminated {…} list")?;
        for id in ids.split_whitespace() {
            if id != advisory.id && !advisory.aliases.iter().any(|a| a == id) {
                advisory.aliases.push(id.to_owned());
            }
        }
        return Ok(());
    }
    advisory.affected.push(release_line(body)?);
    Ok(())
}

/// `[bullseye] - xorg-server 2:1.20.11-1+deb11u6`, `[woody] - mantis <not-affected> (…)`,
/// `[sarge] - awstats 6.4-1sarge1 (bug #322591; medium)`.
fn release_line(body: &str) -> Result<AffectedPackage, String> {
    let unrecognized = || format!("unrecognized line {body:?}");
    let (codename, rest) = body
        .strip_prefix('[')
        .and_then(|b| b.split_once(']'))
        .ok_or_else(unrecognized)?;
    let rest = rest
        .trim_start()
        .strip_prefix('-')
        .ok_or_else(unrecognized)?;
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let name = words
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(unrecognized)?;
    let rest = words.next().unwrap_or("").trim();
    let (version, notes) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let ecosystem =
        release_ecosystem(codename).ok_or_else(|| format!("unknown release {codename:?}"))?;
    let (status, ranges) = match version {
        "" => return Err(format!("no version in {body:?}")),
        "<not-affected>" => (AffectedStatus::NotAffected, Vec::new()),
        "<end-of-life>" => (AffectedStatus::EndOfLife, Vec::new()),
        "<unfixed>" | "<no-dsa>" => (AffectedStatus::Unfixed, Vec::new()),
        "<ignored>" => (AffectedStatus::WillNotFix, Vec::new()),
        "<postponed>" => (AffectedStatus::FixDeferred, Vec::new()),
        "<undetermined>" => (AffectedStatus::Unknown, Vec::new()),
        tag if tag.starts_with('<') => return Err(format!("unknown annotation {tag}")),
        fixed => (AffectedStatus::Ranges, fixed_range(fixed)),
    };
    Ok(AffectedPackage {
        ecosystem,
        name: name.to_owned(),
        ranges,
        versions: Vec::new(),
        status,
        severity: notes_urgency(notes),
    })
}

/// An urgency among the `;`-separated notes in parentheses: `(bug #332524; medium)`.
fn notes_urgency(notes: &str) -> Option<Severity> {
    let inner = notes.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(';')
        .map(str::trim)
        .filter(|item| matches!(*item, "unimportant" | "low" | "medium" | "high"))
        .find_map(urgency_severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgencies() {
        assert_eq!(urgency_severity("high**"), Some(Severity::High));
        assert_eq!(urgency_severity("unimportant"), Some(Severity::Low));
        assert_eq!(
            urgency_severity("not yet assigned"),
            Some(Severity::Unknown)
        );
        assert_eq!(urgency_severity("whatever"), None);
    }

    #[test]
    fn headers() {
        let h = parse_header("[29 Mar 2023] DSA-5380-1 xorg-server - security update").unwrap();
        assert_eq!(
            (h.id, h.summary, h.published.as_str()),
            ("DSA-5380-1", "security update", "2023-03-29T00:00:00Z")
        );
        let h = parse_header("[26 Sep 2010] DSA-2114-1 git-core").unwrap();
        assert_eq!(h.summary, "git-core");
        assert!(parse_header("[32 Mar 2023] DSA-1-1 x - y").is_none());
        assert!(parse_header("[29 Mar 2023] CVE-2023-1 x - y").is_none());
    }

    #[test]
    fn release_lines() {
        let p = release_line("[woody] - phpgroupware <unfixed> (high)").unwrap();
        assert_eq!(p.status, AffectedStatus::Unfixed);
        assert_eq!(p.severity, Some(Severity::High));
        assert_eq!(p.ecosystem, "debian:3.0");
        assert!(release_line("[hurd] - x 1.0").is_err());
        assert!(release_line("[sarge] - x").is_err());
    }
}
