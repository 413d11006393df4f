//! Blobs as files under a data directory.
//!
//! Layout (blob paths are derived from validated digests and upload ids only, so no client
//! string ever reaches the filesystem):
//!
//! ```text
//! <root>/blobs/<algorithm>/<first two hex>/<hex>   committed, verified blobs
//! <root>/uploads/<uuid>                            upload data being received
//! ```
//!
//! Writes are batched: the async side gathers received chunks into a batch of 2 MiB
//! while the previous batch is hashed and written on a blocking thread. At most one batch is
//! in flight per upload, so memory stays bounded whatever the blob size, and an upload whose
//! client is idle holds no thread at all (thousands of slow clients cannot exhaust the
//! blocking pool). A blob becomes visible by
//! `rename(2)` of its upload file, which is atomic within one filesystem; with
//! [`Durability::Fsync`] the data is synced before the rename and the directory after it.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use oci::{Digest, Hasher};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::task::JoinHandle;
use tokio_util::io::ReaderStream;

use crate::blob::{BlobBody, BlobStore, ByteRange, UploadProgress, UploadWriter};
use crate::error::StoreError;
use crate::meta::UploadId;

/// How hard the store works to survive power loss (a process crash is survived either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fdatasync upload data before it is acknowledged and directories after renames.
    #[default]
    Fsync,
    /// Leave flushing to the kernel: survives process crashes, not power loss.
    Relaxed,
}

/// Chunks at least this large are written straight through; smaller ones are gathered.
const WRITE_BUFFER: usize = 128 * 1024;
/// Bytes gathered before a batch is handed to the writer thread. With one batch in flight and
/// one filling, at most about two batches are held per upload: the writer never lags far
/// behind the network (so the answer follows the last byte quickly), and a chunk is usually
/// still in cache when it is hashed.
const BATCH_BYTES: usize = 2 << 20;
const READ_BUFFER: usize = 256 * 1024;
/// With [`Durability::Fsync`], uploads are written behind in windows of this size: each full
/// window is handed to the kernel for writeback and the window before it is waited for, so at
/// most two windows are ever dirty and the sync before an upload is acknowledged is short,
/// whatever the blob size. The upload then runs at the speed of the slower of network and disk.
const WRITE_BEHIND_WINDOW: u64 = 4 << 20;

/// A [`BlobStore`] on the local filesystem.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    durability: Durability,
}

