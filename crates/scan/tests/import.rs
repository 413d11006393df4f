//! Tests of the advisory importers on real published records (see
//! `tests/fixtures/import/SOURCES.md`): exact field-by-field expectations on known advisories,
//! format detection, whole-file counts, malformed and hostile inputs, and no-panic properties.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use scan::advisory::{
    Advisory, AffectedPackage, AffectedStatus, Event, Range, RangeKind, Severity, SeverityRating,
    VexStatement, VexStatus,
};
use scan::import::{ImportError, ImportStats, InputFormat, Record, detect, import};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

/// A scratch file path unique to one test (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("import-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", std::process::id()))
}

fn run(path: &Path, format: InputFormat) -> Result<(Vec<Record>, ImportStats), ImportError> {
    let mut records = Vec::new();
    let stats = import(path, format, &mut |r| {
        records.push(r);
        Ok(())
    })?;
    assert_eq!(stats.records, records.len());
    Ok((records, stats))
}

fn advisories(records: Vec<Record>) -> Vec<Advisory> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Advisory(a) => a,
            Record::Vex(v) => panic!("unexpected VEX statement {v:?}"),
        })
        .collect()
}

fn vex(records: Vec<Record>) -> Vec<VexStatement> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Vex(v) => v,
            Record::Advisory(a) => panic!("unexpected advisory {}", a.id),
        })
        .collect()
}

fn osv(file: &str) -> Advisory {
    let (records, stats) = run(&fixtures().join("osv").join(file), InputFormat::OsvJson).unwrap();
    assert!(stats.skipped.is_empty(), "{:?}", stats.skipped);
    let mut all = advisories(records);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn find<'a>(all: &'a [Advisory], id: &str) -> &'a Advisory {
    all.iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("{id} not imported"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A range from `(event, version)` pairs.
fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
    let events = events
        .iter()
        .map(|&(e, v)| match e {
            "introduced" => Event::Introduced(v.to_owned()),
            "fixed" => Event::Fixed(v.to_owned()),
            "last_affected" => Event::LastAffected(v.to_owned()),
            "limit" => Event::Limit(v.to_owned()),
            other => panic!("bad event {other}"),
        })
        .collect();
    Range { kind, events }
}

fn fixed_range(version: &str) -> Vec<Range> {
    vec![range(
        RangeKind::Ecosystem,
        &[("introduced", "0"), ("fixed", version)],
    )]
}

fn cvss(source: &str, method: &str, vector: &str, score: f32, level: Severity) -> SeverityRating {
    SeverityRating {
        source: source.to_owned(),
        level: Some(level),
        method: Some(method.to_owned()),
        vector: Some(vector.to_owned()),
        score: Some(score),
    }
}

fn level_only(source: &str, level: Severity) -> SeverityRating {
    SeverityRating {
        source: source.to_owned(),
        level: Some(level),
        method: None,
        vector: None,
        score: None,
    }
}

fn package(
    ecosystem: &str,
    name: &str,
    status: AffectedStatus,
    ranges: Vec<Range>,
) -> AffectedPackage {
    AffectedPackage {
        ecosystem: ecosystem.to_owned(),
        name: name.to_owned(),
        ranges,
        versions: Vec::new(),
        status,
        severity: None,
    }
}

// ----------------------------------------------------------------------------------------
// Detection
// ----------------------------------------------------------------------------------------

#[test]
fn detects_every_format_by_content() {
    let f = fixtures();
    let cases = [
        ("osv", InputFormat::OsvDirectory),
        ("Hackage-all.zip", InputFormat::OsvZip),
        ("osv/GO-2022-0969.json", InputFormat::OsvJson),
        ("osv/PYSEC-2019-217.json", InputFormat::OsvJson),
        ("debian/debian.json", InputFormat::DebianTrackerJson),
        ("debian/DSA-list", InputFormat::DebianAdvisoryList),
        ("debian/DLA-list", InputFormat::DebianAdvisoryList),
        ("alpine/v3.8-main.yaml", InputFormat::AlpineSecdb),
        ("alpine/v3.15-main-excerpt.yaml", InputFormat::AlpineSecdb),
        ("alpine/311-main.json", InputFormat::AlpineSecdb),
        ("alpine/312-community.json", InputFormat::AlpineSecdb),
        ("openvex/trivy-oci.openvex.json", InputFormat::OpenVex),
        ("openvex/document2.vex.json", InputFormat::OpenVex),
    ];
    for (file, format) in cases {
        assert_eq!(detect(&f.join(file)).unwrap(), format, "{file}");
    }
}

#[test]
fn detection_ignores_file_names() {
    // The same content under a misleading name is still recognized.
    let path = scratch("renamed.yaml");
    std::fs::copy(fixtures().join("osv/GO-2022-0969.json"), &path).unwrap();
    assert_eq!(detect(&path).unwrap(), InputFormat::OsvJson);
    std::fs::copy(fixtures().join("debian/DSA-list"), &path).unwrap();
    assert_eq!(detect(&path).unwrap(), InputFormat::DebianAdvisoryList);
}

#[test]
fn detection_rejects_other_json_and_text() {
    // VEX Hub's index is JSON with `packages`, but neither a secdb nor OpenVEX.
    let err = detect(&fixtures().join("openvex/vexhub-index.json")).unwrap_err();
    assert!(matches!(err, ImportError::UnknownFormat { .. }), "{err}");
    let err = detect(&fixtures().join("SOURCES.md")).unwrap_err();
    assert!(matches!(err, ImportError::UnknownFormat { .. }), "{err}");
    let err = detect(&fixtures().join("does-not-exist")).unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }), "{err}");
}

