//! [`MetaStore`] on SQLite, the embedded default.
//!
//! Settings follow Trow's production configuration: WAL journal, foreign keys on, a single
//! connection for writes (SQLite has one writer anyway; one connection avoids `SQLITE_BUSY`
//! inside the process) and a pool of read-only connections that never block the writer.
//! `synchronous` is `FULL` with [`Durability::Fsync`] (a commit survives power loss) and
//! `NORMAL` otherwise (a commit survives a process crash).
//!
//! Group commit: every write runs on one writer task. It takes all writes that are waiting,
//! runs each inside its own savepoint of one transaction (so one write's failure rolls back
//! only that write), commits once and only then answers each caller. With `FULL`
//! synchronisation that is one fsync for the whole group instead of one per write, which is
//! what lets concurrent pushes, mounts and manifest PUTs scale on ordinary disks. No caller is
//! answered before the commit that contains its write.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use oci::{Algorithm, Digest, RepositoryName, Tag};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

#[path = "sqlite_audit.rs"]
mod audit_impl;
#[path = "sqlite_events.rs"]
mod events_impl;
#[path = "sqlite_promotions.rs"]
mod promotions_impl;
#[path = "sqlite_scan.rs"]
mod scan_impl;
#[path = "sqlite_trust.rs"]
mod trust_impl;
#[path = "sqlite_webhooks.rs"]
mod webhooks_impl;

pub use audit_impl::SqliteAuditReader;

use crate::Durability;
use crate::error::StoreError;
use crate::meta::{
    ManifestRecord, MetaStore, NewUpload, Page, PutManifestError, Referrer, StoredManifest,
    UploadId, UploadState,
};

/// SQLite-backed metadata.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    write: SqlitePool,
    read: SqlitePool,
    jobs: mpsc::Sender<Job>,
    /// The newest committed event's `seq`: consumers of the outbox wait on it instead of
    /// polling.
    commits: tokio::sync::watch::Sender<u64>,
}

/// Runs after the group's commit with its outcome.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// One write: runs inside its savepoint and returns what to do once the group is committed.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Completion> + Send>;

/// The most writes committed together.
const MAX_GROUP: usize = 256;

async fn writer_loop(
    pool: SqlitePool,
    mut jobs: mpsc::Receiver<Job>,
    commits: tokio::sync::watch::Sender<u64>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                // Dropping the jobs drops their answer channels: callers see `WriterGone`.
                tracing::error!(error = %e, "metadata writer cannot get its connection");
                continue;
            }
        };
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "metadata writer cannot begin a transaction");
                continue;
            }
        };
        let mut completions = Vec::with_capacity(group.len());
        for job in group {
            completions.push(job(&mut tx).await);
        }
        let outcome = tx.commit().await.map_err(|e| e.to_string());
        match &outcome {
            Ok(()) => announce_events(&mut conn, &commits).await,
            Err(e) => {
                tracing::error!(error = %e, writes = completions.len(), "metadata commit failed")
            }
        }
        for done in completions {
            done(outcome.clone());
        }
    }
}

