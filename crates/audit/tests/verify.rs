//! The verifier names each kind of tampering: changed, removed, inserted and moved entries
//! (precisely, with the recorded leaf hashes; bounded by checkpoints without them), bad
//! signatures, foreign keys, rollbacks and rewritten histories.

use audit::checkpoint::{SignedCheckpoint, TreeHead};
use audit::merkle::{Hash, empty_root, leaf_hash, root_at};
use audit::verify::{Finding, LogEvidence, MAX_FINDINGS, TamperReport, VerifiedLog, verify_log};
use proptest::prelude::*;

use crate::support::{TestKey, leaves};

const ORIGIN: &str = "bonded.example/audit";
const SIZE: u64 = 100;
/// The server signed a checkpoint every 25 entries.
const EARLIER_SIZES: [u64; 3] = [25, 50, 75];

fn checkpoint(leaves: &[Hash], size: u64, key: &TestKey) -> SignedCheckpoint {
    let root = root_at(leaves, size).expect("root");
    let head = TreeHead::new(ORIGIN, size, root).expect("origin");
    SignedCheckpoint::sign(&head, 1_700_000_000 + size, key).expect("sign")
}

/// A log of `SIZE` entries with its checkpoints, as the server wrote it.
struct Log {
    key: TestKey,
    recorded: Vec<Hash>,
    latest: SignedCheckpoint,
    earlier: Vec<SignedCheckpoint>,
}

impl Log {
    fn new() -> Log {
        let key = TestKey::new(1);
        let recorded = leaves(SIZE);
        let latest = checkpoint(&recorded, SIZE, &key);
        let earlier = EARLIER_SIZES
            .iter()
            .map(|&size| checkpoint(&recorded, size, &key))
            .collect();
        Log {
            key,
            recorded,
            latest,
            earlier,
        }
    }

    /// Verifies `stored` entry hashes, with the recorded leaf hashes or without them.
    fn verify(&self, stored: &[Hash], with_recorded: bool) -> Result<VerifiedLog, TamperReport> {
        let evidence = LogEvidence {
            entry_hashes: stored,
            recorded_leaves: with_recorded.then_some(self.recorded.as_slice()),
            latest: &self.latest,
            earlier: &self.earlier,
        };
        verify_log(&evidence, &self.key.public())
    }

    fn findings(&self, stored: &[Hash], with_recorded: bool) -> Vec<Finding> {
        match self.verify(stored, with_recorded) {
            Ok(verified) => panic!("tampering went unnoticed: {verified:?}"),
            Err(report) => {
                assert_eq!(report.omitted, 0);
                report.findings
            }
        }
    }
}

fn forged(text: &str) -> Hash {
    leaf_hash(text.as_bytes())
}

#[test]
fn an_intact_log_verifies_with_and_without_recorded_leaves() {
    let log = Log::new();
    for with_recorded in [true, false] {
        let verified = log.verify(&log.recorded, with_recorded).expect("intact");
        assert_eq!(verified.head.size, SIZE);
        assert_eq!(verified.head.root, log.latest.root);
        assert_eq!(verified.signed_at, log.latest.time);
        assert_eq!(verified.unsigned_entries, 0);
        assert_eq!(verified.consistent_checkpoints, 3);
    }
}

#[test]
fn entries_after_the_latest_checkpoint_are_counted_as_unsigned() {
    let mut log = Log::new();
    log.recorded.extend([forged("101"), forged("102")]);
    let verified = log.verify(&log.recorded, true).expect("intact");
    assert_eq!(verified.unsigned_entries, 2);
}

#[test]
fn a_changed_entry_is_named() {
    let log = Log::new();
    let mut stored = log.recorded.clone();
    stored[37] = forged("changed");
    assert_eq!(
        log.findings(&stored, true),
        [Finding::EntryChanged { index: 37 }]
    );
    assert_eq!(
        log.findings(&stored, false),
        [Finding::AlteredRange {
            intact_before: 25,
            altered_before: 50
        }]
    );
}

