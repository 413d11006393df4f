//! Scan throughput benchmark: how fast the layer walker reads a large, real image compared
//! with plain decompression of the same bytes, driven by `scripts/bench-scan`.
//!
//! The image is made from this machine's `/usr`: files are picked in the order of a hash of
//! their path until the cap (1 GiB by default) is reached, so the sample mixes executables,
//! libraries, Python and Node packages and data from every part of the tree, and the same
//! machine always gives the same sample. `etc/os-release` and `var/lib/dpkg/status` are added
//! to the first layer so the Debian detector has its usual input. The dataset (one gzip
//! layer, the same tar as one zstd layer, and an OCI layout with the tar split into four gzip
//! layers) is built once and kept under the data directory.
//!
//! Every measurement runs in a fresh child process (this program re-executed with `case`),
//! so each case's peak RSS (`VmHWM`) is its own. Rounds run the cases forward, then
//! backward, so the references (plain gunzip and zstd decoding, `flate2` with the zlib-rs
//! backend and `zstd`, exactly as the scan crate uses them) and the walker are measured
//! side by side under the same machine load.
//!
//! Usage:
//!   scan_bench run --data DIR [--cap-mib N] [--rounds N] [--source DIR] [--out FILE]
//!   scan_bench case NAME DATASET_DIR      (internal: one measurement, one JSON line)

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use scan::image::{BlobSource, OciLayout, PlatformChoice};
use scan::layer::{LayerFragment, WalkOptions, walk_layer};
use scan::limits::Limits;
use scan::scanner::{Quiet, ScanOptions, inventory_image};
use serde::{Deserialize, Serialize};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The layers of the OCI layout.
const LAYOUT_LAYERS: usize = 4;
/// The tag of the image in the layout.
const LAYOUT_TAG: &str = "bench";
/// Compression levels as image builders use them: Go's `gzip.DefaultCompression` (Docker,
/// BuildKit) and zstd's default level 3 (containerd, BuildKit).
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;
/// The read buffer in front of the decompressor, as `walk_layer` uses it.
const READ_BUFFER: usize = 256 * 1024;
/// The output chunk of the plain-decompression references.
const DRAIN_BUFFER: usize = 128 * 1024;

