//! Reading one layer: decompress (gzip, zstd or none, by magic bytes), walk the tar once,
//! and hand the few files the detectors want to them. Nothing is unpacked to disk and no link
//! is followed: a symlink or hard link entry is never read through. Whiteouts (OCI image-spec
//! `layer.md`, "Whiteouts") are recorded for the merge, which applies them to lower layers.
//!
//! Every bound in [`Limits`] is enforced while streaming, so a bomb ends the scan with
//! [`LayerError`] after at most the configured bytes, entries or file size.

use std::io::{self, BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use crate::detect::{self, Evidence};
use crate::limits::{Limits, MemoryBudget};

/// What one layer contributes, before layers are merged. This is what the registry caches
/// per layer: it is enough to rebuild an image's inventory without reading the layer again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerFragment {
    /// `sha256:<hex>` of the uncompressed tar stream, when it was asked for.
    pub diff_id: Option<String>,
    /// Evidence per file path, in tar order; a later entry for the same path replaces an
    /// earlier one.
    pub files: Vec<(String, Evidence)>,
    /// Paths deleted from lower layers by `.wh.<name>` entries.
    pub whiteouts: Vec<String>,
    /// Directories made opaque by `.wh..wh..opq`: their lower-layer contents are hidden.
    pub opaque_dirs: Vec<String>,
    /// What was skipped and why (a file over the size limit, an entry with `..`).
    pub notes: Vec<String>,
    /// Uncompressed bytes and tar entries seen.
    pub bytes: u64,
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer decompresses to more than {limit} bytes (the max_layer_bytes limit)")]
    TooLarge { limit: u64 },
    #[error("layer has more than {limit} entries (the max_entries limit)")]
    TooManyEntries { limit: u64 },
    #[error("layer is not a readable {compression} tar stream after {offset} bytes: {source}")]
    Corrupt {
        compression: Compression,
        offset: u64,
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "uncompressed",
        })
    }
}

/// Options that trade work for information.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Hash the uncompressed stream to learn the layer's diff_id (costs one SHA-256 pass).
    pub compute_diff_id: bool,
}

/// The reader between the decompressor and the tar parser: counts bytes against the limit
/// and hashes them when asked.
struct Metered<R> {
    inner: R,
    bytes: u64,
    limit: u64,
    hasher: Option<oci::Hasher>,
}

/// Marks the io::Error that [`Metered`] raises, so it can be told apart from corruption.
#[derive(Debug)]
struct LimitReached;

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed size limit reached")
    }
}

impl std::error::Error for LimitReached {}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.bytes > self.limit {
            return Err(io::Error::other(LimitReached));
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Reads one layer blob (compressed or not) and returns what the detectors found in it.
pub fn walk_layer<R: Read>(
    blob: R,
    limits: &Limits,
    options: WalkOptions,
) -> Result<LayerFragment, LayerError> {
    let budget = MemoryBudget::new(limits.memory_budget_bytes);
    walk_layer_within(blob, limits, options, &budget)
}

/// [`walk_layer`], holding file contents within `budget`, which the layers of one image
/// read in parallel share.
pub fn walk_layer_within<R: Read>(
    blob: R,
    limits: &Limits,
    options: WalkOptions,
    budget: &MemoryBudget,
) -> Result<LayerFragment, LayerError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let compression = match buffered.fill_buf() {
        Ok([0x1f, 0x8b, ..]) => Compression::Gzip,
        Ok([0x28, 0xb5, 0x2f, 0xfd, ..]) => Compression::Zstd,
        Ok(_) => Compression::None,
        Err(source) => {
            return Err(LayerError::Corrupt {
                compression: Compression::None,
                offset: 0,
                source,
            });
        }
    };
    let decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(buffered) {
            Ok(d) => Box::new(d),
            Err(source) => {
                return Err(LayerError::Corrupt {
                    compression,
                    offset: 0,
                    source,
                });
            }
        },
        Compression::None => Box::new(buffered),
    };
    let mut metered = Metered {
        inner: decoder,
        bytes: 0,
        limit: limits.max_layer_bytes,
        hasher: options
            .compute_diff_id
            .then(|| oci::Hasher::new(oci::Algorithm::Sha256)),
    };
    let mut fragment = LayerFragment::default();
    // tar reads 512-byte headers and skips in small steps; a buffer between it and the
    // decompressor turns those into large decompressor calls.
    let mut buffered = BufReader::with_capacity(256 * 1024, &mut metered);
    let walked = walk_tar(&mut buffered, limits, budget, &mut fragment);
    // Drain what follows the end-of-archive blocks so the diff_id covers the whole stream.
    let drained = walked.and_then(|()| io::copy(&mut buffered, &mut io::sink()).map(drop));
    drop(buffered);
    let bytes = metered.bytes;
    match drained {
        Ok(()) => {}
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<LimitReached>()) => {
            return Err(LayerError::TooLarge {
                limit: limits.max_layer_bytes,
            });
        }
        Err(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<TooManyEntries>()) =>
        {
            return Err(LayerError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        Err(source) => {
            return Err(LayerError::Corrupt {
                compression,
                offset: bytes,
                source,
            });
        }
    }
    fragment.bytes = bytes;
    fragment.diff_id = metered.hasher.map(|h| h.finish().to_string());
    Ok(fragment)
}

