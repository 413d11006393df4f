//! Tests of the rpm package-database reader on real databases in all three formats (expected
//! package and file lists in `tests/fixtures/rpmdb`, see its SOURCES.md), on corrupted and
//! hand-built hostile databases, and with proptest on arbitrary and mutated input.

use proptest::prelude::*;
use scan::rpmdb::{
    BdbError, FILE_PATH_EXPANSION, HeaderError, NdbError, RpmDbError, RpmDbFormat, RpmDbLimits,
    RpmPackage, SqliteError, detect, read,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

const BDB: &str = "bdb/Packages";
const NDB: &str = "ndb/Packages.db";
const SQLITE: &str = "sqlite/rpmdb.sqlite";
const BDB_PAGE: usize = 4096;

fn fixture_path(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rpmdb")
        .join(path)
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixture_path(path)).unwrap_or_else(|err| panic!("fixture {path}: {err}"))
}

fn read_default(bytes: &[u8]) -> Result<Vec<RpmPackage>, RpmDbError> {
    read(bytes, &RpmDbLimits::default())
}

/// A TSV fixture as rows of named columns; the first line, starting with `#`, names them.
fn tsv(path: &str) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8(fixture(path)).expect("TSV fixtures are UTF-8");
    let mut lines = text.lines();
    let columns: Vec<String> = lines
        .next()
        .and_then(|header| header.strip_prefix("# "))
        .expect("a `# column…` header line")
        .split('\t')
        .map(str::to_owned)
        .collect();
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            columns
                .iter()
                .cloned()
                .zip(line.split('\t').map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The value a package has for one column of the expected lists, `(none)` when absent.
fn column(package: &RpmPackage, name: &str) -> Option<String> {
    let or_none = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
    Some(match name {
        "epoch" => package
            .epoch
            .map_or_else(|| "(none)".into(), |e| e.to_string()),
        "name" => package.name.clone(),
        "version" => package.version.clone(),
        "release" => package.release.clone(),
        "arch" => package.arch.clone(),
        "sourcerpm" => or_none(&package.source_rpm),
        "license" => or_none(&package.license),
        "vendor" => or_none(&package.vendor),
        // size, summary and sigmd5 are not part of RpmPackage.
        _ => return None,
    })
}

fn assert_matches_expected_list(db: &str, expected: &str) {
    let packages = read_default(&fixture(db)).unwrap_or_else(|err| panic!("{db}: {err}"));
    let rows = tsv(expected);
    assert_eq!(packages.len(), rows.len(), "{db}: package count");
    let mut compared = 0;
    for (package, row) in packages.iter().zip(&rows) {
        for (name, want) in row {
            if let Some(got) = column(package, name) {
                assert_eq!(&got, want, "{db}: column {name} of {}", package.name);
                compared += 1;
            }
        }
    }
    assert!(compared >= rows.len() * 6, "{db}: too few columns compared");
}

#[test]
fn berkeley_db_gives_the_expected_package() {
    assert_matches_expected_list(BDB, "bdb/expected-packages.tsv");
}

#[test]
fn ndb_gives_the_expected_packages() {
    assert_matches_expected_list(NDB, "ndb/expected-packages.tsv");
}

#[test]
fn sqlite_gives_the_expected_packages() {
    assert_matches_expected_list(SQLITE, "sqlite/expected-packages.tsv");
}

fn assert_files_match_rpm(db: &str, expected: &str) {
    let packages = read_default(&fixture(db)).unwrap_or_else(|err| panic!("{db}: {err}"));
    let got: Vec<(String, String)> = packages
        .iter()
        .flat_map(|p| p.files.iter().map(|f| (p.name.clone(), f.clone())))
        .collect();
    let want: Vec<(String, String)> = tsv(expected)
        .into_iter()
        .map(|row| (row[0].1.clone(), row[1].1.clone()))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "{db}: files differ from rpm's FILENAMES");
}

#[test]
fn file_lists_match_rpm() {
    assert_files_match_rpm(BDB, "bdb/expected-files.tsv");
    assert_files_match_rpm(SQLITE, "sqlite/expected-files.tsv");
}

#[test]
fn ndb_file_lists_are_absolute_and_plausible() {
    let packages = read_default(&fixture(NDB)).expect("NDB fixture reads");
    let bash = packages.iter().find(|p| p.name == "bash").expect("bash");
    assert!(
        bash.files.iter().any(|f| f == "/usr/bin/bash"),
        "{:?}",
        bash.files
    );
    for package in &packages {
        for file in &package.files {
            assert!(file.starts_with('/'), "{}: {file}", package.name);
        }
    }
}

