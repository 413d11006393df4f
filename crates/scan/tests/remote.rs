//! `remote` (pulling an image from a registry) and `update` (downloading the vulnerability
//! data) against real HTTP: a small server written here on axum, serving over loopback, that
//! can cut a body short once, ignore `Range`, change a file's ETag, require a bearer token or
//! basic credentials and redirect blobs to another server; and the CNCF distribution registry
//! (Debian package `docker-registry`), which must be installed.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt as _;
use serde_json::json;

use client::testkit::DockerRegistry;
use scan::image::{BlobSource, ImageError, PlatformChoice, ResolvedImage};
use scan::remote::RemoteImage;
use scan::update::{
    Download, DownloadedFile, UpdateError, UpdateProgress, default_sources, download_all,
};

const TOKEN: &str = "test-token-1234";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/remote")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    oci::Digest::compute(oci::Algorithm::Sha256, bytes)
        .hex()
        .to_owned()
}

/// Byte equality, reported by length and first difference rather than by dumping bytes.
fn assert_same(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let first = actual.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, expected {}; first difference at {first:?}",
            actual.len(),
            expected.len()
        );
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

// ---------------------------------------------------------------------------------------------
// The in-test HTTP server.

/// One file the server holds.
#[derive(Clone, Default)]
struct Resource {
    body: Bytes,
    content_type: Option<&'static str>,
    etag: Option<String>,
    /// Send without `Content-Length` (chunked).
    chunked: bool,
    extra_headers: Vec<(&'static str, String)>,
}

impl Resource {
    fn new(body: impl Into<Bytes>) -> Resource {
        Resource {
            body: body.into(),
            ..Resource::default()
        }
    }

    fn typed(body: impl Into<Bytes>, content_type: &'static str) -> Resource {
        Resource {
            content_type: Some(content_type),
            ..Resource::new(body)
        }
    }

    fn tagged(body: impl Into<Bytes>, etag: &str) -> Resource {
        Resource {
            etag: Some(etag.to_owned()),
            ..Resource::new(body)
        }
    }
}

/// How the server misbehaves.
#[derive(Default)]
struct Behaviour {
    /// Cut the next response body after this many bytes, once; then serve this resource in
    /// place of the cut one (the file changed), if given.
    cut_after: Option<(usize, Option<Resource>)>,
    ignore_range: bool,
    ignore_if_range: bool,
    /// `/v2/` needs `Bearer TOKEN`; `/token` hands it out for basic `USER:PASSWORD`.
    require_token: bool,
    /// `/v2/` needs basic `USER:PASSWORD`.
    require_basic: bool,
    /// Redirect `/v2/*/blobs/*` to this base URL.
    redirect_blobs_to: Option<String>,
}

#[derive(Clone, Debug)]
struct Logged {
    path: String,
    headers: HeaderMap,
    status: StatusCode,
}

impl Logged {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Shared {
    base: String,
    resources: Mutex<HashMap<String, Resource>>,
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<Logged>>,
}

struct TestServer {
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl TestServer {
    fn start() -> TestServer {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared {
            base,
            resources: Mutex::default(),
            behaviour: Mutex::default(),
            log: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener).unwrap()
        };
        runtime.spawn(async move { axum::serve(listener, router).await });
        TestServer {
            shared,
            _runtime: runtime,
        }
    }

    fn base(&self) -> &str {
        &self.shared.base
    }

    /// `host:port`, for image references.
    fn host(&self) -> &str {
        self.base().trim_start_matches("http://")
    }

    fn put(&self, path: &str, resource: Resource) {
        self.shared
            .resources
            .lock()
            .unwrap()
            .insert(path.to_owned(), resource);
    }

    fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let response = if method == Method::GET {
        respond(&shared, &path, &headers)
    } else {
        plain(StatusCode::METHOD_NOT_ALLOWED)
    };
    shared.log.lock().unwrap().push(Logged {
        path,
        headers,
        status: response.status(),
    });
    response
}

fn plain(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn basic_credentials() -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {encoded}")
}

fn respond(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut behaviour = shared.behaviour.lock().unwrap();
    if path.starts_with("/token") {
        if authorization != Some(basic_credentials().as_str()) {
            return oci_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "bad credentials");
        }
        return json_response(json!({ "token": TOKEN, "expires_in": 300 }));
    }
    if path.starts_with("/v2/") {
        let repository = path
            .trim_start_matches("/v2/")
            .split("/manifests/")
            .next()
            .and_then(|p| p.split("/blobs/").next())
            .unwrap_or("");
        if behaviour.require_token && authorization != Some(&format!("Bearer {TOKEN}")) {
            let challenge = format!(
                r#"Bearer realm="{}/token",service="test-registry",scope="repository:{repository}:pull""#,
                shared.base
            );
            let mut response = oci_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&challenge).unwrap(),
            );
            return response;
        }
        if behaviour.require_basic && authorization != Some(basic_credentials().as_str()) {
            let mut response = oci_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="test""#),
            );
            return response;
        }
        if let Some(target) = &behaviour.redirect_blobs_to
            && path.contains("/blobs/")
        {
            let mut response = plain(StatusCode::TEMPORARY_REDIRECT);
            let location = format!("{target}{path}?X-Signature=abc");
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
            return response;
        }
    }
    let path = path.split('?').next().unwrap_or(path);
    let mut resources = shared.resources.lock().unwrap();
    let Some(resource) = resources.get(path).cloned() else {
        let code = if path.contains("/blobs/") {
            "BLOB_UNKNOWN"
        } else {
            "MANIFEST_UNKNOWN"
        };
        let message = if path.contains("/blobs/") {
            "blob unknown to registry"
        } else {
            "manifest unknown"
        };
        return oci_error(StatusCode::NOT_FOUND, code, message);
    };
    let len = resource.body.len();
    let mut start = 0;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let range_applies = !behaviour.ignore_range
        && (behaviour.ignore_if_range
            || if_range.is_none()
            || if_range == resource.etag.as_deref());
    let mut status = StatusCode::OK;
    if let (Some(from), true) = (range, range_applies) {
        if from >= len {
            return plain(StatusCode::RANGE_NOT_SATISFIABLE);
        }
        start = from;
        status = StatusCode::PARTIAL_CONTENT;
    }
    let body = resource.body.slice(start..);
    let mut builder = axum::http::Response::builder().status(status);
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    if let Some(etag) = &resource.etag {
        builder = builder.header(header::ETAG, etag);
    }
    if let Some(content_type) = resource.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in &resource.extra_headers {
        builder = builder.header(*name, value);
    }
    let cut = match behaviour.cut_after.take() {
        Some((after, replacement)) if after < body.len() => {
            if let Some(replacement) = replacement {
                resources.insert(path.to_owned(), replacement);
            }
            Some(after)
        }
        other => {
            behaviour.cut_after = other;
            None
        }
    };
    let body = match cut {
        Some(after) => {
            // Promise the whole body, send part of it, then fail: the connection is dropped.
            // The pause lets the part reach the client first (else the client's connection
            // pool sees a connection closed before any response and silently retries).
            builder = builder.header(header::CONTENT_LENGTH, body.len());
            let part = body.slice(..after);
            let sent = futures_util::stream::once(async move { Ok::<Bytes, io::Error>(part) });
            let failure = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(io::Error::other("cut by the test"))
            });
            Body::from_stream(sent.chain(failure))
        }
        None if resource.chunked => {
            let chunks: Vec<Result<Bytes, io::Error>> = vec![Ok(body)];
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        None => Body::from(body),
    };
    builder.body(body).unwrap()
}

fn json_response(value: serde_json::Value) -> Response {
    axum::http::Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .unwrap()
}

fn oci_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response =
        json_response(json!({ "errors": [{ "code": code, "message": message, "detail": {} }] }));
    *response.status_mut() = status;
    response
}

// ---------------------------------------------------------------------------------------------
// A small real OCI image: an index of two platforms, each a config and one gzip layer.

struct PlatformImage {
    platform: &'static str,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

struct TestImage {
    index: Vec<u8>,
    images: Vec<PlatformImage>,
}

fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *content).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    io::Write::write_all(&mut gzip, &tar).unwrap();
    (gzip.finish().unwrap(), tar)
}

fn platform_image(os: &str, arch: &'static str, platform: &'static str) -> PlatformImage {
    let os_release = format!("ID=alpine\nVERSION_ID=3.20.3\n# {arch}\n");
    let (layer, tar) = gzip_layer(&[
        ("etc/os-release", os_release.as_bytes()),
        (
            "usr/share/doc/readme.txt",
            b"a layer built by tests/remote.rs\n",
        ),
    ]);
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": os,
        "rootfs": { "type": "layers", "diff_ids": [digest(&tar)] },
        "history": [{ "created_by": "COPY rootfs /" }],
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(&layer),
            "size": layer.len(),
        }],
    }))
    .unwrap();
    PlatformImage {
        platform,
        manifest,
        config,
        layer,
    }
}

