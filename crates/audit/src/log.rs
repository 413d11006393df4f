//! The audit log service: appends an entry per outbox event, keeps the Merkle tree over them,
//! signs checkpoints with the server's key, and answers for proofs.
//!
//! [`AuditLog::handle`] is the outbox consumer's handler (the lead's `events::outbox` runner
//! calls it with each batch, and again after an error or a crash). It:
//! 1. builds each event's entry ([`crate::entry`]) and its leaf hash;
//! 2. appends them in one transaction; an event already in the log is skipped, so a replayed
//!    batch adds nothing and leaves the same tree;
//! 3. extends its copy of the tree's right edge (O(log n) hashes, kept in memory) with the
//!    leaves the store accepted, checking that the store gave the indexes the tree expects;
//! 4. if the tree is larger than the latest checkpoint, signs a checkpoint of the whole tree
//!    (origin, size, root, time) and stores it. So there is at most one new checkpoint per
//!    batch, and a crash between steps 2 and 4 is mended by the next call, which appends
//!    nothing and signs the tree left unsigned.
//!
//! The right edge is loaded from the recorded leaf hashes at first use. Before extending a
//! tree, the service checks that the recorded leaves have no gap, reproduce the root of the
//! latest signed checkpoint, and after it are the hashes of the entries stored at their
//! indexes: it never signs on top of a store that was altered behind its back (it fails with
//! [`AuditError::TreeStoreAltered`] or [`AuditError::UnsignedEntryAltered`], and the outbox
//! retries, until the log is restored from a backup), since signing would launder the
//! alteration. After any failure it reloads, so these checks run again.
//!
//! Proofs are computed from the recorded leaf hashes, streamed from the store page by page
//! (O(size) hashes, O(log size) memory each); at most [`PROOFS_AT_ONCE`] are computed at a
//! time, since the proof endpoints are public.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use store::{
    AuditCheckpointRow, AuditQuery, AuditReader, AuditStore, EventRow, MAX_AUDIT_PAGE,
    NewAuditEntry, StoreError,
};
use tokio::sync::{Mutex, Semaphore};
use trust::keys::{PublicKey, SigningKey};

use crate::checkpoint::{CheckpointError, SignedCheckpoint, TreeHead};
use crate::entry::{AuditEntry, EntryError};
use crate::merkle::{
    ConsistencyProof, ConsistencyProofBuilder, Hash, InclusionProof, InclusionProofBuilder,
    MerkleError, MerkleLog, empty_root, leaf_hash,
};

/// The log name used when the configuration gives none.
pub const DEFAULT_ORIGIN: &str = "bonded.local/audit";
/// The most proofs computed at once.
pub const PROOFS_AT_ONCE: usize = 2;

/// Why the audit log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log storage failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    #[error(
        "the recorded leaf hashes jump from index {expected} to {found}: the tree store was \
         altered; run `bonded audit verify`"
    )]
    LeafGap { expected: u64, found: i64 },
    #[error(
        "the recorded leaf hashes do not reproduce the signed checkpoint of size {size}: the \
         tree store was altered; no checkpoint is signed until the log is restored (run \
         `bonded audit verify` to see what changed)"
    )]
    TreeStoreAltered { size: u64 },
    #[error(
        "the entry at index {index} does not match the leaf hash recorded for it, and no \
         checkpoint covers it yet: the store was altered; no checkpoint is signed until the log \
         is restored"
    )]
    UnsignedEntryAltered { index: u64 },
    #[error("the store gave the new entry index {given}, but the tree has {expected} leaves")]
    IndexMismatch { given: i64, expected: u64 },
    #[error("the stored checkpoint of size {size} is unreadable: {reason}")]
    CorruptCheckpoint { size: i64, reason: &'static str },
    #[error("event {event_id} is not in the audit log")]
    UnknownEvent { event_id: String },
    #[error("the audit log has no signed checkpoint yet")]
    NoCheckpoint,
}

