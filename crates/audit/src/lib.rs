//! `audit`: Bonded's tamper-evident audit log (issue 5, "Audit log").
//!
//! Every outbox event (a push, a tag move, a scan, a signature, a promotion decision, a pull
//! denied, a configuration change) becomes an entry ([`entry`]); the entries are the leaves
//! of an RFC 6962 Merkle tree ([`merkle`]); the server signs checkpoints of the tree with its
//! key ([`checkpoint`], [`keys`]); the audit API serves entries, checkpoints and proofs
//! ([`http`]); and `bonded audit verify` recomputes everything from the stored entries and
//! names what was changed, removed, inserted or reordered ([`check`], [`verify`]).
//!
//! [`log::AuditLog`] is the service: the outbox runner hands it each batch of events.
//!
//! Architecture invariants:
//! - The log only appends. Nothing here updates or deletes an entry, a leaf hash or a
//!   checkpoint; storage keeps them in `store::audit`.
//! - What is hashed is the entry's stored bytes. Verification never re-serializes an entry.
//! - The server never signs a tree that does not extend its latest checkpoint.
//! - Handlers call [`log::AuditLog`], which calls the store; the store never calls up.

pub mod check;
pub mod checkpoint;
pub mod entry;
pub mod http;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod verify;

pub use check::{Report, Verdict, VerifyError, VerifyOptions, verify_data_dir, verify_url};
pub use log::{AuditError, AuditLog};
