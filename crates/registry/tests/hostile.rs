use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

macro_rules! mt_test {
    ($name:ident, $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() $body
    };
}

/// Sends raw bytes; with `half_close` shuts the write side afterwards. Returns the response
/// text (possibly empty if the server closed first).
async fn raw(reg: &TestRegistry, request: &[u8], half_close: bool) -> String {
    let mut s = TcpStream::connect(reg.addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    if half_close {
        let _ = s.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn assert_healthy(reg: &TestRegistry) {
    let r = reg.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(server_panics(), 0, "a server task panicked");
}

mt_test!(hostile_repository_names, {
    let reg = TestRegistry::start().await;
    let d = sha256(b"x");
    let deep = vec!["a"; 300].join("/");
    let long = "a".repeat(256);
    let names = [
        "..",
        "%2e%2e",
        "a/../b",
        "a/%2e%2e/b",
        "a/./b",
        "UPPER",
        "a//b",
        "-a",
        "a_",
        "a%2fb",
        "a%00b",
        deep.as_str(),
        long.as_str(),
    ];
    for name in names {
        for (method, path) in [
            ("GET", format!("/v2/{name}/manifests/latest")),
            ("HEAD", format!("/v2/{name}/blobs/{d}")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
            ("PUT", format!("/v2/{name}/manifests/v1")),
            ("GET", format!("/v2/{name}/tags/list")),
            ("GET", format!("/v2/{name}/referrers/{d}")),
            ("DELETE", format!("/v2/{name}/blobs/{d}")),
        ] {
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let resp = raw(&reg, req.as_bytes(), false).await;
            assert_eq!(status_of(&resp), 400, "{method} {path}: {resp}");
            if method != "HEAD" {
                assert!(resp.contains("NAME_INVALID"), "{method} {path}: {resp}");
            }
        }
    }
    assert_healthy(&reg).await;
});

mt_test!(malformed_digests_are_400, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("dg").await;
    let long = format!("sha256:{}", "a".repeat(10_000));
    for bad in [
        "sha256:abc",
        "sha256:",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "SHA256:00",
        ":",
        "sha256:ZZ",
        long.as_str(),
    ] {
        for (method, url) in [
            (reqwest::Method::GET, format!("/v2/dg/blobs/{bad}")),
            (reqwest::Method::DELETE, format!("/v2/dg/blobs/{bad}")),
            (reqwest::Method::GET, format!("/v2/dg/manifests/{bad}")),
            (reqwest::Method::GET, format!("/v2/dg/referrers/{bad}")),
            (
                reqwest::Method::POST,
                format!("/v2/dg/blobs/uploads/?digest={bad}"),
            ),
            (
                reqwest::Method::POST,
                format!("/v2/dg/blobs/uploads/?mount={bad}&from=dg"),
            ),
            (reqwest::Method::PUT, format!("{location}?digest={bad}")),
        ] {
            let r = reg
                .client
                .request(method.clone(), reg.url(&url))
                .body("")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {url}");
            assert_eq!(error_code(r).await, "DIGEST_INVALID", "{method} {url}");
        }
    }
    assert_healthy(&reg).await;
});

mt_test!(body_shorter_than_declared, {
    let reg = TestRegistry::start().await;
    let full = vec![1u8; 1000];
    let d = sha256(&full);
    let req = format!(
        "POST /v2/short/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    );
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&full[..10]);
    let resp = raw(&reg, &bytes, true).await;
    assert!(resp.is_empty() || status_of(&resp) == 400, "{resp}");
    let r = reg.head(&format!("/v2/short/blobs/{d}")).await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a truncated upload must not become visible"
    );

    // A PATCH cut short records nothing.
    let location = reg.start_upload("short").await;
    let mut patch = format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .into_bytes();
    patch.extend_from_slice(&full[..10]);
    raw(&reg, &patch, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reg.upload_offset(&location).await, Some(0));
    // And the session still works.
    let r = reg.patch(&location, None, full.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.put_digest(&location, &d, "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_healthy(&reg).await;
});

mt_test!(body_longer_than_declared, {
    let reg = TestRegistry::start().await;
    let data = b"0123456789";
    let d = sha256(data);
    // Only the declared 5 bytes are the body; they do not hash to the claimed digest.
    let mut req = format!(
        "POST /v2/long/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(data);
    let resp = raw(&reg, &req, false).await;
    assert_eq!(status_of(&resp), 400, "{resp}");
    assert!(resp.contains("DIGEST_INVALID"), "{resp}");
    let r = reg.head(&format!("/v2/long/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Chunked encoding, so no Content-Length: the body must match Content-Range exactly.
    let location = reg.start_upload("long").await;
    for (range, body) in [("0-99", vec![0u8; 50]), ("0-9", vec![0u8; 20])] {
        let body_stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(body)]);
        let r = reg
            .patch(
                &location,
                Some(range),
                reqwest::Body::wrap_stream(body_stream),
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{range}");
        assert_eq!(error_code(r).await, "SIZE_INVALID", "{range}");
        assert_eq!(reg.upload_offset(&location).await, Some(0));
    }
    assert_healthy(&reg).await;
});

mt_test!(client_disconnects_and_stalls_mid_upload, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("gone").await;
    {
        let mut s = TcpStream::connect(reg.addr).await.unwrap();
        let head =
            format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'g'; 65_536];
        for _ in 0..3 {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .unwrap();
            s.write_all(&chunk).await.unwrap();
            s.write_all(b"\r\n").await.unwrap();
        }
        // Dropped without the terminating chunk.
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reg.upload_offset(&location).await,
        Some(0),
        "nothing from the dead request recorded"
    );

    // A client that stalls is cut off after the idle timeout (2 s here) and releases the session.
    let mut stalled = TcpStream::connect(reg.addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a few bytes"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&out[..n]).into_owned();
    assert_eq!(status_of(&resp), 400, "{resp}");
    assert_eq!(reg.upload_offset(&location).await, Some(0));

    // The session is intact: the real data goes through and hashes right (the dead bytes were cut).
    let data = vec![b'r'; 200_000];
    let r = reg.patch(&location, None, data.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg.put_digest(&location, sha256(&data), "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_healthy(&reg).await;
});

mt_test!(hostile_manifests, {
    let reg = TestRegistry::start().await;
    // Over the 4 MiB limit, with and without Content-Length.
    let huge = format!(
        r#"{{"schemaVersion":2,"annotations":{{"x":"{}"}}}}"#,
        "a".repeat(5 << 20)
    );
    let r = reg.put_manifest("hm", "huge", OCI_MANIFEST, &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "SIZE_INVALID");
    let stream =
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(huge.clone().into_bytes())]);
    let r = reg
        .client
        .put(reg.url("/v2/hm/manifests/huge"))
        .header("Content-Type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Deeply nested JSON.
    let deep = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","annotations":{}{}}}"#,
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let r = reg.put_manifest("hm", "deep", OCI_MANIFEST, &deep).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");

    // Many missing references: one error each, capped.
    let c = reg.push_blob("hm", b"{}").await;
    let ghosts: Vec<_> = (0..5000u32).map(|i| sha256(&i.to_le_bytes())).collect();
    let layers: Vec<_> = ghosts.iter().map(|g| (g, 1usize)).collect();
    let many = image_manifest(&c, 2, &layers, "");
    let r = reg.put_manifest("hm", "many", OCI_MANIFEST, &many).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() <= 101, "{}", errors.len());
    assert!(errors.iter().all(|e| e["code"] == "MANIFEST_BLOB_UNKNOWN"));

    // Duplicate keys, wrong types, non-UTF-8.
    let dup = image_manifest(&c, 2, &[], r#","layers":[]"#);
    let wrong =
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":"x","layers":{{}}}}"#);
    for body in [dup, wrong, "\u{0}".to_owned()] {
        let r = reg.put_manifest("hm", "weird", OCI_MANIFEST, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    }
    let r = reg
        .client
        .put(reg.url("/v2/hm/manifests/bin"))
        .header("Content-Type", OCI_MANIFEST)
        .body(vec![0xff, 0xfe, 0x00, 0x81])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let tags = reg.get("/v2/hm/tags/list").await;
    assert_eq!(tags.status(), StatusCode::OK);
    let tags: serde_json::Value = tags.json().await.unwrap();
    assert_eq!(
        tags["tags"],
        serde_json::json!([]),
        "nothing partial became visible"
    );
    assert_healthy(&reg).await;
});

mt_test!(malformed_http, {
    let reg = TestRegistry::start().await;
    for req in [
        "PATCH /v2/x/blobs/uploads/abc HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
        "GET /v2/x/tags/list?n=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /v2/x/tags/list?n=99999999999999999999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        format!("GET /v2/{}/manifests/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a/".repeat(20_000)),
    ] {
        let resp = raw(&reg, req.as_bytes(), false).await;
        let status = status_of(&resp);
        assert!((400..500).contains(&status), "{req:.80}: {resp:.200}");
    }
    assert_healthy(&reg).await;
});

mt_test!(extreme_content_ranges, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("extreme").await;
    for range in [
        "0-18446744073709551615",
        "18446744073709551615-18446744073709551615",
    ] {
        let r = reg.patch(&location, Some(range), "x").await;
        assert!(r.status().is_client_error(), "{range}: {}", r.status());
    }
    assert_eq!(reg.upload_offset(&location).await, Some(0));
    assert_healthy(&reg).await;
});

mt_test!(one_session_under_two_spellings_is_one_session, {
    let reg = TestRegistry::start().await;
    let location = reg.start_upload("spell").await;
    let id = location.rsplit('/').next().unwrap().to_owned();
    let upper = location.replace(&id, &id.to_uppercase());
    // The other spelling reaches the same session, and sees its progress.
    let r = reg.patch(&upper, Some("0-4"), "hello").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&r, "location"),
        location,
        "answers with the canonical location"
    );
    let r = reg.patch(&location, Some("0-4"), "HELLO").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = reg.put_digest(&upper, sha256(b"hello"), "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg
        .get(&format!("/v2/spell/blobs/{}", sha256(b"hello")))
        .await;
    assert_eq!(r.bytes().await.unwrap(), &b"hello"[..]);
    assert_healthy(&reg).await;
});

mt_test!(slow_uploads_hold_no_threads, {
    // More trickling uploads than tokio's blocking pool has threads (512): an upload whose
    // client is slow must not hold a thread, or every file operation would queue behind them.
    let reg = TestRegistry::start().await;
    const SLOW: usize = 600;
    let mut streams = Vec::new();
    for i in 0..SLOW {
        let location = reg.start_upload(&format!("slow/s{i}")).await;
        let mut s = TcpStream::connect(reg.addr).await.unwrap();
        let head = format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx");
        s.write_all(head.as_bytes()).await.unwrap();
        streams.push(s);
    }
    // Keep them alive (one byte each, well inside the idle timeout) while a normal push and
    // pull complete.
    let keep_alive = tokio::spawn(async move {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for s in &mut streams {
                let _ = s.write_all(b"x").await;
            }
        }
        streams
    });
    // Let every request reach its writer, then count threads: an idle upload holds none.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let threads: usize = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(
        threads < SLOW / 2,
        "{threads} threads while {SLOW} uploads wait for their clients"
    );
    let normal = async {
        let (digest, _, layer) = reg.push_image("fast/app", "v1", "fast").await;
        let r = reg.get(&format!("/v2/fast/app/blobs/{layer}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        digest
    };
    tokio::time::timeout(Duration::from_secs(3), normal)
        .await
        .expect("a normal push and pull complete while many slow uploads are open");
    drop(keep_alive.await.unwrap());
    assert_healthy(&reg).await;
});
