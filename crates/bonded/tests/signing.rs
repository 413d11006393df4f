//! Signing, black-box: `bonded key generate`, `sign`, `verify`, `attest` and
//! `verify-attestation` against `bonded serve` and against the reference registry
//! (docker-registry); the trust service's records and the pull policy; the server key; proof
//! with independent implementations (the `sigstore` crate, skopeo); hostile signatures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use scan::testkit::{Blob, Layer, put_image, put_index, write_layout};
use serde_json::{Value, json};

use client::testkit::DockerRegistry;

use crate::sigstore_rs;
use crate::support::{BIN, head_digest, http, require, serve_with};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const ACCEPT_ANY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
const ACCEPT_MANIFESTS: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Runs `bonded ARGS` with `BONDED_PASSWORD=testpass`; returns the output whatever the exit.
pub(crate) fn bonded(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BONDED_PASSWORD", "testpass")
        .env_remove("BONDED_REGISTRY_USERNAME")
        .stdin(Stdio::null())
        .output()
        .expect("run bonded")
}

pub(crate) fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "bonded failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The exit must be 1 and standard error must contain `needle`.
pub(crate) fn fails_with(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "expected exit 1: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

pub(crate) fn generate(dir: &Path, name: &str, algorithm: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    ok(&bonded(&[
        "key",
        "generate",
        "--algorithm",
        algorithm,
        "--output-key-prefix",
        prefix.to_str().expect("path"),
    ]));
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

pub(crate) fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A one-layer image layout at `dir/name`, distinct per `seed`; returns its path.
fn layout(dir: &Path, name: &str, seed: &str) -> PathBuf {
    let root = dir.join(name);
    let layer = Layer::new().file("etc/seed", seed.as_bytes().to_vec());
    write_layout(&root, "v1", &[Blob::gzip(&layer)]);
    root
}

pub(crate) fn skopeo(dir: &Path, args: &[&str]) -> Output {
    require("skopeo");
    let policy = dir.join("accept.json");
    std::fs::write(&policy, ACCEPT_ANY).expect("policy");
    Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("HOME", dir)
        .output()
        .expect("run skopeo")
}

pub(crate) fn push(dir: &Path, layout: &Path, host: &str, target: &str) {
    let out = skopeo(
        dir,
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{host}/{target}"),
        ],
    );
    assert!(
        out.status.success(),
        "skopeo push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_manifest(base: &str, repo: &str, reference: &str) -> reqwest::blocking::Response {
    http()
        .get(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("Accept", ACCEPT_MANIFESTS)
        .send()
        .expect("GET manifest")
}

fn push_blob(base: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", crate::support::sha256_hex(bytes));
    let resp = http()
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .expect("upload");
    assert_eq!(resp.status().as_u16(), 201, "blob upload");
    digest
}

fn put_manifest(base: &str, repo: &str, reference: &str, manifest: &Value) -> String {
    let body = serde_json::to_vec(manifest).expect("json");
    let resp = http()
        .put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(body)
        .send()
        .expect("PUT manifest");
    assert_eq!(
        resp.status().as_u16(),
        201,
        "PUT manifest {reference}: {:?}",
        resp.text()
    );
    format!(
        "sha256:{}",
        crate::support::sha256_hex(&serde_json::to_vec(manifest).expect("json"))
    )
}

pub(crate) fn signatures(base: &str, repo: &str, digest: &str) -> Value {
    let resp = http()
        .get(format!(
            "{base}/api/v1/repositories/{repo}/manifests/{digest}/signatures"
        ))
        .send()
        .expect("signatures");
    assert!(resp.status().is_success(), "signatures: {}", resp.status());
    resp.json().expect("json")
}

/// Sign and verify with the CLI, in Bonded and in the reference registry: ECDSA and Ed25519
/// keys, appended signatures, wrong keys, repository identity, bad keys and passwords.
#[test]
fn cli_signs_and_verifies_in_bonded_and_in_docker_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (ec_key, ec_pub) = generate(d, "ec", "ecdsa-p256");
    let (ed_key, ed_pub) = generate(d, "ed", "ed25519");
    let (_, other_pub) = generate(d, "other", "ecdsa-p256");
    let pem = std::fs::read_to_string(&ec_key).expect("key");
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{pem}"
    );
    // Never overwrites a key.
    let again = bonded(&["key", "generate", "--output-key-prefix", p(&d.join("ec"))]);
    fails_with(&again, "refusing to overwrite");

    let image = layout(d, "layout", "cli");
    let bonded_server = serve_with(d, "");
    let reference = DockerRegistry::start();
    for host in [bonded_server.host(), reference.host().to_owned()] {
        push(d, &image, &host, "demo/app:v1");
        let base = format!("http://{host}");
        let digest = head_digest(&base, "demo/app", "v1");
        let target = format!("{host}/demo/app:v1");

        fails_with(
            &bonded(&["verify", "--plain-http", "--key", p(&ec_pub), &target]),
            "no signatures found",
        );
        ok(&bonded(&[
            "sign",
            "--plain-http",
            "--key",
            p(&ec_key),
            "-a",
            "build=42",
            &target,
        ]));
        let out = ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&ec_pub),
            &target,
        ]));
        let payloads: Value = serde_json::from_str(&out).expect("JSON payloads");
        assert_eq!(payloads.as_array().map(Vec::len), Some(1), "{out}");
        assert_eq!(
            payloads[0]["critical"]["image"]["docker-manifest-digest"],
            json!(digest)
        );
        assert_eq!(
            payloads[0]["critical"]["identity"]["docker-reference"],
            json!(format!("{host}/demo/app"))
        );
        assert_eq!(payloads[0]["optional"]["build"], json!("42"));

        // A second signer is appended, as cosign does; both verify.
        let password_file = d.join("password");
        std::fs::write(&password_file, "testpass\n").expect("password");
        let signed = Command::new(BIN)
            .args([
                "sign",
                "--plain-http",
                "--key",
                p(&ed_key),
                "--password-file",
                p(&password_file),
                &target,
            ])
            .env_remove("BONDED_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("sign");
        ok(&signed);
        ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&ed_pub),
            &target,
        ]));
        ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&ec_pub),
            &format!("{host}/demo/app@{digest}"),
        ]));
        let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
        let sig: Value = get_manifest(&base, "demo/app", &sig_tag)
            .json()
            .expect("sig manifest");
        assert_eq!(sig["layers"].as_array().map(Vec::len), Some(2), "{sig}");

        fails_with(
            &bonded(&["verify", "--plain-http", "--key", p(&other_pub), &target]),
            "does not verify",
        );
    }

    // The payload names the repository: a copy elsewhere verifies only when told to ignore it.
    let host = bonded_server.host();
    let out = skopeo(
        d,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{host}/demo/app:v1"),
            &format!("docker://{host}/demo/copy:v1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = head_digest(&bonded_server.base(), "demo/app", "v1");
    let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    let sig = get_manifest(&bonded_server.base(), "demo/app", &sig_tag)
        .bytes()
        .expect("sig");
    let sig: Value = serde_json::from_slice(&sig).expect("json");
    for layer in sig["layers"].as_array().expect("layers") {
        let blob = http()
            .get(format!(
                "{}/v2/demo/app/blobs/{}",
                bonded_server.base(),
                layer["digest"].as_str().expect("digest")
            ))
            .send()
            .expect("blob")
            .bytes()
            .expect("bytes");
        push_blob(&bonded_server.base(), "demo/copy", &blob);
    }
    let config = sig["config"]["digest"].as_str().expect("config");
    let config = http()
        .get(format!(
            "{}/v2/demo/app/blobs/{config}",
            bonded_server.base()
        ))
        .send()
        .expect("config")
        .bytes()
        .expect("bytes");
    push_blob(&bonded_server.base(), "demo/copy", &config);
    put_manifest(&bonded_server.base(), "demo/copy", &sig_tag, &sig);
    let copy = format!("{host}/demo/copy:v1");
    fails_with(
        &bonded(&["verify", "--plain-http", "--key", p(&ec_pub), &copy]),
        "demo/app",
    );
    ok(&bonded(&[
        "verify",
        "--plain-http",
        "--ignore-reference",
        "--key",
        p(&ec_pub),
        &copy,
    ]));

    // On a terminal (a pseudo-terminal from util-linux `script`) the password is prompted
    // for, twice, with echo off; the key it writes decrypts with that password.
    require("script");
    let prompted = |prefix: &Path, input: &str| {
        let mut child = Command::new("script")
            .args([
                "-qec",
                &format!(
                    "{BIN} key generate --output-key-prefix {}",
                    prefix.display()
                ),
                "/dev/null",
            ])
            .env_remove("BONDED_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("type");
        child.wait_with_output().expect("script")
    };
    let out = prompted(&d.join("prompted"), "terminal pass\nterminal pass\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pem = std::fs::read(d.join("prompted.key")).expect("prompted key");
    trust::keys::SigningKey::from_pem(&pem, Some(b"terminal pass"))
        .expect("decrypts with the typed password");
    let out = prompted(&d.join("mismatch"), "one\ntwo\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("do not match"));
    assert!(!d.join("mismatch.key").exists());

    // Bad keys and passwords: a message and exit 1, never a panic.
    let wrong = Command::new(BIN)
        .args(["sign", "--plain-http", "--key", p(&ec_key), &copy])
        .env("BONDED_PASSWORD", "not the password")
        .stdin(Stdio::null())
        .output()
        .expect("sign");
    fails_with(&wrong, "password");
    let garbage = d.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    let out = bonded(&["verify", "--plain-http", "--key", p(&garbage), &copy]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.pem"));
    let no_password = Command::new(BIN)
        .args(["sign", "--plain-http", "--key", p(&ec_key), &copy])
        .env_remove("BONDED_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("sign");
    fails_with(&no_password, "no password");
}

/// The registry verifies signatures as they arrive, records them per manifest, enforces the
/// pull policy (deny and warn), takes authorities through the API, signs with its own key,
/// and lets a signed index vouch for its children.
#[test]
fn registry_records_signatures_and_enforces_the_pull_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (release_key, release_pub) = generate(d, "release", "ecdsa-p256");
    let (ci_key, ci_pub) = generate(d, "ci", "ed25519");
    std::fs::write(d.join("admin-token"), ADMIN_TOKEN).expect("token");
    let server = serve_with(
        d,
        &format!(
            r#"
[api]
admin_token_file = "{}"

[trust.authorities.release]
keys = ["{}"]

[[pull_policy]]
repositories = ["prod/**"]
require_signatures = {{ authorities = ["release"], mode = "all" }}
action = "deny"

[[pull_policy]]
name = "ci-signed"
repositories = ["staging/*"]
require_signatures = {{ authorities = ["ci"], mode = "any" }}
action = "warn"
"#,
            p(&d.join("admin-token")),
            p(&release_pub)
        ),
    );
    let base = server.base();
    let host = server.host();

    // Pushes are never blocked; the pull is denied, naming the missing authority.
    push(d, &layout(d, "l1", "prod"), &host, "prod/app:v1");
    let digest = head_digest(&base, "prod/app", "v1");
    let denied = get_manifest(&base, "prod/app", "v1");
    assert_eq!(denied.status().as_u16(), 403);
    let body: Value = denied.json().expect("error JSON");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("release") && message.contains(&digest),
        "{message}"
    );
    assert_eq!(
        body["errors"][0]["detail"]["missing"],
        json!(["release"]),
        "{body}"
    );
    // By digest too; HEAD answers (no content, only what the denial names), so signers can
    // resolve the tag.
    assert_eq!(
        get_manifest(&base, "prod/app", &digest).status().as_u16(),
        403
    );
    // Repositories no policy names are untouched.
    push(d, &layout(d, "l2", "dev"), &host, "dev/app:v1");
    assert_eq!(get_manifest(&base, "dev/app", "v1").status().as_u16(), 200);

    // A signature by a key of no authority is recorded as invalid, and does not help.
    let (stranger_key, _) = generate(d, "stranger", "ecdsa-p256");
    let target = format!("{host}/prod/app:v1");
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--key",
        p(&stranger_key),
        &target,
    ]));
    assert_eq!(get_manifest(&base, "prod/app", "v1").status().as_u16(), 403);
    let view = signatures(&base, "prod/app", &digest);
    assert_eq!(view["signed_by"], json!([]), "{view}");
    assert_eq!(view["signatures"][0]["valid"], json!(false), "{view}");
    assert!(
        view["signatures"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not verify")),
        "{view}"
    );

    // The release signature takes effect on the next pull.
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--key",
        p(&release_key),
        &target,
    ]));
    let allowed = get_manifest(&base, "prod/app", "v1");
    assert_eq!(allowed.status().as_u16(), 200);
    let view = signatures(&base, "prod/app", &digest);
    assert_eq!(view["signed_by"], json!(["release"]), "{view}");
    let valid: Vec<&Value> = view["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .filter(|s| s["valid"] == json!(true))
        .collect();
    assert_eq!(valid.len(), 1, "{view}");
    assert_eq!(
        valid[0]["docker_reference"],
        json!(format!("{host}/prod/app")),
        "{view}"
    );
    // Signature artifacts stay readable, and so does the referrers API.
    let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    assert_eq!(
        get_manifest(&base, "prod/app", &sig_tag).status().as_u16(),
        200
    );
    let referrers = http()
        .get(format!("{base}/v2/prod/app/referrers/{digest}"))
        .send()
        .expect("referrers");
    assert_eq!(referrers.status().as_u16(), 200);

    // warn: served, with a Warning header, until the authority exists and has signed.
    push(d, &layout(d, "l3", "staging"), &host, "staging/app:v1");
    let staging_digest = head_digest(&base, "staging/app", "v1");
    let warned = get_manifest(&base, "staging/app", "v1");
    assert_eq!(warned.status().as_u16(), 200);
    let warning = warned
        .headers()
        .get("warning")
        .and_then(|w| w.to_str().ok())
        .unwrap_or("");
    assert!(
        warning.starts_with("299 bonded \"") && warning.contains("ci"),
        "{warning:?}"
    );
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--key",
        p(&ci_key),
        &format!("{host}/staging/app:v1"),
    ]));
    // The signature arrived before the authority: invalid until the authority is defined,
    // then re-verified when it is.
    assert_eq!(
        signatures(&base, "staging/app", &staging_digest)["signed_by"],
        json!([])
    );
    let ci_pem = std::fs::read_to_string(&ci_pub).expect("pub");
    // Changing trust needs the admin token.
    for token in [None, Some("wrong-token-wrong-token")] {
        let mut put = http()
            .put(format!("{base}/api/v1/authorities/ci"))
            .json(&json!({"keys": [ci_pem]}));
        if let Some(t) = token {
            put = put.bearer_auth(t);
        }
        assert_eq!(put.send().expect("PUT").status().as_u16(), 401);
    }
    let put = http()
        .put(format!("{base}/api/v1/authorities/ci"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"keys": [ci_pem]}))
        .send()
        .expect("PUT authority");
    assert_eq!(put.status().as_u16(), 201);
    assert_eq!(
        signatures(&base, "staging/app", &staging_digest)["signed_by"],
        json!(["ci"])
    );
    let clean = get_manifest(&base, "staging/app", "v1");
    assert!(clean.headers().get("warning").is_none());
    let got: Value = http()
        .get(format!("{base}/api/v1/authorities/ci"))
        .send()
        .expect("GET")
        .json()
        .expect("json");
    assert_eq!(got["origin"], "api");
    // Configuration and server authorities are read-only through the API; bad keys are refused.
    for (name, status) in [("release", 409), ("bonded", 409)] {
        let resp = http()
            .put(format!("{base}/api/v1/authorities/{name}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"keys": [ci_pem]}))
            .send()
            .expect("PUT");
        assert_eq!(resp.status().as_u16(), status, "{name}");
    }
    let bad = http()
        .put(format!("{base}/api/v1/authorities/broken"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]}))
        .send()
        .expect("PUT");
    assert_eq!(bad.status().as_u16(), 400);
    let bad = http()
        .put(format!("{base}/api/v1/authorities/Bad%20Name"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"keys": []}))
        .send()
        .expect("PUT");
    assert_eq!(bad.status().as_u16(), 400);

    // The server key signs on request (authority `bonded`), appending to the `.sig` manifest.
    push(d, &layout(d, "l4", "server"), &host, "prod/server:v1");
    let server_digest = head_digest(&base, "prod/server", "v1");
    let signed = http()
        .post(format!(
            "{base}/api/v1/repositories/prod/server/manifests/{server_digest}/sign"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .expect("POST sign");
    assert_eq!(signed.status().as_u16(), 201);
    let view = signatures(&base, "prod/server", &server_digest);
    assert_eq!(view["signed_by"], json!(["bonded"]), "{view}");
    // Still denied: the policy wants `release`, not `bonded`.
    assert_eq!(
        get_manifest(&base, "prod/server", "v1").status().as_u16(),
        403
    );
    // The server's public key verifies the server's signature with the CLI too.
    let server_pub = d.join("data/trust/server.pub");
    ok(&bonded(&[
        "verify",
        "--plain-http",
        "--key",
        p(&server_pub),
        &format!("{host}/prod/server:v1"),
    ]));
    let missing = http()
        .post(format!(
            "{base}/api/v1/repositories/prod/server/manifests/sha256:{}/sign",
            "0".repeat(64)
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .expect("POST sign");
    assert_eq!(missing.status().as_u16(), 404);

    // A signed index vouches for its children; an unsigned index does not.
    let children = push_index(d, &host, "prod/multi");
    let child = children[0].clone();
    assert_eq!(
        get_manifest(&base, "prod/multi", &child).status().as_u16(),
        403
    );
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--key",
        p(&release_key),
        &format!("{host}/prod/multi:v1"),
    ]));
    assert_eq!(
        get_manifest(&base, "prod/multi", "v1").status().as_u16(),
        200
    );
    assert_eq!(
        get_manifest(&base, "prod/multi", &child).status().as_u16(),
        200
    );
    let view = signatures(&base, "prod/multi", &child);
    assert_eq!(
        (view["signed_by"].clone(), view["signed_by_index"].clone()),
        (json!([]), json!(["release"]))
    );

    // `--recursive` works under a deny policy: the index is signed first, then read.
    let children2 = push_index(d, &host, "prod/multi2");
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--recursive",
        "--key",
        p(&release_key),
        &format!("{host}/prod/multi2:v1"),
    ]));
    for child in &children2 {
        assert_eq!(
            signatures(&base, "prod/multi2", child)["signed_by"],
            json!(["release"])
        );
    }

    // An image that calls itself an artifact is still an image: runtimes ignore artifactType.
    let disguised = d.join("disguised");
    write_layout(
        &disguised,
        "v1",
        &[Blob::gzip(&Layer::new().file("bin/evil", b"x".to_vec()))],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(disguised.join("index.json")).expect("index"))
            .expect("json");
    let manifest_hex = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .trim_start_matches("sha256:")
        .to_owned();
    let mut manifest: Value = serde_json::from_slice(
        &std::fs::read(disguised.join("blobs/sha256").join(&manifest_hex)).expect("manifest"),
    )
    .expect("json");
    manifest["artifactType"] = json!("application/vnd.example.not-an-image");
    for blob in
        std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().expect("layers"))
    {
        let hex = blob["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        push_blob(
            &base,
            "prod/disguised",
            &std::fs::read(disguised.join("blobs/sha256").join(hex)).expect("blob"),
        );
    }
    let disguised_digest = put_manifest(&base, "prod/disguised", "v1", &manifest);
    assert_eq!(
        get_manifest(&base, "prod/disguised", &disguised_digest)
            .status()
            .as_u16(),
        403
    );

    // An attestation by an authority, placed in a `.sig` manifest, is not a signature.
    let attestation_key = trust::keys::SigningKey::from_pem(
        &std::fs::read(&release_key).expect("key"),
        Some(b"testpass"),
    )
    .expect("key");
    let statement = trust::dsse::statement(
        &format!("{host}/prod/disguised"),
        &disguised_digest.parse().expect("digest"),
        "https://slsa.dev/provenance/v1",
        json!({}),
    );
    let envelope = trust::dsse::sign_envelope(
        &attestation_key,
        trust::dsse::INTOTO_PAYLOAD_TYPE,
        &statement,
    );
    let envelope_digest = push_blob(&base, "prod/disguised", &envelope);
    let empty = push_blob(&base, "prod/disguised", b"{}");
    put_manifest(
        &base,
        "prod/disguised",
        &format!(
            "sha256-{}.sig",
            disguised_digest.trim_start_matches("sha256:")
        ),
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "digest": envelope_digest, "size": envelope.len()}],
        }),
    );
    let view = signatures(&base, "prod/disguised", &disguised_digest);
    assert_eq!(view["signed_by"], json!([]), "{view}");
    assert_eq!(view["attestations"][0]["valid"], json!(true), "{view}");
    assert_eq!(
        get_manifest(&base, "prod/disguised", &disguised_digest)
            .status()
            .as_u16(),
        403
    );

    // Deleting the signature tag withdraws the signature.
    let deleted = http()
        .delete(format!("{base}/v2/prod/app/manifests/{sig_tag}"))
        .send()
        .expect("DELETE tag");
    assert_eq!(deleted.status().as_u16(), 202);
    assert_eq!(get_manifest(&base, "prod/app", "v1").status().as_u16(), 403);

    // A restart re-verifies from the stored bytes and keeps the server key.
    drop(server);
    let server = serve_with(
        d,
        &std::fs::read_to_string(d.join("bonded.toml")).expect("config"),
    );
    let base = server.base();
    assert_eq!(
        get_manifest(&base, "prod/multi", "v1").status().as_u16(),
        200
    );
    assert_eq!(
        signatures(&base, "prod/server", &server_digest)["signed_by"],
        json!(["bonded"])
    );
    assert_eq!(
        signatures(&base, "staging/app", &staging_digest)["signed_by"],
        json!(["ci"])
    );
}

