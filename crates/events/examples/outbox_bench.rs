//! Events per second through the outbox, on a real SQLite store (relaxed durability, like
//! the other benches' default runs): `N` events appended by 8 concurrent writers (group
//! commit), then drained by a consumer that does nothing, through `events::outbox` with its
//! default batch. Prints one JSON line.
//!
//! `cargo run --release -p events --example outbox_bench -- [N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use events::outbox::{self, Consumer, ConsumerError, RunOptions};
use store::{EventRow, EventStore, NewEvent, SqliteMetaStore};

struct Count(AtomicU64);

#[async_trait]
impl Consumer for Count {
    fn name(&self) -> &'static str {
        "bench"
    }

    async fn handle(&self, events: &[EventRow]) -> Result<(), ConsumerError> {
        self.0.fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let store =
        SqliteMetaStore::open(&dir.path().join("bonded.db"), store::Durability::Relaxed).await?;
    let started = Instant::now();
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / writers {
                let event = NewEvent {
                    kind: "tag.updated".into(),
                    repository: Some(format!("bench/r{w}")),
                    digest: Some(format!("sha256:{:064x}", i)),
                    tag: Some(format!("v{i}")),
                    data: r#"{"previous":null}"#.into(),
                };
                store.append_event(&event, 0).await?;
            }
            Ok::<(), store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let written = n / writers * writers;
    let write_secs = started.elapsed().as_secs_f64();
    let count = Arc::new(Count(AtomicU64::new(0)));
    let drained = Instant::now();
    let task = outbox::spawn(
        Arc::new(store.clone()),
        count.clone(),
        RunOptions::default(),
    );
    while count.0.load(Ordering::Relaxed) < written {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drain_secs = drained.elapsed().as_secs_f64();
    task.abort();
    println!(
        "{}",
        serde_json::json!({
            "events": written,
            "append_per_sec": (written as f64 / write_secs).round(),
            "drain_per_sec": (written as f64 / drain_secs).round(),
        })
    );
    Ok(())
}
