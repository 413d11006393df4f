//! `bonded audit verify`: checks a server's audit log, offline from its data directory or
//! online through the audit API, and says in words what was checked and what was found.
//!
//! Both read the same evidence and hand it to [`crate::verify::verify_log`]:
//! - every stored entry, hashed as stored (`SHA-256(0x00 ‖ bytes)`), in index order;
//! - the leaf hashes the server recorded at append time, which name each changed, removed,
//!   inserted or moved entry exactly once they are proven by the signed root;
//! - the latest signed checkpoint, checked with the server's public key;
//! - earlier checkpoints: offline, every checkpoint the server stored; and a checkpoint the
//!   user saved earlier (`--checkpoint`), which proves the log was only appended to since.
//!
//! Offline ([`verify_data_dir`]) opens `<dir>/bonded.db` read-only as one snapshot, so it can
//! run beside a live server, and takes the key from `<dir>/trust/server.pub` unless one is
//! given. Online ([`verify_url`]) downloads the latest checkpoint, then exactly the entries
//! and leaves it covers (entries appended later are not signed yet and are left for the next
//! run), and takes the key from `GET /api/v1/authorities/bonded` unless one is given.
//!
//! What this proves depends on where the trust comes from, and the report says which:
//! whoever can write the data directory can also read the server's private key and re-sign
//! a rewritten log. Against that attacker, verify with a key and a checkpoint kept elsewhere
//! (`--key`, `--checkpoint`): a rewritten log is then either not signed by that key or not
//! consistent with the saved checkpoint.

use std::fmt;
use std::path::{Path, PathBuf};

use store::{AuditQuery, AuditReader, MAX_AUDIT_PAGE, SqliteAuditReader, StoreError};
use trust::keys::{KeyError, PublicKey};

use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::http::{LeavesPage, RawEntriesPage};
use crate::log::{AuditError, checkpoint_from_row};
use crate::merkle::{Hash, leaf_hash};
use crate::verify::{Finding, LogEvidence, TamperReport, VerifiedLog, verify_log};

/// The most bytes read from one API answer.
const MAX_ANSWER_BYTES: usize = 256 << 20;
/// The most characters of a server-given event id kept for the report.
const MAX_EVENT_ID_CHARS: usize = 64;
/// Entries and leaves asked for per request.
const PAGE: u32 = MAX_AUDIT_PAGE;

/// Where the key and the saved checkpoint come from, beyond the log itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// A PEM public key to check signatures with, instead of the one the server publishes.
    pub key_pem: Option<&'a [u8]>,
    /// A checkpoint saved earlier (the JSON of `GET /api/v1/audit/checkpoint`).
    pub saved_checkpoint: Option<&'a [u8]>,
}

/// Why verification could not be carried out (as opposed to a log that fails it, which is a
/// [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path} does not exist or is not a file: is {dir} a Bonded data directory?")]
    NoDatabase { path: PathBuf, dir: PathBuf },
    #[error("cannot read the audit log from {source_name}: {error}")]
    Store {
        source_name: String,
        #[source]
        error: StoreError,
    },
    #[error("cannot read the key file {path}: {error}")]
    KeyFile {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("the public key from {origin} is not usable: {error}")]
    Key {
        origin: String,
        #[source]
        error: KeyError,
    },
    #[error("the saved checkpoint is not a checkpoint: {0}")]
    SavedCheckpoint(#[source] CheckpointError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("{url}: {error}")]
    Http {
        url: String,
        #[source]
        error: reqwest::Error,
    },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered something unexpected: {reason}")]
    Answer { url: String, reason: String },
}

/// What a verification found.
#[derive(Debug)]
pub struct Report {
    /// The data directory or server checked.
    pub source: String,
    /// The public key's ID, and where it came from.
    pub key_id: String,
    pub key_source: String,
    /// How many entries and recorded leaf hashes were read.
    pub entries: u64,
    pub recorded_leaves: u64,
    /// How many earlier checkpoints were available, and the saved checkpoint's size if one
    /// was given.
    pub earlier_checkpoints: usize,
    pub saved_size: Option<u64>,
    /// The server had no checkpoint, so the log was checked against the saved one alone.
    pub only_saved: bool,
    pub verdict: Verdict,
    /// For findings about stored entries: which stored row each is (its index column and the
    /// event it records).
    pub locations: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug)]
