//! Golden inventories and findings for each kind of image the scanner must understand:
//! Alpine with secdb, distroless `status.d`, each rpm database format, a Go binary, a
//! cargo-auditable binary, Java archives (nested), an OS-owned binary, an image with no
//! packages, and an index with two platforms. Every image is assembled here from real
//! package metadata; every DB is built from real advisories by the same importers
//! `bonded db build` uses.

use std::io::Read;
use std::path::Path;

use scan::db::VulnDb;
use scan::image::{OciLayout, PlatformChoice};
use scan::matcher::{Finding, match_inventory};
use scan::model::{Inventory, PackageKind};
use scan::scanner::{Quiet, ScanOptions, inventory_image};

use crate::support::{Blob, Layer, build_db, fixture, put_image, put_index, write_layout};

fn db_from(dir: &Path, inputs: &[&str]) -> VulnDb {
    build_db(&dir.join("golden.db"), inputs)
}

fn scan_one(dir: &Path, layers: &[Layer]) -> Inventory {
    let root = dir.join("layout");
    write_layout(
        &root,
        "t",
        &layers.iter().map(Blob::gzip).collect::<Vec<_>>(),
    );
    let layout = OciLayout::new(&root);
    let images = layout
        .resolve(Some("t"), &PlatformChoice::host())
        .expect("resolve");
    inventory_image(&layout, &images[0], &ScanOptions::default(), &Quiet).expect("inventory")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn summary(inv: &Inventory) -> Vec<String> {
    inv.packages
        .iter()
        .map(|p| format!("{} {} {}", p.kind.as_str(), p.name, p.version))
        .collect()
}

fn findings_summary(findings: &[Finding], inv: &Inventory) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .map(|f| {
            let p = &inv.packages[f.package];
            format!(
                "{} {} {} {}",
                p.name,
                f.id,
                f.status.as_str(),
                f.fixed_version.as_deref().unwrap_or("-")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn alpine_with_secdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = scan_one(
        dir.path(),
        &[Layer::new()
            .file("etc/os-release", fixture("e2e/alpine310/os-release"))
            .file("lib/apk/db/installed", fixture("e2e/alpine310/installed"))],
    );
    assert_eq!(
        inv.distro
            .as_ref()
            .and_then(|d| d.ecosystem_key())
            .as_deref(),
        Some("alpine:3.10")
    );
    assert_eq!(inv.packages.len(), 14);
    let ssl = inv
        .packages
        .iter()
        .find(|p| p.name == "libssl1.1")
        .expect("libssl1.1");
    assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
    assert_eq!(ssl.licenses, ["OpenSSL"]);
    let db = db_from(dir.path(), &["e2e/alpine310/secdb-v3.10-main.yaml"]);
    let findings = match_inventory(&db, &inv).expect("match");
    // Both binaries of the openssl origin at 1.1.1c-r0 are before the 1.1.1d-r0 fixes; musl
    // 1.1.22-r3 is exactly its fixed version (a boundary, not a finding).
    let mut want = Vec::new();
    for p in ["libcrypto1.1", "libssl1.1"] {
        for cve in ["CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"] {
            want.push(format!("{p} {cve} fixed 1.1.1d-r0"));
        }
    }
    assert_eq!(findings_summary(&findings, &inv), want);
}

#[test]
fn distroless_status_d() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layer = Layer::new().file("etc/os-release", fixture("e2e/distroless/os-release"));
    for f in ["libsqlite3-0", "libsqlite3-0.md5sums", "netbase", "dash"] {
        layer = layer.file(
            &format!("var/lib/dpkg/status.d/{f}"),
            fixture(&format!("e2e/distroless/{f}")),
        );
    }
    let inv = scan_one(dir.path(), &[layer]);
    assert_eq!(
        summary(&inv),
        [
            "deb dash 0.5.8-2.4",
            "deb libsqlite3-0 3.34.1-3",
            "deb netbase 5.4"
        ]
    );
    let sqlite = inv
        .packages
        .iter()
        .find(|p| p.name == "libsqlite3-0")
        .expect("sqlite");
    assert_eq!(sqlite.source_name.as_deref(), Some("sqlite3"));
    assert_eq!(sqlite.arch.as_deref(), Some("arm64"));
    assert_eq!(inv.distro.as_ref().map(|d| d.id.as_str()), Some("debian"));
}

#[test]
fn each_rpm_database_format() {
    let cases = [
        ("rpmdb/bdb/Packages", "var/lib/rpm/Packages"),
        ("rpmdb/ndb/Packages.db", "usr/lib/sysimage/rpm/Packages.db"),
        ("rpmdb/sqlite/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite"),
    ];
    for (fixture_path, image_path) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = scan_one(
            dir.path(),
            &[Layer::new().file(image_path, fixture(fixture_path))],
        );
        let expected = String::from_utf8(fixture(&fixture_path.replace(
            fixture_path.rsplit('/').next().unwrap_or_default(),
            "expected-packages.tsv",
        )))
        .expect("utf8");
        let mut want: Vec<String> = expected
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let evr = if f[0] == "(none)" {
                    format!("{}-{}", f[2], f[3])
                } else {
                    format!("{}:{}-{}", f[0], f[2], f[3])
                };
                format!("rpm {} {evr}", f[1])
            })
            .collect();
        want.sort();
        let mut got = summary(&inv);
        got.sort();
        assert_eq!(got, want, "{fixture_path}");
        assert!(
            inv.packages
                .iter()
                .all(|p| p.kind == PackageKind::Rpm && p.evidence == image_path)
        );
        // No os-release: the packages cannot be matched, and the report says so.
        let db = db_from(dir.path(), &["e2e/advisories-lang"]);
        let notes = scan::matcher::coverage_notes(&db, &inv).expect("notes");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("OS packages were not matched")),
            "{notes:?}"
        );
    }
}

