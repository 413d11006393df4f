//! The registry's rules, between the HTTP handlers and the stores.
//!
//! Handlers call this service, this service calls the stores, and stores never call up.
//! Everything the Distribution Spec requires of pushes and pulls is decided here: chunk
//! ordering, digest verification, when a blob becomes visible, what a manifest must reference.
//!
//! Upload safety:
//! - Each upload session is written by one request at a time ([`UploadLocks`]). The write runs
//!   in its own task that owns the lock, so a client that disconnects cannot leave a writer
//!   behind that races the retry.
//! - Progress (offset and hash state) is recorded only after the bytes are flushed (and synced
//!   with `Durability::Fsync`), and only if the session still stands where the request began.
//!   Bytes of a failed request are never recorded and are cut off by the next append.
//! - A blob is committed only after its streamed digest equals the one the client claimed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use oci::{Algorithm, Digest, Hasher, Manifest, Reference, RepositoryName};
use serde_json::json;
use store::{
    BlobBody, BlobStore, ByteRange, ManifestRecord, MetaStore, NewUpload, Page, Referrer,
    StoreError, StoredManifest, UploadId, UploadProgress, UploadState,
};

use crate::cache::ManifestCache;
use crate::error::{ApiError, ErrorCode, blob_unknown, upload_unknown};
use crate::hooks::{ManifestObserver, PullGate, PullVerdict, StoredEvent};

/// A request body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("client sent nothing for {0:?}")]
    Idle(Duration),
    #[error("reading request body: {0}")]
    Read(String),
}

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_manifest_bytes: usize,
    /// Largest page of tags or repositories returned at once.
    pub max_page: u32,
    /// Bytes of manifests kept in the in-process read cache.
    pub manifest_cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: oci::MAX_MANIFEST_BYTES,
            max_page: 10_000,
            manifest_cache_bytes: 64 << 20,
        }
    }
}

/// The inclusive chunk range of a PATCH (`Content-Range: <start>-<end>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: u64,
    pub end: u64,
}

impl ChunkRange {
    /// Parses the spec's `^[0-9]+-[0-9]+$` form. For tolerance of older clients a `bytes `
    /// prefix and a `/<length>` suffix are also accepted.
    pub fn parse(s: &str) -> Option<ChunkRange> {
        let s = s.trim();
        let s = s
            .strip_prefix("bytes ")
            .or_else(|| s.strip_prefix("bytes="))
            .unwrap_or(s);
        let s = s.split_once('/').map_or(s, |(r, _)| r);
        let (start, end) = s.split_once('-')?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(start) || !digits(end) {
            return None;
        }
        let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
        // `len` is end - start + 1: refuse ranges whose length does not fit in a u64.
        end.checked_sub(start)?.checked_add(1)?;
        Some(ChunkRange { start, end })
    }

    /// Number of bytes the range covers (never zero: `end >= start`).
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a successful manifest PUT stored.
#[derive(Debug, Clone)]
pub struct PutManifestOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// The registry service.
pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetaStore>,
    locks: UploadLocks,
    cache: ManifestCache,
    limits: Limits,
    observers: Vec<Arc<dyn ManifestObserver>>,
    pull_gate: Option<Arc<dyn PullGate>>,
}

impl Registry {
    pub fn new(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetaStore>, limits: Limits) -> Registry {
        Registry {
            blobs,
            meta,
            locks: UploadLocks::default(),
            cache: ManifestCache::new(limits.manifest_cache_bytes),
            limits,
            observers: Vec::new(),
            pull_gate: None,
        }
    }

    /// Adds an observer of stored and deleted manifests.
    pub fn with_observer(mut self, observer: Arc<dyn ManifestObserver>) -> Registry {
        self.observers.push(observer);
        self
    }

    /// Sets the gate every manifest GET and HEAD passes.
    pub fn with_pull_gate(mut self, gate: Arc<dyn PullGate>) -> Registry {
        self.pull_gate = Some(gate);
        self
    }

