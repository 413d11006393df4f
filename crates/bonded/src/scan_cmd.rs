//! `bonded scan`, `bonded sbom` and `bonded db`: the scanner from the command line, against
//! an OCI layout, a `docker save` archive or any registry. Parsing arguments, choosing
//! outputs and exit codes lives here; the work is the `scan` crate's.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use scan::advisory::Severity;
use scan::image::{BlobSource, DockerArchive, OciLayout, PlatformChoice, ResolvedImage};
use scan::matcher::FindingStatus;
use scan::report::{self, DbSummary, ImageSummary, Report};
use scan::scanner::{self, ScanOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Cyclonedx,
    Spdx,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    Cyclonedx,
    Spdx,
}

/// Where the image comes from and which platform to read.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// `oci:PATH[:TAG]`, `docker-archive:PATH`, or `[docker://]HOST/REPO[:TAG|@DIGEST]`.
    pub image: String,
    /// For an index: `os/arch[/variant]`, or `all` for every platform. Default: the host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Talk plain HTTP to the registry (for registries without TLS).
    #[arg(long)]
    pub plain_http: bool,
    /// Write the report to FILE instead of standard output (written whole, then renamed).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// The vulnerability DB built by `bonded db build` or `bonded db update`.
    #[arg(long, env = "BONDED_DB")]
    pub db: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ScanFormat,
    /// Report only these severities (comma-separated: UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL).
    #[arg(long, value_delimiter = ',')]
    pub severity: Vec<String>,
    /// Leave out findings with no fixed version.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// An OpenVEX or CycloneDX VEX document; repeatable, later files win.
    #[arg(long)]
    pub vex: Vec<PathBuf>,
    /// Exit with this code when findings remain after the filters.
    #[arg(long, default_value_t = 0)]
    pub exit_code: u8,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Build a DB from local files: OSV zips or directories, the Debian tracker JSON, DSA/DLA
    /// lists, Alpine secdb (JSON or YAML), OpenVEX documents. The format is detected.
    Build {
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Download the public sources (osv.dev exports, the Debian tracker, Alpine secdb),
    /// resuming interrupted downloads and verifying each file, then build the DB from them.
    /// `BONDED_DB_MIRROR` (or `--mirror`) points every source at a mirror.
    Update {
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where downloads are kept between runs (resumed and reused).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// A base URL serving the same paths as the public sources.
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Print what a DB holds: schema, build time, sources and their digests, counts.
    Info {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The default DB location: `$XDG_CACHE_HOME/bonded/vulndb.sqlite` or
/// `~/.cache/bonded/vulndb.sqlite`.
pub fn default_db_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("bonded").join("vulndb.sqlite"))
}

fn platform_choice(arg: Option<&str>) -> PlatformChoice {
    match arg {
        None => PlatformChoice::host(),
        Some("all") => PlatformChoice::All,
        Some(p) => PlatformChoice::One(p.to_owned()),
    }
}

/// An opened image source and the manifests chosen from it.
struct Opened {
    source: Box<dyn BlobSource>,
    images: Vec<ResolvedImage>,
}

/// `oci:PATH[:TAG]` and `docker-archive:PATH[:REPO:TAG]`: the reference is what follows the
/// first `:` after an existing path (so paths and tags may both contain `:`); when no prefix
/// exists, the whole string is the path and the error says it is missing.
fn split_layout(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).exists() {
        return (PathBuf::from(spec), None);
    }
    for (i, _) in spec.match_indices(':') {
        let (path, reference) = (&spec[..i], &spec[i + 1..]);
        if !reference.is_empty() && Path::new(path).exists() {
            return (PathBuf::from(path), Some(reference.to_owned()));
        }
    }
    (PathBuf::from(spec), None)
}

