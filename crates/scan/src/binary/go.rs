//! Go's embedded build information: the toolchain version, the main module, every dependency
//! module with its `go.sum` hash and replacement, and the build settings.
//!
//! Since Go 1.13 the linker writes a 32-byte header starting with the magic
//! `"\xff Go buildinf:"` at a 16-byte-aligned address, in the `.go.buildinfo` section (ELF),
//! the `__go_buildinfo` section (Mach-O), or near the start of the first writable data
//! section or segment. This module follows the reader in the Go standard library,
//! `debug/buildinfo` (`readRawBuildInfo`, and `runtime/debug.ParseBuildInfo` for the text),
//! written anew here because no Rust crate reads it; `object` does the ELF/PE/Mach-O parsing.
//! Both header layouts are supported:
//!
//! * Go 1.18 and later set bit 1 of the flags byte and follow the header with two
//!   varint-length-prefixed strings, the Go version and the module information;
//! * Go 1.13 to 1.17 store two pointers (of the pointer size in byte 14, in the byte order of
//!   byte 15) to Go string headers `{data pointer, length}`, which are resolved through the
//!   file's segments.
//!
//! Every length and pointer is checked against the file bytes before use, so memory stays
//! bounded by the input: the only allocations are the final strings.

use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};

use super::{BinaryError, ExecutableFormat, executable_format};

/// What a Go binary says about how it was built (`go version -m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain version as recorded, e.g. `go1.21.4` or `go1.20.1 X:boringcrypto`.
    pub go_version: String,
    /// The main package's import path, e.g. `github.com/containers/skopeo/cmd/skopeo`; empty
    /// for binaries built without module information.
    pub path: String,
    /// The main module. Every field is empty when the binary was built outside module mode
    /// (GOPATH builds, which Debian uses), mirroring Go's zero `debug.Module`.
    pub main: GoModule,
    /// The dependency modules, in the order the binary lists them.
    pub deps: Vec<GoModule>,
    /// `build` lines such as `("GOOS", "linux")`, `("-trimpath", "true")`,
    /// `("vcs.revision", "…")`, in order, with Go's quoting removed.
    pub settings: Vec<(String, String)>,
}

/// One module as recorded in the build information.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoModule {
    pub path: String,
    /// A semantic version such as `v1.2.3`, a pseudo-version, or `(devel)`; may be empty in a
    /// replacement that points at a directory.
    pub version: String,
    /// The `h1:` hash from `go.sum`, when recorded.
    pub sum: Option<String>,
    /// The module that replaced this one (`=>` line), when there is one.
    pub replace: Option<Box<GoModule>>,
}

/// `buildInfoMagic` in `debug/buildinfo`.
const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// The header is 32 bytes and 16-byte aligned (`buildInfoHeaderSize`, `buildInfoAlign`).
const HEADER_LEN: usize = 32;
const HEADER_ALIGN: u64 = 16;
/// Flags byte (offset 15) bit 1: strings are inline after the header (Go 1.18+).
const FLAG_INLINE_STRINGS: u8 = 0b10;
/// The module information is framed by two 16-byte sentinels (`modload.infoStart`/`infoEnd`).
const SENTINEL_LEN: usize = 16;

/// Reads the build information of a Go executable.
///
/// Returns `Ok(None)` when `bytes` is not an ELF, PE or Mach-O file, or is one without the
/// build-information magic (not a Go program, or one older than Go 1.13). A file that has
/// the magic but inconsistent contents gives an error.
pub fn read_go_buildinfo(bytes: &[u8]) -> Result<Option<GoBuildInfo>, BinaryError> {
    let Some(format) = executable_format(bytes) else {
        return Ok(None);
    };
    let file =
        object::File::parse(bytes).map_err(|source| BinaryError::Malformed { format, source })?;
    let Some(region) = data_region(&file, format) else {
        return Ok(None);
    };
    let Some(header) = find_header(&file, region)? else {
        return Ok(None);
    };
    let raw = read_raw_strings(&file, &header)?;
    if raw.go_version.is_empty() {
        return Err(BinaryError::EmptyGoVersion {
            address: header.address,
        });
    }
    let go_version = String::from_utf8(raw.go_version.to_vec())
        .map_err(|_| BinaryError::NotUtf8 { what: "Go version" })?;
    let module_info = std::str::from_utf8(strip_sentinels(raw.module_info)).map_err(|_| {
        BinaryError::NotUtf8 {
            what: "Go module information",
        }
    })?;
    let mut info = parse_module_info(module_info)?;
    info.go_version = go_version;
    Ok(Some(info))
}

