//! NDB, rpm's own package database format (`Packages.db`), used by SUSE since SLE 15 SP3 /
//! openSUSE Leap 15.3.
//!
//! Hand-written because it is rpm-specific and no crate reads it. The layout follows rpm's
//! `lib/backend/ndb/rpmpkg.c`; all integers are little-endian and the file is divided into
//! 16-byte blocks:
//!
//! - a 32-byte header: magic `RpmP`, version (0), generation, number of slot pages, next
//!   package index;
//! - `slot pages` × 4096 bytes of 16-byte slots after the header: magic `Slot`, package index,
//!   first block, block count; a slot whose first block is 0 is free;
//! - each package blob at `first block × 16`: a 16-byte head (magic `BlbS`, package index,
//!   generation, blob length), the blob, zero padding, and a 12-byte tail (Adler-32, blob
//!   length, magic `BlbE`), the whole spanning exactly `block count` blocks.
//!
//! The checks are those of rpm's `rpmpkgReadSlots` and `rpmpkgReadBlob`: slot magic, a
//! non-zero package index and block count, blobs after the slot area and inside the file,
//! head and tail magic, matching package index and blob length, and a block count that fits
//! the blob. In addition, blobs may not overlap (rpm's `rpmpkgFindEmptyOffset` treats that as
//! corruption), which also bounds the total bytes read by the file size. Like rpm when it
//! reads a blob, the reader does not verify the Adler-32 checksum.

use super::{RpmDbError, RpmDbLimits, Visit, check_header_size};
use thiserror::Error;

const DB_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_HEAD_MAGIC: &[u8; 4] = b"BlbS";
const BLOB_TAIL_MAGIC: &[u8; 4] = b"BlbE";
const DB_VERSION: u32 = 0;

const HEADER_LEN: usize = 32;
const VERSION_OFFSET: usize = 4;
const SLOT_PAGES_OFFSET: usize = 12;
const SLOT_PAGE_SIZE: usize = 4096;
const SLOT_LEN: usize = 16;
const BLOCK_SIZE: usize = 16;
const BLOB_HEAD_LEN: usize = 16;
const BLOB_TAIL_LEN: usize = 12;

/// Why an NDB file could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum NdbError {
    #[error("file is {len} bytes, too short for the 32-byte header")]
    TruncatedHeader { len: usize },
    #[error("unsupported NDB version {version}")]
    Version { version: u32 },
    #[error("header declares {slot_pages} slot pages, but the {len}-byte file cannot hold them")]
    SlotPages { slot_pages: u32, len: usize },
    #[error("slot {slot} does not start with the magic \"Slot\"")]
    SlotMagic { slot: usize },
    #[error(
        "slot {slot} (package {package}) has blocks {first_block}+{block_count}, outside the blob area of the file"
    )]
    SlotRange {
        slot: usize,
        package: u32,
        first_block: u32,
        block_count: u32,
    },
    #[error("slot {slot} has package index 0 or no blocks")]
    SlotEmpty { slot: usize },
    #[error("blobs of packages {first} and {second} overlap")]
    Overlap { first: u32, second: u32 },
    #[error("blob of package {package} at block {first_block}: {reason}")]
    Blob {
        package: u32,
        first_block: u32,
        reason: &'static str,
    },
}

pub(super) fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(DB_MAGIC)
}

/// A used slot: where one package's blob lies.
#[derive(Debug, Clone, Copy)]
struct Slot {
    package: u32,
    first_block: u32,
    block_count: u32,
}

impl Slot {
    fn byte_range(&self) -> (usize, usize) {
        let start = self.first_block as usize * BLOCK_SIZE;
        (start, start + self.block_count as usize * BLOCK_SIZE)
    }
}