fn open_image(args: &ImageArgs) -> Result<Opened> {
    let platform = platform_choice(args.platform.as_deref());
    if let Some(spec) = args.image.strip_prefix("oci:") {
        let (path, tag) = split_layout(spec);
        let layout = OciLayout::new(&path);
        let images = layout.resolve(tag.as_deref(), &platform)?;
        return Ok(Opened {
            source: Box::new(layout),
            images,
        });
    }
    if let Some(spec) = args.image.strip_prefix("docker-archive:") {
        let (path, tag) = split_layout(spec);
        let archive = DockerArchive::open(&path)?;
        let images = archive.resolve(tag.as_deref())?;
        return Ok(Opened {
            source: Box::new(archive),
            images,
        });
    }
    let reference = args.image.strip_prefix("docker://").unwrap_or(&args.image);
    let remote = scan::remote::RemoteImage::connect(reference, args.plain_http, None)?;
    let images = remote.resolve(&platform)?;
    Ok(Opened {
        source: Box::new(remote),
        images,
    })
}

/// A progress bar on standard error when it is a terminal.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(total: u64) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} reading layers {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        ) {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl scanner::Progress for Bar {
    fn bytes_read(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

fn summary(image: &ResolvedImage) -> ImageSummary {
    ImageSummary {
        name: image.name.clone(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        platform: image.platform.clone(),
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn inventory(opened: &Opened, image: &ResolvedImage) -> Result<scan::model::Inventory> {
    let total = image.layers.iter().filter_map(|l| l.size).sum();
    let bar = Bar::new(total);
    let result =
        scanner::inventory_image(opened.source.as_ref(), image, &ScanOptions::default(), &bar);
    bar.finish();
    Ok(result?)
}

/// Writes `bytes` to `--output` (through a temporary file renamed into place) or stdout.
fn emit(output: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut temp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            temp.write_all(bytes)?;
            temp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
        }
    }
    Ok(())
}

fn to_json(value: &serde_json::Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub fn sbom(args: &SbomArgs) -> Result<u8> {
    let opened = open_image(&args.image)?;
    let mut documents = Vec::new();
    for image in &opened.images {
        let inv = inventory(&opened, image)?;
        let summary = summary(image);
        let id = uuid::Uuid::new_v4().to_string();
        let timestamp = now_rfc3339();
        let report = Report {
            image: &summary,
            inventory: &inv,
            findings: None,
            db: None,
            timestamp: &timestamp,
            document_id: &id,
        };
        documents.push(match args.format {
            SbomFormat::Cyclonedx => report::cyclonedx::render(&report),
            SbomFormat::Spdx => report::spdx::render(&report),
        });
    }
    emit(
        args.image.output.as_deref(),
        &to_json(&one_or_many(documents))?,
    )?;
    Ok(0)
}

/// One platform gives one document; `--platform all` gives a JSON array of them.
fn one_or_many(mut documents: Vec<serde_json::Value>) -> serde_json::Value {
    if documents.len() == 1 {
        documents.remove(0)
    } else {
        serde_json::Value::Array(documents)
    }
}

fn parse_severities(list: &[String]) -> Result<Vec<Severity>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            Severity::parse(s)
                .filter(|_| s.trim().chars().all(|c| c.is_ascii_alphabetic()))
                .ok_or_else(|| {
                    anyhow!("unknown severity {s:?}: use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL")
                })
        })
        .collect()
}