/// A virtual address range to search for the header.
#[derive(Debug, Clone, Copy)]
struct Region {
    address: u64,
    size: u64,
    /// Whether the range is the dedicated build-information section. Only then is a range
    /// without file data an error; a first writable segment without any (all `.bss`) just
    /// means the file is not a Go program.
    dedicated: bool,
}

/// Where the linker puts the header: `DataStart` of each format in `debug/buildinfo`.
fn data_region(file: &object::File<'_>, format: ExecutableFormat) -> Option<Region> {
    let named_section = match format {
        ExecutableFormat::Elf => Some(".go.buildinfo"),
        ExecutableFormat::MachO => Some("__go_buildinfo"),
        ExecutableFormat::Pe => None,
    };
    if let Some(section) = named_section.and_then(|name| file.section_by_name(name)) {
        return Some(Region {
            address: section.address(),
            size: section.size(),
            dedicated: true,
        });
    }
    file.segments()
        .find(|segment| holds_writable_data(file, segment))
        .map(|segment| Region {
            address: segment.address(),
            size: segment.size(),
            dedicated: false,
        })
}

/// The first-writable-data rule of `DataStart`, per format.
fn holds_writable_data(file: &object::File<'_>, segment: &object::Segment<'_, '_>) -> bool {
    use object::{elf, macho, pe};
    match segment.flags() {
        // ELF: a PT_LOAD segment (the only kind `segments()` yields) that is writable and
        // not executable: `p.Flags&(elf.PF_X|elf.PF_W) == elf.PF_W`.
        SegmentFlags::Elf { p_flags, .. } => p_flags.0 & (elf::PF_X.0 | elf::PF_W.0) == elf::PF_W.0,
        // PE: "Assume data is first writable section": initialized, readable, writable data
        // and nothing else apart from the 32-byte alignment bits.
        SegmentFlags::Coff { characteristics } => {
            let wanted = pe::IMAGE_SCN_CNT_INITIALIZED_DATA.0
                | pe::IMAGE_SCN_MEM_READ.0
                | pe::IMAGE_SCN_MEM_WRITE.0;
            let virtual_address = segment.address().wrapping_sub(file.relative_address_base());
            virtual_address != 0
                && segment.size() != 0
                && characteristics.0 & !pe::IMAGE_SCN_ALIGN_32BYTES.0 == wanted
        }
        // Mach-O: "the first non-empty writable segment", with read+write protections.
        SegmentFlags::MachO {
            maxprot, initprot, ..
        } => {
            let read_write = macho::VM_PROT_READ.0 | macho::VM_PROT_WRITE.0;
            segment.address() != 0
                && segment.file_range().1 != 0
                && initprot.0 == read_write
                && maxprot.0 == read_write
        }
        _ => false,
    }
}

/// The file bytes from virtual address `address` to the end of the file data of the segment
/// that contains it.
fn mapped_from<'data>(file: &object::File<'data>, address: u64) -> Option<&'data [u8]> {
    file.segments().find_map(|segment| {
        let data = segment.data().ok()?;
        let offset = address.checked_sub(segment.address())?;
        let offset = usize::try_from(offset).ok()?;
        data.get(offset..).filter(|rest| !rest.is_empty())
    })
}

/// The located header: its address and the mapped bytes from there on.
struct Header<'data> {
    address: u64,
    bytes: &'data [u8],
}

