//! A real Bonded data directory for the tests: `bonded.db` (SQLite, every migration), the
//! server key with `trust/server.pub`, outbox events written through the store, and an
//! [`AuditLog`] over it. Tampering goes through a separate SQLite connection, behind the
//! log's back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use audit::AuditLog;
use sqlx::Connection as _;
use store::context::{Actor, scope};
use store::{Durability, EventRow, EventStore, NewEvent, SqliteMetaStore};
use tempfile::TempDir;
use trust::keys::{KeyAlgorithm, SigningKey};

pub const ORIGIN: &str = "bonded.test/audit";

pub struct DataDir {
    pub dir: TempDir,
    pub store: SqliteMetaStore,
    pub key: Arc<SigningKey>,
    pub log: Arc<AuditLog>,
}

impl DataDir {
    pub async fn new() -> DataDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), Durability::Relaxed)
            .await
            .expect("open the store");
        let key = Arc::new(SigningKey::generate(KeyAlgorithm::EcdsaP256));
        std::fs::create_dir_all(dir.path().join("trust")).expect("trust dir");
        std::fs::write(
            dir.path().join("trust").join("server.pub"),
            key.public_key().to_pem(),
        )
        .expect("server.pub");
        let log = Arc::new(
            AuditLog::new(Arc::new(store.clone()), key.clone(), ORIGIN).expect("audit log"),
        );
        DataDir {
            dir,
            store,
            key,
            log,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("bonded.db")
    }

    /// A second audit log over the same store, as after a restart.
    pub fn restarted_log(&self) -> AuditLog {
        AuditLog::new(Arc::new(self.store.clone()), self.key.clone(), ORIGIN).expect("audit log")
    }

    /// Writes `count` outbox events of every kind the audit log sees, some made for a
    /// request (with an actor), and returns them as stored.
    pub async fn record(&self, count: usize) -> Vec<EventRow> {
        let mut written = Vec::with_capacity(count);
        for n in 0..count {
            let event = sample_event(n);
            let stored = if n % 3 == 0 {
                self.store.append_event(&event, 1_700_000_000).await
            } else {
                let actor = Actor {
                    addr: Some(format!("192.0.2.{}:5{n:03}", n % 7)),
                    user_agent: Some("skopeo/1.9".into()),
                    request_id: Some(format!("req-{n}")),
                };
                scope(
                    actor,
                    self.store.append_event(&event, 1_700_000_000 + n as i64),
                )
                .await
            };
            written.push(stored.expect("append an event"));
        }
        written
    }

    /// Runs SQL statements on the database with a connection of their own.
    pub async fn tamper(&self, statements: &[&'static str]) {
        let url = format!("sqlite://{}", self.db().display());
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("a second connection");
        for statement in statements {
            sqlx::query(*statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        conn.close().await.expect("close");
    }
}

/// The `n`th sample event: pushes, tag moves, promotions with decisions, denied pulls.
pub fn sample_event(n: usize) -> NewEvent {
    let digest = format!("sha256:{:064x}", n / 2);
    let (kind, repository, tag, data) = match n % 4 {
        0 => (
            "artifact.pushed",
            "dev/app",
            None,
            serde_json::json!({"media_type": "application/vnd.oci.image.manifest.v1+json", "size": 1000 + n}),
        ),
        1 => (
            "tag.updated",
            "dev/app",
            Some(format!("v{n}")),
            serde_json::json!({"previous": null}),
        ),
        2 => (
            "promotion.rejected",
            "prod/app",
            None,
            serde_json::json!({"decision": {
                "rule": "blessed",
                "verdict": "rejected",
                "reasons": ["vulnerabilities.critical == 0"],
                "facts": {"vulnerabilities.critical": 2},
                "policy_digest": "sha256:5eed",
                "target": "prod/app"
            }}),
        ),
        _ => (
            "pull.denied",
            "prod/app",
            None,
            serde_json::json!({"reason": "critical findings: CVE-2021-44228", "decision": {
                "rule": "no-critical", "verdict": "deny", "facts": {"critical": 1},
                "policy_digest": "sha256:abc"
            }}),
        ),
    };
    NewEvent {
        kind: kind.into(),
        repository: Some(repository.into()),
        digest: Some(digest),
        tag,
        data: data.to_string(),
    }
}
