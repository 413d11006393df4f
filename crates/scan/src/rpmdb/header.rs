//! RPM header blobs, the records every rpm package database stores, one per installed package.
//!
//! All three database formats (Berkeley DB, NDB, SQLite) hold the same thing: the package
//! header exactly as rpm's `headerExport` writes it, without the 8-byte magic that precedes a
//! header inside an `.rpm` file. This module reads such a blob and answers typed look-ups by
//! tag; it is hand-written because no maintained Rust crate reads rpm headers (the `rpmdb`
//! crate is a reference only), and the format is small.
//!
//! Layout (LSB Core Generic 5.0, §25.2.3 "Header", and rpm's `lib/header.c`), all integers
//! big-endian:
//!
//! ```text
//! il: u32            number of index entries
//! dl: u32            length of the data store
//! il × { tag: i32, type: u32, offset: i32, count: u32 }
//! dl bytes of data store; an entry's offset is relative to its start
//! ```
//!
//! Guarantees: the blob is never trusted. The declared sizes must add up to the blob length
//! exactly, every offset and count is checked against the data store before use, and no
//! allocation is larger than the blob implies. Entries are validated lazily, only for the tags
//! the caller asks for: an entry for a tag nobody reads cannot make the header unusable.

use thiserror::Error;

/// Tag numbers from rpm's `rpmtag.h` that the package reader needs.
pub mod tag {
    pub const NAME: i32 = 1000;
    pub const VERSION: i32 = 1001;
    pub const RELEASE: i32 = 1002;
    pub const EPOCH: i32 = 1003;
    pub const VENDOR: i32 = 1011;
    pub const LICENSE: i32 = 1014;
    pub const ARCH: i32 = 1022;
    pub const OLDFILENAMES: i32 = 1027;
    pub const SOURCERPM: i32 = 1044;
    pub const DIRINDEXES: i32 = 1116;
    pub const BASENAMES: i32 = 1117;
    pub const DIRNAMES: i32 = 1118;
    pub const MODULARITYLABEL: i32 = 5096;
}

/// Data types of index entries (`rpmTagType` in rpm's `rpmtag.h`).
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;

/// `il` and `dl` precede the index.
const PREAMBLE_LEN: usize = 8;
/// Each index entry is four 32-bit fields.
const ENTRY_LEN: usize = 16;
/// rpm's `hdrchkTags`: a header with more index entries than this is rejected.
const MAX_INDEX_ENTRIES: u32 = 0xffff;

/// Why a header blob could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("header blob is {len} bytes, shorter than the 8-byte il/dl preamble")]
    Truncated { len: usize },
    #[error("header declares {index_len} index entries; rpm accepts 1 to 65535")]
    IndexCount { index_len: u32 },
    #[error(
        "header declares {declared} bytes (8 + 16 × {index_len} entries + {data_len} data) \
         but the blob holds {actual}"
    )]
    SizeMismatch {
        index_len: u32,
        data_len: u32,
        declared: u64,
        actual: usize,
    },
    #[error("tag {tag} has data type {found}, expected {expected}")]
    WrongType { tag: i32, found: u32, expected: u32 },
    #[error("tag {tag} has count {count}, which its data type does not allow")]
    WrongCount { tag: i32, count: u32 },
    #[error(
        "tag {tag}: {count} element(s) at offset {offset} run past the {store_len}-byte data store"
    )]
    OutOfBounds {
        tag: i32,
        offset: i32,
        count: u32,
        store_len: usize,
    },
    #[error("tag {tag}: offset {offset} is not aligned to {align} bytes")]
    Misaligned { tag: i32, offset: i32, align: usize },
    #[error("required tag {tag} ({name}) is missing")]
    MissingTag { tag: i32, name: &'static str },
    #[error("file list has {basenames} basenames but {dir_indexes} directory indexes")]
    FileCountMismatch {
        basenames: usize,
        dir_indexes: usize,
    },
    #[error("file {file} refers to directory {index}, but the header has {dirs} directories")]
    DirIndexOutOfRange {
        file: usize,
        index: u32,
        dirs: usize,
    },
    #[error("file list would expand to more than {limit} bytes of paths")]
    FileListTooLarge { limit: usize },
}

