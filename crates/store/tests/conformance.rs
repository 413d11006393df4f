use store::{Durability, FsBlobStore, SqliteMetaStore, testsuite};

#[tokio::test]
async fn filesystem_blob_store_conforms() {
    for durability in [Durability::Fsync, Durability::Relaxed] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path(), durability)
            .await
            .expect("open");
        testsuite::blob_store(&store).await;
    }
}

#[tokio::test]
async fn sqlite_meta_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::meta_store(&meta).await;
}

#[tokio::test]
async fn sqlite_scan_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::scan_store(&store).await;
}

#[tokio::test]
async fn sqlite_trust_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::trust_store(&store).await;
}

#[tokio::test]
async fn sqlite_event_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::event_store(&store).await;
}

#[tokio::test]
async fn sqlite_promotion_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::promotion_store(&store).await;
}

#[tokio::test]
async fn sqlite_webhook_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    store::testsuite_webhooks::webhook_store(&store).await;
}

#[tokio::test]
async fn sqlite_audit_store_conforms() {
    use store::{AuditQuery, AuditReader, AuditStore, SqliteAuditReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bonded.db");
    let store = SqliteMetaStore::open(&path, Durability::Relaxed)
        .await
        .expect("open");
    store::testsuite_audit::audit_store(&store).await;
    // The offline verifier's read-only snapshot reads exactly what the server wrote.
    let reader = SqliteAuditReader::open(&path).await.expect("read-only");
    let everything = AuditQuery::from_index(0, 100);
    assert_eq!(
        reader.audit_entries(&everything).await.expect("entries"),
        store.audit_entries(&everything).await.expect("entries")
    );
    assert_eq!(
        reader.audit_leaves(0, 100, 100).await.expect("leaves"),
        store.audit_leaves(0, 100, 100).await.expect("leaves")
    );
    assert_eq!(
        reader.audit_checkpoints(0, 100).await.expect("checkpoints"),
        store.audit_checkpoints(0, 100).await.expect("checkpoints")
    );
    let size = store.audit_tree_size().await.expect("size");
    assert_eq!(reader.audit_tree_size().await.expect("size"), size);
    // A server appending meanwhile does not change what the reader sees.
    let later = store::NewAuditEntry {
        event_id: "later".into(),
        entry: b"later".to_vec(),
        leaf_hash: [9; 32],
        time: 9,
        action: "tag.deleted".into(),
        repository: None,
        digest: None,
        actor: None,
    };
    store.append_audit_entries(&[later]).await.expect("append");
    assert_eq!(store.audit_tree_size().await.expect("size"), size + 1);
    assert_eq!(reader.audit_tree_size().await.expect("size"), size);
    assert_eq!(reader.audit_event_seq("later").await.expect("seq"), None);
}

#[tokio::test]
async fn the_audit_reader_refuses_what_is_not_a_bonded_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.db");
    assert!(store::SqliteAuditReader::open(&missing).await.is_err());
    assert!(!missing.exists(), "a read-only open creates nothing");
    let other = dir.path().join("other.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true);
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .expect("create");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut conn)
            .await
            .expect("table");
    }
    let refused = store::SqliteAuditReader::open(&other).await;
    assert!(
        matches!(&refused, Err(store::StoreError::Corrupt { what }) if what.contains("no audit log tables")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn sqlite_scan_retry_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open");
    testsuite::scan_retry(&store).await;
}
