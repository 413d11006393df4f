//! Pulling an image straight from a registry to scan it, without a container engine.
//!
//! A [`RemoteImage`] is built from a reference `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`
//! ([`ImageReference::parse`], which follows docker's normalization so that `alpine` means
//! `docker.io/library/alpine:latest`) and speaks the OCI Distribution Specification v1.1
//! ("Pulling manifests", "Pulling blobs") over HTTPS, or plain HTTP when asked.
//!
//! Guarantees:
//! - Every byte is verified. Manifests, indexes and configs are read whole (at most
//!   [`MAX_DOCUMENT_BYTES`]) and checked against their digest by
//!   [`crate::image::resolve_manifest`]; a manifest fetched by tag is checked against the
//!   `Docker-Content-Digest` the registry announces. Layers are streamed through
//!   [`VerifiedBlob`], which hashes while the caller reads and turns the end of the stream
//!   into an error when the digest (or the declared size) does not match, so a corrupted
//!   layer can never be read to a clean end.
//! - Credentials only go where they belong. Registries redirect blob downloads to storage
//!   hosts (S3, GCS, CDNs); redirects are followed here, by hand, and the `Authorization`
//!   header is attached only to requests for the registry's own origin (scheme, host and
//!   port). With TLS, a redirect to plain HTTP is refused. Error messages show URLs without
//!   their query, which for storage redirects holds a signature.
//! - Nothing waits forever or grows without bound: connecting is limited to 30 s, waiting for
//!   response headers and every single read of a body to [`IDLE_TIMEOUT`] (reqwest's blocking
//!   `timeout` applies to each read separately, so it is an idle timeout and a long layer
//!   download is not cut off), redirects to [`MAX_REDIRECTS`], error and token bodies to
//!   64 KiB and 1 MiB.
//!
//! Authentication follows the Docker token flow (distribution's `docs/spec/auth/token.md`):
//! a `401` carrying `WWW-Authenticate: Bearer realm=…,service=…,scope=…` sends us to the realm
//! for a token (with the user's basic credentials if any, anonymously otherwise), and the
//! request is retried with `Authorization: Bearer <token>`; a `Basic` challenge is answered
//! with the credentials directly. A token that expires during a long pull is renewed by the
//! same path, once per request.
//!
//! Errors name the method, URL, status and, when the registry sends the OCI error body
//! (`{"errors":[{"code","message"}]}`, Distribution Spec "Error Codes"), its first code and
//! message. They are [`RemoteError`]s, carried in [`ImageError::Remote`] through the
//! [`BlobSource`] API shared with the other image sources.
//!
//! Not supported: foreign layers (`urls` on a descriptor, old Windows base images) are asked
//! of the registry like any other blob, and a `Docker-Content-Digest` is not required.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use oci::{Digest, Hasher, MediaType, Reference, RepositoryName, Tag};
use reqwest::Url;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};

use crate::image::{
    BlobSource, ImageError, LayerRef, Locator, MAX_DOCUMENT_BYTES, PlatformChoice, ResolvedImage,
    resolve_manifest,
};

/// Connecting (TCP and TLS) may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for response headers, and for each read of a body, may take this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
/// How much of an error body is read to find the OCI error code.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;
/// How much of a token endpoint's answer is read.
const MAX_TOKEN_BODY_BYTES: u64 = 1 << 20;

/// Docker Hub's names: what users write, and where its registry API is.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: &'static str,
        url: String,
        /// The error and its causes (`connection refused`, `operation timed out`).
        reason: String,
    },
    #[error("{method} {url}: {status}{detail}")]
    Status {
        method: &'static str,
        url: String,
        status: reqwest::StatusCode,
        /// `": CODE: message"` from the OCI error body, or empty.
        detail: String,
    },
    #[error("{url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("authentication with {url} failed: {reason}")]
    Auth { url: String, reason: String },
}

