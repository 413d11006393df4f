//! Downloading the vulnerability-data sources for `bonded db update`: osv.dev's per-ecosystem
//! exports, the Debian security tracker's JSON and Alpine's secdb.
//!
//! Guarantees:
//! - A file in place is always complete and verified. Each download goes to
//!   `<name>.partial`; only after its checks pass is it renamed over `<name>` (a rename within
//!   one directory is atomic on POSIX file systems). Any failure leaves the previous `<name>`
//!   untouched.
//! - Interrupted downloads resume. The validator of the response (a strong `ETag`, else
//!   `Last-Modified`) is kept beside the partial file in `<name>.partial.json`; the next
//!   attempt asks for the rest with `Range: bytes=N-` and `If-Range: <validator>` (RFC 9110
//!   section 13.1.5, "If-Range"; a weak ETag "MUST NOT" be sent there, so it is not used). A
//!   `200` instead of `206` (the server ignores ranges, or the file changed and the server
//!   honours `If-Range`) restarts the file from its first byte; so does a `206` whose
//!   `Content-Range` does not start at `N` or whose validator differs from the stored one, and
//!   a `416`. Transfer errors, `5xx`, `408` and `429` are retried [`MAX_ATTEMPTS`] times in one
//!   call, each retry resuming where the last one stopped.
//! - What is checked before a file is put in place: its length against `Content-Length` (or
//!   the total of `Content-Range`); the MD5 that Google Cloud Storage (osv.dev's bucket) sends
//!   in `x-goog-hash: crc32c=…, md5=…`, when it sends one (composite objects have only the
//!   CRC32C, which is not checked: MD5 costs one more pass over data already being hashed
//!   with SHA-256, CRC32C would need another crate for no extra assurance), and not when
//!   `x-goog-stored-content-encoding` says GCS decompressed the object on the fly (the hash
//!   is then of the stored bytes); then by format, from the file name: a `.zip` must have a
//!   readable central directory and every entry must decompress with the CRC-32 its header
//!   records; a `.json` must parse completely (`serde_json` into `IgnoredAny`, without
//!   building the document). Other names get the length and MD5 checks only.
//! - Bounded work: the zip check refuses more than [`MAX_ZIP_ENTRIES`] entries, an entry
//!   declaring more than [`MAX_ZIP_ENTRY_BYTES`] or a total over [`MAX_ZIP_TOTAL_BYTES`]
//!   (the zip crate also stops an entry that inflates past its declared size); connecting is
//!   limited to 30 s and every read to [`IDLE_TIMEOUT`] (reqwest's blocking `timeout` applies
//!   per read, so a slow but moving download is never cut off).
//!
//! Files are downloaded one after the other; the first file that fails ends the run with its
//! error (files completed before it stay in place, each one whole).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, IF_RANGE, LAST_MODIFIED, RANGE};
use serde::{Deserialize, Serialize};

/// Connecting (TCP and TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for response headers, and for each read of a body, may take this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per file (the first try and its retries).
pub const MAX_ATTEMPTS: u32 = 4;
/// Limits of the zip check.
pub const MAX_ZIP_ENTRIES: usize = 4_000_000;
pub const MAX_ZIP_ENTRY_BYTES: u64 = 256 << 20;
pub const MAX_ZIP_TOTAL_BYTES: u64 = 32 << 30;

/// The osv.dev ecosystems downloaded by default: those the scanner detects packages of and
/// the importer reads. Debian's OSV export is left out: the security tracker's JSON is the
/// source it is generated from and carries more (end-of-life, postponed, ignored); Alpine's
/// comes from secdb for the same reason. Ubuntu has no other source here.
pub const OSV_ECOSYSTEMS: [&str; 8] = [
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "Maven",
    "RubyGems",
    "Packagist",
    "Ubuntu",
];

/// Alpine release branches fetched by default: the supported ones as of November 2026
/// (v3.22 to v3.24, per alpinelinux.org/releases) and the three before them, whose images
/// are still common and whose secdb files are small.
pub const ALPINE_BRANCHES: [&str; 6] = ["v3.19", "v3.20", "v3.21", "v3.22", "v3.23", "v3.24"];

/// The environment variables [`DefaultBases::from_env`] reads.
pub const MIRROR_ENV: &str = "BONDED_DB_MIRROR";
pub const OSV_ENV: &str = "BONDED_DB_OSV_URL";
pub const DEBIAN_TRACKER_ENV: &str = "BONDED_DB_DEBIAN_TRACKER_URL";
pub const ALPINE_SECDB_ENV: &str = "BONDED_DB_ALPINE_SECDB_URL";

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    /// The name in the target directory: one path component; the extension (`.zip`,
    /// `.json`) decides the format check.
    pub file_name: String,
}

