//! Alpine secdb importer (`https://secdb.alpinelinux.org/<branch>/<repo>.json`, and the same
//! shape in YAML from the historical `alpinelinux/alpine-secdb` repository):
//! `{distroversion: v3.11, reponame, packages: [{pkg: {name, secfixes: {"<fixed>": [ids]}}}]}`.
//!
//! The secdb lists fixes only ("this package release fixed these ids"), generated from the
//! `# secfixes:` comments of aports APKBUILDs. One [`Advisory`] per vulnerability id per input
//! file (an id fixed in several packages is merged into one advisory), source `alpine-secdb`,
//! one [`AffectedPackage`] per (package, fixed version) under `alpine:<x.y>`, with the range
//! `[introduced 0, fixed V]`; the key `"0"` means the package was never affected
//! ([`AffectedStatus::NotAffected`]). Package names are origin (source) package names.
//!
//! An entry may hold several ids separated by spaces (`"CVE-2019-5060 TALOS-2019-0844"`,
//! `"CVE-2018-3620 CVE-2018-3646 XSA-273"`): each CVE or GHSA id in it is a vulnerability of its
//! own, and the other tokens (vendor ids such as `TALOS-…`, `XSA-…`) become aliases of each of
//! them. An entry with no CVE or GHSA id (`"XSA-207"`, the typo `"CVE_2019-2426"`) keeps its
//! first token as the id, whitespace normalized.
//!
//! YAML is read with `serde-saphyr`: `serde_yaml` is deprecated, and `serde_yml` is
//! unmaintained (its last release only forwards to another crate); `serde-saphyr` is actively
//! released, pure Rust, built for panic-free parsing of untrusted input, and enforces budgets
//! (events, depth, alias expansion) against YAML bombs. It reads unquoted keys such as
//! `2.9.3-r0:` or `1.10:` as their literal text when a string is asked for, which the fixed
//! versions need. JSON input goes through `serde_json`, which reports line and column.
//! Empty lists are sometimes published as `{}` (`"packages": {}`, `"2.8.0-r0": {}`); that
//! form, and `null`, are read as empty lists.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{
    ImportError, ImportStats, MAX_DOCUMENT_BYTES, Record, Sink, emit, json_error, read_capped,
};
use crate::advisory::{
    Advisory, AffectedPackage, AffectedStatus, Event, Range, RangeKind, ecosystem_key,
};

#[derive(Deserialize)]
struct Secdb {
    distroversion: String,
    packages: Lenient<PackageEntry>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: Package,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Lenient<Option<String>>>>,
}

/// A list as the secdb generator writes it: a list, or `{}` or `null` when it is empty
/// (`"packages": {}`, `"2.8.0-r0": {}` are both published).
struct Lenient<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(Lenient(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                match map.next_key::<de::IgnoredAny>()? {
                    None => Ok(Lenient(Vec::new())),
                    Some(_) => Err(de::Error::custom(
                        "expected a list, found a non-empty object",
                    )),
                }
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(Vec::new()))
            }
        }
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

/// Whether a text file looks like a YAML secdb: top-level `distroversion:` and `packages:`.
pub(super) fn looks_like_yaml_secdb(text: &str) -> bool {
    let has_key = |key: &str| text.lines().any(|l| l.starts_with(key));
    has_key("distroversion:") && has_key("packages:")
}