    /// What the pull gate says of serving `manifest` from `repo`.
    pub async fn pull_verdict(
        &self,
        repo: &RepositoryName,
        manifest: &StoredManifest,
    ) -> PullVerdict {
        match &self.pull_gate {
            Some(gate) => gate.decide(repo, manifest).await,
            None => PullVerdict::Allow,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub async fn healthy(&self) -> Result<(), StoreError> {
        self.meta.ping().await
    }

    // ----- uploads -----

    /// Opens a new upload session hashing with `algorithm`.
    pub async fn start_upload(
        &self,
        repo: &RepositoryName,
        algorithm: Algorithm,
    ) -> Result<UploadState, ApiError> {
        let id = UploadId::random();
        let hasher = Hasher::new(algorithm);
        self.blobs.create_upload(&id).await?;
        let upload = NewUpload {
            id: id.clone(),
            repository: repo.clone(),
            algorithm,
            hash_state: hasher.save_state(),
        };
        self.meta.create_upload(&upload).await?;
        metrics::counter!("bonded_upload_sessions_started_total").increment(1);
        Ok(UploadState {
            id,
            repository: repo.clone(),
            bytes_received: 0,
            algorithm,
            hash_state: upload.hash_state,
            created_at: 0,
            updated_at: 0,
        })
    }

    /// The session `id` of `repo`, or `BLOB_UPLOAD_UNKNOWN`.
    pub async fn upload(&self, repo: &RepositoryName, id: &str) -> Result<UploadState, ApiError> {
        let parsed: UploadId = id.parse().map_err(|_| upload_unknown(id))?;
        self.session(repo, &parsed).await
    }

    async fn session(&self, repo: &RepositoryName, id: &UploadId) -> Result<UploadState, ApiError> {
        match self.meta.get_upload(id).await? {
            Some(state) if &state.repository == repo => Ok(state),
            _ => Err(upload_unknown(id.as_str())),
        }
    }

    /// Takes the session's lock, then reads it. The lock is keyed by the canonical id, so
    /// every spelling of one id (UUIDs parse case-insensitively) shares one lock with the
    /// purge; ids that are not UUIDs are unknown sessions and never reach the lock map.
    async fn lock_session(
        &self,
        repo: &RepositoryName,
        id: &str,
    ) -> Result<(UploadLockGuard, UploadState), ApiError> {
        let parsed: UploadId = id.parse().map_err(|_| upload_unknown(id))?;
        let guard = self.locks.lock(parsed.as_str()).await;
        let state = self.session(repo, &parsed).await?;
        Ok((guard, state))
    }

    /// Appends a chunk (PATCH). `range` is the chunk's `Content-Range`, if sent.
    pub async fn append(
        self: &Arc<Self>,
        repo: &RepositoryName,
        id: &str,
        range: Option<ChunkRange>,
        declared_len: Option<u64>,
        body: BodyStream,
    ) -> Result<UploadState, ApiError> {
        let (guard, state) = self.lock_session(repo, id).await?;
        let expected = check_range(&state, range, declared_len)?;
        let this = Arc::clone(self);
        // The task owns the lock guard: see the module header.
        let task = tokio::spawn(async move {
            let _guard = guard;
            let hasher = restore_hasher(&state)?;
            let progress = this.write_chunk(&state, hasher, expected, body).await?;
            this.record(&state, progress).await
        });
        task.await.map_err(ApiError::internal)?
    }

    /// Closes a session (PUT `?digest=`), appending the final chunk if the body has one.
    pub async fn complete(
        self: &Arc<Self>,
        repo: &RepositoryName,
        id: &str,
        digest: Digest,
        range: Option<ChunkRange>,
        declared_len: Option<u64>,
        body: BodyStream,
    ) -> Result<u64, ApiError> {
        let (guard, state) = self.lock_session(repo, id).await?;
        let expected = check_range(&state, range, declared_len)?;
        let this = Arc::clone(self);
        let repo = repo.clone();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let hasher = if digest.algorithm() == state.algorithm {
                restore_hasher(&state)?
            } else if state.bytes_received == 0 {
                // Nothing hashed yet: adopt the algorithm of the claimed digest.
                Hasher::new(digest.algorithm())
            } else {
                return Err(ApiError::new(
                    ErrorCode::DigestInvalid,
                    format!(
                        "this upload was hashed with {} as it streamed in; start it with \
                         ?digest-algorithm={} to finish it with a {} digest",
                        state.algorithm,
                        digest.algorithm(),
                        digest.algorithm()
                    ),
                ));
            };
            let progress = this.write_chunk(&state, hasher, expected, body).await?;
            this.commit(&repo, &state.id, digest, progress).await
        });
        task.await.map_err(ApiError::internal)?
    }