/// Where the default sources live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBases {
    /// osv.dev's export bucket; files are `<osv>/<Ecosystem>/all.zip`.
    pub osv: String,
    /// The full URL of the Debian tracker's JSON.
    pub debian_tracker: String,
    /// Alpine's secdb; files are `<alpine_secdb>/<branch>/{main,community}.json`.
    pub alpine_secdb: String,
    pub alpine_branches: Vec<String>,
}

impl Default for DefaultBases {
    /// The public sources.
    fn default() -> DefaultBases {
        DefaultBases {
            osv: "https://osv-vulnerabilities.storage.googleapis.com".to_owned(),
            debian_tracker: "https://security-tracker.debian.org/tracker/data/json".to_owned(),
            alpine_secdb: "https://secdb.alpinelinux.org".to_owned(),
            alpine_branches: ALPINE_BRANCHES.map(str::to_owned).to_vec(),
        }
    }
}

impl DefaultBases {
    /// Everything from one mirror that copies the public layout under three prefixes:
    /// `<base>/osv/<Ecosystem>/all.zip`, `<base>/debian/json` and
    /// `<base>/alpine/<branch>/<repo>.json`.
    pub fn mirror(base: &str) -> DefaultBases {
        let base = base.trim_end_matches('/');
        DefaultBases {
            osv: format!("{base}/osv"),
            debian_tracker: format!("{base}/debian/json"),
            alpine_secdb: format!("{base}/alpine"),
            ..DefaultBases::default()
        }
    }

    /// The public sources, or [`MIRROR_ENV`]'s mirror, with each source overridden by its
    /// own variable ([`OSV_ENV`], [`DEBIAN_TRACKER_ENV`], [`ALPINE_SECDB_ENV`]) when set.
    pub fn from_env() -> DefaultBases {
        DefaultBases::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`DefaultBases::from_env`] with another source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> DefaultBases {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut bases = match set(MIRROR_ENV) {
            Some(mirror) => DefaultBases::mirror(&mirror),
            None => DefaultBases::default(),
        };
        if let Some(osv) = set(OSV_ENV) {
            bases.osv = osv;
        }
        if let Some(tracker) = set(DEBIAN_TRACKER_ENV) {
            bases.debian_tracker = tracker;
        }
        if let Some(secdb) = set(ALPINE_SECDB_ENV) {
            bases.alpine_secdb = secdb;
        }
        bases
    }
}

/// The files `bonded db update` fetches: one osv.dev zip per [`OSV_ECOSYSTEMS`] entry, the
/// Debian tracker JSON, and Alpine's `main` and `community` secdb per branch.
pub fn default_sources(base: &DefaultBases) -> Vec<Download> {
    let osv = base.osv.trim_end_matches('/');
    let secdb = base.alpine_secdb.trim_end_matches('/');
    let mut downloads: Vec<Download> = OSV_ECOSYSTEMS
        .iter()
        .map(|ecosystem| Download {
            url: format!("{osv}/{}/all.zip", path_segment(ecosystem)),
            file_name: format!("osv-{ecosystem}.zip"),
        })
        .collect();
    downloads.push(Download {
        url: base.debian_tracker.clone(),
        file_name: "debian-tracker.json".to_owned(),
    });
    for branch in &base.alpine_branches {
        for repo in ["main", "community"] {
            downloads.push(Download {
                url: format!("{secdb}/{}/{repo}.json", path_segment(branch)),
                file_name: format!("alpine-{branch}-{repo}.json"),
            });
        }
    }
    downloads
}

