//! The two places where the rest of Bonded meets the registry without the registry knowing
//! its internals: observers hear of every manifest stored or deleted (the trust service
//! verifies signature manifests there), and a pull gate decides whether a manifest may be
//! served (the pull policy).
//!
//! Guarantees the registry gives the hooks:
//! - [`ManifestObserver::manifest_stored`] runs after the manifest is committed and before
//!   the PUT is answered, in the same task as the write, so a client that hangs up cannot
//!   skip it; whatever it records is visible to the next request. It cannot fail the push:
//!   pushes are never blocked by what observers think of them.
//! - [`PullGate::decide`] runs on every GET of a manifest, after the manifest was found and
//!   before a byte of it is sent. HEAD is not gated: it returns no content, only the digest,
//!   media type and size a denial names anyway, and a signer needs it to resolve a tag.

use async_trait::async_trait;
use bytes::Bytes;
use oci::{Digest, Manifest, Reference, RepositoryName, Tag};
use serde_json::Value;
use store::StoredManifest;

/// A manifest that was just stored.
#[derive(Debug, Clone, Copy)]
pub struct StoredEvent<'a> {
    pub repository: &'a RepositoryName,
    pub digest: &'a Digest,
    pub manifest: &'a Manifest,
    pub content: &'a Bytes,
    /// The tag the manifest was pushed under, if any.
    pub tag: Option<&'a Tag>,
}

/// Hears of manifests stored and deleted.
#[async_trait]
pub trait ManifestObserver: Send + Sync + 'static {
    async fn manifest_stored(&self, event: StoredEvent<'_>);
    /// A manifest (by digest) or a tag (by tag) was deleted.
    async fn manifest_deleted(&self, repository: &RepositoryName, reference: &Reference);
}

/// Whether a manifest may be served.
#[derive(Debug, Clone, PartialEq)]
pub enum PullVerdict {
    Allow,
    /// Serve it, with this warning (logged, and sent as a `Warning` header).
    Warn {
        message: String,
    },
    /// Refuse with `403 DENIED`, this message and detail.
    Deny {
        message: String,
        detail: Value,
    },
}

/// Decides whether a manifest may be served.
#[async_trait]
pub trait PullGate: Send + Sync + 'static {
    async fn decide(&self, repository: &RepositoryName, manifest: &StoredManifest) -> PullVerdict;
}