/// A two-platform image index pushed with skopeo to `host/repo:v1`; returns the children's
/// digests.
fn push_index(d: &Path, host: &str, repo: &str) -> Vec<String> {
    let multi = d.join(format!("multi-{}", repo.replace('/', "-")));
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = Layer::new().file("etc/arch", format!("{repo} {arch}").into_bytes());
        children.push(put_image(&multi, &[Blob::gzip(&layer)], arch));
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children});
    let index_bytes = serde_json::to_vec(&index).expect("index");
    let index_digest = format!("sha256:{}", crate::support::sha256_hex(&index_bytes));
    std::fs::write(
        multi
            .join("blobs/sha256")
            .join(index_digest.trim_start_matches("sha256:")),
        &index_bytes,
    )
    .expect("blob");
    put_index(
        &multi,
        "v1",
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index_bytes.len()}),
    );
    let out = skopeo(
        d,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", multi.display()),
            &format!("docker://{host}/{repo}:v1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    children
        .iter()
        .map(|c| c["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// `--recursive` signs an index and every manifest it lists; signatures stored as OCI 1.1
/// referrers (a simple-signing layer, a key-signed Sigstore bundle) are found by `bonded
/// verify` and recorded by the registry like `.sig` tags.
#[test]
fn recursive_signing_and_referrer_signatures() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (key_path, public) = generate(d, "k", "ecdsa-p256");
    let server = serve_with(
        d,
        &format!("[trust.authorities.release]\nkeys = [\"{}\"]\n", p(&public)),
    );
    let (base, host) = (server.base(), server.host());

    let children = push_index(d, &host, "demo/multi");
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--recursive",
        "--key",
        p(&key_path),
        &format!("{host}/demo/multi:v1"),
    ]));
    for child in &children {
        ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public),
            &format!("{host}/demo/multi@{child}"),
        ]));
        assert_eq!(
            signatures(&base, "demo/multi", child)["signed_by"],
            json!(["release"])
        );
    }

    let key = trust::keys::SigningKey::from_pem(
        &std::fs::read(&key_path).expect("key"),
        Some(b"testpass"),
    )
    .expect("key");
    let empty = push_blob(&base, "demo/ref", b"{}");
    for (n, kind) in ["simple-signing", "bundle"].iter().enumerate() {
        let repo = format!("demo/ref{n}");
        push(
            d,
            &layout(d, &format!("r{n}"), kind),
            &host,
            &format!("{repo}:v1"),
        );
        let digest = head_digest(&base, &repo, "v1");
        let parsed: oci::Digest = digest.parse().expect("digest");
        let (blob, layer) = if *kind == "bundle" {
            let bundle = trust::bundle::make_bundle(&key, &parsed);
            let blob_digest = push_blob(&base, &repo, &bundle);
            (
                bundle.clone(),
                json!({"mediaType": trust::cosign::BUNDLE_MEDIA_TYPE, "digest": blob_digest, "size": bundle.len()}),
            )
        } else {
            let payload = trust::payload::simple_signing_payload(
                &format!("{host}/{repo}"),
                &parsed,
                &Default::default(),
            );
            let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload));
            let blob_digest = push_blob(&base, &repo, &payload);
            (
                payload.clone(),
                json!({"mediaType": trust::cosign::SIMPLE_SIGNING_MEDIA_TYPE, "digest": blob_digest, "size": payload.len(),
                "annotations": {"dev.cosignproject.cosign/signature": signature}}),
            )
        };
        assert!(!blob.is_empty());
        push_blob(&base, &repo, b"{}");
        let subject_size = get_manifest(&base, &repo, "v1")
            .bytes()
            .expect("manifest")
            .len();
        let referrer = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": if *kind == "bundle" { trust::cosign::BUNDLE_MEDIA_TYPE } else { "application/vnd.dev.cosign.artifact.sig.v1+json" },
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [layer],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": subject_size},
        });
        let body = serde_json::to_vec(&referrer).expect("json");
        let referrer_digest = format!("sha256:{}", crate::support::sha256_hex(&body));
        put_manifest(&base, &repo, &referrer_digest, &referrer);
        let out = ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public),
            &format!("{host}/{repo}:v1"),
        ]));
        assert!(
            out.contains(digest.trim_start_matches("sha256:")),
            "{kind}: {out}"
        );
        let view = signatures(&base, &repo, &digest);
        assert_eq!(view["signed_by"], json!(["release"]), "{kind}: {view}");
        assert_eq!(
            view["signatures"][0]["via"],
            json!("referrer"),
            "{kind}: {view}"
        );
    }
}

