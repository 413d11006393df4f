//! Hostile layers: bombs, floods, lies and escapes end the scan of that layer with a reason
//! (or are skipped with a note) and never panic, hang or read past the limits.

use std::io::Write;

use scan::layer::{LayerError, WalkOptions, walk_layer};
use scan::limits::Limits;

use crate::support::{Layer, fixture, gzip};

fn small_limits() -> Limits {
    Limits {
        max_layer_bytes: 8 << 20,
        max_entries: 1000,
        max_file_bytes: 1 << 20,
        ..Limits::default()
    }
}

#[test]
fn gzip_bomb_stops_at_the_decompressed_limit() {
    // 64 MiB of zeros in one file compress to about 64 KiB.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(64 << 20);
    header.set_mode(0o644);
    tar.append_data(
        &mut header,
        "zeros",
        std::io::Read::take(std::io::repeat(0), 64 << 20),
    )
    .expect("tar");
    let blob = gzip(&tar.into_inner().expect("tar"));
    assert!(blob.len() < 1 << 20, "bomb is {} bytes", blob.len());
    let err =
        walk_layer(blob.as_slice(), &small_limits(), WalkOptions::default()).expect_err("bomb");
    assert!(
        matches!(err, LayerError::TooLarge { limit } if limit == 8 << 20),
        "{err}"
    );
}

#[test]
fn entry_flood_stops_at_the_entry_limit() {
    let mut layer = Layer::new();
    for i in 0..1500 {
        layer = layer.file(&format!("f/{i}"), Vec::new());
    }
    let err = walk_layer(
        layer.gzip().as_slice(),
        &small_limits(),
        WalkOptions::default(),
    )
    .expect_err("flood");
    assert!(
        matches!(err, LayerError::TooManyEntries { limit: 1000 }),
        "{err}"
    );
}

#[test]
fn oversized_interesting_file_is_skipped_with_a_note() {
    let big = vec![b'x'; 2 << 20];
    let layer = Layer::new()
        .file("var/lib/dpkg/status", big)
        .file("etc/os-release", fixture("e2e/debian11/os-release"));
    let fragment = walk_layer(
        layer.gzip().as_slice(),
        &small_limits(),
        WalkOptions::default(),
    )
    .expect("walk");
    assert!(
        fragment
            .notes
            .iter()
            .any(|n| n.contains("var/lib/dpkg/status") && n.contains("max_file_bytes")),
        "{:?}",
        fragment.notes
    );
    assert_eq!(fragment.files.len(), 1, "os-release is still read");
}

#[test]
fn a_size_that_lies_is_corruption_not_a_hang() {
    // A header that claims a 1 TiB status file, followed by 10 bytes and the end of the stream.
    let mut header = tar::Header::new_gnu();
    header.set_path("var/lib/dpkg/status").expect("path");
    header.set_size(1 << 40);
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(b"Package: x");
    let err = walk_layer(
        gzip(&bytes).as_slice(),
        &Limits::default(),
        WalkOptions::default(),
    )
    .expect_err("lie");
    assert!(matches!(err, LayerError::Corrupt { .. }), "{err}");
}

#[test]
fn escapes_links_and_long_paths_are_never_followed() {
    let deep: String = (0..300).map(|i| format!("d{i}/")).collect::<String>() + "etc/os-release";
    let long = format!("{}/etc/os-release", "x".repeat(5000));
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        // `append_data` refuses `..`; write the name through the long-name extension instead.
        tar.append_data(&mut header, path, data)
            .or_else(|_| {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.as_old_mut().name[..path.len().min(100)]
                    .copy_from_slice(&path.as_bytes()[..path.len().min(100)]);
                h.set_cksum();
                tar.append(&h, data)
            })
            .expect("append");
    };
    append("../../etc/os-release", b"ID=evil\nVERSION_ID=1\n");
    append(&deep, b"ID=deep\n");
    append(&long, b"ID=long\n");
    let mut tar = tar.into_inner().expect("tar");
    // Link loops and a hard link to a secret, named like a package database.
    let links = Layer::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("lib/apk/db/installed", "/etc/shadow")
        .tar();
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&links);
    let fragment =
        walk_layer(tar.as_slice(), &Limits::default(), WalkOptions::default()).expect("walk");
    assert!(fragment.files.is_empty(), "{:?}", fragment.files);
    assert!(
        fragment.notes.iter().any(|n| n.contains("leaves the root")),
        "{:?}",
        fragment.notes
    );
    assert!(
        fragment.notes.iter().any(|n| n.contains("bytes long")),
        "{:?}",
        fragment.notes
    );
}

#[test]
fn not_a_tar_at_all() {
    for junk in [
        &b""[..],
        b"hello",
        &[0x1f, 0x8b, 0x08, 0, 0, 0][..],
        &[0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3][..],
    ] {
        // Empty input is an empty layer; everything else must be an error, not a panic.
        let result = walk_layer(junk, &Limits::default(), WalkOptions::default());
        if !junk.is_empty() {
            assert!(result.is_err(), "{junk:?}");
        }
    }
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    w.write_all(&[7u8; 4096]).expect("gz");
    let garbage_tar = w.finish().expect("gz");
    assert!(
        walk_layer(
            garbage_tar.as_slice(),
            &Limits::default(),
            WalkOptions::default()
        )
        .is_err()
    );
}

#[test]
fn huge_tar_metadata_is_refused_not_allocated() {
    // A GNU long-name entry declaring 1 GiB: the walker refuses it before reading it.
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").expect("path");
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(1 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[b'a'; 4096]);
    let err = walk_layer(
        gzip(&bytes).as_slice(),
        &Limits::default(),
        WalkOptions::default(),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("at most 65536"), "{err}");
}

#[test]
fn a_layer_naming_millions_of_files_ends_its_scan() {
    // A 4 MiB dpkg .list of short paths: 2 million owned files, over a 32 MiB evidence limit.
    let list: String = (0..2_000_000).map(|i| format!("/f{i}\n")).collect();
    let layer = Layer::new().file("var/lib/dpkg/info/big.list", list);
    let limits = Limits {
        max_evidence_bytes: 32 << 20,
        ..Limits::default()
    };
    let err =
        walk_layer(layer.gzip().as_slice(), &limits, WalkOptions::default()).expect_err("too much");
    assert!(err.to_string().contains("max_evidence_bytes"), "{err}");
}