/// One index entry, decoded but not yet checked against the data store.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: i32,
    data_type: u32,
    offset: i32,
    count: u32,
}

/// A parsed header: the decoded index and the data store, borrowed from the blob.
#[derive(Debug)]
pub struct Header<'a> {
    entries: Vec<Entry>,
    store: &'a [u8],
}

impl<'a> Header<'a> {
    /// Splits a blob into index and data store after checking that the declared sizes match
    /// the blob exactly, as rpm's `hdrblobInit` does for database records.
    pub fn parse(blob: &'a [u8]) -> Result<Self, HeaderError> {
        let (Some(index_len), Some(data_len)) = (be_u32(blob, 0), be_u32(blob, 4)) else {
            return Err(HeaderError::Truncated { len: blob.len() });
        };
        if index_len == 0 || index_len > MAX_INDEX_ENTRIES {
            return Err(HeaderError::IndexCount { index_len });
        }
        let index_bytes = u64::from(index_len) * ENTRY_LEN as u64;
        let declared = PREAMBLE_LEN as u64 + index_bytes + u64::from(data_len);
        if declared != blob.len() as u64 {
            return Err(HeaderError::SizeMismatch {
                index_len,
                data_len,
                declared,
                actual: blob.len(),
            });
        }
        // `declared == blob.len()`, so the split point lies inside the blob.
        let (index, store) = blob
            .get(PREAMBLE_LEN..)
            .and_then(|rest| rest.split_at_checked(rest.len().checked_sub(data_len as usize)?))
            .ok_or(HeaderError::Truncated { len: blob.len() })?;
        let entries = index
            .chunks_exact(ENTRY_LEN)
            .map(|raw| Entry {
                tag: be_i32(raw, 0).unwrap_or_default(),
                data_type: be_u32(raw, 4).unwrap_or_default(),
                offset: be_i32(raw, 8).unwrap_or_default(),
                count: be_u32(raw, 12).unwrap_or_default(),
            })
            .collect();
        Ok(Self { entries, store })
    }

