//! The scan worker: takes scan jobs that manifest pushes queued, reads each image's layers
//! from the registry's own store (a layer already read for any image is taken from the
//! per-layer cache, keyed by the diff_id computed while reading it and the analyzer
//! version), matches the inventory against the vulnerability DB, stores the result, and
//! attaches the SBOM to the image as an OCI referrer.
//!
//! The DB is `[scan] db` from the configuration. When the file changes (checked every
//! [`ScanWorkerConfig::db_check`] and at once on SIGHUP), the worker opens the new one and
//! re-matches every stored inventory without reading a layer again, recording per manifest
//! which findings appeared and disappeared.
//!
//! Cache safety: the per-layer cache is keyed by the diff_id this worker computed from the
//! bytes, never by the one an image config claims, so a config that lies cannot make one
//! image borrow another layer's inventory. A claim that disagrees with the bytes is noted in
//! the inventory.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use oci::{Algorithm, Digest, Manifest, ManifestKind, Reference, RepositoryName};
use registry::Registry;
use scan::db::VulnDb;
use scan::image::{BlobSource, ImageError, LayerRef, ResolvedImage};
use scan::layer::{LayerFragment, WalkOptions};
use scan::limits::Limits;
use scan::matcher::Finding;
use scan::model::Inventory;
use scan::report::{Counts, ImageSummary, Report};
use scan::scanner::{self, Quiet, ScanOptions};
use store::{RematchedRow, ScanChange, ScanJob, ScanResultRow, ScanStore};
use tokio::sync::Notify;

use crate::outbox::unix_now as now;

/// Identifies the detectors. Bump it when what they find changes, so cached layer fragments
/// from older detectors are not reused.
pub const ANALYZER_VERSION: &str = "bonded-scan-1";

/// Stored results re-matched per batch.
const REMATCH_BATCH: u32 = 250;

/// The artifact type of the SBOM referrer (CycloneDX's registered media type).
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";

/// The empty config of an artifact manifest (OCI image-spec `manifest.md`, "Guidance for an
/// Empty Descriptor"): the two bytes `{}`.
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";

#[derive(Debug, Clone)]
pub struct ScanWorkerConfig {
    /// The vulnerability DB file; without one, images are inventoried but not matched.
    pub db_path: Option<PathBuf>,
    pub limits: Limits,
    /// How long the worker sleeps when the queue is empty.
    pub idle_poll: Duration,
    /// How often the DB file is checked for a replacement.
    pub db_check: Duration,
    /// A running job not finished after this long is taken again (its worker died).
    pub stale_after: Duration,
    /// Layers read at the same time for one image.
    pub threads: usize,
    /// Attempts a job gets before it is failed for good.
    pub max_attempts: i64,
    /// The wait before the first retry; it doubles with each further attempt.
    pub retry_delay: Duration,
}

impl Default for ScanWorkerConfig {
    fn default() -> Self {
        ScanWorkerConfig {
            db_path: None,
            limits: Limits::default(),
            idle_poll: Duration::from_millis(500),
            db_check: Duration::from_secs(10),
            stale_after: Duration::from_secs(30 * 60),
            threads: 2,
            max_attempts: 3,
            retry_delay: Duration::from_secs(10),
        }
    }
}

/// The DB file's identity: a replaced file has a new inode, a rewritten one a new length or
/// modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn fingerprint(path: &std::path::Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Fingerprint {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// A loaded DB: one connection per re-match thread (a connection is used by one thread at
/// a time; each keeps its own memo of candidates and verdicts).
struct LoadedDb {
    connections: Vec<Mutex<VulnDb>>,
    version: String,
    fingerprint: Fingerprint,
}

impl LoadedDb {
    fn first(&self) -> Result<std::sync::MutexGuard<'_, VulnDb>, String> {
        self.connections
            .first()
            .ok_or_else(|| "no DB connection".to_owned())?
            .lock()
            .map_err(|_| "DB lock poisoned".to_owned())
    }
}

/// What one scan did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanDone {
    pub layers: usize,
    /// Layers whose inventory came from the per-layer cache.
    pub reused: usize,
    pub packages: usize,
    pub findings: usize,
}

/// Counts from one re-match of every stored inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RematchStats {
    pub manifests: usize,
    pub changed: usize,
    pub elapsed: Duration,
}

