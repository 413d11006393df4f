//! Storage errors. Variants carry what failed (path, id, digest) as data.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("upload {id} has no data file")]
    UploadDataMissing { id: String },
    #[error("upload {id} holds {actual} bytes but {expected} were recorded")]
    UploadTruncated {
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("stored row is corrupt: {what}")]
    Corrupt { what: String },
    #[error("a writer (upload data or metadata) stopped unexpectedly")]
    WriterGone,
    #[error("metadata commit failed: {reason}")]
    CommitFailed { reason: String },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