fn test_image() -> TestImage {
    let images = vec![
        platform_image("linux", "amd64", "linux/amd64"),
        platform_image("linux", "arm64", "linux/arm64"),
    ];
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|image| {
            let (os, arch) = image.platform.split_once('/').unwrap();
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": digest(&image.manifest),
                "size": image.manifest.len(),
                "platform": { "os": os, "architecture": arch },
            })
        })
        .collect();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .unwrap();
    TestImage { index, images }
}

/// Puts the image on the in-test server under `/v2/<name>/…`, tagged `tag`.
fn publish(server: &TestServer, name: &str, tag: &str, image: &TestImage) {
    let manifests = format!("/v2/{name}/manifests");
    server.put(
        &format!("{manifests}/{tag}"),
        Resource::typed(image.index.clone(), OCI_INDEX),
    );
    server.put(
        &format!("{manifests}/{}", digest(&image.index)),
        Resource::typed(image.index.clone(), OCI_INDEX),
    );
    for platform in &image.images {
        server.put(
            &format!("{manifests}/{}", digest(&platform.manifest)),
            Resource::typed(platform.manifest.clone(), OCI_MANIFEST),
        );
        for blob in [&platform.config, &platform.layer] {
            server.put(
                &format!("/v2/{name}/blobs/{}", digest(blob)),
                Resource::new(blob.clone()),
            );
        }
    }
}

fn read_layers(source: &dyn BlobSource, image: &ResolvedImage) -> Result<Vec<Vec<u8>>, io::Error> {
    image
        .layers
        .iter()
        .map(|layer| {
            let mut reader = source.open_layer(layer).map_err(io::Error::other)?;
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .collect()
}

fn remote_error(error: ImageError) -> String {
    match error {
        ImageError::Remote(message) => message,
        other => panic!("expected a registry error, got {other:?}"),
    }
}

/// Resolves a tagged index for one platform and reads its layer back, checking every byte.
fn check_pull(remote: &RemoteImage, image: &TestImage) {
    let resolved = remote
        .resolve(&PlatformChoice::One("linux/arm64".into()))
        .unwrap();
    assert_eq!(resolved.len(), 1);
    let arm = &image.images[1];
    assert_eq!(resolved[0].platform.as_deref(), Some("linux/arm64"));
    assert_eq!(
        resolved[0].manifest_digest.as_deref(),
        Some(digest(&arm.manifest).as_str())
    );
    assert_eq!(resolved[0].config_digest, digest(&arm.config));
    assert_eq!(
        resolved[0].created_by(),
        vec![Some("COPY rootfs /".to_owned())]
    );
    assert_same(
        &read_layers(remote, &resolved[0]).unwrap().concat(),
        &arm.layer,
        "arm64 layer",
    );
}

// ---------------------------------------------------------------------------------------------
// remote.rs

#[test]
fn resolves_by_tag_and_by_digest() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "test/image", "v1", &image);
    let host = server.host();

    let by_tag = RemoteImage::connect(&format!("{host}/test/image:v1"), true, None).unwrap();
    check_pull(&by_tag, &image);
    assert_eq!(
        by_tag.reference().to_string(),
        format!("{host}/test/image:v1")
    );
    // The index fetched by tag is not fetched again by digest.
    let index_fetches = server
        .log()
        .iter()
        .filter(|l| l.path.contains("/manifests/"))
        .count();
    assert_eq!(index_fetches, 2, "{:?}", server.log());

    let all = by_tag.resolve(&PlatformChoice::All).unwrap();
    let platforms: Vec<_> = all.iter().map(|i| i.platform.clone().unwrap()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_same(
        &read_layers(&by_tag, &all[0]).unwrap().concat(),
        &image.images[0].layer,
        "amd64 layer",
    );

    let index_digest = digest(&image.index);
    let by_index_digest =
        RemoteImage::connect(&format!("{host}/test/image@{index_digest}"), true, None).unwrap();
    check_pull(&by_index_digest, &image);

    let amd = &image.images[0];
    let by_manifest_digest = RemoteImage::connect(
        &format!("docker://{host}/test/image@{}", digest(&amd.manifest)),
        true,
        None,
    )
    .unwrap();
    // An image manifest is not an index: the platform choice does not apply.
    let resolved = by_manifest_digest
        .resolve(&PlatformChoice::One("linux/arm64".into()))
        .unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].platform.as_deref(), Some("linux/amd64"));
    assert_same(
        &read_layers(&by_manifest_digest, &resolved[0])
            .unwrap()
            .concat(),
        &amd.layer,
        "amd64 layer",
    );
}

