//! Berkeley DB hash databases: rpm's `Packages` file up to rpm 4.15 (RHEL ≤ 8, CentOS,
//! Amazon Linux 2).
//!
//! Hand-written because no Rust crate reads Berkeley DB files, linking libdb (AGPL since 6.0)
//! is not an option, and only a small read-only subset is needed; rpm ≥ 4.16 reads these files
//! without libdb the same way (its `bdb_ro` backend). The layout follows Berkeley DB's
//! `dbinc/db_page.h`:
//!
//! - page 0 is the hash metadata page: magic `0x061561` at offset 12, stored in the byte order
//!   of the host that created the file (either order is accepted), page size at 20, encryption
//!   algorithm at 24, page type at 25, flags at 26 and the last page number at 32;
//! - every page starts with a 26-byte header: page number at 8, next page at 16, entry count at
//!   20, "high free offset" at 22 (on overflow pages: the number of data bytes on the page),
//!   page type at 25;
//! - hash pages (types 2 and 13) hold an array of 2-byte item offsets after the header, items
//!   alternating key, data; an item's first byte is its type, and its length runs to the
//!   previous item's offset (to the page end for the first): "LEN_HITEM" in `db_page.h`;
//! - a data item of type `H_OFFPAGE` (3) is `{type, 3 unused bytes, first page: u32, total
//!   length: u32}`; the value itself lies on a chain of overflow pages (type 7).
//!
//! rpm keys each header by its instance number (a 4-byte integer in host order) and keeps its
//! own instance counter under key 0, which is not a header and is skipped.
//!
//! Rather than following hash buckets, the reader visits every page once in file order and
//! takes the key/data pairs of hash pages, as go-rpmdb and rpm's `bdb_ro` do. Overflow chains
//! are cycle-safe: each overflow page may be consumed once in the whole file, so a chain that
//! loops or two items sharing pages is an error, and the total of all values is bounded by the
//! file size.

use super::{RpmDbError, RpmDbLimits, Visit, check_header_size};
use thiserror::Error;

const HASH_MAGIC: u32 = 0x0006_1561;
const MAGIC_OFFSET: usize = 12;
const PAGE_SIZE_OFFSET: usize = 20;
const ENCRYPT_ALG_OFFSET: usize = 24;
const META_FLAGS_OFFSET: usize = 26;
const LAST_PAGE_OFFSET: usize = 32;
/// `DBMETA_CHKSUM`: pages carry a checksum, which moves the item array; rpm never sets it.
const META_FLAG_CHECKSUM: u8 = 0x01;

const PAGE_HEADER_LEN: usize = 26;
const PAGE_NUMBER_OFFSET: usize = 8;
const NEXT_PAGE_OFFSET: usize = 16;
const ENTRIES_OFFSET: usize = 20;
const HIGH_FREE_OFFSET: usize = 22;
const PAGE_TYPE_OFFSET: usize = 25;

const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;
const OFFPAGE_ITEM_LEN: usize = 12;

/// Berkeley DB page sizes are powers of two from 512 bytes to 64 KiB.
const MIN_PAGE_SIZE: usize = 512;
const MAX_PAGE_SIZE: usize = 65_536;

/// rpm's key for its instance counter record.
const COUNTER_KEY: u32 = 0;

