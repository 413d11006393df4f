//! The conformance suite every storage backend must pass.
//!
//! distribution runs one `testsuites` package against each storage driver; this is the same
//! idea. Each function exercises one trait through its public contract only, and panics with
//! a message on the first violation. The filesystem and SQLite backends run it in this
//! crate's tests; S3 and PostgreSQL will run the very same functions.

use bytes::Bytes;
use futures_util::StreamExt;
use oci::{Algorithm, Digest, Hasher, RepositoryName, Tag};

use crate::blob::{BlobStore, ByteRange};
use crate::meta::{ManifestRecord, MetaStore, NewUpload, PutManifestError, UploadId};

fn repo(name: &str) -> RepositoryName {
    name.parse().expect("test repository name")
}

fn tag(name: &str) -> Tag {
    name.parse().expect("test tag")
}

async fn read_all(store: &dyn BlobStore, digest: &Digest, range: Option<ByteRange>) -> Vec<u8> {
    let mut body = store.read(digest, range).await.expect("read blob");
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.expect("blob chunk"));
    }
    out
}

/// Runs every [`BlobStore`] check.
pub async fn blob_store(store: &dyn BlobStore) {
    upload_in_two_parts_then_commit(store).await;
    append_discards_unrecorded_bytes(store).await;
    commit_is_idempotent(store).await;
    uploads_are_listed(store).await;
    missing_things_are_not_errors(store).await;
}

async fn upload_in_two_parts_then_commit(store: &dyn BlobStore) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = Digest::compute(Algorithm::Sha256, &data);
    let id = UploadId::random();
    store.create_upload(&id).await.expect("create upload");

    let mut w = store
        .append_upload(&id, 0, Hasher::new(Algorithm::Sha256))
        .await
        .expect("open upload");
    for chunk in data[..1_000_001].chunks(65_536) {
        w.write(Bytes::copy_from_slice(chunk)).await.expect("write");
    }
    let progress = w.finish().await.expect("finish");
    assert_eq!(progress.bytes_received, 1_000_001);
    // The hash state must survive serialization, as it does across a restart.
    let state = progress.hasher.save_state();
    let hasher = Hasher::restore(Algorithm::Sha256, &state).expect("restore");

    let mut w = store
        .append_upload(&id, 1_000_001, hasher)
        .await
        .expect("reopen upload");
    w.write(Bytes::copy_from_slice(&data[1_000_001..]))
        .await
        .expect("write");
    let progress = w.finish().await.expect("finish");
    assert_eq!(progress.bytes_received, data.len() as u64);
    assert_eq!(progress.hasher.finish(), digest, "streamed hash");

    assert_eq!(
        store.stat(&digest).await.expect("stat"),
        None,
        "visible before commit"
    );
    // The size must match the bytes in the upload.
    assert!(
        store
            .commit_upload(&id, &digest, data.len() as u64 + 1)
            .await
            .is_err()
    );
    store
        .commit_upload(&id, &digest, data.len() as u64)
        .await
        .expect("commit");
    assert_eq!(
        store.stat(&digest).await.expect("stat"),
        Some(data.len() as u64)
    );
    assert_eq!(read_all(store, &digest, None).await, data);
    let range = ByteRange {
        first: 10,
        last: 2_500_000,
    };
    assert_eq!(
        read_all(store, &digest, Some(range)).await,
        data[10..=2_500_000]
    );

    store.delete(&digest).await.expect("delete");
    assert_eq!(store.stat(&digest).await.expect("stat"), None);
}

async fn append_discards_unrecorded_bytes(store: &dyn BlobStore) {
    let id = UploadId::random();
    store.create_upload(&id).await.expect("create upload");
    let mut w = store
        .append_upload(&id, 0, Hasher::new(Algorithm::Sha256))
        .await
        .expect("open");
    w.write(Bytes::from_static(b"hello ")).await.expect("write");
    let progress = w.finish().await.expect("finish");
    let state = progress.hasher.save_state();

    // A request that wrote bytes but whose progress was never recorded (client vanished).
    let mut w = store
        .append_upload(
            &id,
            6,
            Hasher::restore(Algorithm::Sha256, &state).expect("restore"),
        )
        .await
        .expect("open");
    w.write(Bytes::from_static(b"GARBAGE"))
        .await
        .expect("write");
    drop(w.finish().await.expect("finish"));

    // The retry starts again at the recorded offset.
    let mut w = store
        .append_upload(
            &id,
            6,
            Hasher::restore(Algorithm::Sha256, &state).expect("restore"),
        )
        .await
        .expect("open");
    w.write(Bytes::from_static(b"world")).await.expect("write");
    let progress = w.finish().await.expect("finish");
    let digest = progress.hasher.finish();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, b"hello world"));
    store.commit_upload(&id, &digest, 11).await.expect("commit");
    assert_eq!(read_all(store, &digest, None).await, b"hello world");
    store.delete(&digest).await.expect("delete");
}

async fn commit_is_idempotent(store: &dyn BlobStore) {
    let digest = Digest::compute(Algorithm::Sha256, b"same bytes");
    for _ in 0..2 {
        let id = UploadId::random();
        store.create_upload(&id).await.expect("create upload");
        let mut w = store
            .append_upload(&id, 0, Hasher::new(Algorithm::Sha256))
            .await
            .expect("open");
        w.write(Bytes::from_static(b"same bytes"))
            .await
            .expect("write");
        w.finish().await.expect("finish");
        store.commit_upload(&id, &digest, 10).await.expect("commit");
    }
    assert_eq!(read_all(store, &digest, None).await, b"same bytes");
    store.delete(&digest).await.expect("delete");
}

