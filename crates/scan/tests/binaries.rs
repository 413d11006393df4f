//! Tests for the readers of packages recorded inside files: Go build information, the
//! cargo-auditable `.dep-v0` section, and Java archives. Real binaries and jars come from
//! `tests/fixtures/binaries/` (see its SOURCES.md); hostile variants are derived from them or
//! built here.

use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::ZlibEncoder;
use object::{Object, ObjectSection};
use proptest::prelude::*;
use scan::binary::auditable::{CrateDep, read_auditable};
use scan::binary::go::{GoBuildInfo, GoModule, read_go_buildinfo};
use scan::binary::{BinaryError, ExecutableFormat, executable_format};
use scan::java::{JavaError, JavaEvidence, JavaLimits, JavaPackage, read_java_archive};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/binaries")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// The Go fixtures are stored gzip-compressed to keep the fixture folder small.
fn gunzipped_fixture(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(fixture(name).as_slice())
        .read_to_end(&mut out)
        .expect("fixture is valid gzip");
    out
}

fn go_linux() -> Vec<u8> {
    gunzipped_fixture("go-hello-linux-amd64.gz")
}

// ---------------------------------------------------------------------------------------------
// Magic bytes

#[test]
fn executable_format_recognizes_real_files() {
    assert_eq!(executable_format(&go_linux()), Some(ExecutableFormat::Elf));
    let pe = gunzipped_fixture("go-hello-windows-amd64.exe.gz");
    assert_eq!(executable_format(&pe), Some(ExecutableFormat::Pe));
    let macho = gunzipped_fixture("go-hello-darwin-amd64.gz");
    assert_eq!(executable_format(&macho), Some(ExecutableFormat::MachO));
    assert_eq!(executable_format(&fixture("commons-text.jar")), None);
    // Prefixes: four bytes decide ELF and Mach-O; a short MZ head is accepted.
    assert_eq!(executable_format(b"\x7fELF"), Some(ExecutableFormat::Elf));
    assert_eq!(
        executable_format(&[0xcf, 0xfa, 0xed, 0xfe]),
        Some(ExecutableFormat::MachO)
    );
    assert_eq!(
        executable_format(&[0xfe, 0xed, 0xfa, 0xce]),
        Some(ExecutableFormat::MachO)
    );
    assert_eq!(executable_format(b"MZ"), Some(ExecutableFormat::Pe));
    assert_eq!(executable_format(b""), None);
    assert_eq!(executable_format(b"\x7fEL"), None);
    // A Java class file shares the Mach-O universal magic; neither is reported.
    assert_eq!(
        executable_format(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
        None
    );
}

#[test]
fn executable_format_rejects_dos_programs_without_pe_signature() {
    let mut dos = vec![0u8; 0x100];
    dos[..2].copy_from_slice(b"MZ");
    dos[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    assert_eq!(executable_format(&dos), None);
    dos[0x80..0x84].copy_from_slice(b"PE\0\0");
    assert_eq!(executable_format(&dos), Some(ExecutableFormat::Pe));
    // e_lfanew pointing far beyond the head: cannot be checked, so accepted.
    dos[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(executable_format(&dos), Some(ExecutableFormat::Pe));
}

// ---------------------------------------------------------------------------------------------
// Go build information: real binaries

fn module(path: &str, version: &str, sum: Option<&str>) -> GoModule {
    GoModule {
        path: path.to_owned(),
        version: version.to_owned(),
        sum: sum.map(str::to_owned),
        replace: None,
    }
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

/// `go version -m` of the fixtures built from the program in SOURCES.md.
fn hello_build_info(goos: &str) -> GoBuildInfo {
    let mut shout = module("example.com/shout", "v1.0.0", None);
    shout.replace = Some(Box::new(module("./shout", "(devel)", None)));
    GoBuildInfo {
        go_version: "go1.19.8".to_owned(),
        path: "example.com/hello".to_owned(),
        main: module("example.com/hello", "(devel)", None),
        deps: vec![
            module(
                "example.com/greet",
                "v0.1.0",
                Some("h1:d6o8druantZDlNrCRNGbGnaiyRFkBPJEDaJe/tKGYd8="),
            ),
            shout,
        ],
        settings: settings(&[
            ("-compiler", "gc"),
            ("-trimpath", "true"),
            ("CGO_ENABLED", "0"),
            ("GOARCH", "amd64"),
            ("GOOS", goos),
            ("GOAMD64", "v1"),
        ]),
    }
}

#[test]
fn go_elf_fixture_reads_exactly() {
    let info = read_go_buildinfo(&go_linux()).unwrap();
    assert_eq!(info, Some(hello_build_info("linux")));
}

#[test]
fn go_pe_fixture_reads_exactly() {
    let pe = gunzipped_fixture("go-hello-windows-amd64.exe.gz");
    assert_eq!(
        read_go_buildinfo(&pe).unwrap(),
        Some(hello_build_info("windows"))
    );
}

#[test]
fn go_macho_fixture_reads_exactly() {
    let macho = gunzipped_fixture("go-hello-darwin-amd64.gz");
    assert_eq!(
        read_go_buildinfo(&macho).unwrap(),
        Some(hello_build_info("darwin"))
    );
}

/// Debian's skopeo (package `skopeo`, needed by this test) is a Go program built in GOPATH
/// mode: it records its package path and settings but no modules.
#[test]
fn go_system_skopeo_reads_package_path_and_settings() {
    let path = "/usr/bin/skopeo";
    let bytes = std::fs::read(path).unwrap_or_else(|error| {
        panic!("{path} is needed by this test (apt-get install skopeo): {error}")
    });
    let info = read_go_buildinfo(&bytes)
        .unwrap()
        .expect("skopeo is a Go program");
    assert!(info.go_version.starts_with("go1."), "{}", info.go_version);
    assert_eq!(info.path, "github.com/containers/skopeo/cmd/skopeo");
    assert_eq!(info.main, GoModule::default());
    assert!(info.deps.is_empty(), "{:?}", info.deps);
    for expected in [("-compiler", "gc"), ("GOOS", "linux"), ("CGO_ENABLED", "1")] {
        let expected = (expected.0.to_owned(), expected.1.to_owned());
        assert!(info.settings.contains(&expected), "{:?}", info.settings);
    }
}

#[test]
fn go_reader_ignores_files_that_are_not_go_programs() {
    assert_eq!(
        read_go_buildinfo(&fixture("auditable-tiny-time")).unwrap(),
        None
    );
    assert_eq!(
        read_go_buildinfo(&fixture("commons-text.jar")).unwrap(),
        None
    );
    assert_eq!(read_go_buildinfo(b"").unwrap(), None);
    assert_eq!(read_go_buildinfo(b"#!/bin/sh\necho hi\n").unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Go build information: the Go 1.13–1.17 pointer layout, in hand-built ELF files

/// Sentinels that frame the module information (`modload.infoStart`, `infoEnd`).
const INFO_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];
const INFO_END: [u8; 16] = [
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
];

fn framed(text: &str) -> Vec<u8> {
    [&INFO_START[..], text.as_bytes(), &INFO_END[..]].concat()
}

/// File layout of [`pointer_format_elf`]: one read-write PT_LOAD maps the whole file at
/// `BASE`; the build-information header sits at `HEADER`, followed by the two Go string
/// headers and the string bytes.
const BASE: u64 = 0x10000;
const HEADER: usize = 0x100;

struct ElfWriter {
    wide: bool,
    big_endian: bool,
    out: Vec<u8>,
}

impl ElfWriter {
    fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    fn u16(&mut self, value: u16) {
        let bytes = if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        self.bytes(&bytes);
    }
    fn u32(&mut self, value: u32) {
        let bytes = if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        self.bytes(&bytes);
    }
    fn u64(&mut self, value: u64) {
        let bytes = if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        self.bytes(&bytes);
    }
    /// An address or offset: 8 bytes in ELF64, 4 in ELF32.
    fn word(&mut self, value: u64) {
        if self.wide {
            self.u64(value);
        } else {
            self.u32(u32::try_from(value).unwrap());
        }
    }
    fn pad_to(&mut self, offset: usize) {
        assert!(self.out.len() <= offset);
        self.out.resize(offset, 0);
    }
}

/// Builds an ELF executable holding a Go 1.13–1.17 style build-information header. The
/// pointer size follows the ELF class; `with_sections` adds a `.go.buildinfo` section header,
/// otherwise the reader must fall back to the first writable segment.
fn pointer_format_elf(
    wide: bool,
    big_endian: bool,
    with_sections: bool,
    version: &[u8],
    modinfo: &[u8],
) -> Vec<u8> {
    let pointer = if wide { 8u64 } else { 4 };
    let mut w = ElfWriter {
        wide,
        big_endian,
        out: Vec::new(),
    };
    let version_header = HEADER as u64 + 32;
    let modinfo_header = version_header + 2 * pointer;
    let version_data = modinfo_header + 2 * pointer;
    let modinfo_data = version_data + version.len() as u64;
    let strtab_offset = (modinfo_data as usize + modinfo.len()).next_multiple_of(8);
    let strtab = b"\0.go.buildinfo\0.shstrtab\0";
    let section_headers = (strtab_offset + strtab.len()).next_multiple_of(8);
    let (section_count, section_header_size) = match (with_sections, wide) {
        (false, _) => (0u16, 0usize),
        (true, true) => (3, 64),
        (true, false) => (3, 40),
    };
    let file_len = (section_headers + usize::from(section_count) * section_header_size) as u64;

    // ELF header.
    w.bytes(b"\x7fELF");
    w.bytes(&[if wide { 2 } else { 1 }, if big_endian { 2 } else { 1 }, 1]);
    w.pad_to(16);
    w.u16(2); // ET_EXEC
    w.u16(if wide { 62 } else { 8 }); // EM_X86_64 or EM_MIPS
    w.u32(1);
    w.word(BASE); // entry
    let program_headers = if wide { 64 } else { 52 };
    w.word(program_headers);
    w.word(if with_sections {
        section_headers as u64
    } else {
        0
    });
    w.u32(0);
    w.u16(program_headers as u16);
    w.u16(if wide { 56 } else { 32 });
    w.u16(1);
    w.u16(section_header_size as u16);
    w.u16(section_count);
    w.u16(if with_sections { 2 } else { 0 });
    // One PT_LOAD, read+write, mapping the whole file.
    w.u32(1);
    if wide {
        w.u32(6);
    }
    w.word(0);
    w.word(BASE);
    w.word(BASE);
    w.word(file_len);
    w.word(file_len);
    if !wide {
        w.u32(6);
    }
    w.word(0x1000);
    // Build-information header with pointers to the two string headers.
    w.pad_to(HEADER);
    w.bytes(b"\xff Go buildinf:");
    w.bytes(&[pointer as u8, u8::from(big_endian)]);
    w.word(BASE + version_header);
    w.word(BASE + modinfo_header);
    w.pad_to(HEADER + 32);
    w.word(BASE + version_data);
    w.word(version.len() as u64);
    w.word(if modinfo.is_empty() {
        0
    } else {
        BASE + modinfo_data
    });
    w.word(modinfo.len() as u64);
    w.bytes(version);
    w.bytes(modinfo);
    w.pad_to(strtab_offset);
    w.bytes(strtab);
    w.pad_to(section_headers);
    if with_sections {
        let section = |w: &mut ElfWriter,
                       name: u32,
                       kind: u32,
                       flags: u64,
                       addr: u64,
                       offset: u64,
                       size: u64| {
            w.u32(name);
            w.u32(kind);
            w.word(flags);
            w.word(addr);
            w.word(offset);
            w.word(size);
            w.u32(0);
            w.u32(0);
            w.word(1);
            w.word(0);
        };
        section(&mut w, 0, 0, 0, 0, 0, 0);
        let buildinfo_size = strtab_offset as u64 - HEADER as u64;
        section(
            &mut w,
            1,
            1,
            3,
            BASE + HEADER as u64,
            HEADER as u64,
            buildinfo_size,
        );
        section(
            &mut w,
            15,
            3,
            0,
            0,
            strtab_offset as u64,
            strtab.len() as u64,
        );
    }
    assert_eq!(w.out.len() as u64, file_len);
    w.out
}

const OLD_MODINFO: &str = "path\texample.org/tool\nmod\texample.org/tool\tv1.4.0\th1:AAAA=\n\
    dep\tgolang.org/x/sys\tv0.0.0-20210630005230-0f9fa26af87c\th1:BBBB=\n\
    =>\tgolang.org/x/sys\tv0.1.0\th1:CCCC=\n";

fn old_build_info() -> GoBuildInfo {
    let mut sys = module(
        "golang.org/x/sys",
        "v0.0.0-20210630005230-0f9fa26af87c",
        Some("h1:BBBB="),
    );
    sys.replace = Some(Box::new(module(
        "golang.org/x/sys",
        "v0.1.0",
        Some("h1:CCCC="),
    )));
    GoBuildInfo {
        go_version: "go1.16.15".to_owned(),
        path: "example.org/tool".to_owned(),
        main: module("example.org/tool", "v1.4.0", Some("h1:AAAA=")),
        deps: vec![sys],
        settings: Vec::new(),
    }
}

#[test]
fn go_pointer_format_reads_in_every_class_and_byte_order() {
    for (wide, big_endian, with_sections) in [
        (true, false, true),
        (true, false, false),
        (false, true, true),
        (false, true, false),
        (true, true, true),
        (false, false, false),
    ] {
        let elf = pointer_format_elf(
            wide,
            big_endian,
            with_sections,
            b"go1.16.15",
            &framed(OLD_MODINFO),
        );
        let info = read_go_buildinfo(&elf).unwrap_or_else(|error| {
            panic!("wide={wide} big_endian={big_endian} sections={with_sections}: {error}")
        });
        assert_eq!(
            info,
            Some(old_build_info()),
            "wide={wide} big_endian={big_endian}"
        );
    }
}

#[test]
fn go_pointer_format_without_modules_has_empty_main_module() {
    let elf = pointer_format_elf(true, false, true, b"go1.13", b"");
    let info = read_go_buildinfo(&elf).unwrap().unwrap();
    assert_eq!(info.go_version, "go1.13");
    assert_eq!(info.path, "");
    assert_eq!(info.main, GoModule::default());
    // Module text without its sentinel framing is ignored, as Go does.
    let elf = pointer_format_elf(true, false, true, b"go1.13", OLD_MODINFO.as_bytes());
    assert_eq!(read_go_buildinfo(&elf).unwrap().unwrap().path, "");
}

fn write_word(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn go_pointer_format_rejects_bad_pointers_and_sizes() {
    let valid = pointer_format_elf(true, false, true, b"go1.16.15", &framed(OLD_MODINFO));

    let mut bad_size = valid.clone();
    bad_size[HEADER + 14] = 3;
    let error = read_go_buildinfo(&bad_size).unwrap_err();
    assert!(
        matches!(error, BinaryError::BadPointerSize { size: 3, .. }),
        "{error}"
    );

    let mut unmapped = valid.clone();
    write_word(&mut unmapped, HEADER + 16, 0xdead_0000);
    let error = read_go_buildinfo(&unmapped).unwrap_err();
    assert!(
        matches!(
            error,
            BinaryError::UnmappedAddress {
                address: 0xdead_0000
            }
        ),
        "{error}"
    );

    // The version string header claims far more bytes than the file holds.
    let mut too_long = valid.clone();
    write_word(&mut too_long, HEADER + 32 + 8, u64::MAX);
    let error = read_go_buildinfo(&too_long).unwrap_err();
    assert!(
        matches!(
            error,
            BinaryError::StringOutOfBounds {
                length: u64::MAX,
                ..
            }
        ),
        "{error}"
    );

    // A zero-length version is not something Go writes.
    let mut empty_version = valid.clone();
    write_word(&mut empty_version, HEADER + 32 + 8, 0);
    let error = read_go_buildinfo(&empty_version).unwrap_err();
    assert!(
        matches!(error, BinaryError::EmptyGoVersion { .. }),
        "{error}"
    );

    let garbage = framed("dep\tonly-a-path\n");
    let elf = pointer_format_elf(true, false, true, b"go1.16", &garbage);
    let error = read_go_buildinfo(&elf).unwrap_err();
    assert!(
        matches!(error, BinaryError::ModuleInfo { line: 1, .. }),
        "{error}"
    );

    let elf = pointer_format_elf(true, false, true, b"go1.\xff", &framed(OLD_MODINFO));
    let error = read_go_buildinfo(&elf).unwrap_err();
    assert!(matches!(error, BinaryError::NotUtf8 { .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Go build information: damaged real binaries

/// File offset of the Go build-information header in the ELF fixture.
fn go_header_offset(elf: &[u8]) -> usize {
    let file = object::File::parse(elf).unwrap();
    let section = file.section_by_name(".go.buildinfo").unwrap();
    let offset = section.file_range().unwrap().0 as usize;
    assert_eq!(&elf[offset..offset + 14], b"\xff Go buildinf:");
    offset
}

/// File offset of the ELF64 section header for `name`.
fn elf64_section_header(elf: &[u8], name: &str) -> usize {
    let file = object::File::parse(elf).unwrap();
    let index = file.section_by_name(name).unwrap().index().0;
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap()) as usize;
    let shentsize = u16::from_le_bytes(elf[0x3a..0x3c].try_into().unwrap()) as usize;
    shoff + index * shentsize
}

#[test]
fn go_truncated_binaries_fail_or_yield_nothing() {
    let elf = go_linux();
    let header = go_header_offset(&elf);
    for length in [
        0,
        3,
        16,
        63,
        64,
        4096,
        header,
        header + 20,
        header + 40,
        elf.len() / 2,
    ] {
        let result = read_go_buildinfo(&elf[..length]);
        assert!(
            !matches!(result, Ok(Some(_))),
            "length {length}: {result:?}"
        );
    }
    assert!(matches!(
        read_go_buildinfo(&elf[..100]),
        Err(BinaryError::Malformed {
            format: ExecutableFormat::Elf,
            ..
        })
    ));
}

#[test]
fn go_corrupted_varints_are_rejected() {
    let mut elf = go_linux();
    let header = go_header_offset(&elf);
    // The version's length prefix: ten continuation bytes never terminate.
    elf[header + 32..header + 42].fill(0xff);
    let error = read_go_buildinfo(&elf).unwrap_err();
    assert!(matches!(error, BinaryError::BadVarint { .. }), "{error}");

    // A length prefix larger than the data that follows.
    let mut elf = go_linux();
    elf[header + 32..header + 36].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    let error = read_go_buildinfo(&elf).unwrap_err();
    assert!(
        matches!(
            error,
            BinaryError::StringOutOfBounds {
                length: 0x0fff_ffff,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn go_bogus_section_headers_are_bounded() {
    let elf = go_linux();
    let section_header = elf64_section_header(&elf, ".go.buildinfo");
    // sh_size (offset 32 in an ELF64 section header) far beyond the file: the search stays
    // within the mapped bytes and still finds the header.
    let mut huge = elf.clone();
    write_word(&mut huge, section_header + 32, u64::MAX - 0x1000);
    assert_eq!(
        read_go_buildinfo(&huge).unwrap(),
        Some(hello_build_info("linux"))
    );
    // sh_addr (offset 16) pointing at no segment.
    let mut unmapped = elf.clone();
    write_word(&mut unmapped, section_header + 16, 0x10);
    let error = read_go_buildinfo(&unmapped).unwrap_err();
    assert!(
        matches!(error, BinaryError::UnmappedAddress { address: 0x10 }),
        "{error}"
    );
    // A section that does not contain the magic: not a Go program.
    let mut elsewhere = elf.clone();
    write_word(&mut elsewhere, section_header + 16, 0x400000);
    write_word(&mut elsewhere, section_header + 32, 0x100);
    assert_eq!(read_go_buildinfo(&elsewhere).unwrap(), None);
    // sh_offset (offset 24) past the end of the file: addresses are resolved through the
    // program headers, as Go does, so the section's file offset is never used.
    let mut past_end = elf.clone();
    write_word(&mut past_end, section_header + 24, u64::MAX / 2);
    assert_eq!(
        read_go_buildinfo(&past_end).unwrap(),
        Some(hello_build_info("linux"))
    );
}

// ---------------------------------------------------------------------------------------------
// cargo-auditable

fn tiny_time_crates() -> Vec<CrateDep> {
    let dep = |name: &str, version: &str, source: &str, kind: Option<&str>, root: bool| CrateDep {
        name: name.to_owned(),
        version: version.to_owned(),
        source: Some(source.to_owned()),
        kind: kind.map(str::to_owned),
        root,
    };
    vec![
        dep("autocfg", "1.1.0", "crates.io", Some("build"), false),
        dep("libc", "0.2.191", "crates.io", None, false),
        dep("time", "0.1.44", "crates.io", None, false),
        dep("tiny-time", "0.1.0", "local", None, true),
    ]
}

#[test]
fn auditable_fixture_reads_exactly() {
    let crates = read_auditable(&fixture("auditable-tiny-time"), 1 << 20).unwrap();
    assert_eq!(crates, Some(tiny_time_crates()));
}

#[test]
fn auditable_reader_ignores_binaries_without_audit_data() {
    assert_eq!(read_auditable(&go_linux(), 1 << 20).unwrap(), None);
    let pe = gunzipped_fixture("go-hello-windows-amd64.exe.gz");
    assert_eq!(read_auditable(&pe, 1 << 20).unwrap(), None);
    assert_eq!(
        read_auditable(&fixture("commons-text.jar"), 1 << 20).unwrap(),
        None
    );
    assert_eq!(read_auditable(b"", 1 << 20).unwrap(), None);
}

#[test]
fn auditable_json_limit_is_enforced() {
    let binary = fixture("auditable-tiny-time");
    // 100 bytes: smaller than the compressed section (161 bytes), refused before inflating.
    // 200 and 318 bytes: the section fits but its 319 bytes of JSON do not.
    for limit in [100, 200, 318] {
        let error = read_auditable(&binary, limit).unwrap_err();
        assert!(
            matches!(error, BinaryError::AuditDataTooLarge { limit: l } if l == limit),
            "{error}"
        );
    }
    assert_eq!(
        read_auditable(&binary, 319).unwrap(),
        Some(tiny_time_crates())
    );
}

/// Offsets of the `.dep-v0` section's data and of its ELF64 section header.
fn dep_section(binary: &[u8]) -> (usize, usize, usize) {
    let file = object::File::parse(binary).unwrap();
    let section = file.section_by_name(".dep-v0").unwrap();
    let (offset, size) = section.file_range().unwrap();
    (
        offset as usize,
        size as usize,
        elf64_section_header(binary, ".dep-v0"),
    )
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Replaces the section's contents with `payload`, appended at the end of the file.
fn with_dep_payload(binary: &[u8], payload: &[u8]) -> Vec<u8> {
    let (_, _, header) = dep_section(binary);
    let mut patched = binary.to_vec();
    let offset = patched.len() as u64;
    patched.extend_from_slice(payload);
    write_word(&mut patched, header + 24, offset);
    write_word(&mut patched, header + 32, payload.len() as u64);
    patched
}

#[test]
fn auditable_bogus_section_sizes_fail() {
    let binary = fixture("auditable-tiny-time");
    let (_, _, header) = dep_section(&binary);
    for (field, value) in [
        (32, u64::MAX),
        (32, binary.len() as u64),
        (24, u64::MAX - 4),
        (24, binary.len() as u64 - 8),
    ] {
        let mut patched = binary.clone();
        write_word(&mut patched, header + field, value);
        let result = read_auditable(&patched, 1 << 20);
        assert!(result.is_err(), "field {field} = {value:#x}: {result:?}");
    }
}

#[test]
fn auditable_corrupt_data_fails() {
    let binary = fixture("auditable-tiny-time");
    let (offset, size, _) = dep_section(&binary);
    let mut corrupt = binary.clone();
    corrupt[offset + size / 2..offset + size].fill(0x55);
    let error = read_auditable(&corrupt, 1 << 20).unwrap_err();
    assert!(matches!(error, BinaryError::AuditData(_)), "{error}");

    let not_json = with_dep_payload(&binary, &zlib(br#"{"packages": 5}"#));
    let error = read_auditable(&not_json, 1 << 20).unwrap_err();
    assert!(matches!(error, BinaryError::AuditJson(_)), "{error}");

    let missing_version = with_dep_payload(&binary, &zlib(br#"{"packages":[{"name":"a"}]}"#));
    let error = read_auditable(&missing_version, 1 << 20).unwrap_err();
    assert!(matches!(error, BinaryError::AuditJson(_)), "{error}");
}

#[test]
fn auditable_compression_bomb_stops_at_the_limit() {
    let binary = fixture("auditable-tiny-time");
    // 64 MiB of spaces compress to about 64 KiB.
    let bomb = zlib(&vec![b' '; 64 << 20]);
    let patched = with_dep_payload(&binary, &bomb);
    let error = read_auditable(&patched, 1 << 20).unwrap_err();
    assert!(
        matches!(error, BinaryError::AuditDataTooLarge { limit: 1_048_576 }),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Java archives

fn zip_of(entries: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data, method) in entries {
        let options = SimpleFileOptions::default().compression_method(*method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn pom(group: &str, artifact: &str, version: &str) -> Vec<u8> {
    format!("#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n")
        .into_bytes()
}

fn pom_name(group: &str, artifact: &str) -> String {
    format!("META-INF/maven/{group}/{artifact}/pom.properties")
}

fn package(
    group: Option<&str>,
    artifact: &str,
    version: &str,
    path: &str,
    evidence: JavaEvidence,
) -> JavaPackage {
    JavaPackage {
        group_id: group.map(str::to_owned),
        artifact_id: artifact.to_owned(),
        version: version.to_owned(),
        path: path.to_owned(),
        evidence,
    }
}

const DEFLATED: CompressionMethod = CompressionMethod::Deflated;
const STORED: CompressionMethod = CompressionMethod::Stored;

#[test]
fn java_real_jar_reads_exactly() {
    let packages = read_java_archive(
        &fixture("commons-text.jar"),
        "usr/share/java/commons-text.jar",
        &JavaLimits::default(),
    )
    .unwrap();
    assert_eq!(
        packages,
        vec![package(
            Some("org.apache.commons"),
            "commons-text",
            "1.10.0",
            "usr/share/java/commons-text.jar",
            JavaEvidence::PomProperties
        )]
    );
}

#[test]
fn java_spring_boot_fat_jar_reads_nested_libraries() {
    let guava = zip_of(&[(
        "com/google/common/base/Ascii.class",
        b"\xca\xfe\xba\xbe",
        DEFLATED,
    )]);
    let app_pom = pom("com.example", "demo", "0.0.1-SNAPSHOT");
    let app_pom_name = pom_name("com.example", "demo");
    let app = zip_of(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n",
            DEFLATED,
        ),
        (&app_pom_name, &app_pom, DEFLATED),
        (
            "BOOT-INF/classes/com/example/Demo.class",
            b"\xca\xfe\xba\xbe",
            DEFLATED,
        ),
        ("BOOT-INF/lib/", b"", STORED),
        (
            "BOOT-INF/lib/commons-text-1.10.0.jar",
            &fixture("commons-text.jar"),
            STORED,
        ),
        ("BOOT-INF/lib/guava-31.1-jre.jar", &guava, STORED),
    ]);
    let packages = read_java_archive(&app, "app/demo.jar", &JavaLimits::default()).unwrap();
    assert_eq!(
        packages,
        vec![
            package(
                Some("com.example"),
                "demo",
                "0.0.1-SNAPSHOT",
                "app/demo.jar",
                JavaEvidence::PomProperties
            ),
            package(
                Some("org.apache.commons"),
                "commons-text",
                "1.10.0",
                "app/demo.jar!/BOOT-INF/lib/commons-text-1.10.0.jar",
                JavaEvidence::PomProperties
            ),
            package(
                None,
                "guava",
                "31.1-jre",
                "app/demo.jar!/BOOT-INF/lib/guava-31.1-jre.jar",
                JavaEvidence::FileName
            ),
        ]
    );
}

#[test]
fn java_war_prefers_pom_properties_over_manifest() {
    let manifest = fixture("jackson-databind-2.14.0.MANIFEST.MF");
    let properties = fixture("jackson-databind-2.14.0.pom.properties");
    let pom_entry = pom_name("com.fasterxml.jackson.core", "jackson-databind");
    let jackson = zip_of(&[
        ("META-INF/MANIFEST.MF", &manifest, DEFLATED),
        (&pom_entry, &properties, DEFLATED),
    ]);
    let war = zip_of(&[
        ("WEB-INF/web.xml", b"<web-app/>", DEFLATED),
        (
            "WEB-INF/lib/jackson-databind-2.14.0.jar",
            &jackson,
            DEFLATED,
        ),
    ]);
    let packages = read_java_archive(&war, "shop.war", &JavaLimits::default()).unwrap();
    assert_eq!(
        packages,
        vec![package(
            Some("com.fasterxml.jackson.core"),
            "jackson-databind",
            "2.14.0",
            "shop.war!/WEB-INF/lib/jackson-databind-2.14.0.jar",
            JavaEvidence::PomProperties
        )]
    );
}

#[test]
fn java_manifest_is_used_without_pom_properties() {
    let jackson = zip_of(&[(
        "META-INF/MANIFEST.MF",
        &fixture("jackson-databind-2.14.0.MANIFEST.MF"),
        DEFLATED,
    )]);
    assert_eq!(
        read_java_archive(&jackson, "jackson.jar", &JavaLimits::default()).unwrap(),
        vec![package(
            Some("com.fasterxml.jackson.core"),
            "jackson-databind",
            "2.14.0",
            "jackson.jar",
            JavaEvidence::Manifest
        )]
    );
    // log4j's Implementation-Title is a display name, so the bundle symbolic name is used.
    let log4j = zip_of(&[(
        "META-INF/MANIFEST.MF",
        &fixture("log4j-api-2.19.0.MANIFEST.MF"),
        DEFLATED,
    )]);
    assert_eq!(
        read_java_archive(&log4j, "log4j-api-2.19.0.jar", &JavaLimits::default()).unwrap(),
        vec![package(
            None,
            "org.apache.logging.log4j.api",
            "2.19.0",
            "log4j-api-2.19.0.jar",
            JavaEvidence::Manifest
        )]
    );
    // A manifest without coordinates falls through to the file name, or to nothing.
    let bare = zip_of(&[(
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\r\n",
        DEFLATED,
    )]);
    assert_eq!(
        read_java_archive(&bare, "lib/tool-2.3.jar", &JavaLimits::default()).unwrap(),
        vec![package(
            None,
            "tool",
            "2.3",
            "lib/tool-2.3.jar",
            JavaEvidence::FileName
        )]
    );
    assert_eq!(
        read_java_archive(&bare, "lib/tool.jar", &JavaLimits::default()).unwrap(),
        vec![]
    );
}

#[test]
fn java_shaded_jar_yields_every_pom_properties() {
    let (a, b, c) = (
        pom_name("org.example", "app"),
        pom_name("com.google.guava", "guava"),
        pom_name("x", "no-version"),
    );
    let shaded = zip_of(&[
        (&a, &pom("org.example", "app", "1.0.0"), DEFLATED),
        (&b, &pom("com.google.guava", "guava", "30.1-jre"), DEFLATED),
        (&c, b"groupId=x\nartifactId=no-version\n", DEFLATED),
        (
            "META-INF/maven/too/deep/x/pom.properties",
            &pom("a", "b", "1"),
            DEFLATED,
        ),
    ]);
    assert_eq!(
        read_java_archive(&shaded, "app-1.0.0-all.jar", &JavaLimits::default()).unwrap(),
        vec![
            package(
                Some("org.example"),
                "app",
                "1.0.0",
                "app-1.0.0-all.jar",
                JavaEvidence::PomProperties
            ),
            package(
                Some("com.google.guava"),
                "guava",
                "30.1-jre",
                "app-1.0.0-all.jar",
                JavaEvidence::PomProperties
            ),
        ]
    );
}

/// `levels` archives nested in each other, each with its own pom.properties: `l0` contains
/// `l1.jar`, which contains `l2.jar`, and so on.
fn nested_archives(levels: usize) -> Vec<u8> {
    let mut inner: Option<Vec<u8>> = None;
    for level in (0..levels).rev() {
        let artifact = format!("l{level}");
        let pom_entry = pom_name("org.nest", &artifact);
        let pom_data = pom("org.nest", &artifact, "1.0");
        let child_name = format!("lib/l{}.jar", level + 1);
        let mut entries: Vec<(&str, &[u8], CompressionMethod)> =
            vec![(&pom_entry, &pom_data, DEFLATED)];
        if let Some(child) = &inner {
            entries.push((&child_name, child, STORED));
        }
        inner = Some(zip_of(&entries));
    }
    inner.unwrap()
}

#[test]
fn java_nesting_is_followed_to_max_depth_and_no_further() {
    let limits = JavaLimits::default();
    assert_eq!(limits.max_depth, 3);
    let four_levels = read_java_archive(&nested_archives(4), "l0.jar", &limits).unwrap();
    let paths: Vec<&str> = four_levels
        .iter()
        .map(|package| package.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "l0.jar",
            "l0.jar!/lib/l1.jar",
            "l0.jar!/lib/l1.jar!/lib/l2.jar",
            "l0.jar!/lib/l1.jar!/lib/l2.jar!/lib/l3.jar"
        ]
    );
    let error = read_java_archive(&nested_archives(5), "l0.jar", &limits).unwrap_err();
    match error {
        JavaError::TooDeep { path, max_depth: 3 } => {
            assert_eq!(
                path,
                "l0.jar!/lib/l1.jar!/lib/l2.jar!/lib/l3.jar!/lib/l4.jar"
            );
        }
        other => panic!("{other}"),
    }
    let flat = JavaLimits {
        max_depth: 0,
        ..JavaLimits::default()
    };
    assert!(matches!(
        read_java_archive(&nested_archives(2), "l0.jar", &flat),
        Err(JavaError::TooDeep { .. })
    ));
}

#[test]
fn java_entry_count_is_limited_across_nesting() {
    let names: Vec<String> = (0..50).map(|index| format!("c/C{index}.class")).collect();
    let entries: Vec<(&str, &[u8], CompressionMethod)> = names
        .iter()
        .map(|name| (name.as_str(), &b""[..], STORED))
        .collect();
    let many = zip_of(&entries);
    let limits = JavaLimits {
        max_entries: 10,
        ..JavaLimits::default()
    };
    let error = read_java_archive(&many, "many.jar", &limits).unwrap_err();
    assert!(
        matches!(
            error,
            JavaError::TooManyEntries {
                declared: 50,
                limit: 10,
                ..
            }
        ),
        "{error}"
    );

    // Two entries outside plus eight inside make ten: within a limit of ten, not of nine.
    let inner = zip_of(&entries[..8]);
    let outer = zip_of(&[("a.class", b"", STORED), ("lib/inner.jar", &inner, STORED)]);
    assert!(read_java_archive(&outer, "outer.jar", &limits).is_ok());
    let nine = JavaLimits {
        max_entries: 9,
        ..JavaLimits::default()
    };
    let error = read_java_archive(&outer, "outer.jar", &nine).unwrap_err();
    assert!(
        matches!(&error, JavaError::TooManyEntries { path, declared: 8, limit: 9 } if path == "outer.jar!/lib/inner.jar"),
        "{error}"
    );
}

#[test]
fn java_compression_bomb_is_refused_before_inflating() {
    let bomb = zip_of(&[("lib/bomb.jar", &vec![0u8; 8 << 20], DEFLATED)]);
    assert!(
        bomb.len() < 64 * 1024,
        "the bomb compresses well: {}",
        bomb.len()
    );
    let error = read_java_archive(&bomb, "bomb.war", &JavaLimits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            JavaError::CompressionRatio {
                uncompressed: 8_388_608,
                limit: 100,
                ..
            }
        ),
        "{error}"
    );
    // Zeros in a file the reader never opens cost nothing.
    let ignored = zip_of(&[("data/zeros.bin", &vec![0u8; 8 << 20], DEFLATED)]);
    assert_eq!(
        read_java_archive(&ignored, "x.jar", &JavaLimits::default()).unwrap(),
        vec![]
    );
}

/// Rewrites an entry's uncompressed size in its local and central headers.
fn set_declared_size(archive: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for offset in 0..archive.len().saturating_sub(46) {
        let (name_length_at, name_at, size_at) = match &archive[offset..offset + 4] {
            b"PK\x03\x04" => (offset + 26, offset + 30, offset + 22),
            b"PK\x01\x02" => (offset + 28, offset + 46, offset + 24),
            _ => continue,
        };
        let name_length =
            u16::from_le_bytes([archive[name_length_at], archive[name_length_at + 1]]) as usize;
        if archive.get(name_at..name_at + name_length) == Some(name.as_bytes()) {
            archive[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header of {name}");
}

#[test]
fn java_lying_sizes_are_errors() {
    // Incompressible bytes (a linear congruential sequence), so the ratio check stays quiet
    // and the lie is only discovered while inflating.
    let mut state = 0x2545_f491_u32;
    let text: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 24) as u8
        })
        .collect();
    let archive = zip_of(&[("META-INF/MANIFEST.MF", &text, DEFLATED)]);

    let mut understated = archive.clone();
    set_declared_size(&mut understated, "META-INF/MANIFEST.MF", 100);
    let error = read_java_archive(&understated, "x.jar", &JavaLimits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            JavaError::Read { .. } | JavaError::SizeMismatch { .. }
        ),
        "{error}"
    );

    let mut overstated = archive.clone();
    set_declared_size(&mut overstated, "META-INF/MANIFEST.MF", 2 << 20);
    let error = read_java_archive(&overstated, "x.jar", &JavaLimits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            JavaError::Read { .. } | JavaError::SizeMismatch { .. }
        ),
        "{error}"
    );

    let nested = zip_of(&[("lib/a.jar", &zip_of(&[("x", b"y", STORED)]), STORED)]);
    let mut huge = nested.clone();
    set_declared_size(&mut huge, "lib/a.jar", u32::MAX);
    let error = read_java_archive(&huge, "x.jar", &JavaLimits::default()).unwrap_err();
    assert!(
        matches!(
            error,
            JavaError::EntryTooLarge {
                declared: 4_294_967_295,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn java_total_bytes_are_limited() {
    let jar = fixture("commons-text.jar");
    let outer = zip_of(&[("lib/a.jar", &jar, STORED), ("lib/b.jar", &jar, STORED)]);
    let limits = JavaLimits {
        max_total_bytes: jar.len() as u64 + 1000,
        ..JavaLimits::default()
    };
    let error = read_java_archive(&outer, "x.war", &limits).unwrap_err();
    assert!(
        matches!(&error, JavaError::TotalBytesExceeded { path, .. } if path == "x.war!/lib/b.jar"),
        "{error}"
    );
    let small_entries = JavaLimits {
        max_entry_bytes: 1000,
        ..JavaLimits::default()
    };
    let error = read_java_archive(&outer, "x.war", &small_entries).unwrap_err();
    assert!(
        matches!(error, JavaError::EntryTooLarge { limit: 1000, .. }),
        "{error}"
    );
}

#[test]
fn java_truncated_and_garbage_archives_fail() {
    let jar = fixture("commons-text.jar");
    for length in [0, 10, 22, jar.len() / 2, jar.len() - 1] {
        let result = read_java_archive(&jar[..length], "x.jar", &JavaLimits::default());
        assert!(result.is_err(), "length {length}: {result:?}");
    }
    let mut corrupt = jar.clone();
    let pom_at = jar
        .windows(14)
        .position(|window| window == b"pom.properties")
        .unwrap();
    corrupt[pom_at + 14..pom_at + 60].fill(0);
    let result = read_java_archive(&corrupt, "x.jar", &JavaLimits::default());
    assert!(result.is_err(), "{result:?}");
    assert!(matches!(
        read_java_archive(b"PK\x05\x06", "x.jar", &JavaLimits::default()),
        Err(JavaError::Zip { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Property tests: no input makes a reader panic

// 256 cases by default; PROPTEST_CASES raises it for a longer run.
proptest! {
    #[test]
    fn readers_survive_arbitrary_bytes(
        prefix in prop::sample::select(vec![&b""[..], b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01", b"MZ", b"\xcf\xfa\xed\xfe", b"PK\x03\x04"]),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = [prefix, &body[..]].concat();
        let _ = executable_format(&bytes);
        let _ = read_go_buildinfo(&bytes);
        let _ = read_auditable(&bytes, 1 << 16);
        let _ = read_java_archive(&bytes, "fuzz.jar", &JavaLimits::default());
    }

    #[test]
    fn pointer_format_survives_mutation(
        wide in any::<bool>(),
        big_endian in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut elf = pointer_format_elf(wide, big_endian, true, b"go1.16.15", &framed(OLD_MODINFO));
        for (index, value) in edits {
            let at = index.index(elf.len());
            elf[at] = value;
        }
        let _ = read_go_buildinfo(&elf);
        let _ = read_auditable(&elf, 1 << 16);
    }

    #[test]
    fn java_survives_mutation(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let inner = zip_of(&[("META-INF/MANIFEST.MF", &fixture("log4j-api-2.19.0.MANIFEST.MF"), DEFLATED)]);
        let mut outer = zip_of(&[
            (&pom_name("g", "a"), &pom("g", "a", "1"), DEFLATED),
            ("lib/log4j-api-2.19.0.jar", &inner, STORED),
        ]);
        for (index, value) in edits {
            let at = index.index(outer.len());
            outer[at] = value;
        }
        let _ = read_java_archive(&outer, "m.jar", &JavaLimits::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn real_binaries_survive_mutation_of_headers_and_metadata(
        edits in prop::collection::vec((0usize..2, any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut go = go_linux();
        let go_header = go_header_offset(&go);
        let mut rust = fixture("auditable-tiny-time");
        let (dep_offset, dep_size, _) = dep_section(&rust);
        for (region, index, value) in edits {
            // Region 0: the ELF header and program headers; region 1: the package metadata.
            match region {
                0 => {
                    go[index.index(0x200)] = value;
                    rust[index.index(0x200)] = value;
                }
                _ => {
                    go[go_header + index.index(0x180)] = value;
                    rust[dep_offset + index.index(dep_size)] = value;
                }
            }
        }
        let _ = read_go_buildinfo(&go);
        let _ = read_auditable(&rust, 1 << 16);
    }
}