/// Percent-encodes everything but RFC 3986 unreserved characters (osv.dev has ecosystems
/// such as `Red Hat` and `Rocky Linux`).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A file in place, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    pub file_name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What the CLI shows while downloading (one progress bar per file).
pub trait UpdateProgress {
    /// A transfer of `file_name` begins: `done` bytes are already on disk (a resumed
    /// download; `0` after a restart), `total` is the file's size if the server said it.
    fn started(&self, file_name: &str, done: u64, total: Option<u64>);
    /// `done` bytes of the file are on disk.
    fn advanced(&self, file_name: &str, done: u64);
    /// The file is complete and being verified.
    fn verifying(&self, file_name: &str);
    /// The file is verified and in place.
    fn finished(&self, file: &DownloadedFile);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl UpdateProgress for NoProgress {
    fn started(&self, _: &str, _: u64, _: Option<u64>) {}
    fn advanced(&self, _: &str, _: u64) {}
    fn verifying(&self, _: &str) {}
    fn finished(&self, _: &DownloadedFile) {}
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{file_name:?} is not a plain file name")]
    BadFileName { file_name: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot set up the HTTP client: {reason}")]
    Client { reason: String },
    #[error("GET {url}: {reason}")]
    Transfer { url: String, reason: String },
    #[error("GET {url}: {status}")]
    Status { url: String, status: StatusCode },
    #[error("GET {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{file_name} from {url} is corrupt: {reason}")]
    Corrupt {
        file_name: String,
        url: String,
        reason: String,
    },
}

impl UpdateError {
    /// Would trying again (and resuming) help?
    fn is_transient(&self) -> bool {
        match self {
            UpdateError::Transfer { .. } => true,
            UpdateError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// Downloads every file into `dir` (created if missing), in order; see the module header for
/// what is checked. Returns each file's path and SHA-256.
pub fn download_all(
    downloads: &[Download],
    dir: &Path,
    progress: &dyn UpdateProgress,
) -> Result<Vec<DownloadedFile>, UpdateError> {
    let client = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(IDLE_TIMEOUT)
        .user_agent(concat!("bonded-scan/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UpdateError::Client {
            reason: crate::remote::error_chain(&e),
        })?;
    fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    downloads
        .iter()
        .map(|download| {
            let file = download_one(&client, download, dir, progress)?;
            progress.finished(&file);
            Ok(file)
        })
        .collect()
}

/// The three paths of one download.
struct Paths {
    target: PathBuf,
    partial: PathBuf,
    meta: PathBuf,
}

fn download_one(
    client: &Client,
    download: &Download,
    dir: &Path,
    progress: &dyn UpdateProgress,
) -> Result<DownloadedFile, UpdateError> {
    let name = &download.file_name;
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(UpdateError::BadFileName {
            file_name: name.clone(),
        });
    }
    let paths = Paths {
        target: dir.join(name),
        partial: dir.join(format!("{name}.partial")),
        meta: dir.join(format!("{name}.partial.json")),
    };
    let mut attempt = 1;
    let meta = loop {
        match transfer(client, download, &paths, progress) {
            Ok(meta) => break meta,
            Err(error) if error.is_transient() && attempt < MAX_ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(500) * attempt);
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    };
    progress.verifying(name);
    let checked = verify(&paths.partial, download, &meta);
    let (size, sha256) = match checked {
        Ok(summary) => summary,
        Err(error) => {
            // A corrupt partial file would only be resumed into another corrupt file.
            remove_if_present(&paths.partial)?;
            remove_if_present(&paths.meta)?;
            return Err(error);
        }
    };
    fs::rename(&paths.partial, &paths.target).map_err(|source| io_error(&paths.target, source))?;
    remove_if_present(&paths.meta)?;
    Ok(DownloadedFile {
        file_name: name.clone(),
        path: paths.target,
        size,
        sha256,
    })
}

/// What is known about the file being downloaded, kept beside the partial file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct PartialMeta {
    url: String,
    /// A strong ETag, or the Last-Modified date: what `If-Range` sends.
    validator: Option<String>,
    /// The file's full length, when the server said it.
    total: Option<u64>,
    /// Base64 MD5 of the whole file (GCS `x-goog-hash`).
    md5: Option<String>,
}

impl PartialMeta {
    fn from_response(url: &str, response: &Response, total: Option<u64>) -> PartialMeta {
        PartialMeta {
            url: url.to_owned(),
            validator: validator(response.headers()),
            total,
            md5: goog_md5(response.headers()),
        }
    }

    /// The stored metadata if it describes a download of `url` that can be resumed.
    fn load(path: &Path, url: &str) -> Option<PartialMeta> {
        let bytes = fs::read(path).ok()?;
        let meta: PartialMeta = serde_json::from_slice(&bytes).ok()?;
        (meta.url == url && meta.validator.is_some()).then_some(meta)
    }

    fn save(&self, path: &Path) -> Result<(), UpdateError> {
        let bytes = serde_json::to_vec(self).map_err(|e| io_error(path, io::Error::other(e)))?;
        fs::write(path, bytes).map_err(|source| io_error(path, source))
    }
}

/// One request: resume the partial file if possible, else (re)start it. Returns the
/// metadata of the complete partial file.
fn transfer(
    client: &Client,
    download: &Download,
    paths: &Paths,
    progress: &dyn UpdateProgress,
) -> Result<PartialMeta, UpdateError> {
    let url = download.url.as_str();
    let on_disk = fs::metadata(&paths.partial).map(|m| m.len()).unwrap_or(0);
    let resumable = PartialMeta::load(&paths.meta, url).filter(|_| on_disk > 0);
    let mut request = client.get(url);
    if let Some(meta) = &resumable {
        request = request
            .header(RANGE, format!("bytes={on_disk}-"))
            .header(IF_RANGE, meta.validator.clone().unwrap_or_default());
    }
    let response = request.send().map_err(|e| transfer_error(url, e))?;
    let status = response.status();
    match (status, resumable) {
        (StatusCode::PARTIAL_CONTENT, Some(meta)) => {
            let range = content_range(response.headers());
            let same_file = validator(response.headers()).is_none_or(|v| Some(v) == meta.validator);
            match range {
                Some((start, total))
                    if start == on_disk
                        && same_file
                        && (meta.total.is_none() || total == meta.total) =>
                {
                    let meta = PartialMeta {
                        total: total.or(meta.total),
                        ..meta
                    };
                    write_body(response, download, paths, on_disk, &meta, progress)?;
                    Ok(meta)
                }
                // Another part, another file or a garbled Content-Range: start over.
                _ => {
                    drop(response);
                    restart(client, download, paths, progress)
                }
            }
        }
        (StatusCode::OK, _) => start_fresh(response, download, paths, progress),
        (StatusCode::RANGE_NOT_SATISFIABLE, Some(_)) => {
            drop(response);
            restart(client, download, paths, progress)
        }
        _ if status.is_success() => Err(UpdateError::Protocol {
            url: url.to_owned(),
            reason: format!("unexpected {status}"),
        }),
        _ => Err(UpdateError::Status {
            url: url.to_owned(),
            status,
        }),
    }
}

/// Forgets the partial file and fetches the whole file.
fn restart(
    client: &Client,
    download: &Download,
    paths: &Paths,
    progress: &dyn UpdateProgress,
) -> Result<PartialMeta, UpdateError> {
    remove_if_present(&paths.meta)?;
    remove_if_present(&paths.partial)?;
    let url = download.url.as_str();
    let response = client.get(url).send().map_err(|e| transfer_error(url, e))?;
    match response.status() {
        StatusCode::OK => start_fresh(response, download, paths, progress),
        status => Err(UpdateError::Status {
            url: url.to_owned(),
            status,
        }),
    }
}

/// Writes a `200` body from the first byte.
fn start_fresh(
    response: Response,
    download: &Download,
    paths: &Paths,
    progress: &dyn UpdateProgress,
) -> Result<PartialMeta, UpdateError> {
    let meta = PartialMeta::from_response(&download.url, &response, response.content_length());
    // The metadata goes first, so that a failure in the body can be resumed.
    meta.save(&paths.meta)?;
    write_body(response, download, paths, 0, &meta, progress)?;
    Ok(meta)
}

/// Appends the body to the partial file (truncating it first when `from` is 0).
fn write_body(
    mut response: Response,
    download: &Download,
    paths: &Paths,
    from: u64,
    meta: &PartialMeta,
    progress: &dyn UpdateProgress,
) -> Result<(), UpdateError> {
    let name = &download.file_name;
    let path = &paths.partial;
    let mut file = if from == 0 {
        File::create(path)
    } else {
        OpenOptions::new().append(true).open(path)
    }
    .map_err(|source| io_error(path, source))?;
    progress.started(name, from, meta.total);
    let mut done = from;
    let mut buffer = vec![0; 64 << 10];
    loop {
        let n = match response.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Keep what arrived: the next attempt resumes after it.
                file.sync_data().map_err(|source| io_error(path, source))?;
                return Err(UpdateError::Transfer {
                    url: download.url.clone(),
                    reason: format!("after {done} bytes: {}", crate::remote::error_chain(&e)),
                });
            }
        };
        let chunk = buffer.get(..n).unwrap_or_default();
        file.write_all(chunk)
            .map_err(|source| io_error(path, source))?;
        done += n as u64;
        progress.advanced(name, done);
    }
    file.sync_all().map_err(|source| io_error(path, source))?;
    match meta.total {
        Some(total) if done < total => Err(UpdateError::Transfer {
            url: download.url.clone(),
            reason: format!("the connection ended after {done} of {total} bytes"),
        }),
        _ => Ok(()),
    }
}

/// Checks the complete partial file; returns its size and SHA-256.
fn verify(
    path: &Path,
    download: &Download,
    meta: &PartialMeta,
) -> Result<(u64, String), UpdateError> {
    let corrupt = |reason: String| UpdateError::Corrupt {
        file_name: download.file_name.clone(),
        url: download.url.clone(),
        reason,
    };
    let (size, sha256, md5) = hash_file(path)?;
    if let Some(total) = meta.total
        && size != total
    {
        return Err(corrupt(format!(
            "{size} bytes, the server announced {total}"
        )));
    }
    if let Some(expected) = &meta.md5
        && expected != &md5
    {
        return Err(corrupt(format!(
            "MD5 is {md5}, the server announced {expected}"
        )));
    }
    let name = download.file_name.to_ascii_lowercase();
    if name.ends_with(".zip") {
        verify_zip(path).map_err(corrupt)?;
    } else if name.ends_with(".json") {
        verify_json(path).map_err(corrupt)?;
    }
    Ok((size, sha256))
}

/// Size, hex SHA-256 and base64 MD5 of a file, in one pass.
fn hash_file(path: &Path) -> Result<(u64, String, String), UpdateError> {
    let mut file = File::open(path).map_err(|source| io_error(path, source))?;
    let mut sha256 = oci::Hasher::new(oci::Algorithm::Sha256);
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut buffer = vec![0; 256 << 10];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|source| io_error(path, source))?;
        if n == 0 {
            break;
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        sha256.update(chunk);
        md5.update(chunk);
        size += n as u64;
    }
    Ok((
        size,
        sha256.finish().hex().to_owned(),
        base64::engine::general_purpose::STANDARD.encode(md5.finalize()),
    ))
}

