//! The outbox: events written in the same transaction as the state change they describe
//! (by triggers on the tables that hold the state, `migrations/sqlite/0004_events.sql`), and
//! the positions of their consumers.
//!
//! Guarantees: an event exists if and only if its change committed; events are read in
//! commit order (`seq`); an event's `id` never changes, so a consumer that sees an event twice
//! (it crashed before saving its position) recognises it. Delivery is at least once: a
//! consumer advances its cursor only after it has handled what it read.

use async_trait::async_trait;

use crate::StoreError;

/// One event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Commit order.
    pub seq: i64,
    /// The stable event id (32 hex characters).
    pub id: String,
    /// `artifact.pushed`, `artifact.deleted`, `tag.updated`, `tag.deleted`,
    /// `scan.completed`, `scan.failed`, `signature.added`, `attestation.added`, and those of
    /// [`NewEvent`]s.
    pub kind: String,
    pub repository: Option<String>,
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// Type-specific facts (JSON object).
    pub data: String,
    pub created_at: i64,
    /// Who caused it (a JSON object, see [`crate::context::Actor`]); `None` for work with no
    /// request behind it.
    pub actor: Option<String>,
}

/// An event the code writes itself, for changes that are not rows of their own (a pull
/// refused, a vulnerability DB replaced, a configuration change). Written in the transaction
/// of the change when there is one, else alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: String,
    pub repository: Option<String>,
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// A JSON object.
    pub data: String,
}

/// The outbox. Implementations must pass [`crate::testsuite::event_store`].
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Events after `seq`, oldest first, at most `limit`.
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<EventRow>, StoreError>;
    /// Where `consumer` stands (0 before its first event).
    async fn cursor(&self, consumer: &str) -> Result<i64, StoreError>;
    /// Moves `consumer` to `seq`; never backwards (a late or duplicate save is ignored).
    async fn advance_cursor(&self, consumer: &str, seq: i64, now: i64) -> Result<(), StoreError>;
    /// Appends an event (with the current [`crate::context::Actor`]); returns it as stored.
    async fn append_event(&self, event: &NewEvent, now: i64) -> Result<EventRow, StoreError>;
    /// The events of one digest (in any repository), oldest first, after `seq`, at most `limit`.
    async fn events_for_digest(
        &self,
        digest: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError>;
    /// The newest event's `seq` (0 when there is none).
    async fn last_event_seq(&self) -> Result<i64, StoreError>;
    /// The newest committed event's `seq`, changing only when a commit adds events:
    /// consumers wait on it instead of polling, and writes that add no event wake nobody.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}
