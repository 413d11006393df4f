//! The audit log over a real SQLite store: appends idempotent per event, checkpoints signed
//! with the server key, crash recovery, refusal to sign over an altered store, and proofs
//! that verify against the signed roots.

use audit::entry::AuditEntry;
use audit::log::AuditError;
use audit::merkle::{leaf_hash, verify_consistency};
use store::{AuditQuery, AuditReader, AuditStore};

use crate::data_dir::{DataDir, ORIGIN};

async fn stored_entries(data: &DataDir) -> Vec<Vec<u8>> {
    data.store
        .audit_entries(&AuditQuery::from_index(0, 10_000))
        .await
        .expect("entries")
        .into_iter()
        .map(|row| row.entry)
        .collect()
}

#[tokio::test]
async fn each_event_becomes_one_entry_and_a_signed_checkpoint_follows() {
    let data = DataDir::new().await;
    let events = data.record(10).await;
    data.log.handle(&events).await.expect("handle");

    let stored = stored_entries(&data).await;
    let expected: Vec<Vec<u8>> = events
        .iter()
        .map(|event| {
            AuditEntry::from_event(event)
                .canonical_bytes()
                .expect("bytes")
        })
        .collect();
    assert_eq!(stored, expected, "one entry per event, in outbox order");

    let checkpoint = data
        .log
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("a checkpoint");
    assert_eq!(checkpoint.size, 10);
    assert_eq!(checkpoint.origin, ORIGIN);
    let head = checkpoint
        .verify(&data.key.public_key())
        .expect("signed by the server key");
    let leaves: Vec<_> = stored.iter().map(|entry| leaf_hash(entry)).collect();
    assert_eq!(
        head.root,
        audit::merkle::root_at(&leaves, 10).expect("root")
    );
    assert_eq!(checkpoint.key_id, data.key.public_key().key_id());
}

#[tokio::test]
async fn the_same_batch_twice_leaves_the_same_tree() {
    let data = DataDir::new().await;
    let events = data.record(12).await;
    data.log.handle(&events[..8]).await.expect("first");
    let first = data.log.latest_checkpoint().await.expect("read");
    data.log.handle(&events[..8]).await.expect("again");
    assert_eq!(data.log.latest_checkpoint().await.expect("read"), first);
    assert_eq!(data.store.audit_tree_size().await.expect("size"), 8);
    assert_eq!(
        data.store
            .audit_checkpoints(0, 100)
            .await
            .expect("all")
            .len(),
        1,
        "no checkpoint for a batch that added nothing"
    );
    // After a restart, the replayed batch overlaps the new events: only those are added.
    let restarted = data.restarted_log();
    restarted.handle(&events[4..]).await.expect("overlap");
    assert_eq!(data.store.audit_tree_size().await.expect("size"), 12);
    let stored = stored_entries(&data).await;
    for (entry, event) in stored.iter().zip(&events) {
        assert_eq!(
            entry,
            &AuditEntry::from_event(event)
                .canonical_bytes()
                .expect("bytes")
        );
    }
    let checkpoints = data.store.audit_checkpoints(0, 100).await.expect("all");
    assert_eq!(
        checkpoints.iter().map(|c| c.size).collect::<Vec<_>>(),
        [8, 12]
    );
    // The same tree as one batch of twelve would give.
    let fresh = DataDir::new().await;
    let mut copies = Vec::new();
    for event in &events {
        let mut copy = event.clone();
        copy.seq += 1_000;
        copies.push(copy);
    }
    fresh.log.handle(&copies).await.expect("all at once");
    let one = fresh
        .log
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("one");
    let two = data
        .log
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("two");
    assert_eq!((one.size, one.root), (two.size, two.root));
}