/// Reads the central directory and every entry through, which checks each CRC-32.
fn verify_zip(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(format!(
            "{} entries, more than the limit of {MAX_ZIP_ENTRIES}",
            archive.len()
        ));
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("entry #{index}: {e}"))?;
        let name = entry
            .name()
            .map(|n| n.chars().take(200).collect::<String>())
            .unwrap_or_else(|_| format!("#{index}"));
        let declared = entry.size();
        total = total.saturating_add(declared);
        if declared > MAX_ZIP_ENTRY_BYTES {
            return Err(format!(
                "entry {name} declares {declared} bytes, more than the limit of {MAX_ZIP_ENTRY_BYTES}"
            ));
        }
        if total > MAX_ZIP_TOTAL_BYTES {
            return Err(format!(
                "the entries declare more than the limit of {MAX_ZIP_TOTAL_BYTES} bytes"
            ));
        }
        io::copy(&mut entry, &mut io::sink()).map_err(|e| format!("entry {name}: {e}"))?;
    }
    Ok(())
}

/// Parses the whole document without keeping it.
fn verify_json(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    serde_json::from_reader::<_, serde::de::IgnoredAny>(BufReader::new(file))
        .map(drop)
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// A strong ETag, else Last-Modified (RFC 9110 section 13.1.5: a weak entity tag cannot be an
/// `If-Range` validator).
fn validator(headers: &HeaderMap) -> Option<String> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    text(ETAG)
        .filter(|etag| !etag.starts_with("W/"))
        .or_else(|| text(LAST_MODIFIED))
}