/// The cases, in the order of an odd round. A `gunzip`/`unzstd` case is the reference for
/// the walker cases after it.
const CASES: [&str; 12] = [
    "gunzip",
    "gunzip-iocopy",
    "walk-gz",
    "walk-gz-diffid",
    "unzstd",
    "walk-zst",
    "walk-zst-diffid",
    "gunzip-layers-t1",
    "inventory-t1",
    "gunzip-layers-t2",
    "inventory-t2",
    "inventory-t2-nodiffid",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("case") => match (args.get(1), args.get(2)) {
            (Some(name), Some(dir)) => child_case(name, Path::new(dir)),
            _ => Err("usage: scan_bench case NAME DATASET_DIR".into()),
        },
        _ => Err("usage: scan_bench run --data DIR [--cap-mib N] [--rounds N] [--source DIR] [--out FILE]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scan_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Options of `scan_bench run`.
struct RunOptions {
    data: PathBuf,
    source: PathBuf,
    cap_bytes: u64,
    rounds: usize,
    out: Option<PathBuf>,
}

fn parse_run_options(args: &[String]) -> BenchResult<RunOptions> {
    let mut options = RunOptions {
        data: PathBuf::from("/work/bench-data"),
        source: PathBuf::from("/usr"),
        cap_bytes: 1 << 30,
        rounds: 5,
        out: None,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => options.data = PathBuf::from(value),
            "--source" => options.source = PathBuf::from(value),
            "--cap-mib" => options.cap_bytes = value.parse::<u64>()? << 20,
            "--rounds" => options.rounds = value.parse::<usize>()?.max(1),
            "--out" => options.out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

/// What the dataset directory holds, written last so a complete dataset is recognizable.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dataset {
    source: String,
    cap_bytes: u64,
    /// Regular files and symlinks taken from the source tree (directories come on top).
    files: usize,
    symlinks: usize,
    file_bytes: u64,
    executables: usize,
    executable_bytes: u64,
    /// The uncompressed tar stream of the single layer.
    tar_bytes: u64,
    tar_entries: u64,
    gzip_bytes: u64,
    zstd_bytes: u64,
    /// Uncompressed and compressed sizes of the layout's layers.
    layer_tar_bytes: Vec<u64>,
    layer_gzip_bytes: Vec<u64>,
}

/// One measurement, as a child prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measurement {
    case: String,
    round: usize,
    /// Wall time of the measured work.
    secs: f64,
    /// User + system CPU time of the child process (all threads) during the work.
    cpu_secs: f64,
    /// Peak resident set size of the child process.
    hwm_kib: u64,
    /// Uncompressed bytes read.
    bytes: u64,
    /// Packages found (0 for the references).
    packages: usize,
}

fn run(args: &[String]) -> BenchResult<()> {
    let options = parse_run_options(args)?;
    let dataset_dir = options
        .data
        .join(format!("usr-{}mib", options.cap_bytes >> 20));
    let dataset = match read_dataset(&dataset_dir) {
        Some(d) => {
            eprintln!("scan_bench: using the dataset in {}", dataset_dir.display());
            d
        }
        None => build_dataset(&options.source, options.cap_bytes, &dataset_dir)?,
    };
    warm_page_cache(&dataset_dir)?;
    let exe = std::env::current_exe()?;
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        let mut order: Vec<&str> = CASES.to_vec();
        if round % 2 == 0 {
            order.reverse();
        }
        eprintln!(
            "scan_bench: round {round}/{} (load {})",
            options.rounds,
            load_average()
        );
        for case in order {
            let output = Command::new(&exe)
                .arg("case")
                .arg(case)
                .arg(&dataset_dir)
                .output()?;
            if !output.status.success() {
                return Err(format!(
                    "case {case} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
            let mut m: Measurement = serde_json::from_slice(&output.stdout)?;
            m.round = round;
            eprintln!(
                "  {:<22} {:>8.3} s {:>8.1} MB/s  cpu {:>6.2} s  peak {:>7.1} MiB  packages {}",
                m.case,
                m.secs,
                m.bytes as f64 / m.secs / 1e6,
                m.cpu_secs,
                m.hwm_kib as f64 / 1024.0,
                m.packages
            );
            measurements.push(m);
        }
    }
    let report = serde_json::json!({
        "dataset": dataset,
        "rounds": options.rounds,
        "cases": CASES,
        "measurements": measurements,
    });
    let text = serde_json::to_string_pretty(&report)?;
    match &options.out {
        Some(path) => fs::write(path, text)?,
        None => println!("{text}"),
    }
    Ok(())
}

fn read_dataset(dir: &Path) -> Option<Dataset> {
    let bytes = fs::read(dir.join("dataset.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads every dataset file once so that no case pays for the disk.
fn warm_page_cache(dir: &Path) -> BenchResult<()> {
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        for entry in fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                io::copy(&mut File::open(entry.path())?, &mut io::sink())?;
            }
        }
    }
    Ok(())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Building the dataset.

/// One tree entry to put in a layer.
struct Item {
    /// The path inside the layer, `usr/...`.
    name: String,
    source: PathBuf,
    kind: ItemKind,
    mode: u32,
}

enum ItemKind {
    File { size: u64 },
    Symlink { target: PathBuf },
}

/// The tree as it was walked: files and symlinks in depth-first, name-sorted order, and the
/// mode of every directory.
struct Tree {
    items: Vec<Item>,
    dir_modes: BTreeMap<String, u32>,
}

fn walk_tree(root: &Path, prefix: &str) -> BenchResult<Tree> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut tree = Tree {
        items: Vec::new(),
        dir_modes: BTreeMap::new(),
    };
    let mut stack = vec![(root.to_owned(), prefix.to_owned())];
    while let Some((dir, name)) = stack.pop() {
        let meta = fs::symlink_metadata(&dir)?;
        tree.dir_modes
            .insert(name.clone(), meta.permissions().mode() & 0o7777);
        let mut entries: Vec<fs::DirEntry> = match fs::read_dir(&dir) {
            Ok(list) => list.collect::<Result<_, _>>()?,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(e) => return Err(e.into()),
        };
        entries.sort_by_key(fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for entry in entries {
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let child = format!("{name}/{file_name}");
            let meta = entry.metadata()?;
            let mode = meta.permissions().mode() & 0o7777;
            let kind = meta.file_type();
            if kind.is_dir() {
                subdirs.push((entry.path(), child));
            } else if kind.is_file() {
                tree.items.push(Item {
                    name: child,
                    source: entry.path(),
                    kind: ItemKind::File { size: meta.len() },
                    mode,
                });
            } else if kind.is_symlink() {
                tree.items.push(Item {
                    name: child,
                    source: entry.path(),
                    kind: ItemKind::Symlink {
                        target: fs::read_link(entry.path())?,
                    },
                    mode,
                });
            }
        }
        // Depth-first in name order: push in reverse so the first name is walked first.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(tree)
}

/// FNV-1a, 64 bits: a hash that is the same on every machine and Rust version, so the
/// sample only depends on the tree.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Picks files in hash order until `cap` bytes, and the symlinks of directories that keep a
/// file; returns them in tree order.
fn sample(tree: Tree, cap: u64) -> (Vec<Item>, BTreeMap<String, u32>) {
    let mut files: Vec<(u64, usize, u64)> = tree
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item.kind {
            ItemKind::File { size } => Some((fnv1a(item.name.as_bytes()), i, size)),
            ItemKind::Symlink { .. } => None,
        })
        .collect();
    files.sort_unstable();
    let mut chosen = vec![false; tree.items.len()];
    let mut total = 0u64;
    for (_, index, size) in files {
        if total >= cap {
            break;
        }
        if let Some(slot) = chosen.get_mut(index) {
            *slot = true;
        }
        total += size;
    }
    let kept_dirs: HashSet<&str> = tree
        .items
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .flat_map(|(item, _)| ancestors(&item.name))
        .collect();
    let keep: Vec<bool> = tree
        .items
        .iter()
        .zip(&chosen)
        .map(|(item, c)| match item.kind {
            ItemKind::File { .. } => *c,
            ItemKind::Symlink { .. } => ancestors(&item.name)
                .last()
                .is_some_and(|parent| kept_dirs.contains(parent)),
        })
        .collect();
    let items = tree
        .items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect();
    (items, tree.dir_modes)
}

/// `a/b/c` → `a`, `a/b`.
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(i, _)| &name[..i])
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: oci::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: oci::Hasher::new(oci::Algorithm::Sha256),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finish().to_string(), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that writes everything to two writers.
struct Both<A, B>(A, B);

impl<A: Write, B: Write> Write for Both<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// A file's content that must be exactly as long as the header says: a file that shrank
/// while the tar was written is an error, not a corrupt archive.
struct Exact {
    file: io::Take<File>,
    remaining: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 && self.remaining > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a file shrank while the dataset was written",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Writes entries as a tar, with each directory the first time something inside it comes.
struct LayerTar<'a, W: Write> {
    builder: tar::Builder<W>,
    dir_modes: &'a BTreeMap<String, u32>,
    written_dirs: HashSet<String>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

impl<'a, W: Write> LayerTar<'a, W> {
    fn new(writer: W, dir_modes: &'a BTreeMap<String, u32>) -> LayerTar<'a, W> {
        LayerTar {
            builder: tar::Builder::new(writer),
            dir_modes,
            written_dirs: HashSet::new(),
        }
    }

    fn parents(&mut self, name: &str) -> io::Result<()> {
        for dir in ancestors(name) {
            if self.written_dirs.insert(dir.to_owned()) {
                let mode = self.dir_modes.get(dir).copied().unwrap_or(0o755);
                let mut h = header(tar::EntryType::Directory, mode, 0);
                self.builder
                    .append_data(&mut h, format!("{dir}/"), io::empty())?;
            }
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, mode: u32, content: &[u8]) -> io::Result<()> {
        self.parents(name)?;
        let mut h = header(tar::EntryType::Regular, mode, content.len() as u64);
        self.builder.append_data(&mut h, name, content)
    }

    fn item(&mut self, item: &Item) -> io::Result<()> {
        self.parents(&item.name)?;
        match &item.kind {
            ItemKind::File { size } => {
                let mut h = header(tar::EntryType::Regular, item.mode, *size);
                let file = File::open(&item.source)?;
                let content = Exact {
                    file: file.take(*size),
                    remaining: *size,
                };
                self.builder.append_data(&mut h, &item.name, content)
            }
            ItemKind::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                self.builder.append_link(&mut h, &item.name, target)
            }
        }
    }

    fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// The files a Debian image's first layer has besides the tree: its os-release and dpkg
/// database, from this machine.
fn base_files() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("etc/os-release", "/etc/os-release"),
        ("var/lib/dpkg/status", "/var/lib/dpkg/status"),
    ]
    .into_iter()
    .filter_map(|(name, path)| fs::read(path).ok().map(|bytes| (name, bytes)))
    .collect()
}

fn write_layer<W: Write>(
    writer: W,
    base: &[(&str, Vec<u8>)],
    items: &[Item],
    dir_modes: &BTreeMap<String, u32>,
) -> io::Result<W> {
    let mut tar = LayerTar::new(writer, dir_modes);
    for (name, content) in base {
        tar.bytes(name, 0o644, content)?;
    }
    for item in items {
        tar.item(item)?;
    }
    tar.finish()
}

fn build_dataset(source: &Path, cap: u64, dir: &Path) -> BenchResult<Dataset> {
    let started = Instant::now();
    eprintln!(
        "scan_bench: building a {} MiB dataset from {} in {}",
        cap >> 20,
        source.display(),
        dir.display()
    );
    let prefix = source
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("usr")
        .to_owned();
    let (items, dir_modes) = sample(walk_tree(source, &prefix)?, cap);
    let base = base_files();
    let building = dir.with_extension("building");
    if building.exists() {
        fs::remove_dir_all(&building)?;
    }
    fs::create_dir_all(building.join("layout/blobs/sha256"))?;

    let chunks = split_by_bytes(&items, LAYOUT_LAYERS);
    let (single, layers) = std::thread::scope(|scope| {
        let layout = scope.spawn(|| write_layout(&building, &base, &chunks, &dir_modes));
        let single = write_single(&building, &base, &items, &dir_modes);
        let layers = layout
            .join()
            .unwrap_or_else(|_| Err("the layout writer panicked".into()));
        (single, layers)
    });
    let (tar_bytes, gzip_bytes, zstd_bytes) = single?;
    let layers = layers?;

    let executables: Vec<u64> = items
        .iter()
        .filter_map(|i| match i.kind {
            ItemKind::File { size } if i.mode & 0o111 != 0 => Some(size),
            _ => None,
        })
        .collect();
    let dataset = Dataset {
        source: source.display().to_string(),
        cap_bytes: cap,
        files: items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::File { .. }))
            .count(),
        symlinks: items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Symlink { .. }))
            .count(),
        file_bytes: items
            .iter()
            .map(|i| match i.kind {
                ItemKind::File { size } => size,
                ItemKind::Symlink { .. } => 0,
            })
            .sum(),
        executables: executables.len(),
        executable_bytes: executables.iter().sum(),
        tar_bytes,
        tar_entries: 0,
        gzip_bytes,
        zstd_bytes,
        layer_tar_bytes: layers.iter().map(|l| l.tar_bytes).collect(),
        layer_gzip_bytes: layers.iter().map(|l| l.blob_bytes).collect(),
    };
    let mut dataset = dataset;
    dataset.tar_entries = count_entries(&building.join("layer.tar.zst"))?;
    fs::write(
        building.join("dataset.json"),
        serde_json::to_vec_pretty(&dataset)?,
    )?;
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::rename(&building, dir)?;
    eprintln!(
        "scan_bench: dataset built in {:.0} s: {} files, {:.0} MiB tar, {:.0} MiB gzip, {:.0} MiB zstd",
        started.elapsed().as_secs_f64(),
        dataset.files,
        tar_bytes as f64 / 1048576.0,
        gzip_bytes as f64 / 1048576.0,
        zstd_bytes as f64 / 1048576.0
    );
    Ok(dataset)
}

fn count_entries(path: &Path) -> BenchResult<u64> {
    let decoder = zstd::stream::read::Decoder::new(File::open(path)?)?;
    let mut archive = tar::Archive::new(decoder);
    let mut count = 0;
    for entry in archive.entries()? {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// Splits `items` into `parts` runs of about equal file bytes.
fn split_by_bytes(items: &[Item], parts: usize) -> Vec<&[Item]> {
    let size = |i: &Item| match i.kind {
        ItemKind::File { size } => size,
        ItemKind::Symlink { .. } => 0,
    };
    let total: u64 = items.iter().map(size).sum();
    let mut chunks = Vec::with_capacity(parts);
    let mut start = 0;
    let mut seen = 0u64;
    for (index, item) in items.iter().enumerate() {
        seen += size(item);
        let boundary = total * (chunks.len() as u64 + 1) / parts as u64;
        if seen >= boundary && chunks.len() + 1 < parts {
            chunks.push(&items[start..=index]);
            start = index + 1;
        }
    }
    chunks.push(&items[start..]);
    chunks
}

/// The single layer, once as gzip and once as zstd; returns (tar, gzip, zstd) sizes.
fn write_single(
    dir: &Path,
    base: &[(&str, Vec<u8>)],
    items: &[Item],
    dir_modes: &BTreeMap<String, u32>,
) -> BenchResult<(u64, u64, u64)> {
    let gz = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(dir.join("layer.tar.gz"))?),
        flate2::Compression::new(GZIP_LEVEL),
    );
    let zst = zstd::stream::write::Encoder::new(
        BufWriter::new(File::create(dir.join("layer.tar.zst"))?),
        ZSTD_LEVEL,
    )?;
    let counted = Hashing::new(Both(gz, zst));
    let (Both(gz, zst), _, tar_bytes) = write_layer(counted, base, items, dir_modes)?.finish();
    gz.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    zst.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    let size = |name: &str| fs::metadata(dir.join(name)).map(|m| m.len());
    Ok((tar_bytes, size("layer.tar.gz")?, size("layer.tar.zst")?))
}

struct LayerBlob {
    digest: String,
    diff_id: String,
    tar_bytes: u64,
    blob_bytes: u64,
}

/// The layout: one gzip layer per chunk, a config with their diff_ids, a manifest and an
/// index naming it [`LAYOUT_TAG`].
fn write_layout(
    dir: &Path,
    base: &[(&str, Vec<u8>)],
    chunks: &[&[Item]],
    dir_modes: &BTreeMap<String, u32>,
) -> BenchResult<Vec<LayerBlob>> {
    let root = dir.join("layout");
    let blobs = root.join("blobs/sha256");
    let mut layers = Vec::with_capacity(chunks.len());
    for (index, chunk) in chunks.iter().enumerate() {
        let temp = blobs.join(format!("layer-{index}.tmp"));
        let blob = Hashing::new(BufWriter::new(File::create(&temp)?));
        let tar = Hashing::new(flate2::write::GzEncoder::new(
            blob,
            flate2::Compression::new(GZIP_LEVEL),
        ));
        let layer_base = if index == 0 { base } else { &[] };
        let (gz, diff_id, tar_bytes) = write_layer(tar, layer_base, chunk, dir_modes)?.finish();
        let (file, digest, blob_bytes) = gz.finish()?.finish();
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&temp, blobs.join(&digest["sha256:".len()..]))?;
        layers.push(LayerBlob {
            digest,
            diff_id,
            tar_bytes,
            blob_bytes,
        });
    }
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created_by": format!("COPY /usr part {} of {}", i + 1, layers.len())}))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": history,
        "config": {},
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = put_blob(&root, &config_bytes)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest,
            "size": l.blob_bytes,
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = put_blob(&root, &manifest_bytes)?;
    scan::testkit::put_index(
        &root,
        LAYOUT_TAG,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": {"os": "linux", "architecture": "amd64"},
        }),
    );
    Ok(layers)
}