    /// A single-request upload (`POST ?digest=`).
    pub async fn monolithic(
        self: &Arc<Self>,
        repo: &RepositoryName,
        digest: Digest,
        declared_len: Option<u64>,
        body: BodyStream,
    ) -> Result<u64, ApiError> {
        let state = self.start_upload(repo, digest.algorithm()).await?;
        let id = state.id.to_string();
        let result = self
            .complete(repo, &id, digest, None, declared_len, body)
            .await;
        if result.is_err() {
            // A failed single-request upload leaves no session behind.
            self.discard_upload(&state.id).await;
        }
        result
    }

    /// Stores a small blob the server made itself (an SBOM, a signature payload) unless the
    /// repository already has it, and returns its digest.
    pub async fn store_blob(
        self: &Arc<Self>,
        repo: &RepositoryName,
        bytes: Bytes,
    ) -> Result<Digest, ApiError> {
        let digest = Digest::compute(Algorithm::Sha256, &bytes);
        if self.blob_size(repo, &digest).await.is_ok() {
            return Ok(digest);
        }
        let len = bytes.len() as u64;
        let body: BodyStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        self.monolithic(repo, digest.clone(), Some(len), body)
            .await?;
        Ok(digest)
    }

    /// Cancels a session (DELETE).
    pub async fn cancel(&self, repo: &RepositoryName, id: &str) -> Result<(), ApiError> {
        let (_guard, state) = self.lock_session(repo, id).await?;
        self.discard_upload(&state.id).await;
        Ok(())
    }

    async fn discard_upload(&self, id: &UploadId) {
        if let Err(e) = self.meta.delete_upload(id).await {
            tracing::warn!(upload = %id, error = %e, "could not delete upload session");
        }
        if let Err(e) = self.blobs.delete_upload(id).await {
            tracing::warn!(upload = %id, error = %e, "could not delete upload data");
        }
    }

    /// Ends sessions idle since `before` (unix seconds), and removes upload data older than
    /// that which has no session (left by a crash between creating the two). Returns how many
    /// sessions and orphaned data files were purged.
    pub async fn purge_stale_uploads(&self, before: i64) -> Result<usize, StoreError> {
        let stale = self.meta.stale_uploads(before).await?;
        let mut purged = 0;
        for id in &stale {
            let _guard = self.locks.lock(id.as_str()).await;
            // Look again under the lock: a request may have used the session meanwhile.
            match self.meta.get_upload(id).await? {
                Some(state) if state.updated_at < before => {
                    self.discard_upload(id).await;
                    purged += 1;
                }
                _ => {}
            }
        }
        let mut orphans = 0;
        for (id, modified) in self.blobs.list_uploads().await? {
            if modified >= before {
                continue;
            }
            let _guard = self.locks.lock(id.as_str()).await;
            if self.meta.get_upload(&id).await?.is_none() {
                self.blobs.delete_upload(&id).await?;
                orphans += 1;
            }
        }
        Ok(purged + orphans)
    }

