//! Building test images: deterministic tar layers (gzip, zstd or plain) and OCI image
//! layouts, so tests assemble images from real package metadata at test time. Compiled only
//! with the `testkit` feature, which only tests enable.

use std::path::Path;

pub fn sha256(bytes: &[u8]) -> String {
    oci::Digest::compute(oci::Algorithm::Sha256, bytes).to_string()
}

enum Entry {
    File {
        path: String,
        bytes: Vec<u8>,
        mode: u32,
    },
    Dir(String),
    Symlink {
        path: String,
        target: String,
    },
}

/// A layer under construction. Entries are written in the order they are added.
#[derive(Default)]
pub struct Layer {
    entries: Vec<Entry>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    pub fn file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Layer {
        self.entries.push(Entry::File {
            path: path.to_owned(),
            bytes: bytes.into(),
            mode: 0o644,
        });
        self
    }

    pub fn executable(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Layer {
        self.entries.push(Entry::File {
            path: path.to_owned(),
            bytes: bytes.into(),
            mode: 0o755,
        });
        self
    }

    pub fn dir(mut self, path: &str) -> Layer {
        self.entries.push(Entry::Dir(path.to_owned()));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Layer {
        self.entries.push(Entry::Symlink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
        self
    }

    /// `.wh.<name>`: deletes `path` from lower layers.
    pub fn whiteout(self, path: &str) -> Layer {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, Vec::new())
    }

    /// `.wh..wh..opq`: hides everything lower layers put in `dir`.
    pub fn opaque(self, dir: &str) -> Layer {
        self.file(&format!("{dir}/.wh..wh..opq"), Vec::new())
    }

    pub fn tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            match entry {
                Entry::File { path, bytes, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    builder
                        .append_data(&mut header, path, bytes.as_slice())
                        .expect("tar file");
                }
                Entry::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .expect("tar dir");
                }
                Entry::Symlink { path, target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .expect("tar symlink");
                }
            }
        }
        builder.into_inner().expect("tar finish")
    }

    pub fn gzip(&self) -> Vec<u8> {
        gzip(&self.tar())
    }

    pub fn zstd(&self) -> Vec<u8> {
        zstd::encode_all(self.tar().as_slice(), 3).expect("zstd")
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// One layer blob as it goes into a manifest.
pub struct Blob {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// The uncompressed tar, for the config's diff_ids.
    pub tar: Vec<u8>,
}

impl Blob {
    pub fn gzip(layer: &Layer) -> Blob {
        Blob {
            bytes: layer.gzip(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
            tar: layer.tar(),
        }
    }

    pub fn zstd(layer: &Layer) -> Blob {
        Blob {
            bytes: layer.zstd(),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
            tar: layer.tar(),
        }
    }

    pub fn plain(layer: &Layer) -> Blob {
        let tar = layer.tar();
        Blob {
            bytes: tar.clone(),
            media_type: "application/vnd.oci.image.layer.v1.tar",
            tar,
        }
    }
}

fn put_blob(root: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&digest[7..]), bytes).expect("blob");
    digest
}

/// The config, manifest and layers of one image written into a layout; returns the
/// manifest descriptor (JSON) for an index.
pub fn put_image(root: &Path, blobs: &[Blob], arch: &str) -> serde_json::Value {
    let diff_ids: Vec<String> = blobs.iter().map(|b| sha256(&b.tar)).collect();
    let history: Vec<serde_json::Value> = (0..blobs.len())
        .map(|i| serde_json::json!({"created_by": format!("RUN step {i}")}))
        .collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
        "config": {},
    });
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_digest = put_blob(root, &config_bytes);
    let layers: Vec<serde_json::Value> = blobs
        .iter()
        .map(|b| {
            let d = put_blob(root, &b.bytes);
            serde_json::json!({"mediaType": b.media_type, "digest": d, "size": b.bytes.len()})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest");
    let digest = put_blob(root, &manifest_bytes);
    serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": manifest_bytes.len(),
        "platform": {"os": "linux", "architecture": arch},
    })
}

