use oci::{Algorithm, Digest};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

macro_rules! mt_test {
    ($name:ident, $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() $body
    };
}

mt_test!(base_endpoint_and_operations, {
    let reg = TestRegistry::start().await;
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert!(!header(&r, "x-request-id").is_empty());
    let r = reg.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    reg.push_blob("ops/one", b"counted").await;
    let metrics = reg.get("/metrics").await.text().await.unwrap();
    // The recorder is process-wide; at least our own requests must be there.
    assert!(metrics.contains("bonded_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("bonded_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("bonded_uploads_in_progress"), "{metrics}");
    assert!(
        metrics.contains("bonded_http_request_bytes_total"),
        "{metrics}"
    );
    let r = reg.get("/v2/a/nope/x").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
    let r = reg.post("/v2/a/tags/list").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
});

mt_test!(monolithic_push_then_pull, {
    let reg = TestRegistry::start().await;
    let data = b"some layer bytes".repeat(1000);
    let digest = sha256(&data);
    let r = reg
        .client
        .post(reg.url(&format!("/v2/lib/app/blobs/uploads/?digest={digest}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/lib/app/blobs/{digest}")
    );
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());

    let r = reg.head(&format!("/v2/lib/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), data.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    let r = reg.get(&format!("/v2/lib/app/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap(), data);

    // Visible only in the repository it was pushed to.
    let r = reg.get(&format!("/v2/lib/other/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = reg.head(&format!("/v2/lib/other/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
});

mt_test!(post_then_put_and_upload_status, {
    let reg = TestRegistry::start().await;
    let r = reg.post("/v2/up/blobs/uploads/").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = header(&r, "location");
    assert!(location.starts_with("/v2/up/blobs/uploads/"), "{location}");
    assert_eq!(header(&r, "range"), "0-0");
    assert!(!header(&r, "docker-upload-uuid").is_empty());
    let r = reg.get(&location).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "location"), location);

    let data = b"post then put";
    let digest = sha256(data);
    let r = reg.put_digest(&location, &digest, data.to_vec()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/up/blobs/{digest}"));
    // The session is over.
    let r = reg.get(&location).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let got = reg.get(&format!("/v2/up/blobs/{digest}")).await;
    assert_eq!(got.bytes().await.unwrap(), &data[..]);
});

mt_test!(chunked_upload_in_order, {
    let reg = TestRegistry::start().await;
    let data: Vec<u8> = (0..42u8).collect();
    let digest = sha256(&data);
    let r = reg
        .client
        .post(reg.url("/v2/chunks/blobs/uploads/"))
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    let location = header(&r, "location");

    // Out of order: 416, with the current state in Range.
    let r = reg
        .patch(&location, Some("22-41"), data[22..].to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-0");
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID");

    let r = reg
        .client
        .patch(reg.url(&location))
        .header("Content-Range", "0-21")
        .header("Content-Type", "application/octet-stream")
        .body(data[..22].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-21");
    let next = header(&r, "location");

    // Re-sending an accepted chunk (to the original location) overlaps: 416.
    let r = reg
        .patch(&location, Some("0-21"), data[..22].to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "range"), "0-21");

    let r = reg.get(&location).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-21");

    let r = reg.patch(&next, Some("22-41"), data[22..].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-41");

    // Not visible before the closing PUT.
    let r = reg.head(&format!("/v2/chunks/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg.put_digest(&next, &digest, "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = reg.get(&format!("/v2/chunks/blobs/{digest}")).await;
    assert_eq!(got.bytes().await.unwrap(), data);
});

mt_test!(chunk_header_errors, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("chunks").await;
    for bad in ["abc", "5-", "-5", "10-5", "bytes=x", "1-2-3"] {
        let r = reg.patch(&location, Some(bad), "xx").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_INVALID", "{bad}");
    }
    // Content-Range and Content-Length disagree.
    let r = reg.patch(&location, Some("0-9"), "12345").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "SIZE_INVALID");
    assert_eq!(
        reg.upload_offset(&location).await,
        Some(0),
        "nothing recorded"
    );
});

mt_test!(streamed_patch_without_range_then_empty_put, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("stream").await;
    let data = vec![7u8; 300_000];
    let digest = sha256(&data);
    let r = reg.patch(&location, None, data.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-299999");
    let r = reg.put_digest(&location, &digest, "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
});

mt_test!(digest_mismatch_is_refused_and_nothing_visible, {
    let reg = TestRegistry::start().await;
    let wrong = sha256(b"something else");
    let r = reg
        .client
        .post(reg.url(&format!("/v2/dm/blobs/uploads/?digest={wrong}")))
        .body("actual bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg.head(&format!("/v2/dm/blobs/{wrong}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A chunked session survives a wrong closing digest and can be closed correctly.
    let location = reg.start_upload("dm").await;
    let r = reg.patch(&location, None, "abc").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.put_digest(&location, &wrong, "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg.put_digest(&location, sha256(b"abc"), "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Missing or malformed digest on the closing PUT.
    let location = reg.start_upload("dm").await;
    let r = reg.client.put(reg.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg
        .client
        .put(reg.url(&format!("{location}?digest=sha256:abc")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
});

mt_test!(cancel_and_unknown_sessions, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("cancel").await;
    let r = reg.patch(&location, None, "partial").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A session belongs to its repository.
    let other = location.replace("/v2/cancel/", "/v2/elsewhere/");
    let r = reg.get(&other).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = reg.delete(&location).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let r = reg
            .client
            .request(method.clone(), reg.url(&location))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method}");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    }
    for id in [
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "..%2f..%2fetc",
    ] {
        let r = reg.get(&format!("/v2/cancel/blobs/uploads/{id}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    }
});

mt_test!(cross_repository_mount, {
    let reg = TestRegistry::start().await;
    let digest = reg.push_blob("src/repo", b"mount me").await;
    let r = reg
        .client
        .post(reg.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/dst/repo/blobs/{digest}")
    );
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    let r = reg.get(&format!("/v2/dst/repo/blobs/{digest}")).await;
    assert_eq!(r.bytes().await.unwrap(), &b"mount me"[..]);

    // Not in the named source: a new upload session instead (202).
    let r = reg
        .client
        .post(reg.url(&format!(
            "/v2/dst/two/blobs/uploads/?mount={digest}&from=nothing/here"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "location").starts_with("/v2/dst/two/blobs/uploads/"));
    // Without `from`: never mounted.
    let r = reg
        .post(&format!("/v2/dst/three/blobs/uploads/?mount={digest}"))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.head(&format!("/v2/dst/three/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Malformed mount parameters.
    let r = reg
        .post("/v2/dst/four/blobs/uploads/?mount=sha256:nope&from=src/repo")
        .await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = reg
        .client
        .post(reg.url(&format!(
            "/v2/dst/four/blobs/uploads/?mount={digest}&from=../src"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "NAME_INVALID");
});

mt_test!(sha512_digests, {
    let reg = TestRegistry::start().await;
    let data = b"hashed with sha512".repeat(100);
    let d512 = Digest::compute(Algorithm::Sha512, &data);
    let r = reg
        .client
        .post(reg.url(&format!("/v2/s512/blobs/uploads/?digest={d512}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg.get(&format!("/v2/s512/blobs/{d512}")).await;
    assert_eq!(header(&r, "docker-content-digest"), d512.to_string());
    assert_eq!(r.bytes().await.unwrap(), data);

    // Chunked with the algorithm announced up front.
    let r = reg
        .post("/v2/s512/blobs/uploads/?digest-algorithm=sha512")
        .await;
    let location = header(&r, "location");
    reg.patch(&location, None, data[..100].to_vec()).await;
    reg.patch(
        &location,
        Some(format!("100-{}", data.len() - 1).as_str()),
        data[100..].to_vec(),
    )
    .await;
    let r = reg.put_digest(&location, &d512, "").await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // POST then one PUT with the whole body: nothing was hashed yet, so sha512 is adopted.
    let other = b"another sha512 blob".to_vec();
    let o512 = Digest::compute(Algorithm::Sha512, &other);
    let location = reg.start_upload("s512").await;
    let r = reg.put_digest(&location, &o512, other).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Data already hashed with sha256: refused with an explanation, never re-read.
    let location = reg.start_upload("s512").await;
    reg.patch(&location, None, data.clone()).await;
    let r = reg.put_digest(&location, &d512, "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("digest-algorithm=sha512")
    );

    let r = reg
        .post("/v2/s512/blobs/uploads/?digest-algorithm=md5")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
});

mt_test!(manifests_push_pull_and_validation, {
    let reg = TestRegistry::start().await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"layer one";
    let c = reg.push_blob("img/app", config).await;
    let l = reg.push_blob("img/app", layer).await;
    let manifest = image_manifest(
        &c,
        config.len(),
        &[(&l, layer.len())],
        r#","annotations":{"a":"b"}"#,
    );
    let digest = sha256(manifest.as_bytes());

    let r = reg
        .put_manifest("img/app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(&r, "location"),
        format!("/v2/img/app/manifests/{digest}")
    );
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    assert_eq!(header(&r, "oci-subject"), "");

    for reference in ["v1".to_owned(), digest.to_string()] {
        let r = reg
            .client
            .get(reg.url(&format!("/v2/img/app/manifests/{reference}")))
            .header("Accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        assert_eq!(r.text().await.unwrap(), manifest, "byte for byte");
        let r = reg
            .head(&format!("/v2/img/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), manifest.len().to_string());
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    }
    // Push by digest, and a wrong digest.
    let other = image_manifest(
        &c,
        config.len(),
        &[(&l, layer.len())],
        r#","annotations":{"a":"c"}"#,
    );
    let od = sha256(other.as_bytes());
    let r = reg
        .put_manifest("img/app", &od.to_string(), OCI_MANIFEST, &other)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg
        .put_manifest("img/app", &digest.to_string(), OCI_MANIFEST, &other)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    // Content negotiation: an Accept list without this type.
    let r = reg
        .client
        .get(reg.url("/v2/img/app/manifests/v1"))
        .header("Accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");

    // Missing references: one MANIFEST_BLOB_UNKNOWN per missing blob, with its digest.
    let ghost = sha256(b"never pushed");
    let broken = image_manifest(&c, config.len(), &[(&l, layer.len()), (&ghost, 12)], "");
    let r = reg
        .put_manifest("img/app", "broken", OCI_MANIFEST, &broken)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digest"], ghost.to_string());
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    // Blobs of another repository do not count.
    let r = reg
        .put_manifest("img/elsewhere", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    let r = reg.get("/v2/img/app/manifests/broken").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Invalid documents.
    for (ct, body) in [
        (OCI_MANIFEST, "not json".to_owned()),
        (OCI_MANIFEST, "{}".to_owned()),
        (
            OCI_MANIFEST,
            manifest.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
        ),
        (
            OCI_MANIFEST,
            manifest.replace(&l.to_string(), "sha256:1234"),
        ),
        (
            "application/vnd.example.unknown+json",
            manifest.replace(OCI_MANIFEST, "application/vnd.example.unknown+json"),
        ),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            manifest.clone(),
        ),
        (OCI_INDEX, manifest.clone()),
    ] {
        let r = reg.put_manifest("img/app", "bad", ct, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{ct} {body}");
        assert_eq!(error_code(r).await, "MANIFEST_INVALID", "{ct} {body}");
    }
    let r = reg
        .put_manifest("img/app", "bad:tag", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Unknown and invalid references.
    let r = reg.get("/v2/img/app/manifests/nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = reg
        .get("/v2/img/app/manifests/.INVALID_MANIFEST_NAME")
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "conformance requires 404 here"
    );
    let r = reg.get("/v2/img/app/manifests/sha256:totallywrong").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
});

mt_test!(docker_media_types_and_indexes, {
    let reg = TestRegistry::start().await;
    let config = br#"{"architecture":"arm64","os":"linux"}"#;
    let c = reg.push_blob("multi", config).await;
    let l = reg.push_blob("multi", b"docker layer").await;
    let docker = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{c}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":12,"digest":"{l}"}}]}}"#,
        config.len()
    );
    let r = reg
        .put_manifest(
            "multi",
            "arm",
            "application/vnd.docker.distribution.manifest.v2+json",
            &docker,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let dd = sha256(docker.as_bytes());
    let (amd, _, _) = reg.push_image("multi", "amd", "amd64").await;

    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"{dd}","platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        docker.len()
    );
    let r = reg
        .put_manifest(
            "multi",
            "list",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            &list,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{amd}","platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"{dd}","platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
    );
    let r = reg.put_manifest("multi", "latest", OCI_INDEX, &index).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg
        .client
        .get(reg.url("/v2/multi/manifests/latest"))
        .header("Accept", format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(r.text().await.unwrap(), index);

    // An index whose child is missing from the repository.
    let missing = index.replace(&amd.to_string(), &sha256(b"no such manifest").to_string());
    let r = reg
        .put_manifest("multi", "broken", OCI_INDEX, &missing)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["kind"], "manifest");
});

mt_test!(tags_and_catalog_pagination, {
    let reg = TestRegistry::start().await;
    let r = reg.get("/v2/tags/none/tags/list").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");

    let (_, manifest, _) = reg.push_image("tags/repo", "v3", "seed").await;
    for t in ["v1", "V2", "latest", "a"] {
        let r = reg
            .put_manifest("tags/repo", t, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let all: Value = reg
        .get("/v2/tags/repo/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["name"], "tags/repo");
    assert_eq!(
        all["tags"],
        serde_json::json!(["a", "latest", "v1", "V2", "v3"])
    );

    let r = reg.get("/v2/tags/repo/tags/list?n=2").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/tags/repo/tags/list?n=2&last=latest>; rel=\"next\""
    );
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["a", "latest"]));
    let r = reg.get("/v2/tags/repo/tags/list?n=2&last=latest").await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["v1", "V2"]));
    let r = reg.get("/v2/tags/repo/tags/list?n=2&last=V2").await;
    assert_eq!(header(&r, "link"), "");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["v3"]));
    let r = reg.get("/v2/tags/repo/tags/list?last=v1").await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!(["V2", "v3"]));
    let r = reg.get("/v2/tags/repo/tags/list?n=0").await;
    assert_eq!(header(&r, "link"), "");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["tags"], serde_json::json!([]));
    for bad in ["-1", "abc", "1.5"] {
        let r = reg.get(&format!("/v2/tags/repo/tags/list?n={bad}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    for repo in ["cat/b", "cat/a", "cat/c"] {
        reg.push_blob(repo, repo.as_bytes()).await;
    }
    let r = reg.get("/v2/_catalog?n=2&last=cat").await;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=2&last=cat/b>; rel=\"next\""
    );
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["repositories"], serde_json::json!(["cat/a", "cat/b"]));
    let all: Value = reg.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(
        all["repositories"],
        serde_json::json!(["cat/a", "cat/b", "cat/c", "tags/repo"])
    );
});

mt_test!(referrers_api, {
    let reg = TestRegistry::start().await;
    let (subject, manifest, _) = reg.push_image("ref/app", "v1", "subject").await;
    let empty = reg.push_blob("ref/app", b"{}").await;
    let payload = reg.push_blob("ref/app", b"signature payload").await;
    let subject_desc = format!(
        r#""subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}}"#,
        manifest.len()
    );

    // With artifactType.
    let sig = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{payload}","size":17}}],{subject_desc},"annotations":{{"org.example.kind":"sig"}}}}"#
    );
    let r = reg
        .put_manifest(
            "ref/app",
            &sha256(sig.as_bytes()).to_string(),
            OCI_MANIFEST,
            &sig,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), subject.to_string());
    // Without artifactType: the config media type stands in (as oras-py pushes).
    let sbom = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.unknown.config.v1+json","digest":"{empty}","size":2}},"layers":[],{subject_desc},"annotations":{{"org.example.kind":"sbom"}}}}"#
    );
    let r = reg
        .put_manifest("ref/app", "sbom", OCI_MANIFEST, &sbom)
        .await;
    assert_eq!(header(&r, "oci-subject"), subject.to_string());
    // An index referrer without artifactType: omitted.
    let idx =
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],{subject_desc}}}"#);
    let r = reg.put_manifest("ref/app", "idx", OCI_INDEX, &idx).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), subject.to_string());
    // A subject that does not exist is accepted.
    let ghost = sha256(b"ghost subject");
    let orphan = sig.replace(&subject.to_string(), &ghost.to_string());
    let r = reg
        .put_manifest("ref/app", "orphan", OCI_MANIFEST, &orphan)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), ghost.to_string());

    let r = reg.get(&format!("/v2/ref/app/referrers/{subject}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(header(&r, "oci-filters-applied"), "");
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let list = index["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    let by = |d: &str| list.iter().find(|m| m["digest"] == d).unwrap().clone();
    let s = by(&sha256(sig.as_bytes()).to_string());
    assert_eq!(s["artifactType"], "application/vnd.example.sig");
    assert_eq!(s["annotations"]["org.example.kind"], "sig");
    assert_eq!(s["size"], sig.len());
    assert_eq!(s["mediaType"], OCI_MANIFEST);
    assert_eq!(
        by(&sha256(sbom.as_bytes()).to_string())["artifactType"],
        "application/vnd.unknown.config.v1+json"
    );
    assert!(
        by(&sha256(idx.as_bytes()).to_string())
            .get("artifactType")
            .is_none()
    );

    let r = reg
        .client
        .get(reg.url(&format!(
            "/v2/ref/app/referrers/{subject}?artifactType=application/vnd.example.sig"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let filtered: Value = r.json().await.unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);

    let r = reg.get(&format!("/v2/ref/app/referrers/{ghost}")).await;
    let orphans: Value = r.json().await.unwrap();
    assert_eq!(orphans["manifests"].as_array().unwrap().len(), 1);
    // Unknown subject or repository: empty, never 404.
    for path in [
        format!("/v2/ref/app/referrers/{}", sha256(b"x")),
        format!("/v2/no/such/repo/referrers/{subject}"),
    ] {
        let r = reg.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_INDEX);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["manifests"], serde_json::json!([]));
    }
    let r = reg.get("/v2/ref/app/referrers/sha256:bad").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");

    // Deleting a referrer removes it from the list.
    let r = reg
        .client
        .delete(reg.url(&format!(
            "/v2/ref/app/manifests/{}",
            sha256(sbom.as_bytes())
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = reg
        .get(&format!("/v2/ref/app/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
});

mt_test!(deletes, {
    let reg = TestRegistry::start().await;
    let (digest, manifest, layer) = reg.push_image("del/app", "v1", "del").await;
    reg.put_manifest("del/app", "v2", OCI_MANIFEST, &manifest)
        .await;

    let r = reg.delete("/v2/del/app/manifests/v2").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.get("/v2/del/app/manifests/v2").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg.get(&format!("/v2/del/app/manifests/{digest}")).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "deleting a tag keeps the manifest"
    );
    let r = reg.delete("/v2/del/app/manifests/v2").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");

    let r = reg.delete(&format!("/v2/del/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.get("/v2/del/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "its tags went with it");
    let tags: Value = reg.get("/v2/del/app/tags/list").await.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!([]));
    let r = reg.delete(&format!("/v2/del/app/manifests/{digest}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = reg.delete(&format!("/v2/del/app/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.get(&format!("/v2/del/app/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg.delete(&format!("/v2/del/app/blobs/{layer}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = reg.delete("/v2/del/app/blobs/sha256:zz").await;
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
});

mt_test!(range_requests, {
    let reg = TestRegistry::start().await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let digest = reg.push_blob("range", &data).await;
    let url = reg.url(&format!("/v2/range/blobs/{digest}"));
    let r = reg
        .client
        .get(&url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 10-19/1000");
    assert_eq!(header(&r, "content-length"), "10");
    assert_eq!(r.bytes().await.unwrap(), &data[10..20]);
    let r = reg
        .client
        .get(&url)
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &data[995..]);
    let r = reg
        .client
        .get(&url)
        .header("Range", "bytes=990-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &data[990..]);
    let r = reg
        .client
        .get(&url)
        .header("Range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */1000");
    // Unparseable or multiple ranges: the whole blob.
    for ignored in ["bytes=5-1", "bytes=0-1,3-4", "lines=1-2"] {
        let r = reg
            .client
            .get(&url)
            .header("Range", ignored)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{ignored}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }
    let r = reg
        .client
        .head(&url)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-length"), "10");
});

mt_test!(empty_blob, {
    let reg = TestRegistry::start().await;
    let digest = reg.push_blob("empty", b"").await;
    let r = reg.get(&format!("/v2/empty/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "0");
    assert!(r.bytes().await.unwrap().is_empty());
});

mt_test!(reads_follow_writes_through_the_cache, {
    let reg = TestRegistry::start().await;
    let (first, _, _) = reg.push_image("cache/app", "v1", "first").await;
    let get_digest = |reference: String| {
        let reg = &reg;
        async move {
            let r = reg
                .get(&format!("/v2/cache/app/manifests/{reference}"))
                .await;
            (r.status(), header(&r, "docker-content-digest"))
        }
    };
    // Fill the cache, then move the tag: the next read sees the new target.
    assert_eq!(
        get_digest("v1".into()).await,
        (StatusCode::OK, first.to_string())
    );
    let (second, _, _) = reg.push_image("cache/app", "v1", "second").await;
    assert_eq!(
        get_digest("v1".into()).await,
        (StatusCode::OK, second.to_string())
    );
    // Delete the tag, then the manifest: both reads stop at once.
    reg.delete("/v2/cache/app/manifests/v1").await;
    assert_eq!(get_digest("v1".into()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_digest(first.to_string()).await.0, StatusCode::OK);
    reg.delete(&format!("/v2/cache/app/manifests/{first}"))
        .await;
    assert_eq!(get_digest(first.to_string()).await.0, StatusCode::NOT_FOUND);
});
