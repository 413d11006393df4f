//! Packages recorded inside executables: Go's embedded build information ([`go`]) and the
//! dependency list that `cargo auditable` links into Rust binaries ([`auditable`]).
//!
//! Images routinely ship statically linked programs whose package managers left nothing on
//! disk: the executable itself is the only evidence of which modules or crates it contains
//! (scanning notes §1.3). Both readers take the whole file as a byte slice, never allocate in
//! proportion to sizes the file declares, and answer `Ok(None)` when the file simply is not
//! the kind of executable they look for; a file that claims to be one but is malformed gives a
//! [`BinaryError`]. [`executable_format`] is the cheap magic-byte prefilter a layer walker
//! runs before handing a file to them.

pub mod auditable;
pub mod go;

use thiserror::Error;

/// The executable container formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutableFormat {
    /// ELF (Linux and most Unix systems).
    Elf,
    /// PE/COFF (Windows).
    Pe,
    /// Mach-O, 32- or 64-bit, either byte order (macOS). Universal ("fat") files are not
    /// recognized: their magic is shared with Java class files and neither reader opens them.
    MachO,
}

/// Identifies an executable by the magic bytes at the start of a file.
///
/// `head` is any prefix of the file; a few bytes suffice. ELF is `\x7fELF`, Mach-O is one of
/// the four `MH_MAGIC`/`MH_CIGAM` (32-bit) and `MH_MAGIC_64`/`MH_CIGAM_64` values. PE is the
/// DOS stub's `MZ`; when `head` is long enough to contain the offset stored at `0x3c` and the
/// four bytes it points to, those must also be the PE signature `PE\0\0`, which rejects plain
/// DOS programs.
pub fn executable_format(head: &[u8]) -> Option<ExecutableFormat> {
    const MACHO_MAGICS: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    if head.starts_with(b"\x7fELF") {
        return Some(ExecutableFormat::Elf);
    }
    if MACHO_MAGICS.iter().any(|magic| head.starts_with(magic)) {
        return Some(ExecutableFormat::MachO);
    }
    if head.starts_with(b"MZ") && pe_signature_plausible(head) {
        return Some(ExecutableFormat::Pe);
    }
    None
}

/// Checks the `PE\0\0` signature that `e_lfanew` (the little-endian `u32` at `0x3c`) points
/// to, when `head` reaches that far; a shorter head is given the benefit of the doubt.
fn pe_signature_plausible(head: &[u8]) -> bool {
    let Some(lfanew) = head.get(0x3c..0x40) else {
        return true;
    };
    let lfanew = u32::from_le_bytes([lfanew[0], lfanew[1], lfanew[2], lfanew[3]]);
    let Ok(start) = usize::try_from(lfanew) else {
        return false;
    };
    match start.checked_add(4).and_then(|end| head.get(start..end)) {
        Some(signature) => signature == b"PE\0\0",
        None => true,
    }
}

/// Why an executable's embedded package information could not be read.
#[derive(Debug, Error)]
pub enum BinaryError {
    /// The magic bytes named a format, but its headers do not parse.
    #[error("malformed {format:?} executable: {source}")]
    Malformed {
        format: ExecutableFormat,
        #[source]
        source: object::Error,
    },
    /// A Go build-information header was found with fewer than 32 bytes after it.
    #[error(
        "Go build information at address {address:#x} is truncated: {available} of 32 header bytes present"
    )]
    TruncatedGoHeader { address: u64, available: usize },
    /// The pointer-size byte of a Go build-information header is neither 4 nor 8.
    #[error("Go build information at address {address:#x} declares pointer size {size}")]
    BadPointerSize { address: u64, size: u8 },
    /// A varint length prefix ran past the data or past 64 bits.
    #[error("malformed varint length at address {address:#x}")]
    BadVarint { address: u64 },
    /// An address points outside every segment backed by file data.
    #[error("address {address:#x} is not backed by file data")]
    UnmappedAddress { address: u64 },
    /// A string is longer than the mapped data that follows its start.
    #[error(
        "string of {length} bytes at address {address:#x} runs past the {available} mapped bytes"
    )]
    StringOutOfBounds {
        address: u64,
        length: u64,
        available: usize,
    },
    /// The Go version string is empty, which the Go toolchain never writes.
    #[error("Go build information at address {address:#x} has an empty Go version")]
    EmptyGoVersion { address: u64 },
    /// Text that must be UTF-8 is not.
    #[error("{what} is not valid UTF-8")]
    NotUtf8 { what: &'static str },
    /// A line of Go module information breaks the `runtime/debug.ParseBuildInfo` grammar.
    #[error("Go module information line {line}: {reason}")]
    ModuleInfo { line: usize, reason: &'static str },
    /// The decompressed `.dep-v0` JSON would exceed the caller's limit.
    #[error("cargo-auditable data exceeds the {limit}-byte limit")]
    AuditDataTooLarge { limit: usize },
    /// The `.dep-v0` section could not be located or decompressed.
    #[error("cargo-auditable data unreadable: {0}")]
    AuditData(#[source] auditable_info::Error),
    /// The decompressed `.dep-v0` data is not the JSON document cargo-auditable writes.
    #[error("cargo-auditable JSON malformed: {0}")]
    AuditJson(#[source] serde_json::Error),
}