pub enum Verdict {
    /// The log reproduces its latest signed checkpoint and every check held.
    Verified(VerifiedLog),
    /// No entries, no leaves, no checkpoint (and no saved checkpoint to say otherwise).
    Empty,
    /// Entries are stored, but no checkpoint was ever signed over them: nothing vouches for
    /// them (a server that crashed before its first checkpoint, or checkpoints deleted).
    /// `entries` is how many were read (online, at most one page).
    NothingSigned { entries: u64 },
    /// The log differs from what the server signed.
    Tampered(TamperReport),
}

impl Report {
    /// Whether the log passed.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Verified(_) | Verdict::Empty)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "audit log of {}", self.source)?;
        writeln!(
            f,
            "- read {} stored entries and hashed each as stored; read {} leaf hashes recorded \
             at append time",
            self.entries, self.recorded_leaves
        )?;
        writeln!(
            f,
            "- signatures checked with public key {} from {}",
            self.key_id, self.key_source
        )?;
        match &self.verdict {
            Verdict::Verified(log) => self.describe_verified(f, log),
            Verdict::Empty => writeln!(f, "PASSED: the log is empty and nothing was ever signed"),
            Verdict::NothingSigned { entries } => writeln!(
                f,
                "FAILED: entries are stored ({entries} read) but no signed checkpoint covers \
                 them, so nothing vouches for them (the checkpoints were deleted, or the server \
                 stopped before signing its first one)"
            ),
            Verdict::Tampered(report) => self.describe_tampered(f, report),
        }
    }
}

impl Report {
    fn describe_verified(&self, f: &mut fmt::Formatter<'_>, log: &VerifiedLog) -> fmt::Result {
        writeln!(
            f,
            "- the latest checkpoint ({:?}, {} entries, signed at Unix time {}) carries a valid \
             signature by that key",
            log.head.origin, log.head.size, log.signed_at
        )?;
        if self.recorded_leaves > 0 {
            writeln!(
                f,
                "- the recorded leaf hashes reproduce its root, and every stored entry matches \
                 the leaf hash recorded at its index: no entry was changed, removed, inserted \
                 or reordered"
            )?;
        } else {
            writeln!(
                f,
                "- the stored entries reproduce its root: no entry was changed, removed, \
                 inserted or reordered"
            )?;
        }
        writeln!(
            f,
            "- {} of {} earlier checkpoints checked: each is a prefix of the latest tree (the \
             log was only appended to)",
            log.consistent_checkpoints, self.earlier_checkpoints
        )?;
        match self.saved_size {
            Some(size) if self.only_saved => writeln!(
                f,
                "- the server has no checkpoint: the log was checked against the saved \
                 checkpoint of {size} entries alone"
            )?,
            Some(size) => writeln!(
                f,
                "- the saved checkpoint of {size} entries is among them: today's log extends \
                 the one you saved"
            )?,
            None => {}
        }
        if log.unsigned_entries > 0 {
            writeln!(
                f,
                "- {} entries appended after the latest checkpoint are not signed yet",
                log.unsigned_entries
            )?;
        }
        writeln!(f, "PASSED")
    }

    fn describe_tampered(&self, f: &mut fmt::Formatter<'_>, report: &TamperReport) -> fmt::Result {
        writeln!(f, "FAILED: the log is not what the server signed:")?;
        for finding in &report.findings {
            writeln!(f, "- {finding}")?;
        }
        if report.omitted > 0 {
            writeln!(f, "- and {} more findings", report.omitted)?;
        }
        for location in &self.locations {
            writeln!(f, "  {location}")?;
        }
        Ok(())
    }
}

/// The evidence read from a store or a server.
struct Evidence {
    /// Each stored entry's leaf hash, and its stored index and event id.
    entry_hashes: Vec<Hash>,
    entry_origins: Vec<(u64, String)>,
    recorded: Vec<Hash>,
    latest: Option<SignedCheckpoint>,
    earlier: Vec<SignedCheckpoint>,
}