// ----------------------------------------------------------------------------------------
// OSV
// ----------------------------------------------------------------------------------------

#[test]
fn rustsec_2020_0071_time() {
    let a = osv("RUSTSEC-2020-0071.json");
    assert_eq!(a.id, "RUSTSEC-2020-0071");
    assert_eq!(a.source, "osv");
    assert_eq!(
        a.aliases,
        strings(&["CVE-2020-26235", "GHSA-wcg3-cvx6-7396"])
    );
    assert_eq!(
        a.summary.as_deref(),
        Some("Potential segfault in the time crate")
    );
    assert_eq!(a.published.as_deref(), Some("2020-11-18T12:00:00Z"));
    assert_eq!(a.modified.as_deref(), Some("2024-06-05T14:00:17Z"));
    assert_eq!(a.withdrawn, None);
    assert_eq!(
        a.severity,
        vec![cvss(
            "rustsec",
            "CVSS_V3",
            "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
            6.2,
            Severity::Medium
        )]
    );
    assert_eq!(
        a.references,
        strings(&[
            "https://crates.io/crates/time",
            "https://rustsec.org/advisories/RUSTSEC-2020-0071.html",
            "https://github.com/time-rs/time/issues/293",
        ])
    );
    let pairs = [
        ("0.0.0-0", "0.2.0"),
        ("0.2.1-0", "0.2.1"),
        ("0.2.2-0", "0.2.2"),
        ("0.2.3-0", "0.2.3"),
        ("0.2.4-0", "0.2.4"),
        ("0.2.5-0", "0.2.5"),
        ("0.2.6-0", "0.2.6"),
        ("0.2.7-0", "0.2.23"),
    ];
    let events: Vec<(&str, &str)> = pairs
        .iter()
        .flat_map(|&(i, f)| [("introduced", i), ("fixed", f)])
        .collect();
    assert_eq!(
        a.affected,
        vec![package(
            "crates.io",
            "time",
            AffectedStatus::Ranges,
            vec![range(RangeKind::Semver, &events)]
        )]
    );
}

#[test]
fn go_2022_0969_stdlib_and_x_net() {
    let a = osv("GO-2022-0969.json");
    assert_eq!(
        a.aliases,
        strings(&["CVE-2022-27664", "GHSA-69cg-p879-7622"])
    );
    assert_eq!(a.modified.as_deref(), Some("0001-01-01T00:00:00Z"));
    assert!(a.severity.is_empty());
    assert_eq!(
        a.affected,
        vec![
            package(
                "go",
                "stdlib",
                AffectedStatus::Ranges,
                vec![range(
                    RangeKind::Semver,
                    &[
                        ("introduced", "0"),
                        ("fixed", "1.18.6"),
                        ("introduced", "1.19.0-0"),
                        ("fixed", "1.19.1"),
                    ]
                )]
            ),
            package(
                "go",
                "golang.org/x/net",
                AffectedStatus::Ranges,
                vec![range(
                    RangeKind::Semver,
                    &[
                        ("introduced", "0"),
                        ("fixed", "0.0.0-20220906165146-f3363e06e74c"),
                    ]
                )]
            ),
        ]
    );
}

#[test]
fn pysec_2019_217_jinja2() {
    let a = osv("PYSEC-2019-217.json");
    assert_eq!(
        a.aliases,
        strings(&["CVE-2019-10906", "GHSA-462w-v97r-4m45"])
    );
    // No `summary`: the first line of `details` stands in.
    assert_eq!(
        a.summary.as_deref(),
        Some("In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape.")
    );
    assert_eq!(a.references.len(), 20);
    assert_eq!(a.affected.len(), 1);
    let p = &a.affected[0];
    assert_eq!((p.ecosystem.as_str(), p.name.as_str()), ("pypi", "jinja2"));
    assert_eq!(p.ranges, fixed_range("2.10.1"));
    assert_eq!(p.versions.len(), 31);
    assert_eq!(p.versions.first().map(String::as_str), Some("2.0"));
    assert_eq!(p.versions.last().map(String::as_str), Some("2.9.6"));
}