async fn uploads_are_listed(store: &dyn BlobStore) {
    let id = UploadId::random();
    store.create_upload(&id).await.expect("create upload");
    let listed = store.list_uploads().await.expect("list uploads");
    let (_, modified) = listed
        .iter()
        .find(|(u, _)| u == &id)
        .expect("a new upload is listed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        (now - modified).abs() < 600,
        "modification time {modified} vs now {now}"
    );
    store.delete_upload(&id).await.expect("delete upload");
    assert!(
        !store
            .list_uploads()
            .await
            .expect("list uploads")
            .iter()
            .any(|(u, _)| u == &id)
    );
}

async fn missing_things_are_not_errors(store: &dyn BlobStore) {
    let digest = Digest::compute(Algorithm::Sha512, b"never stored");
    assert_eq!(store.stat(&digest).await.expect("stat"), None);
    store.delete(&digest).await.expect("delete missing blob");
    store
        .delete_upload(&UploadId::random())
        .await
        .expect("delete missing upload");
}

/// Runs every [`MetaStore`] check. Uses repository names under `conformance/`.
pub async fn meta_store(meta: &dyn MetaStore) {
    uploads(meta).await;
    blobs_and_mounts(meta).await;
    manifests_tags_referrers(meta).await;
    tag_ordering_and_pages(meta).await;
    meta.ping().await.expect("ping");
}

async fn uploads(meta: &dyn MetaStore) {
    let id = UploadId::random();
    let hasher = Hasher::new(Algorithm::Sha256);
    meta.create_upload(&NewUpload {
        id: id.clone(),
        repository: repo("conformance/uploads"),
        algorithm: Algorithm::Sha256,
        hash_state: hasher.save_state(),
    })
    .await
    .expect("create upload");
    let state = meta.get_upload(&id).await.expect("get").expect("exists");
    assert_eq!(state.bytes_received, 0);
    assert_eq!(state.repository.as_str(), "conformance/uploads");

    let mut h = Hasher::restore(state.algorithm, &state.hash_state).expect("restore");
    h.update(b"abc");
    assert!(
        meta.record_upload_progress(&id, 0, 3, Algorithm::Sha256, &h.save_state())
            .await
            .expect("progress")
    );
    // A second writer that started from the old offset loses.
    assert!(
        !meta
            .record_upload_progress(&id, 0, 5, Algorithm::Sha256, &h.save_state())
            .await
            .expect("stale progress")
    );
    let state = meta.get_upload(&id).await.expect("get").expect("exists");
    assert_eq!(state.bytes_received, 3);
    let h = Hasher::restore(state.algorithm, &state.hash_state).expect("restore");
    assert_eq!(h.finish(), Digest::compute(Algorithm::Sha256, b"abc"));

    assert!(
        meta.stale_uploads(state.updated_at + 1)
            .await
            .expect("stale")
            .contains(&id)
    );
    assert!(meta.delete_upload(&id).await.expect("delete"));
    assert!(!meta.delete_upload(&id).await.expect("delete again"));
    assert!(meta.get_upload(&id).await.expect("get").is_none());
}

async fn blobs_and_mounts(meta: &dyn MetaStore) {
    let a = repo("conformance/blobs-a");
    let b = repo("conformance/blobs-b");
    let c = repo("conformance/blobs-c");
    let d = Digest::compute(Algorithm::Sha256, b"blob for mounts");
    assert_eq!(meta.any_blob(&d).await.expect("any"), None);
    meta.commit_blob(&a, &d, 15, None).await.expect("commit");
    assert!(meta.repository_exists(&a).await.expect("exists"));
    assert_eq!(meta.linked_blob(&a, &d).await.expect("linked"), Some(15));
    assert_eq!(meta.linked_blob(&b, &d).await.expect("linked"), None);
    assert_eq!(meta.any_blob(&d).await.expect("any"), Some(15));

    assert_eq!(
        meta.mount_blob(&b, &d, Some(&c)).await.expect("mount"),
        None,
        "not in c"
    );
    assert_eq!(
        meta.mount_blob(&b, &d, Some(&a)).await.expect("mount"),
        Some(15)
    );
    assert_eq!(meta.linked_blob(&b, &d).await.expect("linked"), Some(15));
    assert_eq!(
        meta.mount_blob(&c, &d, None).await.expect("mount"),
        Some(15)
    );

    assert!(meta.unlink_blob(&a, &d).await.expect("unlink"));
    assert!(!meta.unlink_blob(&a, &d).await.expect("unlink again"));
    assert_eq!(meta.linked_blob(&a, &d).await.expect("linked"), None);
    assert_eq!(meta.linked_blob(&b, &d).await.expect("linked"), Some(15));
}