/// Attestations: in-toto statements in DSSE envelopes under `.att`, verified by type, and a
/// verified SLSA provenance recorded as the image's build history.
#[test]
fn attestations_are_verified_and_provenance_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (key, public) = generate(d, "ci", "ecdsa-p256");
    let server = serve_with(
        d,
        &format!("[trust.authorities.ci]\nkeys = [\"{}\"]\n", p(&public)),
    );
    let host = server.host();
    push(d, &layout(d, "l", "attest"), &host, "demo/built:v1");
    let digest = head_digest(&server.base(), "demo/built", "v1");
    let target = format!("{host}/demo/built:v1");
    let predicate = d.join("provenance.json");
    std::fs::write(
        &predicate,
        serde_json::to_vec(&json!({
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/bonded-dev/app", "path": ".github/workflows/build.yml"}},
                "resolvedDependencies": [{"uri": "git+https://github.com/bonded-dev/app@refs/heads/main", "digest": {"gitCommit": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"}}]
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}, "metadata": {"invocationId": "https://github.com/bonded-dev/app/actions/runs/1"}}
        }))
        .expect("json"),
    )
    .expect("predicate");
    ok(&bonded(&[
        "attest",
        "--plain-http",
        "--key",
        p(&key),
        "--predicate",
        p(&predicate),
        "--type",
        "slsaprovenance1",
        &target,
    ]));
    let out = ok(&bonded(&[
        "verify-attestation",
        "--plain-http",
        "--key",
        p(&public),
        "--type",
        "slsaprovenance1",
        &target,
    ]));
    let statements: Value = serde_json::from_str(&out).expect("statements");
    assert_eq!(
        statements[0]["predicate_type"],
        json!("https://slsa.dev/provenance/v1"),
        "{out}"
    );
    fails_with(
        &bonded(&[
            "verify-attestation",
            "--plain-http",
            "--key",
            p(&public),
            "--type",
            "spdx",
            &target,
        ]),
        "predicate type",
    );
    let bad_predicate = d.join("bad.json");
    std::fs::write(&bad_predicate, "{not json").expect("write");
    fails_with(
        &bonded(&[
            "attest",
            "--plain-http",
            "--key",
            p(&key),
            "--predicate",
            p(&bad_predicate),
            &target,
        ]),
        "not JSON",
    );
    // Without an admin token configured, the server does not sign for anyone.
    let refused = http()
        .post(format!(
            "{}/api/v1/repositories/demo/built/manifests/{digest}/sign",
            server.base()
        ))
        .send()
        .expect("POST sign");
    assert_eq!(refused.status().as_u16(), 403);
    let view = signatures(&server.base(), "demo/built", &digest);
    let build = &view["build_history"][0];
    assert_eq!(
        build["builder_id"],
        json!("https://github.com/actions/runner/github-hosted"),
        "{view}"
    );
    assert_eq!(
        build["source_commit"],
        json!("7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"),
        "{view}"
    );
    assert_eq!(build["authorities"], json!(["ci"]), "{view}");
    assert_eq!(view["attestations"][0]["valid"], json!(true), "{view}");
}

