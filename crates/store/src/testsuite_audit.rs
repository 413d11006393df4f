//! The conformance suite of [`AuditStore`]: what every backend of the audit log must do.
//!
//! It checks the shape of the log only (indexes from 0 without gaps, idempotent appends per
//! event id, keyset pages, filters, checkpoints kept one per size); the Merkle tree and the
//! signatures are the `audit` crate's and are tested there. Each check panics with a message
//! on the first violation. It needs a store whose audit log is empty.

use crate::audit::{
    AuditCheckpointRow, AuditEntryRow, AuditQuery, AuditStore, MAX_AUDIT_PAGE, NewAuditEntry,
};

/// An entry whose bytes and leaf hash are derived from `n` (the store does not check hashes).
fn entry(n: u8, action: &str, repository: Option<&str>, actor: Option<&str>) -> NewAuditEntry {
    NewAuditEntry {
        event_id: format!("{n:032x}"),
        entry: format!(r#"{{"n":{n}}}"#).into_bytes(),
        leaf_hash: [n; 32],
        time: 1_000 + i64::from(n),
        action: action.to_owned(),
        repository: repository.map(str::to_owned),
        digest: Some(format!("sha256:{:064x}", n % 2)),
        actor: actor.map(str::to_owned),
    }
}

const ADDR_V4: &str =
    r#"{"kind":"anonymous","addr":"192.0.2.7:5123","user_agent":"skopeo/1.9","request_id":"r-1"}"#;
const ADDR_V4_LONGER: &str =
    r#"{"kind":"anonymous","addr":"192.0.2.77:80","user_agent":"curl/8","request_id":"r-2"}"#;
const ADDR_V6: &str =
    r#"{"kind":"anonymous","addr":"[2001:db8::1]:443","user_agent":"podman/5","request_id":"r-3"}"#;

fn seqs(rows: &[AuditEntryRow]) -> Vec<i64> {
    rows.iter().map(|row| row.seq).collect()
}

fn all() -> AuditQuery {
    AuditQuery::from_index(0, 1000)
}

pub async fn audit_store<S: AuditStore>(store: &S) {
    assert_eq!(
        store.audit_tree_size().await.expect("size"),
        0,
        "needs an empty log"
    );
    assert_eq!(store.latest_audit_checkpoint().await.expect("latest"), None);
    assert!(
        store
            .audit_entries(&all())
            .await
            .expect("entries")
            .is_empty()
    );

    appends_are_idempotent_and_gapless(store).await;
    pages_are_read_by_index(store).await;
    filters_select_entries(store).await;
    checkpoints_are_kept_one_per_size(store).await;
    pages_are_capped(store).await;
}

async fn appends_are_idempotent_and_gapless<S: AuditStore>(store: &S) {
    let first = [
        entry(0, "artifact.pushed", Some("team/app"), Some(ADDR_V4)),
        entry(1, "tag.updated", Some("team/app"), Some(ADDR_V4_LONGER)),
        entry(2, "pull.denied", Some("prod/app"), Some(ADDR_V6)),
    ];
    let given = store.append_audit_entries(&first).await.expect("append");
    assert_eq!(given, [Some(0), Some(1), Some(2)]);
    // A replayed event is skipped, also when it comes twice in one batch; new ones follow
    // without a gap.
    let replay = [
        entry(1, "tag.updated", Some("team/app"), Some(ADDR_V4_LONGER)),
        entry(3, "scan.completed", Some("team/app"), None),
        entry(3, "scan.completed", Some("team/app"), None),
        entry(4, "promotion.rejected", Some("prod/app"), Some(ADDR_V4)),
    ];
    let given = store.append_audit_entries(&replay).await.expect("replay");
    assert_eq!(given, [None, Some(3), None, Some(4)]);
    assert_eq!(
        store.append_audit_entries(&[]).await.expect("nothing"),
        Vec::<Option<i64>>::new()
    );
    assert_eq!(store.audit_tree_size().await.expect("size"), 5);
    for n in 0..5u8 {
        assert_eq!(
            store
                .audit_event_seq(&format!("{n:032x}"))
                .await
                .expect("seq"),
            Some(i64::from(n))
        );
    }
    assert_eq!(store.audit_event_seq("unknown").await.expect("seq"), None);
}

async fn pages_are_read_by_index<S: AuditStore>(store: &S) {
    let rows = store.audit_entries(&all()).await.expect("entries");
    assert_eq!(seqs(&rows), [0, 1, 2, 3, 4]);
    for (row, n) in rows.iter().zip(0u8..) {
        assert_eq!(
            row.entry,
            format!(r#"{{"n":{n}}}"#).into_bytes(),
            "bytes kept"
        );
        assert_eq!(row.event_id, format!("{n:032x}"));
    }
    let page = store
        .audit_entries(&AuditQuery::from_index(2, 2))
        .await
        .expect("page");
    assert_eq!(seqs(&page), [2, 3]);
    let bounded = AuditQuery {
        end: Some(4),
        ..AuditQuery::from_index(1, 100)
    };
    assert_eq!(
        seqs(&store.audit_entries(&bounded).await.expect("bounded")),
        [1, 2, 3]
    );
    assert!(
        store
            .audit_entries(&AuditQuery::from_index(5, 10))
            .await
            .expect("past the end")
            .is_empty()
    );

    let leaves = store.audit_leaves(0, 5, 100).await.expect("leaves");
    let recorded: Vec<(i64, [u8; 32])> = leaves.iter().map(|l| (l.seq, l.hash)).collect();
    let expected: Vec<(i64, [u8; 32])> = (0..5u8).map(|n| (i64::from(n), [n; 32])).collect();
    assert_eq!(recorded, expected);
    let middle = store.audit_leaves(1, 3, 100).await.expect("leaves");
    assert_eq!(middle.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
    let limited = store.audit_leaves(0, 5, 2).await.expect("leaves");
    assert_eq!(limited.iter().map(|l| l.seq).collect::<Vec<_>>(), [0, 1]);
}

async fn filters_select_entries<S: AuditStore>(store: &S) {
    let select = |query: AuditQuery| async move {
        seqs(&store.audit_entries(&query).await.expect("filtered"))
    };
    let q = all;
    let repo = AuditQuery {
        repository: Some("prod/app".into()),
        ..q()
    };
    assert_eq!(select(repo).await, [2, 4]);
    let digest = AuditQuery {
        digest: Some(format!("sha256:{:064x}", 1)),
        ..q()
    };
    assert_eq!(select(digest).await, [1, 3]);
    let action = AuditQuery {
        action: Some("tag.updated".into()),
        ..q()
    };
    assert_eq!(select(action).await, [1]);
    let window = AuditQuery {
        since: Some(1_001),
        until: Some(1_003),
        ..q()
    };
    assert_eq!(
        select(window).await,
        [1, 2, 3],
        "since and until are inclusive"
    );
    let agent = AuditQuery {
        actor: Some("skopeo".into()),
        ..q()
    };
    assert_eq!(select(agent).await, [0, 4], "a substring of the user agent");
    let request = AuditQuery {
        actor: Some("r-3".into()),
        ..q()
    };
    assert_eq!(select(request).await, [2], "the request id");
    let key_names_do_not_match = AuditQuery {
        actor: Some("user_agent".into()),
        ..q()
    };
    assert_eq!(select(key_names_do_not_match).await, Vec::<i64>::new());
    for (addr, expected) in [
        ("192.0.2.7", vec![0, 4]),
        ("192.0.2.7:5123", vec![0, 4]),
        ("192.0.2.77", vec![1]),
        ("192.0.2", vec![]),
        ("2001:db8::1", vec![2]),
        ("[2001:db8::1]:443", vec![2]),
    ] {
        let query = AuditQuery {
            addr: Some(addr.into()),
            ..q()
        };
        assert_eq!(select(query).await, expected, "address {addr}");
    }
    let combined = AuditQuery {
        repository: Some("team/app".into()),
        addr: Some("192.0.2.7".into()),
        ..q()
    };
    assert_eq!(select(combined).await, [0]);
    let after = AuditQuery {
        repository: Some("team/app".into()),
        ..AuditQuery::from_index(1, 1)
    };
    assert_eq!(select(after).await, [1], "filters page by index too");
}

async fn checkpoints_are_kept_one_per_size<S: AuditStore>(store: &S) {
    let checkpoint = |size: i64, time: i64| AuditCheckpointRow {
        size,
        origin: "bonded.example/audit".into(),
        root: [u8::try_from(size).unwrap_or(0); 32],
        time,
        key_id: "k".repeat(64),
        signature: vec![7; 70],
    };
    assert!(
        store
            .put_audit_checkpoint(&checkpoint(3, 10))
            .await
            .expect("put")
    );
    assert!(
        !store
            .put_audit_checkpoint(&checkpoint(3, 11))
            .await
            .expect("again"),
        "a second checkpoint of one size is not stored"
    );
    assert!(
        store
            .put_audit_checkpoint(&checkpoint(5, 12))
            .await
            .expect("put")
    );
    assert!(
        store
            .put_audit_checkpoint(&checkpoint(0, 9))
            .await
            .expect("put")
    );
    assert_eq!(
        store.latest_audit_checkpoint().await.expect("latest"),
        Some(checkpoint(5, 12))
    );
    let listed = store.audit_checkpoints(0, 100).await.expect("list");
    assert_eq!(
        listed,
        [checkpoint(0, 9), checkpoint(3, 10), checkpoint(5, 12)]
    );
    let later = store.audit_checkpoints(1, 1).await.expect("page");
    assert_eq!(later, [checkpoint(3, 10)]);
}

async fn pages_are_capped<S: AuditStore>(store: &S) {
    let size = store.audit_tree_size().await.expect("size");
    let count = MAX_AUDIT_PAGE as usize + 5;
    let batch: Vec<NewAuditEntry> = (0..count)
        .map(|i| NewAuditEntry {
            event_id: format!("bulk-{i}"),
            entry: format!("bulk {i}").into_bytes(),
            leaf_hash: [0xAB; 32],
            time: 5_000,
            action: "artifact.pushed".into(),
            repository: None,
            digest: None,
            actor: None,
        })
        .collect();
    let given = store.append_audit_entries(&batch).await.expect("bulk");
    assert_eq!(given.first(), Some(&Some(size)));
    assert_eq!(given.last(), Some(&Some(size + count as i64 - 1)));
    let page = store
        .audit_entries(&AuditQuery::from_index(0, u32::MAX))
        .await
        .expect("capped");
    assert_eq!(page.len(), MAX_AUDIT_PAGE as usize);
    let leaves = store
        .audit_leaves(0, i64::MAX, u32::MAX)
        .await
        .expect("capped");
    assert_eq!(leaves.len(), MAX_AUDIT_PAGE as usize);
    assert_eq!(
        store.audit_tree_size().await.expect("size"),
        size + count as i64
    );
}
