//! `bonded serve`: open the stores, build the router, accept connections (plain or TLS), and
//! shut down gracefully on SIGTERM/SIGINT: stop accepting, let in-flight requests finish
//! (up to the grace period), close the database, exit 0.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use registry::{HttpOptions, Limits, Registry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use store::{FsBlobStore, SqliteMetaStore};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Durability, TlsConfig};
use events::evidence::EvidenceSource;
use events::outbox;
use events::promotion::Promoter;
use events::scan_worker::{ScanWorker, ScanWorkerConfig};
use events::signer::ServerSigner;
use policy::PullEnforcer;
use trust::keys::{KeyAlgorithm, SigningKey};
use trust::service::TrustService;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let durability = match config.storage.durability {
        Durability::Fsync => store::Durability::Fsync,
        Durability::Relaxed => store::Durability::Relaxed,
    };
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let blobs = FsBlobStore::open(&config.data_dir, durability)
        .await
        .context("cannot open the blob store")?;
    let db_path = config.data_dir.join("bonded.db");
    let meta = SqliteMetaStore::open(&db_path, durability)
        .await
        .with_context(|| format!("cannot open the metadata database {}", db_path.display()))?;
    let blobs = Arc::new(blobs);
    // One server key, shared by signing (trust) and the audit log's checkpoints.
    let server_key = Arc::new(server_key(&config)?);
    let trust = TrustService::start(
        Arc::new(meta.clone()),
        Arc::new(meta.clone()),
        blobs.clone(),
        configured_authorities(&config)?,
        Some(Arc::clone(&server_key)),
    )
    .await
    .context("cannot start the trust service")?;
    let events_store: Arc<dyn store::EventStore> = Arc::new(meta.clone());
    let pull = Arc::new(
        PullEnforcer::new(config.pull_policy.clone(), trust.clone())
            .context("invalid pull policy")?
            .with_events(Arc::clone(&events_store)),
    );
    for policy in pull.policies() {
        for name in policy
            .require_signatures
            .iter()
            .flat_map(|r| &r.authorities)
        {
            if !trust.authorities().iter().any(|a| &a.name == name) {
                tracing::warn!(policy = %policy.label(), authority = %name,
                    "the pull policy requires an authority that is not defined (yet): nothing it guards can be pulled until it is");
            }
        }
    }
    let registry = Arc::new(
        Registry::new(blobs, Arc::new(meta.clone()), Limits::default())
            .with_observer(trust.clone())
            .with_pull_gate(pull.clone()),
    );
    let worker = config.scan.enabled.then(|| {
        ScanWorker::new(
            Arc::clone(&registry),
            Arc::new(meta.clone()),
            ScanWorkerConfig {
                db_path: config.scan.db.clone(),
                limits: config.scan.limits,
                db_check: Duration::from_secs(config.scan.db_check_secs.max(1)),
                threads: config.scan.threads.max(1),
                max_attempts: i64::from(config.scan.max_attempts.max(1)),
                retry_delay: Duration::from_secs(config.scan.retry_delay_secs),
                ..ScanWorkerConfig::default()
            },
        )
    });
    let worker_task = worker.as_ref().map(ScanWorker::spawn);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let public_host = config
        .public_host
        .clone()
        .unwrap_or_else(|| default_public_host(local));
    let signer = Arc::new(ServerSigner::new(Arc::clone(&registry), trust.clone()));
    let evidence =
        EvidenceSource::new(Arc::clone(&registry), Arc::new(meta.clone()), trust.clone());
    pull.set_evidence(Arc::new(evidence.clone()));
    let promoter = Arc::new(
        Promoter::new(
            Arc::clone(&registry),
            Arc::new(meta.clone()),
            Arc::new(meta.clone()),
            Arc::clone(&events_store),
            evidence.clone(),
            Arc::clone(&signer),
            public_host.clone(),
            config.promotion.clone(),
        )
        .await
        .context("invalid promotion rule")?,
    );
    if let Some(w) = &worker {
        w.publish_to(Arc::clone(&events_store));
    }
    // A push commits its scan job with the manifest (and its `artifact.pushed` event): the
    // worker looks at its queue when new events commit instead of waiting for its idle poll.
    let scan_wake = worker.clone().map(|w| {
        let mut commits = events_store.subscribe();
        tokio::spawn(async move {
            while commits.changed().await.is_ok() {
                w.wake();
            }
        })
    });
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let public_url = url::Url::parse(&format!("{scheme}://{public_host}"))
        .with_context(|| format!("public_host {public_host:?} does not form a URL"))?;
    let globs: webhooks::GlobCompiler = Arc::new(|text: &str| {
        let glob: policy::RepositoryGlob =
            text.parse().map_err(|e: policy::GlobError| e.to_string())?;
        Ok(Arc::new(move |repo: &str| glob.matches(repo)) as webhooks::RepositoryMatcher)
    });
    let hooks = webhooks::WebhookService::start(
        Arc::new(meta.clone()),
        &config.webhook,
        public_url,
        globs,
        webhooks::WebhookOptions::default(),
    )
    .await
    .context("invalid [[webhook]]")?;
    let audit_log = Arc::new(
        audit::AuditLog::new(
            Arc::new(meta.clone()),
            Arc::clone(&server_key),
            audit::log::DEFAULT_ORIGIN,
        )
        .context("cannot open the audit log")?,
    );
    let run = outbox::RunOptions::default;
    let consumers = vec![
        outbox::spawn(Arc::clone(&events_store), promoter.clone(), run()),
        outbox::spawn(
            Arc::clone(&events_store),
            Arc::new(AuditConsumer(audit_log.clone())),
            run(),
        ),
        outbox::spawn(
            Arc::clone(&events_store),
            Arc::new(WebhookConsumer(hooks.clone())),
            run(),
        ),
        hooks.spawn_worker(),
    ];
    let reload = tokio::spawn(reload_on_sighup(worker.clone()));
    let admin_token = admin_token(&config)?;
    let management = api::router(api::ApiState {
        meta: Arc::new(meta.clone()),
        scans: Arc::new(meta.clone()),
        worker: worker.clone(),
        registry: Arc::clone(&registry),
        trust: trust.clone(),
        signing: signer,
        events: events_store,
        promotions: Arc::new(meta.clone()),
        promoter,
        evidence,
        admin_token: admin_token.clone(),
    })
    .merge(audit::http::router(
        audit_log,
        audit::http::bearer_admin(admin_token.clone()),
    ))
    .merge(webhooks::router(
        hooks,
        webhooks::bearer_admin(admin_token.clone()),
    ))
    .layer(axum::middleware::from_fn(registry::observe::observe));
    let router = registry::router(
        Arc::clone(&registry),
        HttpOptions {
            body_idle_timeout: Duration::from_secs(config.http.body_idle_timeout_secs),
        },
    )
    .merge(management);
    let tls = match &config.tls {
        Some(tls) => Some(tls_acceptor(tls)?),
        None => None,
    };
    tracing::info!(
        address = %local,
        tls = tls.is_some(),
        data_dir = %config.data_dir.display(),
        "bonded is listening"
    );

    let purge = tokio::spawn(purge_uploads(
        Arc::clone(&registry),
        config.storage.upload_expiry_secs,
    ));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(1 << 20);
    // HTTP/2 (negotiated over TLS): the default 64 KiB flow-control windows would make a
    // client wait for a window update every 64 KiB of a layer.
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20)
        .max_frame_size(1 << 20);
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(
                    tower::ServiceBuilder::new()
                        .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(registry::observe::PeerAddr(peer));
                            req
                        })
                        .service(router.clone()),
                );
                let builder = builder.clone();
                match &tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            if let Err(e) = conn.await {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let watcher = graceful.watcher();
                        tokio::spawn(async move {
                            let stream = match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                            if let Err(e) = watcher.watch(conn).await {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            }
                        });
                    }
                }
            }
        }
    }

    drop(listener);
    purge.abort();
    reload.abort();
    if let Some(task) = worker_task {
        task.abort();
    }
    for task in consumers.into_iter().chain(scan_wake) {
        task.abort();
    }
    let grace = Duration::from_secs(config.http.shutdown_grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: no new connections, waiting for in-flight requests"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("grace period over; closing remaining connections"),
    }
    meta.close().await;
    tracing::info!("bonded stopped");
    Ok(())
}

