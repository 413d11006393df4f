//! [`AuditStore`] on SQLite (migration `0006_audit.sql`): appends through the writer task,
//! reads from the read pool; and [`SqliteAuditReader`], the same reads on one snapshot of a
//! database opened read-only, for the offline verifier (`bonded audit verify --data-dir`).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Connection, Executor, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::Mutex;

use super::SqliteMetaStore;
use crate::StoreError;
use crate::audit::{
    AuditCheckpointRow, AuditEntryRow, AuditLeafRow, AuditQuery, AuditReader, AuditStore, LeafHash,
    MAX_AUDIT_PAGE, NewAuditEntry,
};

/// The audit log of a Bonded database opened read-only, as one snapshot: every read sees the
/// database as it was when it was opened, even while a server appends, so entries, leaves
/// and checkpoints read one after another always belong together. It never migrates, never
/// writes, and refuses a database without the audit tables.
#[derive(Debug)]
pub struct SqliteAuditReader {
    /// One connection inside one read transaction.
    snapshot: Mutex<SqliteConnection>,
}

impl SqliteAuditReader {
    /// Opens the database file at `path` read-only and takes its snapshot.
    pub async fn open(path: &Path) -> Result<SqliteAuditReader, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        // A deferred transaction takes its snapshot at its first read, the query below.
        sqlx::query("BEGIN").execute(&mut conn).await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('audit_entries', 'audit_leaves', 'audit_checkpoints')",
        )
        .fetch_one(&mut conn)
        .await?;
        if tables != 3 {
            return Err(StoreError::Corrupt {
                what: format!(
                    "{} has no audit log tables: it is not a Bonded database, or one made \
                     before the audit log existed",
                    path.display()
                ),
            });
        }
        Ok(SqliteAuditReader {
            snapshot: Mutex::new(conn),
        })
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn hash_column(row: &SqliteRow, column: &str, what: &str) -> Result<LeafHash, StoreError> {
    let bytes: Vec<u8> = row.try_get(column)?;
    LeafHash::try_from(bytes.as_slice())
        .map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

fn entry_row(row: &SqliteRow) -> Result<AuditEntryRow, StoreError> {
    Ok(AuditEntryRow {
        seq: row.try_get("seq")?,
        event_id: row.try_get("event_id")?,
        entry: row.try_get("entry")?,
    })
}

fn leaf_row(row: &SqliteRow) -> Result<AuditLeafRow, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    Ok(AuditLeafRow {
        seq,
        hash: hash_column(row, "hash", &format!("the leaf hash at {seq}"))?,
    })
}

fn checkpoint_row(row: &SqliteRow) -> Result<AuditCheckpointRow, StoreError> {
    let size: i64 = row.try_get("size")?;
    Ok(AuditCheckpointRow {
        root: hash_column(row, "root", &format!("the root of checkpoint {size}"))?,
        size,
        origin: row.try_get("origin")?,
        time: row.try_get("time")?,
        key_id: row.try_get("key_id")?,
        signature: row.try_get("signature")?,
    })
}

fn page_limit(limit: u32) -> i64 {
    i64::from(limit.min(MAX_AUDIT_PAGE))
}

/// The actor object when it is valid JSON (a row edited behind the store's back may not be,
/// and must not make every filtered query fail).
const ACTOR_JSON: &str = "(CASE WHEN json_valid(actor) THEN actor END)";
/// The actor's address (`addr`), or null.
const ACTOR_ADDR: &str = "json_extract((CASE WHEN json_valid(actor) THEN actor END), '$.addr')";