fn put_blob(root: &Path, bytes: &[u8]) -> BenchResult<String> {
    let digest = scan::testkit::sha256(bytes);
    fs::write(
        root.join("blobs/sha256").join(&digest["sha256:".len()..]),
        bytes,
    )?;
    Ok(digest)
}

// ---------------------------------------------------------------------------------------
// One measurement, in a child process.

/// What a case read and found.
struct Work {
    bytes: u64,
    packages: usize,
}

fn child_case(name: &str, dir: &Path) -> BenchResult<()> {
    let cpu_before = scan::testkit::process_cpu_secs()?;
    let started = Instant::now();
    let work = run_case(name, dir)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = scan::testkit::process_cpu_secs()? - cpu_before;
    let m = Measurement {
        case: name.to_owned(),
        round: 0,
        secs,
        cpu_secs,
        hwm_kib: scan::testkit::peak_rss_kib()?,
        bytes: work.bytes,
        packages: work.packages,
    };
    println!("{}", serde_json::to_string(&m)?);
    Ok(())
}

fn run_case(name: &str, dir: &Path) -> BenchResult<Work> {
    let gz = dir.join("layer.tar.gz");
    let zst = dir.join("layer.tar.zst");
    let diff_id = WalkOptions {
        compute_diff_id: true,
    };
    let plain = WalkOptions {
        compute_diff_id: false,
    };
    match name {
        "gunzip" => Ok(reference(gunzip(File::open(gz)?)?)),
        "gunzip-iocopy" => {
            let buffered =
                BufReader::with_capacity(READ_BUFFER, File::open(dir.join("layer.tar.gz"))?);
            Ok(reference(io::copy(
                &mut flate2::bufread::MultiGzDecoder::new(buffered),
                &mut io::sink(),
            )?))
        }
        "unzstd" => Ok(reference(unzstd(File::open(zst)?)?)),
        "walk-gz" => walk(&gz, plain),
        "walk-gz-diffid" => walk(&gz, diff_id),
        "walk-zst" => walk(&zst, plain),
        "walk-zst-diffid" => walk(&zst, diff_id),
        "gunzip-layers-t1" => gunzip_layers(dir, 1),
        "gunzip-layers-t2" => gunzip_layers(dir, 2),
        "inventory-t1" => inventory(dir, 1, diff_id),
        "inventory-t2" => inventory(dir, 2, diff_id),
        "inventory-t2-nodiffid" => inventory(dir, 2, plain),
        other => Err(format!("unknown case {other}").into()),
    }
}

