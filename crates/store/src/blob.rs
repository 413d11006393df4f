//! The blob store abstraction: content-addressed bytes plus upload staging.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use oci::{Digest, Hasher};

use crate::error::StoreError;
use crate::meta::UploadId;

/// An inclusive byte range `first..=last` of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A stream of blob bytes.
pub type BlobBody = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where an upload stands after a writer has finished: bytes received so far and the hash
/// of exactly those bytes.
pub struct UploadProgress {
    pub bytes_received: u64,
    pub hasher: Hasher,
}

/// Appends bytes to an upload, hashing them on the way.
#[async_trait]
pub trait UploadWriter: Send {
    /// Hashes and appends one chunk. Back-pressure: this waits while the writer is busy.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Flushes (and, with [`crate::Durability::Fsync`], syncs) what was written and returns
    /// the new progress. Only after this may the caller record the progress as durable.
    async fn finish(self: Box<Self>) -> Result<UploadProgress, StoreError>;
}

/// Content-addressed blob bytes and upload staging areas.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a committed blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Streams a committed blob, or the given range of it. The caller checks the range
    /// against the size.
    async fn read(&self, digest: &Digest, range: Option<ByteRange>)
    -> Result<BlobBody, StoreError>;

    /// Removes a committed blob's bytes. Missing blobs are not an error.
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;

    /// Creates the (empty) staging area of a new upload.
    async fn create_upload(&self, id: &UploadId) -> Result<(), StoreError>;

    /// Opens an upload for appending at `offset`, discarding anything beyond it (bytes of a
    /// request that failed or of a crash before progress was recorded). `hasher` must hold
    /// the hash of the first `offset` bytes.
    async fn append_upload(
        &self,
        id: &UploadId,
        offset: u64,
        hasher: Hasher,
    ) -> Result<Box<dyn UploadWriter>, StoreError>;

    /// Atomically turns a finished upload of `size` bytes into the blob `digest`. The caller
    /// has verified the digest of the bytes it streamed; the upload data must hold exactly
    /// `size` bytes (else [`StoreError::UploadTruncated`]). If the blob already exists with
    /// that size the upload data is discarded; an existing file of another size is replaced.
    async fn commit_upload(
        &self,
        id: &UploadId,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError>;

    /// Discards an upload's data. Missing data is not an error.
    async fn delete_upload(&self, id: &UploadId) -> Result<(), StoreError>;

    /// Every upload staging area with its last modification (unix seconds), so that data
    /// left without a session (a crash between creating both) can be purged.
    async fn list_uploads(&self) -> Result<Vec<(UploadId, i64)>, StoreError>;
}