/// Why a Berkeley DB file could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BdbError {
    #[error("file is {len} bytes, too short for the metadata page")]
    TruncatedMeta { len: usize },
    #[error("metadata page has page type {page_type}, not a hash database (8)")]
    NotHash { page_type: u8 },
    #[error("page size {page_size} is not a power of two between 512 and 65536")]
    PageSize { page_size: u32 },
    #[error("encrypted databases (algorithm {algorithm}) are not supported")]
    Encrypted { algorithm: u8 },
    #[error("databases with page checksums are not supported")]
    Checksummed,
    #[error(
        "last page is {last_page} but the {len}-byte file holds only {pages} pages of {page_size} bytes"
    )]
    Truncated {
        last_page: u32,
        len: usize,
        pages: usize,
        page_size: usize,
    },
    #[error("page {page}: {entries} item offsets do not fit in the page")]
    ItemArray { page: u32, entries: u16 },
    #[error("page {page}: item {item} has offset {offset}, outside the item area")]
    ItemOffset { page: u32, item: usize, offset: u16 },
    #[error("page {page}: {entries} items cannot form key/data pairs")]
    OddItems { page: u32, entries: u16 },
    #[error("page {page}: item {item} has type {item_type}, which rpm's Packages never uses")]
    ItemType {
        page: u32,
        item: usize,
        item_type: u8,
    },
    #[error("page {page}: key item {item} is {len} bytes, not a 4-byte instance number")]
    Key { page: u32, item: usize, len: usize },
    #[error("page {page}: off-page item {item} is {len} bytes, shorter than 12")]
    OffPageItem { page: u32, item: usize, len: usize },
    #[error("overflow chain of instance {instance} points to page {page}, outside the file")]
    OverflowPageRange { instance: u32, page: u32 },
    #[error(
        "overflow chain of instance {instance} reaches page {page} a second time (cycle or shared page)"
    )]
    OverflowPageReused { instance: u32, page: u32 },
    #[error(
        "overflow chain of instance {instance} reaches page {page} of type {page_type}, not an overflow page"
    )]
    OverflowPageType {
        instance: u32,
        page: u32,
        page_type: u8,
    },
    #[error("overflow page {page} declares {len} data bytes, more than the page holds")]
    OverflowPageLength { page: u32, len: u16 },
    #[error("page {page} carries page number {stored}")]
    PageNumber { page: u32, stored: u32 },
    #[error(
        "overflow chain of instance {instance} does not match the declared length {declared} \
         (reached {found} bytes)"
    )]
    OverflowLength {
        instance: u32,
        found: usize,
        declared: usize,
    },
    #[error(
        "instance {instance} declares {declared} bytes, more than the file's {capacity} bytes \
         of overflow pages"
    )]
    OverflowBeyondFile {
        instance: u32,
        declared: usize,
        capacity: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    fn u16(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u16::from_le_bytes(raw),
            Self::Big => u16::from_be_bytes(raw),
        })
    }

    fn u32(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u32::from_le_bytes(raw),
            Self::Big => u32::from_be_bytes(raw),
        })
    }
}

/// The byte order whose reading of offset 12 gives the hash magic, if either does.
fn magic_order(bytes: &[u8]) -> Option<ByteOrder> {
    [ByteOrder::Little, ByteOrder::Big]
        .into_iter()
        .find(|order| order.u32(bytes, MAGIC_OFFSET) == Some(HASH_MAGIC))
}

pub(super) fn has_magic(bytes: &[u8]) -> bool {
    magic_order(bytes).is_some()
}

/// The database geometry read from the metadata page.
struct Geometry {
    order: ByteOrder,
    page_size: usize,
    /// Pages 0 ..= last page, all present in the input.
    page_count: usize,
}

impl Geometry {
    fn read(bytes: &[u8]) -> Result<Self, BdbError> {
        let truncated = || BdbError::TruncatedMeta { len: bytes.len() };
        let order = magic_order(bytes).ok_or_else(truncated)?;
        let byte = |at: usize| bytes.get(at).copied().ok_or_else(truncated);
        let page_type = byte(PAGE_TYPE_OFFSET)?;
        if page_type != P_HASHMETA {
            return Err(BdbError::NotHash { page_type });
        }
        let page_size = order.u32(bytes, PAGE_SIZE_OFFSET).ok_or_else(truncated)?;
        let size = page_size as usize;
        if !size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&size) {
            return Err(BdbError::PageSize { page_size });
        }
        let algorithm = byte(ENCRYPT_ALG_OFFSET)?;
        if algorithm != 0 {
            return Err(BdbError::Encrypted { algorithm });
        }
        if byte(META_FLAGS_OFFSET)? & META_FLAG_CHECKSUM != 0 {
            return Err(BdbError::Checksummed);
        }
        let last_page = order.u32(bytes, LAST_PAGE_OFFSET).ok_or_else(truncated)?;
        let pages_present = bytes.len() / size;
        let page_count = (last_page as usize).saturating_add(1);
        if page_count > pages_present {
            return Err(BdbError::Truncated {
                last_page,
                len: bytes.len(),
                pages: pages_present,
                page_size: size,
            });
        }
        Ok(Self {
            order,
            page_size: size,
            page_count,
        })
    }

    /// Page `number`, which the caller has checked is below `page_count`.
    fn page<'a>(&self, bytes: &'a [u8], number: usize) -> Option<Page<'a>> {
        let start = number.checked_mul(self.page_size)?;
        let data = bytes.get(start..start.checked_add(self.page_size)?)?;
        Some(Page {
            number: number as u32,
            data,
            order: self.order,
        })
    }
}