fn reference(bytes: u64) -> Work {
    Work { bytes, packages: 0 }
}

/// Plain decompression, the way the walker decompresses, into a sink.
fn gunzip(blob: impl Read) -> io::Result<u64> {
    let buffered = BufReader::with_capacity(READ_BUFFER, blob);
    drain(flate2::bufread::MultiGzDecoder::new(buffered))
}

fn unzstd(blob: impl Read) -> io::Result<u64> {
    let buffered = BufReader::with_capacity(READ_BUFFER, blob);
    drain(zstd::stream::read::Decoder::with_buffer(buffered)?)
}

/// Reads `decoder` to its end in [`DRAIN_BUFFER`] chunks. `io::copy` would use 8 KiB
/// chunks, which makes zlib-rs copy more through its window: about 10 % slower, a reference
/// too easy to beat.
fn drain(mut decoder: impl Read) -> io::Result<u64> {
    let mut buffer = vec![0u8; DRAIN_BUFFER];
    let mut total = 0u64;
    loop {
        match decoder.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn packages_in(fragment: &LayerFragment) -> usize {
    fragment
        .files
        .iter()
        .map(|(_, evidence)| evidence.packages.len())
        .sum()
}

fn walk(path: &Path, options: WalkOptions) -> BenchResult<Work> {
    let fragment = walk_layer(File::open(path)?, &Limits::default(), options)?;
    Ok(Work {
        bytes: fragment.bytes,
        packages: packages_in(&fragment),
    })
}

/// Gunzips every layer of the layout, `threads` layers at a time.
fn gunzip_layers(dir: &Path, threads: usize) -> BenchResult<Work> {
    let layout = OciLayout::new(&dir.join("layout"));
    let image = layout
        .resolve(Some(LAYOUT_TAG), &PlatformChoice::All)?
        .into_iter()
        .next()
        .ok_or("the layout has no image")?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> BenchResult<u64> {
        let mut bytes = 0;
        loop {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(layer) = image.layers.get(index) else {
                return Ok(bytes);
            };
            bytes += gunzip(layout.open_layer(layer)?)?;
        }
    };
    let total = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut total = work()?;
        for helper in helpers {
            total += helper.join().map_err(|_| "a gunzip thread panicked")??;
        }
        Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(total)
    })?;
    Ok(reference(total))
}

fn inventory(dir: &Path, threads: usize, walk: WalkOptions) -> BenchResult<Work> {
    let layout = OciLayout::new(&dir.join("layout"));
    let image = layout
        .resolve(Some(LAYOUT_TAG), &PlatformChoice::All)?
        .into_iter()
        .next()
        .ok_or("the layout has no image")?;
    let options = ScanOptions {
        limits: Limits::default(),
        walk,
        threads,
    };
    let inventory = inventory_image(&layout, &image, &options, &Quiet)?;
    let dataset = read_dataset(dir).ok_or("dataset.json is missing")?;
    Ok(Work {
        bytes: dataset.layer_tar_bytes.iter().sum(),
        packages: inventory.packages.len(),
    })
}