/// An inclusion proof with what a client needs to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub proof: InclusionProof,
    /// The leaf hash recorded at the proof's index.
    pub leaf_hash: Hash,
    /// The checkpoint of the proof's tree size, if the server signed one of that size.
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A consistency proof with the checkpoints of its two sizes, where the server signed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    pub proof: ConsistencyProof,
    pub old_checkpoint: Option<SignedCheckpoint>,
    pub new_checkpoint: Option<SignedCheckpoint>,
}

/// The audit log of one server.
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    key: Arc<SigningKey>,
    origin: String,
    /// The right edge of the recorded tree, loaded at first use; held while appending, so
    /// appends are serialized. `None` until loaded and after any failure, to reload.
    tree: Mutex<Option<MerkleLog>>,
    proofs: Semaphore,
}

impl AuditLog {
    /// The log named `origin` (a C2SP log name such as [`DEFAULT_ORIGIN`]: no spaces, no
    /// `+`), signed with the server's `key`.
    pub fn new(
        store: Arc<dyn AuditStore>,
        key: Arc<SigningKey>,
        origin: impl Into<String>,
    ) -> Result<AuditLog, AuditError> {
        let origin = TreeHead::new(origin, 0, empty_root())?.origin;
        Ok(AuditLog {
            store,
            key,
            origin,
            tree: Mutex::new(None),
            proofs: Semaphore::new(PROOFS_AT_ONCE),
        })
    }

    /// The log's name, as its checkpoints state it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key that verifies this server's checkpoints.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The store's read side, for the audit API's queries.
    pub fn reader(&self) -> &dyn AuditReader {
        &*self.store
    }

    /// Records `events` (the outbox consumer's handler): appends their entries, skipping
    /// events already recorded, then signs a checkpoint if the tree grew past the latest one.
    pub async fn handle(&self, events: &[EventRow]) -> Result<(), AuditError> {
        let entries = events
            .iter()
            .map(|event| AuditEntry::from_event(event).to_new_entry())
            .collect::<Result<Vec<_>, _>>()?;
        let mut tree = self.tree.lock().await;
        let outcome = self.append(&mut tree, &entries).await;
        if outcome.is_err() {
            // Whatever the store did, the next call starts again from what it holds.
            *tree = None;
        }
        outcome
    }

    async fn append(
        &self,
        tree: &mut Option<MerkleLog>,
        entries: &[NewAuditEntry],
    ) -> Result<(), AuditError> {
        let log = match tree {
            Some(log) => log,
            None => tree.insert(self.load().await?),
        };
        let given = self.store.append_audit_entries(entries).await?;
        for (entry, index) in entries.iter().zip(given) {
            let Some(index) = index else {
                continue;
            };
            if u64::try_from(index).ok() != Some(log.size()) {
                return Err(AuditError::IndexMismatch {
                    given: index,
                    expected: log.size(),
                });
            }
            log.append(entry.leaf_hash)?;
        }
        self.sign_if_grown(log).await
    }

    /// Rebuilds the right edge from the recorded leaves, checking them against the latest
    /// checkpoint, and the leaves no checkpoint covers yet against their entries.
    async fn load(&self) -> Result<MerkleLog, AuditError> {
        let latest = self.latest_checkpoint().await?;
        let signed = latest.as_ref().map_or(0, |c| c.size);
        let size = self.tree_size().await?;
        if signed > size {
            return Err(AuditError::TreeStoreAltered { size: signed });
        }
        let mut log = MerkleLog::new();
        let mut unsigned = Vec::new();
        while log.size() < size {
            let page = self.leaf_page(log.size(), size).await?;
            if page.is_empty() {
                return Err(AuditError::LeafGap {
                    expected: log.size(),
                    found: to_i64(size),
                });
            }
            for leaf in page {
                if u64::try_from(leaf.seq).ok() != Some(log.size()) {
                    return Err(AuditError::LeafGap {
                        expected: log.size(),
                        found: leaf.seq,
                    });
                }
                if log.size() >= signed {
                    unsigned.push(leaf.hash);
                }
                log.append(leaf.hash)?;
                if let Some(checkpoint) = &latest
                    && log.size() == checkpoint.size
                    && log.root() != checkpoint.root
                {
                    return Err(AuditError::TreeStoreAltered {
                        size: checkpoint.size,
                    });
                }
            }
        }
        if let Some(checkpoint) = &latest
            && checkpoint.size == 0
            && checkpoint.root != log.root()
        {
            return Err(AuditError::TreeStoreAltered { size: 0 });
        }
        self.check_unsigned(signed, &unsigned).await?;
        Ok(log)
    }

