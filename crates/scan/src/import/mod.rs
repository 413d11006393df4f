//! Advisory importers: turn the published vulnerability feeds into [`Advisory`] and
//! [`VexStatement`] records for the vulnerability DB builder.
//!
//! Each feed has its own module: [`osv`] (OSV schema 1.7 records, single, in a directory tree
//! or in an osv.dev `all.zip`), [`debian`] (the security tracker's JSON export and the DSA/DLA
//! lists), [`alpine`] (secdb, YAML or JSON) and [`openvex`] (OpenVEX documents). This module
//! recognizes which one a path holds ([`detect`]) and drives the right importer ([`import`]).
//!
//! Guarantees, whatever the input:
//! - No panic, and memory bounded by the input: a zip entry or OSV file (alone or in a
//!   directory) may not exceed [`MAX_RECORD_BYTES`], a secdb or OpenVEX document may not
//!   exceed [`MAX_DOCUMENT_BYTES`], a DSA/DLA list line may not exceed [`MAX_LINE_BYTES`].
//!   The Debian tracker JSON is parsed as a stream, one source package at a time; its output
//!   has to be grouped by CVE, so what it keeps grows with the input, never beyond it.
//! - Records are handed to the sink one at a time; nothing holds a whole zip's records.
//! - A malformed *record* inside a collection (a zip entry, a file in a directory, a CVE of
//!   the tracker, a DSA block, a VEX statement) is skipped with its reason in
//!   [`ImportStats::skipped`] and the import goes on. A malformed *file* is an
//!   [`ImportError`] naming the file and, where the parser knows it, the line and column.

pub mod alpine;
pub mod debian;
pub mod openvex;
pub mod osv;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::advisory::{Advisory, VexStatement};

/// The largest zip entry or single OSV file read into memory (16 MiB). The largest real OSV
/// record (a Linux kernel or Ubuntu record with hundreds of packages) is well under 1 MiB.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// The largest whole document read into memory: one secdb file or OpenVEX document (64 MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;
/// The longest line accepted in a DSA/DLA list (64 KiB; real lines are under 2 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The longest summary taken from a description.
const MAX_SUMMARY_CHARS: usize = 300;
/// How many leading bytes [`detect`] reads to recognize a format.
const DETECT_PREFIX_BYTES: u64 = 64 * 1024;

/// The input formats the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// An osv.dev bulk export: a zip of `<ID>.json` records.
    OsvZip,
    /// One OSV record in a JSON file.
    OsvJson,
    /// A directory tree of OSV `*.json` records (a GHSA or vulndb checkout).
    OsvDirectory,
    /// The Debian security tracker's JSON export (`/tracker/data/json`).
    DebianTrackerJson,
    /// The security tracker's `data/DSA/list` or `data/DLA/list`.
    DebianAdvisoryList,
    /// An Alpine secdb file, JSON or YAML.
    AlpineSecdb,
    /// An OpenVEX document.
    OpenVex,
}

/// One imported record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Advisory(Advisory),
    Vex(VexStatement),
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportStats {
    /// Records handed to the sink.
    pub records: usize,
    /// Records or parts of records left out, as (id or location, reason).
    pub skipped: Vec<(String, String)>,
    /// OSV `affected` entries left out because the scanner cannot detect their ecosystem,
    /// counted per OSV ecosystem name (`(none)` when the entry names no package).
    pub unsupported_ecosystems: BTreeMap<String, usize>,
}

impl ImportStats {
    fn skip(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push((what.into(), reason.into()));
    }
}

