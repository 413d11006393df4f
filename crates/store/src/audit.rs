//! Storage for the tamper-evident audit log: its entries, the Merkle leaf hashes recorded when
//! they were appended, and the checkpoints the server signed.
//!
//! The store keeps bytes and does not interpret them: the `audit` crate builds each entry's
//! canonical bytes and leaf hash, and signs the checkpoints; the store only guarantees the
//! shape of the log.
//!
//! Guarantees:
//! - Entry indexes (`seq`) start at 0 and have no gap: an append gives the next entries the
//!   indexes that follow the last recorded leaf, and writes each entry and its leaf hash in
//!   the same transaction.
//! - Appending is idempotent per event id: an event already in the log (or twice in one
//!   batch) is skipped, taking no index. A batch is one transaction.
//! - Pages are read by index (keyset, never by offset), in index order, so that an entry
//!   removed behind the store's back shows up as a missing index rather than shifting pages.
//! - Reads never return more than [`MAX_AUDIT_PAGE`] rows at once.
//!
//! [`AuditReader`] is the read side, which the offline verifier uses on a database it opens
//! read-only ([`crate::SqliteAuditReader`]); [`AuditStore`] adds the writes the server makes.

use async_trait::async_trait;

use crate::StoreError;

/// The most rows any audit read returns at once.
pub const MAX_AUDIT_PAGE: u32 = 10_000;

/// A SHA-256 leaf hash.
pub type LeafHash = [u8; 32];

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The outbox event the entry records; an entry per event.
    pub event_id: String,
    /// The entry's canonical bytes: the Merkle leaf data.
    pub entry: Vec<u8>,
    /// `SHA-256(0x00 ‖ entry)`, recorded in the tree store.
    pub leaf_hash: LeafHash,
    /// Copies of entry fields for filtering (never for verification).
    pub time: i64,
    pub action: String,
    pub repository: Option<String>,
    pub digest: Option<String>,
    /// The actor as a JSON object, searched by [`AuditQuery::actor`] and [`AuditQuery::addr`].
    pub actor: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntryRow {
    /// The entry's leaf index.
    pub seq: i64,
    pub event_id: String,
    /// The canonical bytes, as stored.
    pub entry: Vec<u8>,
}

/// A leaf hash recorded at append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditLeafRow {
    pub seq: i64,
    pub hash: LeafHash,
}

/// A signed checkpoint, as the `audit` crate made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpointRow {
    pub size: i64,
    pub origin: String,
    pub root: LeafHash,
    /// When it was signed, in Unix seconds.
    pub time: i64,
    pub key_id: String,
    pub signature: Vec<u8>,
}

/// Which entries to read: those with an index in `start..end` matching every given filter,
/// oldest first, at most `limit` (capped at [`MAX_AUDIT_PAGE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The first index to read.
    pub start: i64,
    /// The index to stop before; `None` reads to the end.
    pub end: Option<i64>,
    pub limit: u32,
    pub repository: Option<String>,
    pub digest: Option<String>,
    /// The action (the event kind), exactly.
    pub action: Option<String>,
    /// A substring of any value of the actor object (its address, user agent, request id,
    /// kind).
    pub actor: Option<String>,
    /// The actor's address, with or without its port (`192.0.2.7`, `192.0.2.7:5123`,
    /// `::1`, `[::1]:5123`).
    pub addr: Option<String>,
    /// Entries at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Entries at or before this time (Unix seconds).
    pub until: Option<i64>,
}

impl AuditQuery {
    /// Every entry from `start`, at most `limit`, unfiltered.
    pub fn from_index(start: i64, limit: u32) -> AuditQuery {
        AuditQuery {
            start,
            end: None,
            limit,
            repository: None,
            digest: None,
            action: None,
            actor: None,
            addr: None,
            since: None,
            until: None,
        }
    }
}

/// Reading the audit log. Implementations must pass [`crate::testsuite_audit::audit_store`].
#[async_trait]
pub trait AuditReader: Send + Sync + 'static {
    /// The entries `query` selects, in index order.
    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntryRow>, StoreError>;
    /// The index of the entry of `event_id`, if it is in the log.
    async fn audit_event_seq(&self, event_id: &str) -> Result<Option<i64>, StoreError>;
    /// The recorded leaf hashes with an index in `start..end`, in index order, at most `limit`
    /// (capped at [`MAX_AUDIT_PAGE`]).
    async fn audit_leaves(
        &self,
        start: i64,
        end: i64,
        limit: u32,
    ) -> Result<Vec<AuditLeafRow>, StoreError>;
    /// The size of the tree: one more than the last recorded leaf index, 0 when empty.
    async fn audit_tree_size(&self) -> Result<i64, StoreError>;
    /// The checkpoint of the largest size.
    async fn latest_audit_checkpoint(&self) -> Result<Option<AuditCheckpointRow>, StoreError>;
    /// Checkpoints of size at least `from_size`, smallest first, at most `limit` (capped at
    /// [`MAX_AUDIT_PAGE`]).
    async fn audit_checkpoints(
        &self,
        from_size: i64,
        limit: u32,
    ) -> Result<Vec<AuditCheckpointRow>, StoreError>;
}

/// The audit log's storage: reads, and the server's appends.
#[async_trait]
pub trait AuditStore: AuditReader {
    /// Appends `entries` in one transaction, skipping those whose event is already in the log
    /// (or earlier in the batch). Returns, for each entry in order, the index it was given,
    /// or `None` if it was skipped.
    async fn append_audit_entries(
        &self,
        entries: &[NewAuditEntry],
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// Stores a checkpoint; `false` if one of that size is already stored (it is kept).
    async fn put_audit_checkpoint(
        &self,
        checkpoint: &AuditCheckpointRow,
    ) -> Result<bool, StoreError>;
}
