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
    /// A change would move or delete a tag that a promotion made immutable.
    #[error("immutable tag: {reason}")]
    ImmutableTag { reason: String },
}

/// The message of the triggers that guard immutable tags (`0008_promotions.sql`).
pub(crate) const IMMUTABLE_TAG: &str = "bonded: immutable tag";

impl StoreError {
    /// Turns the immutable-tag trigger's abort into [`StoreError::ImmutableTag`].
    pub(crate) fn classify(self) -> StoreError {
        match &self {
            StoreError::Database(sqlx::Error::Database(db))
                if db.message().contains(IMMUTABLE_TAG) =>
            {
                StoreError::ImmutableTag {
                    reason: "a promotion made this tag immutable".into(),
                }
            }
            _ => self,
        }
    }
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
