//! `bonded scan`, `bonded sbom` and `bonded db` as a user runs them: the binary on OCI
//! layouts and docker archives assembled from real package metadata, a DB built by
//! `bonded db build` from real advisories, and every output format checked (the SBOM and
//! SARIF formats against their official JSON schemas).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scan::testkit::{Blob, debian_layers, fixtures, write_layout};

use crate::support::{BIN, require};

fn bonded(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("BONDED_DB")
        .output()
        .expect("run bonded")
}

fn ok(args: &[&str]) -> String {
    let out = bonded(args);
    assert!(
        out.status.success(),
        "bonded {args:?} failed with {}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> (i32, String) {
    let out = bonded(args);
    assert!(!out.status.success(), "bonded {args:?} should fail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: String,
    layout: String,
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn setup() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let db = root.join("vuln.db");
    let advisories = fixtures().join("e2e/advisories");
    ok(&[
        "db",
        "build",
        "--out",
        &path(&db),
        &path(&advisories.join("DSA-list")),
        &path(&advisories.join("osv")),
    ]);
    let layout = root.join("layout");
    let layers = debian_layers();
    write_layout(
        &layout,
        "bullseye",
        &layers.iter().map(Blob::gzip).collect::<Vec<_>>(),
    );
    Fixture {
        layout: format!("oci:{}:bullseye", layout.display()),
        db: path(&db),
        root,
        _dir: dir,
    }
}

pub fn validate(schema: &str, document: &str) {
    require("python3");
    let out = Command::new("python3")
        .arg(fixtures().join("../scripts/validate_json.py"))
        .arg(fixtures().join("schemas").join(schema))
        .arg(document)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{document} is not valid against {schema}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn table_json_and_exit_codes() {
    let f = setup();
    let table = ok(&["scan", "--db", &f.db, &f.layout]);
    for needle in [
        "libssl1.1",
        "CVE-2023-0286",
        "1.1.1n-0+deb11u4",
        "libgnutls30",
        "lodash",
        "Debian GNU/Linux 11",
    ] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    assert!(
        !table.contains("zlib1g"),
        "zlib was fixed by the upgrade:\n{table}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(&["scan", "--db", &f.db, "--format", "json", &f.layout]))
            .expect("json");
    let findings = json["findings"].as_array().expect("findings");
    let total = json["counts"]["total"].as_u64().expect("total");
    assert_eq!(findings.len() as u64, total);
    assert!(
        findings
            .iter()
            .any(|x| x["id"] == "CVE-2018-18074" && x["package_name"] == "requests")
    );
    assert!(
        json["db"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("20"))
    );

    // --exit-code applies only when findings remain after the filters.
    let out = bonded(&["scan", "--db", &f.db, "--exit-code", "3", &f.layout]);
    assert_eq!(out.status.code(), Some(3));
    let crit = ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "json",
        "--severity",
        "CRITICAL",
        &f.layout,
    ]);
    let crit: serde_json::Value = serde_json::from_str(&crit).expect("json");
    assert!(
        crit["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|x| x["severity"] == "CRITICAL")
    );
    let unfixed = ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "json",
        "--ignore-unfixed",
        &f.layout,
    ]);
    let unfixed: serde_json::Value = serde_json::from_str(&unfixed).expect("json");
    assert!(
        unfixed["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|x| x["fixed_version"].is_string())
    );

    // --output writes the file and nothing on stdout.
    let out_file = f.root.join("report.json");
    let stdout = ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "json",
        "--output",
        &path(&out_file),
        &f.layout,
    ]);
    assert!(stdout.is_empty());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("report")).expect("json");
    assert_eq!(written["counts"], json["counts"]);
}

