//! Verification of a stored audit log against the checkpoints the server signed: what
//! `bonded audit verify` runs, offline over a data directory or over entries fetched from a
//! server.
//!
//! The inputs are the leaf hashes of the stored entries (hash each entry with
//! [`crate::merkle::leaf_hash`] while streaming them from the store), the leaf hashes the
//! store recorded when each entry was appended, if it keeps them, the latest signed
//! checkpoint, and any earlier checkpoints (the server's history, a copy the client saved).
//!
//! A signed root proves a whole sequence of leaves and nothing smaller, so what can be said
//! about a mismatch depends on what else is at hand:
//! - When the recorded leaf hashes reproduce the signed root, they are the log's authentic
//!   leaves (finding another sequence with that root would break SHA-256), and every stored
//!   entry is compared with them one by one: each changed, removed, inserted or moved entry is
//!   reported by index. This is the usual case when the entries are tampered with outside the
//!   server, since the server writes the leaf hashes to its tree store, not to the entry rows.
//! - Otherwise the stored entries themselves are checked against the signed roots. A mismatch
//!   is then bounded by the checkpoints: entries before the largest earlier checkpoint whose
//!   root they reproduce are proven intact, and the first alteration lies before the smallest
//!   one they do not reproduce ([`Finding::AlteredRange`]); fewer entries than signed is
//!   [`Finding::EntriesMissing`].
//! - Every earlier checkpoint must be a prefix of the latest tree; one that is not means the
//!   log's key signed two histories ([`Finding::Inconsistent`]), one larger than the latest
//!   means the log was rolled back ([`Finding::RolledBack`]).
//!
//! Work is O(n log n) for n stored entries plus O(log n) per earlier checkpoint, memory O(n),
//! and at most [`MAX_FINDINGS`] findings are listed.

use std::collections::HashMap;
use std::fmt;
use std::iter;

use crate::checkpoint::{CheckpointError, CheckpointVerifier, SignedCheckpoint, TreeHead};
use crate::merkle::{Hash, prefix_roots};

/// The most findings a report lists; the rest are counted in [`TamperReport::omitted`].
pub const MAX_FINDINGS: usize = 1000;

/// What the verifier is given.
#[derive(Debug, Clone, Copy)]
pub struct LogEvidence<'a> {
    /// The leaf hashes of the stored entries, in log order.
    pub entry_hashes: &'a [Hash],
    /// The leaf hashes the store recorded at append time, in log order, if it keeps them.
    pub recorded_leaves: Option<&'a [Hash]>,
    /// The latest checkpoint.
    pub latest: &'a SignedCheckpoint,
    /// Earlier checkpoints of the same log, in any order.
    pub earlier: &'a [SignedCheckpoint],
}

/// A log that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLog {
    /// The tree head of the latest checkpoint, which the stored entries reproduce.
    pub head: TreeHead,
    /// When the latest checkpoint was signed, in Unix seconds.
    pub signed_at: u64,
    /// Stored entries appended after the latest checkpoint: not covered by any signature yet.
    pub unsigned_entries: u64,
    /// How many earlier checkpoints were checked to be prefixes of the latest tree.
    pub consistent_checkpoints: usize,
}