/// Scans the region at 16-byte-aligned addresses for the magic (`searchMagic`).
fn find_header<'data>(
    file: &object::File<'data>,
    region: Region,
) -> Result<Option<Header<'data>>, BinaryError> {
    let Some(start) = region
        .address
        .checked_next_multiple_of(HEADER_ALIGN)
        .filter(|start| *start < region.address.saturating_add(region.size))
    else {
        return Ok(None);
    };
    let searchable = region.size - (start - region.address);
    let Some(mapped) = mapped_from(file, start) else {
        return if region.dedicated {
            Err(BinaryError::UnmappedAddress { address: start })
        } else {
            Ok(None)
        };
    };
    let window =
        usize::try_from(searchable).map_or(mapped, |size| &mapped[..size.min(mapped.len())]);
    for offset in (0..window.len()).step_by(HEADER_ALIGN as usize) {
        let candidate = &window[offset..];
        if !candidate.starts_with(MAGIC) {
            continue;
        }
        let address = start.saturating_add(offset as u64);
        // Strings may extend past the searched region, so keep all mapped bytes.
        let bytes = &mapped[offset..];
        if bytes.len() < HEADER_LEN {
            return Err(BinaryError::TruncatedGoHeader {
                address,
                available: bytes.len(),
            });
        }
        return Ok(Some(Header { address, bytes }));
    }
    Ok(None)
}

/// The version and framed module-information strings, still as bytes.
struct RawStrings<'data> {
    go_version: &'data [u8],
    module_info: &'data [u8],
}

fn read_raw_strings<'data>(
    file: &object::File<'data>,
    header: &Header<'data>,
) -> Result<RawStrings<'data>, BinaryError> {
    let pointer_size = header.bytes[14];
    let flags = header.bytes[15];
    if flags & FLAG_INLINE_STRINGS != 0 {
        // Addresses here only label errors, so saturating arithmetic is enough.
        let first = header.address.saturating_add(HEADER_LEN as u64);
        let (go_version, rest) = varint_string(&header.bytes[HEADER_LEN..], first)?;
        let second = first.saturating_add((header.bytes.len() - HEADER_LEN - rest.len()) as u64);
        let (module_info, _) = varint_string(rest, second)?;
        return Ok(RawStrings {
            go_version,
            module_info,
        });
    }
    let pointers = Pointers::new(header, pointer_size, flags != 0)?;
    Ok(RawStrings {
        go_version: pointers.go_string(file, pointers.read(&header.bytes[16..]))?,
        module_info: pointers
            .go_string(file, pointers.read(&header.bytes[16 + pointers.size..]))?,
    })
}

/// Splits `data` into a varint-length-prefixed string and what follows it
/// (`decodeString`). `address` is where `data` starts, for error messages.
fn varint_string(data: &[u8], address: u64) -> Result<(&[u8], &[u8]), BinaryError> {
    let (length, prefix) = uvarint(data).ok_or(BinaryError::BadVarint { address })?;
    let rest = &data[prefix..];
    let out_of_bounds = BinaryError::StringOutOfBounds {
        address,
        length,
        available: rest.len(),
    };
    let length = usize::try_from(length).map_err(|_| out_of_bounds)?;
    if length > rest.len() {
        return Err(BinaryError::StringOutOfBounds {
            address,
            length: length as u64,
            available: rest.len(),
        });
    }
    Ok(rest.split_at(length))
}

/// Decodes an unsigned LEB128 varint as `encoding/binary.Uvarint` does: at most ten bytes,
/// and the tenth may only contribute the top bit. Returns the value and the bytes used.
fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, byte) in data.iter().take(10).enumerate() {
        let low = u64::from(byte & 0x7f);
        if index == 9 && *byte > 1 {
            return None;
        }
        value |= low << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Pointer decoding for the Go 1.13–1.17 header.
struct Pointers {
    size: usize,
    big_endian: bool,
}

impl Pointers {
    fn new(header: &Header<'_>, size: u8, big_endian: bool) -> Result<Self, BinaryError> {
        match size {
            4 | 8 => Ok(Self {
                size: usize::from(size),
                big_endian,
            }),
            _ => Err(BinaryError::BadPointerSize {
                address: header.address,
                size,
            }),
        }
    }

    /// Reads one pointer from the start of `bytes`, which callers guarantee holds at least
    /// `self.size` bytes (the header is 32 bytes; string headers are length-checked).
    fn read(&self, bytes: &[u8]) -> u64 {
        let mut buffer = [0u8; 8];
        let source = bytes.get(..self.size).unwrap_or_default();
        if self.big_endian {
            buffer[8 - source.len()..].copy_from_slice(source);
            u64::from_be_bytes(buffer)
        } else {
            buffer[..source.len()].copy_from_slice(source);
            u64::from_le_bytes(buffer)
        }
    }

    /// Resolves a Go string header `{data, len}` at `address` (`readString`).
    fn go_string<'data>(
        &self,
        file: &object::File<'data>,
        address: u64,
    ) -> Result<&'data [u8], BinaryError> {
        let header = mapped_from(file, address)
            .filter(|header| header.len() >= 2 * self.size)
            .ok_or(BinaryError::UnmappedAddress { address })?;
        let data_address = self.read(header);
        let length = self.read(&header[self.size..]);
        if length == 0 {
            return Ok(&[]);
        }
        let data = mapped_from(file, data_address).ok_or(BinaryError::UnmappedAddress {
            address: data_address,
        })?;
        usize::try_from(length)
            .ok()
            .and_then(|length| data.get(..length))
            .ok_or(BinaryError::StringOutOfBounds {
                address: data_address,
                length,
                available: data.len(),
            })
    }
}