#[test]
fn sbom_and_vulnerability_formats_validate_against_the_official_schemas() {
    let f = setup();
    let cdx_path = f.root.join("scan.cdx.json");
    ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "cyclonedx",
        "--output",
        &path(&cdx_path),
        &f.layout,
    ]);
    validate("bom-1.6.SNAPSHOT.schema.json", &path(&cdx_path));
    let cdx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cdx_path).expect("cdx")).expect("json");
    assert_eq!(cdx["specVersion"], "1.6");
    let refs: Vec<&str> = cdx["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["bom-ref"].as_str())
        .collect();
    let vulns = cdx["vulnerabilities"].as_array().expect("vulnerabilities");
    assert!(!vulns.is_empty());
    for v in vulns {
        let target = v["affects"][0]["ref"].as_str().expect("ref");
        assert!(refs.contains(&target), "{target} is not a component");
    }
    let openssl = vulns
        .iter()
        .find(|v| v["id"] == "CVE-2023-0286")
        .expect("CVE-2023-0286");
    assert!(
        openssl["references"]
            .as_array()
            .expect("refs")
            .iter()
            .any(|r| r["id"] == "DSA-5343-1")
    );
    let ssl = cdx["components"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["name"] == "libssl1.1")
        .expect("libssl1.1");
    assert_eq!(
        ssl["purl"],
        "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11&upstream=openssl"
    );
    assert!(
        ssl["properties"]
            .as_array()
            .expect("props")
            .iter()
            .any(|p| p["name"] == "bonded:layer:index" && p["value"] == "0")
    );

    let spdx_path = f.root.join("sbom.spdx.json");
    ok(&[
        "sbom",
        "--format",
        "spdx",
        "--output",
        &path(&spdx_path),
        &f.layout,
    ]);
    validate("spdx-schema-2.3.json", &path(&spdx_path));
    let sbom_cdx = f.root.join("sbom.cdx.json");
    ok(&[
        "sbom",
        "--format",
        "cyclonedx",
        "--output",
        &path(&sbom_cdx),
        &f.layout,
    ]);
    validate("bom-1.6.SNAPSHOT.schema.json", &path(&sbom_cdx));

    let sarif = f.root.join("scan.sarif");
    ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "sarif",
        "--output",
        &path(&sarif),
        &f.layout,
    ]);
    validate("sarif-schema-2.1.0.json", &path(&sarif));
}

/// Writes an OpenVEX document `<dir>/<id>.vex.json` holding one statement.
fn openvex(dir: &Path, id: &str, statement: serde_json::Value) -> PathBuf {
    let file = dir.join(format!("{id}.vex.json"));
    let document = serde_json::json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": format!("https://example.com/vex/{id}"),
        "author": "Example Security",
        "timestamp": format!("2026-11-0{id}T00:00:00Z"),
        "version": 1,
        "statements": [statement]
    });
    std::fs::write(&file, serde_json::to_vec(&document).expect("vex")).expect("write vex");
    file
}

#[test]
fn vex_statements_suppress_findings_and_show_as_analysis() {
    let f = setup();
    let vex = openvex(
        &f.root,
        "1",
        serde_json::json!({
            "vulnerability": {"name": "CVE-2023-0286"},
            "products": [{"@id": "pkg:deb/debian/libssl1.1"}],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path"
        }),
    );
    let table = ok(&["scan", "--db", &f.db, "--vex", &path(&vex), &f.layout]);
    assert!(!table.contains("CVE-2023-0286"), "{table}");
    assert!(table.contains("CVE-2023-0215"), "other CVEs stay: {table}");
    assert!(table.contains("not shown: VEX"), "{table}");
    let cdx: serde_json::Value = serde_json::from_str(&ok(&[
        "scan",
        "--db",
        &f.db,
        "--vex",
        &path(&vex),
        "--format",
        "cyclonedx",
        &f.layout,
    ]))
    .expect("json");
    let v = cdx["vulnerabilities"]
        .as_array()
        .expect("v")
        .iter()
        .find(|v| v["id"] == "CVE-2023-0286")
        .expect("kept with analysis");
    assert_eq!(v["analysis"]["state"], "not_affected");
    assert_eq!(v["analysis"]["justification"], "code_not_reachable");
    // A later file saying `affected` puts the finding back.
    let again = openvex(
        &f.root,
        "2",
        serde_json::json!({
            "vulnerability": {"name": "CVE-2023-0286"},
            "products": [{"@id": "pkg:deb/debian/libssl1.1"}],
            "status": "affected",
            "action_statement": "upgrade"
        }),
    );
    let table = ok(&[
        "scan",
        "--db",
        &f.db,
        "--vex",
        &path(&vex),
        "--vex",
        &path(&again),
        &f.layout,
    ]);
    assert!(
        table.contains("CVE-2023-0286"),
        "the later statement wins: {table}"
    );
}

#[test]
fn docker_archive_scans_like_the_layout() {
    let f = setup();
    // `docker save` layout: manifest.json, the config, and uncompressed layer tars.
    let layers = debian_layers();
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| l.tar()).collect();
    let diff_ids: Vec<String> = tars.iter().map(|t| scan::testkit::sha256(t)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config");
    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        archive.append_data(&mut h, name, data).expect("append");
    };
    let mut layer_names = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let name = format!("{i}/layer.tar");
        add(&name, t);
        layer_names.push(name);
    }
    add("config.json", &config);
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": ["app:1"], "Layers": layer_names}]);
    add(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest"),
    );
    let tar_path = f.root.join("image.tar");
    std::fs::write(&tar_path, archive.into_inner().expect("tar")).expect("write");
    let from_archive: serde_json::Value = serde_json::from_str(&ok(&[
        "scan",
        "--db",
        &f.db,
        "--format",
        "json",
        &format!("docker-archive:{}:app:1", tar_path.display()),
    ]))
    .expect("json");
    let from_layout: serde_json::Value =
        serde_json::from_str(&ok(&["scan", "--db", &f.db, "--format", "json", &f.layout]))
            .expect("json");
    assert_eq!(from_archive["counts"], from_layout["counts"]);
    assert_eq!(
        from_archive["inventory"]["packages"],
        from_layout["inventory"]["packages"]
    );
}

