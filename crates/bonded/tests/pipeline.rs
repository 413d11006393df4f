//! The seed flow end to end, black-box: a vulnerability DB built from real advisories, a
//! vulnerable and a fixed image pushed to `dev/app` with skopeo and signed by CI, the
//! promotion rule of the issue, the fixed image promoted to `prod/app` under its templated
//! tag and signed by the server key (`bonded verify` passes), the vulnerable one rejected with
//! its CVE id in the decision, the promoted tag immutable, the image's history with the
//! pusher's address and user agent, and a DB update that turns up a new critical finding and
//! changes the recorded verdict.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use scan::testkit::{Blob, Layer, write_layout};
use serde_json::{Value, json};

use crate::signing::{bonded, fails_with, generate, ok, p, push};
use crate::support::{BIN, Server, head_digest, http, run, serve_with};

const TOKEN: &str = "pipeline-admin-token-0123456789";
/// A Standard Webhooks secret (32 bytes).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The webhook receiver's process, stopped with the test.
struct Receiver(std::process::Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The deliveries received so far, once `done` holds (60 s at most).
fn deliveries(path: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {got:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An image whose only packages are lodash and minimist at the given versions.
fn npm_layout(dir: &Path, name: &str, lodash: &str, minimist: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    let package = |n: &str, v: &str| format!(r#"{{"name":"{n}","version":"{v}"}}"#).into_bytes();
    let layer = Layer::new()
        .file(
            "opt/app/node_modules/lodash/package.json",
            package("lodash", lodash),
        )
        .file(
            "opt/app/node_modules/minimist/package.json",
            package("minimist", minimist),
        );
    write_layout(&root, "v1", &[Blob::gzip(&layer)]);
    root
}

/// Builds a DB from OSV advisories of the scan crate's fixtures, written whole then renamed
/// into place (as an operator replaces it).
fn build_db(dir: &Path, target: &Path, advisories: &[&str]) {
    let osv = scan::testkit::fixtures().join("e2e/advisories/osv");
    let partial = dir.join("db.partial");
    let mut cmd = Command::new(BIN);
    cmd.args(["db", "build", "--out"]).arg(&partial);
    for a in advisories {
        cmd.arg(osv.join(a));
    }
    run(&mut cmd);
    std::fs::rename(&partial, target).expect("place the DB");
}

fn get(server: &Server, path: &str) -> Value {
    let resp = http()
        .get(format!("{}{path}", server.base()))
        .send()
        .expect("GET");
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().expect("json")
}

/// The `blessed` rule's decision about `dev/app:<tag>`, once `done` holds (60 s at most).
fn decision(server: &Server, tag: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    decision_of(server, "blessed", tag, what, done)
}

/// `rule`'s decision about `dev/app:<tag>`, once `done` holds (60 s at most).
fn decision_of(
    server: &Server,
    rule: &str,
    tag: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(server, &format!("/api/v1/promotions/{rule}"));
        let found = body["decisions"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find(|x| x["tag"] == tag && x["repository"] == "dev/app")
            })
            .cloned();
        if let Some(d) = found.filter(|d| done(d)) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body:#}\nlog:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn reasons(decision: &Value) -> String {
    decision["decision"]["reasons"].to_string()
}

#[test]
fn the_seed_flow_promotes_the_fixed_image_and_rejects_the_vulnerable_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let db = d.join("vuln.db");
    // lodash < 4.17.12 has a critical finding (CVE-2019-10744); minimist is not in this DB.
    build_db(d, &db, &["GHSA-jf85-cpcp-j695.json"]);
    let (ci_key, ci_pub) = generate(d, "ci", "ecdsa-p256");
    let token = d.join("admin.token");
    std::fs::write(&token, TOKEN).expect("token");
    let hooks = d.join("deliveries.jsonl");
    let receiver_port = crate::support::free_addr().port();
    let receiver = Receiver(
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/scripts/webhook_receiver.py"
            ))
            .arg(receiver_port.to_string())
            .arg(SECRET)
            .arg(&hooks)
            .spawn()
            .expect("python3 for the webhook receiver"),
    );
    let server = serve_with(
        d,
        &format!(
            r#"
[storage]
durability = "relaxed"
[scan]
db = "{db}"
db_check_secs = 1
[api]
admin_token_file = "{token}"
[trust.authorities.ci]
keys = ["{ci_pub}"]

[[pull_policy]]
repositories = ["prod/**"]
when = [{{ rule = "vulnerabilities.critical == 0", message = "'critical findings: ' + critical_ids().join(', ')" }}]

[[webhook]]
name = "ci"
url = "http://127.0.0.1:{receiver_port}/hooks/bonded"
events = ["promotion.succeeded", "promotion.rejected", "scan.completed"]
repositories = ["dev/**"]
secret = "{SECRET}"
allow_private = true

[[promotion]]
name = "blessed"
from = "dev/**"
tags = "v*"
to = "prod/{{name}}"
tag = "%n-blessed"
when = [
  {{ rule = "vulnerabilities.critical == 0", message = "'critical findings: ' + critical_ids().join(', ')" }},
  "signed_by('ci')",
]
sign = true
copy_referrers = true
immutable = true
"#,
            db = db.display(),
            token = token.display(),
            ci_pub = ci_pub.display(),
        ),
    );
    let host = server.host();
    let vulnerable = npm_layout(d, "vulnerable", "4.17.11", "1.2.5");
    let fixed = npm_layout(d, "fixed", "4.17.21", "1.2.5");
    push(d, &vulnerable, &host, "dev/app:v1");
    push(d, &fixed, &host, "dev/app:v2");
    let v2 = head_digest(&server.base(), "dev/app", "v2");
    for tag in ["v1", "v2"] {
        ok(&bonded(&[
            "sign",
            "--plain-http",
            "--key",
            p(&ci_key),
            &format!("{host}/dev/app:{tag}"),
        ]));
    }

    // The fixed image is promoted, signed by the server, its tag templated.
    let promoted = decision(&server, "v2", "v2 to be promoted", |d| {
        d["verdict"] == "promoted"
    });
    assert_eq!(promoted["digest"], v2.as_str());
    assert_eq!(
        promoted["decision"]["target"],
        json!({"repository": "prod/app", "tag": "v2-blessed"})
    );
    assert!(
        promoted["decision"]["policy_digest"]
            .as_str()
            .is_some_and(|p| p.starts_with("sha256:")),
        "{promoted:#}"
    );
    assert_eq!(
        promoted["decision"]["facts"]["vulnerabilities.critical"]["known"],
        0
    );
    assert_eq!(head_digest(&server.base(), "prod/app", "v2-blessed"), v2);
    // The server's key as anyone can fetch it: GET /api/v1/authorities/bonded as PEM.
    let server_pub = d.join("fetched-server.pub");
    let pem = http()
        .get(format!("{}/api/v1/authorities/bonded", server.base()))
        .header("Accept", "application/x-pem-file")
        .send()
        .expect("authority")
        .text()
        .expect("pem");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    std::fs::write(&server_pub, pem).expect("save key");
    let verified = ok(&bonded(&[
        "verify",
        "--plain-http",
        "--key",
        p(&server_pub),
        &format!("{host}/prod/app:v2-blessed"),
    ]));
    assert!(verified.contains(&v2), "{verified}");
    // Clean and promoted: the pull policy lets it through.
    let served = http()
        .get(format!(
            "{}/v2/prod/app/manifests/v2-blessed",
            server.base()
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("GET");
    assert_eq!(served.status(), 200, "{}", server.log_text());
    // CI's signature followed the image (it names dev/app, so the repository check is off).
    ok(&bonded(&[
        "verify",
        "--plain-http",
        "--ignore-reference",
        "--key",
        p(&ci_pub),
        &format!("{host}/prod/app:v2-blessed"),
    ]));
    let authorities = get(
        &server,
        &format!("/api/v1/repositories/prod/app/manifests/{v2}/signatures"),
    );
    assert_eq!(
        authorities["signed_by"],
        json!(["bonded", "ci"]),
        "{authorities:#}"
    );

    // The vulnerable image is rejected with its CVE id, and never reaches prod.
    let rejected = decision(&server, "v1", "v1 to be rejected", |d| {
        d["verdict"] == "rejected"
    });
    assert!(
        reasons(&rejected).contains("CVE-2019-10744"),
        "{rejected:#}"
    );
    let missing = http()
        .get(format!(
            "{}/v2/prod/app/manifests/v1-blessed",
            server.base()
        ))
        .send()
        .expect("GET");
    assert_eq!(missing.status(), 404);

    // The receiver got the promotion, signed; every delivery verified.
    let got = deliveries(&hooks, "the promotion webhook", |got| {
        got.iter().any(|h| {
            h["body"]["type"] == "dev.bonded.promotion.succeeded"
                && h["body"]["subject"] == v2.as_str()
        })
    });
    assert!(got.iter().all(|h| h["valid"] == true), "{got:#?}");
    assert!(
        got.iter()
            .all(|h| h["content_type"] == "application/cloudevents+json")
    );
    let promoted_hook = got
        .iter()
        .find(|h| h["body"]["type"] == "dev.bonded.promotion.succeeded")
        .expect("promotion delivery");
    assert_eq!(promoted_hook["body"]["specversion"], "1.0");
    assert_eq!(promoted_hook["body"]["data"]["repository"], "dev/app");
    assert!(
        promoted_hook["body"]["data"]
            .to_string()
            .contains("prod/app"),
        "{promoted_hook:#}"
    );
    assert!(
        got.iter()
            .any(|h| h["body"]["type"] == "dev.bonded.scan.completed")
    );

    // The promoted tag is immutable: neither moved nor deleted.
    let moved = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{host}/dev/app:v1"),
            &format!("docker://{host}/prod/app:v2-blessed"),
        ])
        .output()
        .expect("skopeo");
    assert!(!moved.status.success(), "moving an immutable tag must fail");
    let deleted = http()
        .delete(format!(
            "{}/v2/prod/app/manifests/v2-blessed",
            server.base()
        ))
        .send()
        .expect("DELETE");
    assert_eq!(deleted.status(), 403);
    let body: Value = deleted.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body:#}");
    assert_eq!(head_digest(&server.base(), "prod/app", "v2-blessed"), v2);

    // The image's story: who pushed it from where, its scan, signature and promotion.
    let history = get(
        &server,
        &format!("/api/v1/repositories/dev/app/manifests/{v2}/history"),
    );
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for kind in [
        "artifact.pushed",
        "tag.updated",
        "scan.completed",
        "signature.added",
        "promotion.succeeded",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let pushed = history["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "artifact.pushed"))
        .expect("pushed");
    assert!(
        pushed["actor"]["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{pushed:#}"
    );
    assert!(
        pushed["actor"]["user_agent"]
            .as_str()
            .is_some_and(|a| a.contains("skopeo")),
        "{pushed:#}"
    );
    assert_eq!(history["promotions"][0]["verdict"], "promoted");

    // A dry run changes nothing and says what would happen.
    let dry: Value = http()
        .post(format!(
            "{}/api/v1/promotions/blessed/dry-run",
            server.base()
        ))
        .send()
        .expect("dry run")
        .json()
        .expect("json");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rejected"], 1, "{dry:#}");

    // A later DB knows minimist < 1.2.6 is critical (CVE-2021-44906): the promoted image's
    // verdict changes and the change is an event.
    build_db(
        d,
        &db,
        &["GHSA-jf85-cpcp-j695.json", "GHSA-xvch-5gv4-984h.json"],
    );
    let now_rejected = decision(
        &server,
        "v2",
        "v2 to be rejected after the DB update",
        |d| d["verdict"] == "rejected",
    );
    assert!(
        reasons(&now_rejected).contains("CVE-2021-44906"),
        "{now_rejected:#}"
    );
    assert!(
        now_rejected["promoted_at"].is_number(),
        "the promotion is kept on record"
    );
    let history = get(
        &server,
        &format!("/api/v1/repositories/dev/app/manifests/{v2}/history"),
    );
    let promotion_events: Vec<&str> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|k| k.starts_with("promotion.") && *k != "promotion.pending")
        .collect();
    // (Before CI's signature arrived the image may have been rejected once: signatures are
    // known facts, and "not signed" fails until a signature is added.)
    assert!(
        promotion_events.ends_with(&["promotion.succeeded", "promotion.rejected"]),
        "{promotion_events:?}"
    );

    // `bonded policy test`: offline with a saved evidence document, and through the registry.
    let config = d.join("bonded.toml");
    let saved = d.join("evidence-v2.json");
    let evidence = get(
        &server,
        &format!("/api/v1/repositories/dev/app/manifests/{v2}/evidence"),
    );
    assert_eq!(evidence["vulnerabilities"]["critical"], 1, "{evidence:#}");
    std::fs::write(&saved, evidence.to_string()).expect("save evidence");
    let offline = bonded(&[
        "policy",
        "test",
        "--config",
        p(&config),
        "--evidence",
        p(&saved),
        "--format",
        "json",
        "--exit-code",
        "3",
        "dev/app:v2",
    ]);
    assert_eq!(offline.status.code(), Some(3), "{offline:?}");
    let report: Value = serde_json::from_slice(&offline.stdout).expect("json");
    assert_eq!(report["decisions"][0]["verdict"], "rejected", "{report:#}");
    assert!(
        report["decisions"][0]["reasons"]
            .to_string()
            .contains("CVE-2021-44906")
    );
    let online = ok(&bonded(&[
        "policy",
        "test",
        "--config",
        p(&config),
        "--plain-http",
        &format!("{host}/dev/app:v2"),
    ]));
    assert!(online.starts_with("blessed: rejected"), "{online}");
    let elsewhere = ok(&bonded(&[
        "policy",
        "test",
        "--config",
        p(&config),
        "--evidence",
        p(&saved),
        "other/app:v2",
    ]));
    assert!(elsewhere.contains("blessed: not_considered"), "{elsewhere}");
    std::fs::write(&saved, "{\"image\": 1}").expect("garbage");
    fails_with(
        &bonded(&[
            "policy",
            "test",
            "--config",
            p(&config),
            "--evidence",
            p(&saved),
            "dev/app:v2",
        ]),
        "invalid evidence document",
    );

    // Changing rules needs the admin token; config rules are read-only.
    let put = |body: &Value, auth: Option<&str>| {
        let mut req = http()
            .put(format!("{}/api/v1/promotions/nightly", server.base()))
            .json(body);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        req.send().expect("PUT")
    };
    let rule = json!({"from": "dev/**", "to": "nightly/{name}", "when": ["signed_by('ci')"]});
    assert_eq!(put(&rule, None).status(), 401);
    assert_eq!(put(&rule, Some(TOKEN)).status(), 201);
    assert_eq!(put(&rule, Some(TOKEN)).status(), 200);
    let bad = put(
        &json!({"from": "dev/**", "to": "x", "when": ["vulnerabilites.critical == 0"]}),
        Some(TOKEN),
    );
    assert_eq!(bad.status(), 400);
    let text = bad.text().expect("text");
    assert!(text.contains("vulnerabilites"), "{text}");
    let config_rule = http()
        .delete(format!("{}/api/v1/promotions/blessed", server.base()))
        .bearer_auth(TOKEN)
        .send()
        .expect("DELETE");
    assert_eq!(config_rule.status(), 409);
    // The nightly rule runs on the stored images (both are signed by CI).
    let nightly = decision_of(
        &server,
        "nightly",
        "v1",
        "a settled nightly decision about v1",
        |d| d["verdict"] != "pending",
    );
    assert_eq!(nightly["verdict"], "promoted", "{nightly:#}");

    // CI states with a signed OpenVEX attestation that minimist's CVE does not affect v2:
    // the finding is resolved for every rule, and the verdict is promoted again.
    let vex = d.join("vex.json");
    std::fs::write(
        &vex,
        json!({
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://ci.example/vex/app-v2",
            "author": "CI",
            "timestamp": "2026-11-25T00:00:00Z",
            "version": 1,
            "statements": [{
                "vulnerability": {"name": "CVE-2021-44906"},
                "products": [{"@id": "pkg:npm/minimist@1.2.5"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path"
            }]
        })
        .to_string(),
    )
    .expect("vex");
    ok(&bonded(&[
        "attest",
        "--plain-http",
        "--key",
        p(&ci_key),
        "--type",
        "openvex",
        "--predicate",
        p(&vex),
        &format!("{host}/dev/app:v2"),
    ]));
    let again = decision(
        &server,
        "v2",
        "v2 to be promoted again after the VEX statement",
        |d| d["verdict"] == "promoted",
    );
    assert_eq!(
        again["decision"]["facts"]["vulnerabilities.critical"]["known"], 0,
        "{again:#}"
    );
    let evidence = get(
        &server,
        &format!("/api/v1/repositories/dev/app/manifests/{v2}/evidence"),
    );
    let minimist = evidence["vulnerabilities"]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == "CVE-2021-44906"))
        .cloned()
        .expect("the finding stays listed");
    assert_eq!(minimist["vex_status"], "not_affected", "{evidence:#}");

    // The audit log verifies, online and offline; a checkpoint saved now must stay in it.
    let checkpoint = d.join("checkpoint.json");
    wait_for_audit(&server);
    let saved = http()
        .get(format!("{}/api/v1/audit/checkpoint", server.base()))
        .send()
        .expect("checkpoint")
        .text()
        .expect("text");
    std::fs::write(&checkpoint, &saved).expect("save checkpoint");
    // Configuration changes are audited: the webhook and authority of the configuration file
    // (created at the first start) and the rule put through the API, with its actor.
    let changes: Value = http()
        .get(format!(
            "{}/api/v1/audit?action=config.changed",
            server.base()
        ))
        .bearer_auth(TOKEN)
        .send()
        .expect("audit")
        .json()
        .expect("json");
    let text = changes.to_string();
    for needle in [
        r#""section":"webhook""#,
        r#""section":"authority""#,
        r#""section":"promotion""#,
    ] {
        assert!(text.contains(needle), "{needle} missing: {changes:#}");
    }
    let online = Command::new(BIN)
        .args([
            "audit",
            "verify",
            "--url",
            &server.base(),
            "--checkpoint",
            p(&checkpoint),
        ])
        .env("BONDED_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("bonded audit verify");
    assert!(
        online.status.success(),
        "{}",
        String::from_utf8_lossy(&online.stdout)
    );
    let data = d.join("data");
    let offline = ok(&bonded(&[
        "audit",
        "verify",
        "--data-dir",
        p(&data),
        "--checkpoint",
        p(&checkpoint),
    ]));
    assert!(!offline.is_empty(), "the report says what was checked");
    drop(server);
    drop(receiver);
    // One stored entry edited behind the log's back is found.
    // The first entry about dev/app (which index that is depends on event order).
    let edited = run(Command::new("python3").args([
        "-c",
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
         (seq,) = c.execute(\"SELECT min(seq) FROM audit_entries WHERE CAST(entry AS TEXT) LIKE '%dev/app%'\").fetchone(); \
         c.execute(\"UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'dev/app', 'dev/ap2') AS BLOB) WHERE seq = ?\", (seq,)); \
         c.commit(); print(seq)",
        p(&data.join("bonded.db")),
    ]));
    let edited = edited.trim();
    let tampered = bonded(&[
        "audit",
        "verify",
        "--data-dir",
        p(&data),
        "--checkpoint",
        p(&checkpoint),
    ]);
    assert_eq!(
        tampered.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&tampered.stdout)
    );
    let report = String::from_utf8_lossy(&tampered.stdout);
    assert!(
        report.contains(&format!("entry {edited} was changed")),
        "the report names the entry: {report}"
    );
}

/// Waits until the audit log has a signed checkpoint covering every event so far.
fn wait_for_audit(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = http()
            .get(format!("{}/api/v1/audit/checkpoint", server.base()))
            .send()
            .expect("checkpoint");
        if resp.status().is_success() {
            let body: Value = resp.json().expect("json");
            let entries: Value = http()
                .get(format!("{}/api/v1/audit?limit=1000", server.base()))
                .bearer_auth(TOKEN)
                .send()
                .expect("entries")
                .json()
                .expect("json");
            let listed = entries["entries"].as_array().map_or(0, Vec::len) as u64;
            if body["size"].as_u64().is_some_and(|n| n > 0 && n >= listed) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the audit log did not catch up: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The README's runnable walkthrough (`examples/supply-chain/walkthrough.py`) works: it
/// exits 0 only when every step of the seed flow happened.
#[test]
fn the_supply_chain_walkthrough_runs() {
    crate::support::require("python3");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/supply-chain/walkthrough.py"
    );
    let out = Command::new("python3")
        .args([script, "--bonded", BIN])
        .output()
        .expect("run the walkthrough");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CVE-2019-10744") && text.contains("CVE-2021-44906"),
        "{text}"
    );
}