    /// Checks that the leaves from index `signed` on are the hashes of the entries stored at
    /// their indexes: no signature covers them yet, so before the next one does, they must at
    /// least agree with what they record.
    async fn check_unsigned(&self, signed: u64, leaves: &[Hash]) -> Result<(), AuditError> {
        let end = signed.saturating_add(len_u64(leaves));
        let mut next = signed;
        while next < end {
            let query = AuditQuery {
                end: Some(to_i64(end)),
                ..AuditQuery::from_index(to_i64(next), MAX_AUDIT_PAGE)
            };
            let rows = self.store.audit_entries(&query).await?;
            if rows.is_empty() {
                return Err(AuditError::UnsignedEntryAltered { index: next });
            }
            for row in rows {
                let recorded = usize::try_from(next - signed)
                    .ok()
                    .and_then(|offset| leaves.get(offset));
                if u64::try_from(row.seq).ok() != Some(next)
                    || recorded != Some(&leaf_hash(&row.entry))
                {
                    return Err(AuditError::UnsignedEntryAltered { index: next });
                }
                next += 1;
            }
        }
        Ok(())
    }

    async fn sign_if_grown(&self, log: &MerkleLog) -> Result<(), AuditError> {
        let signed = self.latest_checkpoint().await?.map_or(0, |c| c.size);
        if log.size() <= signed {
            return Ok(());
        }
        let head = TreeHead::new(self.origin.clone(), log.size(), log.root())?;
        let checkpoint = SignedCheckpoint::sign(&head, now(), &*self.key)?;
        self.store
            .put_audit_checkpoint(&checkpoint_row(&checkpoint)?)
            .await?;
        Ok(())
    }

