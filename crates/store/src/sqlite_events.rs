//! [`EventStore`] on SQLite: reads from the read pool, cursor writes through the writer task.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::events::{EventRow, EventStore, NewEvent};

/// The columns [`event_row`] reads (a macro, so queries stay `&'static str` for `concat!`).
macro_rules! columns {
    () => {
        "seq, id, type, repository, digest, tag, data, created_at, actor"
    };
}

fn event_row(row: &sqlx::sqlite::SqliteRow) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        repository: row.try_get("repository")?,
        digest: row.try_get("digest")?,
        tag: row.try_get("tag")?,
        data: row.try_get("data")?,
        created_at: row.try_get("created_at")?,
        actor: row.try_get("actor")?,
    })
}

#[async_trait]
impl EventStore for SqliteMetaStore {
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn append_event(&self, event: &NewEvent, now: i64) -> Result<EventRow, StoreError> {
        let event = event.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(concat!(
                    "INSERT INTO events (id, type, repository, digest, tag, data, created_at, actor) \
                     VALUES (lower(hex(randomblob(16))), ?, ?, ?, ?, json(?), ?, \
                     (SELECT actor FROM request_context WHERE id = 1)) RETURNING ",
                    columns!()
                ))
                .bind(&event.kind)
                .bind(&event.repository)
                .bind(&event.digest)
                .bind(&event.tag)
                .bind(&event.data)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                event_row(&row)
            })
        })
        .await
    }

    async fn events_for_digest(
        &self,
        digest: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE digest = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(digest)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event_row).collect()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.subscribe_commits()
    }

    async fn last_event_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
                .fetch_one(&self.read)
                .await?,
        )
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
