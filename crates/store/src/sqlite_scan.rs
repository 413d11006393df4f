//! [`ScanStore`] on SQLite: the same writer task and read pool as the rest of the metadata.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::scanning::{RematchedRow, ScanChange, ScanJob, ScanResultRow, ScanState, ScanStore};

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ScanJob, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(ScanJob {
        manifest_digest: row.try_get("manifest_digest")?,
        repository: row.try_get("repository")?,
        state: ScanState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            what: format!("scan job state {state:?}"),
        })?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn result_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ScanResultRow, StoreError> {
    Ok(ScanResultRow {
        manifest_digest: row.try_get("manifest_digest")?,
        db_version: row.try_get("db_version")?,
        inventory: row.try_get("inventory")?,
        findings: row.try_get("findings")?,
        summary: row.try_get("summary")?,
        scanned_at: row.try_get("scanned_at")?,
        matched_at: row.try_get("matched_at")?,
    })
}

/// Times a job may be taken by a worker that then stops before finishing it.
const MAX_SCAN_ATTEMPTS: i64 = 3;

/// Column lists, as macros so that queries stay `&'static str` (sqlx audits dynamic SQL).
macro_rules! job_columns {
    () => {
        "manifest_digest, repository, state, reason, attempts, queued_at, started_at, finished_at"
    };
}
macro_rules! result_columns {
    () => {
        "manifest_digest, db_version, inventory, findings, summary, scanned_at, matched_at"
    };
}

