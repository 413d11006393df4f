//! Storage for the trust service: authorities (named sets of public keys) and what verifying
//! each signature or attestation manifest found. The store keeps the verdicts it is handed
//! (JSON reports, authority names) and never verifies or interprets anything itself.
//!
//! An attachment's rows live and die with its manifest (a foreign key with `ON DELETE
//! CASCADE`), so deleting a signature manifest can never leave its verdict behind.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::StoreError;

/// Where an authority was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityOrigin {
    /// The configuration file (rewritten at every start).
    Config,
    /// `PUT /api/v1/authorities/<name>`.
    Api,
    /// The server's own signing key (authority `bonded`).
    Server,
}

impl AuthorityOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityOrigin::Config => "config",
            AuthorityOrigin::Api => "api",
            AuthorityOrigin::Server => "server",
        }
    }

    pub fn parse(s: &str) -> Option<AuthorityOrigin> {
        Some(match s {
            "config" => AuthorityOrigin::Config,
            "api" => AuthorityOrigin::Api,
            "server" => AuthorityOrigin::Server,
            _ => return None,
        })
    }
}

/// A named set of public keys (PEM documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityRow {
    pub name: String,
    pub keys: Vec<String>,
    pub origin: AuthorityOrigin,
    pub updated_at: i64,
}

/// How an attachment was found: cosign's tag (`sha256-<hex>.sig`) or the referrers API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentVia {
    Tag,
    Referrer,
}

impl AttachmentVia {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentVia::Tag => "tag",
            AttachmentVia::Referrer => "referrer",
        }
    }

    pub fn parse(s: &str) -> Option<AttachmentVia> {
        match s {
            "tag" => Some(AttachmentVia::Tag),
            "referrer" => Some(AttachmentVia::Referrer),
            _ => None,
        }
    }
}

/// What an attachment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    Signature,
    Attestation,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Signature => "signature",
            AttachmentKind::Attestation => "attestation",
        }
    }

    pub fn parse(s: &str) -> Option<AttachmentKind> {
        match s {
            "signature" => Some(AttachmentKind::Signature),
            "attestation" => Some(AttachmentKind::Attestation),
            _ => None,
        }
    }
}

/// A signature or attestation manifest and the verification report of its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub repository: String,
    /// The attachment manifest's digest.
    pub source_digest: String,
    /// The digest of the manifest it signs.
    pub subject: String,
    pub via: AttachmentVia,
    pub kind: AttachmentKind,
    /// The trust service's report (JSON).
    pub report: String,
    /// Authorities whose keys made at least one valid signature in it.
    pub signers: BTreeSet<String>,
    pub verified_at: i64,
}

/// Who has validly signed a manifest in a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signers {
    /// Authorities with a valid signature over this digest.
    pub direct: BTreeSet<String>,
    /// Authorities with a valid signature over an index in the same repository that lists
    /// this digest (signing an index digest commits to its children's digests).
    pub via_index: BTreeSet<String>,
}

impl Signers {
    /// Every authority that vouches for the manifest, directly or through an index.
    pub fn all(&self) -> BTreeSet<String> {
        self.direct.union(&self.via_index).cloned().collect()
    }
}

/// A manifest that may be a signature or attestation attachment, for re-verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentCandidate {
    pub repository: String,
    pub digest: String,
    /// The `sha256-<hex>.sig`/`.att` tag pointing at it, if any.
    pub tag: Option<String>,
    /// The `subject` of a referrer.
    pub subject: Option<String>,
}

/// Trust storage. Implementations must pass [`crate::testsuite::trust_store`].
#[async_trait]
pub trait TrustStore: Send + Sync + 'static {
    /// Creates or replaces an authority.
    async fn put_authority(&self, row: &AuthorityRow) -> Result<(), StoreError>;
    async fn authority(&self, name: &str) -> Result<Option<AuthorityRow>, StoreError>;
    /// Every authority, by name.
    async fn authorities(&self) -> Result<Vec<AuthorityRow>, StoreError>;
    /// Removes the authorities of `origin` whose names are not in `keep` (configuration
    /// entries that were removed from the file).
    async fn prune_authorities(
        &self,
        origin: AuthorityOrigin,
        keep: &[String],
    ) -> Result<(), StoreError>;

    /// Stores `record`, replacing what was recorded for the same attachment manifest. For a
    /// tag attachment it also drops the other tag attachments of the same subject and kind:
    /// cosign's tag points at one manifest, so the one it pointed at before no longer counts.
    /// Returns false (and stores nothing) when the attachment manifest no longer exists, or,
    /// for a tag attachment, when the tag no longer points at it.
    async fn record_attachment(&self, record: &AttachmentRecord) -> Result<bool, StoreError>;
    /// Drops the verdicts of tag attachments whose `sha256-<hex>.sig`/`.att` tag no longer
    /// points at them (a tag deleted or moved while, or before, the verdict was written).
    async fn prune_stale_attachments(&self) -> Result<u64, StoreError>;
    /// Drops the tag attachments of `subject` and `kind` (the tag was deleted).
    async fn forget_tag_attachments(
        &self,
        repository: &str,
        subject: &str,
        kind: AttachmentKind,
    ) -> Result<(), StoreError>;
    /// The attachments recorded for `subject` in `repository`.
    async fn attachments(
        &self,
        repository: &str,
        subject: &str,
    ) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Who has validly signed `digest` in `repository` (signature attachments only).
    async fn signers(&self, repository: &str, digest: &str) -> Result<Signers, StoreError>;
    /// Every manifest that may be an attachment: those tagged `sha256-*.sig`/`.att` and those
    /// with a subject.
    async fn attachment_candidates(&self) -> Result<Vec<AttachmentCandidate>, StoreError>;
}