#[test]
fn a_removed_entry_is_named() {
    let log = Log::new();
    let mut stored = log.recorded.clone();
    stored.remove(37);
    assert_eq!(
        log.findings(&stored, true),
        [Finding::EntryRemoved { index: 37 }]
    );
    assert_eq!(
        log.findings(&stored, false),
        [
            Finding::EntriesMissing {
                stored: 99,
                signed: 100
            },
            Finding::AlteredRange {
                intact_before: 25,
                altered_before: 50
            }
        ]
    );
}

#[test]
fn removed_last_entries_are_named() {
    let log = Log::new();
    let stored = &log.recorded[..97];
    assert_eq!(
        log.findings(stored, true),
        [
            Finding::EntryRemoved { index: 97 },
            Finding::EntryRemoved { index: 98 },
            Finding::EntryRemoved { index: 99 }
        ]
    );
    assert_eq!(
        log.findings(stored, false),
        [
            Finding::EntriesMissing {
                stored: 97,
                signed: 100
            },
            Finding::AlteredRange {
                intact_before: 75,
                altered_before: 100
            }
        ]
    );
}

#[test]
fn an_inserted_entry_is_named() {
    let log = Log::new();
    let mut stored = log.recorded.clone();
    stored.insert(20, forged("inserted"));
    assert_eq!(
        log.findings(&stored, true),
        [Finding::EntryInserted { position: 20 }]
    );
    assert_eq!(
        log.findings(&stored, false),
        [Finding::AlteredRange {
            intact_before: 0,
            altered_before: 25
        }]
    );
}

#[test]
fn reordered_entries_are_named() {
    let log = Log::new();
    let mut swapped = log.recorded.clone();
    swapped.swap(10, 60);
    assert_eq!(
        log.findings(&swapped, true),
        [
            Finding::EntryMoved {
                position: 10,
                recorded_at: 60
            },
            Finding::EntryMoved {
                position: 60,
                recorded_at: 10
            }
        ]
    );
    assert_eq!(
        log.findings(&swapped, false),
        [Finding::AlteredRange {
            intact_before: 0,
            altered_before: 25
        }]
    );
    // Two neighbours swapped: one of them is out of place.
    let mut adjacent = log.recorded.clone();
    adjacent.swap(61, 62);
    let findings = log.findings(&adjacent, true);
    assert!(
        findings
            == [Finding::EntryMoved {
                position: 61,
                recorded_at: 62
            }]
            || findings
                == [Finding::EntryMoved {
                    position: 62,
                    recorded_at: 61
                }],
        "{findings:?}"
    );
    assert_eq!(
        log.findings(&adjacent, false),
        [Finding::AlteredRange {
            intact_before: 50,
            altered_before: 75
        }]
    );
    // Two entries swapped around one that stays: the one between is not reported.
    let mut around = log.recorded.clone();
    around.swap(40, 42);
    assert_eq!(
        log.findings(&around, true),
        [
            Finding::EntryMoved {
                position: 40,
                recorded_at: 42
            },
            Finding::EntryMoved {
                position: 42,
                recorded_at: 40
            }
        ]
    );
    // One entry moved further down: only that entry is out of place.
    let mut moved = log.recorded.clone();
    let entry = moved.remove(30);
    moved.insert(40, entry);
    assert_eq!(
        log.findings(&moved, true),
        [Finding::EntryMoved {
            position: 40,
            recorded_at: 30
        }]
    );
}

#[test]
fn several_kinds_together_are_each_named() {
    let log = Log::new();
    let mut stored = log.recorded.clone();
    stored[90] = forged("changed");
    stored.remove(5);
    assert_eq!(
        log.findings(&stored, true),
        [
            Finding::EntryRemoved { index: 5 },
            Finding::EntryChanged { index: 90 }
        ]
    );
}

