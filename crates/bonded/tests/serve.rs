use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_listen_on_5000_and_keep_data_in_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
        "something already listens on 127.0.0.1:5000; this test needs the port"
    );
    let mut server = Server::start_raw(dir.path(), addr, &[], &[]);
    let r = reqwest::get("http://127.0.0.1:5000/v2/").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(dir.path().join("bonded-data/bonded.db").exists());
    assert!(dir.path().join("bonded-data/blobs").is_dir());
    server.signal(libc::SIGINT);
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = free_addr();
    let from_env = free_addr();
    let config = dir.path().join("bonded.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{from_file}\"\ndata_dir = \"from-file\"\n[log]\nformat = \"json\"\n[http]\nshutdown_grace_secs = 5\n"
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();

    // The file alone.
    let mut server = Server::start_raw(dir.path(), from_file, &["--config", config_arg], &[]);
    assert!(dir.path().join("from-file/bonded.db").exists());
    reqwest::get(format!("{}/v2/", server.base()))
        .await
        .unwrap();
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    let log = server.log_text();
    assert!(
        log.lines()
            .any(|l| l.starts_with('{') && l.contains("\"request\"")),
        "JSON log lines expected: {log}"
    );

    // BONDED_LISTEN overrides the file; --data-dir overrides both.
    let env_value = from_env.to_string();
    let mut server = Server::start_raw(
        dir.path(),
        from_env,
        &["--config", config_arg, "--data-dir", "from-flag"],
        &[("BONDED_LISTEN", env_value.as_str())],
    );
    assert!(dir.path().join("from-flag/bonded.db").exists());
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listn = \"127.0.0.1:1\"\n").unwrap();
    for (args, expect) in [
        (
            vec!["serve", "--config", bad.to_str().unwrap()],
            "unknown field",
        ),
        (
            vec!["serve", "--config", "/no/such/file.toml"],
            "cannot read configuration file",
        ),
        (
            vec!["serve", "--tls-cert", "c.pem"],
            "--tls-cert and --tls-key must be given together",
        ),
        (vec!["serve", "--listen", "nonsense"], "invalid value"),
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    // A listen address already in use: runtime failure, exit 1, with the address named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--data-dir", "d"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot listen on {addr}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_rustls() {
    require("openssl");
    require("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    // A CA and a server certificate it signs (rustls refuses a CA certificate as the
    // server's own).
    let sh = |script: &str| run(Command::new("sh").current_dir(&certs).args(["-c", script]));
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.crt -days 2 -subj /CN=bonded-test-ca 2>/dev/null",
    );
    sh(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
        -out server.csr -subj /CN=127.0.0.1 2>/dev/null",
    );
    sh(
        "printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf && \
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.crt 2>/dev/null",
    );
    let addr = free_addr();
    let cert = certs.join("server.crt");
    let key = certs.join("key.pem");
    let mut server = Server::start(
        dir.path(),
        addr,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--data-dir",
            "data",
        ],
        &[],
    );
    let _ = &mut server;
    let pem = std::fs::read(certs.join("ca.crt")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let r = client
        .get(format!("https://{addr}/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates HTTP/2"
    );
    // A multi-megabyte upload and download over HTTP/2 (flow-control windows).
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 249) as u8).collect();
    let bd = format!("sha256:{}", sha256_hex(&big));
    let r = client
        .post(format!(
            "https://{addr}/v2/tls/big/blobs/uploads/?digest={bd}"
        ))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let back = client
        .get(format!("https://{addr}/v2/tls/big/blobs/{bd}"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.bytes().await.unwrap(), big);
    // Push a one-blob artifact over TLS so there is something to list.
    let config = b"{}";
    let d = format!("sha256:{}", sha256_hex(config));
    let r = client
        .post(format!(
            "https://{addr}/v2/tls/app/blobs/uploads/?digest={d}"
        ))
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{d}","size":2}},"layers":[]}}"#
    );
    let r = client
        .put(format!("https://{addr}/v2/tls/app/manifests/v1"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Plain HTTP to the TLS port is refused, not served.
    assert!(reqwest::get(format!("http://{addr}/v2/")).await.is_err());
    // A real client verifying the certificate against the CA (skopeo reads ca.crt from the
    // directory; it must not find the CA key there, so give it a directory of its own).
    let trust = dir.path().join("trust");
    std::fs::create_dir_all(&trust).unwrap();
    std::fs::copy(certs.join("ca.crt"), trust.join("ca.crt")).unwrap();
    let out = run(Command::new("skopeo")
        .args([
            "list-tags",
            "--cert-dir",
            trust.to_str().unwrap(),
            &format!("docker://{addr}/tls/app"),
        ])
        .env("HOME", dir.path()));
    let tags: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));
}