    async fn write_chunk(
        &self,
        state: &UploadState,
        hasher: Hasher,
        expected_len: Option<u64>,
        mut body: BodyStream,
    ) -> Result<UploadProgress, ApiError> {
        let _in_flight = InFlight::new();
        let mut writer = match self
            .blobs
            .append_upload(&state.id, state.bytes_received, hasher)
            .await
        {
            Ok(w) => w,
            Err(StoreError::UploadDataMissing { .. } | StoreError::UploadTruncated { .. }) => {
                // The data of this session is gone (a crash between commit steps): the session
                // cannot continue.
                self.discard_upload(&state.id).await;
                return Err(upload_unknown(state.id.as_str()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut received: u64 = 0;
        let mut failure: Option<ApiError> = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    failure = Some(ApiError::new(ErrorCode::BlobUploadInvalid, e.to_string()));
                    break;
                }
            };
            received += chunk.len() as u64;
            if expected_len.is_some_and(|max| received > max) {
                failure = Some(size_invalid(expected_len, received));
                break;
            }
            if let Err(e) = writer.write(chunk).await {
                failure = Some(e.into());
                break;
            }
        }
        metrics::counter!("bonded_http_request_bytes_total").increment(received);
        // Always wait for the writer, so no write outlives this request's lock.
        let finished = writer.finish().await;
        if let Some(failure) = failure {
            return Err(failure);
        }
        let progress = finished?;
        if let Some(expected) = expected_len
            && received != expected
        {
            return Err(size_invalid(expected_len, received));
        }
        Ok(progress)
    }

    async fn record(
        &self,
        state: &UploadState,
        progress: UploadProgress,
    ) -> Result<UploadState, ApiError> {
        let hash_state = progress.hasher.save_state();
        let recorded = self
            .meta
            .record_upload_progress(
                &state.id,
                state.bytes_received,
                progress.bytes_received,
                state.algorithm,
                &hash_state,
            )
            .await?;
        if !recorded {
            return Err(range_error(
                state,
                "the upload moved on while this chunk was written",
            ));
        }
        Ok(UploadState {
            bytes_received: progress.bytes_received,
            hash_state,
            ..state.clone()
        })
    }

    async fn commit(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        claimed: Digest,
        progress: UploadProgress,
    ) -> Result<u64, ApiError> {
        let size = progress.bytes_received;
        let actual = progress.hasher.finish();
        if actual != claimed {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "provided digest did not match uploaded content",
            )
            .with_detail(json!({ "claimed": claimed.to_string(), "computed": actual.to_string(), "size": size })));
        }
        self.blobs.commit_upload(id, &actual, size).await?;
        self.meta.commit_blob(repo, &actual, size, Some(id)).await?;
        metrics::counter!("bonded_blobs_committed_total").increment(1);
        Ok(size)
    }

    /// Cross-repository mount. `Ok(Some(size))` when mounted.
    pub async fn mount(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> Result<Option<u64>, ApiError> {
        Ok(self.meta.mount_blob(repo, digest, from).await?)
    }

    // ----- blobs -----

    /// The size of a blob visible in `repo`, or `BLOB_UNKNOWN`.
    pub async fn blob_size(&self, repo: &RepositoryName, digest: &Digest) -> Result<u64, ApiError> {
        self.meta
            .linked_blob(repo, digest)
            .await?
            .ok_or_else(|| blob_unknown(digest))
    }

    pub async fn read_blob(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobBody, ApiError> {
        Ok(self.blobs.read(digest, range).await?)
    }

    /// Unlinks a blob from `repo`. Its bytes stay until garbage collection, since other
    /// repositories may link it.
    pub async fn delete_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), ApiError> {
        if self.meta.unlink_blob(repo, digest).await? {
            Ok(())
        } else {
            Err(blob_unknown(digest))
        }
    }

    // ----- manifests -----

    pub async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest, ApiError> {
        let cached = match reference {
            Reference::Tag(tag) => self
                .cache
                .tag(repo, tag)
                .and_then(|digest| self.cache.manifest(repo, &digest)),
            Reference::Digest(digest) => self.cache.manifest(repo, digest),
        };
        if let Some(m) = cached {
            return Ok(m);
        }
        let seen = self.cache.generation();
        let found = match reference {
            Reference::Tag(tag) => self.meta.manifest_by_tag(repo, tag).await?,
            Reference::Digest(digest) => self.meta.manifest_by_digest(repo, digest).await?,
        };
        let found = found.ok_or_else(|| manifest_unknown(reference))?;
        self.cache.fill(seen, repo, reference.tag(), &found);
        Ok(found)
    }

    /// Validates and stores a manifest pushed to `repo:reference`.
    pub async fn put_manifest(
        self: &Arc<Self>,
        repo: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        content: Bytes,
    ) -> Result<PutManifestOutcome, ApiError> {
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let digest = Digest::compute(algorithm, &content);
        if let Reference::Digest(claimed) = reference
            && claimed != &digest
        {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "manifest digest in the URL does not match the digest of the body",
            )
            .with_detail(
                json!({ "claimed": claimed.to_string(), "computed": digest.to_string() }),
            ));
        }
        let manifest = Manifest::parse(content_type, &content)?;
        let annotations = manifest
            .annotations
            .as_ref()
            .map(|a| serde_json::to_string(a).unwrap_or_default());
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: manifest.media_type.as_str().to_owned(),
            content,
            subject: manifest.subject.as_ref().map(|s| s.digest.clone()),
            artifact_type: manifest.effective_artifact_type().map(str::to_owned),
            annotations,
            blobs: manifest.required_blobs().into_iter().cloned().collect(),
            manifests: manifest.required_manifests().into_iter().cloned().collect(),
            scan: manifest.is_container_image(),
        };
        let subject = record.subject.clone();
        // The write, the cache invalidation and the observers run in their own task, so a
        // client that hangs up while the write commits cannot leave the cache behind the
        // database or an observer uninformed.
        let this = Arc::clone(self);
        let repo = repo.clone();
        let tag = reference.tag().cloned();
        let stored_digest = digest.clone();
        // The task carries the request's actor, so the events of the write name it.
        tokio::spawn(store::context::inherit(async move {
            this.meta.put_manifest(&repo, &record, tag.as_ref()).await?;
            if let Some(tag) = &tag {
                this.cache.tag_changed(&repo, tag);
            }
            for observer in &this.observers {
                observer
                    .manifest_stored(StoredEvent {
                        repository: &repo,
                        digest: &stored_digest,
                        manifest: &manifest,
                        content: &record.content,
                        tag: tag.as_ref(),
                    })
                    .await;
            }
            Ok::<(), ApiError>(())
        }))
        .await
        .map_err(ApiError::internal)??;
        metrics::counter!("bonded_manifests_pushed_total").increment(1);
        Ok(PutManifestOutcome { digest, subject })
    }

    /// DELETE of a manifest: by digest removes the manifest (with its tags and its referrer
    /// entry); by tag removes only the tag.
    pub async fn delete_manifest(
        self: &Arc<Self>,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<(), ApiError> {
        // In its own task for the same reason as in `put_manifest`.
        let this = Arc::clone(self);
        let (repo, target) = (repo.clone(), reference.clone());
        let deleted = tokio::spawn(store::context::inherit(async move {
            let deleted = match &target {
                Reference::Digest(d) => {
                    let deleted = this.meta.delete_manifest(&repo, d).await?;
                    this.cache.manifest_deleted(&repo, d);
                    deleted
                }
                Reference::Tag(t) => {
                    let deleted = this.meta.delete_tag(&repo, t).await?;
                    this.cache.tag_changed(&repo, t);
                    deleted
                }
            };
            if deleted {
                for observer in &this.observers {
                    observer.manifest_deleted(&repo, &target).await;
                }
            }
            Ok::<bool, ApiError>(deleted)
        }))
        .await
        .map_err(ApiError::internal)??;
        if deleted {
            Ok(())
        } else {
            Err(manifest_unknown(reference))
        }
    }

    // ----- discovery -----

    pub async fn tags(
        &self,
        repo: &RepositoryName,
        last: Option<&str>,
        n: u32,
    ) -> Result<Page, ApiError> {
        self.meta.list_tags(repo, last, n).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NameUnknown,
                format!("repository {repo} is not known to this registry"),
            )
            .with_detail(json!({ "name": repo.as_str() }))
        })
    }

    pub async fn catalog(&self, last: Option<&str>, n: u32) -> Result<Page, ApiError> {
        Ok(self.meta.list_repositories(last, n).await?)
    }

    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, ApiError> {
        Ok(self.meta.referrers(repo, subject, artifact_type).await?)
    }
}