#[test]
fn ghsa_p6mc_m468_83gw_lodash() {
    let a = osv("GHSA-p6mc-m468-83gw.json");
    assert_eq!(a.aliases, strings(&["CVE-2020-8203"]));
    assert_eq!(
        a.severity,
        vec![
            cvss(
                "ghsa",
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H",
                7.4,
                Severity::High
            ),
            level_only("ghsa", Severity::High),
        ]
    );
    let names: Vec<(&str, &str)> = a
        .affected
        .iter()
        .map(|p| (p.ecosystem.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(names, [("npm", "lodash"), ("npm", "lodash-es")]);
    assert!(
        a.affected
            .iter()
            .all(|p| p.ranges == fixed_range("4.17.20"))
    );
}

#[test]
fn bitnami_per_package_severity() {
    let a = osv("BIT-drupal-2025-41240.json");
    let vector = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/RL:O";
    assert_eq!(
        a.severity,
        vec![
            level_only("bit", Severity::Critical),
            cvss("bit", "CVSS_V3", vector, 10.0, Severity::Critical),
        ]
    );
    let p = &a.affected[0];
    assert_eq!(
        (p.ecosystem.as_str(), p.name.as_str()),
        ("bitnami", "drupal")
    );
    assert_eq!(p.severity, Some(Severity::Critical));
    assert_eq!(
        p.ranges,
        vec![range(
            RangeKind::Semver,
            &[("introduced", "11.1.5-0"), ("fixed", "11.2.2-1")]
        )]
    );
}

#[test]
fn ubuntu_upstream_becomes_alias_and_priority_a_rating() {
    let a = osv("UBUNTU-CVE-2014-2901.json");
    assert_eq!(a.aliases, strings(&["CVE-2014-2901"]));
    assert_eq!(a.withdrawn.as_deref(), Some("2025-08-01T19:34:27Z"));
    assert_eq!(
        a.summary.as_deref(),
        Some("wolfssl before 3.2.0 does not properly issue certificates for a server's hostname.")
    );
    assert_eq!(
        a.severity,
        vec![
            cvss(
                "ubuntu",
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N",
                7.5,
                Severity::High
            ),
            SeverityRating {
                source: "ubuntu".to_owned(),
                level: Some(Severity::Medium),
                method: Some("Ubuntu".to_owned()),
                vector: None,
                score: None,
            },
        ]
    );
    let p = &a.affected[0];
    assert_eq!(
        (p.ecosystem.as_str(), p.name.as_str()),
        ("ubuntu:16.04", "wolfssl")
    );
    assert_eq!(p.versions, strings(&["3.4.8+dfsg-1"]));
    assert_eq!(
        p.ranges,
        vec![range(RangeKind::Ecosystem, &[("introduced", "0")])]
    );
}

#[test]
fn git_ranges_are_kept_next_to_ecosystem_ranges() {
    let a = osv("PYSEC-2022-297.json");
    assert_eq!(
        a.affected,
        vec![package(
            "pypi",
            "rdiffweb",
            AffectedStatus::Ranges,
            vec![
                range(
                    RangeKind::Git,
                    &[
                        ("introduced", "0"),
                        ("fixed", "ee98e5af78ec60db8a17fef6ea0ca250e3f31eec")
                    ]
                ),
                range(
                    RangeKind::Ecosystem,
                    &[("introduced", "0"), ("fixed", "2.4.9")]
                ),
            ]
        )]
    );
}

#[test]
fn cvss_v4_and_last_affected() {
    let a = osv("RUSTSEC-2026-0024.json");
    let vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N";
    // A v4 vector with no impact scores 0.0, which has no qualitative level.
    assert_eq!(
        a.severity,
        vec![cvss("rustsec", "CVSS_V4", vector, 0.0, Severity::Unknown)]
    );
    let a = osv("PYSEC-2022-42969.json");
    assert_eq!(
        a.affected[0].ranges,
        vec![range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("last_affected", "1.11.0")]
        )]
    );
}

#[test]
fn record_without_supported_package_is_skipped_and_counted() {
    let (records, stats) = run(
        &fixtures().join("osv/PSF-2023-4.json"),
        InputFormat::OsvJson,
    )
    .unwrap();
    assert!(records.is_empty());
    assert_eq!(stats.unsupported_ecosystems.get("(none)"), Some(&1));
    assert_eq!(stats.skipped.len(), 1);
    assert_eq!(stats.skipped[0].0, "PSF-2023-4");
}

#[test]
fn osv_directory_imports_every_record() {
    let (records, stats) = run(&fixtures().join("osv"), InputFormat::OsvDirectory).unwrap();
    let all = advisories(records);
    assert_eq!(all.len(), 10);
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    // Sorted by file name.
    assert_eq!(ids[0], "BIT-drupal-2025-41240");
    assert_eq!(ids[9], "UBUNTU-CVE-2020-36325");
    assert_eq!(stats.skipped.len(), 1, "{:?}", stats.skipped);
    assert_eq!(stats.skipped[0].0, "PSF-2023-4");
    assert_eq!(
        find(&all, "UBUNTU-CVE-2020-36325").withdrawn.as_deref(),
        Some("2025-06-23T15:53:49Z")
    );
}

#[test]
fn hackage_zip_counts_unsupported_ecosystems() {
    let (records, stats) = run(&fixtures().join("Hackage-all.zip"), InputFormat::OsvZip).unwrap();
    assert!(records.is_empty());
    assert_eq!(stats.skipped.len(), 35);
    assert!(stats.skipped.iter().all(|(id, _)| id.starts_with("HSEC-")));
    assert_eq!(stats.unsupported_ecosystems.len(), 2);
    assert_eq!(stats.unsupported_ecosystems["Hackage"], 41);
    assert_eq!(stats.unsupported_ecosystems["GHC"], 3);
}