#[tokio::test]
async fn a_crash_between_append_and_signing_is_mended_by_the_next_batch() {
    let data = DataDir::new().await;
    let events = data.record(5).await;
    // The entries were appended, then the server died before it signed.
    let rows: Vec<_> = events
        .iter()
        .map(|event| AuditEntry::from_event(event).to_new_entry().expect("row"))
        .collect();
    data.store
        .append_audit_entries(&rows)
        .await
        .expect("append");
    assert_eq!(data.log.latest_checkpoint().await.expect("read"), None);
    // The outbox hands the same batch again.
    data.log.handle(&events).await.expect("replay");
    let checkpoint = data
        .log
        .latest_checkpoint()
        .await
        .expect("read")
        .expect("signed now");
    assert_eq!(checkpoint.size, 5);
    let leaves: Vec<_> = rows.iter().map(|row| row.leaf_hash).collect();
    assert_eq!(
        checkpoint.root,
        audit::merkle::root_at(&leaves, 5).expect("root")
    );
}

/// A log of six signed entries whose tree store is then edited with `sql`; the next batch is
/// refused.
async fn refused_after(sql: &'static str) -> AuditError {
    let data = DataDir::new().await;
    let events = data.record(9).await;
    data.log.handle(&events[..6]).await.expect("handle");
    data.tamper(&[sql]).await;
    let refused = data
        .restarted_log()
        .handle(&events[6..])
        .await
        .expect_err("refused");
    assert_eq!(
        data.store
            .audit_entries(&AuditQuery::from_index(6, 10))
            .await
            .expect("entries"),
        [],
        "nothing appended"
    );
    assert_eq!(
        data.store
            .audit_checkpoints(0, 10)
            .await
            .expect("all")
            .len(),
        1,
        "nothing signed"
    );
    refused
}

#[tokio::test]
async fn nothing_is_signed_over_an_altered_tree_store() {
    let changed = refused_after("UPDATE audit_leaves SET hash = zeroblob(32) WHERE seq = 2").await;
    assert!(
        matches!(changed, AuditError::TreeStoreAltered { size: 6 }),
        "{changed:?}"
    );
    let shrunk = refused_after("DELETE FROM audit_leaves WHERE seq = 5").await;
    assert!(
        matches!(shrunk, AuditError::TreeStoreAltered { size: 6 }),
        "a tree smaller than its checkpoint: {shrunk:?}"
    );
    let gap = refused_after("DELETE FROM audit_leaves WHERE seq = 3").await;
    assert!(
        matches!(
            gap,
            AuditError::LeafGap {
                expected: 3,
                found: 4
            }
        ),
        "{gap:?}"
    );
    let planted =
        refused_after("INSERT INTO audit_leaves (seq, hash) VALUES (6, zeroblob(32))").await;
    assert!(
        matches!(planted, AuditError::UnsignedEntryAltered { index: 6 }),
        "a leaf with no entry: {planted:?}"
    );
}

#[tokio::test]
async fn unsigned_entries_must_match_their_leaves_before_they_are_signed() {
    let data = DataDir::new().await;
    let events = data.record(6).await;
    data.log.handle(&events[..3]).await.expect("handle");
    // Appended but not signed (a crash), then edited.
    let rows: Vec<_> = events[3..5]
        .iter()
        .map(|event| AuditEntry::from_event(event).to_new_entry().expect("row"))
        .collect();
    data.store
        .append_audit_entries(&rows)
        .await
        .expect("append");
    data.tamper(&["UPDATE audit_entries SET entry = CAST('{}' AS BLOB) WHERE seq = 4"])
        .await;
    let refused = data.restarted_log().handle(&events[5..]).await;
    assert!(
        matches!(refused, Err(AuditError::UnsignedEntryAltered { index: 4 })),
        "{refused:?}"
    );
    assert_eq!(
        data.log
            .latest_checkpoint()
            .await
            .expect("read")
            .map(|c| c.size),
        Some(3)
    );
}

#[tokio::test]
async fn a_batch_is_one_transaction() {
    let data = DataDir::new().await;
    let events = data.record(6).await;
    data.log.handle(&events[..3]).await.expect("handle");
    // A row planted at the next index makes the next append fail half-way through.
    data.tamper(&[
        "INSERT INTO audit_entries (seq, event_id, entry, time, action) \
         VALUES (4, 'planted', x'00', 0, 'planted')",
    ])
    .await;
    assert!(data.log.handle(&events[3..]).await.is_err());
    for event in &events[3..] {
        assert_eq!(
            data.store.audit_event_seq(&event.id).await.expect("seq"),
            None,
            "no entry of the failed batch was kept"
        );
    }
    assert_eq!(data.store.audit_tree_size().await.expect("size"), 3);
}

