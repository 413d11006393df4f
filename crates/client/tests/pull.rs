//! Pulling manifests and blobs: 404s, digests checked against what was asked and what the
//! registry announced, size limits, and credentials kept away from redirect targets.

use std::io::Read;

use client::{ManifestHead, RemoteError, VerifyError};

use crate::server::{
    OCI_INDEX, OCI_MANIFEST, Reply, TestServer, basic, client_for, repository, sha256,
};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn manifest_reply() -> Reply {
    Reply::new(200)
        .header("Content-Type", OCI_MANIFEST)
        .body(MANIFEST)
}

fn verify_error(error: RemoteError) -> VerifyError {
    match error {
        RemoteError::Verify(error) => error,
        other => panic!("expected a verification error, got {other:?} ({other})"),
    }
}

#[test]
fn missing_manifests_are_none_or_errors_with_the_oci_code() {
    let server =
        TestServer::start(|_, _| Reply::oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown"));
    let client = client_for(&server, None);
    let repo = repository("demo/app");
    assert_eq!(client.get_manifest(&repo, "v1", &[]).unwrap(), None);
    assert_eq!(client.head_manifest(&repo, "v1", &[]).unwrap(), None);
    let message = client
        .fetch_manifest(&repo, "v1", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "GET {}/v2/demo/app/manifests/v1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown",
            server.base()
        )
    );
    // Without a list, every manifest type is accepted.
    let accept = server.log()[0].request.header("accept").unwrap().to_owned();
    for media_type in oci::MediaType::ALL {
        assert!(accept.contains(media_type.as_str()), "{accept}");
    }
    assert_eq!(
        server.lines(),
        [
            "GET /v2/demo/app/manifests/v1",
            "HEAD /v2/demo/app/manifests/v1",
            "GET /v2/demo/app/manifests/v1"
        ]
    );
}

#[test]
fn manifests_are_verified() {
    let digest = sha256(MANIFEST);
    let wrong = sha256(b"something else");
    let (good, bad) = (digest.to_string(), wrong.to_string());
    let server = TestServer::start(move |request, _| {
        let reference = request.path().rsplit('/').next().unwrap();
        match reference {
            "v1" => manifest_reply().header("Docker-Content-Digest", &good),
            "lying" => manifest_reply().header("Docker-Content-Digest", &bad),
            "garbled" => manifest_reply().header("Docker-Content-Digest", "sha256:zz"),
            "plain" => manifest_reply(),
            // By digest, the same bytes whatever the digest asked for.
            _ => manifest_reply(),
        }
    });
    let client = client_for(&server, None);
    let repo = repository("demo/app");

    let fetched = client
        .get_manifest(&repo, "v1", &[OCI_MANIFEST])
        .unwrap()
        .unwrap();
    assert_eq!(fetched.bytes, MANIFEST);
    assert_eq!(fetched.media_type.as_deref(), Some(OCI_MANIFEST));
    assert_eq!(fetched.digest, digest);
    assert_eq!(server.log()[0].request.header("accept"), Some(OCI_MANIFEST));
    let plain = client.get_manifest(&repo, "plain", &[]).unwrap().unwrap();
    assert_eq!(plain.digest, digest);
    let by_digest = client
        .get_manifest(&repo, &digest.to_string(), &[])
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.digest, digest);

    match verify_error(client.get_manifest(&repo, "lying", &[]).unwrap_err()) {
        VerifyError::DigestMismatch {
            expected, actual, ..
        } => assert_eq!((expected, actual), (wrong.clone(), digest.clone())),
        other => panic!("{other:?}"),
    }
    match verify_error(
        client
            .get_manifest(&repo, &wrong.to_string(), &[])
            .unwrap_err(),
    ) {
        VerifyError::DigestMismatch {
            expected, actual, ..
        } => assert_eq!((expected, actual), (wrong.clone(), digest.clone())),
        other => panic!("{other:?}"),
    }
    let garbled = client.get_manifest(&repo, "garbled", &[]).unwrap_err();
    assert!(
        matches!(garbled, RemoteError::Protocol { .. })
            && garbled.to_string().contains("Docker-Content-Digest"),
        "{garbled}"
    );

    // A path-changing reference is refused before anything is sent.
    let requests = server.log().len();
    for bad_reference in ["../../x", "v1/../../y", "", "sha256:short"] {
        let error = client.get_manifest(&repo, bad_reference, &[]).unwrap_err();
        assert!(matches!(error, RemoteError::Reference(_)), "{error:?}");
    }
    assert_eq!(server.log().len(), requests);
}

#[test]
fn heads_tell_digest_type_and_size() {
    let digest = sha256(MANIFEST);
    let announced = digest.to_string();
    let server = TestServer::start(move |request, _| match request.path() {
        "/v2/demo/app/manifests/v1" => manifest_reply().header("Docker-Content-Digest", &announced),
        _ => manifest_reply(),
    });
    let client = client_for(&server, None);
    let repo = repository("demo/app");
    let expected = ManifestHead {
        digest: digest.clone(),
        media_type: Some(OCI_MANIFEST.to_owned()),
        size: Some(MANIFEST.len() as u64),
    };
    assert_eq!(
        client.head_manifest(&repo, "v1", &[]).unwrap(),
        Some(expected.clone())
    );
    // Without Docker-Content-Digest the manifest is fetched and hashed.
    assert_eq!(
        client.head_manifest(&repo, "plain", &[]).unwrap(),
        Some(expected)
    );
    assert_eq!(
        server.lines(),
        [
            "HEAD /v2/demo/app/manifests/v1",
            "HEAD /v2/demo/app/manifests/plain",
            "GET /v2/demo/app/manifests/plain"
        ]
    );
}