pub fn scan(args: &ScanArgs) -> Result<u8> {
    let severities = parse_severities(&args.severity)?;
    let db_path = match &args.db {
        Some(p) => p.clone(),
        None => default_db_path()
            .ok_or_else(|| anyhow!("no --db given and no home directory for the default"))?,
    };
    if !db_path.exists() {
        bail!(
            "no vulnerability DB at {}: build one with `bonded db build` or `bonded db update`, or pass --db",
            db_path.display()
        );
    }
    let db = scan::db::VulnDb::open(&db_path)?;
    let db_info = db.info()?;
    let db_summary = DbSummary {
        version: db.version().to_owned(),
        built_at: db_info.built_at.clone(),
    };
    let mut user_vex = Vec::new();
    for path in &args.vex {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        user_vex.extend(scan::vex::read_file(path, &bytes)?);
    }
    let opened = open_image(&args.image)?;
    let mut documents = Vec::new();
    let mut table = String::new();
    let mut remaining = 0usize;
    for image in &opened.images {
        let mut inv = inventory(&opened, image)?;
        inv.notes.extend(scan::matcher::coverage_notes(&db, &inv)?);
        let mut findings =
            scan::vex::match_with_vex(&db, &inv, image.manifest_digest.as_deref(), &user_vex)?;
        findings.retain(|f| {
            (severities.is_empty() || severities.contains(&f.severity))
                && (!args.ignore_unfixed
                    || f.status == FindingStatus::Fixed
                    || f.status == FindingStatus::NotAffected)
        });
        remaining += findings
            .iter()
            .filter(|f| f.status != FindingStatus::NotAffected)
            .count();
        let summary = summary(image);
        let id = uuid::Uuid::new_v4().to_string();
        let timestamp = now_rfc3339();
        let shown: Vec<scan::matcher::Finding> = match args.format {
            ScanFormat::Table | ScanFormat::Sarif => findings
                .iter()
                .filter(|f| f.status != FindingStatus::NotAffected)
                .cloned()
                .collect(),
            _ => findings.clone(),
        };
        let report = Report {
            image: &summary,
            inventory: &inv,
            findings: Some(&shown),
            db: Some(&db_summary),
            timestamp: &timestamp,
            document_id: &id,
        };
        match args.format {
            ScanFormat::Table => {
                if !table.is_empty() {
                    table.push('\n');
                }
                table.push_str(&report::table::render(&report));
                let suppressed = findings.len() - shown.len();
                if suppressed > 0 {
                    table.push_str(&format!(
                        "{suppressed} findings not shown: VEX says not affected\n"
                    ));
                }
            }
            ScanFormat::Json => documents.push(report::json(&report)),
            ScanFormat::Cyclonedx => documents.push(report::cyclonedx::render(&report)),
            ScanFormat::Spdx => documents.push(report::spdx::render(&report)),
            ScanFormat::Sarif => documents.push(report::sarif::render(&report)),
        }
    }
    let bytes = match args.format {
        ScanFormat::Table => table.into_bytes(),
        _ => to_json(&one_or_many(documents))?,
    };
    emit(args.image.output.as_deref(), &bytes)?;
    Ok(if remaining > 0 { args.exit_code } else { 0 })
}

/// The build time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn build_time() -> Result<String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: u64 = s
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH {s:?} is not a number of seconds"))?;
            Ok(humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            )
            .to_string())
        }
        Err(_) => Ok(now_rfc3339()),
    }
}

/// Builds a DB at `out` from `inputs`, whose formats are detected. An input's SHA-256 is
/// computed unless the caller already knows it (a download it has just verified).
fn build_db(out: &Path, inputs: &[(PathBuf, Option<String>)]) -> Result<()> {
    let mut builder = scan::db::DbBuilder::create(out)?;
    for (input, known) in inputs {
        let format = scan::import::detect(input)?;
        let mut sink_error = None;
        let stats = scan::import::import(input, format, &mut |record| {
            let result = match &record {
                scan::import::Record::Advisory(a) => builder.add_advisory(a),
                scan::import::Record::Vex(v) => builder.add_vex(v),
            };
            result.map_err(|e| {
                let message = e.to_string();
                sink_error = Some(e);
                scan::import::ImportError::Sink(message.into())
            })
        });
        if let Some(e) = sink_error {
            return Err(e.into());
        }
        let stats = stats?;
        builder.add_source(&scan::db::SourceInfo {
            name: input.display().to_string(),
            format: format!("{format:?}"),
            sha256: match known {
                Some(digest) => digest.clone(),
                None => scan::db::input_digest(input)
                    .with_context(|| format!("cannot read {}", input.display()))?,
            },
            records: stats.records as u64,
            skipped: stats.skipped.len() as u64,
        })?;
        eprintln!(
            "{}: {:?}, {} records, {} skipped",
            input.display(),
            format,
            stats.records,
            stats.skipped.len()
        );
        for (what, why) in stats.skipped.iter().take(5) {
            eprintln!("  skipped {what}: {why}");
        }
    }
    builder.finish(&build_time()?)?;
    let db = scan::db::VulnDb::open(out)?;
    eprintln!("wrote {} (version {})", out.display(), db.version());
    Ok(())
}