impl FsBlobStore {
    /// Opens (creating if needed) a blob store rooted at `root`.
    pub async fn open(
        root: impl Into<PathBuf>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs"), root.join("uploads")] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(StoreError::io(&dir))?;
        }
        if durability == Durability::Fsync {
            let dirs = [root.clone(), root.join("blobs")];
            tokio::task::spawn_blocking(move || dirs.iter().try_for_each(|d| sync_dir(d)))
                .await
                .map_err(|_| StoreError::WriterGone)??;
        }
        Ok(FsBlobStore { root, durability })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(digest);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    async fn read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobBody, StoreError> {
        let path = self.blob_path(digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(StoreError::io(&path))?;
        let body: BlobBody = match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.first))
                    .await
                    .map_err(StoreError::io(&path))?;
                Box::pin(ReaderStream::with_capacity(file.take(r.len()), READ_BUFFER))
            }
            None => Box::pin(ReaderStream::with_capacity(file, READ_BUFFER)),
        };
        Ok(body)
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    async fn create_upload(&self, id: &UploadId) -> Result<(), StoreError> {
        let path = self.upload_path(id);
        let durability = self.durability;
        tokio::task::spawn_blocking(move || {
            File::create(&path).map_err(StoreError::io(&path))?;
            if durability == Durability::Fsync
                && let Some(dir) = path.parent()
            {
                sync_dir(dir)?;
            }
            Ok(())
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    async fn append_upload(
        &self,
        id: &UploadId,
        offset: u64,
        hasher: Hasher,
    ) -> Result<Box<dyn UploadWriter>, StoreError> {
        let path = self.upload_path(id);
        let id_string = id.as_str().to_owned();
        let open_path = path.clone();
        let file = tokio::task::spawn_blocking(move || open_at(&open_path, &id_string, offset))
            .await
            .map_err(|_| StoreError::WriterGone)??;
        Ok(Box::new(FsUploadWriter {
            idle: Some(WriterState {
                out: BufWriter::with_capacity(WRITE_BUFFER, file),
                hasher,
                written: offset,
                window_start: offset,
                previous_window: None,
            }),
            in_flight: None,
            batch: Vec::new(),
            batch_len: 0,
            path,
            durability: self.durability,
        }))
    }

    async fn commit_upload(
        &self,
        id: &UploadId,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let from = self.upload_path(id);
        let to = self.blob_path(digest);
        let durability = self.durability;
        let id = id.to_string();
        tokio::task::spawn_blocking(move || commit(&id, &from, &to, size, durability))
            .await
            .map_err(|_| StoreError::WriterGone)?
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<(), StoreError> {
        let path = self.upload_path(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    async fn list_uploads(&self) -> Result<Vec<(UploadId, i64)>, StoreError> {
        let dir = self.root.join("uploads");
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
                let entry = entry.map_err(StoreError::io(&dir))?;
                // Only names we could have created; anything else is not ours to touch.
                let Some(id) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<UploadId>().ok())
                else {
                    continue;
                };
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map_err(StoreError::io(entry.path()))?;
                let secs = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                out.push((id, secs));
            }
            Ok(out)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

/// Opens upload data for appending at `offset`, cutting off bytes past it.
fn open_at(path: &Path, id: &str, offset: u64) -> Result<File, StoreError> {
    let mut file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && offset == 0 => {
            File::create(path).map_err(StoreError::io(path))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::UploadDataMissing { id: id.to_owned() });
        }
        Err(e) => {
            return Err(StoreError::Io {
                path: path.into(),
                source: e,
            });
        }
    };
    let len = file.metadata().map_err(StoreError::io(path))?.len();
    if len < offset {
        return Err(StoreError::UploadTruncated {
            id: id.to_owned(),
            expected: offset,
            actual: len,
        });
    }
    if len > offset {
        file.set_len(offset).map_err(StoreError::io(path))?;
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(StoreError::io(path))?;
    Ok(file)
}

/// The open upload file and everything the writer knows about it.
struct WriterState {
    out: BufWriter<File>,
    hasher: Hasher,
    written: u64,
    window_start: u64,
    previous_window: Option<(u64, u64)>,
}

/// Hashes and writes one batch (on a blocking thread).
fn write_batch(
    mut state: WriterState,
    batch: Vec<Bytes>,
    path: &Path,
    durability: Durability,
) -> Result<WriterState, StoreError> {
    for chunk in batch {
        state.hasher.update(&chunk);
        state.out.write_all(&chunk).map_err(StoreError::io(path))?;
        state.written += chunk.len() as u64;
        if durability == Durability::Fsync
            && state.written - state.window_start >= WRITE_BEHIND_WINDOW
        {
            state.out.flush().map_err(StoreError::io(path))?;
            let window = (state.window_start, state.written - state.window_start);
            write_behind(state.out.get_ref(), window, state.previous_window);
            state.previous_window = Some(window);
            state.window_start = state.written;
        }
    }
    Ok(state)
}

/// Flushes (and syncs) the upload file (on a blocking thread).
fn finish_writes(
    mut state: WriterState,
    path: &Path,
    durability: Durability,
) -> Result<UploadProgress, StoreError> {
    state.out.flush().map_err(StoreError::io(path))?;
    if durability == Durability::Fsync {
        state
            .out
            .get_ref()
            .sync_data()
            .map_err(StoreError::io(path))?;
    }
    Ok(UploadProgress {
        bytes_received: state.written,
        hasher: state.hasher,
    })
}

/// Starts writeback of `window` and waits until `previous` is on disk (`sync_file_range(2)`).
/// Only an optimisation of when data reaches the disk: the `fdatasync` before an upload is
/// acknowledged is what guarantees it, so failures here are ignored.
#[cfg(target_os = "linux")]
fn write_behind(file: &File, window: (u64, u64), previous: Option<(u64, u64)>) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: sync_file_range only reads its integer arguments; `fd` stays valid while `file`
    // is borrowed.
    unsafe {
        libc::sync_file_range(
            fd,
            window.0 as libc::off64_t,
            window.1 as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
        if let Some((start, len)) = previous {
            libc::sync_file_range(
                fd,
                start as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn write_behind(_file: &File, _window: (u64, u64), _previous: Option<(u64, u64)>) {}

fn commit(
    id: &str,
    from: &Path,
    to: &Path,
    size: u64,
    durability: Durability,
) -> Result<(), StoreError> {
    // The bytes in the file must be the bytes that were hashed: same length at least. (One
    // writer per session is enforced above us; this guards against anything else.)
    let actual = std::fs::metadata(from).map_err(StoreError::io(from))?.len();
    if actual != size {
        return Err(StoreError::UploadTruncated {
            id: id.to_owned(),
            expected: size,
            actual,
        });
    }
    let parent = to.parent().unwrap_or(Path::new("."));
    if !parent.exists() {
        std::fs::create_dir_all(parent).map_err(StoreError::io(parent))?;
        if durability == Durability::Fsync {
            // The new prefix directory must itself be durable in its parent.
            if let Some(grandparent) = parent.parent() {
                sync_dir(grandparent)?;
            }
        }
    }
    match std::fs::metadata(to) {
        // Content-addressed: identical bytes are already in place.
        Ok(existing) if existing.len() == size => {
            std::fs::remove_file(from).map_err(StoreError::io(from))?;
        }
        // Missing, or a file of the wrong size (never expected): put the verified bytes there.
        _ => std::fs::rename(from, to).map_err(StoreError::io(to))?,
    }
    if durability == Durability::Fsync {
        // Also when the blob already existed: its rename may not have been synced yet.
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

struct FsUploadWriter {
    /// The state while no batch is being written.
    idle: Option<WriterState>,
    /// The batch being written, which returns the state when done.
    in_flight: Option<JoinHandle<Result<WriterState, StoreError>>>,
    batch: Vec<Bytes>,
    batch_len: usize,
    path: PathBuf,
    durability: Durability,
}

impl FsUploadWriter {
    /// Waits for the batch in flight, if any, and returns the writer state.
    async fn settle(&mut self) -> Result<WriterState, StoreError> {
        if let Some(handle) = self.in_flight.take() {
            return handle.await.map_err(|_| StoreError::WriterGone)?;
        }
        self.idle.take().ok_or(StoreError::WriterGone)
    }

    /// Hands the gathered batch to a blocking thread once the previous one is done.
    async fn dispatch(&mut self) -> Result<(), StoreError> {
        let state = self.settle().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        let (path, durability) = (self.path.clone(), self.durability);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_batch(state, batch, &path, durability)
        }));
        Ok(())
    }
}

#[async_trait]
impl UploadWriter for FsUploadWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= BATCH_BYTES {
            self.dispatch().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<UploadProgress, StoreError> {
        if !self.batch.is_empty() {
            self.dispatch().await?;
        }
        let state = self.settle().await?;
        let (path, durability) = (self.path.clone(), self.durability);
        tokio::task::spawn_blocking(move || finish_writes(state, &path, durability))
            .await
            .map_err(|_| StoreError::WriterGone)?
    }
}