/// Why an import failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a recognized advisory format: {reason}")]
    UnknownFormat { path: PathBuf, reason: String },
    #[error("{path}: line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: line {line}, column {column}: {message}")]
    Yaml {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: invalid zip archive: {message}")]
    Zip { path: PathBuf, message: String },
    #[error("{path}: entry {entry} is larger than the {limit}-byte limit")]
    EntryTooLarge {
        path: PathBuf,
        entry: String,
        limit: u64,
    },
    #[error("{path}: larger than the {limit}-byte limit")]
    FileTooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: line {line} is longer than the {limit}-byte limit")]
    LineTooLong {
        path: PathBuf,
        line: usize,
        limit: usize,
    },
    /// Well-formed JSON or YAML that is not what the format requires.
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// The sink refused a record; the import stops there.
    #[error("the record sink failed: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where imported records go. Returning an error stops the import.
pub type Sink<'a> = dyn FnMut(Record) -> Result<(), ImportError> + 'a;

/// Recognizes the format of `path` by its content: a directory is an OSV directory; a zip
/// signature is an OSV zip; JSON is classified by its keys; text by its first lines.
pub fn detect(path: &Path) -> Result<InputFormat, ImportError> {
    let metadata = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if metadata.is_dir() {
        return Ok(InputFormat::OsvDirectory);
    }
    let mut prefix = Vec::new();
    File::open(path)
        .and_then(|f| f.take(DETECT_PREFIX_BYTES).read_to_end(&mut prefix))
        .map_err(|e| io_error(path, e))?;
    detect_bytes(&prefix).ok_or_else(|| ImportError::UnknownFormat {
        path: path.to_owned(),
        reason: "neither a zip, an OSV record, tracker JSON, a DSA/DLA list, a secdb nor an \
                 OpenVEX document"
            .to_owned(),
    })
}

/// Classifies the first bytes of a file (see [`detect`]).
fn detect_bytes(prefix: &[u8]) -> Option<InputFormat> {
    // PKWARE APPNOTE 4.3.7 / 4.3.16: a local file header or, for an empty archive, the end of
    // central directory record.
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Some(InputFormat::OsvZip);
    }
    let text = strip_bom(prefix);
    let first = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if text.get(first) == Some(&b'{') {
        return classify_json(&peek_json_keys(text));
    }
    let text = String::from_utf8_lossy(text);
    let first_line = text.lines().find(|l| !l.trim().is_empty())?;
    if debian::is_advisory_list_header(first_line) {
        return Some(InputFormat::DebianAdvisoryList);
    }
    if alpine::looks_like_yaml_secdb(&text) {
        return Some(InputFormat::AlpineSecdb);
    }
    None
}

/// Decides the JSON format from the keys seen at the first three levels. Only a prefix is
/// read, so a key after a large value may be missing: each format is also recognized from
/// its first key and the keys inside that key's value.
fn classify_json(keys: &[Vec<String>; 3]) -> Option<InputFormat> {
    let top = |k: &str| keys[0].iter().any(|key| key == k);
    let first_is = |k: &str| keys[0].first().is_some_and(|key| key == k);
    let second = |k: &str| keys[1].iter().any(|key| key == k);
    if top("statements") && (top("@context") || (first_is("statements") && second("status"))) {
        return Some(InputFormat::OpenVex);
    }
    let secdb_header = top("packages") && (top("reponame") || top("archs"));
    if top("distroversion") || secdb_header || (first_is("packages") && second("pkg")) {
        return Some(InputFormat::AlpineSecdb);
    }
    let osv_fields = [
        "affected",
        "modified",
        "published",
        "schema_version",
        "aliases",
    ];
    if top("id") && osv_fields.iter().any(|f| top(f)) {
        return Some(InputFormat::OsvJson);
    }
    if first_is("affected") && (second("package") || second("ranges")) {
        return Some(InputFormat::OsvJson);
    }
    // `{source package: {CVE: {releases: …}}}`: the third level of the first entry.
    if keys[2].iter().any(|k| k == "releases") {
        return Some(InputFormat::DebianTrackerJson);
    }
    None
}

/// Collects object keys of a JSON prefix: every key of the top object, the keys of its first
/// value, and the keys of that value's first value; below the top, a list stands for its
/// first element (`"packages": [{"pkg": …}]` gives `pkg`). Parsing stops at the first error
/// (the prefix is usually cut mid-document); the keys seen until then are kept.
fn peek_json_keys(text: &[u8]) -> [Vec<String>; 3] {
    let mut keys: [Vec<String>; 3] = Default::default();
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let _ = serde::de::DeserializeSeed::deserialize(
        KeyPeek {
            depth: 0,
            keys: &mut keys,
        },
        &mut deserializer,
    );
    keys
}

struct KeyPeek<'a> {
    depth: usize,
    keys: &'a mut [Vec<String>; 3],
}