pub struct ScanWorker {
    registry: Arc<Registry>,
    scans: Arc<dyn ScanStore>,
    config: ScanWorkerConfig,
    db: RwLock<Option<Arc<LoadedDb>>>,
    wake: Notify,
    reload: Notify,
    /// Where a DB replacement is announced (`vulndb.updated`), once set.
    events: std::sync::OnceLock<Arc<dyn store::EventStore>>,
}

impl ScanWorker {
    pub fn new(
        registry: Arc<Registry>,
        scans: Arc<dyn ScanStore>,
        config: ScanWorkerConfig,
    ) -> Arc<ScanWorker> {
        Arc::new(ScanWorker {
            registry,
            scans,
            config,
            db: RwLock::new(None),
            wake: Notify::new(),
            reload: Notify::new(),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Announces each DB replacement on the outbox (`vulndb.updated`), after the stored
    /// inventories were re-matched, so policies are asked again.
    pub fn publish_to(&self, events: Arc<dyn store::EventStore>) {
        let _ = self.events.set(events);
    }

    /// Asks the worker to look at the queue now (after a rescan request).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the worker to check the DB file now (SIGHUP).
    pub fn reload_db(&self) {
        self.reload.notify_one();
        self.wake.notify_one();
    }

    /// The version of the DB in use, if one is loaded.
    pub fn db_version(&self) -> Option<String> {
        self.db.read().ok()?.as_ref().map(|d| d.version.clone())
    }

    /// Opens the DB if its file changed since it was loaded. Returns (old, new) versions
    /// when a different DB is now in use.
    pub fn check_db(&self) -> Result<Option<(Option<String>, String)>, String> {
        let Some(path) = &self.config.db_path else {
            return Ok(None);
        };
        let Some(print) = fingerprint(path) else {
            return Err(format!("vulnerability DB {} is missing", path.display()));
        };
        let old = self.db.read().map_err(|_| "DB lock poisoned")?.clone();
        if old.as_ref().is_some_and(|o| o.fingerprint == print) {
            return Ok(None);
        }
        let mut connections = Vec::new();
        for _ in 0..self.config.threads.max(1) {
            connections.push(Mutex::new(VulnDb::open(path).map_err(|e| e.to_string())?));
        }
        let version = connections[0]
            .lock()
            .map_err(|_| "DB lock poisoned")?
            .version()
            .to_owned();
        let old_version = old.as_ref().map(|o| o.version.clone());
        *self.db.write().map_err(|_| "DB lock poisoned")? = Some(Arc::new(LoadedDb {
            connections,
            version: version.clone(),
            fingerprint: print,
        }));
        if old_version.as_deref() == Some(version.as_str()) {
            return Ok(None);
        }
        Ok(Some((old_version, version)))
    }

    /// Runs until the process ends.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run().await })
    }

    async fn run(self: Arc<Self>) {
        let mut last_check: Option<Instant> = None;
        loop {
            if last_check.is_none_or(|t| t.elapsed() >= self.config.db_check) {
                last_check = Some(Instant::now());
                self.refresh_db().await;
            }
            match self
                .scans
                .claim_scan_job(now(), self.config.stale_after.as_secs() as i64)
                .await
            {
                Ok(Some(job)) => {
                    let started = Instant::now();
                    let outcome = self.scan(&job).await;
                    match &outcome {
                        Err(reason) => {
                            tracing::warn!(manifest = %job.manifest_digest, repository = %job.repository, %reason, "scan failed")
                        }
                        Ok(done) => tracing::info!(
                            manifest = %job.manifest_digest,
                            repository = %job.repository,
                            layers = done.layers,
                            reused = done.reused,
                            packages = done.packages,
                            findings = done.findings,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "scan done"
                        ),
                    }
                    let recorded = match outcome {
                        Err(reason) if job.attempts < self.config.max_attempts => {
                            // Retried with backoff: an I/O error or a restart of the store may
                            // pass; a deterministic failure costs a bounded number of attempts.
                            let delay = self
                                .config
                                .retry_delay
                                .saturating_mul(1 << (job.attempts - 1).clamp(0, 16));
                            tracing::info!(manifest = %job.manifest_digest, attempt = job.attempts,
                                retry_in_secs = delay.as_secs(), "scan will be retried");
                            self.scans
                                .retry_scan_job(
                                    &job.manifest_digest,
                                    &reason,
                                    now().saturating_add(delay.as_secs() as i64),
                                )
                                .await
                        }
                        Err(reason) => {
                            let reason = format!("{reason} (after {} attempts)", job.attempts);
                            self.scans
                                .finish_scan_job(&job.manifest_digest, Err(reason), now())
                                .await
                        }
                        Ok(_) => {
                            self.scans
                                .finish_scan_job(&job.manifest_digest, Ok(()), now())
                                .await
                        }
                    };
                    if let Err(e) = recorded {
                        tracing::error!(error = %e, "cannot record a scan outcome");
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = self.reload.notified() => last_check = None,
                        _ = tokio::time::sleep(self.config.idle_poll) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot take a scan job");
                    tokio::time::sleep(self.config.idle_poll).await;
                }
            }
        }
    }

    async fn refresh_db(&self) {
        match self.check_db() {
            Ok(Some((old, new))) => {
                tracing::info!(from = old.as_deref().unwrap_or("none"), to = %new, "vulnerability DB loaded");
                // Also on the first load: results stored with another DB (or none, or while
                // the server was down and the file changed) are brought up to date.
                {
                    match self.rematch_all(old.clone()).await {
                        Ok(stats) => {
                            tracing::info!(
                                manifests = stats.manifests,
                                changed = stats.changed,
                                elapsed_ms = stats.elapsed.as_millis() as u64,
                                "stored inventories re-matched"
                            );
                            self.announce_db(old, &new, &stats).await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "re-matching stored inventories failed")
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "vulnerability DB not loaded"),
        }
    }

    async fn announce_db(&self, from: Option<String>, to: &str, stats: &RematchStats) {
        let Some(events) = self.events.get() else {
            return;
        };
        let event = store::NewEvent {
            kind: "vulndb.updated".into(),
            repository: None,
            digest: None,
            tag: None,
            data: serde_json::json!({
                "from": from, "to": to,
                "rematched": stats.manifests, "changed": stats.changed,
            })
            .to_string(),
        };
        if let Err(e) = events.append_event(&event, now()).await {
            tracing::error!(error = %e, "cannot record the DB replacement on the outbox");
        }
    }

    fn loaded(&self) -> Option<Arc<LoadedDb>> {
        self.db.read().ok()?.clone()
    }

    /// Scans one image manifest end to end.
    pub async fn scan(&self, job: &ScanJob) -> Result<ScanDone, String> {
        let repo = RepositoryName::from_str(&job.repository).map_err(|e| e.to_string())?;
        let digest = Digest::from_str(&job.manifest_digest).map_err(|e| e.to_string())?;
        let stored = self
            .registry
            .manifest(&repo, &Reference::Digest(digest.clone()))
            .await
            .map_err(|e| format!("manifest not readable: {}", e.describe()))?;
        let manifest = Manifest::parse(Some(&stored.media_type), &stored.content)
            .map_err(|e| e.to_string())?;
        let ManifestKind::Image { config, .. } = &manifest.kind else {
            return Err("an index is not scanned itself; its children are".to_owned());
        };
        let config_bytes = self.read_small_blob(&config.digest).await?;
        let image = ResolvedImage::from_parts(
            format!("{repo}@{digest}"),
            &digest,
            &manifest,
            &config_bytes,
        )
        .map_err(|e| e.to_string())?;

        let mut cached: Vec<Option<LayerFragment>> = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            cached.push(self.cached_fragment(&layer.digest).await);
        }
        let reused = cached.iter().filter(|c| c.is_some()).count();
        let source = StoreSource {
            registry: Arc::clone(&self.registry),
            handle: tokio::runtime::Handle::current(),
        };
        let options = ScanOptions {
            limits: self.config.limits,
            walk: WalkOptions {
                compute_diff_id: true,
            },
            threads: self.config.threads,
        };
        let (image, cached, fragments) = tokio::task::spawn_blocking(move || {
            let fragments =
                scanner::read_layers(&source, &image, &options, &Quiet, &|i| cached[i].clone());
            (image, cached, fragments)
        })
        .await
        .map_err(|e| format!("scan task failed: {e}"))?;
        let fragments = fragments.map_err(|e| e.to_string())?;
        for ((layer, fragment), was_cached) in image.layers.iter().zip(&fragments).zip(&cached) {
            if was_cached.is_some() {
                continue;
            }
            if let Some(diff_id) = &fragment.diff_id {
                let json = serde_json::to_string(fragment).map_err(|e| e.to_string())?;
                self.scans
                    .put_layer_fragment(diff_id, ANALYZER_VERSION, &json, now())
                    .await
                    .map_err(|e| e.to_string())?;
                self.scans
                    .put_layer_diff_id(&layer.digest, diff_id)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let mut inventory = scanner::assemble(&image, &fragments);
        for (i, (claimed, fragment)) in image.claimed_diff_ids().iter().zip(&fragments).enumerate()
        {
            if let (Some(claimed), Some(actual)) = (claimed, &fragment.diff_id)
                && claimed != actual
            {
                inventory.notes.push(format!(
                    "layer {i}: the config claims diff_id {claimed} but the layer decompresses to {actual}"
                ));
            }
        }

        let (findings, db_version) = self.match_one(&mut inventory, &job.manifest_digest).await?;
        let row = ScanResultRow {
            manifest_digest: job.manifest_digest.clone(),
            db_version: db_version.clone(),
            inventory: serde_json::to_string(&inventory).map_err(|e| e.to_string())?,
            findings: findings
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| e.to_string())?,
            summary: findings
                .as_ref()
                .map(|f| serde_json::to_string(&Counts::of(f)))
                .transpose()
                .map_err(|e| e.to_string())?,
            scanned_at: now(),
            matched_at: db_version.as_ref().map(|_| now()),
        };
        self.scans
            .put_scan_result(&row)
            .await
            .map_err(|e| e.to_string())?;
        self.push_sbom(
            &repo,
            &digest,
            &stored.media_type,
            stored.content.len() as u64,
            &image,
            &inventory,
        )
        .await?;
        Ok(ScanDone {
            layers: image.layers.len(),
            reused,
            packages: inventory.packages.len(),
            findings: findings.map_or(0, |f| f.len()),
        })
    }

    async fn cached_fragment(&self, blob_digest: &str) -> Option<LayerFragment> {
        let diff_id = self.scans.layer_diff_id(blob_digest).await.ok()??;
        let json = self
            .scans
            .layer_fragment(&diff_id, ANALYZER_VERSION)
            .await
            .ok()??;
        serde_json::from_str(&json).ok()
    }

    async fn read_small_blob(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        let mut body = self
            .registry
            .read_blob(digest, None)
            .await
            .map_err(|e| e.describe().to_owned())?;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if out.len() + chunk.len() > scan::image::MAX_DOCUMENT_BYTES as usize {
                return Err(format!(
                    "blob {digest} is larger than {} bytes",
                    scan::image::MAX_DOCUMENT_BYTES
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Matches one inventory with the loaded DB (with the DB's vendor VEX applied).
    /// Also adds to the inventory's notes what the DB could not cover.
    async fn match_one(
        &self,
        inventory: &mut Inventory,
        manifest_digest: &str,
    ) -> Result<(Option<Vec<Finding>>, Option<String>), String> {
        let Some(loaded) = self.loaded() else {
            return Ok((None, None));
        };
        let owned = inventory.clone();
        let digest = manifest_digest.to_owned();
        let (findings, notes, version) = tokio::task::spawn_blocking(move || {
            let db = loaded.first()?;
            let notes = scan::matcher::coverage_notes(&db, &owned).map_err(|e| e.to_string())?;
            let findings = scan::vex::match_with_vex(&db, &owned, Some(&digest), &[])
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((findings, notes, loaded.version.clone()))
        })
        .await
        .map_err(|e| format!("match task failed: {e}"))??;
        inventory.notes.extend(notes);
        Ok((Some(findings), Some(version)))
    }

    /// Re-matches every stored inventory against the loaded DB, in batches, recording
    /// what changed for each manifest.
    pub async fn rematch_all(&self, from: Option<String>) -> Result<RematchStats, String> {
        let Some(loaded) = self.loaded() else {
            return Ok(RematchStats::default());
        };
        let started = Instant::now();
        let mut stats = RematchStats::default();
        // A pipeline: while one batch is matched, the next is read and the previous written.
        let mut rows = self
            .scans
            .scan_results_after("", REMATCH_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let mut writing: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
        while let Some(last) = rows.last() {
            let after = last.manifest_digest.clone();
            let batch = std::mem::take(&mut rows);
            let loaded = Arc::clone(&loaded);
            let from = from.clone();
            let matching = tokio::task::spawn_blocking(move || rematch_rows(&loaded, batch, from));
            let (next, matched) = tokio::join!(
                self.scans.scan_results_after(&after, REMATCH_BATCH),
                matching
            );
            let (updated, changes) =
                matched.map_err(|e| format!("re-match task failed: {e}"))??;
            rows = next.map_err(|e| e.to_string())?;
            stats.manifests += updated.len();
            stats.changed += changes.len();
            if let Some(previous) = writing.take() {
                previous
                    .await
                    .map_err(|e| format!("re-match write failed: {e}"))??;
            }
            let scans = Arc::clone(&self.scans);
            writing = Some(tokio::spawn(async move {
                scans
                    .record_rematch(updated, changes)
                    .await
                    .map_err(|e| e.to_string())
            }));
        }
        if let Some(previous) = writing.take() {
            previous
                .await
                .map_err(|e| format!("re-match write failed: {e}"))??;
        }
        stats.elapsed = started.elapsed();
        Ok(stats)
    }

    /// Stores the image's CycloneDX SBOM in its repository as a referrer of the image. The
    /// document depends only on the inventory (its serial number is derived from the image
    /// digest and its content), so scanning the same image again stores the same manifest.
    async fn push_sbom(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        media_type: &str,
        size: u64,
        image: &ResolvedImage,
        inventory: &Inventory,
    ) -> Result<(), String> {
        let summary = ImageSummary {
            name: image.name.clone(),
            manifest_digest: image.manifest_digest.clone(),
            config_digest: image.config_digest.clone(),
            platform: image.platform.clone(),
        };
        let created = image
            .config
            .get("created")
            .and_then(|c| c.as_str())
            .filter(|c| c.len() >= 20)
            .unwrap_or("1970-01-01T00:00:00Z")
            .to_owned();
        let inventory_json = serde_json::to_vec(inventory).map_err(|e| e.to_string())?;
        let seed = Digest::compute(
            Algorithm::Sha256,
            &[digest.to_string().as_bytes(), &inventory_json].concat(),
        );
        let mut id_bytes = [0u8; 16];
        id_bytes.copy_from_slice(&hex::decode(&seed.hex()[..32]).map_err(|e| e.to_string())?);
        let document_id = uuid::Uuid::new_v8(id_bytes).to_string();
        let report = Report {
            image: &summary,
            inventory,
            findings: None,
            db: None,
            timestamp: &created,
            document_id: &document_id,
        };
        let sbom = serde_json::to_vec(&scan::report::cyclonedx::render(&report))
            .map_err(|e| e.to_string())?;
        let sbom_digest = Digest::compute(Algorithm::Sha256, &sbom);
        let empty = Bytes::from_static(b"{}");
        let empty_digest = Digest::compute(Algorithm::Sha256, &empty);
        self.put_blob(repo, &empty_digest, empty).await?;
        self.put_blob(repo, &sbom_digest, Bytes::from(sbom.clone()))
            .await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": SBOM_ARTIFACT_TYPE,
            "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": empty_digest.to_string(), "size": 2},
            "layers": [{"mediaType": SBOM_ARTIFACT_TYPE, "digest": sbom_digest.to_string(), "size": sbom.len()}],
            "subject": {"mediaType": media_type, "digest": digest.to_string(), "size": size},
            "annotations": {
                "org.opencontainers.image.created": created,
                "dev.bonded.sbom.generator": format!("bonded {}", env!("CARGO_PKG_VERSION")),
            },
        });
        let bytes = Bytes::from(serde_json::to_vec(&manifest).map_err(|e| e.to_string())?);
        let manifest_digest = Digest::compute(Algorithm::Sha256, &bytes);
        self.registry
            .put_manifest(
                repo,
                &Reference::Digest(manifest_digest),
                Some("application/vnd.oci.image.manifest.v1+json"),
                bytes,
            )
            .await
            .map_err(|e| format!("cannot store the SBOM referrer: {}", e.describe()))?;
        Ok(())
    }

    async fn put_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<(), String> {
        self.registry
            .store_blob(repo, bytes)
            .await
            .map(drop)
            .map_err(|e| format!("cannot store blob {digest}: {}", e.describe()))
    }
}

/// The fields of a stored finding that identify it across re-matches; the rest of the stored
/// JSON is skipped, not built.
#[derive(serde::Deserialize)]
struct StoredFindingKey {
    id: String,
    package: usize,
    status: scan::matcher::FindingStatus,
}

/// A finding's identity across re-matches: the vulnerability, the package version, the status.
fn finding_key(
    id: &str,
    package: usize,
    status: scan::matcher::FindingStatus,
    inventory: &Inventory,
) -> String {
    let package = inventory
        .packages
        .get(package)
        .map(|p| format!("{}@{}", p.name, p.version))
        .unwrap_or_default();
    format!("{id} {package} {}", status.as_str())
}

/// Rows with their new findings, and the changes among them.
type Rematched = (Vec<RematchedRow>, Vec<ScanChange>);

fn rematch_rows(
    loaded: &LoadedDb,
    rows: Vec<ScanResultRow>,
    from: Option<String>,
) -> Result<Rematched, String> {
    // The rows are split among the DB's connections, one thread each.
    let per_thread = rows.len().div_ceil(loaded.connections.len().max(1)).max(1);
    let mut chunks: Vec<Vec<ScanResultRow>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        chunks.push(rows.by_ref().take(per_thread).collect());
    }
    let results: Vec<Result<Rematched, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .zip(&loaded.connections)
            .map(|(chunk, connection)| {
                let from = from.clone();
                scope.spawn(move || {
                    let db = connection
                        .lock()
                        .map_err(|_| "DB lock poisoned".to_owned())?;
                    rematch_chunk(&db, &loaded.version, chunk, from)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("re-match thread panicked".to_owned()))
            })
            .collect()
    });
    let mut updated = Vec::new();
    let mut changes = Vec::new();
    for result in results {
        let (u, c) = result?;
        updated.extend(u);
        changes.extend(c);
    }
    Ok((updated, changes))
}

fn rematch_chunk(
    db: &VulnDb,
    db_version: &str,
    rows: Vec<ScanResultRow>,
    from: Option<String>,
) -> Result<Rematched, String> {
    let mut updated = Vec::with_capacity(rows.len());
    let mut changes = Vec::new();
    let at = now();
    for row in rows {
        if row.db_version.as_deref() == Some(db_version) {
            continue;
        }
        let Ok(inventory) = serde_json::from_str::<Inventory>(&row.inventory) else {
            tracing::warn!(manifest = %row.manifest_digest, "stored inventory unreadable; rescan it");
            continue;
        };
        let old: Vec<StoredFindingKey> = row
            .findings
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        // One row the DB cannot match is logged and left for a rescan; the others go on.
        let new = match scan::vex::match_with_vex(db, &inventory, Some(&row.manifest_digest), &[]) {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(manifest = %row.manifest_digest, error = %e, "re-match failed for this image");
                continue;
            }
        };
        let old_keys: std::collections::BTreeSet<String> = old
            .iter()
            .map(|f| finding_key(&f.id, f.package, f.status, &inventory))
            .collect();
        let new_keys: std::collections::BTreeSet<String> = new
            .iter()
            .map(|f| finding_key(&f.id, f.package, f.status, &inventory))
            .collect();
        let added: Vec<&String> = new_keys.difference(&old_keys).collect();
        let removed: Vec<&String> = old_keys.difference(&new_keys).collect();
        if !added.is_empty() || !removed.is_empty() {
            changes.push(ScanChange {
                manifest_digest: row.manifest_digest.clone(),
                from_db: row.db_version.clone().or_else(|| from.clone()),
                to_db: db_version.to_owned(),
                added: serde_json::to_string(&added).map_err(|e| e.to_string())?,
                removed: serde_json::to_string(&removed).map_err(|e| e.to_string())?,
                at,
            });
        }
        updated.push(RematchedRow {
            manifest_digest: row.manifest_digest,
            db_version: db_version.to_owned(),
            findings: serde_json::to_string(&new).map_err(|e| e.to_string())?,
            summary: serde_json::to_string(&Counts::of(&new)).map_err(|e| e.to_string())?,
            matched_at: at,
        });
    }
    Ok((updated, changes))
}

/// Layers read from the registry's own blob store (already verified when they were pushed),
/// from a blocking thread.
struct StoreSource {
    registry: Arc<Registry>,
    handle: tokio::runtime::Handle,
}

impl BlobSource for StoreSource {
    fn open_layer(
        &self,
        layer: &LayerRef,
    ) -> Result<Box<dyn std::io::Read + Send + '_>, ImageError> {
        let digest = Digest::from_str(&layer.digest).map_err(|e| ImageError::Invalid {
            what: layer.digest.clone(),
            reason: e.to_string(),
        })?;
        let body = self
            .handle
            .block_on(self.registry.read_blob(&digest, None))
            .map_err(|e| ImageError::Remote(format!("layer {digest}: {}", e.describe())))?;
        let reader = tokio_util::io::StreamReader::new(body);
        Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
            reader,
            self.handle.clone(),
        )))
    }
}