#[test]
fn go_and_cargo_auditable_binaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let go = gunzip(&fixture("binaries/go-hello-linux-amd64.gz"));
    let inv = scan_one(
        dir.path(),
        &[Layer::new()
            .executable("usr/local/bin/hello", go.clone())
            .executable(
                "usr/local/bin/tiny",
                fixture("binaries/auditable-tiny-time"),
            )
            // Not executable: not read as a binary.
            .file("opt/data/hello.copy", go)],
    );
    let mut got = summary(&inv);
    got.sort();
    assert!(got.contains(&"go stdlib v1.19.8".to_owned()), "{got:?}");
    assert!(
        got.contains(&"go example.com/greet v0.1.0".to_owned()),
        "{got:?}"
    );
    assert!(got.contains(&"cargo time 0.1.44".to_owned()), "{got:?}");
    assert!(
        !got.iter().any(|p| p.contains("shout")),
        "a local replacement is not a module version: {got:?}"
    );
    assert!(
        inv.packages
            .iter()
            .all(|p| p.evidence.starts_with("usr/local/bin/"))
    );

    let db = db_from(dir.path(), &["e2e/advisories-lang"]);
    let findings = findings_summary(&match_inventory(&db, &inv).expect("match"), &inv);
    assert_eq!(
        findings,
        [
            "stdlib CVE-2023-24539 fixed 1.19.9",
            "stdlib CVE-2023-24540 fixed 1.19.9",
            "stdlib CVE-2023-29400 fixed 1.19.9",
            "time CVE-2020-26235 fixed 0.2.0",
        ],
        "GO-2022-0969's stdlib ranges end at 1.19.1, before 1.19.8; RUSTSEC-2020-0071's first \
         range ends at 0.2.0 (0.2.0 to 0.2.6 are unaffected)"
    );
}

#[test]
fn os_owned_binary_matches_no_language_feed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status =
        "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n";
    let inv = scan_one(
        dir.path(),
        &[Layer::new()
            .file("etc/os-release", fixture("e2e/debian11/os-release"))
            .file("var/lib/dpkg/status", status)
            .file(
                "var/lib/dpkg/info/hello.list",
                "/.\n/usr\n/usr/bin\n/usr/bin/hello\n",
            )
            .executable(
                "usr/bin/hello",
                gunzip(&fixture("binaries/go-hello-linux-amd64.gz")),
            )],
    );
    let stdlib = inv
        .packages
        .iter()
        .find(|p| p.name == "stdlib")
        .expect("stdlib");
    assert_eq!(stdlib.owner.as_deref(), Some("hello"));
    let db = db_from(dir.path(), &["e2e/advisories-lang"]);
    assert!(match_inventory(&db, &inv).expect("match").is_empty());
}