impl From<RemoteError> for ImageError {
    fn from(error: RemoteError) -> ImageError {
        ImageError::Remote(error.to_string())
    }
}

/// A parsed `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    pub repository: RepositoryName,
    /// The tag (`latest` when none is given) or the digest; with both, the digest wins.
    pub reference: Reference,
}

impl ImageReference {
    /// Parses a reference with docker's rules (`distribution/reference`, `normalize.go`): the
    /// first path segment is a registry host only if it contains `.` or `:`, is `localhost`,
    /// or has upper-case letters; otherwise the image is on Docker Hub, where a one-segment
    /// name lives under `library/`.
    pub fn parse(input: &str) -> Result<ImageReference, RemoteError> {
        let fail = |reason: &str| RemoteError::Reference {
            reference: input.chars().take(300).collect(),
            reason: reason.to_owned(),
        };
        let text = input.strip_prefix("docker://").unwrap_or(input);
        let (named, digest) = match text.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (text, None),
        };
        // A `:` after the last `/` starts the tag; one before it belongs to `host:port`.
        let (name, tag) = match named.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (named, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if is_registry_host(first) => (first, rest.to_owned()),
            _ => (DOCKER_HUB, name.to_owned()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        if !is_valid_host(registry) {
            return Err(fail("the registry must be HOST or HOST:PORT"));
        }
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let repository = RepositoryName::from_str(&path).map_err(|e| fail(&e.to_string()))?;
        let reference = match (digest, tag) {
            (Some(d), _) => {
                Reference::Digest(Digest::from_str(d).map_err(|e| fail(&e.to_string()))?)
            }
            (None, Some(t)) => Reference::Tag(Tag::from_str(t).map_err(|e| fail(&e.to_string()))?),
            (None, None) => {
                Reference::Tag(Tag::from_str("latest").map_err(|e| fail(&e.to_string()))?)
            }
        };
        if let (Some(_), Some(t)) = (digest, tag) {
            // `name:tag@digest` is valid; the tag is informational. Still reject a bad one.
            Tag::from_str(t).map_err(|e| fail(&e.to_string()))?;
        }
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            reference,
        })
    }

    /// The origin the registry API is served from.
    fn api_origin(&self, plain_http: bool) -> Result<Url, RemoteError> {
        let host = if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        };
        let scheme = if plain_http { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{host}/")).map_err(|e| RemoteError::Reference {
            reference: self.to_string(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}/{}:{t}", self.registry, self.repository),
            Reference::Digest(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
        }
    }
}

fn is_registry_host(segment: &str) -> bool {
    segment.contains(['.', ':'])
        || segment == "localhost"
        || segment.chars().any(|c| c.is_ascii_uppercase())
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    name_ok && port_ok
}

/// What the next request to the registry's origin carries.
#[derive(Debug, Clone)]
enum Authorization {
    Anonymous,
    Basic,
    Bearer(String),
}

/// An image in a registry, ready to be resolved and read.
pub struct RemoteImage {
    client: Client,
    reference: ImageReference,
    origin: Url,
    plain_http: bool,
    credentials: Option<(String, String)>,
    authorization: Mutex<Authorization>,
}

impl RemoteImage {
    /// Parses `reference` and prepares an HTTP client; no request is made until
    /// [`RemoteImage::resolve`]. `plain_http` talks HTTP instead of HTTPS (local registries);
    /// `credentials` are a user name and password (or token) for basic or token auth.
    pub fn connect(
        reference: &str,
        plain_http: bool,
        credentials: Option<(String, String)>,
    ) -> Result<RemoteImage, ImageError> {
        let reference = ImageReference::parse(reference).map_err(|e| ImageError::Invalid {
            what: "image reference".to_owned(),
            reason: e.to_string(),
        })?;
        let origin = reference.api_origin(plain_http)?;
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(IDLE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bonded-scan/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImageError::Remote(format!("cannot set up the HTTP client: {e}")))?;
        Ok(RemoteImage {
            client,
            reference,
            origin,
            plain_http,
            credentials,
            authorization: Mutex::new(Authorization::Anonymous),
        })
    }

