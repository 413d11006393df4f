//! SQLite rpm databases (`rpmdb.sqlite`, rpm ≥ 4.16: Fedora 33+, RHEL 9, CBL-Mariner / Azure
//! Linux): the table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)` holds one header blob per
//! instance number `hnum`; the other tables are rpm's indexes and are not needed.
//!
//! SQLite's own engine reads the file (rusqlite over the bundled libsqlite3), because a B-tree
//! file format is not something to re-implement. The bytes never touch the disk: they are
//! copied into SQLite's in-memory VFS with `sqlite3_deserialize` (read-only), and the
//! connection is hardened before the hostile schema is parsed, following SQLite's "Defense
//! Against The Dark Arts" guidance (<https://sqlite.org/security.html>):
//!
//! - `SQLITE_DBCONFIG_DEFENSIVE` on, `SQLITE_DBCONFIG_TRUSTED_SCHEMA` off, triggers and views
//!   disabled, `PRAGMA query_only` and `PRAGMA cell_size_check` on; extensions cannot load
//!   (the feature is not compiled into rusqlite here and is off by default in SQLite);
//! - `SQLITE_LIMIT_LENGTH` caps any single value, so a corrupt record cannot make SQLite
//!   allocate more than the header limit; `SQLITE_LIMIT_SQL_LENGTH` caps every statement,
//!   including the `CREATE` statements of the stored schema, because compiling a huge
//!   expression (say, a generated column with thousands of `CASE` arms) takes time that grows
//!   faster than its length and that no progress handler sees;
//! - a progress handler aborts the scan after a budget of virtual-machine instructions
//!   proportional to the package limit, so expressions in the schema or a corrupt B-tree
//!   cannot keep it busy;
//! - `Packages` must be an ordinary table, not a view or a virtual table.
//!
//! rpm keeps the database in WAL mode, which SQLite's in-memory VFS cannot open; the copy
//! therefore gets the file-format bytes 18 and 19 ("1 for legacy; 2 for WAL", SQLite file
//! format §1.3.4) set to legacy. Transactions still sitting in a separate `-wal` file are not
//! part of the input and are not seen.