    /// The latest signed checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.store
            .latest_audit_checkpoint()
            .await?
            .map(checkpoint_from_row)
            .transpose()
    }

    /// The checkpoint of exactly `size` entries, if the server signed one.
    pub async fn checkpoint_of_size(
        &self,
        size: u64,
    ) -> Result<Option<SignedCheckpoint>, AuditError> {
        let rows = self.store.audit_checkpoints(to_i64(size), 1).await?;
        rows.into_iter()
            .find(|row| row.size == to_i64(size))
            .map(checkpoint_from_row)
            .transpose()
    }

    /// The number of recorded leaves.
    pub async fn tree_size(&self) -> Result<u64, AuditError> {
        let size = self.store.audit_tree_size().await?;
        Ok(u64::try_from(size).unwrap_or(0))
    }

    /// The proof that the entry at `index` is in the tree of `size` entries (by default, the
    /// latest checkpoint's).
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<Inclusion, AuditError> {
        let (size, checkpoint) = self.proof_size(size).await?;
        let mut builder = InclusionProofBuilder::new(index, size)?;
        let _permit = self.proofs.acquire().await;
        let leaf_hash = self
            .leaf_page(index, index.saturating_add(1))
            .await?
            .first()
            .map(|leaf| leaf.hash)
            .ok_or(MerkleError::MissingLeaf { index })?;
        let needed = builder.needed();
        self.stream_leaves(needed, |index, leaf| builder.push(index, leaf))
            .await?;
        Ok(Inclusion {
            proof: builder.finish()?,
            leaf_hash,
            checkpoint,
        })
    }

    /// The inclusion proof of the entry of outbox event `event_id`.
    pub async fn inclusion_proof_for_event(
        &self,
        event_id: &str,
        size: Option<u64>,
    ) -> Result<Inclusion, AuditError> {
        let index = self
            .store
            .audit_event_seq(event_id)
            .await?
            .and_then(|seq| u64::try_from(seq).ok())
            .ok_or_else(|| AuditError::UnknownEvent {
                event_id: event_id.chars().take(64).collect(),
            })?;
        self.inclusion_proof(index, size).await
    }

    /// The proof that the tree of `old_size` entries is a prefix of the tree of `new_size`
    /// entries (by default, the latest checkpoint's).
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<Consistency, AuditError> {
        let (new_size, new_checkpoint) = self.proof_size(new_size).await?;
        let mut builder = ConsistencyProofBuilder::new(old_size, new_size)?;
        let _permit = self.proofs.acquire().await;
        let needed = builder.needed();
        self.stream_leaves(needed, |index, leaf| builder.push(index, leaf))
            .await?;
        Ok(Consistency {
            proof: builder.finish()?,
            old_checkpoint: self.checkpoint_of_size(old_size).await?,
            new_checkpoint,
        })
    }

    /// The tree size a proof is for, and its checkpoint: the latest checkpoint's when none
    /// is asked for; otherwise the size asked for, which must not exceed the tree.
    async fn proof_size(
        &self,
        size: Option<u64>,
    ) -> Result<(u64, Option<SignedCheckpoint>), AuditError> {
        match size {
            None => {
                let latest = self
                    .latest_checkpoint()
                    .await?
                    .ok_or(AuditError::NoCheckpoint)?;
                Ok((latest.size, Some(latest)))
            }
            Some(size) => {
                let available = self.tree_size().await?;
                if size > available {
                    return Err(MerkleError::SizeBeyondLog { size, available }.into());
                }
                Ok((size, self.checkpoint_of_size(size).await?))
            }
        }
    }

    /// Feeds the recorded leaves `range` to `take`, page by page.
    async fn stream_leaves(
        &self,
        range: std::ops::Range<u64>,
        mut take: impl FnMut(u64, Hash) -> Result<(), MerkleError>,
    ) -> Result<(), AuditError> {
        let mut next = range.start;
        while next < range.end {
            let page = self.leaf_page(next, range.end).await?;
            if page.is_empty() {
                return Err(MerkleError::MissingLeaf { index: next }.into());
            }
            for leaf in page {
                let index = u64::try_from(leaf.seq).unwrap_or(u64::MAX);
                take(index, leaf.hash)?;
                next = index.saturating_add(1);
            }
        }
        Ok(())
    }

    async fn leaf_page(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<store::AuditLeafRow>, AuditError> {
        Ok(self
            .store
            .audit_leaves(to_i64(start), to_i64(end), MAX_AUDIT_PAGE)
            .await?)
    }
}

/// The stored form of a checkpoint.
pub(crate) fn checkpoint_row(
    checkpoint: &SignedCheckpoint,
) -> Result<AuditCheckpointRow, AuditError> {
    let size = i64::try_from(checkpoint.size).map_err(|_| AuditError::CorruptCheckpoint {
        size: i64::MAX,
        reason: "its size does not fit the store",
    })?;
    Ok(AuditCheckpointRow {
        size,
        origin: checkpoint.origin.clone(),
        root: checkpoint.root,
        time: to_i64(checkpoint.time),
        key_id: checkpoint.key_id.clone(),
        signature: checkpoint.signature.clone(),
    })
}

/// A stored checkpoint, read back.
pub(crate) fn checkpoint_from_row(row: AuditCheckpointRow) -> Result<SignedCheckpoint, AuditError> {
    let corrupt = |reason| AuditError::CorruptCheckpoint {
        size: row.size,
        reason,
    };
    Ok(SignedCheckpoint {
        size: u64::try_from(row.size).map_err(|_| corrupt("its size is negative"))?,
        time: u64::try_from(row.time).map_err(|_| corrupt("its time is negative"))?,
        origin: row.origin,
        root: row.root,
        key_id: row.key_id,
        signature: row.signature,
    })
}

fn len_u64<T>(items: &[T]) -> u64 {
    u64::try_from(items.len()).unwrap_or(u64::MAX)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
