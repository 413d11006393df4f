//! Storage for Bonded: blob bytes ([`BlobStore`]) and metadata ([`MetaStore`]).
//!
//! The registry talks to storage only through these two traits. Today they have one
//! implementation each, [`FsBlobStore`] (files under a data directory) and [`SqliteMetaStore`];
//! S3-compatible storage and PostgreSQL will be further implementations, and every
//! implementation must pass the shared conformance suite in [`testsuite`].
//!
//! Architecture invariants:
//! - Stores never call up into the registry and never interpret manifests beyond the rows
//!   and digests they are given.
//! - A blob becomes visible only after its digest has been verified by the caller and its
//!   bytes have been moved into place atomically; metadata rows that make it visible in a
//!   repository are written after the bytes are in place.
//! - Each [`MetaStore`] method is one transaction: it either happens entirely or not at all.

pub mod audit;
mod blob;
pub mod context;
mod error;
pub mod events;
mod fs;
mod meta;
pub mod promotions;
pub mod scanning;
mod sqlite;
pub mod testsuite;
pub mod testsuite_audit;
pub mod testsuite_webhooks;
pub mod trust;
pub mod webhooks;

pub use audit::{
    AuditCheckpointRow, AuditEntryRow, AuditLeafRow, AuditQuery, AuditReader, AuditStore,
    MAX_AUDIT_PAGE, NewAuditEntry,
};
pub use blob::{BlobBody, BlobStore, ByteRange, UploadProgress, UploadWriter};
pub use error::StoreError;
pub use events::{EventRow, EventStore, NewEvent};
pub use fs::{Durability, FsBlobStore};
pub use meta::{
    ManifestRecord, MetaStore, NewUpload, Page, PutManifestError, Referrer, StoredManifest,
    UploadId, UploadState,
};
pub use promotions::{DecisionRow, PromotionStore, TaggedDigest};
pub use scanning::{RematchedRow, ScanChange, ScanJob, ScanResultRow, ScanState, ScanStore};
pub use sqlite::{SqliteAuditReader, SqliteMetaStore};
pub use trust::{
    AttachmentCandidate, AttachmentKind, AttachmentRecord, AttachmentVia, AuthorityOrigin,
    AuthorityRow, Signers, TrustStore,
};
pub use webhooks::{
    AfterAttempt, AttemptRecorded, AttemptRow, ClaimedDelivery, DeliveryRow, DeliveryState,
    FinishedAttempt, GitlabTriggerRow, NewAttempt, NewDelivery, WebhookDisabled, WebhookKind,
    WebhookOrigin, WebhookRow, WebhookStore,
};