use super::{RpmDbError, RpmDbLimits, Visit};
use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::types::{Type, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";
const FILE_HEADER_LEN: usize = 100;
/// "File format write version" and "read version": 1 for legacy, 2 for WAL.
const FORMAT_VERSION_OFFSETS: [usize; 2] = [18, 19];
const FORMAT_LEGACY: u8 = 1;
const FORMAT_WAL: u8 = 2;

/// The progress handler runs every this many virtual-machine instructions. Reading one row of
/// a real `Packages` table takes about ten, so the budget allows one run per permitted package
/// plus [`BUDGET_SLACK`] runs for the schema look-up: a hundredfold margin that still stops a
/// hostile database within well under a second per thousand packages.
const PROGRESS_INTERVAL: i32 = 1_000;
const BUDGET_SLACK: u64 = 100;
/// Schema text goes through the same length limit as blobs, so it never drops below this.
const MIN_VALUE_LENGTH_LIMIT: usize = 1 << 20;
/// rpm's longest schema statement is about 200 bytes.
const MAX_STATEMENT_LENGTH: i32 = 64 << 10;

/// Why an SQLite rpm database could not be read.
#[derive(Debug, Error)]
pub enum SqliteError {
    #[error("file is {len} bytes, shorter than the 100-byte SQLite header")]
    TruncatedHeader { len: usize },
    #[error("the database has no Packages table")]
    NoPackagesTable,
    #[error("Packages is a {kind}, not an ordinary table as rpm creates it")]
    NotATable { kind: String },
    #[error("Packages row with hnum {hnum} is outside the 32-bit instance range")]
    InstanceRange { hnum: i64 },
    #[error("Packages row {hnum} holds a {found} in its blob column")]
    NotABlob { hnum: i64, found: Type },
    #[error("the query exceeded its budget of {instructions} SQLite instructions")]
    WorkBudget { instructions: u64 },
    #[error(transparent)]
    Engine(#[from] rusqlite::Error),
}

pub(super) fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Calls `visit` for every row of `Packages`, in table order (ascending `hnum`).
pub(super) fn for_each_header(
    bytes: &[u8],
    limits: &RpmDbLimits,
    visit: &mut Visit<'_>,
) -> Result<(), RpmDbError> {
    let max_progress_calls = (limits.max_packages as u64).saturating_add(BUDGET_SLACK);
    let (conn, exhausted) = open(bytes, limits.max_header_bytes, max_progress_calls)?;
    // An interrupted statement fails with a generic SQLite error; name the cause.
    let engine_error = |err: rusqlite::Error| -> SqliteError {
        if exhausted.load(Ordering::Relaxed) {
            SqliteError::WorkBudget {
                instructions: max_progress_calls.saturating_mul(PROGRESS_INTERVAL as u64),
            }
        } else {
            SqliteError::Engine(err)
        }
    };
    check_packages_table(&conn).map_err(|err| match err {
        SqliteError::Engine(inner) => engine_error(inner),
        other => other,
    })?;
    let mut statement = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .map_err(engine_error)?;
    let mut rows = statement.query([]).map_err(engine_error)?;
    while let Some(row) = rows.next().map_err(engine_error)? {
        let hnum: i64 = row.get(0).map_err(engine_error)?;
        let instance = u32::try_from(hnum).map_err(|_| SqliteError::InstanceRange { hnum })?;
        match row.get_ref(1).map_err(engine_error)? {
            ValueRef::Blob(blob) => visit(instance, blob)?,
            other => {
                return Err(SqliteError::NotABlob {
                    hnum,
                    found: other.data_type(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Opens a hardened, read-only, in-memory copy of the database. The flag turns true when the
/// progress handler aborted a statement.
fn open(
    bytes: &[u8],
    max_value_len: usize,
    max_progress_calls: u64,
) -> Result<(Connection, Arc<AtomicBool>), SqliteError> {
    let file_header: [u8; FILE_HEADER_LEN] = bytes
        .get(..FILE_HEADER_LEN)
        .and_then(|head| head.try_into().ok())
        .ok_or(SqliteError::TruncatedHeader { len: bytes.len() })?;
    let file_header = without_wal(file_header);

    let mut conn = Connection::open_in_memory_with_flags(
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    let value_limit = max_value_len
        .max(MIN_VALUE_LENGTH_LIMIT)
        .try_into()
        .unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, value_limit)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_STATEMENT_LENGTH)?;

    let rest = bytes.get(FILE_HEADER_LEN..).unwrap_or_default();
    conn.deserialize_read_exact(
        "main",
        file_header.as_slice().chain(rest),
        bytes.len(),
        true,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cell_size_check", true)?;

    let exhausted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&exhausted);
    let mut calls: u64 = 0;
    conn.progress_handler(
        PROGRESS_INTERVAL,
        Some(move || {
            calls += 1;
            let abort = calls > max_progress_calls;
            if abort {
                flag.store(true, Ordering::Relaxed);
            }
            abort
        }),
    )?;
    Ok((conn, exhausted))
}

/// The file header with the WAL markers replaced by legacy ones.
fn without_wal(mut file_header: [u8; FILE_HEADER_LEN]) -> [u8; FILE_HEADER_LEN] {
    for offset in FORMAT_VERSION_OFFSETS {
        if let Some(version) = file_header.get_mut(offset)
            && *version == FORMAT_WAL
        {
            *version = FORMAT_LEGACY;
        }
    }
    file_header
}

/// `Packages` must exist as an ordinary table. The check reads `sqlite_schema` directly:
/// `pragma_table_list` would compile every view of the hostile schema to count its columns.
/// A virtual table is also stored with type `table`; its statement reads `CREATE VIRTUAL
/// TABLE`, so anything but the plain `CREATE TABLE` rpm writes is refused (SQLite only loads
/// schema statements that begin with `CREATE`, so no comment can precede it).
fn check_packages_table(conn: &Connection) -> Result<(), SqliteError> {
    let entry: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT type, sql FROM sqlite_schema WHERE name = 'Packages' COLLATE NOCASE",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (kind, sql) = entry.ok_or(SqliteError::NoPackagesTable)?;
    let mut words = sql.as_deref().unwrap_or_default().split_ascii_whitespace();
    let plain_create_table = matches!(
        (words.next(), words.next()),
        (Some(create), Some(table))
            if create.eq_ignore_ascii_case("CREATE") && table.eq_ignore_ascii_case("TABLE")
    );
    match (kind.as_str(), plain_create_table) {
        ("table", true) => Ok(()),
        ("table", false) => Err(SqliteError::NotATable {
            kind: "virtual table".into(),
        }),
        _ => Err(SqliteError::NotATable { kind }),
    }
}
