//! A registry on a random loopback port, backed by a temporary data directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use oci::{Algorithm, Digest};
use registry::{HttpOptions, Limits, Registry};
use reqwest::{Client, Response, StatusCode};
use store::{Durability, FsBlobStore, SqliteMetaStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Counts panics anywhere in the process (server tasks included) so tests can assert that
/// hostile input caused none.
fn install_panic_counter() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Server tasks run on the runtime's worker and blocking threads; the test bodies
            // (and their assertion failures) run on the test thread.
            let on_server_thread = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"));
            if on_server_thread {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

pub fn server_panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

pub struct TestRegistry {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: Client,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    meta: SqliteMetaStore,
    pub registry: Arc<Registry>,
}

impl TestRegistry {
    pub async fn start() -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = TestRegistry::start_at(dir.path()).await;
        r._dir = Some(dir);
        r
    }

    /// Starts a registry on an existing data directory (which the caller keeps alive).
    pub async fn start_at(data: &Path) -> TestRegistry {
        install_panic_counter();
        let blobs = FsBlobStore::open(data, Durability::Relaxed)
            .await
            .expect("blob store");
        let meta = SqliteMetaStore::open(&data.join("bonded.db"), Durability::Relaxed)
            .await
            .expect("meta store");
        let registry = Arc::new(Registry::new(
            Arc::new(blobs),
            Arc::new(meta.clone()),
            Limits::default(),
        ));
        let router = registry::router(
            Arc::clone(&registry),
            HttpOptions {
                body_idle_timeout: std::time::Duration::from_secs(2),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        TestRegistry {
            base: format!("http://{addr}"),
            addr,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _dir: None,
            stop: Some(stop),
            task: Some(task),
            meta,
            registry,
        }
    }

    /// Stops the server and closes the database, as a clean shutdown does.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.meta.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.client.head(self.url(path)).send().await.expect("HEAD")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn post(&self, path: &str) -> Response {
        self.client.post(self.url(path)).send().await.expect("POST")
    }

    /// Opens an upload session and returns its location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self.post(&format!("/v2/{repo}/blobs/uploads/")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        header(&r, "location")
    }

    /// PATCHes `body` to an upload, with a Content-Range if given.
    pub async fn patch(
        &self,
        location: &str,
        range: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut req = self.client.patch(self.url(location)).body(body);
        if let Some(range) = range {
            req = req.header("Content-Range", range);
        }
        req.send().await.expect("PATCH")
    }

    /// Closes an upload with `PUT <location>?digest=`, carrying `body` as the last chunk.
    pub async fn put_digest(
        &self,
        location: &str,
        digest: impl std::fmt::Display,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .put(self.url(&format!("{location}?digest={digest}")))
            .body(body)
            .send()
            .await
            .expect("PUT")
    }

    /// Pushes a blob with a single POST and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = Digest::compute(Algorithm::Sha256, data);
        let r = self
            .client
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .body(data.to_vec())
            .send()
            .await
            .expect("push blob");
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "push blob: {}",
            r.text().await.unwrap_or_default()
        );
        digest
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &str,
    ) -> Response {
        self.client
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("put manifest")
    }

    /// Pushes a one-layer image and returns (manifest digest, manifest bytes, layer digest).
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Digest, String, Digest) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer bytes of {seed}");
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, layer.as_bytes()).await;
        let manifest = image_manifest(&c, config.len(), &[(&l, layer.len())], "");
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        (
            Digest::compute(Algorithm::Sha256, manifest.as_bytes()),
            manifest,
            l,
        )
    }

    pub async fn upload_offset(&self, location: &str) -> Option<u64> {
        let r = self
            .client
            .get(self.url(location))
            .send()
            .await
            .expect("status");
        if r.status() != StatusCode::NO_CONTENT {
            return None;
        }
        // `0-<last byte>`; distribution (and we) answer `0-0` for an empty session, so in these
        // tests `0-0` means empty (no test uploads a single byte).
        let range = header(&r, "range");
        match range.as_str() {
            "0-0" => Some(0),
            _ => Some(
                range
                    .split('-')
                    .nth(1)
                    .and_then(|e| e.parse::<u64>().ok())
                    .map_or(0, |e| e + 1),
            ),
        }
    }
}

/// An OCI image manifest; `extra` is appended inside the top-level object.
pub fn image_manifest(
    config: &Digest,
    config_size: usize,
    layers: &[(&Digest, usize)],
    extra: &str,
) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{s}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{}]{extra}}}"#,
        layers.join(",")
    )
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The first error code of an OCI error body.
pub async fn error_code(r: Response) -> String {
    let body: serde_json::Value = r.json().await.expect("error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .expect("errors[0].code")
        .to_owned()
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::compute(Algorithm::Sha256, data)
}