#[tokio::test]
async fn inclusion_proofs_lead_to_the_signed_root() {
    let data = DataDir::new().await;
    let events = data.record(13).await;
    data.log.handle(&events).await.expect("handle");
    let stored = stored_entries(&data).await;
    for index in 0..13u64 {
        let inclusion = data.log.inclusion_proof(index, None).await.expect("proof");
        let checkpoint = inclusion.checkpoint.clone().expect("the latest checkpoint");
        let head = checkpoint.verify(&data.key.public_key()).expect("signed");
        assert_eq!(inclusion.proof.tree_size, 13);
        assert_eq!(
            inclusion.leaf_hash,
            leaf_hash(&stored[index as usize]),
            "the recorded leaf is the entry's hash"
        );
        inclusion
            .proof
            .verify(&inclusion.leaf_hash, &head.root)
            .unwrap_or_else(|e| panic!("index {index}: {e}"));
    }
    let by_event = data
        .log
        .inclusion_proof_for_event(&events[7].id, None)
        .await
        .expect("by event");
    assert_eq!(by_event.proof.leaf_index, 7);
    assert!(matches!(
        data.log.inclusion_proof_for_event("nope", None).await,
        Err(AuditError::UnknownEvent { .. })
    ));
    assert!(matches!(
        data.log.inclusion_proof(13, None).await,
        Err(AuditError::Merkle(_))
    ));
    assert!(matches!(
        data.log.inclusion_proof(0, Some(14)).await,
        Err(AuditError::Merkle(_))
    ));
    // A proof in an older tree carries that tree's checkpoint only if one was signed.
    let older = data.log.inclusion_proof(2, Some(5)).await.expect("older");
    assert_eq!(older.checkpoint, None);
    assert_eq!(older.proof.tree_size, 5);
}

#[tokio::test]
async fn consistency_proofs_connect_every_pair_of_checkpoints() {
    let data = DataDir::new().await;
    let events = data.record(11).await;
    for batch in events.chunks(3) {
        data.log.handle(batch).await.expect("handle");
    }
    let checkpoints = data.store.audit_checkpoints(0, 100).await.expect("all");
    let sizes: Vec<u64> = checkpoints.iter().map(|c| c.size as u64).collect();
    assert_eq!(sizes, [3, 6, 9, 11]);
    for old in &checkpoints {
        for new in checkpoints.iter().filter(|c| c.size >= old.size) {
            let consistency = data
                .log
                .consistency_proof(old.size as u64, Some(new.size as u64))
                .await
                .expect("proof");
            let old_signed = consistency.old_checkpoint.clone().expect("old checkpoint");
            let new_signed = consistency.new_checkpoint.clone().expect("new checkpoint");
            assert_eq!(old_signed.root, old.root);
            assert_eq!(new_signed.root, new.root);
            verify_consistency(
                old.size as u64,
                new.size as u64,
                &old.root,
                &new.root,
                &consistency.proof.hashes,
            )
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", old.size, new.size));
        }
    }
    let latest = data
        .log
        .consistency_proof(3, None)
        .await
        .expect("to the latest");
    assert_eq!(latest.proof.new_size, 11);
    assert!(matches!(
        data.log.consistency_proof(12, None).await,
        Err(AuditError::Merkle(_))
    ));
}

#[tokio::test]
async fn an_origin_that_breaks_the_checkpoint_format_is_refused() {
    let data = DataDir::new().await;
    for origin in ["", "bonded local", "bonded+audit", "a\nb"] {
        assert!(
            audit::AuditLog::new(
                std::sync::Arc::new(data.store.clone()),
                data.key.clone(),
                origin
            )
            .is_err(),
            "{origin:?}"
        );
    }
}