/// Writes a zip of `(name, bytes)` members, deflated.
fn write_zip(path: &Path, members: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn osv_fixture_members() -> Vec<(String, Vec<u8>)> {
    let mut members: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures().join("osv"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    members.sort();
    members
}

#[test]
fn zip_of_real_records_skips_bad_members_and_continues() {
    let mut members = osv_fixture_members();
    // A truncated record, a record breaking the one-bound-per-event rule, and a README.
    let go = std::fs::read(fixtures().join("osv/GO-2022-0969.json")).unwrap();
    members.insert(
        0,
        ("AAA-truncated.json".to_owned(), go[..go.len() / 2].to_vec()),
    );
    let two_bounds = String::from_utf8(go.clone()).unwrap().replacen(
        r#""fixed": "1.18.6""#,
        r#""fixed": "1.18.6", "limit": "2""#,
        1,
    );
    members.push(("ZZZ-two-bounds.json".to_owned(), two_bounds.into_bytes()));
    members.push(("README.md".to_owned(), b"not a record".to_vec()));
    let path = scratch("mixed.zip");
    write_zip(&path, &members);

    assert_eq!(detect(&path).unwrap(), InputFormat::OsvZip);
    let (records, stats) = run(&path, InputFormat::OsvZip).unwrap();
    assert_eq!(records.len(), 10);
    let skipped: Vec<&str> = stats.skipped.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "AAA-truncated.json",
            "PSF-2023-4",
            "ZZZ-two-bounds.json",
            "README.md"
        ]
    );
    assert!(
        stats.skipped[0].1.contains("invalid OSV JSON"),
        "{:?}",
        stats.skipped[0]
    );
    assert!(
        stats.skipped[2].1.contains("exactly one"),
        "{:?}",
        stats.skipped[2]
    );
}

#[test]
fn zip_member_over_the_limit_is_an_error() {
    let mut members = osv_fixture_members();
    // 17 MiB of spaces deflate to a few KiB: a small zip, a large member.
    members.push(("BIG.json".to_owned(), vec![b' '; 17 * 1024 * 1024]));
    let path = scratch("big.zip");
    write_zip(&path, &members);
    let err = run(&path, InputFormat::OsvZip).unwrap_err();
    match err {
        ImportError::EntryTooLarge { entry, limit, .. } => {
            assert_eq!(entry, "BIG.json");
            assert_eq!(limit, 16 * 1024 * 1024);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn malformed_osv_files_are_errors_with_positions() {
    let path = scratch("truncated.json");
    let go = std::fs::read(fixtures().join("osv/GO-2022-0969.json")).unwrap();
    std::fs::write(&path, &go[..1000]).unwrap();
    match run(&path, InputFormat::OsvJson).unwrap_err() {
        ImportError::Json { line, path: p, .. } => {
            assert!(line > 1);
            assert_eq!(p, path);
        }
        other => panic!("unexpected {other}"),
    }
    let bad_range =
        String::from_utf8(go)
            .unwrap()
            .replacen(r#""type": "SEMVER""#, r#""type": "CALVER""#, 1);
    std::fs::write(&path, bad_range).unwrap();
    let err = run(&path, InputFormat::OsvJson).unwrap_err();
    assert!(matches!(err, ImportError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("CALVER"), "{err}");

    std::fs::write(&path, b"PK\x03\x04 definitely not a zip").unwrap();
    assert_eq!(detect(&path).unwrap(), InputFormat::OsvZip);
    let err = run(&path, InputFormat::OsvZip).unwrap_err();
    assert!(matches!(err, ImportError::Zip { .. }), "{err}");
}

#[test]
fn sink_errors_stop_the_import() {
    let mut seen = 0;
    let result = import(
        &fixtures().join("osv"),
        InputFormat::OsvDirectory,
        &mut |_| {
            seen += 1;
            Err(ImportError::Sink("database full".into()))
        },
    );
    assert!(matches!(result, Err(ImportError::Sink(_))));
    assert_eq!(seen, 1);
}

// ----------------------------------------------------------------------------------------
// Debian
// ----------------------------------------------------------------------------------------

fn tracker() -> (Vec<Advisory>, ImportStats) {
    let (records, stats) = run(
        &fixtures().join("debian/debian.json"),
        InputFormat::DebianTrackerJson,
    )
    .unwrap();
    (advisories(records), stats)
}

#[test]
fn tracker_json_one_advisory_per_cve() {
    let (all, stats) = tracker();
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "CVE-2005-3111",
            "CVE-2007-2383",
            "CVE-2008-7220",
            "CVE-2013-1444",
            "CVE-2022-0456",
            "CVE-2025-53603"
        ]
    );
    // CVE-2022-0358 has `"releases": []`.
    assert_eq!(
        stats.skipped,
        vec![("CVE-2022-0358".to_owned(), "no release data".to_owned())]
    );
    assert!(all.iter().all(|a| a.source == "debian-tracker"));
}

#[test]
fn tracker_json_statuses_and_urgencies() {
    let (all, _) = tracker();
    let chromium = find(&all, "CVE-2022-0456");
    assert_eq!(
        chromium.references,
        strings(&["https://security-tracker.debian.org/tracker/CVE-2022-0456"])
    );
    let unknown = Some(Severity::Unknown);
    let expected = vec![
        AffectedPackage {
            severity: unknown,
            ..package(
                "debian:12",
                "chromium",
                AffectedStatus::Ranges,
                fixed_range("98.0.4758.80-1"),
            )
        },
        AffectedPackage {
            severity: unknown,
            ..package(
                "debian:11",
                "chromium",
                AffectedStatus::Ranges,
                fixed_range("98.0.4758.80-1~deb11u1"),
            )
        },
        AffectedPackage {
            severity: unknown,
            ..package("debian:10", "chromium", AffectedStatus::EndOfLife, vec![])
        },
        AffectedPackage {
            severity: unknown,
            ..package(
                "debian:sid",
                "chromium",
                AffectedStatus::Ranges,
                fixed_range("98.0.4758.80-1"),
            )
        },
        AffectedPackage {
            severity: unknown,
            ..package("debian:9", "chromium", AffectedStatus::EndOfLife, vec![])
        },
    ];
    assert_eq!(chromium.affected, expected);

    // fixed_version "0": never affected; urgency "unimportant" is Low.
    let prototype = find(&all, "CVE-2007-2383");
    assert_eq!(prototype.affected.len(), 4);
    assert!(
        prototype
            .affected
            .iter()
            .all(|p| p.status == AffectedStatus::NotAffected
                && p.ranges.is_empty()
                && p.severity == Some(Severity::Low)
                && p.name == "prototypejs")
    );

    // `high**`: the asterisks are dropped.
    let p = &find(&all, "CVE-2008-7220").affected[0];
    assert_eq!(
        (p.ecosystem.as_str(), p.severity),
        ("debian:10", Some(Severity::High))
    );
    assert_eq!(
        find(&all, "CVE-2008-7220").summary.as_deref(),
        Some(
            "Unspecified vulnerability in Prototype JavaScript framework (prototypejs) before \
             1.6.0.2 allows attackers to make \"cross-site ajax requests\" via unknown vectors."
        )
    );
    let ecosystems: Vec<&str> = find(&all, "CVE-2025-53603")
        .affected
        .iter()
        .map(|p| p.ecosystem.as_str())
        .collect();
    assert_eq!(
        ecosystems,
        ["debian:12", "debian:11", "debian:sid", "debian:13"]
    );
}

#[test]
fn tracker_json_open_issue_annotations() {
    // The fixture has no open issue with `nodsa_reason`; this is the export's shape for one
    // (fields as in the tracker's JSON, values from its `<ignored>`/`<postponed>` annotations).
    let path = scratch("tracker-open.json");
    std::fs::write(
        &path,
        r#"{"glibc": {"CVE-2010-4756": {"releases": {
            "bookworm": {"status": "open", "repositories": {"bookworm": "2.36-9"},
                         "urgency": "unimportant", "nodsa": "yes", "nodsa_reason": "ignored"},
            "bullseye": {"status": "open", "urgency": "low", "nodsa": "yes", "nodsa_reason": "postponed"},
            "trixie": {"status": "open", "urgency": "medium"},
            "forky": {"status": "undetermined", "urgency": "not yet assigned"},
            "hurd": {"status": "open", "urgency": "low"},
            "buster": {"status": "resolved", "urgency": "low"}
        }}}, "TEMP-0000000-1": 5}"#,
    )
    .unwrap();
    let (records, stats) = run(&path, InputFormat::DebianTrackerJson).unwrap();
    let all = advisories(records);
    let statuses: Vec<(&str, &AffectedStatus)> = all[0]
        .affected
        .iter()
        .map(|p| (p.ecosystem.as_str(), &p.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("debian:12", &AffectedStatus::WillNotFix),
            ("debian:11", &AffectedStatus::FixDeferred),
            ("debian:14", &AffectedStatus::Unknown),
            ("debian:13", &AffectedStatus::Unfixed),
        ]
    );
    let skipped: Vec<&str> = stats.skipped.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "glibc/CVE-2010-4756/buster",
            "glibc/CVE-2010-4756/hurd",
            "TEMP-0000000-1"
        ]
    );
}