#[test]
fn evr_and_source_name() {
    let libuuid = &read_default(&fixture(BDB)).expect("BDB fixture reads")[0];
    assert_eq!(libuuid.evr(), "2.32.1-42.el8_8");
    assert_eq!(libuuid.source_name().as_deref(), Some("util-linux"));

    let mariner = read_default(&fixture(SQLITE)).expect("SQLite fixture reads");
    let tools = mariner
        .iter()
        .find(|p| p.name == "ca-certificates-tools")
        .expect("ca-certificates-tools");
    assert_eq!(tools.evr(), "1:2.0.0-1.cm2");
    assert_eq!(tools.source_name().as_deref(), Some("ca-certificates"));

    // Every real package's source name is a prefix of its SOURCERPM.
    let ndb = read_default(&fixture(NDB)).expect("NDB fixture reads");
    for package in mariner.iter().chain(&ndb) {
        let source = package
            .source_name()
            .expect("every fixture package has a SOURCERPM");
        let rpm = package.source_rpm.as_deref().unwrap_or_default();
        assert!(rpm.starts_with(&format!("{source}-")), "{source} / {rpm}");
    }
    let gcc = ndb
        .iter()
        .find(|p| p.name == "libstdc++6")
        .expect("libstdc++6");
    assert_eq!(gcc.source_name().as_deref(), Some("gcc11"));

    let mut odd = libuuid.clone();
    for (source_rpm, name) in [
        (Some("openssl-3.0.7-1.el9.src.rpm"), Some("openssl")),
        (
            Some("perl-Text-Tabs+Wrap-2013.0523-3.el8.nosrc.rpm"),
            Some("perl-Text-Tabs+Wrap"),
        ),
        (Some("noversion.src.rpm"), None),
        (Some("-1.0-1.src.rpm"), None),
        (Some("openssl-3.0.7-1.el9.src"), None),
        (None, None),
    ] {
        odd.source_rpm = source_rpm.map(str::to_owned);
        assert_eq!(odd.source_name().as_deref(), name, "{source_rpm:?}");
    }
}

#[test]
fn detect_recognises_each_format_by_magic() {
    assert_eq!(detect(&fixture(BDB)), Some(RpmDbFormat::BerkeleyDb));
    assert_eq!(detect(&fixture(NDB)), Some(RpmDbFormat::Ndb));
    assert_eq!(detect(&fixture(SQLITE)), Some(RpmDbFormat::Sqlite));
    assert_eq!(
        detect(&to_big_endian(&fixture(BDB))),
        Some(RpmDbFormat::BerkeleyDb)
    );
    assert_eq!(
        detect(b"Package: bash\nStatus: install ok installed\n"),
        None
    );
    assert_eq!(detect(b""), None);
    assert!(matches!(
        read_default(b"hello"),
        Err(RpmDbError::UnknownFormat)
    ));
}

// ---------------------------------------------------------------------------------------------
// Berkeley DB: byte order and overflow chains.

/// The little-endian fixture rewritten as a big-endian host would have written it: every
/// integer of the page headers, item arrays, off-page items and 4-byte keys/values swapped;
/// the header blobs (big-endian by definition) untouched.
fn to_big_endian(le: &[u8]) -> Vec<u8> {
    let mut be = le.to_vec();
    let swap = |buf: &mut [u8], at: usize, len: usize| buf[at..at + len].reverse();
    let le_u16 = |page: &[u8], at: usize| usize::from(u16::from_le_bytes([page[at], page[at + 1]]));
    for (number, page) in be.chunks_exact_mut(BDB_PAGE).enumerate() {
        let original = &le[number * BDB_PAGE..(number + 1) * BDB_PAGE];
        if number == 0 {
            // DBMETA u32 fields (bytes 24..28 are single bytes, 52..72 the uid), then HMETA's
            // max_bucket, masks, ffactor, nelem, h_charkey and spares[32].
            for at in (0..24)
                .step_by(4)
                .chain((28..52).step_by(4))
                .chain((72..224).step_by(4))
            {
                swap(page, at, 4);
            }
            continue;
        }
        for at in [0, 4, 8, 12, 16] {
            swap(page, at, 4);
        }
        swap(page, 20, 2);
        swap(page, 22, 2);
        if matches!(original[25], 2 | 13) {
            let entries = le_u16(original, 20);
            let mut end = BDB_PAGE;
            for item in 0..entries {
                let offset = le_u16(original, 26 + 2 * item);
                swap(page, 26 + 2 * item, 2);
                match original[offset] {
                    3 => {
                        swap(page, offset + 4, 4);
                        swap(page, offset + 8, 4);
                    }
                    1 if end - offset == 5 => swap(page, offset + 1, 4),
                    _ => {}
                }
                end = offset;
            }
        }
    }
    be
}

#[test]
fn big_endian_berkeley_db_reads_the_same() {
    let le = fixture(BDB);
    let be = to_big_endian(&le);
    assert_ne!(le, be);
    assert_eq!(
        read_default(&be).expect("big-endian copy reads"),
        read_default(&le).expect("fixture reads")
    );
}