/// The `sigstore` crate, an independent cosign implementation, verifies what `bonded sign`
/// writes (keys from Bonded), and `bonded verify` accepts what sigstore signs (keys from
/// sigstore, and Bonded's key files read by sigstore).
#[test]
fn sigstore_crate_and_bonded_verify_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = serve_with(d, "");
    let host = server.host();
    for (n, algorithm) in ["ecdsa-p256", "ed25519"].iter().enumerate() {
        let repo = format!("interop/bonded-{n}");
        push(
            d,
            &layout(d, &format!("l{n}"), algorithm),
            &host,
            &format!("{repo}:v1"),
        );
        let (key, public) = generate(d, &format!("k{n}"), algorithm);
        let target = format!("{host}/{repo}:v1");
        ok(&bonded(&[
            "sign",
            "--plain-http",
            "--key",
            p(&key),
            &target,
        ]));
        let public_pem = std::fs::read(&public).expect("pub");
        assert_eq!(
            sigstore_rs::verify(&target, &public_pem, true),
            Ok(1),
            "{algorithm}"
        );
        // sigstore reads Bonded's encrypted key file and signs with it; Bonded verifies.
        let private_pem = std::fs::read(&key).expect("key");
        sigstore_rs::load_private_key(&private_pem, b"testpass").expect("sigstore loads our key");
        let other = format!("interop/sigstore-with-bonded-key-{n}");
        push(
            d,
            &layout(d, &format!("m{n}"), algorithm),
            &host,
            &format!("{other}:v1"),
        );
        let other_target = format!("{host}/{other}:v1");
        sigstore_rs::sign(&other_target, &private_pem, b"testpass", true).expect("sigstore signs");
        ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public),
            &other_target,
        ]));
    }
    // A raw signature by a Bonded key over a payload verifies with sigstore; one flipped
    // byte of the payload does not.
    let (key, public) = generate(d, "raw", "ecdsa-p256");
    let key =
        trust::keys::SigningKey::from_pem(&std::fs::read(&key).expect("key"), Some(b"testpass"))
            .expect("key");
    let digest: oci::Digest = format!("sha256:{}", "12".repeat(32))
        .parse()
        .expect("digest");
    let mut payload = trust::payload::simple_signing_payload(
        &format!("{host}/raw"),
        &digest,
        &Default::default(),
    );
    let signature = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key.sign(&payload))
    };
    let public_pem = std::fs::read(&public).expect("pub");
    assert_eq!(
        sigstore_rs::verify_payload(&payload, &signature, &public_pem),
        Ok(())
    );
    payload[10] ^= 0x20;
    assert!(sigstore_rs::verify_payload(&payload, &signature, &public_pem).is_err());

    // Keys made by sigstore.
    for (n, scheme) in [sigstore_rs::Scheme::EcdsaP256, sigstore_rs::Scheme::Ed25519]
        .into_iter()
        .enumerate()
    {
        let (private, public) = sigstore_rs::generate_key(b"sigpass", scheme);
        let repo = format!("interop/sigstore-{n}");
        push(
            d,
            &layout(d, &format!("s{n}"), &format!("{scheme:?}")),
            &host,
            &format!("{repo}:v1"),
        );
        let target = format!("{host}/{repo}:v1");
        sigstore_rs::sign(&target, private.as_bytes(), b"sigpass", true).expect("sigstore signs");
        let public_path = d.join(format!("sigstore-{n}.pub"));
        std::fs::write(&public_path, &public).expect("pub");
        let out = ok(&bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public_path),
            &target,
        ]));
        assert!(out.contains("cosign container image signature"), "{out}");
        // And Bonded signs with sigstore's key file.
        let private_path = d.join(format!("sigstore-{n}.key"));
        std::fs::write(&private_path, &private).expect("key");
        let resigned = Command::new(BIN)
            .args(["sign", "--plain-http", "--key", p(&private_path), &target])
            .env("BONDED_PASSWORD", "sigpass")
            .stdin(Stdio::null())
            .output()
            .expect("sign");
        ok(&resigned);
        assert_eq!(
            sigstore_rs::verify(&target, public.as_bytes(), true),
            Ok(2),
            "{scheme:?}"
        );
    }
}

