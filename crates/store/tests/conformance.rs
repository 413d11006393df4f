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
