//! Storage for the scan worker: the job queue (filled by [`crate::MetaStore::put_manifest`]
//! in the same transaction as the manifest, so no pushed image is ever left unscanned), the
//! per-layer fragment cache, and results with their history. Documents are opaque JSON.

use async_trait::async_trait;

use crate::StoreError;

/// Where a scan job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanState {
    Pending,
    Running,
    Done,
    Failed,
}

impl ScanState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanState::Pending => "pending",
            ScanState::Running => "running",
            ScanState::Done => "done",
            ScanState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ScanState> {
        Some(match s {
            "pending" => ScanState::Pending,
            "running" => ScanState::Running,
            "done" => ScanState::Done,
            "failed" => ScanState::Failed,
            _ => return None,
        })
    }
}

/// A job as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanJob {
    pub manifest_digest: String,
    pub repository: String,
    pub state: ScanState,
    pub reason: Option<String>,
    pub attempts: i64,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The stored result of the latest scan of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResultRow {
    pub manifest_digest: String,
    pub db_version: Option<String>,
    pub inventory: String,
    pub findings: Option<String>,
    pub summary: Option<String>,
    pub scanned_at: i64,
    pub matched_at: Option<i64>,
}

/// New findings for a stored inventory, from a re-match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RematchedRow {
    pub manifest_digest: String,
    pub db_version: String,
    pub findings: String,
    pub summary: String,
    pub matched_at: i64,
}

/// A re-match that changed a manifest's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanChange {
    pub manifest_digest: String,
    pub from_db: Option<String>,
    pub to_db: String,
    /// JSON arrays of finding keys.
    pub added: String,
    pub removed: String,
    pub at: i64,
}

#[async_trait]
pub trait ScanStore: Send + Sync + 'static {
    /// Takes the oldest pending job, or a running one whose worker has not finished it within
    /// `stale_after` seconds (it crashed), and marks it running.
    async fn claim_scan_job(
        &self,
        now: i64,
        stale_after: i64,
    ) -> Result<Option<ScanJob>, StoreError>;
    /// Records the outcome of a claimed job.
    async fn finish_scan_job(
        &self,
        manifest_digest: &str,
        outcome: Result<(), String>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Puts a claimed job that failed back in the queue, not to be taken before `not_before`
    /// (unix seconds); `reason` says why the last attempt failed.
    async fn retry_scan_job(
        &self,
        manifest_digest: &str,
        reason: &str,
        not_before: i64,
    ) -> Result<(), StoreError>;
    /// Queues a (re)scan of a manifest; returns false when the manifest is not in `repository`.
    /// A request while the job runs makes it run again: the running worker's finish no longer
    /// applies to the pending job.
    async fn request_scan(
        &self,
        repository: &str,
        manifest_digest: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn scan_job(&self, manifest_digest: &str) -> Result<Option<ScanJob>, StoreError>;

    async fn layer_fragment(
        &self,
        diff_id: &str,
        analyzer: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn put_layer_fragment(
        &self,
        diff_id: &str,
        analyzer: &str,
        fragment: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn layer_diff_id(&self, blob_digest: &str) -> Result<Option<String>, StoreError>;
    async fn put_layer_diff_id(&self, blob_digest: &str, diff_id: &str) -> Result<(), StoreError>;

    async fn put_scan_result(&self, row: &ScanResultRow) -> Result<(), StoreError>;
    async fn scan_result(&self, manifest_digest: &str)
    -> Result<Option<ScanResultRow>, StoreError>;
    /// Results in digest order after `after`, for re-matching every stored inventory.
    async fn scan_results_after(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ScanResultRow>, StoreError>;
    /// Replaces the findings of many manifests after a re-match, with their changes, in one
    /// transaction. The inventories are not rewritten.
    async fn record_rematch(
        &self,
        rows: Vec<RematchedRow>,
        changes: Vec<ScanChange>,
    ) -> Result<(), StoreError>;
    async fn scan_changes(
        &self,
        manifest_digest: &str,
        limit: u32,
    ) -> Result<Vec<ScanChange>, StoreError>;
}