#[test]
fn oversized_manifests_are_refused_announced_or_not() {
    let huge = vec![b' '; client::MAX_DOCUMENT_BYTES as usize + 1];
    let server = TestServer::start(move |request, _| {
        let reply = Reply::new(200)
            .header("Content-Type", OCI_INDEX)
            .body(huge.clone());
        if request.path().ends_with("chunked") {
            reply.header("Transfer-Encoding", "chunked")
        } else {
            reply
        }
    });
    let client = client_for(&server, None);
    for tag in ["sized", "chunked"] {
        let error = client
            .get_manifest(&repository("demo/app"), tag, &[])
            .unwrap_err();
        assert_eq!(
            verify_error(error),
            VerifyError::TooLarge {
                what: format!("manifest {tag}"),
                limit: client::MAX_DOCUMENT_BYTES
            }
        );
    }
}

#[test]
fn blobs_are_verified_and_bounded() {
    let blob = b"a small blob".to_vec();
    let digest = sha256(&blob);
    let corrupted_digest = sha256(b"what the digest promised");
    let (served, path) = (blob.clone(), format!("/v2/demo/app/blobs/{digest}"));
    let corrupted_path = format!("/v2/demo/app/blobs/{corrupted_digest}");
    let server = TestServer::start(move |request, _| {
        if request.path() == path || request.path() == corrupted_path {
            Reply::new(200).body(served.clone())
        } else {
            Reply::oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        }
    });
    let client = client_for(&server, None);
    let repo = repository("demo/app");

    assert_eq!(client.get_blob(&repo, &digest, 1 << 20).unwrap(), blob);
    assert!(client.blob_exists(&repo, &digest).unwrap());
    assert!(!client.blob_exists(&repo, &sha256(b"absent")).unwrap());
    assert!(matches!(
        verify_error(
            client
                .get_blob(&repo, &corrupted_digest, 1 << 20)
                .unwrap_err()
        ),
        VerifyError::DigestMismatch { .. }
    ));
    assert_eq!(
        verify_error(client.get_blob(&repo, &digest, 3).unwrap_err()),
        VerifyError::TooLarge {
            what: format!("blob {digest}"),
            limit: 3
        }
    );
    let missing = client.get_blob(&repo, &sha256(b"absent"), 10).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("404 Not Found: BLOB_UNKNOWN: blob unknown to registry"),
        "{missing}"
    );

    let mut streamed = Vec::new();
    client
        .open_blob(&repo, &digest, Some(blob.len() as u64))
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, blob);
    let wrong_size = client.open_blob(&repo, &digest, Some(blob.len() as u64 + 1));
    assert!(matches!(
        verify_error(wrong_size.err().unwrap()),
        VerifyError::SizeMismatch { .. }
    ));
    let mut reader = client.open_blob(&repo, &corrupted_digest, None).unwrap();
    let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(matches!(
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<VerifyError>()),
        Some(VerifyError::DigestMismatch { .. })
    ));
}

#[test]
fn redirects_to_another_origin_never_carry_the_authorization_header() {
    let blob = b"stored elsewhere".to_vec();
    let digest = sha256(&blob);
    let stored = blob.clone();
    let storage = TestServer::start(move |request, _| {
        if request.path().contains("denied") {
            Reply::oci_error(403, "DENIED", "signature expired")
        } else {
            Reply::new(200).body(stored.clone())
        }
    });
    let storage_base = storage.base().to_owned();
    let expected = basic("alice", "s3cret");
    let registry = TestServer::start(move |request, _| {
        if request.header("authorization") != Some(expected.as_str()) {
            return Reply::oci_error(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", r#"Basic realm="test""#);
        }
        let place = if request.path().ends_with("/denied") {
            "denied"
        } else {
            "ok"
        };
        Reply::new(307).header(
            "Location",
            &format!("{storage_base}/store/{place}?X-Signature=secret"),
        )
    });
    let client = client_for(&registry, Some(("alice", "s3cret")));
    let repo = repository("demo/app");
    assert_eq!(client.get_blob(&repo, &digest, 1 << 20).unwrap(), blob);

    let log = registry.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].status, log[0].request.header("authorization")),
        (401, None)
    );
    assert_eq!(log[1].status, 307);
    assert_eq!(
        log[1].request.header("authorization"),
        Some(basic("alice", "s3cret").as_str())
    );
    let fetched = storage.log();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].request.target, "/store/ok?X-Signature=secret");
    assert_eq!(
        fetched[0].request.header("authorization"),
        None,
        "credentials leaked"
    );

    // An error at the storage host names it without the signature.
    let denied = client.fetch_manifest(&repo, "denied", &[]);
    let message = denied.unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "GET {}/store/denied: 403 Forbidden: DENIED: signature expired",
            storage.base()
        )
    );
    assert!(
        storage
            .log()
            .iter()
            .all(|l| l.request.header("authorization").is_none())
    );
}