#[test]
fn no_matching_platform_lists_the_available_ones() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "test/image", "v1", &image);
    let remote =
        RemoteImage::connect(&format!("{}/test/image:v1", server.host()), true, None).unwrap();
    match remote.resolve(&PlatformChoice::One("linux/s390x".into())) {
        Err(ImageError::NoPlatform { wanted, available }) => {
            assert_eq!(wanted, "linux/s390x");
            assert_eq!(available, "linux/amd64, linux/arm64");
        }
        other => panic!("expected NoPlatform, got {other:?}"),
    }
}

#[test]
fn token_auth_with_credentials() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "private/image", "v1", &image);
    server.behave(|b| b.require_token = true);
    let reference = format!("{}/private/image:v1", server.host());
    let credentials = Some((USER.to_owned(), PASSWORD.to_owned()));
    let remote = RemoteImage::connect(&reference, true, credentials).unwrap();
    check_pull(&remote, &image);

    let log = server.log();
    assert_eq!(log[0].status, StatusCode::UNAUTHORIZED);
    assert_eq!(log[0].header("authorization"), None);
    assert!(log[1].path.starts_with("/token?"), "{:?}", log[1].path);
    assert!(
        log[1].path.contains("service=test-registry"),
        "{:?}",
        log[1].path
    );
    assert!(
        log[1]
            .path
            .contains("scope=repository%3Aprivate%2Fimage%3Apull"),
        "{:?}",
        log[1].path
    );
    assert_eq!(
        log[1].header("authorization"),
        Some(basic_credentials().as_str())
    );
    // One token for the whole pull, sent with every later request.
    assert_eq!(
        log.iter().filter(|l| l.path.starts_with("/token")).count(),
        1
    );
    for later in &log[2..] {
        assert_eq!(
            later.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(later.status, StatusCode::OK, "{}", later.path);
    }

    // Without credentials the token endpoint refuses, and the error says where and why.
    let anonymous = RemoteImage::connect(&reference, true, None).unwrap();
    let message = remote_error(anonymous.resolve(&PlatformChoice::All).unwrap_err());
    assert!(message.contains("/token"), "{message}");
    assert!(
        message.contains("401 Unauthorized: UNAUTHORIZED: bad credentials"),
        "{message}"
    );
}

#[test]
fn basic_auth_challenge() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "private/image", "v1", &image);
    server.behave(|b| b.require_basic = true);
    let reference = format!("{}/private/image:v1", server.host());
    let remote =
        RemoteImage::connect(&reference, true, Some((USER.into(), PASSWORD.into()))).unwrap();
    check_pull(&remote, &image);

    let anonymous = RemoteImage::connect(&reference, true, None).unwrap();
    let message = remote_error(anonymous.resolve(&PlatformChoice::All).unwrap_err());
    assert!(
        message.contains("requires a user name and password"),
        "{message}"
    );
}