pub(super) fn import_secdb(
    path: &Path,
    sink: &mut Sink<'_>,
    stats: &mut ImportStats,
) -> Result<(), ImportError> {
    let bytes = read_capped(path, MAX_DOCUMENT_BYTES)?;
    let secdb = parse(path, super::strip_bom(&bytes))?;
    let ecosystem = ecosystem_key(&format!("Alpine:{}", secdb.distroversion.trim()))
        .filter(|_| !secdb.distroversion.trim().is_empty())
        .ok_or_else(|| ImportError::Malformed {
            path: path.to_owned(),
            reason: format!("unusable distroversion {:?}", secdb.distroversion),
        })?;
    for advisory in advisories(&ecosystem, secdb.packages.0, stats).into_values() {
        emit(sink, stats, Record::Advisory(advisory))?;
    }
    Ok(())
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Secdb, ImportError> {
    let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_json {
        return serde_json::from_slice(bytes).map_err(|e| json_error(path, &e));
    }
    serde_saphyr::from_slice(bytes).map_err(|e| {
        let location = e.location();
        ImportError::Yaml {
            path: path.to_owned(),
            line: location.map_or(0, |l| l.line()),
            column: location.map_or(0, |l| l.column()),
            message: e.without_snippet().to_string(),
        }
    })
}

/// Groups the secfixes by vulnerability id.
fn advisories(
    ecosystem: &str,
    packages: Vec<PackageEntry>,
    stats: &mut ImportStats,
) -> BTreeMap<String, Advisory> {
    let mut out: BTreeMap<String, Advisory> = BTreeMap::new();
    for PackageEntry { pkg } in packages {
        let name = pkg.name.trim();
        if name.is_empty() {
            stats.skip("(package without a name)", "empty package name");
            continue;
        }
        for (fixed, entries) in pkg.secfixes.unwrap_or_default() {
            let fixed = fixed.trim();
            for entry in entries.0.into_iter().flatten() {
                let (ids, aliases) = split_entry(&entry);
                if ids.is_empty() {
                    stats.skip(format!("{name} {fixed}"), "empty vulnerability id");
                }
                for id in ids {
                    let advisory = out.entry(id.to_owned()).or_insert_with(|| new_advisory(id));
                    for alias in &aliases {
                        if !advisory.aliases.iter().any(|a| a == alias) {
                            advisory.aliases.push((*alias).to_owned());
                        }
                    }
                    advisory
                        .affected
                        .push(fixed_package(ecosystem, name, fixed));
                }
            }
        }
    }
    out
}

/// Splits one secfixes entry into its vulnerability ids and the other ids, its aliases.
fn split_entry(entry: &str) -> (Vec<&str>, Vec<&str>) {
    let tokens: Vec<&str> = entry.split_whitespace().collect();
    let (ids, others): (Vec<&str>, Vec<&str>) = tokens.iter().partition(|t| is_vulnerability_id(t));
    if !ids.is_empty() {
        return (ids, others);
    }
    match tokens.split_first() {
        Some((first, rest)) => (vec![*first], rest.to_vec()),
        None => (Vec::new(), Vec::new()),
    }
}

/// `CVE-YYYY-N…` or `GHSA-…`.
fn is_vulnerability_id(token: &str) -> bool {
    if token.starts_with("GHSA-") {
        return true;
    }
    let Some(rest) = token.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

fn new_advisory(id: &str) -> Advisory {
    Advisory {
        id: id.to_owned(),
        aliases: Vec::new(),
        source: "alpine-secdb".to_owned(),
        summary: None,
        published: None,
        modified: None,
        withdrawn: None,
        severity: Vec::new(),
        references: Vec::new(),
        affected: Vec::new(),
    }
}

fn fixed_package(ecosystem: &str, name: &str, fixed: &str) -> AffectedPackage {
    let (status, ranges) = if fixed == "0" {
        (AffectedStatus::NotAffected, Vec::new())
    } else {
        let events = vec![
            Event::Introduced("0".to_owned()),
            Event::Fixed(fixed.to_owned()),
        ];
        (
            AffectedStatus::Ranges,
            vec![Range {
                kind: RangeKind::Ecosystem,
                events,
            }],
        )
    };
    AffectedPackage {
        ecosystem: ecosystem.to_owned(),
        name: name.to_owned(),
        ranges,
        versions: Vec::new(),
        status,
        severity: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_into_ids_and_aliases() {
        assert_eq!(
            split_entry("CVE-2018-3620 CVE-2018-3646  XSA-273"),
            (vec!["CVE-2018-3620", "CVE-2018-3646"], vec!["XSA-273"])
        );
        assert_eq!(split_entry(" XSA-207 "), (vec!["XSA-207"], vec![]));
        assert_eq!(
            split_entry("CVE_2019-2426"),
            (vec!["CVE_2019-2426"], vec![])
        );
        assert_eq!(split_entry("  "), (vec![], vec![]));
    }
}