impl<'de> serde::de::DeserializeSeed<'de> for KeyPeek<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyPeek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if let Some(level) = self.keys.get_mut(self.depth) {
                level.push(key);
            }
            if first && self.depth + 1 < self.keys.len() {
                map.next_value_seed(KeyPeek {
                    depth: self.depth + 1,
                    keys: &mut *self.keys,
                })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            first = false;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > 0 {
            seq.next_element_seed(KeyPeek {
                depth: self.depth,
                keys: &mut *self.keys,
            })?;
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Imports `path` as `format`, handing each record to `sink` as soon as it is complete.
pub fn import(
    path: &Path,
    format: InputFormat,
    sink: &mut Sink<'_>,
) -> Result<ImportStats, ImportError> {
    let mut stats = ImportStats::default();
    match format {
        InputFormat::OsvZip => osv::import_zip(path, sink, &mut stats)?,
        InputFormat::OsvJson => osv::import_file(path, sink, &mut stats)?,
        InputFormat::OsvDirectory => osv::import_directory(path, sink, &mut stats)?,
        InputFormat::DebianTrackerJson => debian::import_tracker_json(path, sink, &mut stats)?,
        InputFormat::DebianAdvisoryList => debian::import_advisory_list(path, sink, &mut stats)?,
        InputFormat::AlpineSecdb => alpine::import_secdb(path, sink, &mut stats)?,
        InputFormat::OpenVex => openvex::import_document(path, sink, &mut stats)?,
    }
    Ok(stats)
}

/// Hands one record to the sink and counts it.
fn emit(sink: &mut Sink<'_>, stats: &mut ImportStats, record: Record) -> Result<(), ImportError> {
    sink(record)?;
    stats.records += 1;
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Io {
        path: path.to_owned(),
        source,
    }
}

fn json_error(path: &Path, error: &serde_json::Error) -> ImportError {
    ImportError::Json {
        path: path.to_owned(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    }
}

/// Reads a whole file of at most `limit` bytes.
fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ImportError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(ImportError::FileTooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// The first non-empty line of `text`, cut at [`MAX_SUMMARY_CHARS`] characters: a summary
/// for sources that only publish a long description.
fn summary_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MAX_SUMMARY_CHARS).collect())
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Reads one line (without its `\n` or `\r\n`) into `line`, refusing lines over
/// [`MAX_LINE_BYTES`]. Returns `false` at the end of the input. Invalid UTF-8 is replaced.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut String,
    path: &Path,
    line_number: usize,
) -> Result<bool, ImportError> {
    let mut bytes = Vec::new();
    loop {
        let available = reader.fill_buf().map_err(|e| io_error(path, e))?;
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1),
            None => (available, available.len()),
        };
        if bytes.len() + chunk.len() > MAX_LINE_BYTES {
            return Err(ImportError::LineTooLong {
                path: path.to_owned(),
                line: line_number,
                limit: MAX_LINE_BYTES,
            });
        }
        bytes.extend_from_slice(chunk);
        let found_newline = done > chunk.len();
        reader.consume(done);
        if found_newline {
            line.clear();
            line.push_str(&String::from_utf8_lossy(&bytes));
            trim_carriage_return(line);
            return Ok(true);
        }
    }
    line.clear();
    line.push_str(&String::from_utf8_lossy(&bytes));
    trim_carriage_return(line);
    Ok(!bytes.is_empty())
}

fn trim_carriage_return(line: &mut String) {
    if line.ends_with('\r') {
        line.pop();
    }
}

fn open_buffered(path: &Path) -> Result<BufReader<File>, ImportError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_prefixes() {
        assert_eq!(detect_bytes(b"PK\x03\x04rest"), Some(InputFormat::OsvZip));
        assert_eq!(
            detect_bytes(br#"{"id": "GO-1", "affected": []}"#),
            Some(InputFormat::OsvJson)
        );
        assert_eq!(
            detect_bytes(br#"{"pkg": {"CVE-1": {"description": "x", "releases": {"#),
            Some(InputFormat::DebianTrackerJson)
        );
        // Large first values: only the keys before the cut and inside the first value are seen.
        assert_eq!(
            detect_bytes(br#"{"packages": [{"pkg": {"name": "ansible", "secfixes": {"#),
            Some(InputFormat::AlpineSecdb)
        );
        assert_eq!(
            detect_bytes(br#"{"affected": [{"package": {"ecosystem": "Go", "#),
            Some(InputFormat::OsvJson)
        );
        assert_eq!(
            detect_bytes(br#"{"statements": [{"vulnerability": {"name": "CVE-1"}, "status": "#),
            Some(InputFormat::OpenVex)
        );
        assert_eq!(detect_bytes(br#"[{"id": "GO-1", "affected": []}]"#), None);
        assert_eq!(detect_bytes(b"{}"), None);
        assert_eq!(detect_bytes(b"hello\n"), None);
    }

    #[test]
    fn line_reader_caps_and_trims() {
        let mut input = std::io::Cursor::new(b"a\r\nbb\nccc".to_vec());
        let mut line = String::new();
        let path = Path::new("mem");
        let mut lines = Vec::new();
        while read_line_capped(&mut input, &mut line, path, 1).unwrap() {
            lines.push(line.clone());
        }
        assert_eq!(lines, ["a", "bb", "ccc"]);
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut input = std::io::Cursor::new(long);
        assert!(matches!(
            read_line_capped(&mut input, &mut line, path, 7),
            Err(ImportError::LineTooLong { line: 7, .. })
        ));
    }
}
