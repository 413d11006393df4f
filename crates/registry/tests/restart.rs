use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_and_content_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = sha256(&data);

    let first = TestRegistry::start_at(dir.path()).await;
    let (image, _, _) = first.push_image("keep/app", "v1", "before restart").await;
    let location = first.start_upload("keep/big").await;
    let r = first
        .patch(&location, Some("0-1234566"), data[..1_234_567].to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    first.stop().await;

    // A crash in the middle of the next chunk leaves unrecorded bytes in the upload file.
    let id = location.rsplit('/').next().unwrap();
    let upload_file = dir.path().join("uploads").join(id);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&upload_file)
            .unwrap();
        f.write_all(b"bytes of a request that never finished")
            .unwrap();
    }

    let second = TestRegistry::start_at(dir.path()).await;
    assert_eq!(second.upload_offset(&location).await, Some(1_234_567));
    let r = second
        .patch(
            &location,
            Some(format!("1234567-{}", data.len() - 1).as_str()),
            data[1_234_567..].to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = second.put_digest(&location, &digest, "").await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let got = second.get(&format!("/v2/keep/big/blobs/{digest}")).await;
    assert_eq!(got.bytes().await.unwrap(), data);
    let r = second.get("/v2/keep/app/manifests/v1").await;
    assert_eq!(header(&r, "docker-content-digest"), image.to_string());
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_upload_sessions_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let reg = TestRegistry::start_at(dir.path()).await;
    let location = reg.start_upload("purge").await;
    reg.patch(&location, None, "abandoned").await;
    let id = location.rsplit('/').next().unwrap().to_owned();
    assert!(dir.path().join("uploads").join(&id).exists());

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Not idle long enough: kept.
    assert_eq!(
        reg.registry.purge_stale_uploads(now - 3600).await.unwrap(),
        0
    );
    assert_eq!(reg.upload_offset(&location).await, Some(9));
    // Idle past the cut-off: the session and its data are gone.
    assert_eq!(reg.registry.purge_stale_uploads(now + 1).await.unwrap(), 1);
    let r = reg.get(&location).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!dir.path().join("uploads").join(&id).exists());

    // Upload data without a session (a crash between creating the file and the row) is swept
    // once it is older than the cut-off; files that are not ours are left alone.
    let orphan = dir
        .path()
        .join("uploads/6f1d3a52-5c1e-4d8a-9a55-0a2b9e6c1f00");
    std::fs::write(&orphan, b"orphaned").unwrap();
    let stranger = dir.path().join("uploads/not-an-upload");
    std::fs::write(&stranger, b"keep").unwrap();
    assert_eq!(
        reg.registry.purge_stale_uploads(now - 3600).await.unwrap(),
        0
    );
    assert!(orphan.exists(), "too recent to purge");
    assert_eq!(reg.registry.purge_stale_uploads(now + 10).await.unwrap(), 1);
    assert!(!orphan.exists());
    assert!(stranger.exists());
    reg.stop().await;
}
