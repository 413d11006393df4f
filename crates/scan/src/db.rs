//! The vulnerability DB: one SQLite file, built offline from advisory sources and opened
//! read-only by the scanner. Indexed by (ecosystem with release, package name), so matching a
//! package is one index lookup. The file records its schema version, build time and the
//! SHA-256 of every input it was built from, so a result can say exactly which data produced
//! it.
//!
//! Layout (schema version [`SCHEMA_VERSION`]):
//! - `metadata(key, value)`: `schema_version`, `built_at` (RFC 3339), `builder`.
//! - `sources(name, format, sha256, records, skipped)`: one row per input.
//! - `advisories(id, advisory_id, source, document)`: the advisory without its affected list,
//!   as JSON.
//! - `affected(ecosystem, name, advisory, document)`: one row per affected package, JSON.
//! - `aliases(alias, advisory)`: every id and alias, for VEX lookups and merging.
//! - `vex(vulnerability, document)`: vendor VEX statements, one row per vulnerability name or
//!   alias.
//!
//! A build writes a temporary file beside the output and renames it into place when complete,
//! so a reader never sees half a DB. The same inputs in the same order give the same file,
//! byte for byte, when `SOURCE_DATE_EPOCH` fixes the build time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::advisory::{Advisory, AffectedPackage, VexStatement};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the vulnerability DB {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} is not a Bonded vulnerability DB (no metadata table)")]
    NotADb { path: PathBuf },
    #[error("{path} has schema version {found}; this build reads version {SCHEMA_VERSION}")]
    SchemaVersion { path: PathBuf, found: String },
    #[error("vulnerability DB query failed: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("a record in the vulnerability DB is not valid JSON: {0}")]
    Document(#[from] serde_json::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The SHA-256 (hex) of a build input: of the file, or for a directory (an OSV checkout) of
/// the sorted list of its files' relative paths and digests, so the same tree gives the same
/// value wherever it lies.
pub fn input_digest(path: &Path) -> std::io::Result<String> {
    fn file_digest(path: &Path) -> std::io::Result<oci::Digest> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = oci::Hasher::new(oci::Algorithm::Sha256);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                return Ok(hasher.finish());
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
    }
    if !path.is_dir() {
        return Ok(file_digest(path)?.hex().to_owned());
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut hasher = oci::Hasher::new(oci::Algorithm::Sha256);
    for f in files {
        let rel = f.strip_prefix(path).unwrap_or(&f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        hasher.update(file_digest(&f)?.hex().as_bytes());
    }
    Ok(hasher.finish().hex().to_owned())
}

/// Metadata about one input of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub format: String,
    pub sha256: String,
    pub records: u64,
    pub skipped: u64,
}

/// What `bonded db info` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInfo {
    pub schema_version: u32,
    pub built_at: String,
    /// A digest of the file's content rows, used to say which DB produced a result.
    pub version: String,
    pub sources: Vec<SourceInfo>,
    pub advisories: u64,
    pub affected_packages: u64,
    pub vex_statements: u64,
    pub ecosystems: Vec<(String, u64)>,
}

/// Writes a new DB. Dropping it without [`DbBuilder::finish`] leaves no output file.
pub struct DbBuilder {
    conn: Connection,
    temp: tempfile::TempPath,
    out: PathBuf,
    next_advisory: i64,
}