#[test]
fn altered_recorded_leaves_fall_back_to_the_checkpoints() {
    let log = Log::new();
    let mut stored = log.recorded.clone();
    stored[60] = forged("changed");
    let evidence = LogEvidence {
        entry_hashes: &stored,
        // The attacker rewrote the tree store too.
        recorded_leaves: Some(&stored),
        latest: &log.latest,
        earlier: &log.earlier,
    };
    let report = verify_log(&evidence, &log.key.public()).expect_err("detected");
    assert_eq!(
        report.findings,
        [
            Finding::RecordedLeavesAltered { signed_size: 100 },
            Finding::AlteredRange {
                intact_before: 50,
                altered_before: 75
            }
        ]
    );
}

#[test]
fn a_bad_signature_on_the_latest_checkpoint_stops_verification() {
    let mut log = Log::new();
    log.latest.signature[10] ^= 1;
    let findings = log.findings(&log.recorded, true);
    assert!(
        matches!(
            findings.as_slice(),
            [Finding::BadSignature { size: 100, .. }]
        ),
        "{findings:?}"
    );
    // A checkpoint the attacker signed with their own key over the altered entries.
    let mut log = Log::new();
    let attacker = TestKey::new(7);
    let mut stored = log.recorded.clone();
    stored[3] = forged("changed");
    log.latest = checkpoint(&stored, SIZE, &attacker);
    let findings = log.findings(&stored, false);
    assert_eq!(
        findings,
        [Finding::UnknownKey {
            size: 100,
            key_id: audit::checkpoint::CheckpointSigner::key_id(&attacker)
        }]
    );
}

#[test]
fn a_bad_signature_on_an_earlier_checkpoint_is_reported() {
    let mut log = Log::new();
    log.earlier[1].time += 1;
    let findings = log.findings(&log.recorded, true);
    assert!(
        matches!(
            findings.as_slice(),
            [Finding::BadSignature { size: 50, .. }]
        ),
        "{findings:?}"
    );
}

#[test]
fn an_inconsistent_earlier_checkpoint_is_reported() {
    // The key holder rewrote entry 10 and signed the new history; the client kept a
    // checkpoint of the old one.
    let log = Log::new();
    let mut rewritten = log.recorded.clone();
    rewritten[10] = forged("rewritten");
    let saved = checkpoint(&log.recorded, 50, &log.key);
    let fork = Log {
        latest: checkpoint(&rewritten, SIZE, &log.key),
        earlier: vec![saved],
        recorded: rewritten.clone(),
        key: TestKey::new(1),
    };
    for with_recorded in [true, false] {
        assert_eq!(
            fork.findings(&rewritten, with_recorded),
            [Finding::Inconsistent { earlier_size: 50 }]
        );
    }
}

#[test]
fn an_inconsistent_checkpoint_below_an_intact_one_is_reported_without_recorded_leaves() {
    let log = Log::new();
    let mut other_history = log.recorded.clone();
    other_history[3] = forged("other");
    let mut stored = log.recorded.clone();
    stored[80] = forged("changed");
    let fork = Log {
        earlier: vec![
            checkpoint(&other_history, 25, &log.key),
            checkpoint(&log.recorded, 75, &log.key),
        ],
        ..Log::new()
    };
    assert_eq!(
        fork.findings(&stored, false),
        [
            Finding::Inconsistent { earlier_size: 25 },
            Finding::AlteredRange {
                intact_before: 75,
                altered_before: 100
            }
        ]
    );
}

#[test]
fn a_rolled_back_log_is_reported() {
    let log = Log::new();
    let mut longer = log.recorded.clone();
    longer.extend([forged("101"), forged("102")]);
    let rolled_back = Log {
        earlier: vec![checkpoint(&longer, 102, &log.key)],
        ..Log::new()
    };
    assert_eq!(
        rolled_back.findings(&log.recorded, true),
        [Finding::RolledBack {
            earlier_size: 102,
            latest_size: 100
        }]
    );
}