/// Verifies the audit log in the data directory `dir` (offline).
pub async fn verify_data_dir(
    dir: &Path,
    options: &VerifyOptions<'_>,
) -> Result<Report, VerifyError> {
    let path = dir.join("bonded.db");
    if !path.is_file() {
        return Err(VerifyError::NoDatabase {
            path,
            dir: dir.to_owned(),
        });
    }
    let source = dir.display().to_string();
    let store_error = |error| VerifyError::Store {
        source_name: source.clone(),
        error,
    };
    let reader = SqliteAuditReader::open(&path).await.map_err(store_error)?;
    let evidence = read_store(&reader).await.map_err(|e| match e {
        AuditError::Store(error) => store_error(error),
        other => VerifyError::Audit(other),
    })?;
    let (key, key_source) = match options.key_pem {
        Some(pem) => (
            parse_key(pem, "the given key file")?,
            "the given key".to_owned(),
        ),
        None => {
            let key_path = dir.join("trust").join("server.pub");
            let pem = std::fs::read(&key_path).map_err(|error| VerifyError::KeyFile {
                path: key_path.clone(),
                error,
            })?;
            let origin = key_path.display().to_string();
            (
                parse_key(&pem, &origin)?,
                format!(
                    "{origin} (in the data directory itself: pass --key to use one kept \
                     elsewhere)"
                ),
            )
        }
    };
    Ok(judge(
        source,
        key,
        key_source,
        evidence,
        saved_checkpoint(options)?,
    ))
}

fn saved_checkpoint(options: &VerifyOptions<'_>) -> Result<Option<SignedCheckpoint>, VerifyError> {
    options
        .saved_checkpoint
        .map(SignedCheckpoint::from_json)
        .transpose()
        .map_err(VerifyError::SavedCheckpoint)
}

async fn read_store(reader: &dyn AuditReader) -> Result<Evidence, AuditError> {
    let mut evidence = Evidence {
        entry_hashes: Vec::new(),
        entry_origins: Vec::new(),
        recorded: Vec::new(),
        latest: None,
        earlier: Vec::new(),
    };
    let mut start = 0;
    loop {
        let page = reader
            .audit_entries(&AuditQuery::from_index(start, PAGE))
            .await?;
        let Some(last) = page.last().map(|row| row.seq) else {
            break;
        };
        for row in page {
            evidence.entry_hashes.push(leaf_hash(&row.entry));
            evidence
                .entry_origins
                .push((u64::try_from(row.seq).unwrap_or(0), row.event_id));
        }
        start = last.saturating_add(1);
    }
    // Leaves are read in index order; a gap in the recorded indexes is itself tampering,
    // which the signed root exposes, so they are taken as they come.
    let mut start = 0;
    loop {
        let page = reader.audit_leaves(start, i64::MAX, PAGE).await?;
        let Some(last) = page.last().map(|leaf| leaf.seq) else {
            break;
        };
        evidence.recorded.extend(page.iter().map(|leaf| leaf.hash));
        start = last.saturating_add(1);
    }
    let mut start = 0;
    loop {
        let page = reader.audit_checkpoints(start, PAGE).await?;
        let Some(last) = page.last().map(|row| row.size) else {
            break;
        };
        for row in page {
            evidence.earlier.push(checkpoint_from_row(row)?);
        }
        start = last.saturating_add(1);
    }
    evidence.latest = evidence.earlier.pop();
    Ok(evidence)
}

fn parse_key(pem: &[u8], origin: &str) -> Result<PublicKey, VerifyError> {
    PublicKey::from_pem(pem).map_err(|error| VerifyError::Key {
        origin: origin.to_owned(),
        error,
    })
}

