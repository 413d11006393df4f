//! The metadata store abstraction: repositories, blob links, manifests, tags, referrers and
//! upload sessions. Every method is one transaction.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use bytes::Bytes;
use oci::{Algorithm, Digest, RepositoryName, Tag};

use crate::error::StoreError;

/// An upload session id: a UUID, so it is safe in paths and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn random() -> UploadId {
        UploadId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let u = uuid::Uuid::try_parse(s)?;
        Ok(UploadId(u.hyphenated().to_string()))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new upload session.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub id: UploadId,
    pub repository: RepositoryName,
    pub algorithm: Algorithm,
    /// The hash state of zero bytes.
    pub hash_state: Vec<u8>,
}

/// A persisted upload session.
#[derive(Debug, Clone)]
pub struct UploadState {
    pub id: UploadId,
    pub repository: RepositoryName,
    pub bytes_received: u64,
    pub algorithm: Algorithm,
    /// Hash state after exactly `bytes_received` bytes.
    pub hash_state: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A validated manifest ready to be stored, with the facts extracted from it.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    /// The exact bytes the client sent.
    pub content: Bytes,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    /// Annotations as a JSON object string, kept for the referrers API.
    pub annotations: Option<String>,
    /// Blobs that must be linked in the repository.
    pub blobs: Vec<Digest>,
    /// Manifests that must exist in the repository.
    pub manifests: Vec<Digest>,
    /// Queue a scan of this manifest in the same transaction (an image manifest).
    pub scan: bool,
}

/// Why a manifest could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    #[error("manifest references unknown blobs {blobs:?} and manifests {manifests:?}")]
    MissingReferences {
        blobs: Vec<Digest>,
        manifests: Vec<Digest>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// A manifest whose `subject` is some digest, as the referrers API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// A page of a lexically ordered listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    /// Whether more items follow the last one returned.
    pub more: bool,
}

/// Metadata storage. Implementations must pass [`crate::testsuite::meta_store`].
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    // Repositories.
    async fn repository_exists(&self, repo: &RepositoryName) -> Result<bool, StoreError>;
    /// Repository names in lexical order, after `last`, at most `limit`.
    async fn list_repositories(&self, last: Option<&str>, limit: u32) -> Result<Page, StoreError>;

    // Blobs.
    /// Records a verified blob, links it into `repo` and ends upload `upload` if given.
    async fn commit_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        size: u64,
        upload: Option<&UploadId>,
    ) -> Result<(), StoreError>;
    /// Size of `digest` if it is linked in `repo`.
    async fn linked_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError>;
    /// Size of `digest` if it is committed anywhere.
    async fn any_blob(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;
    /// Links an existing blob into `repo` if it is linked in `from` (or anywhere, with `None`).
    /// Returns its size, or `None` when it could not be mounted.
    async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> Result<Option<u64>, StoreError>;
    /// Removes the link of `digest` in `repo`. Returns whether a link existed.
    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest)
    -> Result<bool, StoreError>;

    // Uploads.
    async fn create_upload(&self, upload: &NewUpload) -> Result<(), StoreError>;
    async fn get_upload(&self, id: &UploadId) -> Result<Option<UploadState>, StoreError>;
    /// Records progress if the session still stands at `expected_offset`; returns whether it did.
    async fn record_upload_progress(
        &self,
        id: &UploadId,
        expected_offset: u64,
        bytes_received: u64,
        algorithm: Algorithm,
        hash_state: &[u8],
    ) -> Result<bool, StoreError>;
    /// Ends a session. Returns whether it existed.
    async fn delete_upload(&self, id: &UploadId) -> Result<bool, StoreError>;
    /// Sessions not updated since `before` (unix seconds), for purging.
    async fn stale_uploads(&self, before: i64) -> Result<Vec<UploadId>, StoreError>;

    // Manifests and tags.
    /// Stores a manifest (idempotently) and points `tag` at it, after checking in the same
    /// transaction that everything it references exists in `repo`.
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        manifest: &ManifestRecord,
        tag: Option<&Tag>,
    ) -> Result<(), PutManifestError>;
    async fn manifest_by_digest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>, StoreError>;
    async fn manifest_by_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
    ) -> Result<Option<StoredManifest>, StoreError>;
    /// Deletes a manifest with its tags and its referrer entry. Returns whether it existed.
    async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError>;
    /// Deletes a tag. Returns whether it existed.
    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool, StoreError>;
    /// Tags of `repo` in lexical (case-insensitive, then byte) order after `last`, at most
    /// `limit`; `None` if the repository does not exist.
    async fn list_tags(
        &self,
        repo: &RepositoryName,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Option<Page>, StoreError>;
    /// Manifests in `repo` whose subject is `subject`, optionally of one artifact type.
    async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, StoreError>;

    /// Checks that the store answers reads and commits writes (for `/healthz`).
    async fn ping(&self) -> Result<(), StoreError>;
}