#[test]
fn tracker_json_that_is_not_an_object_is_an_error() {
    let path = scratch("tracker-array.json");
    std::fs::write(&path, "\n[1, 2]").unwrap();
    match run(&path, InputFormat::DebianTrackerJson).unwrap_err() {
        ImportError::Json { line, column, .. } => assert_eq!((line, column), (2, 1)),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn dsa_list() {
    let (records, stats) = run(
        &fixtures().join("debian/DSA-list"),
        InputFormat::DebianAdvisoryList,
    )
    .unwrap();
    let all = advisories(records);
    assert_eq!(all.len(), 17);
    assert_eq!(
        stats.skipped,
        vec![(
            "DSA-4205-1".to_owned(),
            "no package lines (an announcement, not a fix)".to_owned()
        )]
    );
    assert!(all.iter().all(|a| a.source == "debian-dsa"));

    let xen = find(&all, "DSA-5378-1");
    assert_eq!(
        xen.aliases,
        strings(&[
            "CVE-2022-23824",
            "CVE-2022-42331",
            "CVE-2022-42332",
            "CVE-2022-42333",
            "CVE-2022-42334"
        ])
    );
    assert_eq!(xen.summary.as_deref(), Some("security update"));
    assert_eq!(xen.published.as_deref(), Some("2023-03-25T00:00:00Z"));
    assert_eq!(
        xen.affected,
        vec![package(
            "debian:11",
            "xen",
            AffectedStatus::Ranges,
            fixed_range("4.14.5+94-ge49571868d-1")
        )]
    );

    // Two releases.
    assert_eq!(
        find(&all, "DSA-5196-1").affected,
        vec![
            package(
                "debian:10",
                "libpgjava",
                AffectedStatus::Ranges,
                fixed_range("42.2.5-2+deb10u1")
            ),
            package(
                "debian:11",
                "libpgjava",
                AffectedStatus::Ranges,
                fixed_range("42.2.15-1+deb11u1")
            ),
        ]
    );
    // No CVE line.
    assert!(find(&all, "DSA-5356-2").aliases.is_empty());
    // Tags, notes with urgencies, NOTE lines, mixed tab/space indentation, `--` headers.
    assert_eq!(
        find(&all, "DSA-892-1").affected,
        vec![
            AffectedPackage {
                severity: Some(Severity::Medium),
                ..package(
                    "debian:3.1",
                    "awstats",
                    AffectedStatus::Ranges,
                    fixed_range("6.4-1sarge1")
                )
            },
            package("debian:3.0", "awstats", AffectedStatus::NotAffected, vec![]),
        ]
    );
    assert_eq!(
        find(&all, "DSA-746-1").affected[0],
        AffectedPackage {
            severity: Some(Severity::High),
            ..package(
                "debian:3.0",
                "phpgroupware",
                AffectedStatus::Unfixed,
                vec![]
            )
        }
    );
    assert_eq!(
        find(&all, "DSA-3699-1").affected,
        vec![package(
            "debian:8",
            "virtualbox",
            AffectedStatus::EndOfLife,
            vec![]
        )]
    );
    assert_eq!(find(&all, "DSA-922-1").affected.len(), 10);
    assert_eq!(find(&all, "DSA-1304").affected.len(), 1);
    assert_eq!(
        find(&all, "DSA-2114-1").summary.as_deref(),
        Some("git-core")
    );
    assert_eq!(
        find(&all, "DSA-543-1").summary.as_deref(),
        Some("several vulnerabilities")
    );
}

#[test]
fn dla_list() {
    let (records, stats) = run(
        &fixtures().join("debian/DLA-list"),
        InputFormat::DebianAdvisoryList,
    )
    .unwrap();
    let all = advisories(records);
    assert_eq!(all.len(), 10);
    assert!(stats.skipped.is_empty());
    assert!(all.iter().all(|a| a.source == "debian-dla"));
    let systemd = find(&all, "DLA-3377-1");
    assert_eq!(systemd.aliases, strings(&["CVE-2023-26604"]));
    assert_eq!(
        systemd.affected,
        vec![package(
            "debian:10",
            "systemd",
            AffectedStatus::Ranges,
            fixed_range("241-7~deb10u9")
        )]
    );
}

#[test]
fn dsa_list_reports_stray_lines_and_rejects_huge_ones() {
    let mut text = std::fs::read_to_string(fixtures().join("debian/DSA-list")).unwrap();
    text.insert_str(0, "\tstray body line before any header\n");
    text.push_str("[1 Apr 2023] DSA-9999-1 demo - test\n\t[hurd] - demo 1.0\n\tgarbage\n");
    let path = scratch("dsa-stray");
    std::fs::write(&path, &text).unwrap();
    let (records, stats) = run(&path, InputFormat::DebianAdvisoryList).unwrap();
    assert_eq!(records.len(), 17);
    let skipped: Vec<&str> = stats.skipped.iter().map(|(w, _)| w.as_str()).collect();
    let last = text.lines().count();
    assert_eq!(
        skipped,
        [
            "line 1".to_owned(),
            "DSA-4205-1".to_owned(),
            format!("DSA-9999-1 (line {})", last - 1),
            format!("DSA-9999-1 (line {last})"),
            "DSA-9999-1".to_owned(),
        ]
    );

    text.push_str(&"x".repeat(70 * 1024));
    std::fs::write(&path, &text).unwrap();
    let err = run(&path, InputFormat::DebianAdvisoryList).unwrap_err();
    assert!(matches!(err, ImportError::LineTooLong { .. }), "{err}");
}

// ----------------------------------------------------------------------------------------
// Alpine
// ----------------------------------------------------------------------------------------

fn secdb(file: &str) -> (Vec<Advisory>, ImportStats) {
    let (records, stats) = run(
        &fixtures().join("alpine").join(file),
        InputFormat::AlpineSecdb,
    )
    .unwrap();
    (advisories(records), stats)
}

#[test]
fn secdb_yaml_multiple_ids_and_zero_keys() {
    let (all, stats) = secdb("v3.8-main.yaml");
    assert_eq!(all.len(), 1090);
    assert!(stats.skipped.is_empty());
    assert!(all.iter().all(|a| a.source == "alpine-secdb"));

    // `"0"`: never affected.
    assert_eq!(
        find(&all, "CVE-2016-0682").affected,
        vec![package(
            "alpine:3.8",
            "db",
            AffectedStatus::NotAffected,
            vec![]
        )]
    );
    // `CVE-2019-5060 TALOS-2019-0844`: the Talos id is an alias.
    let sdl = find(&all, "CVE-2019-5060");
    assert_eq!(sdl.aliases, strings(&["TALOS-2019-0844"]));
    assert_eq!(
        sdl.affected,
        vec![package(
            "alpine:3.8",
            "sdl2_image",
            AffectedStatus::Ranges,
            fixed_range("2.0.5-r0")
        )]
    );
    // No CVE in the entry: the Xen id is the advisory.
    assert_eq!(
        find(&all, "XSA-207").affected,
        vec![package(
            "alpine:3.8",
            "xen",
            AffectedStatus::Ranges,
            fixed_range("4.7.1-r5")
        )]
    );
}

#[test]
fn secdb_yaml_entry_with_two_cves() {
    let (all, _) = secdb("v3.7-main.yaml");
    assert_eq!(all.len(), 1037);
    for id in ["CVE-2018-3620", "CVE-2018-3646"] {
        let a = find(&all, id);
        assert_eq!(a.aliases, strings(&["XSA-273"]), "{id}");
        assert_eq!(
            a.affected,
            vec![package(
                "alpine:3.7",
                "xen",
                AffectedStatus::Ranges,
                fixed_range("4.9.3-r0")
            )]
        );
    }
}

#[test]
fn secdb_json_and_new_yaml_layout() {
    let (all, _) = secdb("311-main.json");
    let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2018-1333", "CVE-2018-8011"]);
    assert_eq!(
        all[0].affected,
        vec![package(
            "alpine:3.11",
            "apache2",
            AffectedStatus::Ranges,
            fixed_range("2.4.34-r0")
        )]
    );
    // `"packages": {}` is an empty set, and so is `"2.8.0-r0": {}`.
    let (all, stats) = secdb("312-community.json");
    assert!(all.is_empty() && stats.skipped.is_empty());
    let (all, _) = secdb("312-main.json");
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].affected,
        vec![package(
            "alpine:3.12",
            "ansible",
            AffectedStatus::Ranges,
            fixed_range("2.7.9-r0")
        )]
    );
    let (all, _) = secdb("edge-main.json");
    assert_eq!(all[0].affected[0].ecosystem, "alpine:edge");
    let (all, _) = secdb("v3.15-main-excerpt.yaml");
    assert_eq!(
        find(&all, "CVE-2022-37434").affected,
        vec![package(
            "alpine:3.15",
            "zlib",
            AffectedStatus::Ranges,
            fixed_range("1.2.12-r2")
        )]
    );
}

