//! The outbox runner over a real SQLite store: every event is handed over in commit order,
//! a failing handler gets the same events again after a backoff, a restarted consumer goes on
//! from its cursor, and a commit wakes a consumer long before its poll would.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use events::outbox::{self, Consumer, ConsumerError, RunOptions};
use oci::{Algorithm, Digest, RepositoryName, Tag};
use store::{EventRow, EventStore, ManifestRecord, MetaStore, SqliteMetaStore};

struct Recorder {
    seen: Mutex<Vec<EventRow>>,
    calls: Mutex<u32>,
    fail_first: u32,
}

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        "test-recorder"
    }

    async fn handle(&self, events: &[EventRow]) -> Result<(), ConsumerError> {
        let call = {
            let mut calls = self.calls.lock().expect("lock");
            *calls += 1;
            *calls
        };
        self.seen
            .lock()
            .expect("lock")
            .extend(events.iter().cloned());
        if call <= self.fail_first {
            return Err(ConsumerError::new(self.name(), format!("failure {call}")));
        }
        Ok(())
    }
}

fn recorder(fail_first: u32) -> Arc<Recorder> {
    Arc::new(Recorder {
        seen: Mutex::default(),
        calls: Mutex::default(),
        fail_first,
    })
}

async fn push(store: &SqliteMetaStore, repo: &RepositoryName, n: u32) -> Digest {
    let layer = Digest::compute(Algorithm::Sha256, b"outbox layer");
    store
        .commit_blob(repo, &layer, 12, None)
        .await
        .expect("blob");
    let content = format!(r#"{{"outbox":{n}}}"#);
    let record = ManifestRecord {
        digest: Digest::compute(Algorithm::Sha256, content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        content: Bytes::from(content),
        subject: None,
        artifact_type: Some("application/example".into()),
        annotations: None,
        blobs: vec![layer],
        manifests: Vec::new(),
        scan: false,
    };
    let tag = Tag::from_str(&format!("v{n}")).expect("tag");
    store
        .put_manifest(repo, &record, Some(&tag))
        .await
        .expect("push");
    record.digest
}

fn fast() -> RunOptions {
    RunOptions {
        batch: 3,
        poll: Duration::from_secs(600),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(80),
    }
}

async fn wait_for<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn every_event_is_handed_over_in_order_again_after_failures_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteMetaStore::open(&dir.path().join("bonded.db"), store::Durability::Relaxed)
        .await
        .expect("open");
    let repo = RepositoryName::from_str("outbox/app").expect("name");
    for n in 0..4 {
        push(&store, &repo, n).await;
    }
    let all = store.events_after(0, 1000).await.expect("events");
    assert_eq!(all.len(), 8, "4 pushes and 4 tags: {all:?}");

    // The handler fails twice: the first batch is handed over three times, then the rest.
    let first = recorder(2);
    let task = outbox::spawn(Arc::new(store.clone()), first.clone(), fast());
    let last = all.last().map(|e| e.seq).expect("last");
    wait_for("the cursor to reach the last event", || async {
        store.cursor("test-recorder").await.ok() == Some(last)
    })
    .await;
    let seen: Vec<String> = first
        .seen
        .lock()
        .expect("lock")
        .iter()
        .map(|e| e.id.clone())
        .collect();
    let batch: Vec<String> = all[..3].iter().map(|e| e.id.clone()).collect();
    let mut expected = [batch.clone(), batch.clone(), batch].concat();
    expected.extend(all[3..].iter().map(|e| e.id.clone()));
    assert_eq!(
        seen, expected,
        "the failed batch comes again, then the rest, in order"
    );

    // A commit wakes the consumer (its poll is ten minutes).
    push(&store, &repo, 10).await;
    wait_for("the new events", || async {
        first.seen.lock().expect("lock").len() == expected.len() + 2
    })
    .await;
    task.abort();
    let _ = task.await;

    // Restarted: it goes on from its cursor; nothing is handed over twice once accepted.
    push(&store, &repo, 11).await;
    let second = recorder(0);
    let task = outbox::spawn(Arc::new(store.clone()), second.clone(), fast());
    wait_for("the events after the restart", || async {
        second.seen.lock().expect("lock").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = second.seen.lock().expect("lock").clone();
    let kinds: Vec<(&str, Option<&str>)> = seen
        .iter()
        .map(|e| (e.kind.as_str(), e.tag.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [("artifact.pushed", None), ("tag.updated", Some("v11"))]
    );
    task.abort();
}