/// skopeo (containers/image, Debian build) discovers Bonded's signatures and copies them with
/// the image; the copy still verifies, with Bonded and with the sigstore crate.
#[test]
fn skopeo_discovers_and_copies_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = serve_with(d, "");
    let host = server.host();
    let (key, public) = generate(d, "k", "ecdsa-p256");
    push(d, &layout(d, "signed", "signed"), &host, "demo/signed:v1");
    push(
        d,
        &layout(d, "unsigned", "unsigned"),
        &host,
        "demo/unsigned:v1",
    );
    ok(&bonded(&[
        "sign",
        "--plain-http",
        "--key",
        p(&key),
        &format!("{host}/demo/signed:v1"),
    ]));

    let registries = d.join("registries.d");
    std::fs::create_dir_all(&registries).expect("dir");
    std::fs::write(
        registries.join("local.yaml"),
        format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
    )
    .expect("yaml");
    let policy = d.join("sigstore-required.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(&json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {format!("{host}/demo"): [{"type": "sigstoreSigned", "keyPath": public, "signedIdentity": {"type": "matchRepository"}}]},
                "dir": {"": [{"type": "insecureAcceptAnything"}]}
            }
        }))
        .expect("json"),
    )
    .expect("policy");
    let pull = |repo: &str| {
        require("skopeo");
        Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .arg("--registries.d")
            .arg(&registries)
            .args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{host}/{repo}:v1"),
            ])
            .arg(format!(
                "dir:{}",
                d.join(format!("pulled-{}", repo.replace('/', "-")))
                    .display()
            ))
            .env("HOME", d)
            .output()
            .expect("skopeo")
    };
    let unsigned = pull("demo/unsigned");
    assert!(!unsigned.status.success());
    assert!(
        String::from_utf8_lossy(&unsigned.stderr).contains("no signature exists"),
        "{}",
        String::from_utf8_lossy(&unsigned.stderr)
    );
    let signed = pull("demo/signed");
    assert!(!signed.status.success());
    assert!(
        String::from_utf8_lossy(&signed.stderr).contains("Debian-local change: sigstore disabled"),
        "the signature was not discovered: {}",
        String::from_utf8_lossy(&signed.stderr)
    );

    // Registry to registry, with the attachments.
    let accept = d.join("accept.json");
    std::fs::write(&accept, ACCEPT_ANY).expect("policy");
    let copied = Command::new("skopeo")
        .arg("--policy")
        .arg(&accept)
        .arg("--registries.d")
        .arg(&registries)
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{host}/demo/signed:v1"),
            &format!("docker://{host}/demo/signed-copy:v1"),
        ])
        .env("HOME", d)
        .output()
        .expect("skopeo");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let digest = head_digest(&server.base(), "demo/signed-copy", "v1");
    let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    assert_eq!(
        get_manifest(&server.base(), "demo/signed-copy", &sig_tag)
            .status()
            .as_u16(),
        200
    );
    let copy = format!("{host}/demo/signed-copy:v1");
    ok(&bonded(&[
        "verify",
        "--plain-http",
        "--ignore-reference",
        "--key",
        p(&public),
        &copy,
    ]));
    let public_pem = std::fs::read(&public).expect("pub");
    assert_eq!(sigstore_rs::verify(&copy, &public_pem, true), Ok(1));
}

