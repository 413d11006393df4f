//! Re-match benchmark: how long the scan worker takes to re-match every stored inventory
//! after the vulnerability DB changes, driven by `scripts/bench-scan`.
//!
//! Setup (untimed): two DBs are built through the library from real feeds, the full Debian
//! DSA and DLA lists and the OSV exports for PyPI, Go, crates.io and npm. The *new* DB holds
//! every record; the *old* one lacks the newest 2 % of each feed (by publication date), so
//! switching between them is a DB update that adds and removes findings. A metadata store
//! gets one scan result per image (1,000 by default). Each inventory is real-looking: a
//! random subset of the 747 packages of a Debian 12 host's dpkg database (read by the real
//! detectors), labelled Debian 10 or 11 so the DSA/DLA data applies, with each source
//! package set back to the version a DSA or DLA fixed before a random snapshot date (the
//! image was built then, so the later advisories hit it), plus a random pick of real PyPI
//! and npm metadata, Go modules (from two `go.mod` files) and crates (from three
//! `Cargo.lock` files).
//!
//! Measurement, in a fresh child process so its peak RSS (`VmHWM`) is its own: a
//! `ScanWorker` whose DB file is replaced (hard link, then rename, as an update does) by the
//! old DB, then alternately by the new and the old one. `check_db` loads each, and
//! `rematch_all` re-matches every stored inventory, records the changes and stores the new
//! findings. The first re-match (the initial match against the old DB) is a warm-up; the
//! others are timed.
//!
//! Usage:
//!   rematch_bench run [--data DIR] [--images N] [--runs N] [--work DIR] [--out FILE]
//!   rematch_bench measure WORK_DIR RUNS      (internal: the timed part, one JSON line)

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use events::scan_worker::{ScanWorker, ScanWorkerConfig};
use scan::advisory::{Advisory, Event};
use scan::db::{DbBuilder, SourceInfo, VulnDb};
use scan::import::{self, Record};
use scan::layer::{WalkOptions, walk_layer};
use scan::limits::Limits;
use scan::model::{Distro, Inventory, LayerInfo, Package, PackageKind};
use serde::{Deserialize, Serialize};
use store::{Durability, FsBlobStore, ScanResultRow, ScanStore, SqliteMetaStore};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The share of each feed, newest first, that the old DB lacks.
const HELD_BACK_PERCENT: usize = 2;
/// Debian packages per image at least (the rest of the range is random).
const MIN_DEBIAN_PACKAGES: usize = 90;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rematch_bench: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.first().map(String::as_str) {
        Some("run") => runtime.block_on(run(&args[1..])),
        Some("measure") => match (args.get(1), args.get(2).map(|r| r.parse::<usize>())) {
            (Some(work), Some(Ok(runs))) => runtime.block_on(measure(Path::new(work), runs)),
            _ => Err("usage: rematch_bench measure WORK_DIR RUNS".into()),
        },
        _ => Err("usage: rematch_bench run [--data DIR] [--images N] [--runs N] [--work DIR] [--out FILE]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rematch_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct RunOptions {
    /// `/work/shared/data`: advisories, package databases and language metadata.
    data: PathBuf,
    images: usize,
    runs: usize,
    work: PathBuf,
    keep: bool,
    out: Option<PathBuf>,
}

fn parse_run_options(args: &[String]) -> BenchResult<RunOptions> {
    let mut options = RunOptions {
        data: PathBuf::from("/work/shared/data"),
        images: 1000,
        runs: 5,
        work: std::env::temp_dir().join(format!("rematch-bench-{}", std::process::id())),
        keep: false,
        out: None,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--keep" {
            options.keep = true;
            continue;
        }
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => options.data = PathBuf::from(value),
            "--images" => options.images = value.parse()?,
            "--runs" => options.runs = value.parse::<usize>()?.max(1),
            "--work" => options.work = PathBuf::from(value),
            "--out" => options.out = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

/// The timed part's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Measured {
    warmup: Rematch,
    runs: Vec<Rematch>,
    /// Findings stored after matching with the old and with the new DB.
    findings_old: u64,
    findings_new: u64,
    hwm_kib: u64,
    cpu_secs: f64,
}

/// One DB switch.
#[derive(Debug, Serialize, Deserialize)]
struct Rematch {
    db: String,
    /// `check_db`: opening the replaced file.
    load_secs: f64,
    /// `rematch_all` as the worker reports it.
    rematch_secs: f64,
    manifests: usize,
    changed: usize,
}

async fn run(args: &[String]) -> BenchResult<()> {
    let options = parse_run_options(args)?;
    fs::create_dir_all(&options.work)?;
    let started = Instant::now();
    let advisories = options.data.join("advisories");
    let inputs = [
        advisories.join("debian/security-tracker/DSA/list"),
        advisories.join("debian/security-tracker/DLA/list"),
        advisories.join("osv/PyPI/all.zip"),
        advisories.join("osv/Go/all.zip"),
        advisories.join("osv/crates.io/all.zip"),
        advisories.join("osv/npm"),
    ];
    let feeds = inputs
        .iter()
        .map(|p| Feed::import(p))
        .collect::<BenchResult<Vec<_>>>()?;
    let (old, new) = (options.work.join("old.db"), options.work.join("new.db"));
    let db_stats = build_dbs(&feeds, &old, &new)?;
    eprintln!(
        "rematch_bench: DBs built in {:.1} s ({} advisories, {} held back from the old DB)",
        started.elapsed().as_secs_f64(),
        db_stats.advisories,
        db_stats.held_back
    );

    let material = Material::load(&options.data, &feeds)?;
    let inventories: Vec<Inventory> = (0..options.images)
        .map(|i| material.image(i as u64))
        .collect();
    let store_stats = fill_store(&options.work, &inventories).await?;
    eprintln!(
        "rematch_bench: {} inventories stored ({} packages, {:.1} MiB of JSON) after {:.1} s",
        inventories.len(),
        store_stats.packages,
        store_stats.inventory_bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let output = Command::new(std::env::current_exe()?)
        .arg("measure")
        .arg(&options.work)
        .arg(options.runs.to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "the measuring child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let measured: Measured = serde_json::from_slice(&output.stdout)?;
    for r in std::iter::once(&measured.warmup).chain(&measured.runs) {
        eprintln!(
            "  to {:<4} load {:>6.1} ms  rematch {:>7.3} s  manifests {}  changed {}",
            r.db,
            r.load_secs * 1e3,
            r.rematch_secs,
            r.manifests,
            r.changed
        );
    }
    let report = serde_json::json!({
        "images": inventories.len(),
        "packages": store_stats.packages,
        "packages_by_kind": store_stats.by_kind,
        "inventory_json_bytes": store_stats.inventory_bytes,
        "store_bytes": dir_bytes(&options.work.join("meta"))?,
        "db": db_stats,
        "measured": measured,
    });
    let text = serde_json::to_string_pretty(&report)?;
    match &options.out {
        Some(path) => fs::write(path, text)?,
        None => println!("{text}"),
    }
    if !options.keep {
        fs::remove_dir_all(&options.work)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The DBs.

/// One input, imported once.
struct Feed {
    path: PathBuf,
    format: import::InputFormat,
    sha256: String,
    records: Vec<Record>,
    skipped: u64,
}

impl Feed {
    fn import(path: &Path) -> BenchResult<Feed> {
        let format = import::detect(path)?;
        let mut records = Vec::new();
        let stats = import::import(path, format, &mut |record| {
            records.push(record);
            Ok(())
        })?;
        Ok(Feed {
            path: path.to_owned(),
            format,
            sha256: content_digest(path)?,
            records,
            skipped: stats.skipped.len() as u64,
        })
    }

    /// Whether record `index` is among the newest [`HELD_BACK_PERCENT`] of this feed.
    fn held_back(&self) -> Vec<bool> {
        let mut order: Vec<(Option<&str>, usize)> = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                Record::Advisory(a) => (a.published.as_deref(), i),
                Record::Vex(_) => (None, i),
            })
            .collect();
        order.sort();
        let count = self.records.len() * HELD_BACK_PERCENT / 100;
        let mut held = vec![false; self.records.len()];
        for (_, index) in order.iter().rev().take(count) {
            if let Some(slot) = held.get_mut(*index) {
                *slot = true;
            }
        }
        held
    }
}

/// SHA-256 over a file, or over the names and contents of a directory's files in name order.
fn content_digest(path: &Path) -> BenchResult<String> {
    let mut hasher = oci::Hasher::new(oci::Algorithm::Sha256);
    if path.is_dir() {
        let mut names: Vec<PathBuf> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            hasher.update(name.to_string_lossy().as_bytes());
            hasher.update(&fs::read(&name)?);
        }
    } else {
        hasher.update(&fs::read(path)?);
    }
    Ok(hasher.finish().hex().to_owned())
}

#[derive(Debug, Serialize)]
struct DbStats {
    advisories: usize,
    held_back: usize,
    inputs: Vec<String>,
    new_version: String,
    old_version: String,
    new_bytes: u64,
    old_bytes: u64,
}

fn build_dbs(feeds: &[Feed], old: &Path, new: &Path) -> BenchResult<DbStats> {
    let mut held_back = 0;
    for (path, built_at, hold) in [
        (new, "2026-01-02T00:00:00Z", false),
        (old, "2026-01-01T00:00:00Z", true),
    ] {
        let mut builder = DbBuilder::create(path)?;
        for feed in feeds {
            let held = feed.held_back();
            let mut records = 0;
            for (record, is_held) in feed.records.iter().zip(held) {
                if hold && is_held {
                    held_back += 1;
                    continue;
                }
                records += 1;
                match record {
                    Record::Advisory(a) => builder.add_advisory(a)?,
                    Record::Vex(v) => builder.add_vex(v)?,
                }
            }
            let name = if hold {
                format!(
                    "{} (without its newest {HELD_BACK_PERCENT} %)",
                    feed.path.display()
                )
            } else {
                feed.path.display().to_string()
            };
            builder.add_source(&SourceInfo {
                name,
                format: format!("{:?}", feed.format),
                sha256: feed.sha256.clone(),
                records,
                skipped: feed.skipped,
            })?;
        }
        builder.finish(built_at)?;
    }
    Ok(DbStats {
        advisories: feeds.iter().map(|f| f.records.len()).sum(),
        held_back,
        inputs: feeds.iter().map(|f| f.path.display().to_string()).collect(),
        new_version: VulnDb::open(new)?.version().to_owned(),
        old_version: VulnDb::open(old)?.version().to_owned(),
        new_bytes: fs::metadata(new)?.len(),
        old_bytes: fs::metadata(old)?.len(),
    })
}

// ---------------------------------------------------------------------------------------
// The inventories.

/// SplitMix64: a small deterministic generator, so image `i` is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A Debian release the DSA/DLA data covers.
struct Release {
    version_id: &'static str,
    codename: &'static str,
    /// The dates of every fix for this release, sorted: an image's snapshot date is one.
    fix_dates: Vec<String>,
}

/// A group of language packages that an image has or not.
struct Bundle {
    percent: u64,
    packages: Vec<Package>,
}

/// Everything the images are made from.
struct Material {
    debian: Vec<Package>,
    bundles: Vec<Bundle>,
    releases: Vec<Release>,
    /// (ecosystem, source package) → (date, fixed version), sorted by date.
    fixes: BTreeMap<(String, String), Vec<(String, String)>>,
}

impl Material {
    fn load(data: &Path, feeds: &[Feed]) -> BenchResult<Material> {
        let detected = detected_packages(data)?;
        let (debian, language): (Vec<Package>, Vec<Package>) = detected
            .into_iter()
            .partition(|p| p.kind == PackageKind::Deb);
        let mut bundles: Vec<Bundle> = language
            .into_iter()
            .map(|p| Bundle {
                percent: if p.kind == PackageKind::Python {
                    50
                } else {
                    40
                },
                packages: vec![p],
            })
            .collect();
        let lang = data.join("language");
        for (file, binary, percent) in [
            ("go/distribution/go.mod", "usr/bin/registry", 30),
            ("go/notation/go.mod", "usr/local/bin/notation", 20),
        ] {
            bundles.push(Bundle {
                percent,
                packages: go_modules(&fs::read_to_string(lang.join(file))?, binary),
            });
        }
        for (file, binary, percent) in [
            ("cargo/trow/Cargo.lock", "usr/local/bin/trow", 10),
            ("cargo/ripgrep/Cargo.lock", "usr/bin/rg", 20),
            ("cargo/axum/Cargo.lock", "app/server", 10),
        ] {
            bundles.push(Bundle {
                percent,
                packages: crates(&fs::read_to_string(lang.join(file))?, binary),
            });
        }
        let fixes = debian_fixes(feeds);
        let releases = [("10", "buster"), ("11", "bullseye")]
            .into_iter()
            .map(|(version_id, codename)| {
                let ecosystem = format!("debian:{version_id}");
                let mut fix_dates: Vec<String> = fixes
                    .iter()
                    .filter(|((eco, _), _)| *eco == ecosystem)
                    .flat_map(|(_, list)| list.iter().map(|(date, _)| date.clone()))
                    .collect();
                fix_dates.sort();
                Release {
                    version_id,
                    codename,
                    fix_dates,
                }
            })
            .collect();
        Ok(Material {
            debian,
            bundles,
            releases,
            fixes,
        })
    }

    /// Image `index`: its own release, snapshot date, package subset and language bundles.
    fn image(&self, index: u64) -> Inventory {
        let mut rng = Rng(index.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
        let release = &self.releases[rng.below(self.releases.len())];
        let snapshot = release
            .fix_dates
            .get(rng.below(release.fix_dates.len()))
            .cloned()
            .unwrap_or_default();
        let ecosystem = format!("debian:{}", release.version_id);
        let wanted = MIN_DEBIAN_PACKAGES
            + rng.below(self.debian.len().saturating_sub(MIN_DEBIAN_PACKAGES) + 1);
        let mut picks: Vec<usize> = (0..self.debian.len()).collect();
        for i in 0..picks.len() {
            let j = i + rng.below(picks.len() - i);
            picks.swap(i, j);
        }
        picks.truncate(wanted);
        picks.sort_unstable();
        let mut packages: Vec<Package> = picks
            .iter()
            .filter_map(|&i| self.debian.get(i))
            .map(|p| self.as_of(p, &ecosystem, &snapshot))
            .collect();
        let layer_count = 2 + rng.below(4);
        for bundle in &self.bundles {
            if rng.chance(bundle.percent) {
                packages.extend(bundle.packages.iter().map(|p| Package {
                    layer: Some(layer_count - 1),
                    ..p.clone()
                }));
            }
        }
        Inventory {
            distro: Some(Distro {
                id: "debian".to_owned(),
                version_id: release.version_id.to_owned(),
                codename: Some(release.codename.to_owned()),
                pretty_name: Some(format!(
                    "Debian GNU/Linux {} ({})",
                    release.version_id, release.codename
                )),
            }),
            layers: (0..layer_count)
                .map(|l| LayerInfo {
                    digest: digest(&format!("bench image {index} layer {l}")),
                    diff_id: Some(digest(&format!("bench image {index} diff {l}"))),
                    created_by: Some(format!("RUN step {l}")),
                })
                .collect(),
            packages,
            notes: Vec::new(),
        }
    }

    /// `package` as it was on `snapshot`: at the version of the last DSA/DLA fix for its
    /// source package before then, when there was one.
    fn as_of(&self, package: &Package, ecosystem: &str, snapshot: &str) -> Package {
        let source = package.source_name.as_deref().unwrap_or(&package.name);
        let fixed = self
            .fixes
            .get(&(ecosystem.to_owned(), source.to_owned()))
            .and_then(|list| list.iter().rev().find(|(date, _)| date.as_str() < snapshot));
        let mut package = Package {
            layer: Some(0),
            ..package.clone()
        };
        if let Some((_, version)) = fixed {
            package.version = version.clone();
            if package.source_version.is_some() {
                package.source_version = Some(version.clone());
            }
        }
        package
    }
}

fn digest(text: &str) -> String {
    oci::Digest::compute(oci::Algorithm::Sha256, text.as_bytes()).to_string()
}

/// The packages the real detectors find in a Debian 12 host's dpkg database and the PyPI and
/// npm metadata files.
fn detected_packages(data: &Path) -> BenchResult<Vec<Package>> {
    let dpkg = data.join("packagedb/dpkg/debian12-host");
    let mut layer = scan::testkit::Layer::new()
        .file("etc/os-release", fs::read(dpkg.join("os-release"))?)
        .file("var/lib/dpkg/status", fs::read(dpkg.join("status"))?);
    let python = data.join("language/python/site-packages");
    for entry in fs::read_dir(&python)? {
        let dist = entry?.file_name().to_string_lossy().into_owned();
        layer = layer.file(
            &format!("usr/local/lib/python3.11/site-packages/{dist}/METADATA"),
            fs::read(python.join(&dist).join("METADATA"))?,
        );
    }
    let npm = data.join("language/npm/node_modules");
    for entry in fs::read_dir(&npm)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        layer = layer.file(
            &format!("app/node_modules/{name}/package.json"),
            fs::read(npm.join(&name).join("package.json"))?,
        );
    }
    let fragment = walk_layer(
        layer.tar().as_slice(),
        &Limits::default(),
        WalkOptions::default(),
    )?;
    let layers = vec![LayerInfo {
        digest: digest("bench base layer"),
        diff_id: None,
        created_by: None,
    }];
    Ok(scan::inventory::merge(&[fragment], layers).packages)
}

/// `module version` pairs of a `go.mod`'s require directives, as a Go binary built from it
/// would record them.
fn go_modules(go_mod: &str, binary: &str) -> Vec<Package> {
    let mut in_block = false;
    let mut out = Vec::new();
    for line in go_mod.lines().map(str::trim) {
        let spec = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if line == "require (" {
            in_block = true;
            continue;
        } else if let Some(rest) = line.strip_prefix("require ") {
            rest
        } else {
            continue;
        };
        let mut words = spec.split_whitespace();
        if let (Some(path), Some(version)) = (words.next(), words.next())
            && version.starts_with('v')
        {
            out.push(Package::new(PackageKind::Go, path, version, binary));
        }
    }
    out
}

/// The crates.io packages of a `Cargo.lock`, as a cargo-auditable binary would list them.
fn crates(lock: &str, binary: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|rest| rest.trim().strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
        };
        let from_registry = field("source").is_some_and(|s| s.starts_with("registry+"));
        if let (Some(name), Some(version), true) = (field("name"), field("version"), from_registry)
        {
            out.push(Package::new(PackageKind::Cargo, &name, &version, binary));
        }
    }
    out
}