/// The `WHERE` clause of an entry query.
fn push_filters(sql: &mut QueryBuilder<Sqlite>, query: &AuditQuery) {
    sql.push(" WHERE seq >= ").push_bind(query.start);
    if let Some(end) = query.end {
        sql.push(" AND seq < ").push_bind(end);
    }
    if let Some(repository) = &query.repository {
        sql.push(" AND repository = ").push_bind(repository.clone());
    }
    if let Some(digest) = &query.digest {
        sql.push(" AND digest = ").push_bind(digest.clone());
    }
    if let Some(action) = &query.action {
        sql.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(since) = query.since {
        sql.push(" AND time >= ").push_bind(since);
    }
    if let Some(until) = query.until {
        sql.push(" AND time <= ").push_bind(until);
    }
    if let Some(actor) = &query.actor {
        sql.push(format_args!(
            " AND EXISTS (SELECT 1 FROM json_each({ACTOR_JSON}) WHERE instr(CAST(value AS TEXT), "
        ))
        .push_bind(actor.clone())
        .push(") > 0)");
    }
    if let Some(addr) = &query.addr {
        // The stored address carries the port: `192.0.2.7:5123` or `[2001:db8::1]:5123`.
        let with_port = format!("{addr}:");
        let bracketed = format!("[{addr}]:");
        sql.push(format_args!(" AND ({ACTOR_ADDR} = "))
            .push_bind(addr.clone());
        for prefix in [with_port, bracketed] {
            sql.push(format_args!(" OR substr({ACTOR_ADDR}, 1, length("))
                .push_bind(prefix.clone())
                .push(")) = ")
                .push_bind(prefix);
        }
        sql.push(")");
    }
}

async fn entries<'e>(
    pool: impl Executor<'e, Database = Sqlite>,
    query: &AuditQuery,
) -> Result<Vec<AuditEntryRow>, StoreError> {
    let mut sql = QueryBuilder::<Sqlite>::new("SELECT seq, event_id, entry FROM audit_entries");
    push_filters(&mut sql, query);
    sql.push(" ORDER BY seq LIMIT ")
        .push_bind(page_limit(query.limit));
    let rows = sql.build().fetch_all(pool).await?;
    rows.iter().map(entry_row).collect()
}

async fn event_seq<'e>(
    pool: impl Executor<'e, Database = Sqlite>,
    event_id: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT seq FROM audit_entries WHERE event_id = ?")
            .bind(event_id)
            .fetch_optional(pool)
            .await?,
    )
}

async fn leaves<'e>(
    pool: impl Executor<'e, Database = Sqlite>,
    start: i64,
    end: i64,
    limit: u32,
) -> Result<Vec<AuditLeafRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, hash FROM audit_leaves WHERE seq >= ? AND seq < ? ORDER BY seq LIMIT ?",
    )
    .bind(start)
    .bind(end)
    .bind(page_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(leaf_row).collect()
}

async fn tree_size<'e>(pool: impl Executor<'e, Database = Sqlite>) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM audit_leaves")
            .fetch_one(pool)
            .await?,
    )
}

async fn latest_checkpoint<'e>(
    pool: impl Executor<'e, Database = Sqlite>,
) -> Result<Option<AuditCheckpointRow>, StoreError> {
    sqlx::query(
        "SELECT size, origin, root, time, key_id, signature FROM audit_checkpoints \
         ORDER BY size DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(checkpoint_row)
    .transpose()
}

async fn checkpoints<'e>(
    pool: impl Executor<'e, Database = Sqlite>,
    from_size: i64,
    limit: u32,
) -> Result<Vec<AuditCheckpointRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT size, origin, root, time, key_id, signature FROM audit_checkpoints \
         WHERE size >= ? ORDER BY size LIMIT ?",
    )
    .bind(from_size)
    .bind(page_limit(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(checkpoint_row).collect()
}

/// The read methods of `$type`, whose executor `$executor` is reached from `$this` (`self`):
/// the read pool of the server's store, the snapshot connection of the offline reader.
macro_rules! audit_reader {
    ($type:ty, |$this:ident| $executor:expr) => {
        #[async_trait]
        impl AuditReader for $type {
            async fn audit_entries(
                &self,
                query: &AuditQuery,
            ) -> Result<Vec<AuditEntryRow>, StoreError> {
                let $this = self;
                entries($executor, query).await
            }

            async fn audit_event_seq(&self, event_id: &str) -> Result<Option<i64>, StoreError> {
                let $this = self;
                event_seq($executor, event_id).await
            }

            async fn audit_leaves(
                &self,
                start: i64,
                end: i64,
                limit: u32,
            ) -> Result<Vec<AuditLeafRow>, StoreError> {
                let $this = self;
                leaves($executor, start, end, limit).await
            }

            async fn audit_tree_size(&self) -> Result<i64, StoreError> {
                let $this = self;
                tree_size($executor).await
            }

            async fn latest_audit_checkpoint(
                &self,
            ) -> Result<Option<AuditCheckpointRow>, StoreError> {
                let $this = self;
                latest_checkpoint($executor).await
            }

            async fn audit_checkpoints(
                &self,
                from_size: i64,
                limit: u32,
            ) -> Result<Vec<AuditCheckpointRow>, StoreError> {
                let $this = self;
                checkpoints($executor, from_size, limit).await
            }
        }
    };
}

audit_reader!(SqliteMetaStore, |this| &this.read);
audit_reader!(SqliteAuditReader, |this| &mut *this.snapshot.lock().await);

/// Rows per multi-row `INSERT` (8 bound values each) and ids per `IN` list: few statements
/// per batch, well below SQLite's limit of 32,766 bound values.
const ROWS_PER_INSERT: usize = 100;
const IDS_PER_QUERY: usize = 500;

/// The event ids of `entries` already in the log.
async fn known_events<'a>(
    conn: &mut SqliteConnection,
    entries: &'a [NewAuditEntry],
) -> Result<HashSet<&'a str>, StoreError> {
    let mut known = HashSet::new();
    for chunk in entries.chunks(IDS_PER_QUERY) {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT event_id FROM audit_entries WHERE event_id IN (");
        let mut ids = sql.separated(", ");
        for entry in chunk {
            ids.push_bind(entry.event_id.clone());
        }
        sql.push(")");
        let found: Vec<String> = sql.build_query_scalar().fetch_all(&mut *conn).await?;
        let found: HashSet<&str> = found.iter().map(String::as_str).collect();
        known.extend(
            chunk
                .iter()
                .map(|entry| entry.event_id.as_str())
                .filter(|id| found.contains(id)),
        );
    }
    Ok(known)
}