/// Builds the layers of a hostile signature manifest for an image digest.
type MakeLayers<'a> = Box<dyn Fn(&str) -> Vec<Value> + 'a>;

/// Hostile signatures pushed straight into the registry: each refused by `bonded verify` and
/// recorded by the trust service with a precise reason; the server stays healthy.
#[test]
fn hostile_signatures_are_refused_with_precise_reasons() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (_, public) = generate(d, "k", "ecdsa-p256");
    let server = serve_with(
        d,
        &format!("[trust.authorities.release]\nkeys = [\"{}\"]\n", p(&public)),
    );
    let base = server.base();
    let host = server.host();
    let key = trust::keys::SigningKey::from_pem(
        &std::fs::read(d.join("k.key")).expect("key"),
        Some(b"testpass"),
    )
    .expect("key");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let empty_config = push_blob(&base, "bad/app", b"{}");
    let sig_manifest = |layers: Vec<Value>| {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty_config, "size": 2},
            "layers": layers,
        })
    };
    let layer = |payload: &[u8], signature: &str| {
        let digest = push_blob(&base, "bad/app", payload);
        json!({
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": digest,
            "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": signature},
        })
    };
    let cases: Vec<(&str, MakeLayers<'_>, &str)> = vec![
        (
            "tampered",
            Box::new(|digest: &str| {
                let payload = trust::payload::simple_signing_payload(
                    &format!("{host}/bad/tampered"),
                    &digest.parse().expect("digest"),
                    &Default::default(),
                );
                let signature = b64(&key.sign(&payload));
                let mut tampered = payload.clone();
                let at = tampered.len() / 2;
                tampered[at] ^= 1;
                vec![layer(&tampered, &signature)]
            }),
            "does not verify",
        ),
        (
            "other-digest",
            Box::new(|_: &str| {
                let other: oci::Digest = format!("sha256:{}", "ab".repeat(32))
                    .parse()
                    .expect("digest");
                let payload = trust::payload::simple_signing_payload(
                    &format!("{host}/bad/other-digest"),
                    &other,
                    &Default::default(),
                );
                vec![layer(&payload, &b64(&key.sign(&payload)))]
            }),
            "sha256:abab",
        ),
        (
            "truncated",
            Box::new(|digest: &str| {
                let payload = trust::payload::simple_signing_payload(
                    &format!("{host}/bad/truncated"),
                    &digest.parse().expect("digest"),
                    &Default::default(),
                );
                let signature = key.sign(&payload);
                vec![layer(&payload, &b64(&signature[..signature.len() / 2]))]
            }),
            "signature",
        ),
        (
            "garbage",
            Box::new(|digest: &str| {
                let payload = trust::payload::simple_signing_payload(
                    &format!("{host}/bad/garbage"),
                    &digest.parse().expect("digest"),
                    &Default::default(),
                );
                vec![layer(&payload, "%%% not base64 %%%")]
            }),
            "base64",
        ),
        (
            "thousands",
            Box::new(|digest: &str| {
                let payload = trust::payload::simple_signing_payload(
                    &format!("{host}/bad/thousands"),
                    &digest.parse().expect("digest"),
                    &Default::default(),
                );
                let one = layer(&payload, &b64(&key.sign(&payload)));
                vec![one; 3000]
            }),
            "layers",
        ),
    ];
    for (n, (name, make, reason)) in cases.into_iter().enumerate() {
        let repo = format!("bad/{name}");
        push(
            d,
            &layout(d, &format!("l{n}"), name),
            &host,
            &format!("{repo}:v1"),
        );
        let digest = head_digest(&base, &repo, "v1");
        let layers = make(&digest);
        let manifest = sig_manifest(layers);
        // The blobs were pushed to bad/app; mount them into this repository.
        for blob in manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| l["digest"].as_str().expect("d"))
            .chain([empty_config.as_str()])
        {
            let resp = http()
                .post(format!(
                    "{base}/v2/{repo}/blobs/uploads/?mount={blob}&from=bad/app"
                ))
                .send()
                .expect("mount");
            assert_eq!(resp.status().as_u16(), 201, "mount");
        }
        let sig_tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
        put_manifest(&base, &repo, &sig_tag, &manifest);
        let out = bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public),
            &format!("{host}/{repo}:v1"),
        ]);
        fails_with(&out, reason);
        let view = signatures(&base, &repo, &digest);
        assert_eq!(view["signed_by"], json!([]), "{name}: {view}");
        let recorded = view["signatures"].to_string();
        assert!(
            recorded.contains(reason)
                || recorded.contains("invalid")
                || recorded.contains(&reason.to_lowercase()),
            "{name}: {recorded}"
        );
    }
    // A payload naming another repository: refused unless told to ignore the reference.
    push(d, &layout(d, "lr", "repo"), &host, "bad/renamed:v1");
    let digest = head_digest(&base, "bad/renamed", "v1");
    let payload = trust::payload::simple_signing_payload(
        &format!("{host}/somewhere/else"),
        &digest.parse().expect("digest"),
        &Default::default(),
    );
    let manifest = sig_manifest(vec![layer(&payload, &b64(&key.sign(&payload)))]);
    for blob in manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("d"))
        .chain([empty_config.as_str()])
    {
        http()
            .post(format!(
                "{base}/v2/bad/renamed/blobs/uploads/?mount={blob}&from=bad/app"
            ))
            .send()
            .expect("mount");
    }
    put_manifest(
        &base,
        "bad/renamed",
        &format!("sha256-{}.sig", digest.trim_start_matches("sha256:")),
        &manifest,
    );
    fails_with(
        &bonded(&[
            "verify",
            "--plain-http",
            "--key",
            p(&public),
            &format!("{host}/bad/renamed:v1"),
        ]),
        "somewhere/else",
    );
    ok(&bonded(&[
        "verify",
        "--plain-http",
        "--ignore-reference",
        "--key",
        p(&public),
        &format!("{host}/bad/renamed:v1"),
    ]));
    // The registry counts the digest, which is what is signed, and shows the name it carries.
    let view = signatures(&base, "bad/renamed", &digest);
    assert_eq!(view["signed_by"], json!(["release"]), "{view}");
    assert_eq!(
        view["signatures"][0]["docker_reference"],
        json!(format!("{host}/somewhere/else"))
    );
    assert_eq!(
        http()
            .get(format!("{base}/healthz"))
            .send()
            .expect("health")
            .status()
            .as_u16(),
        200
    );
}