    /// The entry for `tag`, if any. When a tag occurs more than once the last occurrence
    /// wins: rpm's `hdrblobImport` notes that "Dribble entries replace duplicate region
    /// entries", and dribble entries follow the region in the index.
    fn entry(&self, tag: i32) -> Option<Entry> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.tag == tag)
            .copied()
    }

    /// The data store from the entry's offset on, after checking type and offset.
    fn data_of(&self, entry: Entry, expected_type: u32) -> Result<&'a [u8], HeaderError> {
        if entry.data_type != expected_type {
            return Err(HeaderError::WrongType {
                tag: entry.tag,
                found: entry.data_type,
                expected: expected_type,
            });
        }
        usize::try_from(entry.offset)
            .ok()
            .and_then(|offset| self.store.get(offset..))
            .ok_or(HeaderError::OutOfBounds {
                tag: entry.tag,
                offset: entry.offset,
                count: entry.count,
                store_len: self.store.len(),
            })
    }

    fn out_of_bounds(&self, entry: Entry) -> HeaderError {
        HeaderError::OutOfBounds {
            tag: entry.tag,
            offset: entry.offset,
            count: entry.count,
            store_len: self.store.len(),
        }
    }

    /// A `STRING` entry: exactly one NUL-terminated string (rpm's `dataLength` rejects a
    /// string entry whose count is not 1). Returns the bytes without the NUL.
    pub fn string(&self, tag: i32) -> Result<Option<&'a [u8]>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        let data = self.data_of(entry, TYPE_STRING)?;
        if entry.count != 1 {
            return Err(HeaderError::WrongCount {
                tag,
                count: entry.count,
            });
        }
        let (value, _) = split_nul(data).ok_or_else(|| self.out_of_bounds(entry))?;
        Ok(Some(value))
    }

    /// A `STRING_ARRAY` entry: `count` consecutive NUL-terminated strings.
    pub fn string_array(&self, tag: i32) -> Result<Option<Vec<&'a [u8]>>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        let mut rest = self.data_of(entry, TYPE_STRING_ARRAY)?;
        // Every string takes at least its NUL, so a count larger than the remaining data is
        // a lie; checking first keeps the allocation proportional to the blob.
        if entry.count as usize > rest.len() {
            return Err(self.out_of_bounds(entry));
        }
        let mut strings = Vec::with_capacity(entry.count as usize);
        for _ in 0..entry.count {
            let (value, tail) = split_nul(rest).ok_or_else(|| self.out_of_bounds(entry))?;
            strings.push(value);
            rest = tail;
        }
        Ok(Some(strings))
    }

    /// An `INT32` entry: `count` big-endian 32-bit integers, 4-byte aligned in the store
    /// (rpm's `hdrchkAlign`).
    pub fn int32_array(&self, tag: i32) -> Result<Option<Vec<u32>>, HeaderError> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        let data = self.data_of(entry, TYPE_INT32)?;
        if entry.offset % 4 != 0 {
            return Err(HeaderError::Misaligned {
                tag,
                offset: entry.offset,
                align: 4,
            });
        }
        let byte_len = (entry.count as usize)
            .checked_mul(4)
            .filter(|&len| len <= data.len())
            .ok_or_else(|| self.out_of_bounds(entry))?;
        let words = data
            .get(..byte_len)
            .ok_or_else(|| self.out_of_bounds(entry))?;
        Ok(Some(
            words
                .chunks_exact(4)
                .map(|word| word.try_into().map(u32::from_be_bytes).unwrap_or_default())
                .collect(),
        ))
    }

    /// The first element of an `INT32` entry (EPOCH is stored as a one-element array).
    pub fn int32(&self, tag: i32) -> Result<Option<u32>, HeaderError> {
        match self.int32_array(tag)? {
            None => Ok(None),
            Some(values) => values
                .first()
                .copied()
                .map(Some)
                .ok_or(HeaderError::WrongCount { tag, count: 0 }),
        }
    }

    /// The absolute paths of the files the package owns. rpm ≥ 4 stores them compressed as
    /// DIRNAMES + BASENAMES + DIRINDEXES, path `i` being `DIRNAMES[DIRINDEXES[i]]` followed by
    /// `BASENAMES[i]` (directory names end with `/`); older headers carry whole paths in
    /// OLDFILENAMES. `limit` caps the total bytes of the expanded paths, because one long
    /// directory name shared by many files would otherwise expand far beyond the blob.
    pub fn file_paths(&self, limit: usize) -> Result<Vec<String>, HeaderError> {
        let Some(basenames) = self.string_array(tag::BASENAMES)? else {
            let old_paths = self.string_array(tag::OLDFILENAMES)?.unwrap_or_default();
            return Ok(old_paths.into_iter().map(text).collect());
        };
        let dir_names = self.string_array(tag::DIRNAMES)?.unwrap_or_default();
        let dir_indexes = self.int32_array(tag::DIRINDEXES)?.unwrap_or_default();
        if basenames.len() != dir_indexes.len() {
            return Err(HeaderError::FileCountMismatch {
                basenames: basenames.len(),
                dir_indexes: dir_indexes.len(),
            });
        }
        let mut expanded = 0usize;
        let mut paths = Vec::with_capacity(basenames.len());
        for (file, (base, &index)) in basenames.iter().zip(&dir_indexes).enumerate() {
            let dir = dir_names
                .get(index as usize)
                .ok_or(HeaderError::DirIndexOutOfRange {
                    file,
                    index,
                    dirs: dir_names.len(),
                })?;
            expanded = expanded.saturating_add(dir.len() + base.len());
            if expanded > limit {
                return Err(HeaderError::FileListTooLarge { limit });
            }
            let mut path = Vec::with_capacity(dir.len() + base.len());
            path.extend_from_slice(dir);
            path.extend_from_slice(base);
            paths.push(text_owned(path));
        }
        Ok(paths)
    }
}

/// Header strings are UTF-8 in practice; old packages may carry Latin-1 in free-text tags,
/// which is kept readable rather than rejected.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn text_owned(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|invalid| text(invalid.as_bytes()))
}

/// Splits at the first NUL: the string before it and the bytes after it.
fn split_nul(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = data.iter().position(|&b| b == 0)?;
    let (value, rest) = data.split_at_checked(nul)?;
    Some((value, rest.get(1..)?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(raw.try_into().ok()?))
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    be_u32(bytes, at).map(|v| v as i32)
}
