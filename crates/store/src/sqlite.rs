//! [`MetaStore`] on SQLite, the embedded default.
//!
//! Settings follow Trow's production configuration: WAL journal, foreign keys on, a single
//! connection for writes (SQLite has one writer anyway; one connection avoids `SQLITE_BUSY`
//! inside the process) and a pool of read-only connections that never block the writer.
//! `synchronous` is `FULL` with [`Durability::Fsync`] (a commit survives power loss) and
//! `NORMAL` otherwise (a commit survives a process crash).

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use oci::{Algorithm, Digest, RepositoryName, Tag};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

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
        Ok(SqliteMetaStore { write, read })
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

async fn ensure_repository(
    tx: &mut sqlx::SqliteConnection,
    repo: &RepositoryName,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(repo.as_str())
        .bind(now)
        .execute(tx)
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
        let now = now();
        let mut tx = self.write.begin().await?;
        ensure_repository(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(digest.to_string())
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, created_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(id) = upload {
            sqlx::query("DELETE FROM uploads WHERE id = ?")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn linked_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repository = ? AND rb.digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn any_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blobs b WHERE b.digest = ? \
             AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
        )
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
        let now = now();
        let mut tx = self.write.begin().await?;
        let size: Option<i64> =
            match from {
                Some(from) => sqlx::query_scalar(
                    "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
                     WHERE rb.repository = ? AND rb.digest = ?",
                )
                .bind(from.as_str())
                .bind(digest.to_string())
                .fetch_optional(&mut *tx)
                .await?,
                None => {
                    sqlx::query_scalar(
                        "SELECT b.size FROM blobs b WHERE b.digest = ? \
                     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
                    )
                    .bind(digest.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
        let Some(size) = size else {
            return Ok(None);
        };
        ensure_repository(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, created_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(size as u64))
    }

    async fn unlink_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM repository_blobs WHERE repository = ? AND digest = ?")
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError> {
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadState>, StoreError> {
        // Read through the writer: progress must be seen as soon as it is recorded, and an
        // upload is always followed by a write anyway.
        let row = sqlx::query(
            "SELECT repository, bytes_received, algorithm, hash_state, created_at, updated_at \
             FROM uploads WHERE id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.write)
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
        let done = sqlx::query(
            "UPDATE uploads SET bytes_received = ?, algorithm = ?, hash_state = ?, updated_at = ? \
             WHERE id = ? AND bytes_received = ?",
        )
        .bind(to_i64(bytes_received))
        .bind(algorithm.as_str())
        .bind(hash_state)
        .bind(now())
        .bind(id.as_str())
        .bind(to_i64(expected_offset))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
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
        let now = now();
        let digest = manifest.digest.to_string();
        let blobs = digests_json(&manifest.blobs);
        let manifests = digests_json(&manifest.manifests);
        let mut tx = self.write.begin().await.map_err(StoreError::from)?;
        let missing_blobs: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT value FROM json_each(?) WHERE value NOT IN \
             (SELECT digest FROM repository_blobs WHERE repository = ?)",
        )
        .bind(&blobs)
        .bind(repo.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let missing_manifests: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT value FROM json_each(?) WHERE value NOT IN \
             (SELECT digest FROM manifests WHERE repository = ?)",
        )
        .bind(&manifests)
        .bind(repo.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        if !missing_blobs.is_empty() || !missing_manifests.is_empty() {
            return Err(PutManifestError::MissingReferences {
                blobs: missing_blobs
                    .iter()
                    .map(|s| parse_digest(s))
                    .collect::<Result<_, _>>()?,
                manifests: missing_manifests
                    .iter()
                    .map(|s| parse_digest(s))
                    .collect::<Result<_, _>>()?,
            });
        }
        ensure_repository(&mut tx, repo, now)
            .await
            .map_err(StoreError::from)?;
        sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, content, subject, artifact_type, annotations, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(repo.as_str())
        .bind(&digest)
        .bind(&manifest.media_type)
        .bind(&manifest.content[..])
        .bind(manifest.subject.as_ref().map(|d| d.to_string()))
        .bind(manifest.artifact_type.as_deref())
        .bind(manifest.annotations.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        for (list, kind) in [(&blobs, "blob"), (&manifests, "manifest")] {
            sqlx::query(
                "INSERT INTO manifest_references (repository, manifest_digest, target_digest, kind) \
                 SELECT ?, ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
            )
            .bind(repo.as_str())
            .bind(&digest)
            .bind(kind)
            .bind(list)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repository, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (repository, name) DO UPDATE SET \
                 manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at",
            )
            .bind(repo.as_str())
            .bind(tag.as_str())
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
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
        let done = sqlx::query("DELETE FROM manifests WHERE repository = ? AND digest = ?")
            .bind(repo.as_str())
            .bind(digest.to_string())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tags WHERE repository = ? AND name = ?")
            .bind(repo.as_str())
            .bind(tag.as_str())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
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
        Ok(())
    }
}