#[test]
fn corrupted_layer_fails_at_the_end_with_a_digest_mismatch() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "test/image", "v1", &image);
    let arm = &image.images[1];
    let mut corrupted = arm.layer.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0x01;
    server.put(
        &format!("/v2/test/image/blobs/{}", digest(&arm.layer)),
        Resource::new(corrupted.clone()),
    );

    let remote =
        RemoteImage::connect(&format!("{}/test/image:v1", server.host()), true, None).unwrap();
    let resolved = remote
        .resolve(&PlatformChoice::One("linux/arm64".into()))
        .unwrap();
    let mut reader = remote.open_layer(&resolved[0].layers[0]).unwrap();
    let mut received = Vec::new();
    let error = reader.read_to_end(&mut received).unwrap_err();
    // Every byte was handed over; the end of the stream is where the mismatch shows.
    assert_same(&received, &corrupted, "corrupted layer");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    match error.get_ref().and_then(|e| e.downcast_ref::<ImageError>()) {
        Some(ImageError::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, &digest(&arm.layer));
            assert_eq!(actual, &digest(&corrupted));
        }
        other => panic!("expected a digest mismatch, got {other:?} ({error})"),
    }

    // A corrupted config is caught while resolving.
    let mut config = arm.config.clone();
    config[0] = b' ';
    server.put(
        &format!("/v2/test/image/blobs/{}", digest(&arm.config)),
        Resource::new(config),
    );
    let error = remote
        .resolve(&PlatformChoice::One("linux/arm64".into()))
        .unwrap_err();
    assert!(
        matches!(error, ImageError::DigestMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn manifest_digest_announced_by_the_registry_is_checked() {
    let server = TestServer::start();
    let image = test_image();
    publish(&server, "test/image", "v1", &image);
    let remote =
        RemoteImage::connect(&format!("{}/test/image:v1", server.host()), true, None).unwrap();
    let mut index = Resource::typed(image.index.clone(), OCI_INDEX);
    index.extra_headers = vec![("docker-content-digest", digest(&image.index))];
    server.put("/v2/test/image/manifests/v1", index.clone());
    assert_eq!(remote.resolve(&PlatformChoice::All).unwrap().len(), 2);

    index.extra_headers = vec![("docker-content-digest", digest(b"something else"))];
    server.put("/v2/test/image/manifests/v1", index);
    let error = remote.resolve(&PlatformChoice::All).unwrap_err();
    assert!(
        matches!(error, ImageError::DigestMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn oversized_manifests_are_refused() {
    let server = TestServer::start();
    let huge = vec![b' '; (scan::image::MAX_DOCUMENT_BYTES + 1) as usize];
    for (tag, chunked) in [("sized", false), ("chunked", true)] {
        let mut resource = Resource::typed(huge.clone(), OCI_MANIFEST);
        resource.chunked = chunked;
        server.put(&format!("/v2/test/image/manifests/{tag}"), resource);
        let remote =
            RemoteImage::connect(&format!("{}/test/image:{tag}", server.host()), true, None)
                .unwrap();
        match remote.resolve(&PlatformChoice::All) {
            Err(ImageError::TooLarge { limit, .. }) => {
                assert_eq!(limit, scan::image::MAX_DOCUMENT_BYTES)
            }
            other => panic!("{tag}: expected TooLarge, got {other:?}"),
        }
    }
}

#[test]
fn not_found_reports_status_and_oci_error() {
    let server = TestServer::start();
    let remote =
        RemoteImage::connect(&format!("{}/test/missing:v9", server.host()), true, None).unwrap();
    let message = remote_error(remote.resolve(&PlatformChoice::All).unwrap_err());
    assert!(
        message.contains("/v2/test/missing/manifests/v9"),
        "{message}"
    );
    assert!(
        message.contains("404 Not Found: MANIFEST_UNKNOWN: manifest unknown"),
        "{message}"
    );
}

#[test]
fn blob_redirects_do_not_carry_the_authorization_header() {
    let registry = TestServer::start();
    let storage = TestServer::start();
    let image = test_image();
    publish(&registry, "test/image", "v1", &image);
    publish(&storage, "test/image", "v1", &image);
    registry.behave(|b| {
        b.require_token = true;
        b.redirect_blobs_to = Some(storage.base().to_owned());
    });
    let remote = RemoteImage::connect(
        &format!("{}/test/image:v1", registry.host()),
        true,
        Some((USER.into(), PASSWORD.into())),
    )
    .unwrap();
    check_pull(&remote, &image);

    let redirected: Vec<Logged> = registry
        .log()
        .into_iter()
        .filter(|l| l.status == StatusCode::TEMPORARY_REDIRECT)
        .collect();
    assert_eq!(redirected.len(), 2, "config and layer");
    for request in &redirected {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let fetched = storage.log();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    for request in &fetched {
        assert!(request.path.contains("/blobs/sha256:"), "{}", request.path);
        assert_eq!(
            request.header("authorization"),
            None,
            "leaked to {}",
            request.path
        );
        assert_eq!(request.status, StatusCode::OK);
    }

    // Errors do not print the signature of a redirect target.
    storage.behave(|b| b.require_basic = true);
    let resolved = remote.resolve(&PlatformChoice::One("linux/arm64".into()));
    let message = remote_error(resolved.unwrap_err());
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("X-Signature"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// The same pull against the CNCF distribution registry.

/// The reference registry, with the pushes these tests need.
struct Registry {
    inner: DockerRegistry,
    base: String,
}

impl Registry {
    fn start() -> Registry {
        let inner = DockerRegistry::start();
        let base = inner.base();
        Registry { inner, base }
    }

    /// Pushes with the distribution API: monolithic blob uploads (POST then PUT), then the
    /// manifests, children before the index.
    fn push(&self, name: &str, tag: &str, image: &TestImage) {
        let client = reqwest::blocking::Client::new();
        for platform in &image.images {
            for blob in [&platform.config, &platform.layer] {
                let started = client
                    .post(format!("{}/v2/{name}/blobs/uploads/", self.base))
                    .send()
                    .unwrap();
                assert_eq!(started.status(), StatusCode::ACCEPTED.as_u16());
                let location = started.headers()[header::LOCATION.as_str()]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let location = reqwest::Url::parse(&self.base)
                    .unwrap()
                    .join(&location)
                    .unwrap();
                let separator = if location.query().is_some() { '&' } else { '?' };
                let put = client
                    .put(format!("{location}{separator}digest={}", digest(blob)))
                    .header(header::CONTENT_TYPE.as_str(), "application/octet-stream")
                    .body(blob.clone())
                    .send()
                    .unwrap();
                assert_eq!(
                    put.status(),
                    StatusCode::CREATED.as_u16(),
                    "{:?}",
                    put.text()
                );
            }
            self.put_manifest(
                &client,
                name,
                &digest(&platform.manifest),
                OCI_MANIFEST,
                &platform.manifest,
            );
        }
        self.put_manifest(&client, name, tag, OCI_INDEX, &image.index);
    }

    fn put_manifest(
        &self,
        client: &reqwest::blocking::Client,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) {
        let response = client
            .put(format!("{}/v2/{name}/manifests/{reference}", self.base))
            .header(header::CONTENT_TYPE.as_str(), media_type)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED.as_u16(),
            "{:?}",
            response.text()
        );
    }
}

#[test]
fn pulls_from_docker_registry() {
    let registry = Registry::start();
    let image = test_image();
    registry.push("bonded/test", "v1", &image);
    let host = registry.inner.host();
    let remote = RemoteImage::connect(&format!("{host}/bonded/test:v1"), true, None).unwrap();
    check_pull(&remote, &image);
    let by_digest = RemoteImage::connect(
        &format!("{host}/bonded/test@{}", digest(&image.index)),
        true,
        None,
    )
    .unwrap();
    assert_eq!(by_digest.resolve(&PlatformChoice::All).unwrap().len(), 2);

    let missing = RemoteImage::connect(&format!("{host}/bonded/test:nope"), true, None).unwrap();
    let message = remote_error(missing.resolve(&PlatformChoice::All).unwrap_err());
    assert!(
        message.contains("404 Not Found: MANIFEST_UNKNOWN"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// update.rs

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Started {
        file: String,
        done: u64,
        total: Option<u64>,
    },
    Advanced {
        file: String,
        done: u64,
    },
    Verifying {
        file: String,
    },
    Finished {
        file: String,
        size: u64,
    },
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn starts(&self, file: &str) -> Vec<(u64, Option<u64>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started {
                    file: f,
                    done,
                    total,
                } if f == file => Some((done, total)),
                _ => None,
            })
            .collect()
    }

    fn last_done(&self, file: &str) -> Option<u64> {
        self.events().into_iter().rev().find_map(|e| match e {
            Event::Advanced { file: f, done } if f == file => Some(done),
            _ => None,
        })
    }
}

impl UpdateProgress for Recorder {
    fn started(&self, file_name: &str, done: u64, total: Option<u64>) {
        self.0.lock().unwrap().push(Event::Started {
            file: file_name.into(),
            done,
            total,
        });
    }
    fn advanced(&self, file_name: &str, done: u64) {
        self.0.lock().unwrap().push(Event::Advanced {
            file: file_name.into(),
            done,
        });
    }
    fn verifying(&self, file_name: &str) {
        self.0.lock().unwrap().push(Event::Verifying {
            file: file_name.into(),
        });
    }
    fn finished(&self, file: &DownloadedFile) {
        self.0.lock().unwrap().push(Event::Finished {
            file: file.file_name.clone(),
            size: file.size,
        });
    }
}

fn one(server: &TestServer, path: &str, file_name: &str) -> Vec<Download> {
    vec![Download {
        url: format!("{}{path}", server.base()),
        file_name: file_name.to_owned(),
    }]
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    names.sort();
    names
}

#[test]
fn resumes_after_a_failure_mid_body() {
    let server = TestServer::start();
    let zip = fixture("hackage-all.zip");
    server.put(
        "/osv/Hackage/all.zip",
        Resource::tagged(zip.clone(), "\"v1\""),
    );
    server.behave(|b| b.cut_after = Some((20_000, None)));
    let dir = tempfile::tempdir().unwrap();
    let progress = Recorder::default();

    let files = download_all(
        &one(&server, "/osv/Hackage/all.zip", "osv-Hackage.zip"),
        dir.path(),
        &progress,
    )
    .unwrap();

    assert_same(
        &std::fs::read(dir.path().join("osv-Hackage.zip")).unwrap(),
        &zip,
        "osv-Hackage.zip",
    );
    assert_eq!(files[0].path, dir.path().join("osv-Hackage.zip"));
    assert_eq!(files[0].sha256, sha256_hex(&zip));
    assert_eq!(files[0].size, zip.len() as u64);
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].header("range"), None);
    assert_eq!(log[1].header("range"), Some("bytes=20000-"));
    assert_eq!(log[1].header("if-range"), Some("\"v1\""));
    assert_eq!(log[1].status, StatusCode::PARTIAL_CONTENT);
    let total = Some(zip.len() as u64);
    assert_eq!(
        progress.starts("osv-Hackage.zip"),
        vec![(0, total), (20_000, total)]
    );
    assert_eq!(progress.last_done("osv-Hackage.zip"), total);
    let tail: Vec<Event> = progress.events().into_iter().rev().take(2).collect();
    assert_eq!(
        tail,
        vec![
            Event::Finished {
                file: "osv-Hackage.zip".into(),
                size: zip.len() as u64
            },
            Event::Verifying {
                file: "osv-Hackage.zip".into()
            },
        ]
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn restarts_when_the_server_ignores_range() {
    let server = TestServer::start();
    let zip = fixture("hackage-all.zip");
    server.put(
        "/osv/Hackage/all.zip",
        Resource::tagged(zip.clone(), "\"v1\""),
    );
    server.behave(|b| {
        b.cut_after = Some((20_000, None));
        b.ignore_range = true;
    });
    let dir = tempfile::tempdir().unwrap();
    let progress = Recorder::default();
    download_all(
        &one(&server, "/osv/Hackage/all.zip", "osv-Hackage.zip"),
        dir.path(),
        &progress,
    )
    .unwrap();

    assert_same(
        &std::fs::read(dir.path().join("osv-Hackage.zip")).unwrap(),
        &zip,
        "osv-Hackage.zip",
    );
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].header("range"), Some("bytes=20000-"));
    assert_eq!(log[1].status, StatusCode::OK);
    let total = Some(zip.len() as u64);
    assert_eq!(
        progress.starts("osv-Hackage.zip"),
        vec![(0, total), (0, total)]
    );
}

#[test]
fn restarts_when_the_file_changed() {
    let old = fixture("debian-tracker.json");
    // The same length, different in the part received before the cut: only the validator
    // tells the two apart.
    let new = String::from_utf8(old.clone())
        .unwrap()
        .replacen("\"description\"", "\"DESCRIPTION\"", 1)
        .into_bytes();
    assert!(new.len() == old.len() && new[..3_000] != old[..3_000]);

    // A server that honours If-Range answers 200 with the new file; one that does not answers
    // 206 from the new file, with the new ETag, which the client must notice.
    for ignore_if_range in [false, true] {
        let server = TestServer::start();
        server.put("/debian/json", Resource::tagged(old.clone(), "\"old\""));
        let replacement = Resource::tagged(new.clone(), "\"new\"");
        server.behave(|b| {
            b.cut_after = Some((3_000, Some(replacement)));
            b.ignore_if_range = ignore_if_range;
        });
        let dir = tempfile::tempdir().unwrap();
        download_all(
            &one(&server, "/debian/json", "debian-tracker.json"),
            dir.path(),
            &Recorder::default(),
        )
        .unwrap();
        assert_same(
            &std::fs::read(dir.path().join("debian-tracker.json")).unwrap(),
            &new,
            "debian-tracker.json",
        );

        let log = server.log();
        let statuses: Vec<StatusCode> = log.iter().map(|l| l.status).collect();
        assert_eq!(log[1].header("if-range"), Some("\"old\""));
        if ignore_if_range {
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::PARTIAL_CONTENT, StatusCode::OK]
            );
            assert_eq!(log[2].header("range"), None);
        } else {
            assert_eq!(statuses, [StatusCode::OK, StatusCode::OK]);
        }
    }
}

#[test]
fn corrupt_files_are_refused_and_the_previous_file_is_kept() {
    let server = TestServer::start();
    let zip = fixture("hackage-all.zip");
    let mut corrupt_zip = zip.clone();
    // Inside the compressed data of the first entry (after its 30-byte header and name).
    corrupt_zip[200] ^= 0xff;
    server.put("/bad.zip", Resource::new(corrupt_zip));
    let json = fixture("alpine-v3.11-main.json");
    server.put(
        "/truncated.json",
        Resource::new(json[..json.len() - 10].to_vec()),
    );
    let mut wrong_md5 = Resource::new(json.clone());
    wrong_md5.extra_headers = vec![(
        "x-goog-hash",
        "crc32c=AAAAAA==,md5=Ojk9c3dhfxgoKVVHYwFbHQ==".into(),
    )];
    server.put("/wrong-md5.json", wrong_md5);
    let md5 =
        base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(&json));
    let mut right_md5 = Resource::new(json.clone());
    right_md5.extra_headers = vec![("x-goog-hash", format!("crc32c=AAAAAA==,md5={md5}"))];
    server.put("/right-md5.json", right_md5);

    let dir = tempfile::tempdir().unwrap();
    let previous = b"the previous, complete file".to_vec();
    // (served path, file name, expected reason, is there a previous file)
    for (path, name, reason, had_previous) in [
        ("/bad.zip", "osv-Hackage.zip", "entry", false),
        ("/bad.zip", "osv-Hackage.zip", "entry", true),
        ("/truncated.json", "alpine.json", "not valid JSON", true),
        ("/wrong-md5.json", "alpine.json", "MD5", true),
    ] {
        let target = dir.path().join(name);
        if had_previous {
            std::fs::write(&target, &previous).unwrap();
        }
        match download_all(&one(&server, path, name), dir.path(), &Recorder::default()) {
            Err(UpdateError::Corrupt {
                file_name,
                reason: why,
                ..
            }) => {
                assert_eq!(file_name, name);
                assert!(why.contains(reason), "{path}: {why}");
            }
            other => panic!("{path}: expected Corrupt, got {other:?}"),
        }
        if had_previous {
            assert_same(
                &std::fs::read(&target).unwrap(),
                &previous,
                &format!("{path} replaced the previous file"),
            );
        } else {
            assert!(!target.exists(), "{path}: a corrupt file was put in place");
        }
        assert!(
            leftovers(dir.path()).is_empty(),
            "{path}: {:?}",
            leftovers(dir.path())
        );
    }
    let files = download_all(
        &one(&server, "/right-md5.json", "alpine.json"),
        dir.path(),
        &Recorder::default(),
    )
    .unwrap();
    assert_same(
        &std::fs::read(&files[0].path).unwrap(),
        &json,
        "alpine.json",
    );
}

#[test]
fn http_errors_are_reported_and_not_retried_forever() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    match download_all(
        &one(&server, "/nothing.zip", "nothing.zip"),
        dir.path(),
        &Recorder::default(),
    ) {
        Err(UpdateError::Status { status, url }) => {
            assert_eq!(status.as_u16(), 404);
            assert!(url.ends_with("/nothing.zip"), "{url}");
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    assert_eq!(server.log().len(), 1, "a 404 is not retried");
    let bad_name = vec![Download {
        url: format!("{}/x", server.base()),
        file_name: "../escape.json".into(),
    }];
    assert!(matches!(
        download_all(&bad_name, dir.path(), &Recorder::default()),
        Err(UpdateError::BadFileName { .. })
    ));
}

#[test]
fn downloads_the_default_sources_from_a_mirror() {
    let server = TestServer::start();
    let zip = fixture("hackage-all.zip");
    let tracker = fixture("debian-tracker.json");
    let main = fixture("alpine-v3.11-main.json");
    let community = fixture("alpine-v3.11-community.json");
    let mut bases = scan::update::DefaultBases::mirror(&format!("{}/mirror/", server.base()));
    bases.alpine_branches = vec!["v3.11".into()];
    let sources = default_sources(&bases);
    let mut expected: HashMap<String, Vec<u8>> = HashMap::new();
    for source in &sources {
        let path = source.url.trim_start_matches(server.base()).to_owned();
        let body = if path.starts_with("/mirror/osv/") {
            zip.clone()
        } else if path == "/mirror/debian/json" {
            tracker.clone()
        } else if path == "/mirror/alpine/v3.11/main.json" {
            main.clone()
        } else if path == "/mirror/alpine/v3.11/community.json" {
            community.clone()
        } else {
            panic!("unexpected source {path}")
        };
        server.put(&path, Resource::tagged(body.clone(), "\"1\""));
        expected.insert(source.file_name.clone(), body);
    }
    assert!(
        expected.contains_key("osv-PyPI.zip")
            && expected.contains_key("alpine-v3.11-community.json")
    );

    let dir = tempfile::tempdir().unwrap();
    let progress = Recorder::default();
    let files = download_all(&sources, dir.path(), &progress).unwrap();
    assert_eq!(files.len(), sources.len());
    for file in &files {
        let body = &expected[&file.file_name];
        assert_same(&std::fs::read(&file.path).unwrap(), body, &file.file_name);
        assert_eq!(file.sha256, sha256_hex(body));
        let total = Some(body.len() as u64);
        assert_eq!(
            progress.starts(&file.file_name),
            vec![(0, total)],
            "{}",
            file.file_name
        );
        assert_eq!(
            progress.last_done(&file.file_name),
            total,
            "{}",
            file.file_name
        );
    }
    let finished = progress
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Finished { .. }))
        .count();
    assert_eq!(finished, sources.len());
    assert_eq!(server.log().len(), sources.len());
}