fn record(
    content: &str,
    blobs: Vec<Digest>,
    subject: Option<Digest>,
    artifact_type: Option<&str>,
) -> ManifestRecord {
    ManifestRecord {
        digest: Digest::compute(Algorithm::Sha256, content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::copy_from_slice(content.as_bytes()),
        subject,
        artifact_type: artifact_type.map(str::to_owned),
        annotations: Some(r#"{"k":"v"}"#.into()),
        blobs,
        manifests: Vec::new(),
        scan: artifact_type.is_none(),
    }
}

async fn manifests_tags_referrers(meta: &dyn MetaStore) {
    let r = repo("conformance/manifests");
    let layer = Digest::compute(Algorithm::Sha256, b"layer");
    let image = record(
        "image manifest bytes",
        vec![layer.clone()],
        None,
        Some("application/vnd.oci.image.config.v1+json"),
    );

    match meta.put_manifest(&r, &image, Some(&tag("v1"))).await {
        Err(PutManifestError::MissingReferences { blobs, manifests }) => {
            assert_eq!(blobs, vec![layer.clone()]);
            assert!(manifests.is_empty());
        }
        other => panic!("expected MissingReferences, got {other:?}"),
    }
    assert!(
        meta.manifest_by_tag(&r, &tag("v1"))
            .await
            .expect("get")
            .is_none()
    );

    meta.commit_blob(&r, &layer, 5, None)
        .await
        .expect("commit layer");
    meta.put_manifest(&r, &image, Some(&tag("v1")))
        .await
        .expect("put");
    meta.put_manifest(&r, &image, Some(&tag("v1")))
        .await
        .expect("put is idempotent");
    let got = meta
        .manifest_by_tag(&r, &tag("v1"))
        .await
        .expect("get")
        .expect("tagged");
    assert_eq!(got.digest, image.digest);
    assert_eq!(got.content, image.content, "stored byte for byte");
    assert!(
        meta.manifest_by_digest(&r, &image.digest)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        meta.manifest_by_digest(&repo("conformance/other"), &image.digest)
            .await
            .expect("get")
            .is_none()
    );

    // An index needs its children in the same repository.
    let mut index = record("index bytes", Vec::new(), None, None);
    index.manifests = vec![
        image.digest.clone(),
        Digest::compute(Algorithm::Sha256, b"absent"),
    ];
    assert!(matches!(
        meta.put_manifest(&r, &index, None).await,
        Err(PutManifestError::MissingReferences { manifests, .. }) if manifests.len() == 1
    ));

    // Referrers: the subject need not exist.
    let absent = Digest::compute(Algorithm::Sha256, b"no such subject");
    let sig = record(
        "signature",
        Vec::new(),
        Some(image.digest.clone()),
        Some("application/vnd.example.sig"),
    );
    let sbom = record(
        "sbom",
        Vec::new(),
        Some(image.digest.clone()),
        Some("application/vnd.example.sbom"),
    );
    let orphan = record(
        "orphan",
        Vec::new(),
        Some(absent.clone()),
        Some("application/vnd.example.sig"),
    );
    for m in [&sig, &sbom, &orphan] {
        meta.put_manifest(&r, m, None).await.expect("put referrer");
    }
    let all = meta
        .referrers(&r, &image.digest, None)
        .await
        .expect("referrers");
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|x| x.annotations.as_deref() == Some(r#"{"k":"v"}"#))
    );
    let sigs = meta
        .referrers(&r, &image.digest, Some("application/vnd.example.sig"))
        .await
        .expect("referrers");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest, sig.digest);
    assert_eq!(sigs[0].size, "signature".len() as u64);
    assert_eq!(
        meta.referrers(&r, &absent, None)
            .await
            .expect("referrers")
            .len(),
        1
    );

    // Retag, delete tag, delete manifest (its tags and referrer entry go with it).
    meta.put_manifest(&r, &sig, Some(&tag("v1")))
        .await
        .expect("retag");
    assert_eq!(
        meta.manifest_by_tag(&r, &tag("v1"))
            .await
            .expect("get")
            .expect("tagged")
            .digest,
        sig.digest
    );
    meta.put_manifest(&r, &sig, Some(&tag("v2")))
        .await
        .expect("tag v2");
    assert!(meta.delete_tag(&r, &tag("v2")).await.expect("delete tag"));
    assert!(
        !meta
            .delete_tag(&r, &tag("v2"))
            .await
            .expect("delete tag again")
    );
    assert!(
        meta.delete_manifest(&r, &sig.digest)
            .await
            .expect("delete manifest")
    );
    assert!(
        meta.manifest_by_tag(&r, &tag("v1"))
            .await
            .expect("get")
            .is_none()
    );
    assert_eq!(
        meta.referrers(&r, &image.digest, None)
            .await
            .expect("referrers")
            .len(),
        1
    );
    assert!(
        !meta
            .delete_manifest(&r, &sig.digest)
            .await
            .expect("delete again")
    );
}

async fn tag_ordering_and_pages(meta: &dyn MetaStore) {
    let r = repo("conformance/tags");
    assert!(
        meta.list_tags(&r, None, 10).await.expect("list").is_none(),
        "unknown repo"
    );
    let m = record("tagged", Vec::new(), None, None);
    for t in ["b", "A", "a", "C", "_x", "10", "9"] {
        meta.put_manifest(&r, &m, Some(&tag(t))).await.expect("tag");
    }
    let all = meta
        .list_tags(&r, None, 100)
        .await
        .expect("list")
        .expect("repo");
    // Case-insensitive (ASCII letters folded to lower case), ties broken by byte order.
    assert_eq!(all.items, ["10", "9", "_x", "A", "a", "b", "C"]);
    assert!(!all.more);
    let first = meta
        .list_tags(&r, None, 3)
        .await
        .expect("list")
        .expect("repo");
    assert_eq!(first.items, ["10", "9", "_x"]);
    assert!(first.more);
    let next = meta
        .list_tags(&r, Some("_x"), 3)
        .await
        .expect("list")
        .expect("repo");
    assert_eq!(next.items, ["A", "a", "b"]);
    assert!(next.more);
    let last = meta
        .list_tags(&r, Some("b"), 3)
        .await
        .expect("list")
        .expect("repo");
    assert_eq!(last.items, ["C"]);
    assert!(!last.more);
    let empty = meta
        .list_tags(&r, None, 0)
        .await
        .expect("list")
        .expect("repo");
    assert!(empty.items.is_empty());

    let repos = meta.list_repositories(None, 1000).await.expect("catalog");
    assert!(repos.items.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(repos.items.contains(&"conformance/tags".to_owned()));
    let after = meta
        .list_repositories(Some("conformance/tags"), 1000)
        .await
        .expect("catalog");
    assert!(after.items.iter().all(|n| n.as_str() > "conformance/tags"));
}

/// The scan queue, layer cache and results. `store` must implement both traits over the same
/// data (a manifest push queues its scan).
pub async fn scan_store<S: MetaStore + crate::ScanStore>(store: &S) {
    use crate::{RematchedRow, ScanResultRow, ScanState};
    let r = repo("conformance/scans");
    let blob = Digest::compute(Algorithm::Sha256, b"layer for scans");
    store
        .commit_blob(&r, &blob, 15, None)
        .await
        .expect("commit");
    let image = record(r#"{"scan":"image"}"#, vec![blob.clone()], None, None);
    let artifact = record(
        r#"{"scan":"artifact"}"#,
        vec![blob.clone()],
        None,
        Some("application/x.sig"),
    );
    store
        .put_manifest(&r, &image, None)
        .await
        .expect("put image");
    store
        .put_manifest(&r, &artifact, None)
        .await
        .expect("put artifact");
    let image_digest = image.digest.to_string();

    // Only the image is queued, in the manifest's own transaction.
    let job = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("queued with the push");
    assert_eq!((job.state, job.attempts), (ScanState::Pending, 0));
    assert!(
        store
            .scan_job(&artifact.digest.to_string())
            .await
            .expect("job")
            .is_none()
    );

    let claimed = store
        .claim_scan_job(100, 60)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(claimed.manifest_digest, image_digest);
    assert_eq!(
        (claimed.state, claimed.attempts, claimed.started_at),
        (ScanState::Running, 1, Some(100))
    );
    assert!(
        store
            .claim_scan_job(120, 60)
            .await
            .expect("claim")
            .is_none(),
        "running and fresh"
    );
    // A worker that died: the job is taken again once stale.
    let again = store
        .claim_scan_job(200, 60)
        .await
        .expect("claim")
        .expect("stale job");
    assert_eq!(again.attempts, 2);
    store
        .finish_scan_job(&image_digest, Err("layer 0: corrupt".into()), 210)
        .await
        .expect("finish");
    let failed = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(
        (failed.state, failed.reason.as_deref(), failed.finished_at),
        (ScanState::Failed, Some("layer 0: corrupt"), Some(210))
    );
    assert!(
        store
            .claim_scan_job(300, 60)
            .await
            .expect("claim")
            .is_none(),
        "failed jobs stay failed"
    );
    // Pushing the manifest again queues a failed scan again.
    store
        .put_manifest(&r, &image, None)
        .await
        .expect("push again");
    let requeued = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(requeued.state, ScanState::Pending);
    store
        .claim_scan_job(310, 60)
        .await
        .expect("claim")
        .expect("job");
    store
        .finish_scan_job(&image_digest, Err("again".into()), 320)
        .await
        .expect("finish");

    // A rescan request resets it; one for a manifest not in the repository is refused.
    assert!(
        store
            .request_scan(r.as_str(), &image_digest, 400)
            .await
            .expect("request")
    );
    assert!(
        !store
            .request_scan("conformance/elsewhere", &image_digest, 400)
            .await
            .expect("request")
    );
    let pending = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(
        (pending.state, pending.attempts, pending.reason),
        (ScanState::Pending, 0, None)
    );
    store
        .claim_scan_job(410, 60)
        .await
        .expect("claim")
        .expect("job");
    // A rescan requested while it runs: the running scan's finish does not close it.
    assert!(
        store
            .request_scan(r.as_str(), &image_digest, 415)
            .await
            .expect("request")
    );
    store
        .finish_scan_job(&image_digest, Ok(()), 418)
        .await
        .expect("finish");
    let again = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(again.state, ScanState::Pending);
    store
        .claim_scan_job(419, 60)
        .await
        .expect("claim")
        .expect("job");
    store
        .finish_scan_job(&image_digest, Ok(()), 420)
        .await
        .expect("finish");
    assert_eq!(
        store
            .scan_job(&image_digest)
            .await
            .expect("job")
            .expect("job")
            .state,
        ScanState::Done
    );
    // The same image pushed to another repository is scanned again there (for its SBOM).
    let other = repo("conformance/scans-copy");
    store
        .commit_blob(&other, &blob, 15, None)
        .await
        .expect("commit");
    store
        .put_manifest(&other, &image, None)
        .await
        .expect("push elsewhere");
    let moved = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(
        (moved.state, moved.repository.as_str()),
        (ScanState::Pending, other.as_str())
    );
    store
        .claim_scan_job(430, 60)
        .await
        .expect("claim")
        .expect("job");
    store
        .finish_scan_job(&image_digest, Ok(()), 440)
        .await
        .expect("finish");
    store
        .put_manifest(&other, &image, None)
        .await
        .expect("push again, same repository");
    let kept = store
        .scan_job(&image_digest)
        .await
        .expect("job")
        .expect("job");
    assert_eq!(
        kept.state,
        ScanState::Done,
        "a done scan is not repeated for the same repository"
    );

    // The per-layer cache.
    assert_eq!(
        store.layer_diff_id(&blob.to_string()).await.expect("diff"),
        None
    );
    store
        .put_layer_diff_id(&blob.to_string(), "sha256:diff")
        .await
        .expect("put diff");
    store
        .put_layer_fragment("sha256:diff", "a1", "{\"files\":[]}", 1)
        .await
        .expect("put fragment");
    assert_eq!(
        store
            .layer_diff_id(&blob.to_string())
            .await
            .expect("diff")
            .as_deref(),
        Some("sha256:diff")
    );
    assert_eq!(
        store
            .layer_fragment("sha256:diff", "a1")
            .await
            .expect("fragment")
            .as_deref(),
        Some("{\"files\":[]}")
    );
    assert_eq!(
        store
            .layer_fragment("sha256:diff", "a2")
            .await
            .expect("fragment"),
        None,
        "another analyzer"
    );

    // Results, re-matches and their changes.
    let row = ScanResultRow {
        manifest_digest: image_digest.clone(),
        db_version: Some("v1".into()),
        inventory: "{\"packages\":[]}".into(),
        findings: Some("[]".into()),
        summary: Some("{}".into()),
        scanned_at: 500,
        matched_at: Some(500),
    };
    store.put_scan_result(&row).await.expect("put result");
    assert_eq!(
        store.scan_result(&image_digest).await.expect("result"),
        Some(row.clone())
    );
    let page = store.scan_results_after("", 10).await.expect("page");
    assert!(page.iter().any(|p| p.manifest_digest == image_digest));
    assert!(
        store
            .scan_results_after(&image_digest, 10)
            .await
            .expect("page")
            .iter()
            .all(|p| p.manifest_digest > image_digest)
    );
    store
        .record_rematch(
            vec![RematchedRow {
                manifest_digest: image_digest.clone(),
                db_version: "v2".into(),
                findings: "[{\"id\":\"CVE-1\"}]".into(),
                summary: "{\"total\":1}".into(),
                matched_at: 600,
            }],
            vec![crate::ScanChange {
                manifest_digest: image_digest.clone(),
                from_db: Some("v1".into()),
                to_db: "v2".into(),
                added: "[\"CVE-1\"]".into(),
                removed: "[]".into(),
                at: 600,
            }],
        )
        .await
        .expect("rematch");
    let rematched = store
        .scan_result(&image_digest)
        .await
        .expect("result")
        .expect("row");
    assert_eq!(rematched.inventory, row.inventory, "the inventory is kept");
    assert_eq!(
        (
            rematched.db_version.as_deref(),
            rematched.matched_at,
            rematched.scanned_at
        ),
        (Some("v2"), Some(600), 500)
    );
    let changes = store.scan_changes(&image_digest, 5).await.expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].added, "[\"CVE-1\"]");
}

/// Runs every [`crate::TrustStore`] check.
pub async fn trust_store<S: MetaStore + crate::TrustStore>(store: &S) {
    authorities(store).await;
    attachments_and_signers(store).await;
}

async fn authorities<S: MetaStore + crate::TrustStore>(store: &S) {
    use crate::{AuthorityOrigin, AuthorityRow};
    let row = |name: &str, origin, keys: &[&str]| AuthorityRow {
        name: name.to_owned(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        origin,
        updated_at: 7,
    };
    store
        .put_authority(&row("release", AuthorityOrigin::Config, &["PEM1", "PEM2"]))
        .await
        .expect("put");
    store
        .put_authority(&row("ci", AuthorityOrigin::Api, &["PEM3"]))
        .await
        .expect("put");
    store
        .put_authority(&row("old", AuthorityOrigin::Config, &[]))
        .await
        .expect("put");
    // Replacing keeps one row with the new keys.
    store
        .put_authority(&row("release", AuthorityOrigin::Config, &["PEM2"]))
        .await
        .expect("replace");
    assert_eq!(
        store.authority("release").await.expect("get"),
        Some(row("release", AuthorityOrigin::Config, &["PEM2"]))
    );
    assert_eq!(store.authority("nobody").await.expect("get"), None);
    // Pruning the configuration's authorities leaves the API's alone.
    store
        .prune_authorities(AuthorityOrigin::Config, &["release".to_owned()])
        .await
        .expect("prune");
    let names: Vec<String> = store
        .authorities()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["ci", "release"]);
}

async fn attachments_and_signers<S: MetaStore + crate::TrustStore>(store: &S) {
    use crate::{AttachmentKind, AttachmentRecord, AttachmentVia};
    let r = repo("conformance/trust");
    let blob = Digest::compute(Algorithm::Sha256, b"trust layer");
    store.commit_blob(&r, &blob, 11, None).await.expect("blob");
    let image = record(r#"{"trust":"image"}"#, vec![blob.clone()], None, None);
    store.put_manifest(&r, &image, None).await.expect("image");
    let mut index = record(r#"{"trust":"index"}"#, Vec::new(), None, None);
    index.manifests = vec![image.digest.clone()];
    index.media_type = "application/vnd.oci.image.index.v1+json".into();
    store.put_manifest(&r, &index, None).await.expect("index");
    let sig_a = record(r#"{"trust":"sig a"}"#, vec![blob.clone()], None, Some("x"));
    let sig_b = record(r#"{"trust":"sig b"}"#, vec![blob.clone()], None, Some("x"));
    let referrer = record(
        r#"{"trust":"referrer"}"#,
        vec![blob.clone()],
        Some(image.digest.clone()),
        Some("x"),
    );
    let sig_tag = tag(&format!("sha256-{}.sig", image.digest.hex()));
    store
        .put_manifest(&r, &sig_a, Some(&sig_tag))
        .await
        .expect("sig a");
    store.put_manifest(&r, &referrer, None).await.expect("ref");

    let attachment = |source: &Digest, subject: &Digest, via, signers: &[&str]| AttachmentRecord {
        repository: r.to_string(),
        source_digest: source.to_string(),
        subject: subject.to_string(),
        via,
        kind: AttachmentKind::Signature,
        report: r#"{"layers":[]}"#.to_owned(),
        signers: signers.iter().map(|s| (*s).to_owned()).collect(),
        verified_at: 5,
    };
    let signers = |direct: &[&str], via_index: &[&str]| crate::Signers {
        direct: direct.iter().map(|s| (*s).to_owned()).collect(),
        via_index: via_index.iter().map(|s| (*s).to_owned()).collect(),
    };
    let a = attachment(&sig_a.digest, &image.digest, AttachmentVia::Tag, &["ci"]);
    assert!(store.record_attachment(&a).await.expect("record"));
    let referred = attachment(
        &referrer.digest,
        &image.digest,
        AttachmentVia::Referrer,
        &["release"],
    );
    assert!(store.record_attachment(&referred).await.expect("record"));
    let image_d = image.digest.to_string();
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&["ci", "release"], &[])
    );
    assert_eq!(
        store
            .attachments(r.as_str(), &image_d)
            .await
            .expect("list")
            .len(),
        2
    );

    // The tag moves to a new signature manifest: the old one no longer counts.
    store
        .put_manifest(&r, &sig_b, Some(&sig_tag))
        .await
        .expect("sig b");
    let b = attachment(
        &sig_b.digest,
        &image.digest,
        AttachmentVia::Tag,
        &["bonded"],
    );
    assert!(store.record_attachment(&b).await.expect("record"));
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&["bonded", "release"], &[])
    );
    // Re-recording replaces, it does not add.
    let b2 = attachment(&sig_b.digest, &image.digest, AttachmentVia::Tag, &[]);
    assert!(store.record_attachment(&b2).await.expect("record"));
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&["release"], &[])
    );

    // A verdict for a manifest its tag no longer names is not stored.
    assert!(
        !store.record_attachment(&a).await.expect("record"),
        "sig a is no longer tagged"
    );

    // A signed index vouches for its children.
    let sig_index = record(
        r#"{"trust":"sig index"}"#,
        vec![blob.clone()],
        None,
        Some("x"),
    );
    let index_tag = tag(&format!("sha256-{}.sig", index.digest.hex()));
    store
        .put_manifest(&r, &sig_index, Some(&index_tag))
        .await
        .expect("sig index");
    let on_index = attachment(
        &sig_index.digest,
        &index.digest,
        AttachmentVia::Tag,
        &["ci"],
    );
    assert!(store.record_attachment(&on_index).await.expect("record"));
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&["release"], &["ci"])
    );
    // ... but only in its own repository.
    assert_eq!(
        store
            .signers("conformance/elsewhere", &image_d)
            .await
            .expect("signers"),
        signers(&[], &[])
    );

    // Deleting the attachment manifest deletes its verdict.
    assert!(
        store
            .delete_manifest(&r, &referrer.digest)
            .await
            .expect("delete")
    );
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&[], &["ci"])
    );
    // A verdict for a manifest that is gone is not stored.
    assert!(!store.record_attachment(&referred).await.expect("record"));
    store
        .forget_tag_attachments(
            r.as_str(),
            &index.digest.to_string(),
            AttachmentKind::Signature,
        )
        .await
        .expect("forget");
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&[], &[])
    );

    // The tag is deleted behind the service's back: pruning drops the stale verdict.
    assert!(store.record_attachment(&on_index).await.expect("record"));
    assert!(store.delete_tag(&r, &index_tag).await.expect("delete tag"));
    assert_eq!(store.prune_stale_attachments().await.expect("prune"), 1);
    assert_eq!(
        store.signers(r.as_str(), &image_d).await.expect("signers"),
        signers(&[], &[])
    );

    let candidates = store.attachment_candidates().await.expect("candidates");
    let tagged: Vec<_> = candidates
        .iter()
        .filter(|c| c.repository == r.as_str())
        .map(|c| (c.digest.clone(), c.tag.clone()))
        .collect();
    assert_eq!(
        tagged,
        [(sig_b.digest.to_string(), Some(sig_tag.to_string()))],
        "only the manifest the .sig tag points at (the referrer was deleted)"
    );
}