    /// The normalized reference (`docker.io/library/alpine:latest`).
    pub fn reference(&self) -> &ImageReference {
        &self.reference
    }

    /// Fetches the manifest the reference names and, for an index, the manifests of the
    /// chosen platforms, with their configs. Every document is verified against its digest.
    pub fn resolve(&self, platform: &PlatformChoice) -> Result<Vec<ResolvedImage>, ImageError> {
        let (top, fetched) = match &self.reference.reference {
            Reference::Digest(digest) => (digest.clone(), None),
            Reference::Tag(tag) => {
                let fetched = self.fetch_manifest(tag.as_str())?;
                let digest = tagged_manifest_digest(&fetched.bytes, fetched.announced_digest, tag)?;
                (digest, Some((fetched.bytes, fetched.media_type)))
            }
        };
        let name = self.reference.to_string();
        resolve_manifest(
            &name,
            top.clone(),
            platform,
            &|digest| match &fetched {
                // The manifest fetched by tag is the top one; no need to ask twice.
                Some(document) if digest == &top => Ok(document.clone()),
                _ => {
                    let fetched = self.fetch_manifest(&digest.to_string())?;
                    Ok((fetched.bytes, fetched.media_type))
                }
            },
            &|digest| {
                let response = self.get(&self.blob_url(digest)?, None)?;
                read_document(response, &format!("blob {digest}"))
            },
            &|descriptor| Locator::Remote(descriptor.digest.clone()),
        )
    }