/// Calls `visit` for every package blob, in slot order.
pub(super) fn for_each_header(
    bytes: &[u8],
    limits: &RpmDbLimits,
    visit: &mut Visit<'_>,
) -> Result<(), RpmDbError> {
    let slots = read_slots(bytes)?;
    check_no_overlap(&slots)?;
    for slot in &slots {
        let blob = read_blob(bytes, slot, limits)?;
        visit(slot.package, blob)?;
    }
    Ok(())
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// The used slots, after rpm's `rpmpkgReadSlots` checks.
fn read_slots(bytes: &[u8]) -> Result<Vec<Slot>, NdbError> {
    let truncated = NdbError::TruncatedHeader { len: bytes.len() };
    if bytes.len() < HEADER_LEN {
        return Err(truncated);
    }
    let version = le_u32(bytes, VERSION_OFFSET).ok_or(truncated.clone())?;
    if version != DB_VERSION {
        return Err(NdbError::Version { version });
    }
    let slot_pages = le_u32(bytes, SLOT_PAGES_OFFSET).ok_or(truncated)?;
    let slot_area_end = (slot_pages as usize)
        .checked_mul(SLOT_PAGE_SIZE)
        .filter(|&end| end >= HEADER_LEN && end <= bytes.len())
        .ok_or(NdbError::SlotPages {
            slot_pages,
            len: bytes.len(),
        })?;
    // Blobs live after the slot area and inside the file, in whole blocks.
    let first_blob_block = slot_area_end / BLOCK_SIZE;
    let file_blocks = bytes.len() / BLOCK_SIZE;
    let mut slots = Vec::new();
    let slot_area = bytes.get(HEADER_LEN..slot_area_end).unwrap_or_default();
    for (index, raw) in slot_area.chunks_exact(SLOT_LEN).enumerate() {
        let number = index + HEADER_LEN / SLOT_LEN;
        if !raw.starts_with(SLOT_MAGIC) {
            return Err(NdbError::SlotMagic { slot: number });
        }
        let field = |at: usize| le_u32(raw, at).unwrap_or_default();
        let (package, first_block, block_count) = (field(4), field(8), field(12));
        if first_block == 0 {
            continue;
        }
        if package == 0 || block_count == 0 {
            return Err(NdbError::SlotEmpty { slot: number });
        }
        let end_block = u64::from(first_block) + u64::from(block_count);
        if (first_block as usize) < first_blob_block || end_block > file_blocks as u64 {
            return Err(NdbError::SlotRange {
                slot: number,
                package,
                first_block,
                block_count,
            });
        }
        slots.push(Slot {
            package,
            first_block,
            block_count,
        });
    }
    Ok(slots)
}

fn check_no_overlap(slots: &[Slot]) -> Result<(), NdbError> {
    let mut by_position: Vec<&Slot> = slots.iter().collect();
    by_position.sort_by_key(|slot| slot.first_block);
    for pair in by_position.windows(2) {
        if let &[earlier, later] = pair
            && earlier.byte_range().1 > later.byte_range().0
        {
            return Err(NdbError::Overlap {
                first: earlier.package,
                second: later.package,
            });
        }
    }
    Ok(())
}

/// The blob a slot points to, after rpm's `rpmpkgReadBlob` checks.
fn read_blob<'a>(
    bytes: &'a [u8],
    slot: &Slot,
    limits: &RpmDbLimits,
) -> Result<&'a [u8], RpmDbError> {
    let bad = |reason: &'static str| NdbError::Blob {
        package: slot.package,
        first_block: slot.first_block,
        reason,
    };
    let (start, end) = slot.byte_range();
    // `read_slots` checked that the range lies inside the file.
    let area = bytes.get(start..end).ok_or(bad("outside the file"))?;
    if area.len() < BLOB_HEAD_LEN + BLOB_TAIL_LEN {
        return Err(bad("too few blocks for head and tail").into());
    }
    let field = |at: usize| le_u32(area, at).unwrap_or_default();
    if !area.starts_with(BLOB_HEAD_MAGIC) {
        return Err(bad("head magic is not \"BlbS\"").into());
    }
    if field(4) != slot.package {
        return Err(bad("head names another package").into());
    }
    let blob_len = field(12) as usize;
    check_header_size(slot.package, blob_len, limits)?;
    let blocks_needed = (BLOB_HEAD_LEN + blob_len + BLOB_TAIL_LEN).div_ceil(BLOCK_SIZE);
    if blocks_needed != slot.block_count as usize {
        return Err(bad("block count does not match the blob length").into());
    }
    let tail = area.len() - BLOB_TAIL_LEN;
    if field(tail + 4) as usize != blob_len {
        return Err(bad("tail length differs from head length").into());
    }
    if area.get(tail + 8..) != Some(BLOB_TAIL_MAGIC.as_slice()) {
        return Err(bad("tail magic is not \"BlbE\"").into());
    }
    Ok(area
        .get(BLOB_HEAD_LEN..BLOB_HEAD_LEN + blob_len)
        .ok_or(bad("blob runs past its blocks"))?)
}