/// A body that trickles: `chunks` chunks of `size` bytes, `pause` apart.
fn trickle(chunks: usize, size: usize, pause: Duration) -> reqwest::Body {
    let stream = futures_util::stream::iter(0..chunks).then(move |i| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, std::io::Error>(vec![(i % 251) as u8; size])
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut server = Server::start(dir.path(), addr, &["--data-dir", "data"], &[]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v2/slow/blobs/uploads/", server.base()))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let url = format!("{}{location}", server.base());
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .patch(url)
                .body(trickle(10, 100_000, Duration::from_millis(150)))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal(libc::SIGTERM);
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["range"], "0-999999");
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
    assert!(server.log_text().contains("SIGTERM received"));
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());

    // The recorded progress is there after a restart.
    let mut again = Server::start(dir.path(), addr, &["--data-dir", "data"], &[]);
    let r = client
        .get(format!("{}{location}", again.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-999999");
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait(Duration::from_secs(20)), Some(0));
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_large_upload_loses_nothing_and_exposes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let server = Server::start(dir.path(), addr, &["--data-dir", "data"], &[]);
    let base = server.base();
    let client = reqwest::Client::new();

    // An image pushed before the crash.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = pseudo_random(3_000_000, 1);
    let mut digests = Vec::new();
    for blob in [&config, &layer] {
        let d = format!("sha256:{}", sha256_hex(blob));
        let r = client
            .post(format!("{base}/v2/crash/app/blobs/uploads/?digest={d}"))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        digests.push(d);
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        digests[0],
        config.len(),
        digests[1],
        layer.len()
    );
    let r = client
        .put(format!("{base}/v2/crash/app/manifests/v1"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // A chunked session with one recorded chunk.
    let big = pseudo_random(64 << 20, 2);
    let big_digest = format!("sha256:{}", sha256_hex(&big));
    let r = client
        .post(format!("{base}/v2/crash/big/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let first = 8 << 20;
    let r = client
        .patch(format!("{base}{location}"))
        .header("Content-Range", format!("0-{}", first - 1))
        .body(big[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Two large uploads in flight when the process is killed: a monolithic POST of the whole
    // blob and the next chunk of the session.
    let mono = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/v2/crash/mono/blobs/uploads/?digest={big_digest}");
        async move {
            client
                .post(url)
                .body(trickle(400, 256 * 1024, Duration::from_millis(10)))
                .send()
                .await
        }
    });
    let chunk = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}{location}");
        async move {
            client
                .patch(url)
                .body(trickle(200, 256 * 1024, Duration::from_millis(10)))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut server = server;
    server.signal(libc::SIGKILL);
    assert_eq!(
        server.wait(Duration::from_secs(10)),
        None,
        "killed by a signal"
    );
    assert!(
        mono.await.unwrap().is_err(),
        "the monolithic upload cannot have completed"
    );
    assert!(
        chunk.await.unwrap().is_err(),
        "the chunk cannot have completed"
    );

    let mut restarted = Server::start(dir.path(), addr, &["--data-dir", "data"], &[]);
    let base = restarted.base();
    // Earlier content intact, byte for byte.
    let got = client
        .get(format!("{base}/v2/crash/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), manifest);
    for (d, blob) in digests.iter().zip([&config, &layer]) {
        let got = client
            .get(format!("{base}/v2/crash/app/blobs/{d}"))
            .send()
            .await
            .unwrap();
        let bytes = got.bytes().await.unwrap();
        assert_eq!(&bytes[..], &blob[..]);
        assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), *d);
    }
    // Nothing partial is visible, in any repository or on disk.
    for repo in ["crash/mono", "crash/big"] {
        let r = client
            .head(format!("{base}/v2/{repo}/blobs/{big_digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let hex = big_digest.trim_start_matches("sha256:");
    assert!(
        !dir.path()
            .join(format!("data/blobs/sha256/{}/{hex}", &hex[..2]))
            .exists()
    );
    // The session resumes at its last recorded chunk and completes.
    let r = client
        .get(format!("{base}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["range"].to_str().unwrap(),
        format!("0-{}", first - 1)
    );
    let r = client
        .patch(format!("{base}{location}"))
        .header("Content-Range", format!("{first}-{}", big.len() - 1))
        .body(big[first..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = client
        .put(format!("{base}{location}?digest={big_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // And new pushes work.
    let r = client
        .post(format!(
            "{base}/v2/crash/mono/blobs/uploads/?digest={big_digest}"
        ))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    restarted.signal(libc::SIGTERM);
    assert_eq!(restarted.wait(Duration::from_secs(20)), Some(0));
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_does_not_grow_with_blob_size() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut server = Server::start(
        dir.path(),
        addr,
        &["--data-dir", "data", "--durability", "relaxed"],
        &[],
    );
    let pid = server.child.id();
    let client = reqwest::Client::new();
    // Warm up allocations with a small push, then note the peak.
    let small = vec![1u8; 1 << 20];
    let d = format!("sha256:{}", sha256_hex(&small));
    client
        .post(format!(
            "{}/v2/mem/blobs/uploads/?digest={d}",
            server.base()
        ))
        .body(small)
        .send()
        .await
        .unwrap();
    let before = vm_kib(pid, "VmHWM:");

    // 512 MiB streamed in 1 MiB chunks, monolithic; the digest is computed as we go.
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 512;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 256) as u8).collect();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for _ in 0..CHUNKS {
        sha2::Digest::update(&mut hasher, &chunk);
    }
    let digest = format!("sha256:{}", hex::encode(sha2::Digest::finalize(hasher)));
    let body = futures_util::stream::iter((0..CHUNKS).map({
        let chunk = bytes::Bytes::from(chunk);
        move |_| Ok::<_, std::io::Error>(chunk.clone())
    }));
    let r = client
        .post(format!(
            "{}/v2/mem/blobs/uploads/?digest={digest}",
            server.base()
        ))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let after = vm_kib(pid, "VmHWM:");
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB while 512 MiB streamed through"
    );
    // Reading it back streams too.
    let mut stream = client
        .get(format!("{}/v2/mem/blobs/{digest}", server.base()))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, CHUNK * CHUNKS);
    let after_pull = vm_kib(pid, "VmHWM:");
    assert!(
        after_pull < before + 64 * 1024,
        "peak RSS {after_pull} KiB after the pull"
    );
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait(Duration::from_secs(20)), Some(0));
}