#[test]
fn secdb_same_id_in_several_packages_is_merged() {
    let path = scratch("merged.json");
    std::fs::write(
        &path,
        r#"{"distroversion": "v3.12", "reponame": "main", "packages": [
            {"pkg": {"name": "openssl", "secfixes": {"1.1.1g-r0": ["CVE-2020-1967"]}}},
            {"pkg": {"name": "libressl", "secfixes": {"3.1.1-r0": ["CVE-2020-1967 "], "0": ["CVE-2020-1971"]}}}
        ]}"#,
    )
    .unwrap();
    let (all, _) = secdb(path.to_str().unwrap());
    let a = find(&all, "CVE-2020-1967");
    assert_eq!(
        a.affected,
        vec![
            package(
                "alpine:3.12",
                "openssl",
                AffectedStatus::Ranges,
                fixed_range("1.1.1g-r0")
            ),
            package(
                "alpine:3.12",
                "libressl",
                AffectedStatus::Ranges,
                fixed_range("3.1.1-r0")
            ),
        ]
    );
}

#[test]
fn malformed_secdb_is_an_error_with_position() {
    let path = scratch("bad.yaml");
    std::fs::write(
        &path,
        "distroversion: v3.11\npackages:\n  - pkg:\n      name: [ansible\n",
    )
    .unwrap();
    match run(&path, InputFormat::AlpineSecdb).unwrap_err() {
        ImportError::Yaml { line, .. } => assert_eq!(line, 4),
        other => panic!("unexpected {other}"),
    }
    std::fs::write(&path, r#"{"distroversion": "v3.11", "packages": {"a": 1}}"#).unwrap();
    let err = run(&path, InputFormat::AlpineSecdb).unwrap_err();
    assert!(matches!(err, ImportError::Json { .. }), "{err}");
    assert!(err.to_string().contains("non-empty object"), "{err}");
}

// ----------------------------------------------------------------------------------------
// OpenVEX
// ----------------------------------------------------------------------------------------

fn openvex(file: &str) -> (Vec<VexStatement>, ImportStats) {
    let (records, stats) =
        run(&fixtures().join("openvex").join(file), InputFormat::OpenVex).unwrap();
    (vex(records), stats)
}

#[test]
fn vex_statement_with_subcomponents() {
    let (all, stats) = openvex("trivy-oci.openvex.json");
    assert!(stats.skipped.is_empty());
    // Seven statements; in each, the three products share one subcomponent list.
    assert_eq!(all.len(), 7);
    assert_eq!(
        all[0],
        VexStatement {
            vulnerability: "CVE-2023-42363".to_owned(),
            aliases: vec![],
            products: strings(&[
                "pkg:oci/trivy?repository_url=index.docker.io%2Faquasec%2Ftrivy",
                "pkg:oci/trivy?repository_url=public.ecr.aws%2Faquasecurity%2Ftrivy",
                "pkg:oci/trivy?repository_url=ghcr.io/aquasecurity/trivy",
            ]),
            subcomponents: strings(&[
                "pkg:apk/alpine/busybox",
                "pkg:apk/alpine/busybox-binsh",
                "pkg:apk/alpine/ssl_client",
            ]),
            status: VexStatus::NotAffected,
            justification: Some("vulnerable_code_cannot_be_controlled_by_adversary".to_owned()),
            impact_statement: Some("awk is not used".to_owned()),
            action_statement: None,
            author: Some("Aqua Security".to_owned()),
            timestamp: Some("2024-07-10T12:17:44.60495+04:00".to_owned()),
            document: "https://openvex.dev/docs/public/vex-8e30ed756ae8e4196af93bf43edf68360f396a98c0268787453a3443b26e7d6c".to_owned(),
        }
    );
}

#[test]
fn vex_statement_timestamps_override_the_document() {
    let (all, _) = openvex("kine-scan.openvex.json");
    assert_eq!(all.len(), 10);
    let first = &all[0];
    assert_eq!(first.vulnerability, "GO-2024-3321");
    assert_eq!(
        first.aliases,
        strings(&["CVE-2024-45337", "GHSA-v778-237x-gjrc"])
    );
    assert_eq!(
        first.timestamp.as_deref(),
        Some("2025-04-16T23:05:03.377251694Z")
    );
    assert_eq!(
        first.products,
        strings(&["pkg:golang/github.com/k3s-io/kine"])
    );
    assert_eq!(
        first.subcomponents,
        strings(&[
            "pkg:golang/golang.org/x/crypto@v0.27.0",
            "pkg:golang/golang.org/x/crypto@0.27.0"
        ])
    );
    assert_eq!(first.author.as_deref(), Some("Rancher Security team"));

    let (all, _) = openvex("inspektor-gadget-golang.vex.json");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].products.len(), 4);
    assert!(all[1].subcomponents.is_empty());
    assert_eq!(
        all[1].timestamp.as_deref(),
        Some("2025-11-12T12:30:28.276759574Z")
    );

    let (all, _) = openvex("document2.vex.json");
    assert_eq!(all[0].status, VexStatus::Affected);
    assert_eq!(
        all[0].action_statement.as_deref(),
        Some("No action statement provided")
    );
}