/// Runs every [`crate::EventStore`] check: the outbox records each state change once, in
/// commit order, with ids that never change, and cursors only move forward.
pub async fn event_store<S: MetaStore + crate::EventStore + crate::ScanStore>(store: &S) {
    let r = repo("conformance/events");
    let start = store
        .events_after(0, 10_000)
        .await
        .expect("events")
        .last()
        .map_or(0, |e| e.seq);
    let blob = Digest::compute(Algorithm::Sha256, b"event layer");
    store.commit_blob(&r, &blob, 11, None).await.expect("blob");
    let one = record(r#"{"events":"one"}"#, vec![blob.clone()], None, None);
    let two = record(r#"{"events":"two"}"#, vec![blob.clone()], None, None);
    let v1 = tag("v1");
    store
        .put_manifest(&r, &one, Some(&v1))
        .await
        .expect("push one");
    // The same manifest again is no change, and writes no event.
    store
        .put_manifest(&r, &one, Some(&v1))
        .await
        .expect("push one again");
    store
        .put_manifest(&r, &two, Some(&v1))
        .await
        .expect("push two");
    // A refused push (a missing blob) commits nothing, so it writes nothing.
    let missing = record(
        r#"{"events":"missing"}"#,
        vec![Digest::compute(Algorithm::Sha256, b"absent")],
        None,
        None,
    );
    assert!(store.put_manifest(&r, &missing, None).await.is_err());
    store.delete_tag(&r, &v1).await.expect("delete tag");
    store
        .put_manifest(&r, &one, Some(&tag("v2")))
        .await
        .expect("tag one");
    // Deleting a manifest deletes its tags: both are events.
    store
        .delete_manifest(&r, &one.digest)
        .await
        .expect("delete one");
    let claimed = store.claim_scan_job(1_000, 60).await.expect("claim");
    if let Some(job) = claimed {
        store
            .finish_scan_job(&job.manifest_digest, Err("broken".into()), 1_001)
            .await
            .expect("finish");
    }

    let events = store.events_after(start, 100).await.expect("events");
    let ours: Vec<(String, Option<String>, Option<String>)> = events
        .iter()
        .filter(|e| e.repository.as_deref() == Some(r.as_str()))
        .map(|e| (e.kind.clone(), e.digest.clone(), e.tag.clone()))
        .collect();
    let (d1, d2) = (Some(one.digest.to_string()), Some(two.digest.to_string()));
    let t = |s: &str| Some(s.to_owned());
    let scan_event = ours.iter().any(|(k, _, _)| k == "scan.failed");
    let expected_prefix = [
        ("artifact.pushed".to_owned(), d1.clone(), None),
        ("tag.updated".to_owned(), d1.clone(), t("v1")),
        ("artifact.pushed".to_owned(), d2.clone(), None),
        ("tag.updated".to_owned(), d2.clone(), t("v1")),
        ("tag.deleted".to_owned(), d2.clone(), t("v1")),
        ("tag.updated".to_owned(), d1.clone(), t("v2")),
    ];
    assert_eq!(ours.get(..6), Some(&expected_prefix[..]), "{ours:?}");
    let after_delete: Vec<&str> = ours.iter().skip(6).map(|(k, _, _)| k.as_str()).collect();
    assert!(
        after_delete.starts_with(&["tag.deleted", "artifact.deleted"])
            || after_delete.starts_with(&["artifact.deleted", "tag.deleted"]),
        "{after_delete:?}"
    );
    assert!(scan_event, "a failed scan is an event: {ours:?}");
    let moved = events
        .iter()
        .find(|e| e.kind == "tag.updated" && e.digest == d2)
        .expect("the tag move");
    assert!(
        moved.data.contains(&one.digest.to_string()),
        "previous digest: {}",
        moved.data
    );
    // Ordered, unique, stable.
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let ids: std::collections::BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len());
    let again = store.events_after(start, 100).await.expect("events");
    assert_eq!(again, events, "reading again gives the same events and ids");
    let page = store.events_after(start, 2).await.expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page, events[..2]);

    // Cursors move forward only.
    assert_eq!(store.cursor("webhooks").await.expect("cursor"), 0);
    let mid = events[2].seq;
    store
        .advance_cursor("webhooks", mid, 5)
        .await
        .expect("advance");
    store
        .advance_cursor("webhooks", mid - 1, 6)
        .await
        .expect("late save");
    assert_eq!(store.cursor("webhooks").await.expect("cursor"), mid);
    assert_eq!(store.cursor("audit").await.expect("cursor"), 0);

    // Events name their actor when the change was made for a request, and only then.
    assert!(events.iter().all(|e| e.actor.is_none()), "{events:?}");
    let actor = crate::context::Actor {
        addr: Some("192.0.2.7:5123".into()),
        user_agent: Some("skopeo/1.9".into()),
        request_id: Some("req-1".into()),
    };
    let three = record(r#"{"events":"three"}"#, vec![blob.clone()], None, None);
    crate::context::scope(
        actor.clone(),
        store.put_manifest(&r, &three, Some(&tag("v3"))),
    )
    .await
    .expect("push three");
    let written = crate::context::scope(
        actor,
        store.append_event(
            &crate::NewEvent {
                kind: "pull.denied".into(),
                repository: Some(r.to_string()),
                digest: Some(three.digest.to_string()),
                tag: None,
                data: r#"{"reason":"unsigned"}"#.into(),
            },
            77,
        ),
    )
    .await
    .expect("append");
    store.delete_tag(&r, &tag("v3")).await.expect("delete v3");
    let three_events = store
        .events_for_digest(&three.digest.to_string(), 0, 100)
        .await
        .expect("by digest");
    let kinds: Vec<&str> = three_events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "artifact.pushed",
            "tag.updated",
            "pull.denied",
            "tag.deleted"
        ]
    );
    for e in &three_events[..3] {
        let a = e.actor.as_deref().expect("an actor");
        assert!(
            a.contains("192.0.2.7:5123") && a.contains("skopeo/1.9"),
            "{a}"
        );
    }
    assert_eq!(
        three_events[3].actor, None,
        "the actor does not outlive its write"
    );
    assert_eq!(three_events[2], written);
    assert_eq!(written.data, r#"{"reason":"unsigned"}"#);
    assert_eq!(
        store.last_event_seq().await.expect("last"),
        three_events[3].seq
    );
    let bad = crate::NewEvent {
        kind: "pull.denied".into(),
        repository: None,
        digest: None,
        tag: None,
        data: "not json".into(),
    };
    assert!(
        store.append_event(&bad, 1).await.is_err(),
        "data must be JSON"
    );

    // The commit signal moves with new events only: a write that adds none (a cursor saved,
    // an empty queue looked at) wakes nobody, so consumers cannot keep each other busy.
    let mut signal = store.subscribe();
    signal.borrow_and_update();
    store
        .advance_cursor("webhooks", i64::MAX - 1, 9)
        .await
        .expect("cursor");
    let _ = store.claim_scan_job(2_000, 60).await.expect("claim");
    assert!(
        !signal.has_changed().expect("signal"),
        "no event, no wake-up"
    );
    let added = store
        .append_event(
            &crate::NewEvent {
                kind: "vulndb.updated".into(),
                repository: None,
                digest: None,
                tag: None,
                data: "{}".into(),
            },
            10,
        )
        .await
        .expect("append");
    assert!(signal.has_changed().expect("signal"), "a new event wakes");
    assert_eq!(*signal.borrow_and_update(), added.seq as u64);
}