fn restore_hasher(state: &UploadState) -> Result<Hasher, ApiError> {
    Hasher::restore(state.algorithm, &state.hash_state).map_err(ApiError::internal)
}

/// Checks a chunk against the session: it must start where the session stands.
/// Returns the number of bytes the body must carry, when known.
fn check_range(
    state: &UploadState,
    range: Option<ChunkRange>,
    declared_len: Option<u64>,
) -> Result<Option<u64>, ApiError> {
    match range {
        // Distribution Spec v1.1, "Pushing a blob in chunks": "If a chunk is uploaded out of
        // order, the registry MUST respond with a 416 Requested Range Not Satisfiable code."
        Some(r) if r.start != state.bytes_received => Err(range_error(
            state,
            &format!(
                "chunk starts at {} but the upload holds {} bytes",
                r.start, state.bytes_received
            ),
        )),
        Some(r) => match declared_len {
            Some(len) if len != r.len() => Err(ApiError::new(
                ErrorCode::SizeInvalid,
                format!(
                    "Content-Range covers {} bytes but Content-Length is {len}",
                    r.len()
                ),
            )),
            _ => Ok(Some(r.len())),
        },
        None => Ok(declared_len),
    }
}

fn range_error(state: &UploadState, why: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::BlobUploadInvalid, why.to_owned())
        .with_status(http::StatusCode::RANGE_NOT_SATISFIABLE)
        .with_detail(json!({ "offset": state.bytes_received }));
    if let Ok(v) = http::HeaderValue::from_str(&crate::http::range_value(state.bytes_received)) {
        e = e.with_header(http::header::RANGE, v);
    }
    if let Ok(v) =
        http::HeaderValue::from_str(&crate::http::upload_location(&state.repository, &state.id))
    {
        e = e.with_header(http::header::LOCATION, v);
    }
    e
}