/// One way the stored log differs from what the server signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A checkpoint is signed by another key than the log's.
    UnknownKey { size: u64, key_id: String },
    /// A checkpoint's signature does not verify, or the checkpoint cannot be read.
    BadSignature { size: u64, reason: String },
    /// An earlier checkpoint names another log.
    OtherLog { size: u64, origin: String },
    /// An earlier checkpoint covers more entries than the latest: the log was rolled back.
    RolledBack { earlier_size: u64, latest_size: u64 },
    /// An earlier checkpoint's root is not the root of that many entries of the latest tree:
    /// the log's key signed two different histories.
    Inconsistent { earlier_size: u64 },
    /// The recorded leaf hashes do not reproduce the latest signed root: the tree store was
    /// altered as well, so entries are checked against the signed roots alone.
    RecordedLeavesAltered { signed_size: u64 },
    /// The stored entry at `index` is not the entry the log recorded there.
    EntryChanged { index: u64 },
    /// The entry the log recorded at `index` is not stored.
    EntryRemoved { index: u64 },
    /// The stored entry at `position` was never recorded by the log.
    EntryInserted { position: u64 },
    /// The stored entry at `position` is the entry the log recorded at `recorded_at`.
    EntryMoved { position: u64, recorded_at: u64 },
    /// Fewer entries are stored than the latest checkpoint covers.
    EntriesMissing { stored: u64, signed: u64 },
    /// The stored entries do not reproduce a signed root. Entries before `intact_before` are
    /// proven by a checkpoint; the first changed, removed, inserted or moved entry has an
    /// index below `altered_before`.
    AlteredRange {
        intact_before: u64,
        altered_before: u64,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::UnknownKey { size, key_id } => {
                write!(
                    f,
                    "the checkpoint of size {size} is signed by an unknown key {key_id}"
                )
            }
            Finding::BadSignature { size, reason } => {
                write!(
                    f,
                    "the checkpoint of size {size} is not validly signed: {reason}"
                )
            }
            Finding::OtherLog { size, origin } => {
                write!(
                    f,
                    "the checkpoint of size {size} belongs to another log, {origin:?}"
                )
            }
            Finding::RolledBack {
                earlier_size,
                latest_size,
            } => write!(
                f,
                "an earlier checkpoint covers {earlier_size} entries but the latest only \
                 {latest_size}: the log was rolled back"
            ),
            Finding::Inconsistent { earlier_size } => write!(
                f,
                "the checkpoint of size {earlier_size} is not a prefix of the latest tree: \
                 the log's history was rewritten and signed again"
            ),
            Finding::RecordedLeavesAltered { signed_size } => write!(
                f,
                "the recorded leaf hashes do not reproduce the signed root of size \
                 {signed_size}: the tree store was altered too"
            ),
            Finding::EntryChanged { index } => write!(f, "entry {index} was changed"),
            Finding::EntryRemoved { index } => write!(f, "entry {index} was removed"),
            Finding::EntryInserted { position } => {
                write!(
                    f,
                    "the entry stored at {position} was never recorded by the log"
                )
            }
            Finding::EntryMoved {
                position,
                recorded_at,
            } => write!(
                f,
                "the entry stored at {position} was recorded at {recorded_at}: entries were reordered"
            ),
            Finding::EntriesMissing { stored, signed } => write!(
                f,
                "{stored} entries are stored but the latest checkpoint covers {signed}: entries \
                 were removed"
            ),
            Finding::AlteredRange {
                intact_before,
                altered_before,
            } => write!(
                f,
                "the entries do not reproduce the signed root: entries 0..{intact_before} are \
                 proven intact, and an entry below {altered_before} was changed, removed, \
                 inserted or moved"
            ),
        }
    }
}

/// Why a log failed verification: every finding, in the order found, up to [`MAX_FINDINGS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperReport {
    pub findings: Vec<Finding>,
    /// Findings beyond [`MAX_FINDINGS`], counted but not listed.
    pub omitted: u64,
}

impl fmt::Display for TamperReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = u64::try_from(self.findings.len())
            .unwrap_or(u64::MAX)
            .saturating_add(self.omitted);
        write!(f, "the audit log failed verification ({total} finding(s))")?;
        for finding in &self.findings {
            write!(f, "; {finding}")?;
        }
        if self.omitted > 0 {
            write!(f, "; and {} more", self.omitted)?;
        }
        Ok(())
    }
}

impl std::error::Error for TamperReport {}