/// The largest GNU long name or PAX header accepted (real ones are a few hundred bytes).
const MAX_TAR_METADATA_BYTES: u64 = 64 * 1024;

/// Notes kept per layer; beyond this a layer is noisy, not more informative.
const MAX_NOTES: usize = 100;

#[derive(Debug)]
struct TooManyEntries;

impl std::fmt::Display for TooManyEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("entry limit reached")
    }
}

impl std::error::Error for TooManyEntries {}

fn walk_tar<R: Read>(
    reader: R,
    limits: &Limits,
    budget: &MemoryBudget,
    fragment: &mut LayerFragment,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    // Raw entries: the tar crate would read a GNU long name or PAX header of any declared size
    // into memory; here they are read with a bound.
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut retained: u64 = 0;
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        fragment.entries += 1;
        if fragment.entries > limits.max_entries {
            return Err(io::Error::other(TooManyEntries));
        }
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            let size = entry.size();
            if size > MAX_TAR_METADATA_BYTES {
                return Err(io::Error::other(format!(
                    "a tar {kind:?} entry of {size} bytes (at most {MAX_TAR_METADATA_BYTES} are accepted)"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry).take(size).read_to_end(&mut data)?;
            if kind.is_gnu_longname() {
                // NUL-terminated, as GNU tar writes it.
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                data.truncate(end);
                long_name = Some(data);
            } else if kind.is_pax_local_extensions() {
                // POSIX pax `path` overrides the header's name (and a GNU long name).
                pax_path = tar::PaxExtensions::new(&data)
                    .filter_map(Result::ok)
                    .find(|e| e.key_bytes() == b"path")
                    .map(|e| e.value_bytes().to_vec());
            }
            continue;
        }
        let header_path = entry.header().path_bytes().into_owned();
        let raw = pax_path.take().or(long_name.take()).unwrap_or(header_path);
        if fragment.notes.len() >= MAX_NOTES {
            fragment.notes.truncate(MAX_NOTES);
        }
        if raw.len() > limits.max_path_bytes {
            fragment.notes.push(format!(
                "skipped an entry whose path is {} bytes long",
                raw.len()
            ));
            continue;
        }
        let Some(path) = normalize(&String::from_utf8_lossy(&raw)) else {
            fragment.notes.push(format!(
                "skipped entry {:?}: its path leaves the root",
                String::from_utf8_lossy(&raw)
            ));
            continue;
        };
        let (dir, file) = match path.rsplit_once('/') {
            Some((d, f)) => (d, f),
            None => ("", path.as_str()),
        };
        if file == ".wh..wh..opq" {
            fragment.opaque_dirs.push(dir.to_owned());
            continue;
        }
        if let Some(hidden) = file.strip_prefix(".wh.") {
            fragment.whiteouts.push(join(dir, hidden));
            continue;
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0);
        let Some(file_kind) = detect::classify(&path, mode) else {
            continue;
        };
        let size = entry.size();
        if size > limits.max_file_bytes || size > budget.total() {
            fragment.notes.push(format!(
                "skipped {path}: {size} bytes is over the max_file_bytes limit ({})",
                limits.max_file_bytes
            ));
            continue;
        }
        let _permit = budget.acquire(size);
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
        (&mut entry).take(size).read_to_end(&mut bytes)?;
        let mut evidence = detect::analyze(file_kind, &path, &bytes, limits);
        fragment.notes.append(&mut evidence.notes);
        retained += evidence.retained_bytes();
        if retained > limits.max_evidence_bytes {
            return Err(io::Error::other(format!(
                "what the detectors found in this layer exceeds {} bytes (the max_evidence_bytes limit)",
                limits.max_evidence_bytes
            )));
        }
        // Pushed even when empty: a file that no longer names packages still replaces the
        // lower layers' copy.
        fragment.files.push((path, evidence));
    }
    keep_last_per_path(&mut fragment.files);
    Ok(())
}

/// A tar may hold one path twice; the later entry is the file (as when extracting).
fn keep_last_per_path(files: &mut Vec<(String, Evidence)>) {
    let mut last = std::collections::HashMap::with_capacity(files.len());
    for (i, (path, _)) in files.iter().enumerate() {
        last.insert(path.clone(), i);
    }
    if last.len() == files.len() {
        return;
    }
    let mut i = 0;
    files.retain(|(path, _)| {
        let keep = last.get(path) == Some(&i);
        i += 1;
        keep
    });
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A tar path relative to the root: no leading `/` or `./`, no empty or `.` segments.
/// `None` when a `..` segment would leave the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("./usr//bin/"), Some("usr/bin".into()));
        assert_eq!(normalize("/etc/os-release"), Some("etc/os-release".into()));
        assert_eq!(normalize("a/../../etc"), None);
    }
}