/// Writes each entry and its leaf hash at the index it was given.
async fn insert_entries(
    conn: &mut SqliteConnection,
    fresh: &[(i64, &NewAuditEntry)],
) -> Result<(), StoreError> {
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_entries \
             (seq, event_id, entry, time, action, repository, digest, actor) ",
        );
        sql.push_values(chunk, |mut row, (seq, entry)| {
            row.push_bind(*seq)
                .push_bind(entry.event_id.clone())
                .push_bind(entry.entry.clone())
                .push_bind(entry.time)
                .push_bind(entry.action.clone())
                .push_bind(entry.repository.clone())
                .push_bind(entry.digest.clone())
                .push_bind(entry.actor.clone());
        });
        sql.build().execute(&mut *conn).await?;
        let mut sql = QueryBuilder::<Sqlite>::new("INSERT INTO audit_leaves (seq, hash) ");
        sql.push_values(chunk, |mut row, (seq, entry)| {
            row.push_bind(*seq).push_bind(entry.leaf_hash.to_vec());
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for SqliteMetaStore {
    async fn append_audit_entries(
        &self,
        entries: &[NewAuditEntry],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let entries = entries.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                // The next index follows the last recorded leaf, not the last entry row: an
                // entry deleted behind our back must not let a new one take its index.
                let mut next: i64 =
                    sqlx::query_scalar("SELECT coalesce(max(seq) + 1, 0) FROM audit_leaves")
                        .fetch_one(&mut *conn)
                        .await?;
                let mut taken = known_events(conn, &entries).await?;
                let mut given = Vec::with_capacity(entries.len());
                let mut fresh = Vec::with_capacity(entries.len());
                for entry in &entries {
                    if taken.insert(entry.event_id.as_str()) {
                        fresh.push((next, entry));
                        given.push(Some(next));
                        next += 1;
                    } else {
                        given.push(None);
                    }
                }
                insert_entries(conn, &fresh).await?;
                Ok(given)
            })
        })
        .await
    }

    async fn put_audit_checkpoint(
        &self,
        checkpoint: &AuditCheckpointRow,
    ) -> Result<bool, StoreError> {
        let checkpoint = checkpoint.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO audit_checkpoints (size, origin, root, time, key_id, signature) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (size) DO NOTHING",
                )
                .bind(checkpoint.size)
                .bind(&checkpoint.origin)
                .bind(&checkpoint.root[..])
                .bind(checkpoint.time)
                .bind(&checkpoint.key_id)
                .bind(&checkpoint.signature)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }
}