/// Verifies the stored log against the latest checkpoint and the earlier ones, with the
/// log's public key.
pub fn verify_log(
    evidence: &LogEvidence<'_>,
    verifier: &dyn CheckpointVerifier,
) -> Result<VerifiedLog, TamperReport> {
    let mut report = TamperReport {
        findings: Vec::new(),
        omitted: 0,
    };
    let latest = match evidence.latest.verify(verifier) {
        Ok(head) => head,
        Err(error) => {
            report.push(checkpoint_finding(evidence.latest, error));
            return Err(report);
        }
    };
    let earlier = trusted_earlier(evidence.earlier, &latest, verifier, &mut report);
    let sizes: Vec<u64> = iter::once(latest.size)
        .chain(earlier.iter().map(|head| head.size))
        .collect();

    let recorded = evidence
        .recorded_leaves
        .map(|leaves| (leaves, signed_prefix_roots(leaves, &latest, &sizes)));
    let authentic = match recorded {
        Some((leaves, Some(roots))) => {
            compare_entries(evidence.entry_hashes, leaves, &mut report);
            Some(roots)
        }
        Some((_, None)) => {
            report.push(Finding::RecordedLeavesAltered {
                signed_size: latest.size,
            });
            signed_prefix_roots(evidence.entry_hashes, &latest, &sizes)
        }
        None => signed_prefix_roots(evidence.entry_hashes, &latest, &sizes),
    };
    let consistent_checkpoints = match authentic {
        Some(roots) => check_earlier(&earlier, roots.get(1..).unwrap_or_default(), &mut report),
        None => {
            locate_alteration(evidence.entry_hashes, &latest, &earlier, &mut report);
            0
        }
    };

    if report.findings.is_empty() {
        Ok(VerifiedLog {
            unsigned_entries: len_u64(evidence.entry_hashes).saturating_sub(latest.size),
            head: latest,
            signed_at: evidence.latest.time,
            consistent_checkpoints,
        })
    } else {
        Err(report)
    }
}

impl TamperReport {
    fn push(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }
}

/// The earlier checkpoints that are validly signed, of this log and not larger than the
/// latest; the others become findings.
fn trusted_earlier(
    checkpoints: &[SignedCheckpoint],
    latest: &TreeHead,
    verifier: &dyn CheckpointVerifier,
    report: &mut TamperReport,
) -> Vec<TreeHead> {
    let mut trusted = Vec::new();
    for checkpoint in checkpoints {
        match checkpoint.verify(verifier) {
            Err(error) => report.push(checkpoint_finding(checkpoint, error)),
            Ok(head) if head.origin != latest.origin => report.push(Finding::OtherLog {
                size: head.size,
                origin: head.origin,
            }),
            Ok(head) if head.size > latest.size => report.push(Finding::RolledBack {
                earlier_size: head.size,
                latest_size: latest.size,
            }),
            Ok(head) => trusted.push(head),
        }
    }
    trusted
}

fn checkpoint_finding(checkpoint: &SignedCheckpoint, error: CheckpointError) -> Finding {
    match error {
        CheckpointError::UnknownKey { size, found, .. } => Finding::UnknownKey {
            size,
            key_id: found,
        },
        other => Finding::BadSignature {
            size: checkpoint.size,
            reason: other.to_string(),
        },
    }
}

/// The roots of `leaves` at `sizes` (the latest size first), if the leaves reproduce the
/// latest signed root.
fn signed_prefix_roots(leaves: &[Hash], latest: &TreeHead, sizes: &[u64]) -> Option<Vec<Hash>> {
    let roots = prefix_roots(leaves, sizes).ok()?;
    (roots.first() == Some(&latest.root)).then_some(roots)
}

/// Checks each earlier checkpoint against the authentic root of its size; returns how many
/// agree.
fn check_earlier(earlier: &[TreeHead], roots: &[Hash], report: &mut TamperReport) -> usize {
    let mut consistent = 0;
    for (head, root) in earlier.iter().zip(roots) {
        if head.root == *root {
            consistent += 1;
        } else {
            report.push(Finding::Inconsistent {
                earlier_size: head.size,
            });
        }
    }
    consistent
}