/// Removes the sentinels around the module information, or yields nothing when the framing
/// is absent (binaries built outside module mode): "`len(mod) >= 33 && mod[len(mod)-17] ==
/// '\n'`" in `readRawBuildInfo`.
fn strip_sentinels(module_info: &[u8]) -> &[u8] {
    let length = module_info.len();
    if length > 2 * SENTINEL_LEN && module_info[length - SENTINEL_LEN - 1] == b'\n' {
        &module_info[SENTINEL_LEN..length - SENTINEL_LEN]
    } else {
        &[]
    }
}

/// Which module the next `=>` line replaces.
#[derive(Clone, Copy)]
enum Replaceable {
    Main,
    Dep(usize),
}

/// Parses the module information text the way `runtime/debug.ParseBuildInfo` does: lines are
/// `path\t…`, `mod\t…`, `dep\t…`, `=>\t…` (replacing the module on the previous line) and
/// `build\tkey=value`; other lines are ignored, and so is a last line without a newline.
fn parse_module_info(text: &str) -> Result<GoBuildInfo, BinaryError> {
    let mut info = GoBuildInfo {
        go_version: String::new(),
        path: String::new(),
        main: GoModule::default(),
        deps: Vec::new(),
        settings: Vec::new(),
    };
    let mut last: Option<Replaceable> = None;
    let mut remaining = text;
    let mut line_number = 0;
    while let Some((line, rest)) = remaining.split_once('\n') {
        remaining = rest;
        line_number += 1;
        let error = |reason| BinaryError::ModuleInfo {
            line: line_number,
            reason,
        };
        if let Some(path) = line.strip_prefix("path\t") {
            path.clone_into(&mut info.path);
        } else if let Some(module) = line.strip_prefix("mod\t") {
            info.main = module_line(module).ok_or(error("expected 2 or 3 columns"))?;
            last = Some(Replaceable::Main);
        } else if let Some(module) = line.strip_prefix("dep\t") {
            info.deps
                .push(module_line(module).ok_or(error("expected 2 or 3 columns"))?);
            last = Some(Replaceable::Dep(info.deps.len() - 1));
        } else if let Some(replacement) = line.strip_prefix("=>\t") {
            let replacement =
                replacement_line(replacement).ok_or(error("expected 3 columns for replacement"))?;
            let target = match last.take() {
                Some(Replaceable::Main) => Some(&mut info.main),
                Some(Replaceable::Dep(index)) => info.deps.get_mut(index),
                None => None,
            }
            .ok_or(error("replacement with no module on previous line"))?;
            target.replace = Some(Box::new(replacement));
        } else if let Some(setting) = line.strip_prefix("build\t") {
            info.settings.push(build_setting(setting).map_err(error)?);
        }
    }
    Ok(info)
}

/// `path\tversion[\tsum]`.
fn module_line(columns: &str) -> Option<GoModule> {
    let mut fields = columns.split('\t');
    let path = fields.next()?;
    let version = fields.next()?;
    let sum = fields.next();
    if fields.next().is_some() {
        return None;
    }
    Some(module(path, version, sum))
}