#[test]
fn a_checkpoint_of_another_log_is_reported() {
    let log = Log::new();
    let root = root_at(&log.recorded, 10).expect("root");
    let head = TreeHead::new("elsewhere.example/audit", 10, root).expect("origin");
    let other = Log {
        earlier: vec![SignedCheckpoint::sign(&head, 1, &log.key).expect("sign")],
        ..Log::new()
    };
    assert_eq!(
        other.findings(&log.recorded, true),
        [Finding::OtherLog {
            size: 10,
            origin: "elsewhere.example/audit".into()
        }]
    );
}

#[test]
fn an_empty_log_verifies() {
    let key = TestKey::new(1);
    let head = TreeHead::new(ORIGIN, 0, empty_root()).expect("origin");
    let latest = SignedCheckpoint::sign(&head, 1, &key).expect("sign");
    let evidence = LogEvidence {
        entry_hashes: &[],
        recorded_leaves: Some(&[]),
        latest: &latest,
        earlier: &[],
    };
    let verified = verify_log(&evidence, &key.public()).expect("empty log");
    assert_eq!(verified.head.size, 0);
}

#[test]
fn findings_are_capped() {
    let key = TestKey::new(1);
    let recorded = leaves(3000);
    let latest = checkpoint(&recorded, 3000, &key);
    let stored: Vec<Hash> = (0..3000)
        .map(|i| {
            if i % 2 == 0 {
                forged(&format!("changed {i}"))
            } else {
                recorded[i]
            }
        })
        .collect();
    let evidence = LogEvidence {
        entry_hashes: &stored,
        recorded_leaves: Some(&recorded),
        latest: &latest,
        earlier: &[],
    };
    let report = verify_log(&evidence, &key.public()).expect_err("detected");
    assert_eq!(report.findings.len(), MAX_FINDINGS);
    assert_eq!(report.omitted, 500);
    assert_eq!(report.findings[0], Finding::EntryChanged { index: 0 });
    assert!(report.to_string().contains("1500 finding(s)"));
}

#[derive(Debug, Clone)]
enum Tamper {
    Change(usize),
    Remove(usize),
    Insert(usize),
    Swap(usize, usize),
}

impl Tamper {
    fn apply(&self, leaves: &mut Vec<Hash>) {
        match *self {
            Tamper::Change(index) => leaves[index] = forged("changed"),
            Tamper::Remove(index) => {
                leaves.remove(index);
            }
            Tamper::Insert(index) => leaves.insert(index, forged("inserted")),
            Tamper::Swap(a, b) => leaves.swap(a, b),
        }
    }

    /// What the verifier must say with the recorded leaf hashes at hand.
    fn expected(&self) -> Vec<Finding> {
        let at = |index: usize| index as u64;
        match *self {
            Tamper::Change(index) => vec![Finding::EntryChanged { index: at(index) }],
            Tamper::Remove(index) => vec![Finding::EntryRemoved { index: at(index) }],
            Tamper::Insert(index) => vec![Finding::EntryInserted {
                position: at(index),
            }],
            Tamper::Swap(a, b) if b == a + 1 => vec![Finding::EntryMoved {
                position: at(b),
                recorded_at: at(a),
            }],
            Tamper::Swap(a, b) => vec![
                Finding::EntryMoved {
                    position: at(a),
                    recorded_at: at(b),
                },
                Finding::EntryMoved {
                    position: at(b),
                    recorded_at: at(a),
                },
            ],
        }
    }
}

