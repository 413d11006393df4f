//! Pushing: monolithic blob uploads (HEAD, POST, PUT to the `Location` with `digest=`), and
//! manifests, with the registry's answers checked.

use client::{RemoteError, VerifyError};

use crate::server::{OCI_MANIFEST, Reply, TestServer, basic, client_for, repository, sha256};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// A registry that has no blobs, opens uploads at `location` and accepts any `PUT` that
/// carries a `digest` (echoed back as `Docker-Content-Digest`).
fn uploading_registry(location: &'static str) -> TestServer {
    TestServer::start(move |request, base| match request.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" if request.path() == "/v2/demo/app/blobs/uploads/" => {
            Reply::new(202).header("Location", &location.replace("{base}", base))
        }
        "PUT" => match request.query("digest").first() {
            Some(digest) => Reply::new(201).header("Docker-Content-Digest", digest),
            None => Reply::oci_error(400, "DIGEST_INVALID", "no digest"),
        },
        _ => Reply::new(405),
    })
}

#[test]
fn pushes_a_blob_to_a_relative_location() {
    let server = uploading_registry("/v2/demo/app/blobs/uploads/session-1");
    let client = client_for(&server, None);
    let blob = br#"{"critical":{}}"#;
    let digest = client.push_blob(&repository("demo/app"), blob).unwrap();
    assert_eq!(digest, sha256(blob));
    assert_eq!(
        server.lines(),
        [
            format!("HEAD /v2/demo/app/blobs/{digest}"),
            "POST /v2/demo/app/blobs/uploads/".to_owned(),
            "PUT /v2/demo/app/blobs/uploads/session-1".to_owned(),
        ]
    );
    let put = &server.log()[2].request;
    assert_eq!(put.query("digest"), [digest.to_string()]);
    assert_eq!(put.body, blob);
    assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    assert_eq!(server.log()[1].request.header("content-length"), Some("0"));
}

#[test]
fn pushes_a_blob_to_an_absolute_location_keeping_its_query() {
    let server = uploading_registry("{base}/uploads/session-2?_state=abc%3D%3D&n=1");
    let client = client_for(&server, None);
    let digest = client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap();
    let put = &server.log()[2].request;
    assert_eq!(put.line(), "PUT /uploads/session-2");
    assert_eq!(put.query("_state"), ["abc=="]);
    assert_eq!(put.query("n"), ["1"]);
    assert_eq!(put.query("digest"), [digest.to_string()]);
    assert_eq!(put.body, b"payload");
}

#[test]
fn a_blob_already_present_is_not_uploaded() {
    let server = TestServer::start(|request, _| match request.method.as_str() {
        "HEAD" => Reply::new(200).header("Content-Length", "7"),
        _ => Reply::new(500),
    });
    let client = client_for(&server, None);
    let digest = client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap();
    assert_eq!(digest, sha256(b"payload"));
    assert_eq!(
        server.lines(),
        [format!("HEAD /v2/demo/app/blobs/{digest}")]
    );
}

#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let storage = TestServer::start(|_, _| Reply::new(201));
    let storage_base = storage.base().to_owned();
    let expected = basic("alice", "s3cret");
    let registry = TestServer::start(move |request, _| {
        if request.header("authorization") != Some(expected.as_str()) {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        match request.method.as_str() {
            "HEAD" => Reply::new(404),
            _ => Reply::new(202).header("Location", &format!("{storage_base}/upload/1?sig=x")),
        }
    });
    let client = client_for(&registry, Some(("alice", "s3cret")));
    client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap();
    let uploads = storage.log();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].request.line(), "PUT /upload/1");
    assert_eq!(
        uploads[0].request.header("authorization"),
        None,
        "credentials leaked"
    );
    assert_eq!(uploads[0].request.body, b"payload");
}

#[test]
fn upload_errors_name_the_url_without_its_query() {
    let server = TestServer::start(|request, _| match request.method.as_str() {
        "HEAD" => Reply::new(404),
        "POST" if request.path().starts_with("/v2/demo/nolocation/") => Reply::new(202),
        "POST" => Reply::new(202).header("Location", "/v2/demo/app/blobs/uploads/s?_state=SECRET"),
        _ => Reply::oci_error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        ),
    });
    let client = client_for(&server, None);
    let message = client
        .push_blob(&repository("demo/app"), b"payload")
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "PUT {}/v2/demo/app/blobs/uploads/s: 400 Bad Request: DIGEST_INVALID: provided digest \
             did not match uploaded content",
            server.base()
        )
    );
    let error = client
        .push_blob(&repository("demo/nolocation"), b"payload")
        .unwrap_err();
    assert!(
        matches!(error, RemoteError::Protocol { method: "POST", .. })
            && error.to_string().contains("without a Location"),
        "{error}"
    );
}

#[test]
fn manifests_are_pushed_and_the_answer_checked() {
    let server = TestServer::start(|request, _| {
        let reference = request.path().rsplit('/').next().unwrap_or("");
        let digest = sha256(&request.body).to_string();
        match reference {
            "invalid" => Reply::oci_error(400, "MANIFEST_INVALID", "manifest invalid"),
            "lying" => {
                Reply::new(201).header("Docker-Content-Digest", &sha256(b"other").to_string())
            }
            "quiet" => Reply::new(201),
            _ => Reply::new(201).header("Docker-Content-Digest", &digest),
        }
    });
    let client = client_for(&server, None);
    let repo = repository("demo/app");
    let digest = sha256(MANIFEST);

    assert_eq!(
        client
            .put_manifest(&repo, "v1", OCI_MANIFEST, MANIFEST)
            .unwrap(),
        digest
    );
    let put = &server.log()[0].request;
    assert_eq!(put.line(), "PUT /v2/demo/app/manifests/v1");
    assert_eq!(put.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(put.body, MANIFEST);
    assert_eq!(
        client
            .put_manifest(&repo, "quiet", OCI_MANIFEST, MANIFEST)
            .unwrap(),
        digest
    );
    assert_eq!(
        client
            .put_manifest(&repo, &digest.to_string(), OCI_MANIFEST, MANIFEST)
            .unwrap(),
        digest
    );

    match client.put_manifest(&repo, "lying", OCI_MANIFEST, MANIFEST) {
        Err(RemoteError::Verify(VerifyError::DigestMismatch {
            expected, actual, ..
        })) => assert_eq!((expected, actual), (digest.clone(), sha256(b"other"))),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let message = client
        .put_manifest(&repo, "invalid", OCI_MANIFEST, MANIFEST)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "PUT {}/v2/demo/app/manifests/invalid: 400 Bad Request: MANIFEST_INVALID: manifest invalid",
            server.base()
        )
    );

    // A digest reference that is not the digest of the bytes is refused without a request.
    let sent = server.log().len();
    let wrong = sha256(b"another manifest").to_string();
    let error = client
        .put_manifest(&repo, &wrong, OCI_MANIFEST, MANIFEST)
        .unwrap_err();
    assert!(
        matches!(
            error,
            RemoteError::Verify(VerifyError::DigestMismatch { .. })
        ),
        "{error}"
    );
    assert_eq!(server.log().len(), sent);
}