/// `path\tversion\tsum`, exactly three columns (the sum may be empty).
fn replacement_line(columns: &str) -> Option<GoModule> {
    let fields: Vec<&str> = columns.splitn(4, '\t').collect();
    match fields[..] {
        [path, version, sum] => Some(module(path, version, Some(sum))),
        _ => None,
    }
}

fn module(path: &str, version: &str, sum: Option<&str>) -> GoModule {
    GoModule {
        path: path.to_owned(),
        version: version.to_owned(),
        sum: sum.filter(|sum| !sum.is_empty()).map(str::to_owned),
        replace: None,
    }
}

/// Characters that force Go to quote a setting key (`quoteKey`) or value (`quoteValue`).
const KEY_NEEDS_QUOTES: [char; 7] = ['=', ' ', '\t', '\r', '\n', '"', '`'];
const VALUE_NEEDS_QUOTES: [char; 6] = [' ', '\t', '\r', '\n', '"', '`'];

/// Parses `key=value` of a `build` line, either side possibly a Go quoted string.
fn build_setting(setting: &str) -> Result<(String, String), &'static str> {
    let (key, raw_value) = match setting.as_bytes().first() {
        None => return Err("build line missing '='"),
        Some(b'=') => return Err("build line with missing key"),
        Some(b'"' | b'`') => {
            let quoted = quoted_prefix_len(setting).ok_or("invalid quoted key in build line")?;
            let (raw_key, rest) = setting.split_at(quoted);
            let value = rest
                .strip_prefix('=')
                .ok_or("build line missing '=' after quoted key")?;
            let key = go_unquote(raw_key).ok_or("invalid quoted key in build line")?;
            (key, value)
        }
        Some(_) => {
            let (key, value) = setting
                .split_once('=')
                .ok_or("build line missing '=' after key")?;
            if key.contains(KEY_NEEDS_QUOTES) {
                return Err("unquoted key must be quoted");
            }
            (key.to_owned(), value)
        }
    };
    let value = match raw_value.as_bytes().first() {
        Some(b'"' | b'`') => go_unquote(raw_value).ok_or("invalid quoted value in build line")?,
        _ if raw_value.contains(VALUE_NEEDS_QUOTES) => {
            return Err("unquoted value must be quoted");
        }
        _ => raw_value.to_owned(),
    };
    Ok((key, value))
}

/// The length of the Go quoted string at the start of `text` (`strconv.QuotedPrefix`).
fn quoted_prefix_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b'`' => bytes[1..]
            .iter()
            .position(|byte| *byte == b'`')
            .map(|end| end + 2),
        b'"' => {
            let mut index = 1;
            while let Some(byte) = bytes.get(index) {
                match byte {
                    b'"' => return Some(index + 1),
                    b'\n' => return None,
                    b'\\' => index += 2,
                    _ => index += 1,
                }
            }
            None
        }
        _ => None,
    }
}