    /// `GET /v2/<name>/manifests/<reference>`.
    fn fetch_manifest(&self, reference: &str) -> Result<FetchedManifest, ImageError> {
        let url = self.api_url(&format!(
            "v2/{}/manifests/{reference}",
            self.reference.repository
        ))?;
        let accept = MediaType::ALL.map(MediaType::as_str).join(", ");
        let response = self.get(&url, Some(&accept))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let media_type = header(CONTENT_TYPE.as_str());
        let announced_digest = header("docker-content-digest");
        let bytes = read_document(response, &format!("manifest {reference}"))?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            announced_digest,
        })
    }

    fn blob_url(&self, digest: &Digest) -> Result<Url, ImageError> {
        self.api_url(&format!("v2/{}/blobs/{digest}", self.reference.repository))
    }

    fn api_url(&self, path: &str) -> Result<Url, ImageError> {
        self.origin
            .join(path)
            .map_err(|e| ImageError::Remote(format!("cannot build a URL for {path}: {e}")))
    }

    /// GETs `url`, following redirects and answering auth challenges from the registry.
    fn get(&self, url: &Url, accept: Option<&str>) -> Result<Response, RemoteError> {
        let mut url = url.clone();
        let mut redirects = 0;
        let mut authenticated = false;
        loop {
            let own_origin = same_origin(&url, &self.origin);
            let mut request = self.client.get(url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if own_origin {
                request = self.authorize(request);
            }
            let response = request.send().map_err(|e| transport_error(&url, e))?;
            let status = response.status();
            if status.is_redirection() && response.headers().contains_key(LOCATION) {
                redirects += 1;
                url = self.redirect_target(&url, &response, redirects)?;
            } else if status == reqwest::StatusCode::UNAUTHORIZED && own_origin && !authenticated {
                self.authenticate(&url, &response)?;
                authenticated = true;
            } else if status.is_success() {
                return Ok(response);
            } else {
                return Err(status_error("GET", &url, response));
            }
        }
    }

    /// Where a redirect points, if we may follow it.
    fn redirect_target(
        &self,
        from: &Url,
        response: &Response,
        redirects: usize,
    ) -> Result<Url, RemoteError> {
        let fail = |reason: String| RemoteError::Redirect {
            url: display_url(from),
            reason,
        };
        if redirects > MAX_REDIRECTS {
            return Err(fail(format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| fail("the Location header is not text".to_owned()))?;
        let next = from
            .join(location)
            .map_err(|e| fail(format!("bad Location: {e}")))?;
        match next.scheme() {
            "https" => Ok(next),
            "http" if self.plain_http => Ok(next),
            "http" => Err(fail(format!(
                "refusing to follow a redirect from HTTPS to plain HTTP ({})",
                display_url(&next)
            ))),
            other => Err(fail(format!("cannot follow a redirect to a {other}: URL"))),
        }
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        let current = self
            .authorization
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        match (current, &self.credentials) {
            (Authorization::Bearer(token), _) => request.bearer_auth(token),
            (Authorization::Basic, Some((user, password))) => {
                request.basic_auth(user, Some(password))
            }
            _ => request,
        }
    }

    /// Answers the challenge of a `401`, so that the next request is authorized.
    fn authenticate(&self, url: &Url, response: &Response) -> Result<(), RemoteError> {
        let fail = |reason: String| RemoteError::Auth {
            url: display_url(url),
            reason,
        };
        let header = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = parse_challenges(&header);
        let next = if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            Authorization::Bearer(self.fetch_token(bearer)?)
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            if self.credentials.is_none() {
                return Err(fail(
                    "the registry requires a user name and password".to_owned(),
                ));
            }
            Authorization::Basic
        } else {
            return Err(fail(format!(
                "401 without a Bearer or Basic challenge (WWW-Authenticate: {:?})",
                header.chars().take(200).collect::<String>()
            )));
        };
        match self.authorization.lock() {
            Ok(mut current) => *current = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// Asks the token endpoint (`realm`) for a pull token.
    fn fetch_token(&self, challenge: &Challenge) -> Result<String, RemoteError> {
        let realm = challenge.param("realm").unwrap_or_default();
        let fail = |reason: String| RemoteError::Auth {
            url: realm.chars().take(200).collect(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| fail(format!("bad realm: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.plain_http => {}
            other => return Err(fail(format!("refusing a {other}: token realm"))),
        }
        let default_scope = format!("repository:{}:pull", self.reference.repository);
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", challenge.param("scope").unwrap_or(&default_scope));
        }
        let mut request = self.client.get(url.clone());
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().map_err(|e| transport_error(&url, e))?;
        if !response.status().is_success() {
            return Err(status_error("GET", &url, response));
        }
        let mut body = Vec::new();
        response
            .take(MAX_TOKEN_BODY_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| fail(format!("cannot read the token: {e}")))?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("the token response is not valid JSON: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("the token response has no token".to_owned()))
    }
}

impl BlobSource for RemoteImage {
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let Locator::Remote(digest) = &layer.locator else {
            return Err(ImageError::Invalid {
                what: layer.digest.clone(),
                reason: "not a registry blob".to_owned(),
            });
        };
        let response = self.get(&self.blob_url(digest)?, None)?;
        if let (Some(sent), Some(declared)) = (response.content_length(), layer.size)
            && sent != declared
        {
            return Err(ImageError::Invalid {
                what: format!("layer {digest}"),
                reason: format!("the registry sends {sent} bytes, the manifest says {declared}"),
            });
        }
        Ok(Box::new(VerifiedBlob::new(
            response,
            digest.clone(),
            layer.size,
        )))
    }
}

/// A manifest as the registry sent it.
struct FetchedManifest {
    bytes: Vec<u8>,
    /// `Content-Type`.
    media_type: Option<String>,
    /// `Docker-Content-Digest`, if sent.
    announced_digest: Option<String>,
}

/// A blob stream that is hashed as it is read. The read that reaches the end of the stream
/// fails with [`ImageError::DigestMismatch`] (wrapped in an [`io::Error`] of kind
/// `InvalidData`) when the bytes do not hash to the expected digest, and any read fails as
/// soon as more bytes arrive than the declared size.
pub struct VerifiedBlob<R> {
    inner: R,
    expected: Digest,
    size: Option<u64>,
    read: u64,
    state: VerifyState,
}

enum VerifyState {
    Reading(Hasher),
    Verified,
    Failed(String),
}

impl<R: Read> VerifiedBlob<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> VerifiedBlob<R> {
        let hasher = Hasher::new(expected.algorithm());
        VerifiedBlob {
            inner,
            expected,
            size,
            read: 0,
            state: VerifyState::Reading(hasher),
        }
    }

    fn fail(&mut self, error: ImageError) -> io::Error {
        self.state = VerifyState::Failed(error.to_string());
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// The end of the stream: compare what was read with what was promised.
    fn finish(&mut self) -> io::Result<()> {
        // `read` returns before calling this in the `Failed` state.
        let VerifyState::Reading(hasher) =
            std::mem::replace(&mut self.state, VerifyState::Verified)
        else {
            return Ok(());
        };
        let what = format!("layer {}", self.expected);
        if let Some(size) = self.size
            && self.read != size
        {
            return Err(self.fail(ImageError::Invalid {
                what,
                reason: format!("ended after {} bytes, the manifest says {size}", self.read),
            }));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(self.fail(ImageError::DigestMismatch {
                what,
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifiedBlob<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let VerifyState::Failed(message) = &self.state {
            return Err(io::Error::new(io::ErrorKind::InvalidData, message.clone()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        self.read = self.read.saturating_add(n as u64);
        if let Some(size) = self.size
            && self.read > size
        {
            let what = format!("layer {}", self.expected);
            return Err(self.fail(ImageError::TooLarge { what, limit: size }));
        }
        if let (VerifyState::Reading(hasher), Some(chunk)) = (&mut self.state, buf.get(..n)) {
            hasher.update(chunk);
        }
        Ok(n)
    }
}

/// The digest of a manifest fetched by tag: computed from the bytes, and checked against the
/// registry's `Docker-Content-Digest` when it sends one (whose algorithm is then used).
fn tagged_manifest_digest(
    bytes: &[u8],
    announced: Option<String>,
    tag: &Tag,
) -> Result<Digest, ImageError> {
    let what = format!("manifest {tag}");
    match announced {
        Some(announced) => {
            let expected = Digest::from_str(announced.trim()).map_err(|e| ImageError::Invalid {
                what: format!("Docker-Content-Digest of {what}"),
                reason: e.to_string(),
            })?;
            let actual = Digest::compute(expected.algorithm(), bytes);
            if actual != expected {
                return Err(ImageError::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
            Ok(actual)
        }
        None => Ok(Digest::compute(oci::Algorithm::Sha256, bytes)),
    }
}

/// Reads a manifest, index or config whole, refusing more than [`MAX_DOCUMENT_BYTES`].
fn read_document(response: Response, what: &str) -> Result<Vec<u8>, ImageError> {
    let too_large = || ImageError::TooLarge {
        what: what.to_owned(),
        limit: MAX_DOCUMENT_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES)
    {
        return Err(too_large());
    }
    let url = display_url(response.url());
    let mut bytes = Vec::new();
    response
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            ImageError::Remote(format!("reading {what} from {url}: {}", error_chain(&e)))
        })?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A status error with the first OCI error code and message, if the body has them.
fn status_error(method: &'static str, url: &Url, response: Response) -> RemoteError {
    let status = response.status();
    let mut body = Vec::new();
    // The body only adds detail; a failure to read it leaves the detail empty.
    let _ = response.take(MAX_ERROR_BODY_BYTES).read_to_end(&mut body);
    RemoteError::Status {
        method,
        url: display_url(url),
        status,
        detail: oci_error_detail(&body)
            .map(|d| format!(": {d}"))
            .unwrap_or_default(),
    }
}

/// `CODE: message` from an OCI error body (Distribution Spec, "Error Codes":
/// `{"errors": [{"code": "<error identifier>", "message": "<message>", "detail": …}]}`).
pub fn oci_error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = value.get("errors")?.as_array()?.first()?;
    let code = first.get("code").and_then(|c| c.as_str());
    let message = first.get("message").and_then(|m| m.as_str());
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(300).collect() };
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("{}: {}", clean(c), clean(m))),
        (Some(c), None) => Some(clean(c)),
        (None, Some(m)) => Some(clean(m)),
        (None, None) => None,
    }
}

fn transport_error(url: &Url, error: reqwest::Error) -> RemoteError {
    RemoteError::Transport {
        method: "GET",
        url: display_url(url),
        reason: error_chain(&error.without_url()),
    }
}

/// An error with its causes, `a: b: c` (callers strip URLs first: they may carry signatures).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL for messages: without its query, which for storage redirects is a signature.
fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// One challenge of a `WWW-Authenticate` header (RFC 9110 section 11.6.1):
/// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, `auth-param = token BWS "=" BWS
/// ( token / quoted-string )`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower case (auth schemes are case-insensitive).
    pub scheme: String,
    /// Parameter names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the challenges of a `WWW-Authenticate` value. Anything that does not fit the
/// grammar is skipped; the result is never larger than the input.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        cursor.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if cursor.done() {
            return challenges;
        }
        let scheme = cursor.token();
        if scheme.is_empty() {
            // Not a token character: skip it and look for the next challenge.
            cursor.at += 1;
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        cursor.skip(|b| b == b' ' || b == b'\t');
        while let Some(param) = cursor.auth_param() {
            challenge.params.push(param);
            cursor.skip(|b| b == b' ' || b == b'\t');
            if cursor.peek() == Some(b',') {
                cursor.at += 1;
                cursor.skip(|b| b == b' ' || b == b'\t');
            }
        }
        if challenge.params.is_empty() {
            // A token68 (`Negotiate abc==`) is not used by registries; skip it.
            cursor.skip(|b| is_token_byte(b) || b == b'=' || b == b'/');
        }
        challenges.push(challenge);
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(is_token_byte);
        String::from_utf8_lossy(self.bytes.get(start..self.at).unwrap_or_default()).into_owned()
    }

    /// `name = value`, or `None` (and the cursor unmoved) when the input is not one.
    fn auth_param(&mut self) -> Option<(String, String)> {
        let start = self.at;
        let name = self.token();
        self.skip(|b| b == b' ' || b == b'\t');
        if name.is_empty() || self.peek() != Some(b'=') {
            self.at = start;
            return None;
        }
        self.at += 1;
        self.skip(|b| b == b' ' || b == b'\t');
        let value = if self.peek() == Some(b'"') {
            self.at += 1;
            self.quoted_rest()
        } else {
            let value = self.token();
            if value.is_empty() {
                // `name=` followed by nothing usable: a token68 such as `abc==`.
                self.at = start;
                return None;
            }
            value
        };
        Some((name.to_ascii_lowercase(), value))
    }

    /// The rest of a quoted-string after its opening quote, unescaped.
    fn quoted_rest(&mut self) -> String {
        let mut value = Vec::new();
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                other => value.push(other),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(s: &str) -> (String, String, String) {
        let r = ImageReference::parse(s).unwrap();
        (
            r.registry,
            r.repository.to_string(),
            r.reference.to_string(),
        )
    }

    #[test]
    fn docker_hub_shorthand() {
        let latest = ("docker.io".into(), "library/alpine".into(), "latest".into());
        assert_eq!(parsed("alpine"), latest);
        assert_eq!(parsed("docker://alpine"), latest);
        assert_eq!(parsed("docker.io/alpine"), latest);
        assert_eq!(parsed("index.docker.io/library/alpine:latest"), latest);
        assert_eq!(
            parsed("bitnami/redis:7.2"),
            ("docker.io".into(), "bitnami/redis".into(), "7.2".into())
        );
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(
            parsed("localhost/foo"),
            ("localhost".into(), "foo".into(), "latest".into())
        );
        assert_eq!(
            parsed("localhost:5000/foo/bar:v1"),
            ("localhost:5000".into(), "foo/bar".into(), "v1".into())
        );
        assert_eq!(
            parsed("127.0.0.1:5000/a"),
            ("127.0.0.1:5000".into(), "a".into(), "latest".into())
        );
        assert_eq!(
            parsed("ghcr.io/owner/image:1.0"),
            ("ghcr.io".into(), "owner/image".into(), "1.0".into())
        );
        assert_eq!(
            parsed("[::1]:5000/a:b"),
            ("[::1]:5000".into(), "a".into(), "b".into())
        );
        // A first segment without `.`/`:` is a Docker Hub namespace, not a host.
        assert_eq!(parsed("myhost/image").0, "docker.io");
    }

    #[test]
    fn digests_win_over_tags() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parsed(&format!("quay.io/x/y@{d}")).2, d);
        assert_eq!(parsed(&format!("quay.io/x/y:v1@{d}")).2, d);
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "upper/CASE",
            "host:0/x",
            "host:99999/x",
            "a/b:bad:tag",
            "x@sha256:short",
            "x:tag@sha256:short",
            "user@host/x",
            "ex ample.com/x",
            "example.com/",
            "example.com/x:",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn challenges() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
        let parsed = parse_challenges(header);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].scheme, "bearer");
        assert_eq!(
            parsed[0].param("realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(parsed[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            parsed[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );

        let two = parse_challenges(r#"Basic realm="a \"b\"", Bearer realm=x , service = y"#);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].scheme, "basic");
        assert_eq!(two[0].param("realm"), Some(r#"a "b""#));
        assert_eq!(two[1].param("realm"), Some("x"));
        assert_eq!(two[1].param("service"), Some("y"));

        let token68 = parse_challenges("Negotiate abc==, Basic realm=r");
        assert_eq!(token68.len(), 2);
        assert_eq!(token68[1].param("realm"), Some("r"));
    }

    #[test]
    fn oci_error_bodies() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            oci_error_detail(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(oci_error_detail(b"<html>nope</html>"), None);
        assert_eq!(oci_error_detail(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn verified_blob_checks_digest_and_size() {
        let data = b"layer bytes".to_vec();
        let digest = Digest::compute(oci::Algorithm::Sha256, &data);
        let mut ok = Vec::new();
        VerifiedBlob::new(&data[..], digest.clone(), Some(data.len() as u64))
            .read_to_end(&mut ok)
            .unwrap();
        assert_eq!(ok, data);

        let mut bad = data.clone();
        bad[0] ^= 1;
        let mut reader = VerifiedBlob::new(&bad[..], digest.clone(), None);
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains("digest mismatch"), "{error}");
        // The failure is sticky.
        assert!(reader.read(&mut [0; 8]).is_err());

        let longer = [data.clone(), b"x".to_vec()].concat();
        let error = VerifiedBlob::new(&longer[..], digest.clone(), Some(data.len() as u64))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("larger than"), "{error}");

        let error = VerifiedBlob::new(&data[..4], digest, Some(data.len() as u64))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("ended after 4 bytes"), "{error}");
    }

    proptest! {
        #[test]
        fn references_never_panic(s in "\\PC{0,80}") {
            if let Ok(r) = ImageReference::parse(&s) {
                // A parsed reference prints as something that parses to itself.
                let again = ImageReference::parse(&r.to_string()).unwrap();
                prop_assert_eq!(again, r);
            }
        }

        #[test]
        fn challenge_parsing_never_panics(s in "\\PC{0,200}") {
            let parsed = parse_challenges(&s);
            prop_assert!(parsed.len() <= s.len());
        }

        #[test]
        fn challenge_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_challenges(&String::from_utf8_lossy(&bytes));
            let _ = oci_error_detail(&bytes);
        }
    }
}