fn set_u32_le(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Page 2 of the fixture holds the pair (instance 1, off-page item at offset 4079); the header
/// lies on overflow pages 3 → 4 → … → 22.
const OFFPAGE_ITEM: usize = 2 * BDB_PAGE + 4079;

fn bdb_error(bytes: &[u8]) -> BdbError {
    match read_default(bytes) {
        Err(RpmDbError::BerkeleyDb(err)) => err,
        other => panic!("expected a Berkeley DB error, got {other:?}"),
    }
}

#[test]
fn cyclic_overflow_chains_are_errors() {
    let mut back_to_start = fixture(BDB);
    set_u32_le(&mut back_to_start, 22 * BDB_PAGE + 16, 3);
    assert_eq!(
        bdb_error(&back_to_start),
        BdbError::OverflowPageReused {
            instance: 1,
            page: 3
        }
    );

    let mut self_loop = fixture(BDB);
    set_u32_le(&mut self_loop, 10 * BDB_PAGE + 16, 10);
    assert_eq!(
        bdb_error(&self_loop),
        BdbError::OverflowPageReused {
            instance: 1,
            page: 10
        }
    );
}

#[test]
fn overflow_pages_shared_by_two_items_are_an_error() {
    let mut db = fixture(BDB);
    let mut copy = db[2 * BDB_PAGE..3 * BDB_PAGE].to_vec();
    set_u32_le(&mut copy, 8, 23);
    db.extend_from_slice(&copy);
    set_u32_le(&mut db, 32, 23);
    assert_eq!(
        bdb_error(&db),
        BdbError::OverflowPageReused {
            instance: 1,
            page: 3
        }
    );
}

#[test]
fn broken_overflow_items_are_errors() {
    let mut outside = fixture(BDB);
    set_u32_le(&mut outside, OFFPAGE_ITEM + 4, 9999);
    assert_eq!(
        bdb_error(&outside),
        BdbError::OverflowPageRange {
            instance: 1,
            page: 9999
        }
    );

    let mut into_hash_page = fixture(BDB);
    set_u32_le(&mut into_hash_page, OFFPAGE_ITEM + 4, 1);
    assert_eq!(
        bdb_error(&into_hash_page),
        BdbError::OverflowPageType {
            instance: 1,
            page: 1,
            page_type: 13
        }
    );

    let mut longer = fixture(BDB);
    set_u32_le(&mut longer, OFFPAGE_ITEM + 8, 80_881);
    assert!(matches!(
        bdb_error(&longer),
        BdbError::OverflowLength {
            declared: 80_881,
            ..
        }
    ));

    let mut shorter = fixture(BDB);
    set_u32_le(&mut shorter, OFFPAGE_ITEM + 8, 100);
    assert!(matches!(
        bdb_error(&shorter),
        BdbError::OverflowLength { declared: 100, .. }
    ));

    let mut beyond = fixture(BDB);
    set_u32_le(&mut beyond, OFFPAGE_ITEM + 8, 1_000_000);
    assert_eq!(
        bdb_error(&beyond),
        BdbError::OverflowBeyondFile {
            instance: 1,
            declared: 1_000_000,
            capacity: 23 * (BDB_PAGE - 26)
        }
    );

    let mut huge = fixture(BDB);
    set_u32_le(&mut huge, OFFPAGE_ITEM + 8, u32::MAX);
    assert!(matches!(
        read_default(&huge),
        Err(RpmDbError::HeaderTooLarge { instance: 1, .. })
    ));

    let mut wrong_number = fixture(BDB);
    set_u32_le(&mut wrong_number, 5 * BDB_PAGE + 8, 6);
    assert_eq!(
        bdb_error(&wrong_number),
        BdbError::PageNumber { page: 5, stored: 6 }
    );
}

#[test]
fn broken_berkeley_db_metadata_is_an_error() {
    let db = fixture(BDB);
    assert!(matches!(
        bdb_error(&db[..db.len() - 1]),
        BdbError::Truncated {
            last_page: 22,
            pages: 22,
            ..
        }
    ));
    let mut page_size = db.clone();
    set_u32_le(&mut page_size, 20, 3000);
    assert_eq!(
        bdb_error(&page_size),
        BdbError::PageSize { page_size: 3000 }
    );
    let mut encrypted = db.clone();
    encrypted[24] = 1;
    assert_eq!(bdb_error(&encrypted), BdbError::Encrypted { algorithm: 1 });
    let mut btree = db.clone();
    btree[25] = 9;
    assert_eq!(bdb_error(&btree), BdbError::NotHash { page_type: 9 });
    let mut items = db;
    items[2 * BDB_PAGE + 20] = 3; // three items: not key/data pairs
    assert!(matches!(
        bdb_error(&items),
        BdbError::ItemOffset { page: 2, .. } | BdbError::OddItems { page: 2, .. }
    ));
}

#[test]
fn the_instance_counter_record_is_not_a_header() {
    // Page 1 holds rpm's counter (key 0 → 4-byte value); under another key it would be read
    // as a 4-byte header, which is malformed.
    let mut db = fixture(BDB);
    db[BDB_PAGE + 4092] = 7;
    assert!(matches!(
        read_default(&db),
        Err(RpmDbError::Header {
            instance: 7,
            source: HeaderError::Truncated { len: 4 }
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// Hand-built headers, wrapped in NDB files.

enum Value {
    Str(&'static str),
    Strings(Vec<String>),
    Int32(Vec<u32>),
    /// Raw data of any type and count, stored unaligned.
    Raw {
        data_type: u32,
        count: u32,
        bytes: Vec<u8>,
    },
}

/// A header blob with the given entries, in order, each value appended to the data store
/// (INT32 values 4-byte aligned, as rpm writes them).
fn header_blob(entries: &[(i32, Value)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store: Vec<u8> = Vec::new();
    for (tag, value) in entries {
        let (data_type, count, bytes) = match value {
            Value::Str(s) => (6, 1, [s.as_bytes(), b"\0"].concat()),
            Value::Strings(list) => (
                8,
                list.len() as u32,
                list.iter()
                    .flat_map(|s| [s.as_bytes(), b"\0"].concat())
                    .collect(),
            ),
            Value::Int32(values) => {
                while !store.len().is_multiple_of(4) {
                    store.push(0);
                }
                (
                    4,
                    values.len() as u32,
                    values.iter().flat_map(|v| v.to_be_bytes()).collect(),
                )
            }
            Value::Raw {
                data_type,
                count,
                bytes,
            } => (*data_type, *count, bytes.clone()),
        };
        for field in [*tag as u32, data_type, store.len() as u32, count] {
            index.extend_from_slice(&field.to_be_bytes());
        }
        store.extend_from_slice(&bytes);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&store);
    blob
}

fn basic_entries(name: &'static str) -> Vec<(i32, Value)> {
    vec![
        (1000, Value::Str(name)),
        (1001, Value::Str("1.0")),
        (1002, Value::Str("1")),
        (1022, Value::Str("x86_64")),
    ]
}

/// An NDB file (one slot page) holding the given (package index, header blob) pairs.
fn ndb_file(blobs: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut db = vec![0u8; 4096];
    db[..4].copy_from_slice(b"RpmP");
    set_u32_le(&mut db, 8, 1); // generation
    set_u32_le(&mut db, 12, 1); // slot pages
    set_u32_le(&mut db, 16, blobs.len() as u32 + 1); // next package index
    for slot in (32..4096).step_by(16) {
        db[slot..slot + 4].copy_from_slice(b"Slot");
    }
    for (number, (package, blob)) in blobs.iter().enumerate() {
        let first_block = db.len() / 16;
        let block_count = (16 + blob.len() + 12).div_ceil(16);
        let slot = 32 + 16 * number;
        set_u32_le(&mut db, slot + 4, *package);
        set_u32_le(&mut db, slot + 8, first_block as u32);
        set_u32_le(&mut db, slot + 12, block_count as u32);
        let mut area = vec![0u8; block_count * 16];
        area[..4].copy_from_slice(b"BlbS");
        set_u32_le(&mut area, 4, *package);
        set_u32_le(&mut area, 12, blob.len() as u32);
        area[16..16 + blob.len()].copy_from_slice(blob);
        let tail = area.len() - 12;
        set_u32_le(&mut area, tail + 4, blob.len() as u32);
        area[tail + 8..].copy_from_slice(b"BlbE");
        db.extend_from_slice(&area);
    }
    db
}

fn read_one(entries: &[(i32, Value)]) -> Result<RpmPackage, RpmDbError> {
    let mut packages = read_default(&ndb_file(&[(1, header_blob(entries))]))?;
    assert_eq!(packages.len(), 1);
    Ok(packages.remove(0))
}

fn header_error(entries: &[(i32, Value)]) -> HeaderError {
    match read_one(entries) {
        Err(RpmDbError::Header {
            instance: 1,
            source,
        }) => source,
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn hand_built_header_gives_every_field() {
    let mut entries = basic_entries("demo");
    entries.extend([
        (1003, Value::Int32(vec![2])),
        (1044, Value::Str("demo-1.0-1.src.rpm")),
        (1011, Value::Str("(none)")),
        (1014, Value::Str("MIT")),
        (5096, Value::Str("demo:1.0:8040020210323103838:9f9e2e7e")),
        (
            1118,
            Value::Strings(vec!["/usr/bin/".into(), "/usr/share/doc/demo/".into()]),
        ),
        (
            1117,
            Value::Strings(vec!["demo".into(), "README".into(), "demo-helper".into()]),
        ),
        (1116, Value::Int32(vec![0, 1, 0])),
    ]);
    let package = read_one(&entries).expect("valid header");
    assert_eq!(
        package,
        RpmPackage {
            name: "demo".into(),
            epoch: Some(2),
            version: "1.0".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            source_rpm: Some("demo-1.0-1.src.rpm".into()),
            vendor: None,
            license: Some("MIT".into()),
            modularity_label: Some("demo:1.0:8040020210323103838:9f9e2e7e".into()),
            files: vec![
                "/usr/bin/demo".into(),
                "/usr/share/doc/demo/README".into(),
                "/usr/bin/demo-helper".into(),
            ],
        }
    );
    assert_eq!(package.evr(), "2:1.0-1");
    assert_eq!(package.source_name().as_deref(), Some("demo"));
}

#[test]
fn dribble_entries_replace_earlier_entries() {
    let mut entries = basic_entries("region-name");
    entries.push((1000, Value::Str("dribble-name")));
    assert_eq!(
        read_one(&entries).expect("valid header").name,
        "dribble-name"
    );
}

#[test]
fn gpg_pubkey_headers_have_an_empty_arch() {
    let entries = vec![
        (1000, Value::Str("gpg-pubkey")),
        (1001, Value::Str("fd431d51")),
        (1002, Value::Str("4ae0493b")),
    ];
    let key = read_one(&entries).expect("valid header");
    assert_eq!((key.name.as_str(), key.arch.as_str()), ("gpg-pubkey", ""));
    assert!(key.files.is_empty());
}

#[test]
fn old_filenames_are_used_without_basenames() {
    let mut entries = basic_entries("legacy");
    entries.push((
        1027,
        Value::Strings(vec!["/bin/legacy".into(), "/etc/legacy.conf".into()]),
    ));
    assert_eq!(
        read_one(&entries).expect("valid header").files,
        ["/bin/legacy", "/etc/legacy.conf"]
    );
}

#[test]
fn file_list_expansion_is_bounded() {
    let files = 5000;
    let mut entries = basic_entries("bomb");
    entries.extend([
        (
            1118,
            Value::Strings(vec![format!("/{}/", "d".repeat(4000))]),
        ),
        (1117, Value::Strings(vec!["x".into(); files])),
        (1116, Value::Int32(vec![0; files])),
    ]);
    let blob_len = header_blob(&entries).len();
    assert_eq!(
        header_error(&entries),
        HeaderError::FileListTooLarge {
            limit: blob_len * FILE_PATH_EXPANSION
        }
    );
}

#[test]
fn malformed_headers_are_errors() {
    let without = |tag: i32| {
        basic_entries("x")
            .into_iter()
            .filter(move |(t, _)| *t != tag)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        header_error(&without(1000)),
        HeaderError::MissingTag {
            tag: 1000,
            name: "NAME"
        }
    );
    assert_eq!(
        header_error(&without(1002)),
        HeaderError::MissingTag {
            tag: 1002,
            name: "RELEASE"
        }
    );

    let mut name_as_int = without(1000);
    name_as_int.push((1000, Value::Int32(vec![7])));
    assert_eq!(
        header_error(&name_as_int),
        HeaderError::WrongType {
            tag: 1000,
            found: 4,
            expected: 6
        }
    );

    let mut unterminated = basic_entries("x");
    unterminated.push((
        1014,
        Value::Raw {
            data_type: 6,
            count: 1,
            bytes: b"MIT".to_vec(),
        },
    ));
    assert!(matches!(
        header_error(&unterminated),
        HeaderError::OutOfBounds { tag: 1014, .. }
    ));

    let mut two_strings = basic_entries("x");
    two_strings.push((
        1014,
        Value::Raw {
            data_type: 6,
            count: 2,
            bytes: b"A\0B\0".to_vec(),
        },
    ));
    assert_eq!(
        header_error(&two_strings),
        HeaderError::WrongCount {
            tag: 1014,
            count: 2
        }
    );

    let misaligned = vec![
        (1000, Value::Str("x")),
        (
            1003,
            Value::Raw {
                data_type: 4,
                count: 1,
                bytes: vec![0, 0, 0, 1],
            },
        ),
        (1001, Value::Str("1")),
        (1002, Value::Str("1")),
    ];
    assert_eq!(
        header_error(&misaligned),
        HeaderError::Misaligned {
            tag: 1003,
            offset: 2,
            align: 4
        }
    );

    // First in the store, so 4-byte aligned.
    let mut huge_count = vec![(
        1003,
        Value::Raw {
            data_type: 4,
            count: u32::MAX,
            bytes: vec![0; 4],
        },
    )];
    huge_count.extend(basic_entries("x"));
    assert!(matches!(
        header_error(&huge_count),
        HeaderError::OutOfBounds { tag: 1003, .. }
    ));

    let mut huge_array = basic_entries("x");
    huge_array.push((
        1027,
        Value::Raw {
            data_type: 8,
            count: u32::MAX,
            bytes: b"/a\0".to_vec(),
        },
    ));
    assert!(matches!(
        header_error(&huge_array),
        HeaderError::OutOfBounds { tag: 1027, .. }
    ));

    let mut bad_dir = basic_entries("x");
    bad_dir.extend([
        (1118, Value::Strings(vec!["/usr/".into()])),
        (1117, Value::Strings(vec!["a".into(), "b".into()])),
        (1116, Value::Int32(vec![0, 1])),
    ]);
    assert_eq!(
        header_error(&bad_dir),
        HeaderError::DirIndexOutOfRange {
            file: 1,
            index: 1,
            dirs: 1
        }
    );

    let mut uneven = basic_entries("x");
    uneven.extend([
        (1118, Value::Strings(vec!["/usr/".into()])),
        (1117, Value::Strings(vec!["a".into(), "b".into()])),
        (1116, Value::Int32(vec![0])),
    ]);
    assert_eq!(
        header_error(&uneven),
        HeaderError::FileCountMismatch {
            basenames: 2,
            dir_indexes: 1
        }
    );
}

fn blob_error(blob: Vec<u8>) -> HeaderError {
    match read_default(&ndb_file(&[(1, blob)])) {
        Err(RpmDbError::Header { source, .. }) => source,
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn malformed_header_framing_is_an_error() {
    let good = header_blob(&basic_entries("x"));
    assert_eq!(
        blob_error(good[..5].to_vec()),
        HeaderError::Truncated { len: 5 }
    );

    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        blob_error(longer),
        HeaderError::SizeMismatch { .. }
    ));

    let mut no_entries = good.clone();
    no_entries[..4].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        blob_error(no_entries),
        HeaderError::IndexCount { index_len: 0 }
    );

    let mut too_many = good.clone();
    too_many[..4].copy_from_slice(&0x1_0000u32.to_be_bytes());
    assert_eq!(
        blob_error(too_many),
        HeaderError::IndexCount {
            index_len: 0x1_0000
        }
    );

    let mut negative_offset = good;
    negative_offset[8 + 8..8 + 12].copy_from_slice(&(-4i32).to_be_bytes()); // NAME's offset
    assert!(matches!(
        blob_error(negative_offset),
        HeaderError::OutOfBounds {
            tag: 1000,
            offset: -4,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// NDB structure.

fn ndb_error(bytes: &[u8]) -> NdbError {
    match read_default(bytes) {
        Err(RpmDbError::Ndb(err)) => err,
        other => panic!("expected an NDB error, got {other:?}"),
    }
}

#[test]
fn ndb_reads_hand_built_files_in_package_order() {
    let db = ndb_file(&[
        (5, header_blob(&basic_entries("five"))),
        (2, header_blob(&basic_entries("two"))),
    ]);
    let names: Vec<String> = read_default(&db)
        .expect("valid NDB")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["two", "five"]);
}

#[test]
fn broken_ndb_structures_are_errors() {
    let two = ndb_file(&[
        (1, header_blob(&basic_entries("a"))),
        (2, header_blob(&basic_entries("b"))),
    ]);
    let first_block = u32::from_le_bytes(two[40..44].try_into().unwrap());

    let mut overlap = two.clone();
    set_u32_le(&mut overlap, 48 + 8, first_block);
    assert_eq!(
        ndb_error(&overlap),
        NdbError::Overlap {
            first: 1,
            second: 2
        }
    );

    let mut into_slots = two.clone();
    set_u32_le(&mut into_slots, 40, 1);
    assert!(matches!(
        ndb_error(&into_slots),
        NdbError::SlotRange {
            slot: 2,
            package: 1,
            ..
        }
    ));

    let mut past_end = two.clone();
    set_u32_le(&mut past_end, 44, 1_000_000);
    assert!(matches!(
        ndb_error(&past_end),
        NdbError::SlotRange { slot: 2, .. }
    ));

    let mut slot_magic = two.clone();
    slot_magic[32] = b's';
    assert_eq!(ndb_error(&slot_magic), NdbError::SlotMagic { slot: 2 });

    let mut no_package = two.clone();
    set_u32_le(&mut no_package, 36, 0);
    assert_eq!(ndb_error(&no_package), NdbError::SlotEmpty { slot: 2 });

    let blob_start = first_block as usize * 16;
    let mut head_magic = two.clone();
    head_magic[blob_start] = b'X';
    assert!(matches!(
        ndb_error(&head_magic),
        NdbError::Blob { package: 1, .. }
    ));

    let mut other_package = two.clone();
    set_u32_le(&mut other_package, blob_start + 4, 9);
    assert!(matches!(
        ndb_error(&other_package),
        NdbError::Blob { package: 1, .. }
    ));

    let mut blob_len = two.clone();
    set_u32_le(&mut blob_len, blob_start + 12, 3);
    assert!(matches!(
        ndb_error(&blob_len),
        NdbError::Blob { package: 1, .. }
    ));

    let mut version = two.clone();
    set_u32_le(&mut version, 4, 1);
    assert_eq!(ndb_error(&version), NdbError::Version { version: 1 });

    let mut slot_pages = two;
    set_u32_le(&mut slot_pages, 12, 1000);
    assert!(matches!(
        ndb_error(&slot_pages),
        NdbError::SlotPages {
            slot_pages: 1000,
            ..
        }
    ));

    assert!(matches!(
        ndb_error(b"RpmP\0\0\0\0"),
        NdbError::TruncatedHeader { len: 8 }
    ));
}

// ---------------------------------------------------------------------------------------------
// SQLite: hostile schemas and values.

/// An SQLite database built in memory by the given statements, serialized to bytes.
fn sqlite_file(setup: &str, blobs: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    conn.execute_batch(setup).expect("setup SQL");
    for (hnum, blob) in blobs {
        conn.execute(
            "INSERT INTO Packages (hnum, blob) VALUES (?1, ?2)",
            rusqlite::params![hnum, blob],
        )
        .expect("insert");
    }
    conn.serialize("main").expect("serialize").to_vec()
}

const RPM_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);";

fn sqlite_error(bytes: &[u8]) -> SqliteError {
    match read_default(bytes) {
        Err(RpmDbError::Sqlite(err)) => err,
        other => panic!("expected an SQLite error, got {other:?}"),
    }
}

#[test]
fn sqlite_reads_a_hand_built_database_without_wal() {
    let db = sqlite_file(
        RPM_SCHEMA,
        &[
            (7, header_blob(&basic_entries("seven"))),
            (3, header_blob(&basic_entries("three"))),
        ],
    );
    assert_eq!(
        db[18], 1,
        "a serialized in-memory database is not in WAL mode"
    );
    let names: Vec<String> = read_default(&db)
        .expect("valid database")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["three", "seven"]);
}

#[test]
fn hostile_sqlite_databases_are_errors() {
    let no_table = sqlite_file("CREATE TABLE Other (x);", &[]);
    assert!(matches!(
        sqlite_error(&no_table),
        SqliteError::NoPackagesTable
    ));

    let view = sqlite_file(
        "CREATE TABLE Real (hnum INTEGER PRIMARY KEY, blob BLOB);
         CREATE VIEW Packages AS SELECT hnum, blob FROM Real;",
        &[],
    );
    assert!(matches!(sqlite_error(&view), SqliteError::NotATable { kind } if kind == "view"));

    let virtual_table = sqlite_file("CREATE VIRTUAL TABLE Packages USING fts5(hnum, blob);", &[]);
    assert!(
        matches!(sqlite_error(&virtual_table), SqliteError::NotATable { kind } if kind == "virtual table")
    );

    let text = sqlite_file(
        &format!("{RPM_SCHEMA} INSERT INTO Packages VALUES (1, 'not a blob');"),
        &[],
    );
    assert!(matches!(
        sqlite_error(&text),
        SqliteError::NotABlob { hnum: 1, .. }
    ));

    let negative = sqlite_file(RPM_SCHEMA, &[(-1, header_blob(&basic_entries("x")))]);
    assert!(matches!(
        sqlite_error(&negative),
        SqliteError::InstanceRange { hnum: -1 }
    ));

    let wide = sqlite_file(RPM_SCHEMA, &[(1 << 40, header_blob(&basic_entries("x")))]);
    assert!(matches!(
        sqlite_error(&wide),
        SqliteError::InstanceRange { .. }
    ));

    let db = fixture(SQLITE);
    assert!(matches!(
        sqlite_error(&db[..50]),
        SqliteError::TruncatedHeader { len: 50 }
    ));
}

/// A `Packages` table whose `blob` is a generated column: a `CASE` with `arms` arms that
/// returns the stored header, over `rows` copies of a valid header.
fn sqlite_with_case_column(arms: usize, rows: i64) -> Vec<u8> {
    let arms: String = (1..=arms)
        .map(|n| format!(" WHEN -{n} THEN NULL"))
        .collect();
    let mut conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    conn.execute_batch(&format!(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, raw BLOB, \
         blob BLOB AS (CASE hnum{arms} ELSE raw END));"
    ))
    .expect("schema");
    let blob = header_blob(&basic_entries("x"));
    let transaction = conn.transaction().expect("transaction");
    {
        let mut insert = transaction
            .prepare("INSERT INTO Packages (hnum, raw) VALUES (?1, ?2)")
            .expect("prepare");
        for hnum in 1..=rows {
            insert
                .execute(rusqlite::params![hnum, blob])
                .expect("insert");
        }
    }
    transaction.commit().expect("commit");
    conn.serialize("main").expect("serialize").to_vec()
}

#[test]
fn expensive_sqlite_schemas_hit_the_work_budget() {
    // ~2500 instructions per row; 100 permitted packages allow (100 + 100) × 1000.
    let limits = RpmDbLimits {
        max_packages: 100,
        ..RpmDbLimits::default()
    };
    let expensive = sqlite_with_case_column(2500, 1000);
    assert!(matches!(
        read(&expensive, &limits),
        Err(RpmDbError::Sqlite(SqliteError::WorkBudget {
            instructions: 200_000
        }))
    ));
    // The same shape with a cheap expression reads until the package limit.
    let cheap = sqlite_with_case_column(1, 1000);
    assert!(matches!(
        read(&cheap, &limits),
        Err(RpmDbError::TooManyPackages { limit: 100 })
    ));
    assert_eq!(
        read_default(&cheap).expect("cheap schema reads").len(),
        1000
    );
}

#[test]
fn oversized_schema_statements_are_refused() {
    // Compiling this CASE would take seconds; its 200 kB statement is refused outright.
    let huge = sqlite_with_case_column(10_000, 1);
    assert!(matches!(sqlite_error(&huge), SqliteError::Engine(_)));
}

// ---------------------------------------------------------------------------------------------
// Limits.

#[test]
fn limits_are_enforced_for_every_format() {
    let few = RpmDbLimits {
        max_packages: 10,
        ..RpmDbLimits::default()
    };
    for db in [NDB, SQLITE] {
        assert!(
            matches!(
                read(&fixture(db), &few),
                Err(RpmDbError::TooManyPackages { limit: 10 })
            ),
            "{db}"
        );
    }
    let none = RpmDbLimits {
        max_packages: 0,
        ..RpmDbLimits::default()
    };
    assert!(matches!(
        read(&fixture(BDB), &none),
        Err(RpmDbError::TooManyPackages { limit: 0 })
    ));

    let small = RpmDbLimits {
        max_header_bytes: 1000,
        ..RpmDbLimits::default()
    };
    for db in [BDB, NDB, SQLITE] {
        assert!(
            matches!(
                read(&fixture(db), &small),
                Err(RpmDbError::HeaderTooLarge { limit: 1000, .. })
            ),
            "{db}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Truncated and corrupted copies of the real databases.

fn expected_identities(path: &str) -> HashSet<(String, String, String)> {
    tsv(path)
        .into_iter()
        .map(|row| {
            let get = |name: &str| {
                row.iter()
                    .find(|(c, _)| c == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (get("name"), get("version"), get("release"))
        })
        .collect()
}

/// A result from damaged input is sane if it is an error, or packages with non-empty names
/// whose file lists respect the expansion bound.
fn assert_sane(result: &Result<Vec<RpmPackage>, RpmDbError>, input_len: usize) {
    if let Ok(packages) = result {
        let path_bytes: usize = packages
            .iter()
            .flat_map(|p| &p.files)
            .map(String::len)
            .sum();
        assert!(path_bytes <= input_len * FILE_PATH_EXPANSION);
        assert!(packages.iter().all(|p| !p.name.is_empty()));
    }
}

const FIXTURES: [(&str, &str); 3] = [
    (BDB, "bdb/expected-packages.tsv"),
    (NDB, "ndb/expected-packages.tsv"),
    (SQLITE, "sqlite/expected-packages.tsv"),
];

#[test]
fn truncated_copies_give_errors_or_known_packages() {
    for (db, expected) in FIXTURES {
        let bytes = fixture(db);
        let known = expected_identities(expected);
        let step = bytes.len() / 97;
        let cuts = (0..bytes.len()).step_by(step).chain([
            1,
            11,
            12,
            15,
            16,
            99,
            100,
            4095,
            4096,
            bytes.len() - 1,
        ]);
        for cut in cuts {
            let result = read_default(&bytes[..cut]);
            assert_sane(&result, cut);
            if let Ok(packages) = &result {
                assert!(db == SQLITE, "{db} cut at {cut} read without error");
                for p in packages {
                    let identity = (p.name.clone(), p.version.clone(), p.release.clone());
                    assert!(
                        known.contains(&identity),
                        "{db} cut at {cut}: unknown {identity:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn flipped_bytes_give_errors_or_sane_results() {
    for (db, expected) in FIXTURES {
        let bytes = fixture(db);
        let expected_count = tsv(expected).len();
        let step = bytes.len() / 211;
        for at in (0..bytes.len()).step_by(step).chain(0..40) {
            for mask in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                let result = read_default(&damaged);
                assert_sane(&result, damaged.len());
                if let Ok(packages) = &result {
                    assert!(
                        packages.len() <= expected_count,
                        "{db} flip at {at}: {} packages",
                        packages.len()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn fixtures() -> &'static [Vec<u8>; 3] {
    static BYTES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    BYTES.get_or_init(|| [fixture(BDB), fixture(NDB), fixture(SQLITE)])
}

fn with_magic() -> impl Strategy<Value = Vec<u8>> {
    let mut bdb_meta = vec![0u8; 64];
    bdb_meta[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    bdb_meta[20..24].copy_from_slice(&512u32.to_le_bytes());
    bdb_meta[25] = 8;
    let prefixes = vec![
        bdb_meta,
        b"RpmP\0\0\0\0".to_vec(),
        b"SQLite format 3\0".to_vec(),
    ];
    (
        proptest::sample::select(prefixes),
        proptest::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(prefix, tail)| [prefix, tail].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let result = read_default(&bytes);
        assert_sane(&result, bytes.len());
    }

    #[test]
    fn arbitrary_bytes_after_a_magic_never_panic(bytes in with_magic()) {
        let result = read_default(&bytes);
        assert_sane(&result, bytes.len());
    }

    #[test]
    fn arbitrary_header_blobs_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..600)) {
        let result = read_default(&ndb_file(&[(1, blob)]));
        prop_assert!(result.is_err() || result.as_ref().is_ok_and(|p| p.len() == 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_databases_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixtures()[which].clone();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let result = read_default(&bytes);
        assert_sane(&result, bytes.len());
    }
}
