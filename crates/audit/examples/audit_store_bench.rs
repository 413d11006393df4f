//! Measures the audit log with real SQLite: the append cost per event through
//! `AuditLog::handle` (entry, canonical JSON, leaf hash, one transaction, a signed checkpoint
//! per batch) at several batch sizes and both durabilities, then `verify_data_dir` over a log
//! of 100,000 entries, and proofs at that size.
//!
//! Run with `cargo run --release --example audit_store_bench [ENTRIES]`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::{AuditLog, VerifyOptions, verify_data_dir};
use store::{Durability, EventRow, SqliteMetaStore};
use trust::keys::{KeyAlgorithm, SigningKey};

const ORIGIN: &str = "bonded.bench/audit";
/// The batch the verification log is written in (the outbox runner's default).
const BULK_BATCH: usize = 256;
const VERIFY_ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 100_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(entries))
}

async fn run(entries: usize) -> Result<(), Box<dyn std::error::Error>> {
    let key = Arc::new(SigningKey::generate(KeyAlgorithm::EcdsaP256));
    println!("append through AuditLog::handle (per event, one checkpoint signed per batch):");
    for durability in [Durability::Fsync, Durability::Relaxed] {
        for (batch, count) in [(1, 300), (16, 4_096), (256, 16_384)] {
            let dir = tempfile::tempdir()?;
            let (log, _) = open(dir.path(), durability, &key).await?;
            let events = events(0, count);
            let start = Instant::now();
            for chunk in events.chunks(batch) {
                log.handle(chunk).await?;
            }
            let elapsed = start.elapsed();
            println!(
                "  {durability:?}, batches of {batch:>3}: {:>7.1} µs per event ({count} events)",
                elapsed.as_secs_f64() * 1e6 / count as f64
            );
        }
    }

    let dir = tempfile::tempdir()?;
    let (log, store) = open(dir.path(), Durability::Relaxed, &key).await?;
    let start = Instant::now();
    for (n, first) in (0..entries).step_by(BULK_BATCH).enumerate() {
        let count = BULK_BATCH.min(entries - first);
        log.handle(&events(first, count)).await?;
        if n % 100 == 99 {
            println!("  wrote {} entries", first + count);
        }
    }
    println!(
        "wrote {entries} entries in batches of {BULK_BATCH} in {:.1} s; database {:.1} MiB",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(dir.path().join("bonded.db"))?.len() as f64 / (1 << 20) as f64
    );
    store.close().await;

    let mut times = Vec::new();
    for _ in 0..VERIFY_ROUNDS {
        let start = Instant::now();
        let report = verify_data_dir(dir.path(), &VerifyOptions::default()).await?;
        times.push(start.elapsed());
        if !report.passed() {
            return Err(format!("the benchmark log must verify:\n{report}").into());
        }
    }
    times.sort();
    println!(
        "verify_data_dir over {entries} entries: {:.0} ms (median of {VERIFY_ROUNDS}; min {:.0} ms)",
        millis(times.get(VERIFY_ROUNDS / 2).copied().unwrap_or_default()),
        millis(times.first().copied().unwrap_or_default())
    );

    let (log, _) = open(dir.path(), Durability::Relaxed, &key).await?;
    let size = entries as u64;
    let start = Instant::now();
    log.inclusion_proof(size / 3, None).await?;
    println!(
        "inclusion proof at {size}: {:.1} ms",
        millis(start.elapsed())
    );
    let start = Instant::now();
    log.consistency_proof(size / 2 + 1, None).await?;
    println!(
        "consistency proof to {size}: {:.1} ms",
        millis(start.elapsed())
    );
    Ok(())
}

async fn open(
    dir: &Path,
    durability: Durability,
    key: &Arc<SigningKey>,
) -> Result<(AuditLog, SqliteMetaStore), Box<dyn std::error::Error>> {
    let store = SqliteMetaStore::open(&dir.join("bonded.db"), durability).await?;
    std::fs::create_dir_all(dir.join("trust"))?;
    std::fs::write(dir.join("trust/server.pub"), key.public_key().to_pem())?;
    let log = AuditLog::new(Arc::new(store.clone()), key.clone(), ORIGIN)?;
    Ok((log, store))
}

/// `count` outbox events from `first` on, shaped like Bonded's: pushes and tag moves with an
/// actor, and promotions with their decision.
fn events(first: usize, count: usize) -> Vec<EventRow> {
    (first..first + count)
        .map(|n| {
            let (kind, data) = match n % 3 {
                0 => ("artifact.pushed", r#"{"media_type":"application/vnd.oci.image.manifest.v1+json","artifact_type":null,"subject":null,"size":1234}"#.to_owned()),
                1 => ("tag.updated", format!(r#"{{"previous":"sha256:{:064x}"}}"#, n / 3)),
                _ => ("promotion.succeeded", format!(
                    r#"{{"decision":{{"rule":"blessed","verdict":"promoted","reasons":[],"facts":{{"vulnerabilities.critical":0,"signed_by('ci')":true}},"policy_digest":"sha256:{:064x}","target":"prod/app:v{n}"}}}}"#,
                    7
                )),
            };
            EventRow {
                seq: n as i64 + 1,
                id: format!("{n:032x}"),
                kind: kind.into(),
                repository: Some("dev/app".into()),
                digest: Some(format!("sha256:{:064x}", n / 3)),
                tag: (n % 3 == 1).then(|| format!("v{n}")),
                data,
                created_at: 1_700_000_000 + n as i64,
                actor: Some(format!(
                    r#"{{"kind":"anonymous","addr":"192.0.2.{}:{}","user_agent":"docker/27.1.1 go/go1.22.5","request_id":"{:032x}"}}"#,
                    n % 250,
                    40_000 + n % 20_000,
                    n
                )),
            }
        })
        .collect()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