#[test]
fn vex_products_with_different_subcomponents_split() {
    let path = scratch("split.vex.json");
    std::fs::write(
        &path,
        r#"{"@context": "https://openvex.dev/ns/v0.2.0", "author": "A", "timestamp": "2024-01-01T00:00:00Z",
            "statements": [
              {"vulnerability": {"name": "CVE-2024-1"}, "status": "fixed",
               "products": [{"@id": "pkg:oci/a", "subcomponents": [{"@id": "pkg:apk/alpine/x"}]},
                            {"@id": "pkg:oci/b"},
                            {"@id": "urn:x", "identifiers": {"purl": "pkg:oci/c"}, "subcomponents": [{"@id": "pkg:apk/alpine/x"}]}]},
              {"vulnerability": {"name": "CVE-2024-2"}, "status": "exploitable", "products": [{"@id": "pkg:oci/a"}]},
              {"vulnerability": "CVE-2024-3", "status": "not_affected", "justification": "component_not_present",
               "products": ["pkg:oci/old"], "subcomponents": ["pkg:apk/alpine/y"]}
            ]}"#,
    )
    .unwrap();
    let (records, stats) = run(&path, InputFormat::OpenVex).unwrap();
    let all = vex(records);
    let shape: Vec<(&str, Vec<String>, Vec<String>)> = all
        .iter()
        .map(|s| {
            (
                s.vulnerability.as_str(),
                s.products.clone(),
                s.subcomponents.clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "CVE-2024-1",
                strings(&["pkg:oci/a", "pkg:oci/c"]),
                strings(&["pkg:apk/alpine/x"])
            ),
            ("CVE-2024-1", strings(&["pkg:oci/b"]), vec![]),
            (
                "CVE-2024-3",
                strings(&["pkg:oci/old"]),
                strings(&["pkg:apk/alpine/y"])
            ),
        ]
    );
    assert_eq!(all[0].document, path.display().to_string());
    assert_eq!(stats.skipped.len(), 1);
    assert!(stats.skipped[0].1.contains("exploitable"));
}