pub fn db(command: &DbCommand) -> Result<u8> {
    match command {
        DbCommand::Build { out, inputs } => {
            let inputs: Vec<(PathBuf, Option<String>)> =
                inputs.iter().map(|i| (i.clone(), None)).collect();
            build_db(out, &inputs)?;
            Ok(0)
        }
        DbCommand::Update {
            out,
            cache_dir,
            mirror,
        } => {
            let out = match out {
                Some(o) => o.clone(),
                None => default_db_path().ok_or_else(|| {
                    anyhow!("no --out given and no home directory for the default")
                })?,
            };
            let cache = match cache_dir {
                Some(c) => c.clone(),
                None => out
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .join("bonded-db-sources"),
            };
            std::fs::create_dir_all(&cache)
                .with_context(|| format!("cannot create {}", cache.display()))?;
            let bases = match mirror {
                Some(m) => scan::update::DefaultBases::mirror(m),
                None => scan::update::DefaultBases::from_env(),
            };
            let downloads = scan::update::default_sources(&bases);
            let progress = UpdateBars::new();
            let files = scan::update::download_all(&downloads, &cache, &progress)?;
            progress.clear();
            let inputs: Vec<(PathBuf, Option<String>)> = files
                .iter()
                .map(|f| (f.path.clone(), Some(f.sha256.clone())))
                .collect();
            build_db(&out, &inputs)?;
            Ok(0)
        }
        DbCommand::Info { file, json } => {
            let db = scan::db::VulnDb::open(file)?;
            let info = db.info()?;
            if *json {
                emit(None, &to_json(&serde_json::to_value(&info)?)?)?;
                return Ok(0);
            }
            let mut out = String::new();
            out.push_str(&format!("file:           {}\n", file.display()));
            out.push_str(&format!("schema version: {}\n", info.schema_version));
            out.push_str(&format!("built at:       {}\n", info.built_at));
            out.push_str(&format!("version:        {}\n", info.version));
            out.push_str(&format!(
                "advisories:     {} ({} affected packages, {} VEX statements)\n",
                info.advisories, info.affected_packages, info.vex_statements
            ));
            out.push_str("sources:\n");
            for s in &info.sources {
                out.push_str(&format!(
                    "  {} ({}) sha256:{} records {} skipped {}\n",
                    s.name, s.format, s.sha256, s.records, s.skipped
                ));
            }
            out.push_str("ecosystems:\n");
            for (eco, n) in &info.ecosystems {
                out.push_str(&format!("  {eco}: {n}\n"));
            }
            emit(None, out.as_bytes())?;
            Ok(0)
        }
    }
}

/// Download progress: one bar per file on a terminal, a line per file otherwise.
struct UpdateBars {
    multi: Option<indicatif::MultiProgress>,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl UpdateBars {
    fn new() -> UpdateBars {
        UpdateBars {
            multi: std::io::stderr()
                .is_terminal()
                .then(indicatif::MultiProgress::new),
            bars: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

impl scan::update::UpdateProgress for UpdateBars {
    fn started(&self, file_name: &str, done: u64, total: Option<u64>) {
        let Some(multi) = &self.multi else {
            eprintln!("downloading {file_name} (from byte {done})");
            return;
        };
        let bar = multi.add(indicatif::ProgressBar::new(total.unwrap_or(0)));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:40} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(file_name.to_owned());
        bar.set_position(done);
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(file_name.to_owned(), bar);
        }
    }

    fn advanced(&self, file_name: &str, done: u64) {
        if let Some(bar) = self
            .bars
            .lock()
            .ok()
            .and_then(|b| b.get(file_name).cloned())
        {
            bar.set_position(done);
        }
    }

    fn verifying(&self, file_name: &str) {
        if self.multi.is_none() {
            eprintln!("verifying {file_name}");
        }
    }

    fn finished(&self, file: &scan::update::DownloadedFile) {
        match self
            .bars
            .lock()
            .ok()
            .and_then(|b| b.get(&file.file_name).cloned())
        {
            Some(bar) => bar.finish(),
            None => eprintln!(
                "{}: {} bytes, sha256 {}",
                file.file_name, file.size, file.sha256
            ),
        }
    }
}