impl DbBuilder {
    pub fn create(out: &Path) -> Result<DbBuilder, DbError> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new()
            .prefix(".bonded-db-")
            .tempfile_in(dir)
            .map_err(|source| DbError::Write {
                path: out.to_owned(),
                source,
            })?
            .into_temp_path();
        let conn = Connection::open(&temp).map_err(|source| DbError::Open {
            path: temp.to_path_buf(),
            source,
        })?;
        conn.execute_batch(
            "PRAGMA page_size = 4096;
             PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             BEGIN;
             CREATE TABLE metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
             CREATE TABLE sources (name TEXT NOT NULL, format TEXT NOT NULL, sha256 TEXT NOT NULL,
                                   records INTEGER NOT NULL, skipped INTEGER NOT NULL) STRICT;
             CREATE TABLE advisories (id INTEGER PRIMARY KEY, advisory_id TEXT NOT NULL,
                                      source TEXT NOT NULL, document TEXT NOT NULL) STRICT;
             CREATE TABLE affected (ecosystem TEXT NOT NULL, name TEXT NOT NULL,
                                    advisory INTEGER NOT NULL, document TEXT NOT NULL) STRICT;
             CREATE TABLE aliases (alias TEXT NOT NULL, advisory INTEGER NOT NULL) STRICT;
             CREATE TABLE vex (vulnerability TEXT NOT NULL, document TEXT NOT NULL) STRICT;",
        )?;
        Ok(DbBuilder {
            conn,
            temp,
            out: out.to_owned(),
            next_advisory: 1,
        })
    }

    pub fn add_advisory(&mut self, advisory: &Advisory) -> Result<(), DbError> {
        let id = self.next_advisory;
        self.next_advisory += 1;
        // The affected list lives in its own table; the advisory row keeps the rest.
        let mut head = advisory.clone();
        head.affected.clear();
        self.conn
            .prepare_cached("INSERT INTO advisories (id, advisory_id, source, document) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, advisory.id, advisory.source, serde_json::to_string(&head)?])?;
        let mut alias = self
            .conn
            .prepare_cached("INSERT INTO aliases (alias, advisory) VALUES (?1, ?2)")?;
        alias.execute(params![advisory.id, id])?;
        for a in &advisory.aliases {
            alias.execute(params![a, id])?;
        }
        let mut affected = self.conn.prepare_cached(
            "INSERT INTO affected (ecosystem, name, advisory, document) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for package in &advisory.affected {
            affected.execute(params![
                package.ecosystem,
                package.name,
                id,
                serde_json::to_string(package)?
            ])?;
        }
        Ok(())
    }

    pub fn add_vex(&mut self, statement: &VexStatement) -> Result<(), DbError> {
        let document = serde_json::to_string(statement)?;
        let mut insert = self
            .conn
            .prepare_cached("INSERT INTO vex (vulnerability, document) VALUES (?1, ?2)")?;
        insert.execute(params![statement.vulnerability, document])?;
        for alias in &statement.aliases {
            insert.execute(params![alias, document])?;
        }
        Ok(())
    }

    pub fn add_source(&mut self, source: &SourceInfo) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO sources (name, format, sha256, records, skipped) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                source.name,
                source.format,
                source.sha256,
                source.records as i64,
                source.skipped as i64
            ],
        )?;
        Ok(())
    }

    /// Indexes, records the metadata, compacts, and moves the file into place.
    pub fn finish(self, built_at: &str) -> Result<(), DbError> {
        self.conn.execute_batch(
            "CREATE INDEX affected_by_package ON affected (ecosystem, name);
             CREATE INDEX aliases_by_alias ON aliases (alias);
             CREATE INDEX vex_by_vulnerability ON vex (vulnerability);",
        )?;
        let mut meta = self
            .conn
            .prepare("INSERT INTO metadata (key, value) VALUES (?1, ?2)")?;
        meta.execute(params!["schema_version", SCHEMA_VERSION.to_string()])?;
        meta.execute(params!["built_at", built_at])?;
        meta.execute(params![
            "builder",
            concat!("bonded ", env!("CARGO_PKG_VERSION"))
        ])?;
        drop(meta);
        self.conn.execute_batch("COMMIT; VACUUM;")?;
        self.conn
            .close()
            .map_err(|(_, source)| DbError::Query(source))?;
        self.temp.persist(&self.out).map_err(|e| DbError::Write {
            path: self.out.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// One affected-package row with the advisory it belongs to.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub advisory: Arc<Advisory>,
    pub package: Arc<AffectedPackage>,
}

/// A DB opened for reading.
pub struct VulnDb {
    conn: Connection,
    path: PathBuf,
    heads: std::sync::Mutex<HashMap<i64, Arc<Advisory>>>,
    /// Candidates already read, so re-matching many inventories reads each package's rows
    /// once. Cleared when it holds [`MEMO_LIMIT`] packages.
    memo: std::sync::Mutex<HashMap<PackageKey, Arc<Vec<Candidate>>>>,
    /// What the matcher decided for one installed version of a package, so the same package
    /// in many images is evaluated once.
    pub(crate) verdicts: std::sync::Mutex<HashMap<VersionKey, Arc<Vec<crate::matcher::Verdict>>>>,
    /// Whether the DB holds any vendor VEX statement (most do not).
    has_vex: bool,
    version: String,
}

/// (ecosystem, package name, installed version).
pub(crate) type VersionKey = (String, String, String);

/// (ecosystem, package name).
type PackageKey = (String, String);

/// A path as the path part of an SQLite URI (`file:` URIs, sqlite.org/uri.html): `%`, `?`
/// and `#` would end or change it, so they are percent-encoded.
fn uri_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Packages whose candidates [`VulnDb`] keeps in memory at most.
const MEMO_LIMIT: usize = 100_000;

impl VulnDb {
    pub fn open(path: &Path) -> Result<VulnDb, DbError> {
        // `immutable=1`: the file never changes under a reader (builds and updates replace it
        // by rename), so SQLite skips locking and change checks on every query.
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let conn = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|source| DbError::Open {
            path: path.to_owned(),
            source,
        })?;
        let schema: Option<String> = conn
            .query_row(
                "SELECT value FROM metadata WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|_| DbError::NotADb {
                path: path.to_owned(),
            })?;
        match schema {
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(found) => {
                return Err(DbError::SchemaVersion {
                    path: path.to_owned(),
                    found,
                });
            }
            None => {
                return Err(DbError::NotADb {
                    path: path.to_owned(),
                });
            }
        }
        let version = Self::content_version(&conn)?;
        let has_vex = conn.query_row("SELECT EXISTS (SELECT 1 FROM vex)", [], |r| {
            r.get::<_, bool>(0)
        })?;
        Ok(VulnDb {
            conn,
            path: path.to_owned(),
            heads: std::sync::Mutex::new(HashMap::new()),
            memo: std::sync::Mutex::new(HashMap::new()),
            verdicts: std::sync::Mutex::new(HashMap::new()),
            has_vex,
            version,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Identifies the data: the build time and a digest over the source digests, e.g.
    /// `2026-11-25T10:00:00Z/1a2b3c4d5e6f`.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn content_version(conn: &Connection) -> Result<String, DbError> {
        let built_at: String = conn.query_row(
            "SELECT value FROM metadata WHERE key = 'built_at'",
            [],
            |r| r.get(0),
        )?;
        let mut hasher = oci::Hasher::new(oci::Algorithm::Sha256);
        let mut stmt = conn.prepare("SELECT name, sha256 FROM sources ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (name, sha) = row?;
            hasher.update(name.as_bytes());
            hasher.update(&[0]);
            hasher.update(sha.as_bytes());
            hasher.update(&[0]);
        }
        let digest = hasher.finish().hex().to_owned();
        Ok(format!("{built_at}/{}", &digest[..12]))
    }

    /// Every affected-package row for `(ecosystem, name)`.
    pub fn candidates(&self, ecosystem: &str, name: &str) -> Result<Arc<Vec<Candidate>>, DbError> {
        let key = (ecosystem.to_owned(), name.to_owned());
        if let Some(found) = self.memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(found);
        }
        let found = Arc::new(self.read_candidates(ecosystem, name)?);
        if let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
            memo.insert(key, found.clone());
        }
        Ok(found)
    }

    fn read_candidates(&self, ecosystem: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT advisory, document FROM affected WHERE ecosystem = ?1 AND name = ?2 ORDER BY rowid",
        )?;
        let rows: Vec<(i64, String)> = stmt
            .query_map(params![ecosystem, name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (advisory, document) in rows {
            out.push(Candidate {
                advisory: self.head(advisory)?,
                package: Arc::new(serde_json::from_str(&document)?),
            });
        }
        Ok(out)
    }

    fn head(&self, id: i64) -> Result<Arc<Advisory>, DbError> {
        if let Some(head) = self.heads.lock().ok().and_then(|h| h.get(&id).cloned()) {
            return Ok(head);
        }
        let document: String = self
            .conn
            .prepare_cached("SELECT document FROM advisories WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))?;
        let head = Arc::new(serde_json::from_str::<Advisory>(&document)?);
        if let Ok(mut heads) = self.heads.lock() {
            heads.insert(id, head.clone());
        }
        Ok(head)
    }

    /// Whether the DB has any advisory for this ecosystem key.
    pub fn has_ecosystem(&self, ecosystem: &str) -> Result<bool, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM affected WHERE ecosystem = ?1)")?
            .query_row(params![ecosystem], |r| r.get::<_, bool>(0))?)
    }

    /// Vendor VEX statements about a vulnerability id or any of its aliases.
    pub fn vex_statements(&self, ids: &[String]) -> Result<Vec<VexStatement>, DbError> {
        if !self.has_vex {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT document FROM vex WHERE vulnerability = ?1")?;
        let mut out: Vec<VexStatement> = Vec::new();
        for id in ids {
            let docs: Vec<String> = stmt
                .query_map(params![id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for d in docs {
                let statement: VexStatement = serde_json::from_str(&d)?;
                if !out.contains(&statement) {
                    out.push(statement);
                }
            }
        }
        Ok(out)
    }

    pub fn info(&self) -> Result<DbInfo, DbError> {
        let count = |sql: &str| -> Result<u64, DbError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let built_at: String = self.conn.query_row(
            "SELECT value FROM metadata WHERE key = 'built_at'",
            [],
            |r| r.get(0),
        )?;
        let mut stmt = self
            .conn
            .prepare("SELECT name, format, sha256, records, skipped FROM sources ORDER BY rowid")?;
        let sources = stmt
            .query_map([], |r| {
                Ok(SourceInfo {
                    name: r.get(0)?,
                    format: r.get(1)?,
                    sha256: r.get(2)?,
                    records: r.get::<_, i64>(3)? as u64,
                    skipped: r.get::<_, i64>(4)? as u64,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT ecosystem, COUNT(*) FROM affected GROUP BY ecosystem ORDER BY ecosystem",
        )?;
        let ecosystems = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<Result<_, _>>()?;
        Ok(DbInfo {
            schema_version: SCHEMA_VERSION,
            built_at,
            version: self.version.clone(),
            sources,
            advisories: count("SELECT COUNT(*) FROM advisories")?,
            affected_packages: count("SELECT COUNT(*) FROM affected")?,
            vex_statements: count("SELECT COUNT(DISTINCT document) FROM vex")?,
            ecosystems,
        })
    }
}