/// Bounds the first alteration of entries that do not reproduce the latest signed root, with
/// the earlier checkpoints they can be checked against.
fn locate_alteration(
    entries: &[Hash],
    latest: &TreeHead,
    earlier: &[TreeHead],
    report: &mut TamperReport,
) {
    let stored = len_u64(entries);
    if stored < latest.size {
        report.push(Finding::EntriesMissing {
            stored,
            signed: latest.size,
        });
    }
    let checkable: Vec<&TreeHead> = earlier.iter().filter(|head| head.size <= stored).collect();
    let sizes: Vec<u64> = checkable.iter().map(|head| head.size).collect();
    let roots = prefix_roots(entries, &sizes).unwrap_or_default();
    let matches: Vec<(&TreeHead, bool)> = checkable
        .into_iter()
        .zip(&roots)
        .map(|(head, root)| (head, head.root == *root))
        .collect();
    let intact_before = matches
        .iter()
        .filter(|(_, matched)| *matched)
        .map(|(head, _)| head.size)
        .max()
        .unwrap_or(0);
    // A checkpoint the entries do not reproduce, below one they do, cannot be explained by
    // altered entries: the key signed a different history.
    for (head, matched) in &matches {
        if !matched && head.size <= intact_before {
            report.push(Finding::Inconsistent {
                earlier_size: head.size,
            });
        }
    }
    let altered_before = matches
        .iter()
        .filter(|(head, matched)| !matched && head.size > intact_before)
        .map(|(head, _)| head.size)
        .chain(iter::once(latest.size))
        .min()
        .unwrap_or(latest.size);
    report.push(Finding::AlteredRange {
        intact_before,
        altered_before,
    });
}

/// Compares the stored entries with the authentic recorded leaves and reports each
/// difference by index.
///
/// The common prefix and suffix are skipped first, so an intact log costs one pass. In the
/// part that differs, each stored entry is matched to the recorded leaf with its hash (in
/// order, for repeated hashes) or is foreign. Matched entries in a longest run that keeps
/// the recorded order stay in place; the others were moved. Walking the stored entries in
/// order, recorded leaves skipped over were removed, and a foreign entry where an unmatched
/// leaf was expected is that entry changed; other foreign entries were inserted.
fn compare_entries(stored: &[Hash], recorded: &[Hash], report: &mut TamperReport) {
    let prefix = stored
        .iter()
        .zip(recorded)
        .take_while(|(entry, leaf)| entry == leaf)
        .count();
    let stored_rest = stored.get(prefix..).unwrap_or_default();
    let recorded_rest = recorded.get(prefix..).unwrap_or_default();
    let suffix = stored_rest
        .iter()
        .rev()
        .zip(recorded_rest.iter().rev())
        .take_while(|(entry, leaf)| entry == leaf)
        .count();
    let stored_window = stored_rest
        .get(..stored_rest.len() - suffix)
        .unwrap_or_default();
    let recorded_window = recorded_rest
        .get(..recorded_rest.len() - suffix)
        .unwrap_or_default();
    if stored_window.is_empty() && recorded_window.is_empty() {
        return;
    }

    let matched = match_recorded(stored_window, recorded_window);
    let kept_in_order = in_order(&matched, recorded_window.len());
    let offset = usize_u64(prefix);
    let mut claimed = vec![false; recorded_window.len()];
    for slot in claimed_slots(&matched) {
        if let Some(flag) = claimed.get_mut(slot) {
            *flag = true;
        }
    }

    let mut expected = 0usize;
    let unclaimed_before = |from: usize, to: usize| -> Vec<usize> {
        (from..to)
            .filter(|&slot| !claimed.get(slot).copied().unwrap_or(true))
            .collect()
    };
    for (position, (matched, kept)) in matched.iter().zip(&kept_in_order).enumerate() {
        match (matched, kept) {
            (Some(slot), true) => {
                for removed in unclaimed_before(expected, *slot) {
                    report.push(Finding::EntryRemoved {
                        index: offset + usize_u64(removed),
                    });
                }
                expected = slot + 1;
            }
            (Some(slot), false) => report.push(Finding::EntryMoved {
                position: offset + usize_u64(position),
                recorded_at: offset + usize_u64(*slot),
            }),
            (None, _) => {
                let replaces_expected = expected < recorded_window.len()
                    && !claimed.get(expected).copied().unwrap_or(true);
                if replaces_expected {
                    report.push(Finding::EntryChanged {
                        index: offset + usize_u64(expected),
                    });
                    expected += 1;
                } else {
                    report.push(Finding::EntryInserted {
                        position: offset + usize_u64(position),
                    });
                }
            }
        }
    }
    for removed in unclaimed_before(expected, recorded_window.len()) {
        report.push(Finding::EntryRemoved {
            index: offset + usize_u64(removed),
        });
    }
}