/// Promotion rules, decisions (a changed verdict is an event, an unchanged one is not),
/// immutable tags on every path, and tag listings.
pub async fn promotion_store<S: MetaStore + crate::EventStore + crate::PromotionStore>(store: &S) {
    use crate::StoreError;
    use crate::promotions::DecisionRow;
    assert!(
        store
            .put_promotion_rule("blessed", r#"{"from":"dev/**"}"#, 1)
            .await
            .expect("put")
    );
    assert!(
        !store
            .put_promotion_rule("blessed", r#"{"from":"dev/*"}"#, 2)
            .await
            .expect("put")
    );
    assert_eq!(
        store.promotion_rules().await.expect("rules"),
        [("blessed".to_owned(), r#"{"from":"dev/*"}"#.to_owned())]
    );
    assert!(
        store
            .put_promotion_rule("bad", "not json", 2)
            .await
            .is_err()
    );
    assert!(
        store
            .delete_promotion_rule("blessed")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_promotion_rule("blessed")
            .await
            .expect("delete again")
    );

    let r = repo("conformance/promote");
    let blob = Digest::compute(Algorithm::Sha256, b"promotion layer");
    store.commit_blob(&r, &blob, 15, None).await.expect("blob");
    let one = record(r#"{"promote":"one"}"#, vec![blob.clone()], None, None);
    let two = record(r#"{"promote":"two"}"#, vec![blob.clone()], None, None);
    store
        .put_manifest(&r, &one, Some(&tag("v1")))
        .await
        .expect("push");
    store
        .put_manifest(&r, &one, Some(&tag("also")))
        .await
        .expect("push");
    store
        .put_manifest(&r, &two, Some(&tag("v2")))
        .await
        .expect("push");
    let d1 = one.digest.to_string();
    assert_eq!(
        store.tags_for_digest(r.as_str(), &d1).await.expect("tags"),
        ["also", "v1"]
    );
    let listed = store
        .all_tags(Some((r.as_str(), "also")), 10)
        .await
        .expect("all");
    let listed: Vec<&str> = listed
        .iter()
        .filter(|t| t.repository == r.as_str())
        .map(|t| t.tag.as_str())
        .collect();
    assert_eq!(listed, ["v1", "v2"], "listing resumes after the given tag");

    let start = store.last_event_seq().await.expect("seq");
    let mut row = DecisionRow {
        rule: "blessed".into(),
        repository: r.to_string(),
        tag: "v1".into(),
        digest: d1.clone(),
        verdict: "pending".into(),
        target_repository: None,
        target_tag: None,
        decision: r#"{"verdict":"pending","missing":["vulnerabilities"]}"#.into(),
        policy_digest: "sha256:abc".into(),
        decided_at: 10,
        promoted_at: None,
    };
    assert!(store.record_decision(&row).await.expect("first"));
    assert!(!store.record_decision(&row).await.expect("same verdict"));
    row.verdict = "promoted".into();
    row.target_repository = Some("conformance/prod".into());
    row.target_tag = Some("v1".into());
    row.promoted_at = Some(11);
    assert!(store.record_decision(&row).await.expect("promoted"));
    row.verdict = "rejected".into();
    row.promoted_at = None;
    row.decided_at = 12;
    assert!(store.record_decision(&row).await.expect("rejected"));
    let stored = store
        .decision("blessed", r.as_str(), "v1", &d1)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.verdict, "rejected");
    assert_eq!(stored.promoted_at, Some(11), "promoted_at is kept");
    assert_eq!(
        store.promoted_at("blessed", &d1).await.expect("at"),
        Some(11)
    );
    assert_eq!(store.promoted_at("other", &d1).await.expect("at"), None);
    assert_eq!(
        store
            .decisions_for_digest(&d1)
            .await
            .expect("by digest")
            .len(),
        1
    );
    assert_eq!(
        store
            .decisions_for_rule("blessed", 10)
            .await
            .expect("by rule")
            .len(),
        1
    );
    let kinds: Vec<String> = store
        .events_after(start, 100)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "promotion.pending",
            "promotion.succeeded",
            "promotion.rejected"
        ]
    );

    // An immutable tag can be neither moved nor deleted, directly or with its manifest.
    store
        .lock_tag(r.as_str(), "v1", "promoted by blessed", 13)
        .await
        .expect("lock");
    store
        .lock_tag(r.as_str(), "v1", "promoted by blessed", 14)
        .await
        .expect("lock again");
    assert_eq!(
        store.tag_lock(r.as_str(), "v1").await.expect("lock"),
        Some("promoted by blessed".into())
    );
    let moved = store.put_manifest(&r, &two, Some(&tag("v1"))).await;
    assert!(
        matches!(
            moved,
            Err(PutManifestError::Store(StoreError::ImmutableTag { .. }))
        ),
        "{moved:?}"
    );
    assert!(matches!(
        store.delete_tag(&r, &tag("v1")).await,
        Err(StoreError::ImmutableTag { .. })
    ));
    assert!(matches!(
        store.delete_manifest(&r, &one.digest).await,
        Err(StoreError::ImmutableTag { .. })
    ));
    // Re-pushing the same manifest to it is no move; other tags stay free.
    store
        .put_manifest(&r, &one, Some(&tag("v1")))
        .await
        .expect("same digest");
    assert!(store.delete_tag(&r, &tag("also")).await.expect("free tag"));
    let v1 = store.manifest_by_tag(&r, &tag("v1")).await.expect("read");
    assert_eq!(v1.map(|m| m.digest), Some(one.digest.clone()));
}

/// A failed scan put back with `retry_scan_job` is not taken before its time, then is taken
/// again with its attempt counted; a new push resets the wait.
pub async fn scan_retry<S: MetaStore + crate::ScanStore>(store: &S) {
    let r = repo("conformance/retry");
    let blob = Digest::compute(Algorithm::Sha256, b"retry layer");
    store.commit_blob(&r, &blob, 11, None).await.expect("blob");
    let image = record(r#"{"retry":1}"#, vec![blob], None, None);
    store.put_manifest(&r, &image, None).await.expect("push");
    let digest = image.digest.to_string();
    let mut claimed = None;
    while let Some(job) = store.claim_scan_job(100, 60).await.expect("claim") {
        if job.manifest_digest == digest {
            claimed = Some(job);
            break;
        }
        store
            .finish_scan_job(&job.manifest_digest, Ok(()), 100)
            .await
            .expect("finish other");
    }
    let job = claimed.expect("the job");
    assert_eq!(job.attempts, 1);
    store
        .retry_scan_job(&digest, "blob store unavailable", 200)
        .await
        .expect("retry");
    let queued = store.scan_job(&digest).await.expect("job").expect("exists");
    assert_eq!(queued.state, crate::ScanState::Pending);
    assert_eq!(queued.reason.as_deref(), Some("blob store unavailable"));
    assert_eq!(
        store.claim_scan_job(199, 60).await.expect("claim"),
        None,
        "not before its time"
    );
    let again = store
        .claim_scan_job(200, 60)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(
        (again.manifest_digest.as_str(), again.attempts),
        (digest.as_str(), 2)
    );
    store
        .retry_scan_job(&digest, "again", 10_000)
        .await
        .expect("retry");
    // A rescan request makes it due at once.
    assert!(
        store
            .request_scan(r.as_str(), &digest, 300)
            .await
            .expect("request")
    );
    let now_due = store
        .claim_scan_job(301, 60)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(now_due.manifest_digest, digest);
    store
        .finish_scan_job(&digest, Ok(()), 302)
        .await
        .expect("finish");
}
