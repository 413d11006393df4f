use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

const ACCEPT_ANY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

struct Workspace {
    dir: tempfile::TempDir,
    policy: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(&policy, ACCEPT_ANY).unwrap();
        Workspace { dir, policy }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn skopeo(&self, args: &[&str]) -> String {
        require("skopeo");
        run(Command::new("skopeo")
            .arg("--policy")
            .arg(&self.policy)
            .args(args)
            .env("HOME", self.path()))
    }

    /// Builds `layout:name` with `layers` layers of distinct data (umoci) for `arch`.
    fn image(&self, layout: &str, name: &str, layers: usize, arch: &str) {
        require("umoci");
        let layout_path = self.path().join(layout);
        let image = format!("{}:{name}", layout_path.display());
        if !layout_path.exists() {
            run(Command::new("umoci").args(["init", "--layout", layout_path.to_str().unwrap()]));
        }
        run(Command::new("umoci").args(["new", "--image", &image]));
        for i in 0..layers {
            let src = self.path().join(format!("src-{name}-{i}"));
            std::fs::create_dir_all(&src).unwrap();
            let data: Vec<u8> = (0..200_000u32)
                .map(|x| ((x * 31 + i as u32 * 7) % 251) as u8)
                .collect();
            std::fs::write(
                src.join(format!("file{i}")),
                format!("{name}-{i}").repeat(10),
            )
            .unwrap();
            std::fs::write(src.join(format!("data{i}")), data).unwrap();
            run(Command::new("umoci").args([
                "insert",
                "--image",
                &image,
                src.to_str().unwrap(),
                &format!("/layer{i}"),
            ]));
        }
        run(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--architecture",
            arch,
            "--os",
            "linux",
            "--config.cmd",
            "/bin/true",
        ]));
    }
}

/// The manifest descriptor named `name` in a layout's index.json.
fn layout_manifest(layout: &Path, name: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {index}"))
        .clone()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// Every digest an image in a layout consists of: manifest, config, layers.
fn image_digests(layout: &Path, manifest_digest: &str) -> BTreeSet<String> {
    let manifest: Value = serde_json::from_slice(&blob(layout, manifest_digest)).unwrap();
    let mut set = BTreeSet::from([
        manifest_digest.to_owned(),
        manifest["config"]["digest"].as_str().unwrap().to_owned(),
    ]);
    for l in manifest["layers"].as_array().unwrap() {
        set.insert(l["digest"].as_str().unwrap().to_owned());
    }
    set
}

#[test]
fn skopeo_round_trip_keeps_every_digest() {
    let ws = Workspace::new();
    let server = Server::start(ws.path(), free_addr(), &["--data-dir", "data"], &[]);
    let host = server.host();
    ws.image("src", "app", 4, "amd64");
    let src = ws.path().join("src");
    let manifest = layout_manifest(&src, "app");
    let digest = manifest["digest"].as_str().unwrap().to_owned();
    let source_digests = image_digests(&src, &digest);
    assert_eq!(source_digests.len(), 6, "manifest, config and four layers");

    ws.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:app", src.display()),
        &format!("docker://{host}/team/app:v1"),
    ]);
    ws.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{host}/team/app:v1"),
        &format!("docker://{host}/prod/team/app:v1.0"),
    ]);
    let out = ws.path().join("out");
    ws.skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/prod/team/app:v1.0"),
        &format!("oci:{}:app", out.display()),
    ]);
    let back = layout_manifest(&out, "app");
    assert_eq!(
        back["digest"], manifest["digest"],
        "manifest digest unchanged through two hops"
    );
    assert_eq!(
        image_digests(&out, &digest),
        source_digests,
        "config and layer digests unchanged"
    );

    // The copy between repositories mounted blobs rather than re-uploading them.
    assert!(
        server.log_text().contains("mount="),
        "skopeo's repository-to-repository copy should use cross-repository mounts"
    );

    let tags: Value = serde_json::from_str(&ws.skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/team/app"),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));
    let raw = ws.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/team/app:v1"),
    ]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        digest,
        "served byte for byte"
    );
}

