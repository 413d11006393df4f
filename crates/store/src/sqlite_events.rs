//! [`EventStore`] on SQLite: reads from the read pool, cursor writes through the writer task.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::events::{EventRow, EventStore};

#[async_trait]
impl EventStore for SqliteMetaStore {
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, type, repository, digest, tag, data, created_at FROM events \
             WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventRow {
                    seq: row.try_get("seq")?,
                    id: row.try_get("id")?,
                    kind: row.try_get("type")?,
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                    tag: row.try_get("tag")?,
                    data: row.try_get("data")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn cursor(&self, consumer: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM event_cursors WHERE consumer = ?")
                .bind(consumer)
                .fetch_optional(&self.read)
                .await?
                .unwrap_or(0),
        )
    }

    async fn advance_cursor(&self, consumer: &str, seq: i64, now: i64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO event_cursors (consumer, seq, updated_at) VALUES (?, ?, ?) \
                     ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at \
                     WHERE excluded.seq > event_cursors.seq",
                )
                .bind(&consumer)
                .bind(seq)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
