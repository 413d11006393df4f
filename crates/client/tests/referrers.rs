//! The referrers API: absent (404, or an answer that is not an index), paginated, filtered.

use serde_json::json;

use crate::server::{OCI_INDEX, OCI_MANIFEST, Reply, TestServer, client_for, repository, sha256};

const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/spdx+json";

fn descriptor(name: &str, artifact_type: &str) -> serde_json::Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": sha256(name.as_bytes()).to_string(),
        "size": 100,
        "artifactType": artifact_type,
        "annotations": { "org.example.name": name },
    })
}

fn index(manifests: Vec<serde_json::Value>) -> Reply {
    Reply::new(200).header("Content-Type", OCI_INDEX).body(
        json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }).to_string(),
    )
}

fn referrers_registry() -> TestServer {
    TestServer::start(|request, _| {
        let repository = request.path().split("/referrers/").next().unwrap_or("");
        match repository {
            "/v2/demo/none" => Reply::new(404).body("404 page not found\n"),
            "/v2/demo/html" => Reply::new(200)
                .header("Content-Type", "text/html")
                .body("<html></html>"),
            "/v2/demo/endless" => {
                index(vec![]).header("Link", &format!("<{}>; rel=\"next\"", request.target))
            }
            _ if request.query("last").is_empty() => {
                let next = format!("{}?last=second&artifactType=x", request.path());
                index(vec![
                    descriptor("first", SIGNATURE),
                    descriptor("sbom", SBOM),
                ])
                .header("Link", &format!("<{next}>; rel=\"next\""))
            }
            _ => index(vec![descriptor("second", SIGNATURE)]),
        }
    })
}

#[test]
fn no_referrers_api_is_none() {
    let server = referrers_registry();
    let client = client_for(&server, None);
    let subject = sha256(b"image manifest");
    assert_eq!(
        client
            .referrers(&repository("demo/none"), &subject, None)
            .unwrap(),
        None
    );
    assert_eq!(
        client
            .referrers(&repository("demo/html"), &subject, None)
            .unwrap(),
        None
    );
    assert_eq!(
        server.lines(),
        [
            format!("GET /v2/demo/none/referrers/{subject}"),
            format!("GET /v2/demo/html/referrers/{subject}"),
        ]
    );
}

#[test]
fn pages_are_followed_and_filtered() {
    let server = referrers_registry();
    let client = client_for(&server, None);
    let subject = sha256(b"image manifest");
    let repo = repository("demo/app");

    let all = client.referrers(&repo, &subject, None).unwrap().unwrap();
    let names: Vec<&str> = all
        .iter()
        .map(|d| d.annotations.as_ref().unwrap()["org.example.name"].as_str())
        .collect();
    assert_eq!(names, ["first", "sbom", "second"]);
    assert_eq!(all[0].digest, sha256(b"first"));
    assert_eq!(all[0].artifact_type.as_deref(), Some(SIGNATURE));
    assert_eq!(all[0].size, 100);
    let log = server.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].request.header("accept"), Some(OCI_INDEX));
    assert!(log[0].request.query("artifactType").is_empty());
    assert_eq!(log[1].request.query("last"), ["second"]);

    // The registry here ignores the filter, so the client applies it.
    let signatures = client
        .referrers(&repo, &subject, Some(SIGNATURE))
        .unwrap()
        .unwrap();
    let digests: Vec<_> = signatures.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(digests, [sha256(b"first"), sha256(b"second")]);
    assert_eq!(server.log()[2].request.query("artifactType"), [SIGNATURE]);
}

#[test]
fn endless_pages_are_an_error() {
    let server = referrers_registry();
    let client = client_for(&server, None);
    let error = client
        .referrers(&repository("demo/endless"), &sha256(b"x"), None)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("more than {} pages", client::MAX_REFERRER_PAGES)),
        "{error}"
    );
    assert_eq!(server.log().len(), client::MAX_REFERRER_PAGES);
}