/// The audit log's outbox consumer: one entry per event, then a signed checkpoint.
struct AuditConsumer(Arc<audit::AuditLog>);

#[async_trait::async_trait]
impl outbox::Consumer for AuditConsumer {
    fn name(&self) -> &'static str {
        "audit"
    }

    async fn handle(&self, events: &[store::EventRow]) -> Result<(), outbox::ConsumerError> {
        self.0
            .handle(events)
            .await
            .map_err(|e| outbox::ConsumerError::new("audit", e))
    }
}

/// The webhooks' outbox consumer: one delivery per event and matching webhook.
struct WebhookConsumer(Arc<webhooks::WebhookService>);

#[async_trait::async_trait]
impl outbox::Consumer for WebhookConsumer {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    async fn handle(&self, events: &[store::EventRow]) -> Result<(), outbox::ConsumerError> {
        self.0
            .handle(events)
            .await
            .map_err(|e| outbox::ConsumerError::new("webhooks", e))
    }
}

/// The name signatures give the registry when `public_host` is not configured: the listen
/// address, or `localhost:<port>` for an unspecified one.
fn default_public_host(local: std::net::SocketAddr) -> String {
    if local.ip().is_unspecified() {
        format!("localhost:{}", local.port())
    } else {
        local.to_string()
    }
}