/// Writes `index.json` naming `descriptor` as `tag`.
pub fn put_index(root: &Path, tag: &str, mut descriptor: serde_json::Value) {
    descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("layout");
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index");
}

/// A single-platform image layout at `root`, tagged `tag`.
pub fn write_layout(root: &Path, tag: &str, blobs: &[Blob]) -> String {
    let descriptor = put_image(root, blobs, "amd64");
    let digest = descriptor["digest"].as_str().unwrap_or_default().to_owned();
    put_index(root, tag, descriptor);
    digest
}

/// The scan crate's test fixtures (`crates/scan/tests/fixtures`).
pub fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Debian 11 over three layers: a base, an upgrade that also removes a package and installs
/// Debian's python3-requests, and an application layer with pip and npm packages plus a
/// whiteout and an opaque directory.
pub fn debian_layers() -> Vec<Layer> {
    let base = Layer::new()
        .file("etc/os-release", fixture("e2e/debian11/os-release"))
        .file("var/lib/dpkg/status", fixture("e2e/debian11/status-base"))
        .file(
            "usr/local/lib/python3.9/site-packages/PyYAML-5.3.dist-info/METADATA",
            fixture("e2e/python/PyYAML-5.3.METADATA"),
        )
        .file(
            "opt/app/node_modules/minimist/package.json",
            fixture("e2e/npm/minimist-1.2.5.package.json"),
        );
    let upgrade = Layer::new()
        .file(
            "var/lib/dpkg/status",
            fixture("e2e/debian11/status-upgrade"),
        )
        .file(
            "var/lib/dpkg/info/python3-requests.list",
            fixture("e2e/debian11/python3-requests.list"),
        )
        .file(
            "usr/lib/python3/dist-packages/requests-2.25.1.egg-info/PKG-INFO",
            fixture("e2e/debian11/requests-2.25.1.PKG-INFO"),
        );
    let app = Layer::new()
        .whiteout("usr/local/lib/python3.9/site-packages/PyYAML-5.3.dist-info")
        .opaque("opt/app")
        .file(
            "usr/local/lib/python3.9/site-packages/requests-2.19.1.dist-info/METADATA",
            fixture("e2e/python/requests-2.19.1.METADATA"),
        )
        .file(
            "opt/app/node_modules/lodash/package.json",
            fixture("e2e/npm/lodash-4.17.15.package.json"),
        )
        // A link to a package database is never followed.
        .symlink("var/lib/dpkg/status.d/evil", "../../../../etc/shadow");
    vec![base, upgrade, app]
}

/// Builds a vulnerability DB at `out` from fixture inputs (paths under [`fixtures`]) with the
/// importers `bonded db build` uses.
pub fn build_db(out: &Path, inputs: &[&str]) -> crate::db::VulnDb {
    let mut builder = crate::db::DbBuilder::create(out).expect("create db");
    for input in inputs {
        let path = fixtures().join(input);
        let format = crate::import::detect(&path).expect("detect");
        let stats = crate::import::import(&path, format, &mut |record| {
            match record {
                crate::import::Record::Advisory(a) => builder.add_advisory(&a),
                crate::import::Record::Vex(v) => builder.add_vex(&v),
            }
            .map_err(|e| crate::import::ImportError::Sink(e.to_string().into()))
        })
        .expect("import");
        builder
            .add_source(&crate::db::SourceInfo {
                name: (*input).to_owned(),
                format: format!("{format:?}"),
                sha256: "0".repeat(64),
                records: stats.records as u64,
                skipped: stats.skipped.len() as u64,
            })
            .expect("source");
    }
    builder.finish("2026-11-25T00:00:00Z").expect("finish");
    crate::db::VulnDb::open(out).expect("open db")
}

/// User + system time of this process so far, all threads, in seconds (`/proc/self/stat`
/// fields 14 and 15, in clock ticks of 1/100 s on Linux). For the benchmarks.
pub fn process_cpu_secs() -> std::io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may contain spaces; after it, field 3
    // (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> std::io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| std::io::Error::other("unreadable /proc/self/stat"))
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// This process's peak resident set size in KiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_kib() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmHWM in /proc/self/status"))
}
