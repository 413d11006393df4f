//! End to end through the library: images assembled from real package metadata, a DB built
//! from real advisories with the same importers `bonded db build` uses, and the inventory and
//! findings checked exactly.

use std::path::Path;

use scan::advisory::Severity;
use scan::image::{OciLayout, PlatformChoice};
use scan::matcher::{Finding, FindingStatus, match_inventory};
use scan::model::{Inventory, PackageKind};
use scan::scanner::{Quiet, ScanOptions, inventory_image};

use crate::support::{Blob, Layer, build_db, debian_layers, fixture, write_layout};

fn scan_layout(root: &Path, tag: &str) -> Inventory {
    let layout = OciLayout::new(root);
    let images = layout
        .resolve(Some(tag), &PlatformChoice::host())
        .expect("resolve");
    assert_eq!(images.len(), 1);
    inventory_image(&layout, &images[0], &ScanOptions::default(), &Quiet).expect("inventory")
}

fn package<'a>(inv: &'a Inventory, kind: PackageKind, name: &str) -> &'a scan::model::Package {
    inv.packages
        .iter()
        .find(|p| p.kind == kind && p.name == name)
        .unwrap_or_else(|| panic!("no {kind:?} package {name} in {:#?}", inv.packages))
}

fn ids_for(findings: &[Finding], inv: &Inventory, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .filter(|f| inv.packages[f.package].name == name)
        .map(|f| f.id.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn debian_layers_inventory_and_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("layout");
    let layers = debian_layers();
    // One layer of each compression.
    let blobs = vec![
        Blob::gzip(&layers[0]),
        Blob::zstd(&layers[1]),
        Blob::plain(&layers[2]),
    ];
    write_layout(&root, "bullseye", &blobs);
    let inv = scan_layout(&root, "bullseye");

    let distro = inv.distro.as_ref().expect("distro");
    assert_eq!(
        (distro.id.as_str(), distro.version_id.as_str()),
        ("debian", "11")
    );
    let names: Vec<(&str, &str, Option<usize>)> = inv
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.layer))
        .collect();
    assert_eq!(
        names,
        vec![
            ("base-files", "11.1+deb11u5", Some(0)),
            ("libgnutls30", "3.7.1-5+deb11u1", Some(0)),
            ("libssl1.1", "1.1.1n-0+deb11u3", Some(0)),
            ("python3-requests", "2.25.1+dfsg-2", Some(1)),
            ("tzdata", "2021a-1+deb11u8", Some(0)),
            // Upgraded in layer 1: credited to the layer that brought this version.
            ("zlib1g", "1:1.2.11.dfsg-2+deb11u2", Some(1)),
            ("requests", "2.19.1", Some(2)),
            ("requests", "2.25.1", Some(1)),
            ("lodash", "4.17.15", Some(2)),
        ],
        "curl (removed), libgone1 (config-files), PyYAML (whiteout) and minimist (opaque dir) must be gone"
    );
    let os_owned = inv
        .packages
        .iter()
        .find(|p| p.name == "requests" && p.version == "2.25.1")
        .expect("egg-info");
    assert_eq!(os_owned.owner.as_deref(), Some("python3-requests"));
    assert_eq!(package(&inv, PackageKind::Python, "requests").owner, None);
    assert_eq!(
        package(&inv, PackageKind::Deb, "libssl1.1")
            .source_name
            .as_deref(),
        Some("openssl")
    );
    assert_eq!(inv.layers[2].created_by.as_deref(), Some("RUN step 2"));

    let db = build_db(
        &dir.path().join("vuln.db"),
        &["e2e/advisories/DSA-list", "e2e/advisories/osv"],
    );
    let findings = match_inventory(&db, &inv).expect("match");
    // DSA-5343-1 fixed five openssl CVEs in 1.1.1n-0+deb11u4; deb11u3 already had the fix
    // for CVE-2022-2068 (DSA-5169-1), which must not be reported.
    assert_eq!(
        ids_for(&findings, &inv, "libssl1.1"),
        [
            "CVE-2022-2097",
            "CVE-2022-4304",
            "CVE-2022-4450",
            "CVE-2023-0215",
            "CVE-2023-0286"
        ]
    );
    let openssl = findings
        .iter()
        .find(|f| f.id == "CVE-2023-0286")
        .expect("CVE-2023-0286");
    assert_eq!(openssl.status, FindingStatus::Fixed);
    assert_eq!(openssl.fixed_version.as_deref(), Some("1.1.1n-0+deb11u4"));
    assert!(
        openssl.aliases.contains(&"DSA-5343-1".to_owned()),
        "{:?}",
        openssl.aliases
    );
    assert_eq!(
        ids_for(&findings, &inv, "libgnutls30"),
        ["CVE-2022-2509", "CVE-2023-0361"]
    );
    assert!(
        ids_for(&findings, &inv, "zlib1g").is_empty(),
        "zlib was upgraded past the fix"
    );

    // pip's requests 2.19.1 matches PyPI advisories; Debian's own copy (2.25.1) does not,
    // although PyPI data says 2.25.1 is affected by CVE-2023-32681.
    let pip = ids_for(&findings, &inv, "requests");
    assert!(pip.contains(&"CVE-2018-18074".to_owned()), "{pip:?}");
    let owned_index = inv
        .packages
        .iter()
        .position(|p| p.owner.is_some())
        .expect("owned");
    assert!(findings.iter().all(|f| f.package != owned_index));
    let lodash = findings
        .iter()
        .find(|f| f.all_ids().any(|i| i == "GHSA-p6mc-m468-83gw"))
        .expect("lodash prototype pollution");
    assert_eq!(lodash.fixed_version.as_deref(), Some("4.17.20"));
    assert_ne!(lodash.severity, Severity::Unknown);
}

#[test]
fn corrupt_and_hostile_layers_fail_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("layout");
    let good = Layer::new().file("etc/os-release", fixture("e2e/debian11/os-release"));
    let mut blob = Blob::gzip(&good);
    // Flip a byte in the deflate stream: the layer must fail with a reason, not panic.
    let mid = blob.bytes.len() / 2;
    blob.bytes[mid] ^= 0xff;
    write_layout(&root, "bad", &[blob]);
    let layout = OciLayout::new(&root);
    let images = layout
        .resolve(Some("bad"), &PlatformChoice::host())
        .expect("resolve");
    let err =
        inventory_image(&layout, &images[0], &ScanOptions::default(), &Quiet).expect_err("corrupt");
    assert!(err.to_string().contains("layer 0"), "{err}");
}