/// Runs the verifier over `evidence` and words the outcome.
fn judge(
    source: String,
    key: PublicKey,
    key_source: String,
    mut evidence: Evidence,
    saved: Option<SignedCheckpoint>,
) -> Report {
    let saved_size = saved.as_ref().map(|checkpoint| checkpoint.size);
    let only_saved = evidence.latest.is_none() && saved.is_some();
    // With no checkpoint of its own, the log is checked against the saved one.
    let latest = match (evidence.latest.take(), saved) {
        (Some(latest), Some(saved)) => {
            evidence.earlier.push(saved);
            Some(latest)
        }
        (latest, saved) => latest.or(saved),
    };
    let mut report = Report {
        source,
        key_id: key.key_id(),
        key_source,
        entries: len_u64(&evidence.entry_hashes),
        recorded_leaves: len_u64(&evidence.recorded),
        earlier_checkpoints: evidence.earlier.len(),
        saved_size,
        only_saved,
        verdict: Verdict::Empty,
        locations: Vec::new(),
    };
    let Some(latest) = latest else {
        if !evidence.entry_hashes.is_empty() || !evidence.recorded.is_empty() {
            report.verdict = Verdict::NothingSigned {
                entries: report.entries.max(report.recorded_leaves),
            };
        }
        return report;
    };
    let outcome = verify_log(
        &LogEvidence {
            entry_hashes: &evidence.entry_hashes,
            recorded_leaves: (!evidence.recorded.is_empty()).then_some(&evidence.recorded[..]),
            latest: &latest,
            earlier: &evidence.earlier,
        },
        &key,
    );
    report.verdict = match outcome {
        Ok(log) => Verdict::Verified(log),
        Err(tampered) => {
            report.locations = locate(&tampered, &evidence.entry_origins);
            Verdict::Tampered(tampered)
        }
    };
    report
}

/// For findings about stored entries, which stored row they are (its index column and the
/// event it claims to record), so the operator can find it.
fn locate(report: &TamperReport, origins: &[(u64, String)]) -> Vec<String> {
    let at_position = |position: u64| {
        usize::try_from(position)
            .ok()
            .and_then(|position| origins.get(position))
    };
    let at_index = |index: u64| origins.iter().find(|(seq, _)| *seq == index);
    let describe = |label: String, origin: Option<&(u64, String)>| {
        origin.map(|(seq, event_id)| {
            format!("{label}: the stored row with index {seq} records event {event_id}")
        })
    };
    report
        .findings
        .iter()
        .filter_map(|finding| match finding {
            Finding::EntryChanged { index } => describe(format!("entry {index}"), at_index(*index)),
            Finding::EntryInserted { position } | Finding::EntryMoved { position, .. } => describe(
                format!("the entry stored at position {position}"),
                at_position(*position),
            ),
            _ => None,
        })
        .collect()
}

fn len_u64<T>(items: &[T]) -> u64 {
    u64::try_from(items.len()).unwrap_or(u64::MAX)
}

/// Verifies the audit log of the server at `base_url` (online). `token` is the admin token
/// (entries are admin-only).
pub async fn verify_url(
    base_url: &str,
    token: Option<&str>,
    options: &VerifyOptions<'_>,
) -> Result<Report, VerifyError> {
    let api = Api::new(base_url, token)?;
    let saved = saved_checkpoint(options)?;
    let latest: Option<SignedCheckpoint> = api.checkpoint().await?;
    let mut evidence = Evidence {
        entry_hashes: Vec::new(),
        entry_origins: Vec::new(),
        recorded: Vec::new(),
        latest,
        earlier: Vec::new(),
    };
    // Exactly the entries the checkpoint covers; with no checkpoint at all, one page, to tell
    // an empty log from an unsigned one.
    let covered = evidence.latest.as_ref().or(saved.as_ref()).map(|c| c.size);
    let size = covered.unwrap_or(u64::from(PAGE));
    api.entries(size, &mut evidence).await?;
    api.leaves(size, &mut evidence).await?;
    let (key, key_source) = match options.key_pem {
        Some(pem) => (
            parse_key(pem, "the given key file")?,
            "the given key".to_owned(),
        ),
        None => {
            let wanted = evidence.latest.as_ref().or(saved.as_ref());
            let key = api.server_key(wanted.map(|c| c.key_id.as_str())).await?;
            (
                key,
                format!(
                    "{}/api/v1/authorities/bonded (published by the server being checked: \
                     pass --key to use one kept elsewhere)",
                    api.base
                ),
            )
        }
    };
    Ok(judge(api.base.clone(), key, key_source, evidence, saved))
}