fn tls_acceptor(tls: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("cannot read TLS certificate {}", tls.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in {}", tls.cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate found in {}",
        tls.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("cannot read TLS private key {}", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not form a usable pair")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// SIGHUP: check the vulnerability DB file now instead of at the next periodic check.
async fn reload_on_sighup(worker: Option<Arc<ScanWorker>>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: checking the vulnerability DB");
            if let Some(w) = &worker {
                w.reload_db();
            }
        }
    }
    #[cfg(not(unix))]
    let _ = worker;
}

/// Purges upload sessions idle for longer than `expiry_secs`, every ten minutes.
async fn purge_uploads(registry: Arc<Registry>, expiry_secs: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let before = now.saturating_sub(expiry_secs) as i64;
        match registry.purge_stale_uploads(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged stale upload sessions"),
            Err(e) => tracing::warn!(error = %e, "purging stale uploads failed"),
        }
    }
}

/// The configuration's authorities, with their key files read.
fn configured_authorities(config: &Config) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    config
        .trust
        .authorities
        .iter()
        .map(|(name, authority)| {
            let keys = authority
                .keys
                .iter()
                .map(|path| {
                    std::fs::read_to_string(path).with_context(|| {
                        format!("authority {name}: cannot read key {}", path.display())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((name.clone(), keys))
        })
        .collect()
}

/// The server's signing key: the configured one, or the one generated on first start and
/// kept (PKCS#8, mode 0600) in the data directory. The data directory already holds
/// everything the registry serves, so encrypting a key whose password would sit next to it
/// adds nothing; a configured key may be encrypted (cosign's format).
fn server_key(config: &Config) -> anyhow::Result<SigningKey> {
    if let Some(path) = &config.trust.server_key {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the server key {}", path.display()))?;
        let password = match &config.trust.server_key_password_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            None => std::env::var("BONDED_SERVER_KEY_PASSWORD").ok(),
        };
        return SigningKey::from_pem(&pem, password.as_deref().map(str::as_bytes))
            .map_err(|e| anyhow::anyhow!("the server key {}: {e}", path.display()));
    }
    let dir = config.data_dir.join("trust");
    let path = dir.join("server.key");
    let key = if path.exists() {
        let metadata = std::fs::metadata(&path)
            .with_context(|| format!("cannot read the server key {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            anyhow::bail!(
                "the server key {} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                metadata.permissions().mode() & 0o777
            );
        }
        let pem = std::fs::read(&path)
            .with_context(|| format!("cannot read the server key {}", path.display()))?;
        SigningKey::from_pem(&pem, None)
            .map_err(|e| anyhow::anyhow!("the server key {}: {e}", path.display()))?
    } else {
        generate_server_key(&dir, &path)?
    };
    // The public half is rewritten at every start, so it is never missing or stale.
    write_atomically(
        &dir,
        "server.pub",
        key.public_key().to_pem().as_bytes(),
        0o644,
    )?;
    Ok(key)
}

/// Generates the server key into `path`: written whole under a temporary name (created
/// exclusively, never through a leftover file or link), synced, renamed, and the directory
/// synced, so a crash never leaves half a key and a power loss never silently loses one.
fn generate_server_key(
    dir: &std::path::Path,
    path: &std::path::Path,
) -> anyhow::Result<SigningKey> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    write_atomically(dir, "server.key", key.to_pkcs8_pem().as_bytes(), 0o600)?;
    tracing::info!(path = %path.display(), key_id = %key.public_key().key_id(),
        "generated the server signing key (authority bonded)");
    Ok(key)
}

fn write_atomically(
    dir: &std::path::Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = dir.join(format!("{name}.partial"));
    let target = dir.join(name);
    // A leftover from an interrupted start is removed, never written through.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", partial.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

/// The management API's admin token: `[api] admin_token_file`, else `BONDED_ADMIN_TOKEN`.
fn admin_token(config: &Config) -> anyhow::Result<Option<Arc<str>>> {
    let token = match &config.api.admin_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("BONDED_ADMIN_TOKEN").ok(),
    };
    match token {
        Some(t) if t.len() < 16 => anyhow::bail!("the admin token must be at least 16 characters"),
        Some(t) => Ok(Some(Arc::from(t))),
        None => Ok(None),
    }
}