#[test]
fn db_build_is_reproducible_and_info_names_its_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let advisories = fixtures().join("e2e/advisories");
    let build = |name: &str| {
        let out = dir.path().join(name);
        let status = Command::new(BIN)
            .args([
                "db",
                "build",
                "--out",
                &path(&out),
                &path(&advisories.join("DSA-list")),
                &path(&advisories.join("osv")),
            ])
            .env("SOURCE_DATE_EPOCH", "1764000000")
            .output()
            .expect("run");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        std::fs::read(out).expect("db")
    };
    assert_eq!(build("a.db"), build("b.db"), "same inputs, same bytes");
    let info = ok(&["db", "info", &path(&dir.path().join("a.db"))]);
    assert!(
        info.contains("built at:       2025-11-24T16:00:00Z"),
        "{info}"
    );
    assert!(
        info.contains("DSA-list (DebianAdvisoryList) sha256:"),
        "{info}"
    );
    assert!(info.contains("debian:11"), "{info}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "db",
        "info",
        "--json",
        &path(&dir.path().join("a.db")),
    ]))
    .expect("json");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["sources"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bad_input_gets_a_message_and_a_non_zero_exit() {
    let f = setup();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "scan".into(),
                "--db".into(),
                f.root.join("missing.db").display().to_string(),
                f.layout.clone(),
            ],
            "no vulnerability DB",
        ),
        (
            vec![
                "scan".into(),
                "--db".into(),
                f.db.clone(),
                "oci:/nonexistent/layout".into(),
            ],
            "index.json",
        ),
        (
            vec![
                "scan".into(),
                "--db".into(),
                f.db.clone(),
                format!("oci:{}:nosuchtag", f.root.join("layout").display()),
            ],
            "nosuchtag",
        ),
        (
            vec![
                "scan".into(),
                "--db".into(),
                f.db.clone(),
                "--severity".into(),
                "SEVERE".into(),
                f.layout.clone(),
            ],
            "unknown severity",
        ),
        (
            vec![
                "scan".into(),
                "--db".into(),
                f.layout
                    .replace("oci:", "")
                    .replace(":bullseye", "/index.json"),
                f.layout.clone(),
            ],
            "not a Bonded vulnerability DB",
        ),
        (
            vec![
                "db".into(),
                "info".into(),
                f.root.join("layout/index.json").display().to_string(),
            ],
            "vulnerability DB",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bonded(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A failed build leaves no output file behind.
    let junk = f.root.join("junk.txt");
    std::fs::write(&junk, "not an advisory format\n").expect("junk");
    let out_db = f.root.join("never.db");
    let (code, stderr) = fails(&["db", "build", "--out", &path(&out_db), &path(&junk)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!out_db.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&f.root)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".bonded-db-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary DB files left behind");
}

#[test]
fn db_update_downloads_from_a_mirror_and_builds() {
    require("python3");
    let f = setup();
    let mirror = f.root.join("mirror");
    let e2e = fixtures().join("e2e");
    let remote = fixtures().join("remote");
    // osv/<Ecosystem>/all.zip as osv.dev lays them out; ecosystems without fixture records
    // get an empty (valid) export.
    let zips = serde_json::json!({
        "PyPI": e2e.join("advisories/osv").join("PYSEC-*.json"),
        "npm": e2e.join("advisories/osv").join("GHSA-*.json"),
        "Go": e2e.join("advisories-lang").join("GO-*.json"),
        "crates.io": e2e.join("advisories-lang").join("RUSTSEC-*.json"),
        "Maven": "", "RubyGems": "", "Packagist": "", "Ubuntu": "",
    });
    let script = r#"
import glob, json, os, sys, zipfile
root, spec = sys.argv[1], json.loads(sys.argv[2])
for eco, pattern in spec.items():
    d = os.path.join(root, "osv", eco)
    os.makedirs(d, exist_ok=True)
    with zipfile.ZipFile(os.path.join(d, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(glob.glob(pattern)) if pattern else []:
            z.write(f, os.path.basename(f))
"#;
    crate::support::run(Command::new("python3").args([
        "-c",
        script,
        &path(&mirror),
        &zips.to_string(),
    ]));
    std::fs::create_dir_all(mirror.join("debian")).expect("dir");
    std::fs::copy(
        remote.join("debian-tracker.json"),
        mirror.join("debian/json"),
    )
    .expect("copy");
    for branch in scan::update::ALPINE_BRANCHES {
        let d = mirror.join("alpine").join(branch);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::copy(remote.join("alpine-v3.11-main.json"), d.join("main.json")).expect("copy");
        std::fs::copy(
            remote.join("alpine-v3.11-community.json"),
            d.join("community.json"),
        )
        .expect("copy");
    }
    let port = crate::support::free_addr().port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
            &path(&mirror),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("http.server");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let db = f.root.join("updated.db");
    let cache = f.root.join("cache");
    let out = Command::new(BIN)
        .args([
            "db",
            "update",
            "--out",
            &path(&db),
            "--cache-dir",
            &path(&cache),
        ])
        .env("BONDED_DB_MIRROR", &base)
        .output()
        .expect("run");
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["db", "info", "--json", &path(&db)])).expect("json");
    let sources = info["sources"].as_array().expect("sources");
    assert_eq!(
        sources.len(),
        8 + 1 + 2 * scan::update::ALPINE_BRANCHES.len(),
        "{info:#}"
    );
    assert!(
        sources
            .iter()
            .all(|s| s["sha256"].as_str().is_some_and(|h| h.len() == 64))
    );
    // The downloaded data is used: PyPI findings appear.
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "scan",
        "--db",
        &path(&db),
        "--format",
        "json",
        &f.layout,
    ]))
    .expect("json");
    assert!(
        json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|x| x["id"] == "CVE-2018-18074")
    );
    // The mirror is gone now: a clear error, and the DB built before stays in place.
    let (code, stderr) = fails(&[
        "db",
        "update",
        "--out",
        &path(&db),
        "--cache-dir",
        &path(&f.root.join("cache2")),
        "--mirror",
        &base,
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert!(db.exists());
}

/// Runs `bonded args…` and returns its peak resident set size in KiB. A small Python process
/// starts it and reads `ru_maxrss` from `wait4`: started from this test process directly, the
/// child's figure would include the test process's own high-water mark (Linux keeps the
/// pre-`exec` peak), and this process has held hundreds of MiB of test layers.
fn peak_rss_kib(args: &[&str]) -> i64 {
    let script = r#"
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit("bonded failed: %d" % os.waitstatus_to_exitcode(status))
print(usage.ru_maxrss)
"#;
    let out = crate::support::run(Command::new("python3").args(["-c", script, BIN]).args(args));
    out.trim().parse().expect("ru_maxrss")
}

#[test]
fn peak_memory_stays_bounded_on_large_files() {
    require("python3");
    let dir = tempfile::tempdir().expect("tempdir");
    // A 52 MiB jar nesting jars three deep (12, 8 and 4 MiB, each under the 16 MiB nested
    // limit), built with Python's zipfile.
    let jar = dir.path().join("app.jar");
    let script = r#"
import io, sys, zipfile
def jar(depth):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Title: level%d\r\nImplementation-Version: 1.%d\r\n" % (depth, depth))
        z.writestr("data.bin", b"\0" * ((40 if depth == 0 else 4) << 20))
        if depth < 3:
            z.writestr("lib/inner%d.jar" % depth, jar(depth + 1))
    return buf.getvalue()
open(sys.argv[1], "wb").write(jar(0))
"#;
    crate::support::run(Command::new("python3").args(["-c", script, &path(&jar)]));
    let layout = dir.path().join("layout");
    {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(60 << 20, 0);
        let first = scan::testkit::Layer::new()
            .executable("usr/bin/big1", elf.clone())
            .file("var/boring", vec![0u8; 256 << 20]);
        let second = scan::testkit::Layer::new()
            .executable("usr/bin/big2", elf)
            .file("opt/app.jar", std::fs::read(&jar).expect("jar"));
        write_layout(&layout, "big", &[Blob::gzip(&first), Blob::gzip(&second)]);
    }
    let image = format!("oci:{}:big", layout.display());
    let sbom = ok(&["sbom", "--format", "cyclonedx", &image]);
    assert!(sbom.contains("level3"), "the nested jars were read: {sbom}");
    let peak_mib = peak_rss_kib(&["sbom", "--format", "cyclonedx", &image]) / 1024;
    eprintln!("bonded sbom peak RSS: {peak_mib} MiB");
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB");
}