#[test]
fn skopeo_multi_arch_index() {
    let ws = Workspace::new();
    let server = Server::start(ws.path(), free_addr(), &["--data-dir", "data"], &[]);
    let host = server.host();
    ws.image("multi", "amd", 2, "amd64");
    ws.image("multi", "arm", 2, "arm64");
    let layout = ws.path().join("multi");
    let mut children = Vec::new();
    for (name, arch) in [("amd", "amd64"), ("arm", "arm64")] {
        let mut d = layout_manifest(&layout, name);
        d.as_object_mut().unwrap().remove("annotations");
        d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        children.push(d);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
    }))
    .unwrap();
    let index_hex = sha256_hex(&index);
    std::fs::write(layout.join("blobs/sha256").join(&index_hex), &index).unwrap();
    let mut top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{index_hex}"),
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();

    ws.skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{host}/multi/app:v1"),
    ]);
    let raw = ws.skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/multi/app:v1"),
    ]);
    assert_eq!(
        sha256_hex(raw.as_bytes()),
        index_hex,
        "the index is served byte for byte"
    );
    // Each platform resolves to its own image.
    for arch in ["amd64", "arm64"] {
        let config = ws.skopeo(&[
            "inspect",
            "--config",
            "--override-arch",
            arch,
            "--tls-verify=false",
            &format!("docker://{host}/multi/app:v1"),
        ]);
        let config: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["architecture"], arch);
    }
    let out = ws.path().join("out");
    ws.skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{host}/multi/app:v1"),
        &format!("oci:{}:multi", out.display()),
    ]);
    assert_eq!(
        layout_manifest(&out, "multi")["digest"],
        format!("sha256:{index_hex}")
    );
    for child in &children {
        let d = child["digest"].as_str().unwrap();
        assert_eq!(image_digests(&out, d), image_digests(&layout, d));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_referrer_and_referrers_api() {
    require("python3");
    let check = Command::new("python3")
        .args(["-c", "import oras.provider"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the Python package `oras` is required (pip install oras==0.2.43); scripts/test installs it"
    );
    let ws = Workspace::new();
    let server = Server::start(ws.path(), free_addr(), &["--data-dir", "data"], &[]);
    let host = server.host();
    ws.image("src", "app", 1, "amd64");
    let src = ws.path().join("src");
    ws.skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:app", src.display()),
        &format!("docker://{host}/demo/hello:v1"),
    ]);
    let subject = layout_manifest(&src, "app");
    let digest = subject["digest"].as_str().unwrap();
    let size = subject["size"].to_string();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/oras_referrer.py");
    let out = run(Command::new("python3").args([
        script.to_str().unwrap(),
        &host,
        "demo/hello",
        digest,
        &size,
        ws.path().to_str().unwrap(),
    ]));
    let result: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], 201);
    assert_eq!(
        result["oci_subject"], digest,
        "OCI-Subject tells oras the registry tracked the subject"
    );
    assert_eq!(result["pulled"], "{\"sbom\":\"demo\"}\n");

    let r = reqwest::get(format!("http://{host}/v2/demo/hello/referrers/{digest}"))
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index: Value = r.json().await.unwrap();
    let list = index["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{index}");
    assert_eq!(
        list[0]["artifactType"],
        "application/vnd.unknown.config.v1+json"
    );
    assert_eq!(list[0]["annotations"]["org.example.kind"], "sbom");
    let filtered: Value = reqwest::get(format!(
        "http://{host}/v2/demo/hello/referrers/{digest}?artifactType=application/vnd.example.none"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(filtered["manifests"], serde_json::json!([]));
}

#[test]
fn podman_push_and_pull_with_vfs_storage() {
    require("podman");
    let ws = Workspace::new();
    let server = Server::start(ws.path(), free_addr(), &["--data-dir", "data"], &[]);
    let host = server.host();
    ws.image("src", "app", 3, "amd64");
    let src = ws.path().join("src");
    let expected = layout_manifest(&src, "app");
    let storage = ws.path().join("podman");
    let podman = |args: &[&str]| {
        run(Command::new("podman")
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("HOME", ws.path()))
    };
    // Into podman's (vfs) storage with skopeo, so the local name does not depend on the path.
    let store = format!(
        "containers-storage:[vfs@{}+{}]localhost/app:v1",
        storage.join("root").display(),
        storage.join("run").display()
    );
    ws.skopeo(&["copy", &format!("oci:{}:app", src.display()), &store]);
    podman(&[
        "push",
        "-q",
        "--tls-verify=false",
        "localhost/app:v1",
        &format!("{host}/podman/app:v1"),
    ]);
    podman(&["rmi", "-a", "-f"]);
    assert!(podman(&["images", "-q"]).trim().is_empty());
    podman(&[
        "pull",
        "-q",
        "--tls-verify=false",
        &format!("{host}/podman/app:v1"),
    ]);
    let inspect: Value = serde_json::from_str(&podman(&[
        "image",
        "inspect",
        &format!("{host}/podman/app:v1"),
    ]))
    .unwrap();
    assert_eq!(inspect[0]["Architecture"], "amd64");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    // The config (image id) survived the round trip.
    let config =
        serde_json::from_slice::<Value>(&blob(&src, expected["digest"].as_str().unwrap())).unwrap();
    let config_hex = config["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert!(
        inspect[0]["Id"]
            .as_str()
            .unwrap()
            .starts_with(&config_hex[..12])
    );
}