/// Changing, removing, inserting or reordering any single entry of the log is detected,
/// named exactly with the recorded leaves, and detected without them.
#[test]
fn every_single_entry_tampering_is_detected() {
    let log = Log::new();
    let size = SIZE as usize;
    let mut tampers: Vec<Tamper> = Vec::new();
    for index in 0..size {
        tampers.extend([
            Tamper::Change(index),
            Tamper::Remove(index),
            Tamper::Insert(index),
        ]);
        if index + 1 < size {
            tampers.push(Tamper::Swap(index, index + 1));
        }
        for distance in [2, 3, 7] {
            if index + distance < size {
                tampers.push(Tamper::Swap(index, index + distance));
            }
        }
    }
    for tamper in tampers {
        let mut stored = log.recorded.clone();
        tamper.apply(&mut stored);
        let exact = log.findings(&stored, true);
        // A swap of neighbours may name either of the two.
        if let Tamper::Swap(a, b) = tamper
            && b == a + 1
        {
            assert_eq!(exact.len(), 1, "{tamper:?}: {exact:?}");
        } else {
            assert_eq!(exact, tamper.expected(), "{tamper:?}");
        }
        let bounded = log.findings(&stored, false);
        assert!(
            bounded
                .iter()
                .any(|finding| matches!(finding, Finding::AlteredRange { .. })),
            "{tamper:?}: {bounded:?}"
        );
    }
}

fn tamper_strategy(size: usize) -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (0..size).prop_map(Tamper::Change),
        (0..size).prop_map(Tamper::Remove),
        (0..=size).prop_map(Tamper::Insert),
        Just(Tamper::Insert(size)),
        (0..size, 2..size).prop_map(move |(a, distance)| {
            let b = (a + distance) % size;
            Tamper::Swap(a.min(b), a.max(b))
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single tampering, anywhere in logs of any size, with checkpoints anywhere, is
    /// named exactly with recorded leaves and bounded correctly without them.
    #[test]
    fn random_single_tampering_is_named_and_bounded(
        (size, tamper) in (3usize..400).prop_flat_map(|size| (Just(size), tamper_strategy(size))),
        checkpoint_seeds in prop::collection::vec(any::<u64>(), 0..6),
    ) {
        prop_assume!(!matches!(tamper, Tamper::Swap(a, b) if a == b));
        let key = TestKey::new(1);
        let recorded = leaves(size as u64);
        let latest = checkpoint(&recorded, size as u64, &key);
        let earlier: Vec<SignedCheckpoint> = checkpoint_seeds
            .iter()
            .map(|seed| checkpoint(&recorded, seed % (size as u64 + 1), &key))
            .collect();
        let mut stored = recorded.clone();
        tamper.apply(&mut stored);
        let verify = |with_recorded: bool| {
            verify_log(
                &LogEvidence {
                    entry_hashes: &stored,
                    recorded_leaves: with_recorded.then_some(recorded.as_slice()),
                    latest: &latest,
                    earlier: &earlier,
                },
                &key.public(),
            )
        };
        let exact = verify(true).expect_err("detected").findings;
        match tamper {
            Tamper::Swap(a, b) if b == a + 1 => prop_assert_eq!(exact.len(), 1),
            _ => prop_assert_eq!(exact, tamper.expected()),
        }
        if let Tamper::Insert(index) = tamper
            && index == size
        {
            // Past the last signed entry, without the recorded leaves, an inserted entry is
            // indistinguishable from one appended after the checkpoint.
            let verified = verify(false).expect("prefix intact");
            prop_assert_eq!(verified.unsigned_entries, 1);
            return Ok(());
        }
        let bounded = verify(false).expect_err("detected").findings;
        let first_altered = match tamper {
            Tamper::Change(index) | Tamper::Remove(index) | Tamper::Insert(index) => index,
            Tamper::Swap(a, _) => a,
        } as u64;
        let range = bounded.iter().find_map(|finding| match finding {
            Finding::AlteredRange { intact_before, altered_before } => {
                Some((*intact_before, *altered_before))
            }
            _ => None,
        });
        let Some((intact_before, altered_before)) = range else {
            return Err(TestCaseError::fail(format!("no range in {bounded:?}")));
        };
        prop_assert!(intact_before <= first_altered, "{bounded:?} for {tamper:?}");
        prop_assert!(first_altered < altered_before, "{bounded:?} for {tamper:?}");
    }
}