struct Page<'a> {
    number: u32,
    data: &'a [u8],
    order: ByteOrder,
}

impl<'a> Page<'a> {
    /// Header fields lie within the first 26 bytes, and pages are at least 512 bytes long.
    fn header_u16(&self, at: usize) -> u16 {
        self.order.u16(self.data, at).unwrap_or_default()
    }

    fn header_u32(&self, at: usize) -> u32 {
        self.order.u32(self.data, at).unwrap_or_default()
    }

    fn page_type(&self) -> u8 {
        self.data.get(PAGE_TYPE_OFFSET).copied().unwrap_or_default()
    }

    /// The items of a hash page, in index order. "LEN_HITEM": an item ends where the previous
    /// one starts, the first one at the end of the page, so offsets must strictly decrease.
    fn hash_items(&self) -> Result<Vec<&'a [u8]>, BdbError> {
        let entries = self.header_u16(ENTRIES_OFFSET);
        let item_area_start = PAGE_HEADER_LEN + 2 * usize::from(entries);
        if item_area_start > self.data.len() {
            return Err(BdbError::ItemArray {
                page: self.number,
                entries,
            });
        }
        let mut items = Vec::with_capacity(usize::from(entries));
        let mut end = self.data.len();
        for item in 0..usize::from(entries) {
            let offset = self.header_u16(PAGE_HEADER_LEN + 2 * item);
            let start = usize::from(offset);
            let bad_offset = BdbError::ItemOffset {
                page: self.number,
                item,
                offset,
            };
            if start < item_area_start || start >= end {
                return Err(bad_offset);
            }
            items.push(self.data.get(start..end).ok_or(bad_offset)?);
            end = start;
        }
        Ok(items)
    }
}

/// Calls `visit` for every header in the file, in page order.
pub(super) fn for_each_header(
    bytes: &[u8],
    limits: &RpmDbLimits,
    visit: &mut Visit<'_>,
) -> Result<(), RpmDbError> {
    let geometry = Geometry::read(bytes)?;
    let mut overflow_used = vec![false; geometry.page_count];
    for number in 1..geometry.page_count {
        let Some(page) = geometry.page(bytes, number) else {
            break;
        };
        if matches!(page.page_type(), P_HASH | P_HASH_UNSORTED) {
            visit_hash_page(bytes, &geometry, &page, &mut overflow_used, limits, visit)?;
        }
    }
    Ok(())
}

fn visit_hash_page(
    bytes: &[u8],
    geometry: &Geometry,
    page: &Page<'_>,
    overflow_used: &mut [bool],
    limits: &RpmDbLimits,
    visit: &mut Visit<'_>,
) -> Result<(), RpmDbError> {
    let items = page.hash_items()?;
    if !items.len().is_multiple_of(2) {
        return Err(BdbError::OddItems {
            page: page.number,
            entries: items.len() as u16,
        }
        .into());
    }
    for (pair, key_data) in items.chunks_exact(2).enumerate() {
        let &[key, data] = key_data else {
            continue;
        };
        let instance = instance_of(page, 2 * pair, key)?;
        if instance == COUNTER_KEY {
            continue;
        }
        let item = 2 * pair + 1;
        match data.first().copied().unwrap_or_default() {
            H_KEYDATA => {
                let value = data.get(1..).unwrap_or_default();
                visit(instance, value)?;
            }
            H_OFFPAGE => {
                let off_page = OffPage::read(page, item, data)?;
                check_header_size(instance, off_page.total_len, limits)?;
                let value = off_page.collect(bytes, geometry, instance, overflow_used)?;
                visit(instance, &value)?;
            }
            item_type => {
                return Err(BdbError::ItemType {
                    page: page.number,
                    item,
                    item_type,
                }
                .into());
            }
        }
    }
    Ok(())
}