/// The audit API of one server.
struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(base_url: &str, token: Option<&str>) -> Result<Api, VerifyError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|error| VerifyError::Http {
                url: base.clone(),
                error,
            })?;
        Ok(Api {
            client,
            base,
            token: token.map(str::to_owned),
        })
    }

    /// The body of `GET <base><path>` if it answered 200, `None` on 404.
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        let url = format!("{}{path}", self.base);
        let http = |error| VerifyError::Http {
            url: url.clone(),
            error,
        };
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(http)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(VerifyError::Answer {
                    url,
                    reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(VerifyError::Status {
                url,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(512).collect(),
            });
        }
        Ok(Some(body))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, VerifyError> {
        let url = format!("{}{path}", self.base);
        let body = self.get(path).await?.ok_or_else(|| VerifyError::Answer {
            url: url.clone(),
            reason: "404 Not Found".into(),
        })?;
        serde_json::from_slice(&body).map_err(|e| VerifyError::Answer {
            url,
            reason: e.to_string(),
        })
    }

    async fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, VerifyError> {
        let path = "/api/v1/audit/checkpoint";
        match self.get(path).await? {
            None => Ok(None),
            Some(body) => {
                SignedCheckpoint::from_json(&body)
                    .map(Some)
                    .map_err(|e| VerifyError::Answer {
                        url: format!("{}{path}", self.base),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Downloads the entries `0..size`, hashing each.
    async fn entries(&self, size: u64, evidence: &mut Evidence) -> Result<(), VerifyError> {
        let mut start = Some(0);
        while let Some(from) = start.filter(|&from| from < size) {
            let page: RawEntriesPage = self
                .get_json(&format!(
                    "/api/v1/audit/entries?start={from}&end={size}&limit={PAGE}"
                ))
                .await?;
            for entry in page.entries {
                evidence.entry_hashes.push(leaf_hash(&entry.canonical));
                let event_id = entry.event_id.chars().take(MAX_EVENT_ID_CHARS).collect();
                evidence.entry_origins.push((entry.index, event_id));
            }
            start = self.advance(from, page.next_start)?;
        }
        Ok(())
    }

    /// Downloads the recorded leaf hashes `0..size`.
    async fn leaves(&self, size: u64, evidence: &mut Evidence) -> Result<(), VerifyError> {
        let mut start = Some(0);
        while let Some(from) = start.filter(|&from| from < size) {
            let page: LeavesPage = self
                .get_json(&format!(
                    "/api/v1/audit/leaves?start={from}&end={size}&limit={PAGE}"
                ))
                .await?;
            evidence
                .recorded
                .extend(page.leaves.iter().map(|leaf| leaf.hash));
            start = self.advance(from, page.next_start)?;
        }
        Ok(())
    }

    /// The next page's start, which must move forward (a server cannot keep us looping).
    fn advance(&self, from: u64, next: Option<u64>) -> Result<Option<u64>, VerifyError> {
        match next {
            Some(next) if next <= from => Err(VerifyError::Answer {
                url: self.base.clone(),
                reason: format!("a page starting at {from} points back to {next}"),
            }),
            next => Ok(next),
        }
    }

    /// The server's public key (authority `bonded`), the one with `key_id` if it has several.
    async fn server_key(&self, key_id: Option<&str>) -> Result<PublicKey, VerifyError> {
        #[derive(serde::Deserialize)]
        struct Authority {
            keys: Vec<String>,
        }
        let path = "/api/v1/authorities/bonded";
        let origin = format!("{}{path}", self.base);
        let authority: Authority = self.get_json(path).await?;
        let keys = authority
            .keys
            .iter()
            .map(|pem| parse_key(pem.as_bytes(), &origin))
            .collect::<Result<Vec<_>, _>>()?;
        let chosen = keys
            .iter()
            .find(|key| Some(key.key_id().as_str()) == key_id)
            .or(keys.first())
            .cloned();
        chosen.ok_or_else(|| VerifyError::Answer {
            url: origin,
            reason: "the authority has no key".into(),
        })
    }
}