/// Every fixed version the DSA and DLA lists give, per (release, source package).
fn debian_fixes(feeds: &[Feed]) -> BTreeMap<(String, String), Vec<(String, String)>> {
    let mut fixes: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let advisories = feeds
        .iter()
        .flat_map(|f| &f.records)
        .filter_map(|r| match r {
            Record::Advisory(a) if a.source.starts_with("debian") => Some(a),
            _ => None,
        });
    for advisory in advisories {
        let Some(date) = advisory.published.clone() else {
            continue;
        };
        for (key, version) in fixed_versions(advisory) {
            fixes.entry(key).or_default().push((date.clone(), version));
        }
    }
    for list in fixes.values_mut() {
        list.sort();
    }
    fixes
}

fn fixed_versions(advisory: &Advisory) -> Vec<((String, String), String)> {
    advisory
        .affected
        .iter()
        .flat_map(|a| {
            a.ranges.iter().flat_map(move |r| {
                r.events.iter().filter_map(move |e| match e {
                    Event::Fixed(v) => Some(((a.ecosystem.clone(), a.name.clone()), v.clone())),
                    _ => None,
                })
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The store.

struct StoreStats {
    packages: usize,
    by_kind: BTreeMap<String, usize>,
    inventory_bytes: usize,
}

async fn open_store(work: &Path) -> BenchResult<SqliteMetaStore> {
    let dir = work.join("meta");
    fs::create_dir_all(&dir)?;
    Ok(SqliteMetaStore::open(&dir.join("bonded.db"), Durability::Fsync).await?)
}

async fn fill_store(work: &Path, inventories: &[Inventory]) -> BenchResult<StoreStats> {
    let store = open_store(work).await?;
    let mut stats = StoreStats {
        packages: 0,
        by_kind: BTreeMap::new(),
        inventory_bytes: 0,
    };
    for (index, inventory) in inventories.iter().enumerate() {
        let json = serde_json::to_string(inventory)?;
        stats.packages += inventory.packages.len();
        stats.inventory_bytes += json.len();
        for p in &inventory.packages {
            *stats.by_kind.entry(p.kind.as_str().to_owned()).or_default() += 1;
        }
        store
            .put_scan_result(&ScanResultRow {
                manifest_digest: digest(&format!("bench image {index}")),
                db_version: None,
                inventory: json,
                findings: None,
                summary: None,
                scanned_at: 0,
                matched_at: None,
            })
            .await?;
    }
    store.close().await;
    Ok(stats)
}

fn dir_bytes(dir: &Path) -> BenchResult<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------
// The timed part, in a child process.

async fn measure(work: &Path, runs: usize) -> BenchResult<()> {
    let cpu_before = scan::testkit::process_cpu_secs()?;
    let meta = open_store(work).await?;
    let blobs = FsBlobStore::open(work.join("blobs"), Durability::Fsync).await?;
    let registry = Arc::new(registry::Registry::new(
        Arc::new(blobs),
        Arc::new(meta.clone()),
        registry::Limits::default(),
    ));
    let current = work.join("current.db");
    let worker = ScanWorker::new(
        registry,
        Arc::new(meta.clone()),
        ScanWorkerConfig {
            db_path: Some(current.clone()),
            ..ScanWorkerConfig::default()
        },
    );
    let warmup = switch_and_rematch(&worker, work, "old").await?;
    let findings_old = stored_findings(&meta).await?;
    let mut timed = Vec::with_capacity(runs);
    let mut findings_new = 0;
    for run in 0..runs {
        let to = if run % 2 == 0 { "new" } else { "old" };
        timed.push(switch_and_rematch(&worker, work, to).await?);
        if run == 0 {
            findings_new = stored_findings(&meta).await?;
        }
    }
    let measured = Measured {
        warmup,
        runs: timed,
        findings_old,
        findings_new,
        hwm_kib: scan::testkit::peak_rss_kib()?,
        cpu_secs: scan::testkit::process_cpu_secs()? - cpu_before,
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// Replaces the DB file by `<which>.db` as an update does (a new file renamed into place),
/// then loads it and re-matches everything, as the worker does on its periodic check.
async fn switch_and_rematch(worker: &ScanWorker, work: &Path, which: &str) -> BenchResult<Rematch> {
    let staged = work.join("staged.db");
    if staged.exists() {
        fs::remove_file(&staged)?;
    }
    fs::hard_link(work.join(format!("{which}.db")), &staged)?;
    fs::rename(&staged, work.join("current.db"))?;
    let started = Instant::now();
    let Some((from, _)) = worker.check_db()? else {
        return Err(format!("the worker did not load {which}.db as a new DB").into());
    };
    let load_secs = started.elapsed().as_secs_f64();
    let stats = worker.rematch_all(from).await?;
    Ok(Rematch {
        db: which.to_owned(),
        load_secs,
        rematch_secs: stats.elapsed.as_secs_f64(),
        manifests: stats.manifests,
        changed: stats.changed,
    })
}

/// Findings stored for every manifest, from the summaries.
async fn stored_findings(store: &SqliteMetaStore) -> BenchResult<u64> {
    let mut total = 0;
    let mut after = String::new();
    loop {
        let rows = store.scan_results_after(&after, 500).await?;
        let Some(last) = rows.last() else {
            return Ok(total);
        };
        after = last.manifest_digest.clone();
        for row in &rows {
            let summary: serde_json::Value =
                serde_json::from_str(row.summary.as_deref().unwrap_or("{}"))?;
            total += summary
                .get("total")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
        }
    }
}