/// The instance number stored in a key item (`H_KEYDATA`, then 4 bytes in file byte order).
fn instance_of(page: &Page<'_>, item: usize, key: &[u8]) -> Result<u32, BdbError> {
    match key.split_first() {
        Some((&H_KEYDATA, number)) if number.len() == 4 => {
            Ok(page.order.u32(number, 0).unwrap_or_default())
        }
        Some((&H_KEYDATA, number)) => Err(BdbError::Key {
            page: page.number,
            item,
            len: number.len(),
        }),
        other => Err(BdbError::ItemType {
            page: page.number,
            item,
            item_type: other.map(|(&item_type, _)| item_type).unwrap_or_default(),
        }),
    }
}

/// An `H_OFFPAGE` item: where a value's overflow chain starts and how long the value is.
struct OffPage {
    first_page: u32,
    total_len: usize,
}

impl OffPage {
    fn read(page: &Page<'_>, item: usize, data: &[u8]) -> Result<Self, BdbError> {
        let short = BdbError::OffPageItem {
            page: page.number,
            item,
            len: data.len(),
        };
        if data.len() < OFFPAGE_ITEM_LEN {
            return Err(short);
        }
        let first_page = page.order.u32(data, 4).ok_or_else(|| short.clone())?;
        let total_len = page.order.u32(data, 8).ok_or(short)? as usize;
        Ok(Self {
            first_page,
            total_len,
        })
    }

    /// Concatenates the chain. Each page is claimed in `overflow_used`, so the walk visits at
    /// most every page once and stops at a cycle.
    fn collect(
        &self,
        bytes: &[u8],
        geometry: &Geometry,
        instance: u32,
        overflow_used: &mut [bool],
    ) -> Result<Vec<u8>, BdbError> {
        // The value must fit in the overflow pages the file has, so this bounds the allocation.
        let capacity = geometry.page_count * (geometry.page_size - PAGE_HEADER_LEN);
        if self.total_len > capacity {
            return Err(BdbError::OverflowBeyondFile {
                instance,
                declared: self.total_len,
                capacity,
            });
        }
        let mismatch = |found: usize| BdbError::OverflowLength {
            instance,
            found,
            declared: self.total_len,
        };
        let mut value = Vec::with_capacity(self.total_len);
        let mut next = self.first_page;
        while next != 0 {
            let page = claim_overflow_page(bytes, geometry, instance, next, overflow_used)?;
            let len = page.header_u16(HIGH_FREE_OFFSET);
            let chunk = page
                .data
                .get(PAGE_HEADER_LEN..PAGE_HEADER_LEN + usize::from(len))
                .ok_or(BdbError::OverflowPageLength {
                    page: page.number,
                    len,
                })?;
            if value.len() + chunk.len() > self.total_len {
                return Err(mismatch(value.len() + chunk.len()));
            }
            value.extend_from_slice(chunk);
            next = page.header_u32(NEXT_PAGE_OFFSET);
        }
        if value.len() != self.total_len {
            return Err(mismatch(value.len()));
        }
        Ok(value)
    }
}

fn claim_overflow_page<'a>(
    bytes: &'a [u8],
    geometry: &Geometry,
    instance: u32,
    number: u32,
    overflow_used: &mut [bool],
) -> Result<Page<'a>, BdbError> {
    let index = number as usize;
    let out_of_range = BdbError::OverflowPageRange {
        instance,
        page: number,
    };
    if index == 0 {
        return Err(out_of_range);
    }
    let used = overflow_used.get_mut(index).ok_or(out_of_range.clone())?;
    if *used {
        return Err(BdbError::OverflowPageReused {
            instance,
            page: number,
        });
    }
    *used = true;
    let page = geometry.page(bytes, index).ok_or(out_of_range)?;
    let page_type = page.page_type();
    if page_type != P_OVERFLOW {
        return Err(BdbError::OverflowPageType {
            instance,
            page: number,
            page_type,
        });
    }
    let stored = page.header_u32(PAGE_NUMBER_OFFSET);
    if stored != number {
        return Err(BdbError::PageNumber {
            page: number,
            stored,
        });
    }
    Ok(page)
}
