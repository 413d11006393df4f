//! `bonded audit verify`, offline over the data directory and online over loopback HTTP,
//! against a real SQLite database edited with plain SQL behind the log's back: changing,
//! removing or reordering a single stored entry is detected and named.

use std::sync::Arc;

use audit::verify::Finding;
use audit::{Report, Verdict, VerifyOptions, verify_data_dir, verify_url};
use axum::Json;
use axum::routing::get;
use serde_json::json;
use store::{Durability, SqliteMetaStore};
use tokio::net::TcpListener;

use crate::data_dir::{DataDir, ORIGIN};

const TOKEN: &str = "verify-token";
const ENTRIES: usize = 20;

/// A data directory whose twenty entries were appended and signed in batches of five.
async fn signed_log() -> DataDir {
    let data = DataDir::new().await;
    let events = data.record(ENTRIES).await;
    for batch in events.chunks(5) {
        data.log.handle(batch).await.expect("handle");
    }
    data
}

fn findings(report: &Report) -> Vec<Finding> {
    match &report.verdict {
        Verdict::Tampered(tampered) => tampered.findings.clone(),
        other => panic!("tampering went unnoticed: {other:?}\n{report}"),
    }
}

/// Serves the audit API of the data directory's database (a server started on it afresh),
/// plus the server key as `GET /api/v1/authorities/bonded` publishes it.
async fn serve(data: &DataDir) -> String {
    let store = SqliteMetaStore::open(&data.db(), Durability::Relaxed)
        .await
        .expect("open");
    let log = Arc::new(
        audit::AuditLog::new(Arc::new(store), data.key.clone(), ORIGIN).expect("audit log"),
    );
    let pem = data.key.public_key().to_pem();
    let app = audit::http::router(log, audit::http::bearer_admin(Some(Arc::from(TOKEN)))).route(
        "/api/v1/authorities/bonded",
        get(move || {
            let pem = pem.clone();
            async move { Json(json!({"name": "bonded", "origin": "server", "keys": [pem]})) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn offline(data: &DataDir) -> Report {
    verify_data_dir(data.path(), &VerifyOptions::default())
        .await
        .expect("verification ran")
}

async fn online(data: &DataDir) -> Report {
    let base = serve(data).await;
    verify_url(&base, Some(TOKEN), &VerifyOptions::default())
        .await
        .expect("verification ran")
}

#[tokio::test]
async fn an_intact_log_passes_offline_and_online() {
    let data = signed_log().await;
    for report in [offline(&data).await, online(&data).await] {
        assert!(report.passed(), "{report}");
        let Verdict::Verified(log) = &report.verdict else {
            panic!("{report}");
        };
        assert_eq!(log.head.size, ENTRIES as u64);
        assert_eq!(report.entries, ENTRIES as u64);
        assert_eq!(report.recorded_leaves, ENTRIES as u64);
        let text = report.to_string();
        assert!(text.contains("valid signature"), "{text}");
        assert!(text.ends_with("PASSED\n"), "{text}");
    }
    let offline = offline(&data).await;
    assert_eq!(offline.earlier_checkpoints, 3, "checkpoints at 5, 10, 15");
    let Verdict::Verified(log) = &offline.verdict else {
        panic!("{offline}");
    };
    assert_eq!(log.consistent_checkpoints, 3);
}

#[tokio::test]
async fn a_changed_entry_is_named() {
    let data = signed_log().await;
    data.tamper(&[
        "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), '\"version\":1', '\"version\":2') AS BLOB) WHERE seq = 7",
    ])
    .await;
    for report in [offline(&data).await, online(&data).await] {
        assert_eq!(
            findings(&report),
            [Finding::EntryChanged { index: 7 }],
            "{report}"
        );
        let text = report.to_string();
        assert!(text.contains("entry 7 was changed"), "{text}");
        assert!(
            text.contains("the stored row with index 7 records event"),
            "{text}"
        );
        assert!(!report.passed());
    }
}

#[tokio::test]
async fn a_removed_entry_is_named() {
    let data = signed_log().await;
    data.tamper(&["DELETE FROM audit_entries WHERE seq = 12"])
        .await;
    for report in [offline(&data).await, online(&data).await] {
        assert_eq!(
            findings(&report),
            [Finding::EntryRemoved { index: 12 }],
            "{report}"
        );
    }
}

#[tokio::test]
async fn reordered_entries_are_named() {
    let data = signed_log().await;
    data.tamper(&[
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 4",
        "UPDATE audit_entries SET seq = 4 WHERE seq = 1000",
    ])
    .await;
    for report in [offline(&data).await, online(&data).await] {
        let found = findings(&report);
        assert_eq!(found.len(), 1, "{report}");
        assert!(
            matches!(
                found[0],
                Finding::EntryMoved {
                    position: 3,
                    recorded_at: 4
                } | Finding::EntryMoved {
                    position: 4,
                    recorded_at: 3
                }
            ),
            "{report}"
        );
        assert!(
            report.to_string().contains("entries were reordered"),
            "{report}"
        );
    }
}

#[tokio::test]
async fn with_the_tree_store_altered_too_the_checkpoints_bound_the_damage() {
    let data = signed_log().await;
    // An attacker who edits an entry and the leaf hash recorded for it.
    data.tamper(&[
        "UPDATE audit_entries SET entry = CAST('{\"forged\":true}' AS BLOB) WHERE seq = 12",
        "UPDATE audit_leaves SET hash = (SELECT hash FROM audit_leaves WHERE seq = 0) WHERE seq = 12",
    ])
    .await;
    let report = offline(&data).await;
    let found = findings(&report);
    assert!(
        found.contains(&Finding::RecordedLeavesAltered { signed_size: 20 }),
        "{report}"
    );
    assert!(
        found.contains(&Finding::AlteredRange {
            intact_before: 10,
            altered_before: 15
        }),
        "checkpoints at 10 and 15 bound entry 12: {report}"
    );
}

#[tokio::test]
async fn deleted_checkpoints_leave_nothing_to_vouch_for_the_entries() {
    let data = signed_log().await;
    data.tamper(&["DELETE FROM audit_checkpoints"]).await;
    let report = offline(&data).await;
    assert!(
        matches!(report.verdict, Verdict::NothingSigned { entries: 20 }),
        "{report}"
    );
    assert!(!report.passed());
}

#[tokio::test]
async fn a_saved_checkpoint_catches_a_rewritten_history() {
    let data = signed_log().await;
    let saved = data
        .log
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("checkpoint");
    let saved_json = serde_json::to_vec(&saved).expect("JSON");
    let with_saved = VerifyOptions {
        saved_checkpoint: Some(&saved_json),
        ..VerifyOptions::default()
    };
    let report = verify_data_dir(data.path(), &with_saved)
        .await
        .expect("ran");
    assert!(report.passed(), "{report}");
    assert!(
        report.to_string().contains("extends the one you saved"),
        "{report}"
    );

    // Someone with the data directory (and so the key) deletes the last five entries, their
    // leaves and checkpoint: the remaining log is self-consistent, but not with the saved one.
    data.tamper(&[
        "DELETE FROM audit_entries WHERE seq >= 15",
        "DELETE FROM audit_leaves WHERE seq >= 15",
        "DELETE FROM audit_checkpoints WHERE size > 15",
    ])
    .await;
    assert!(offline(&data).await.passed(), "undetectable without it");
    let report = verify_data_dir(data.path(), &with_saved)
        .await
        .expect("ran");
    assert_eq!(
        findings(&report),
        [Finding::RolledBack {
            earlier_size: 20,
            latest_size: 15
        }],
        "{report}"
    );
    let base = serve(&data).await;
    let report = verify_url(&base, Some(TOKEN), &with_saved)
        .await
        .expect("ran");
    assert!(
        findings(&report).contains(&Finding::RolledBack {
            earlier_size: 20,
            latest_size: 15
        }),
        "{report}"
    );
}

#[tokio::test]
async fn another_key_is_not_the_servers() {
    let data = signed_log().await;
    let other = trust::keys::SigningKey::generate(trust::keys::KeyAlgorithm::Ed25519);
    let pem = other.public_key().to_pem();
    let options = VerifyOptions {
        key_pem: Some(pem.as_bytes()),
        ..VerifyOptions::default()
    };
    let report = verify_data_dir(data.path(), &options).await.expect("ran");
    assert!(
        matches!(
            findings(&report).first(),
            Some(Finding::UnknownKey { size: 20, .. })
        ),
        "{report}"
    );
    let base = serve(&data).await;
    let report = verify_url(&base, Some(TOKEN), &options).await.expect("ran");
    assert!(!report.passed(), "{report}");
    // With the right key given explicitly, it passes.
    let right = data.key.public_key().to_pem();
    let options = VerifyOptions {
        key_pem: Some(right.as_bytes()),
        ..VerifyOptions::default()
    };
    let report = verify_url(&base, Some(TOKEN), &options).await.expect("ran");
    assert!(report.passed(), "{report}");
    assert!(report.key_source.starts_with("the given key"));
}

#[tokio::test]
async fn verification_that_cannot_run_says_why() {
    let empty = tempfile::tempdir().expect("tempdir");
    let missing = verify_data_dir(empty.path(), &VerifyOptions::default()).await;
    assert!(
        matches!(missing, Err(audit::VerifyError::NoDatabase { .. })),
        "{missing:?}"
    );
    let data = signed_log().await;
    let base = serve(&data).await;
    let unauthorized = verify_url(&base, None, &VerifyOptions::default()).await;
    assert!(
        matches!(
            unauthorized,
            Err(audit::VerifyError::Status { status: 401, .. })
        ),
        "{unauthorized:?}"
    );
    let saved = VerifyOptions {
        saved_checkpoint: Some(b"not a checkpoint"),
        ..VerifyOptions::default()
    };
    assert!(matches!(
        verify_data_dir(data.path(), &saved).await,
        Err(audit::VerifyError::SavedCheckpoint(_))
    ));
}

#[tokio::test]
async fn an_empty_log_passes() {
    let data = DataDir::new().await;
    for report in [offline(&data).await, online(&data).await] {
        assert!(matches!(report.verdict, Verdict::Empty), "{report}");
        assert!(report.passed());
    }
}
