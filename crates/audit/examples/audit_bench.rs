//! Measures the audit log's costs: appending an entry (leaf hash + frontier update), signing a
//! checkpoint, making proofs, and verifying a log of 100,000 entries with its checkpoints.
//!
//! Run with `cargo run --release --example audit_bench [ENTRIES]`. Each figure is the median
//! of several rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use audit::checkpoint::{SignedCheckpoint, TreeHead};
use audit::entry::AuditEntry;
use audit::merkle::{Hash, MerkleLog, consistency_proof, inclusion_proof, leaf_hash, prefix_roots};
use audit::verify::{LogEvidence, verify_log};
use trust::keys::{KeyAlgorithm, SigningKey};

const ROUNDS: usize = 5;
/// The server signs a checkpoint every this many entries in the simulated history.
const CHECKPOINT_EVERY: u64 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 100_000,
    };
    let entries: Vec<Vec<u8>> = (0..count).map(entry).collect();
    let average_len = entries.iter().map(Vec::len).sum::<usize>() / entries.len().max(1);
    println!("{count} entries of {average_len} bytes on average; median of {ROUNDS} rounds");

    let append = median(|| {
        let start = Instant::now();
        let mut log = MerkleLog::new();
        for entry in &entries {
            black_box(log.append(leaf_hash(entry)).ok());
        }
        black_box(log.root());
        start.elapsed()
    });
    println!(
        "append (leaf hash + frontier): {:.0} ns per entry",
        per_item_ns(append, count)
    );
    let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    let frontier_only = median(|| {
        let start = Instant::now();
        let mut log = MerkleLog::new();
        for leaf in &leaves {
            black_box(log.append(*leaf).ok());
        }
        start.elapsed()
    });
    println!(
        "  of which frontier update: {:.0} ns per entry",
        per_item_ns(frontier_only, count)
    );

    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let public = key.public_key();
    let origin = "bonded.example/audit";
    let root = MerkleLog::from_leaves(&leaves)?.root();
    let head = TreeHead::new(origin, count, root)?;
    let signing = median(|| {
        let start = Instant::now();
        for time in 0..100 {
            black_box(SignedCheckpoint::sign(&head, time, &key).ok());
        }
        start.elapsed() / 100
    });
    println!(
        "checkpoint signing (ECDSA P-256): {:.1} µs",
        micros(signing)
    );

    let latest = SignedCheckpoint::sign(&head, 0, &key)?;
    let sizes: Vec<u64> = (1..=count / CHECKPOINT_EVERY)
        .map(|n| n * CHECKPOINT_EVERY)
        .filter(|&size| size < count)
        .collect();
    let roots = prefix_roots(&leaves, &sizes)?;
    let earlier = sizes
        .iter()
        .zip(&roots)
        .map(|(&size, root)| SignedCheckpoint::sign(&TreeHead::new(origin, size, *root)?, 0, &key))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{} earlier checkpoints in the history", earlier.len());

    for (label, recorded) in [
        ("with recorded leaves", true),
        ("without recorded leaves", false),
    ] {
        let verify = median(|| {
            let start = Instant::now();
            let entry_hashes: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
            let evidence = LogEvidence {
                entry_hashes: &entry_hashes,
                recorded_leaves: recorded.then_some(leaves.as_slice()),
                latest: &latest,
                earlier: &earlier,
            };
            let verified = verify_log(&evidence, &public);
            assert!(verified.is_ok(), "the benchmark log must verify");
            start.elapsed()
        });
        println!("full verification {label}: {:.1} ms", millis(verify));
    }

    let index = count / 3;
    let inclusion = median(|| {
        let start = Instant::now();
        black_box(inclusion_proof(&leaves, index, count).ok());
        start.elapsed()
    });
    println!(
        "inclusion proof at size {count}: {:.2} ms",
        millis(inclusion)
    );
    let consistency = median(|| {
        let start = Instant::now();
        black_box(consistency_proof(&leaves, count / 2 + 1, count).ok());
        start.elapsed()
    });
    println!(
        "consistency proof to size {count}: {:.2} ms",
        millis(consistency)
    );
    Ok(())
}

/// The canonical bytes of the entry of a sample outbox event (a pull denied by a policy, with
/// its actor and decision: one of the larger entries Bonded writes).
fn entry(seq: u64) -> Vec<u8> {
    let event = store::EventRow {
        seq: i64::try_from(seq).unwrap_or(i64::MAX),
        id: format!("{seq:032x}"),
        kind: "pull.denied".into(),
        repository: Some("team/app".into()),
        digest: Some(format!(
            "sha256:{:064x}",
            seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )),
        tag: None,
        data: format!(
            r#"{{"reason":"critical findings: CVE-2021-44228","decision":{{"rule":"no-critical","verdict":"deny","facts":{{"vulnerabilities.critical":{}}},"policy_digest":"sha256:{:064x}"}}}}"#,
            seq % 3 + 1,
            seq % 5
        ),
        created_at: 1_700_000_000 + i64::try_from(seq).unwrap_or(0),
        actor: Some(format!(
            r#"{{"kind":"anonymous","addr":"10.0.{}.{}:443","user_agent":"containerd/1.7.2","request_id":"01J{seq:020}"}}"#,
            seq / 256 % 256,
            seq % 256
        )),
    };
    AuditEntry::from_event(&event)
        .canonical_bytes()
        .unwrap_or_default()
}

fn median(mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| run()).collect();
    times.sort();
    times.get(ROUNDS / 2).copied().unwrap_or_default()
}

fn per_item_ns(total: Duration, count: u64) -> f64 {
    total.as_nanos() as f64 / count.max(1) as f64
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