/// `Content-Range: bytes <first>-<last>/<total or *>` (RFC 9110 section 14.4): the first
/// byte and the total, if known.
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse::<u64>().ok()?),
    };
    let consistent = first <= last && total.is_none_or(|t| last < t);
    consistent.then_some((first, total))
}

/// The `md5=` of Google Cloud Storage's `x-goog-hash`, unless GCS transcodes the object.
fn goog_md5(headers: &HeaderMap) -> Option<String> {
    let transcoded = headers
        .get("x-goog-stored-content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    if transcoded {
        return None;
    }
    headers
        .get_all("x-goog-hash")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().strip_prefix("md5="))
        .find(|md5| {
            base64::engine::general_purpose::STANDARD
                .decode(md5)
                .is_ok_and(|bytes| bytes.len() == 16)
        })
        .map(str::to_owned)
}

fn transfer_error(url: &str, error: reqwest::Error) -> UpdateError {
    UpdateError::Transfer {
        url: url.to_owned(),
        reason: crate::remote::error_chain(&error.without_url()),
    }
}

fn remove_if_present(path: &Path) -> Result<(), UpdateError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(path, e)),
        _ => Ok(()),
    }
}

fn io_error(path: &Path, source: io::Error) -> UpdateError {
    UpdateError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn public_sources() {
        let sources = default_sources(&DefaultBases::default());
        let urls: Vec<&str> = sources.iter().map(|d| d.url.as_str()).collect();
        assert!(urls.contains(&"https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"));
        assert!(
            urls.contains(&"https://osv-vulnerabilities.storage.googleapis.com/crates.io/all.zip")
        );
        assert!(urls.contains(&"https://security-tracker.debian.org/tracker/data/json"));
        assert!(urls.contains(&"https://secdb.alpinelinux.org/v3.22/community.json"));
        assert_eq!(
            sources.len(),
            OSV_ECOSYSTEMS.len() + 1 + 2 * ALPINE_BRANCHES.len()
        );
        let mut names: Vec<&str> = sources.iter().map(|d| d.file_name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), sources.len(), "file names must be unique");
    }

    #[test]
    fn overrides() {
        let mirrored = DefaultBases::from_lookup(|name| match name {
            MIRROR_ENV => Some("http://127.0.0.1:9/m/".to_owned()),
            DEBIAN_TRACKER_ENV => Some("http://elsewhere/tracker.json".to_owned()),
            _ => None,
        });
        let sources = default_sources(&mirrored);
        assert_eq!(sources[0].url, "http://127.0.0.1:9/m/osv/PyPI/all.zip");
        assert!(
            sources
                .iter()
                .any(|d| d.url == "http://elsewhere/tracker.json")
        );
        assert!(
            sources
                .iter()
                .any(|d| d.url == "http://127.0.0.1:9/m/alpine/v3.22/main.json")
        );
        assert_eq!(DefaultBases::from_lookup(|_| None), DefaultBases::default());
        assert_eq!(path_segment("Red Hat"), "Red%20Hat");
    }

    #[test]
    fn validators() {
        assert_eq!(
            validator(&headers(&[("etag", "\"abc\"")])).as_deref(),
            Some("\"abc\"")
        );
        let weak = headers(&[
            ("etag", "W/\"abc\""),
            ("last-modified", "Tue, 01 Sep 2026 10:00:00 GMT"),
        ]);
        assert_eq!(
            validator(&weak).as_deref(),
            Some("Tue, 01 Sep 2026 10:00:00 GMT")
        );
        assert_eq!(validator(&headers(&[("etag", "W/\"abc\"")])), None);
    }

    #[test]
    fn content_ranges() {
        let range = |v| content_range(&headers(&[("content-range", v)]));
        assert_eq!(range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(range("bytes 100-199/150"), None);
        assert_eq!(range("bytes 5-4/10"), None);
        assert_eq!(range("items 0-1/2"), None);
    }

    #[test]
    fn goog_hashes() {
        let md5 = "Ojk9c3dhfxgoKVVHYwFbHQ==";
        let one = headers(&[("x-goog-hash", &format!("crc32c=n03x6A==,md5={md5}"))]);
        assert_eq!(goog_md5(&one).as_deref(), Some(md5));
        let two = headers(&[
            ("x-goog-hash", "crc32c=n03x6A=="),
            ("x-goog-hash", &format!("md5={md5}")),
        ]);
        assert_eq!(goog_md5(&two).as_deref(), Some(md5));
        let transcoded = headers(&[
            ("x-goog-hash", &format!("md5={md5}")),
            ("x-goog-stored-content-encoding", "gzip"),
        ]);
        assert_eq!(goog_md5(&transcoded), None);
        assert_eq!(
            goog_md5(&headers(&[("x-goog-hash", "md5=notbase64!")])),
            None
        );
    }

    proptest! {
        #[test]
        fn header_parsers_never_panic(value in "[ -~]{0,80}") {
            let map = headers(&[("content-range", &value), ("x-goog-hash", &value), ("etag", &value)]);
            let _ = content_range(&map);
            let _ = goog_md5(&map);
            let _ = validator(&map);
            let _ = path_segment(&value);
        }

        #[test]
        fn format_checks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("input");
            std::fs::write(&path, &bytes).unwrap();
            let _ = verify_zip(&path);
            let _ = verify_json(&path);
            let _ = hash_file(&path);
        }
    }
}