#[test]
fn java_archives_nested() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jar = fixture("binaries/commons-text.jar");
    // A Spring Boot style fat jar holding the real jar under BOOT-INF/lib.
    let mut fat = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    fat.start_file("BOOT-INF/lib/commons-text-1.10.0.jar", options)
        .expect("zip");
    std::io::Write::write_all(&mut fat, &jar).expect("zip");
    fat.start_file("META-INF/MANIFEST.MF", options)
        .expect("zip");
    std::io::Write::write_all(
        &mut fat,
        b"Manifest-Version: 1.0\r\nImplementation-Title: app\r\nImplementation-Version: 2.0.0\r\n",
    )
    .expect("zip");
    let fat = fat.finish().expect("zip").into_inner();
    let inv = scan_one(
        dir.path(),
        &[Layer::new()
            .file("usr/share/java/commons-text.jar", jar)
            .file("srv/app.jar", fat)],
    );
    let got: Vec<(String, String, Option<String>, String)> = inv
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.namespace.clone(),
                p.evidence.clone(),
            )
        })
        .collect();
    assert!(
        got.contains(&(
            "commons-text".into(),
            "1.10.0".into(),
            Some("org.apache.commons".into()),
            "usr/share/java/commons-text.jar".into()
        )),
        "{got:#?}"
    );
    assert!(
        got.contains(&(
            "commons-text".into(),
            "1.10.0".into(),
            Some("org.apache.commons".into()),
            "srv/app.jar!/BOOT-INF/lib/commons-text-1.10.0.jar".into()
        )),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|g| g.0 == "app" && g.1 == "2.0.0"),
        "{got:#?}"
    );
}

#[test]
fn image_without_packages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = scan_one(
        dir.path(),
        &[Layer::new().file("etc/hostname", "box\n").dir("tmp")],
    );
    assert!(inv.packages.is_empty());
    assert!(inv.distro.is_none());
    let db = db_from(dir.path(), &["e2e/advisories-lang"]);
    assert!(match_inventory(&db, &inv).expect("match").is_empty());
}

#[test]
fn index_platforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("layout");
    let amd = put_image(
        &root,
        &[Blob::gzip(&Layer::new().file(
            "etc/os-release",
            fixture("e2e/debian11/os-release"),
        ))],
        "amd64",
    );
    let arm = put_image(
        &root,
        &[Blob::gzip(&Layer::new().file(
            "etc/os-release",
            fixture("e2e/alpine310/os-release"),
        ))],
        "arm64",
    );
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]});
    let bytes = serde_json::to_vec(&index).expect("index");
    let digest = scan::testkit::sha256(&bytes);
    std::fs::write(root.join("blobs/sha256").join(&digest[7..]), &bytes).expect("write");
    put_index(
        &root,
        "multi",
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": bytes.len()}),
    );
    let layout = OciLayout::new(&root);
    let distro_of = |platform: PlatformChoice| -> Vec<String> {
        layout
            .resolve(Some("multi"), &platform)
            .expect("resolve")
            .iter()
            .map(|image| {
                let inv = inventory_image(&layout, image, &ScanOptions::default(), &Quiet)
                    .expect("inventory");
                format!(
                    "{} {}",
                    image.platform.clone().unwrap_or_default(),
                    inv.distro.map(|d| d.id).unwrap_or_default()
                )
            })
            .collect()
    };
    assert_eq!(
        distro_of(PlatformChoice::One("linux/arm64".into())),
        ["linux/arm64 alpine"]
    );
    assert_eq!(
        distro_of(PlatformChoice::All),
        ["linux/amd64 debian", "linux/arm64 alpine"]
    );
    let err = layout
        .resolve(Some("multi"), &PlatformChoice::One("linux/s390x".into()))
        .expect_err("no such platform");
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64"),
        "{err}"
    );
}
