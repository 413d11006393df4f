//! Scanning inside the registry, black-box: `bonded serve` with `[scan] db`, images pushed
//! with skopeo, results read through the management API, the SBOM found through the
//! referrers API, a replaced DB picked up on SIGHUP and re-matched without reading layers,
//! rescans, the per-layer cache, and a hostile layer that fails its scan but not the server.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use scan::testkit::{Blob, Layer, debian_layers, fixture, fixtures, write_layout};
use serde_json::Value;

use crate::support::{BIN, Server, head_digest, http, require, run, serve_with};

fn build_db(out: &Path, inputs: &[&str]) {
    let advisories = fixtures().join("e2e/advisories");
    let mut cmd = Command::new(BIN);
    cmd.args(["db", "build", "--out"]).arg(out);
    for i in inputs {
        cmd.arg(advisories.join(i));
    }
    run(&mut cmd);
}

fn push(layout: &Path, tag: &str, server: &Server, target: &str) {
    require("skopeo");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{}/{target}", server.host()),
    ]));
}

fn scan_url(server: &Server, repo: &str, digest: &str) -> String {
    format!(
        "{}/api/v1/repositories/{repo}/manifests/{digest}/scan",
        server.base()
    )
}

/// Polls the scan until `done(body)` or 60 s.
fn wait_for(
    server: &Server,
    repo: &str,
    digest: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = http()
            .get(scan_url(server, repo, digest))
            .send()
            .expect("GET scan")
            .json()
            .expect("json");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body:#}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finding_ids(body: &Value) -> Vec<String> {
    body["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pushed_images_are_scanned_rematched_and_get_an_sbom_referrer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("vuln.db");
    build_db(&db, &["DSA-list"]);
    let server = serve_with(
        dir.path(),
        &format!(
            "[scan]\ndb = \"{}\"\ndb_check_secs = 3600\n[storage]\ndurability = \"relaxed\"\n",
            db.display()
        ),
    );
    let layout = dir.path().join("layout");
    write_layout(
        &layout,
        "bullseye",
        &debian_layers().iter().map(Blob::gzip).collect::<Vec<_>>(),
    );
    push(&layout, "bullseye", &server, "dev/app:1");
    let digest = head_digest(&server.base(), "dev/app", "1");

    let body = wait_for(&server, "dev/app", &digest, "the first scan", |b| {
        b["status"] == "done"
    });
    let ids = finding_ids(&body);
    assert!(ids.contains(&"CVE-2023-0286".to_owned()), "{ids:?}");
    assert!(
        !ids.contains(&"CVE-2018-18074".to_owned()),
        "the first DB has no PyPI data: {ids:?}"
    );
    let first_db = body["db_version"].as_str().expect("db_version").to_owned();
    assert_eq!(body["packages"], 9);
    assert!(
        body["counts"]["total"]
            .as_u64()
            .is_some_and(|n| n as usize == ids.len())
    );
    let ssl = body["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == "CVE-2023-0286")
        .expect("finding");
    assert_eq!(ssl["package"]["name"], "libssl1.1");
    assert_eq!(ssl["package"]["layer"], 0);
    assert_eq!(ssl["fixed_version"], "1.1.1n-0+deb11u4");

    // The SBOM is a referrer of the image, and a valid CycloneDX document.
    let referrers: Value = http()
        .get(format!("{}/v2/dev/app/referrers/{digest}", server.base()))
        .send()
        .expect("referrers")
        .json()
        .expect("json");
    let sbom = referrers["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["artifactType"] == "application/vnd.cyclonedx+json")
        .unwrap_or_else(|| panic!("no SBOM referrer: {referrers:#}"));
    let sbom_digest = sbom["digest"].as_str().expect("digest");
    let sbom_manifest: Value = http()
        .get(format!(
            "{}/v2/dev/app/manifests/{sbom_digest}",
            server.base()
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("sbom manifest")
        .json()
        .expect("json");
    assert_eq!(sbom_manifest["subject"]["digest"], digest.as_str());
    let layer = sbom_manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer");
    let document = http()
        .get(format!("{}/v2/dev/app/blobs/{layer}", server.base()))
        .send()
        .expect("blob")
        .bytes()
        .expect("bytes");
    let doc_path = dir.path().join("sbom.json");
    std::fs::write(&doc_path, &document).expect("write");
    crate::scan::validate(
        "bom-1.6.SNAPSHOT.schema.json",
        doc_path.to_str().expect("path"),
    );
    // The CLI scanning the same image over the registry API finds the same findings.
    let cli = run(Command::new(BIN).args([
        "scan",
        "--plain-http",
        "--format",
        "json",
        "--db",
        db.to_str().expect("path"),
        &format!("{}/dev/app:1", server.host()),
    ]));
    let cli: Value = serde_json::from_str(&cli).expect("json");
    assert_eq!(cli["counts"], body["counts"]);
    assert_eq!(cli["image"]["manifest_digest"], digest.as_str());
    // Artifacts are not scanned themselves.
    let artifact = http()
        .get(scan_url(&server, "dev/app", sbom_digest))
        .send()
        .expect("GET");
    assert_eq!(artifact.status(), 404);

    // The same image copied to another repository gets its own SBOM referrer there.
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/dev/app:1", server.host()),
        &format!("docker://{}/prod/app:1", server.host()),
    ]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed: Value = http()
            .get(format!("{}/v2/prod/app/referrers/{digest}", server.base()))
            .send()
            .expect("referrers")
            .json()
            .expect("json");
        let has_sbom = listed["manifests"].as_array().is_some_and(|m| {
            m.iter()
                .any(|x| x["artifactType"] == "application/vnd.cyclonedx+json")
        });
        if has_sbom {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no SBOM referrer in prod/app: {listed:#}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A second image sharing the base layer reads only its new layer.
    let second = dir.path().join("second");
    let layers = debian_layers();
    let extra = Layer::new().file(
        "opt/app/node_modules/lodash/package.json",
        fixture("e2e/npm/lodash-4.17.15.package.json"),
    );
    write_layout(&second, "v2", &[Blob::gzip(&layers[0]), Blob::gzip(&extra)]);
    push(&second, "v2", &server, "dev/other:2");
    let second_digest = head_digest(&server.base(), "dev/other", "2");
    wait_for(
        &server,
        "dev/other",
        &second_digest,
        "the second scan",
        |b| b["status"] == "done",
    );
    assert!(
        server.log_text().lines().any(|l| l.contains(&second_digest)
            && l.contains("reused=1")
            && l.contains("scan done")),
        "the base layer should come from the cache:\n{}",
        server.log_text()
    );

    // A new DB with PyPI and npm data, swapped in by rename; SIGHUP makes it count at once.
    let next = dir.path().join("vuln.db.next");
    build_db(&next, &["DSA-list", "osv"]);
    std::fs::rename(&next, &db).expect("replace DB");
    server.signal(libc::SIGHUP);
    let body = wait_for(&server, "dev/app", &digest, "the re-match", |b| {
        b["db_version"].as_str().is_some_and(|v| v != first_db)
    });
    let ids = finding_ids(&body);
    assert!(ids.contains(&"CVE-2018-18074".to_owned()), "{ids:?}");
    let change = &body["changes"][0];
    assert_eq!(change["from_db"], first_db.as_str());
    assert!(
        change["added"].as_array().expect("added").iter().any(|a| a
            .as_str()
            .is_some_and(|s| s.starts_with("CVE-2018-18074 requests@2.19.1"))),
        "{change:#}"
    );
    assert!(
        server.log_text().contains("stored inventories re-matched"),
        "{}",
        server.log_text()
    );

    // A rescan on request.
    let resp = http()
        .post(scan_url(&server, "dev/app", &digest))
        .send()
        .expect("POST");
    assert_eq!(resp.status(), 202);
    let before = body["scanned_at"].as_i64().expect("scanned_at");
    wait_for(&server, "dev/app", &digest, "the rescan", |b| {
        b["status"] == "done"
            && b["attempts"] == 1
            && b["scanned_at"].as_i64().is_some_and(|t| t >= before)
    });

    // Bad requests get the JSON error shape.
    for (url, status) in [
        (
            scan_url(
                &server,
                "dev/app",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            404,
        ),
        (scan_url(&server, "dev/app", "sha256:xyz"), 400),
        (scan_url(&server, "Dev/App", &digest), 400),
        (
            format!(
                "{}/api/v1/repositories/dev/app/manifests/{digest}/nothing",
                server.base()
            ),
            404,
        ),
    ] {
        let resp = http().get(&url).send().expect("GET");
        assert_eq!(resp.status().as_u16(), status, "{url}");
        let body: Value = resp.json().expect("error json");
        assert!(body["errors"][0]["code"].is_string(), "{body}");
    }
}

#[test]
fn a_hostile_layer_fails_its_scan_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_with(
        dir.path(),
        "[scan]\nretry_delay_secs = 1\n[scan.limits]\nmax_layer_bytes = 8388608\n[storage]\ndurability = \"relaxed\"\n",
    );
    // 64 MiB of zeros in one file: about 64 KiB of gzip.
    let bomb = Layer::new().file("zeros", vec![0u8; 64 << 20]);
    let layout = dir.path().join("bomb");
    write_layout(&layout, "bomb", &[Blob::gzip(&bomb)]);
    push(&layout, "bomb", &server, "dev/bomb:1");
    let digest = head_digest(&server.base(), "dev/bomb", "1");
    let body = wait_for(&server, "dev/bomb", &digest, "the failed scan", |b| {
        b["status"] == "failed"
    });
    let reason = body["reason"].as_str().expect("reason");
    assert!(reason.contains("max_layer_bytes"), "{reason}");
    // A failed scan is retried with backoff (1 s, then 2 s) before it fails for good.
    assert!(reason.contains("after 3 attempts"), "{reason}");
    // Without a DB an image is still inventoried, with no findings and no DB version.
    let layout = dir.path().join("plain");
    write_layout(&layout, "ok", &[Blob::gzip(&debian_layers()[0])]);
    push(&layout, "ok", &server, "dev/ok:1");
    let ok = head_digest(&server.base(), "dev/ok", "1");
    let body = wait_for(&server, "dev/ok", &ok, "the scan without a DB", |b| {
        b["status"] == "done"
    });
    assert!(body["db_version"].is_null(), "{body:#}");
    assert_eq!(body["packages"], 8);
    let health = http()
        .get(format!("{}/healthz", server.base()))
        .send()
        .expect("healthz");
    assert_eq!(health.status(), 200);
}
