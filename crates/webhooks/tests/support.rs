//! Shared parts of the integration tests: a real SQLite store in a temporary directory, a
//! webhook receiver on loopback that records what it gets and answers as scripted, the
//! management API served on loopback, and fast retry settings.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde_json::Value;
use store::{Durability, EventRow, EventStore, NewEvent, SqliteMetaStore};
use tokio::task::JoinHandle;
use url::Url;
use webhooks::retry::{BreakerPolicy, RetryPolicy};
use webhooks::standard_webhooks::{WebhookHeaders, WebhookSecret, verify};
use webhooks::transport::HostLookup;
use webhooks::{
    AdminCheck, GlobCompiler, RepositoryMatcher, WebhookConfig, WebhookOptions, WebhookService,
    bearer_admin,
};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ADMIN: &str = "admin-token-for-tests";
pub const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
pub const PUBLIC_URL: &str = "https://registry.example";

/// Repository globs for the tests: a literal name, or `prefix/**`. (Bonded passes
/// `policy::glob::RepositoryGlob`; the crate only needs a matcher.)
pub fn globs() -> GlobCompiler {
    Arc::new(|glob: &str| {
        if glob.is_empty() || glob.contains("***") {
            return Err(format!("{glob:?} is not a glob"));
        }
        let glob = glob.to_owned();
        Ok(Arc::new(move |repo: &str| match glob.strip_suffix("/**") {
            Some(prefix) => repo == prefix || repo.starts_with(&format!("{prefix}/")),
            None => repo == glob,
        }) as RepositoryMatcher)
    })
}

/// Retries in tens of milliseconds, a breaker that never opens, a short deadline.
pub fn fast_options() -> WebhookOptions {
    WebhookOptions {
        retry: RetryPolicy {
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
            max_attempts: 5,
            max_rejected_attempts: 2,
            max_retry_after: Duration::from_secs(5),
        },
        breaker: BreakerPolicy {
            failure_threshold: 1_000,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(60),
        },
        attempt_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(4),
        idle_poll: Duration::from_secs(2),
        ..WebhookOptions::default()
    }
}

/// A name resolver that knows only the names it was given.
pub struct FakeLookup(pub BTreeMap<String, IpAddr>);

impl HostLookup for FakeLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let found = self.0.get(&host).copied();
        Box::pin(async move {
            found.map(|ip| vec![ip]).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        })
    }
}

/// A resolver that maps `name` to loopback.
pub fn loopback_as(name: &str) -> Arc<dyn HostLookup> {
    Arc::new(FakeLookup(BTreeMap::from([(
        name.to_owned(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    )])))
}

/// The database and the service over it.
pub struct Fixture {
    /// Kept so the database outlives the test.
    _dir: tempfile::TempDir,
    pub store: SqliteMetaStore,
    pub service: Arc<WebhookService>,
    pub worker: Option<JoinHandle<()>>,
}

pub async fn open_store(dir: &std::path::Path) -> SqliteMetaStore {
    SqliteMetaStore::open(&dir.join("bonded.db"), Durability::Relaxed)
        .await
        .expect("open store")
}

pub async fn start_service(
    store: &SqliteMetaStore,
    configured: &[WebhookConfig],
    options: WebhookOptions,
) -> Arc<WebhookService> {
    WebhookService::start(
        Arc::new(store.clone()),
        configured,
        Url::parse(PUBLIC_URL).expect("url"),
        globs(),
        options,
    )
    .await
    .expect("start service")
}

impl Fixture {
    /// A fresh database, the given configured webhooks, and a running worker.
    pub async fn new(configured: &[WebhookConfig], options: WebhookOptions) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(dir.path()).await;
        let service = start_service(&store, configured, options).await;
        let worker = Some(service.spawn_worker());
        Fixture {
            _dir: dir,
            store,
            service,
            worker,
        }
    }

    /// Appends an event to the real outbox and returns it as stored.
    pub async fn event(
        &self,
        kind: &str,
        repository: Option<&str>,
        tag: Option<&str>,
        data: Value,
    ) -> EventRow {
        append(&self.store, kind, repository, tag, data).await
    }

    /// The API of this service, behind the admin token [`ADMIN`].
    pub async fn api(&self) -> Api {
        Api::serve(Arc::clone(&self.service), bearer_admin(Some(ADMIN.into()))).await
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}

pub async fn append(
    store: &SqliteMetaStore,
    kind: &str,
    repository: Option<&str>,
    tag: Option<&str>,
    data: Value,
) -> EventRow {
    let event = NewEvent {
        kind: kind.to_owned(),
        repository: repository.map(str::to_owned),
        digest: repository.map(|_| DIGEST.to_owned()),
        tag: tag.map(str::to_owned),
        data: data.to_string(),
    };
    store
        .append_event(&event, unix_now())
        .await
        .expect("append event")
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A standard webhook to `url`, for `events`, with [`SECRET`].
pub fn standard(name: &str, url: &str, events: &[&str]) -> WebhookConfig {
    WebhookConfig {
        name: name.to_owned(),
        url: url.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: Some(SECRET.to_owned()),
        allow_private: true,
        ..WebhookConfig::default()
    }
}

/// What the receiver answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Checks the Standard Webhooks signature as a receiver would.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let headers = WebhookHeaders {
            id: self.header("webhook-id").to_owned(),
            timestamp: self.header("webhook-timestamp").to_owned(),
            signature: self.header("webhook-signature").to_owned(),
        };
        let secret = WebhookSecret::parse(secret).map_err(|e| e.to_string())?;
        verify(&secret, &headers, &self.body, SystemTime::now()).map_err(|e| e.to_string())
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    default: Option<Reply>,
    received: Vec<Received>,
}

/// A webhook receiver on loopback: records each request and answers with the next scripted
/// reply (then the default one, 204).
pub struct Receiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut script = script.lock().expect("script");
        script.received.push(Received {
            at: Instant::now(),
            path: uri.path().to_owned(),
            headers,
            body,
        });
        let default = script.default.clone().unwrap_or(Reply::status(204));
        script.replies.pop_front().unwrap_or(default)
    };
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).expect("status");
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

impl Receiver {
    pub async fn start() -> Receiver {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Receiver { addr, script, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues replies for the next requests.
    pub fn reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().expect("script").replies.extend(replies);
    }

    /// The answer once the queue is empty.
    pub fn default_reply(&self, reply: Reply) {
        self.script.lock().expect("script").default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().expect("script").received.clone()
    }

    /// Waits until `count` requests arrived (at most `within`).
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} requests within {within:?}, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` until it returns `Some` (at most `within`).
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The management API served on loopback, and a client for it.
pub struct Api {
    base: String,
    client: reqwest::Client,
    pub token: Option<String>,
    task: JoinHandle<()>,
}

impl Api {
    pub async fn serve(service: Arc<WebhookService>, admin: AdminCheck) -> Api {
        let app = webhooks::router(service, admin);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            token: Some(ADMIN.to_owned()),
            task,
        }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty, a string
    /// when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("API request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("API body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: &str) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// The `WWW-Authenticate` header of a GET.
    pub async fn challenge(&self, path: &str) -> Option<String> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("API request");
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The first error of an error answer: (code, message).
pub fn first_error(body: &Value) -> (String, String) {
    let error = &body["errors"][0];
    (
        error["code"].as_str().unwrap_or("").to_owned(),
        error["message"].as_str().unwrap_or("").to_owned(),
    )
}