#[test]
fn non_openvex_json_is_an_error() {
    let err = run(
        &fixtures().join("openvex/vexhub-index.json"),
        InputFormat::OpenVex,
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Json { .. }), "{err}");
    let path = scratch("csaf.json");
    std::fs::write(
        &path,
        r#"{"@context": "https://example.com/other", "statements": []}"#,
    )
    .unwrap();
    let err = run(&path, InputFormat::OpenVex).unwrap_err();
    assert!(matches!(err, ImportError::Malformed { .. }), "{err}");
}

// ----------------------------------------------------------------------------------------
// Hostile input: no panic, whatever the bytes
// ----------------------------------------------------------------------------------------

const ALL_FORMATS: [InputFormat; 6] = [
    InputFormat::OsvZip,
    InputFormat::OsvJson,
    InputFormat::DebianTrackerJson,
    InputFormat::DebianAdvisoryList,
    InputFormat::AlpineSecdb,
    InputFormat::OpenVex,
];

/// Detects and imports `bytes` under every format; only the absence of a panic is asserted
/// (plus the record count invariant inside [`run`]).
fn import_anything(name: &str, bytes: &[u8]) {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    let _ = detect(&path);
    for format in ALL_FORMATS {
        let _ = run(&path, format);
    }
}

/// Real inputs of each format, for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let f = fixtures();
    [
        "osv/GO-2022-0969.json",
        "debian/debian.json",
        "debian/DSA-list",
        "alpine/v3.15-main-excerpt.yaml",
        "alpine/311-main.json",
        "openvex/trivy-oci.openvex.json",
        "Hackage-all.zip",
    ]
    .iter()
    .map(|p| std::fs::read(f.join(p)).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        import_anything("arbitrary", &bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[\\[\\]{}\":, \\t\\n0-9a-zA-Z*<>@/-]{0,512}") {
        import_anything("text", text.as_bytes());
    }

    #[test]
    fn mutated_real_inputs_never_panic(
        seed in 0usize..7,
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed].clone();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        import_anything("mutated", &bytes);
    }
}