/// For each stored entry, the position in `recorded` of a leaf with its hash, each recorded
/// position used once, in order among equal hashes; `None` for entries the log never recorded.
fn match_recorded(stored: &[Hash], recorded: &[Hash]) -> Vec<Option<usize>> {
    let mut positions: HashMap<&Hash, std::vec::IntoIter<usize>> = {
        let mut by_hash: HashMap<&Hash, Vec<usize>> = HashMap::new();
        for (slot, leaf) in recorded.iter().enumerate() {
            by_hash.entry(leaf).or_default().push(slot);
        }
        by_hash
            .into_iter()
            .map(|(hash, slots)| (hash, slots.into_iter()))
            .collect()
    };
    stored
        .iter()
        .map(|entry| positions.get_mut(entry).and_then(Iterator::next))
        .collect()
}

fn claimed_slots(matched: &[Option<usize>]) -> impl Iterator<Item = usize> + '_ {
    matched.iter().flatten().copied()
}

/// Marks the matched entries that stay in place: one longest run of increasing recorded
/// positions, and among the longest runs the one with the most entries at their own index
/// (so that in a swap around an untouched entry, the untouched one stays). Unmatched entries
/// are marked `false`.
///
/// This is a longest increasing subsequence weighted by (length, entries in place), found in
/// O(n log n) with a Fenwick tree of prefix maxima over the recorded positions.
fn in_order(matched: &[Option<usize>], recorded_len: usize) -> Vec<bool> {
    // `best[j]` covers a Fenwick range of recorded positions: the best run ending there, as
    // ((length, entries in place), last entry).
    let mut best: Vec<Option<(RunWeight, usize)>> = vec![None; recorded_len + 1];
    let mut predecessor: Vec<Option<usize>> = vec![None; matched.len()];
    let mut overall: Option<(RunWeight, usize)> = None;
    for (entry, slot) in matched.iter().enumerate() {
        let Some(slot) = *slot else {
            continue;
        };
        let before = best_before(&best, slot);
        let base = before.map_or((0, 0), |(weight, _)| weight);
        let weight = (base.0 + 1, base.1 + usize::from(slot == entry));
        if let Some(link) = predecessor.get_mut(entry) {
            *link = before.map(|(_, previous)| previous);
        }
        let candidate = (weight, entry);
        let mut node = slot + 1;
        while let Some(cell) = best.get_mut(node) {
            if cell.is_none_or(|(current, _)| current < weight) {
                *cell = Some(candidate);
            }
            node += node & node.wrapping_neg();
        }
        if overall.is_none_or(|(current, _)| current < weight) {
            overall = Some(candidate);
        }
    }
    let mut kept = vec![false; matched.len()];
    let mut cursor = overall.map(|(_, entry)| entry);
    while let Some(entry) = cursor {
        if let Some(flag) = kept.get_mut(entry) {
            *flag = true;
        }
        cursor = predecessor.get(entry).copied().flatten();
    }
    kept
}

/// (run length, entries at their own index), compared in that order.
type RunWeight = (usize, usize);

/// The best run ending at a recorded position below `slot`.
fn best_before(best: &[Option<(RunWeight, usize)>], slot: usize) -> Option<(RunWeight, usize)> {
    let mut found: Option<(RunWeight, usize)> = None;
    let mut node = slot;
    while node > 0 {
        if let Some(Some(cell)) = best.get(node)
            && found.is_none_or(|(current, _)| current < cell.0)
        {
            found = Some(*cell);
        }
        node &= node - 1;
    }
    found
}

fn len_u64(hashes: &[Hash]) -> u64 {
    usize_u64(hashes.len())
}

fn usize_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