#[async_trait]
impl ScanStore for SqliteMetaStore {
    async fn claim_scan_job(
        &self,
        now: i64,
        stale_after: i64,
    ) -> Result<Option<ScanJob>, StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                // A job whose worker died MAX_SCAN_ATTEMPTS times (an image that kills the
                // process, say) is failed instead of taken again.
                sqlx::query(
                    "UPDATE scan_jobs SET state = 'failed', finished_at = ?, \
                     reason = 'the scan did not finish after ' || attempts || ' attempts (the worker stopped each time)' \
                     WHERE state = 'running' AND started_at < ? AND attempts >= ?",
                )
                .bind(now)
                .bind(now - stale_after)
                .bind(MAX_SCAN_ATTEMPTS)
                .execute(&mut *conn)
                .await?;
                let row = sqlx::query(concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM scan_jobs \
                     WHERE (state = 'pending' AND (not_before IS NULL OR not_before <= ?)) \
                     OR (state = 'running' AND started_at < ?) \
                     ORDER BY queued_at LIMIT 1"
                ))
                .bind(now)
                .bind(now - stale_after)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let mut job = job_from_row(&row)?;
                sqlx::query(
                    "UPDATE scan_jobs SET state = 'running', started_at = ?, attempts = attempts + 1 \
                     WHERE manifest_digest = ?",
                )
                .bind(now)
                .bind(&job.manifest_digest)
                .execute(&mut *conn)
                .await?;
                job.state = ScanState::Running;
                job.started_at = Some(now);
                job.attempts += 1;
                Ok(Some(job))
            })
        })
        .await
    }

    async fn finish_scan_job(
        &self,
        manifest_digest: &str,
        outcome: Result<(), String>,
        now: i64,
    ) -> Result<(), StoreError> {
        let digest = manifest_digest.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let (state, reason) = match outcome {
                    Ok(()) => ("done", None),
                    Err(r) => ("failed", Some(r)),
                };
                sqlx::query(
                    "UPDATE scan_jobs SET state = ?, reason = ?, finished_at = ? \
                     WHERE manifest_digest = ? AND state = 'running'",
                )
                .bind(state)
                .bind(reason)
                .bind(now)
                .bind(&digest)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn retry_scan_job(
        &self,
        manifest_digest: &str,
        reason: &str,
        not_before: i64,
    ) -> Result<(), StoreError> {
        let (digest, reason) = (manifest_digest.to_owned(), reason.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE scan_jobs SET state = 'pending', reason = ?, not_before = ? \
                     WHERE manifest_digest = ? AND state = 'running'",
                )
                .bind(&reason)
                .bind(not_before)
                .bind(&digest)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn request_scan(
        &self,
        repository: &str,
        manifest_digest: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (repo, digest) = (repository.to_owned(), manifest_digest.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository = ? AND digest = ?")
                        .bind(&repo)
                        .bind(&digest)
                        .fetch_optional(&mut *conn)
                        .await?;
                if exists.is_none() {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO scan_jobs (manifest_digest, repository, state, attempts, queued_at) \
                     VALUES (?, ?, 'pending', 0, ?) \
                     ON CONFLICT (manifest_digest) DO UPDATE SET state = 'pending', reason = NULL, \
                     attempts = 0, not_before = NULL, queued_at = excluded.queued_at, repository = excluded.repository",
                )
                .bind(&digest)
                .bind(&repo)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn scan_job(&self, manifest_digest: &str) -> Result<Option<ScanJob>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM scan_jobs WHERE manifest_digest = ?"
        ))
        .bind(manifest_digest)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn layer_fragment(
        &self,
        diff_id: &str,
        analyzer: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT fragment FROM layer_fragments WHERE diff_id = ? AND analyzer = ?",
        )
        .bind(diff_id)
        .bind(analyzer)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn put_layer_fragment(
        &self,
        diff_id: &str,
        analyzer: &str,
        fragment: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (d, a, f) = (diff_id.to_owned(), analyzer.to_owned(), fragment.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO layer_fragments (diff_id, analyzer, fragment, created_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&d)
                .bind(&a)
                .bind(&f)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn layer_diff_id(&self, blob_digest: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT diff_id FROM layer_diff_ids WHERE blob_digest = ?")
                .bind(blob_digest)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn put_layer_diff_id(&self, blob_digest: &str, diff_id: &str) -> Result<(), StoreError> {
        let (b, d) = (blob_digest.to_owned(), diff_id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO layer_diff_ids (blob_digest, diff_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
                    .bind(&b)
                    .bind(&d)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn put_scan_result(&self, row: &ScanResultRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.write(move |conn| Box::pin(async move { upsert_result(conn, &row).await }))
            .await
    }

    async fn scan_result(
        &self,
        manifest_digest: &str,
    ) -> Result<Option<ScanResultRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            result_columns!(),
            " FROM scan_results WHERE manifest_digest = ?"
        ))
        .bind(manifest_digest)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(result_from_row).transpose()
    }

    async fn scan_results_after(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ScanResultRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            result_columns!(),
            " FROM scan_results WHERE manifest_digest > ? ORDER BY manifest_digest LIMIT ?"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(result_from_row).collect()
    }

    async fn record_rematch(
        &self,
        rows: Vec<RematchedRow>,
        changes: Vec<ScanChange>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            Box::pin(async move {
                for row in &rows {
                    sqlx::query(
                        "UPDATE scan_results SET db_version = ?, findings = ?, summary = ?, matched_at = ? \
                         WHERE manifest_digest = ?",
                    )
                    .bind(&row.db_version)
                    .bind(&row.findings)
                    .bind(&row.summary)
                    .bind(row.matched_at)
                    .bind(&row.manifest_digest)
                    .execute(&mut *conn)
                    .await?;
                }
                for c in &changes {
                    sqlx::query(
                        "INSERT INTO scan_changes (manifest_digest, from_db, to_db, added, removed, at) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&c.manifest_digest)
                    .bind(&c.from_db)
                    .bind(&c.to_db)
                    .bind(&c.added)
                    .bind(&c.removed)
                    .bind(c.at)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn scan_changes(
        &self,
        manifest_digest: &str,
        limit: u32,
    ) -> Result<Vec<ScanChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT manifest_digest, from_db, to_db, added, removed, at FROM scan_changes \
             WHERE manifest_digest = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(manifest_digest)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScanChange {
                    manifest_digest: r.try_get("manifest_digest")?,
                    from_db: r.try_get("from_db")?,
                    to_db: r.try_get("to_db")?,
                    added: r.try_get("added")?,
                    removed: r.try_get("removed")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}

async fn upsert_result(
    conn: &mut sqlx::SqliteConnection,
    row: &ScanResultRow,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO scan_results (",
        result_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (manifest_digest) DO UPDATE SET db_version = excluded.db_version, \
         inventory = excluded.inventory, findings = excluded.findings, summary = excluded.summary, \
         scanned_at = excluded.scanned_at, matched_at = excluded.matched_at"
    ))
    .bind(&row.manifest_digest)
    .bind(&row.db_version)
    .bind(&row.inventory)
    .bind(&row.findings)
    .bind(&row.summary)
    .bind(row.scanned_at)
    .bind(row.matched_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