/// Publishes the newest committed event's `seq` when a group added events. Only then: a
/// group that wrote no event (a consumer saving its cursor, a worker finding its queue
/// empty) wakes nobody, so consumers that write cannot wake each other, or themselves, forever.
async fn announce_events(conn: &mut SqliteConnection, commits: &tokio::sync::watch::Sender<u64>) {
    match sqlx::query_scalar::<_, i64>("SELECT coalesce(max(seq), 0) FROM events")
        .fetch_one(&mut *conn)
        .await
    {
        Ok(seq) => {
            let seq = u64::try_from(seq).unwrap_or(0);
            commits.send_if_modified(|last| {
                let newer = seq > *last;
                if newer {
                    *last = seq;
                }
                newer
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the newest event after a commit"),
    }
}

/// Runs `op` inside a savepoint: kept if it succeeds, rolled back if it fails.
async fn in_savepoint<T, F>(conn: &mut SqliteConnection, op: F) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>,
{
    let mut savepoint = conn.begin().await?;
    match op(&mut savepoint).await {
        Ok(value) => {
            savepoint.commit().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = savepoint.rollback().await;
            Err(e)
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteMetaStore {
    /// Opens (creating and migrating if needed) the database file at `path`.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Fsync => SqliteSynchronous::Full,
            Durability::Relaxed => SqliteSynchronous::Normal,
        };
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        MIGRATOR.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(base.read_only(true))
            .await?;
        let (jobs, rx) = mpsc::channel(4 * MAX_GROUP);
        let (commits, _) = tokio::sync::watch::channel(0);
        tokio::spawn(writer_loop(write.clone(), rx, commits.clone()));
        Ok(SqliteMetaStore {
            write,
            read,
            jobs,
            commits,
        })
    }

    /// Runs `sql`, a `DELETE … WHERE repository = ? AND <key> = ?`, as one write; returns
    /// whether a row went.
    async fn delete_keyed(
        &self,
        sql: &'static str,
        repo: &RepositoryName,
        key: String,
    ) -> Result<bool, StoreError> {
        let repo = repo.to_string();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(sql)
                    .bind(&repo)
                    .bind(&key)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    /// Runs `op` as one write of the next group commit and returns its result once that group
    /// is durable.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        // The writer runs in its own task: the actor is read here, in the caller's.
        let actor = crate::context::current().map(|a| a.to_json());
        let job: Job = Box::new(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                let outcome = in_savepoint(conn, move |conn| {
                    Box::pin(async move {
                        // Event triggers read the actor from this row; it lives only inside
                        // this write's savepoint, so no other write ever sees it.
                        if let Some(actor) = &actor {
                            sqlx::query(
                                "INSERT OR REPLACE INTO request_context (id, actor) VALUES (1, ?)",
                            )
                            .bind(actor)
                            .execute(&mut *conn)
                            .await?;
                        }
                        let value = op(&mut *conn).await?;
                        if actor.is_some() {
                            sqlx::query("DELETE FROM request_context")
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(value)
                    })
                })
                .await;
                Box::new(move |commit: Result<(), String>| {
                    let _ = answer.send(match commit {
                        Ok(()) => outcome,
                        Err(reason) => Err(StoreError::CommitFailed { reason }),
                    });
                }) as Completion
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answered
            .await
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::classify)
    }

    /// The newest committed event's `seq`; changes when a commit adds events.
    pub fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Closes both pools, waiting for in-flight queries.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn parse_digest(s: &str) -> Result<Digest, StoreError> {
    Digest::from_str(s).map_err(|e| StoreError::Corrupt {
        what: format!("digest {s:?}: {e}"),
    })
}

fn digests_json(digests: &[Digest]) -> String {
    serde_json::Value::Array(
        digests
            .iter()
            .map(|d| serde_json::Value::String(d.to_string()))
            .collect(),
    )
    .to_string()
}

/// Size of a blob linked in a repository (binds: repository, digest).
const LINKED_BLOB_SIZE: &str = "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
     WHERE rb.repository = ? AND rb.digest = ?";
/// Size of a blob linked in any repository (binds: digest).
const ANY_BLOB_SIZE: &str = "SELECT b.size FROM blobs b WHERE b.digest = ? \
     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)";

/// Makes `digest` visible in `repo` (idempotent).
async fn link_blob(
    conn: &mut SqliteConnection,
    repo: &str,
    digest: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, created_at) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(repo)
    .bind(digest)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn ensure_repository(
    conn: &mut SqliteConnection,
    repo: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(repo)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

fn page(mut items: Vec<String>, limit: u32) -> Page {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Page { items, more }
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
    async fn repository_exists(&self, repo: &RepositoryName) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM repositories WHERE name = ?")
            .bind(repo.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    async fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Page, StoreError> {
        let items: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        Ok(page(items, limit))
    }

    async fn commit_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        upload: Option<&UploadId>,
    ) -> Result<(), StoreError> {
        let (repo, digest, upload) = (
            repo.to_string(),
            digest.to_string(),
            upload.map(|u| u.to_string()),
        );
        self.write(move |conn| {
            Box::pin(async move {
                let now = now();
                ensure_repository(conn, &repo, now).await?;
                sqlx::query(
                    "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(&digest)
                .bind(to_i64(size))
                .bind(now)
                .execute(&mut *conn)
                .await?;
                link_blob(conn, &repo, &digest, now).await?;
                if let Some(id) = upload {
                    sqlx::query("DELETE FROM uploads WHERE id = ?")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn linked_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(LINKED_BLOB_SIZE)
            .bind(repo.as_str())
            .bind(digest.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn any_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(ANY_BLOB_SIZE)
            .bind(digest.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> Result<Option<u64>, StoreError> {
        let (repo, digest, from) = (
            repo.to_string(),
            digest.to_string(),
            from.map(|f| f.to_string()),
        );
        self.write(move |conn| {
            Box::pin(async move {
                let size: Option<i64> = match &from {
                    Some(from) => {
                        sqlx::query_scalar(LINKED_BLOB_SIZE)
                            .bind(from)
                            .bind(&digest)
                            .fetch_optional(&mut *conn)
                            .await?
                    }
                    None => {
                        sqlx::query_scalar(ANY_BLOB_SIZE)
                            .bind(&digest)
                            .fetch_optional(&mut *conn)
                            .await?
                    }
                };
                let Some(size) = size else {
                    return Ok(None);
                };
                let now = now();
                ensure_repository(conn, &repo, now).await?;
                link_blob(conn, &repo, &digest, now).await?;
                Ok(Some(size as u64))
            })
        })
        .await
    }

    async fn unlink_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        self.delete_keyed(
            "DELETE FROM repository_blobs WHERE repository = ? AND digest = ?",
            repo,
            digest.to_string(),
        )
        .await
    }

    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
        let upload = upload.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let now = now();
                sqlx::query(
                    "INSERT INTO uploads (id, repository, bytes_received, algorithm, hash_state, created_at, updated_at) \
                     VALUES (?, ?, 0, ?, ?, ?, ?)",
                )
                .bind(upload.id.as_str())
                .bind(upload.repository.as_str())
                .bind(upload.algorithm.as_str())
                .bind(&upload.hash_state[..])
                .bind(now)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadState>, StoreError> {
        // Writes are answered only after their commit, so a read that follows sees them.
        let row = sqlx::query(
            "SELECT repository, bytes_received, algorithm, hash_state, created_at, updated_at \
             FROM uploads WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let repository: String = row.try_get(0)?;
        let algorithm: String = row.try_get(2)?;
        Ok(Some(UploadState {
            id: id.clone(),
            repository: repository.parse().map_err(|_| StoreError::Corrupt {
                what: format!("upload {id} repository {repository:?}"),
            })?,
            bytes_received: row.try_get::<i64, _>(1)? as u64,
            algorithm: algorithm.parse().map_err(|_| StoreError::Corrupt {
                what: format!("upload {id} algorithm {algorithm:?}"),
            })?,
            hash_state: row.try_get(3)?,
            created_at: row.try_get(4)?,
            updated_at: row.try_get(5)?,
        }))
    }

    async fn record_upload_progress(
        &self,
        id: &UploadId,
        expected_offset: u64,
        bytes_received: u64,
        algorithm: Algorithm,
        hash_state: &[u8],
    ) -> Result<bool, StoreError> {
        let (id, hash_state) = (id.to_string(), hash_state.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE uploads SET bytes_received = ?, algorithm = ?, hash_state = ?, updated_at = ? \
                     WHERE id = ? AND bytes_received = ?",
                )
                .bind(to_i64(bytes_received))
                .bind(algorithm.as_str())
                .bind(&hash_state[..])
                .bind(now())
                .bind(&id)
                .bind(to_i64(expected_offset))
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn stale_uploads(&self, before: i64) -> Result<Vec<UploadId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ?")
            .bind(before)
            .fetch_all(&self.read)
            .await?;
        Ok(ids.into_iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        manifest: &ManifestRecord,
        tag: Option<&Tag>,
    ) -> Result<(), PutManifestError> {
        let repo = repo.to_string();
        let manifest = manifest.clone();
        let tag = tag.map(|t| t.to_string());
        let missing = self
            .write(move |conn| {
                Box::pin(async move {
                    let now = now();
                    let digest = manifest.digest.to_string();
                    let blobs = digests_json(&manifest.blobs);
                    let manifests = digests_json(&manifest.manifests);
                    let missing_blobs: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT value FROM json_each(?) WHERE value NOT IN \
                         (SELECT digest FROM repository_blobs WHERE repository = ?)",
                    )
                    .bind(&blobs)
                    .bind(&repo)
                    .fetch_all(&mut *conn)
                    .await?;
                    let missing_manifests: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT value FROM json_each(?) WHERE value NOT IN \
                         (SELECT digest FROM manifests WHERE repository = ?)",
                    )
                    .bind(&manifests)
                    .bind(&repo)
                    .fetch_all(&mut *conn)
                    .await?;
                    if !missing_blobs.is_empty() || !missing_manifests.is_empty() {
                        return Ok(Some((missing_blobs, missing_manifests)));
                    }
                    ensure_repository(conn, &repo, now).await?;
                    sqlx::query(
                        "INSERT INTO manifests (repository, digest, media_type, content, subject, artifact_type, annotations, created_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(&repo)
                    .bind(&digest)
                    .bind(&manifest.media_type)
                    .bind(&manifest.content[..])
                    .bind(manifest.subject.as_ref().map(|d| d.to_string()))
                    .bind(manifest.artifact_type.as_deref())
                    .bind(manifest.annotations.as_deref())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    if manifest.scan {
                        // The outbox: the job commits with the manifest or not at all. The same
                        // image pushed to another repository is scanned again there (its layers
                        // come from the cache) so that repository gets its SBOM referrer too; a
                        // failed scan is retried on a new push.
                        sqlx::query(
                            "INSERT INTO scan_jobs (manifest_digest, repository, state, attempts, queued_at) \
                             VALUES (?, ?, 'pending', 0, ?) ON CONFLICT (manifest_digest) DO UPDATE \
                             SET state = 'pending', reason = NULL, attempts = 0, not_before = NULL, \
                             queued_at = excluded.queued_at, repository = excluded.repository \
                             WHERE scan_jobs.state = 'failed' OR scan_jobs.repository != excluded.repository",
                        )
                        .bind(&digest)
                        .bind(&repo)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (list, kind) in [(&blobs, "blob"), (&manifests, "manifest")] {
                        sqlx::query(
                            "INSERT INTO manifest_references (repository, manifest_digest, target_digest, kind) \
                             SELECT ?, ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
                        )
                        .bind(&repo)
                        .bind(&digest)
                        .bind(kind)
                        .bind(list)
                        .execute(&mut *conn)
                        .await?;
                    }
                    if let Some(tag) = &tag {
                        sqlx::query(
                            "INSERT INTO tags (repository, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?) \
                             ON CONFLICT (repository, name) DO UPDATE SET \
                             manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at",
                        )
                        .bind(&repo)
                        .bind(tag)
                        .bind(&digest)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(None)
                })
            })
            .await?;
        match missing {
            None => Ok(()),
            Some((blobs, manifests)) => Err(PutManifestError::MissingReferences {
                blobs: blobs
                    .iter()
                    .map(|s| parse_digest(s))
                    .collect::<Result<_, _>>()?,
                manifests: manifests
                    .iter()
                    .map(|s| parse_digest(s))
                    .collect::<Result<_, _>>()?,
            }),
        }
    }

    async fn manifest_by_digest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT media_type, content FROM manifests WHERE repository = ? AND digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(media_type, content)| StoredManifest {
            digest: digest.clone(),
            media_type,
            content: Bytes::from(content),
        }))
    }

    async fn manifest_by_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let row: Option<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.content FROM tags t \
             JOIN manifests m ON m.repository = t.repository AND m.digest = t.manifest_digest \
             WHERE t.repository = ? AND t.name = ?",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.map(|(digest, media_type, content)| {
            Ok(StoredManifest {
                digest: parse_digest(&digest)?,
                media_type,
                content: Bytes::from(content),
            })
        })
        .transpose()
    }

    async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        // Tags and reference rows go with it through ON DELETE CASCADE; the referrer entry is
        // the row's own `subject` column.
        self.delete_keyed(
            "DELETE FROM manifests WHERE repository = ? AND digest = ?",
            repo,
            digest.to_string(),
        )
        .await
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool, StoreError> {
        self.delete_keyed(
            "DELETE FROM tags WHERE repository = ? AND name = ?",
            repo,
            tag.to_string(),
        )
        .await
    }

    async fn list_tags(
        &self,
        repo: &RepositoryName,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Option<Page>, StoreError> {
        if !self.repository_exists(repo).await? {
            return Ok(None);
        }
        let fetch = i64::from(limit) + 1;
        let items: Vec<String> = match last {
            Some(last) => {
                sqlx::query_scalar(
                    "SELECT name FROM tags WHERE repository = ? \
                     AND (name COLLATE NOCASE, name) > (? COLLATE NOCASE, ?) \
                     ORDER BY name COLLATE NOCASE, name LIMIT ?",
                )
                .bind(repo.as_str())
                .bind(last)
                .bind(last)
                .bind(fetch)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT name FROM tags WHERE repository = ? \
                     ORDER BY name COLLATE NOCASE, name LIMIT ?",
                )
                .bind(repo.as_str())
                .bind(fetch)
                .fetch_all(&self.read)
                .await?
            }
        };
        Ok(Some(page(items, limit)))
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, StoreError> {
        let rows: Vec<(String, String, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT digest, media_type, length(content), artifact_type, annotations FROM manifests \
             WHERE repository = ? AND subject = ? AND (? IS NULL OR artifact_type = ?) \
             ORDER BY created_at, digest",
        )
        .bind(repo.as_str())
        .bind(subject.to_string())
        .bind(artifact_type)
        .bind(artifact_type)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(digest, media_type, size, artifact_type, annotations)| {
                Ok(Referrer {
                    digest: parse_digest(&digest)?,
                    media_type,
                    size: size as u64,
                    artifact_type,
                    annotations,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        // Through the writer too: a healthy store must also be able to commit.
        self.write(|conn| {
            Box::pin(async move {
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
    }
}
