//! Configuration: defaults, then the TOML file (`--config`), then `BONDED_*` environment
//! variables and command-line flags (clap reads both; a flag wins over its variable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole configuration of `bonded serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding blobs, uploads and the SQLite database.
    pub data_dir: PathBuf,
    pub tls: Option<TlsConfig>,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub scan: ScanConfig,
    pub trust: TrustConfig,
    pub api: ApiConfig,
    /// `[[pull_policy]]`: repositories whose images are served only when signed.
    pub pull_policy: Vec<policy::PullPolicy>,
    /// `[[promotion]]`: rules that copy passing images to another repository.
    pub promotion: Vec<policy::promotion::PromotionConfig>,
    /// How the registry names itself in the signatures it makes (`host[:port]`); defaults to
    /// the listen address (`localhost:<port>` when it listens on every interface).
    pub public_host: Option<String>,
    /// `[[webhook]]`: where events are delivered, signed (Standard Webhooks) and retried.
    pub webhook: Vec<webhooks::WebhookConfig>,
}

/// `[api]`: the management API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A file holding the bearer token that changing trust (PUT authorities, POST sign)
    /// requires (else `BONDED_ADMIN_TOKEN`). Without a token those endpoints refuse.
    pub admin_token_file: Option<PathBuf>,
}

/// `[trust]`: trust authorities and the server's signing key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// `[trust.authorities.<name>] keys = ["/path/key.pub", ...]`.
    pub authorities: std::collections::BTreeMap<String, AuthorityConfig>,
    /// The server's key (authority `bonded`): a cosign-format or PKCS#8 PEM. Without it, a key
    /// is generated on first start and kept at `<data_dir>/trust/server.key`.
    pub server_key: Option<PathBuf>,
    /// The password of an encrypted `server_key` (else `BONDED_SERVER_KEY_PASSWORD`).
    pub server_key_password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// PEM public keys (SubjectPublicKeyInfo: ECDSA P-256 or Ed25519).
    pub keys: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `fsync` (survive power loss) or `relaxed` (survive process crashes only).
    pub durability: Durability,
    /// Upload sessions idle for this long are purged.
    pub upload_expiry_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Fsync,
    Relaxed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request body that stalls this long is abandoned.
    pub body_idle_timeout_secs: u64,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `registry=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

/// `[scan]`: the background scanner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Scan every pushed image (inventory, SBOM referrer, and findings when `db` is set).
    pub enabled: bool,
    /// The vulnerability DB (`bonded db build` / `bonded db update`). A replaced file is
    /// picked up within `db_check_secs`, or at once on SIGHUP.
    pub db: Option<PathBuf>,
    pub db_check_secs: u64,
    /// Layers read at the same time for one image.
    pub threads: usize,
    /// Attempts a failed scan gets (retried with backoff) before it is failed for good.
    pub max_attempts: u32,
    /// Seconds before the first retry of a failed scan; doubling with each attempt.
    pub retry_delay_secs: u64,
    /// Bounds on what one layer may cost.
    pub limits: scan::limits::Limits,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            db: None,
            db_check_secs: 10,
            threads: 2,
            max_attempts: 3,
            retry_delay_secs: 10,
            limits: scan::limits::Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./bonded-data"),
            tls: None,
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            scan: ScanConfig::default(),
            trust: TrustConfig::default(),
            api: ApiConfig::default(),
            pull_policy: Vec::new(),
            promotion: Vec::new(),
            public_host: None,
            webhook: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            durability: Durability::Fsync,
            upload_expiry_secs: 24 * 3600,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_idle_timeout_secs: 60,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Values given on the command line or in `BONDED_*` variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "BONDED_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "BONDED_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./bonded-data].
    #[arg(long, env = "BONDED_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PEM certificate chain; enables TLS together with --tls-key.
    #[arg(long, env = "BONDED_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "BONDED_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// fsync: survive power loss; relaxed: survive process crashes only [default: fsync].
    #[arg(long, env = "BONDED_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    /// Log format [default: text].
    #[arg(long, env = "BONDED_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `registry=debug` [default: info].
    #[arg(long, env = "BONDED_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl Config {
    /// Builds the effective configuration.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let mut config = match &overrides.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        match (&overrides.tls_cert, &overrides.tls_key) {
            (Some(cert), Some(key)) => {
                config.tls = Some(TlsConfig {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => {}
            _ => bail!("--tls-cert and --tls-key must be given together"),
        }
        if let Some(d) = overrides.durability {
            config.storage.durability = d;
        }
        if let Some(f) = overrides.log_format {
            config.log.format = f;
        }
        if let Some(l) = &overrides.log_level {
            config.log.level = l.clone();
        }
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bonded.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/bonded\"\n[storage]\ndurability = \"relaxed\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let config = Config::load(&Overrides {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.storage.durability, Durability::Relaxed);
        assert_eq!(config.log.format, LogFormat::Json);
        let config = Config::load(&Overrides {
            config: Some(file),
            listen: Some("0.0.0.0:7000".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.data_dir, PathBuf::from("/srv/bonded"));
    }

    #[test]
    fn rejects_unknown_keys_and_half_tls() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listn = \"127.0.0.1:6000\"\n").unwrap();
        let err = Config::load(&Overrides {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        assert!(
            Config::load(&Overrides {
                tls_cert: Some("c.pem".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}