fn size_invalid(expected: Option<u64>, received: u64) -> ApiError {
    ApiError::new(
        ErrorCode::SizeInvalid,
        format!(
            "request declared {} bytes but carried {received}",
            expected.map_or_else(|| "?".to_owned(), |e| e.to_string())
        ),
    )
}

pub(crate) fn manifest_unknown(reference: &Reference) -> ApiError {
    ApiError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest {reference} unknown to this repository"),
    )
    .with_detail(json!({ "reference": reference.to_string() }))
}

/// Gauge of upload requests streaming data right now.
struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        metrics::gauge!("bonded_uploads_in_progress").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("bonded_uploads_in_progress").decrement(1.0);
    }
}

/// One lock per upload session id, created on demand and dropped when unused.
#[derive(Default)]
struct UploadLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

struct UploadLockGuard {
    id: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl UploadLocks {
    async fn lock(&self, id: &str) -> UploadLockGuard {
        let mutex = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            match map.entry(id.to_owned()) {
                Entry::Occupied(e) => Arc::clone(e.get()),
                Entry::Vacant(e) => Arc::clone(e.insert(Arc::default())),
            }
        };
        let guard = mutex.lock_owned().await;
        UploadLockGuard {
            id: id.to_owned(),
            guard: Some(guard),
            locks: Arc::clone(&self.locks),
        }
    }
}

impl Drop for UploadLockGuard {
    fn drop(&mut self) {
        self.guard = None;
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(&self.id)
            && Arc::strong_count(m) == 1
        {
            map.remove(&self.id);
        }
    }
}

/// Bodies up to this size are read (and discarded) past the manifest limit before the 413 is
/// sent, so that clients which do not read a response until they finish sending still get it.
pub(crate) const DRAIN_LIMIT: u64 = 16 << 20;

/// Collects a bounded body (manifests), refusing more than `limit` bytes.
pub async fn collect_limited(mut body: BodyStream, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        total += chunk.len() as u64;
        if total > limit as u64 {
            // Over the limit: keep draining (bounded), then refuse.
            buf.clear();
            if total > DRAIN_LIMIT {
                return Err(too_large(limit));
            }
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    metrics::counter!("bonded_http_request_bytes_total").increment(total);
    if total > limit as u64 {
        return Err(too_large(limit));
    }
    Ok(buf.freeze())
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    // Distribution Spec v1.1, "Pushing Manifests": a registry enforcing a manifest size limit
    // "SHOULD respond ... with a response code 413 Payload Too Large".
    ApiError::new(
        ErrorCode::SizeInvalid,
        format!("manifest is larger than the {limit}-byte limit"),
    )
    .with_status(http::StatusCode::PAYLOAD_TOO_LARGE)
}