/// Decodes a complete Go string literal (`strconv.Unquote`) in backquotes or double quotes.
/// Bytes from `\x`/octal escapes that do not form UTF-8 are replaced by U+FFFD.
fn go_unquote(literal: &str) -> Option<String> {
    if let Some(raw) = literal
        .strip_prefix('`')
        .and_then(|rest| rest.strip_suffix('`'))
    {
        // "Carriage return characters ('\r') inside raw string literals are discarded."
        return (!raw.contains('`')).then(|| raw.replace('\r', ""));
    }
    let body = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => unescape(&mut chars, &mut out)?,
            _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Decodes one escape sequence after a backslash, as allowed in a double-quoted Go string.
fn unescape(chars: &mut std::str::Chars<'_>, out: &mut Vec<u8>) -> Option<()> {
    let simple = |byte: u8, out: &mut Vec<u8>| {
        out.push(byte);
        Some(())
    };
    match chars.next()? {
        'a' => simple(0x07, out),
        'b' => simple(0x08, out),
        'f' => simple(0x0c, out),
        'n' => simple(b'\n', out),
        'r' => simple(b'\r', out),
        't' => simple(b'\t', out),
        'v' => simple(0x0b, out),
        '\\' => simple(b'\\', out),
        '"' => simple(b'"', out),
        'x' => simple(u8::try_from(hex_digits(chars, 2)?).ok()?, out),
        'u' => push_char(char::from_u32(hex_digits(chars, 4)?)?, out),
        'U' => push_char(char::from_u32(hex_digits(chars, 8)?)?, out),
        first @ '0'..='7' => {
            let mut value = first.to_digit(8)?;
            for _ in 0..2 {
                value = value * 8 + chars.next()?.to_digit(8)?;
            }
            simple(u8::try_from(value).ok()?, out)
        }
        _ => None,
    }
}

fn push_char(c: char, out: &mut Vec<u8>) -> Option<()> {
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    Some(())
}

fn hex_digits(chars: &mut std::str::Chars<'_>, count: usize) -> Option<u32> {
    (0..count).try_fold(0u32, |value, _| {
        Some(value * 16 + chars.next()?.to_digit(16)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_matches_go_encoding() {
        assert_eq!(uvarint(&[0x08]), Some((8, 1)));
        assert_eq!(uvarint(&[0xbe, 0x01]), Some((190, 2)));
        assert_eq!(uvarint(&[0x80]), None, "unterminated");
        assert_eq!(uvarint(&[0xff; 10]), None, "overflows 64 bits");
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uvarint(&max), Some((u64::MAX, 10)));
    }

    #[test]
    fn settings_follow_go_quoting() {
        assert_eq!(
            build_setting("GOOS=linux"),
            Ok(("GOOS".to_owned(), "linux".to_owned()))
        );
        assert_eq!(
            build_setting(r#"-ldflags="-s -w -X main.version=1.0""#),
            Ok((
                "-ldflags".to_owned(),
                "-s -w -X main.version=1.0".to_owned()
            ))
        );
        assert_eq!(
            build_setting(r#""a key"=`raw "v"`"#),
            Ok(("a key".to_owned(), r#"raw "v""#.to_owned()))
        );
        assert_eq!(
            build_setting(r#"k="tab\there \u00e9 \x41\101""#),
            Ok(("k".to_owned(), "tab\there é AA".to_owned()))
        );
        assert_eq!(
            build_setting("CGO_CFLAGS="),
            Ok(("CGO_CFLAGS".to_owned(), String::new()))
        );
        assert!(build_setting("k=two words").is_err());
        assert!(build_setting("=v").is_err());
        assert!(build_setting("novalue").is_err());
        assert!(build_setting(r#""k"v"#).is_err());
        assert!(build_setting(r#"k="bad \q""#).is_err());
        assert!(build_setting(r#"k="unterminated"#).is_err());
    }

    #[test]
    fn replacement_needs_a_module_line_before_it() {
        let error = parse_module_info("path\tx\n=>\ta\tv1\t\n").unwrap_err();
        assert!(
            matches!(error, BinaryError::ModuleInfo { line: 2, .. }),
            "{error}"
        );
        let error = parse_module_info("dep\ta\tv1\n=>\tb\tv2\t\n=>\tc\tv3\t\n").unwrap_err();
        assert!(
            matches!(error, BinaryError::ModuleInfo { line: 3, .. }),
            "{error}"
        );
    }

    #[test]
    fn module_lines_are_parsed_with_replacements() {
        let info = parse_module_info(
            "path\tex.com/cmd\nmod\tex.com\t(devel)\t\ndep\ta.com/x\tv1.0.0\th1:abc=\n\
             dep\tb.com/y\tv2.0.0\n=>\t../y\t\t\nunknown line\nbuild\tGOOS=linux\ntrailing",
        )
        .unwrap();
        assert_eq!(info.path, "ex.com/cmd");
        assert_eq!(info.main, module("ex.com", "(devel)", None));
        assert_eq!(info.deps[0], module("a.com/x", "v1.0.0", Some("h1:abc=")));
        let mut replaced = module("b.com/y", "v2.0.0", None);
        replaced.replace = Some(Box::new(module("../y", "", None)));
        assert_eq!(info.deps[1], replaced);
        assert_eq!(info.settings, vec![("GOOS".to_owned(), "linux".to_owned())]);
        assert!(parse_module_info("dep\tonly-one-column\n").is_err());
        assert!(parse_module_info("dep\ta\tb\tc\td\n").is_err());
    }
}
