//! HTTP handlers of the Distribution API: request parsing and response shaping only; the
//! rules live in [`crate::service`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use oci::{Algorithm, Digest, MediaType, Reference, RepositoryName};
use serde_json::{Value, json};
use store::{ByteRange, Page, UploadId, UploadState};

use crate::error::{ApiError, ErrorCode};
use crate::hooks::PullVerdict;
use crate::route::{self, Endpoint};
use crate::service::{
    BodyError, BodyStream, ChunkRange, DRAIN_LIMIT, Registry, collect_limited, manifest_unknown,
    too_large,
};

/// State shared by the handlers.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// How long a request body may stall before the request is abandoned.
    pub body_idle_timeout: Duration,
}

/// The endpoint that handled a request, for logs and metrics.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// Entry point for every `/v2` request.
pub async fn dispatch(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let (label, result) = match route::parse(&path) {
        Some(endpoint) => (endpoint.label(), handle(&app, endpoint, req).await),
        None => (
            "unknown",
            Err(ApiError::new(ErrorCode::Unsupported, "no such endpoint")
                .with_status(StatusCode::NOT_FOUND)),
        ),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(RouteLabel(label));
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn handle(
    app: &AppState,
    endpoint: Endpoint<'_>,
    req: Request,
) -> Result<Response, ApiError> {
    let (req, body) = req.into_parts();
    let method = req.method.clone();
    let registry = &app.registry;
    match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => {
            Ok(json_response("{}".into(), "application/json"))
        }
        (Endpoint::Catalog, Method::GET) => catalog(registry, &req).await,
        (Endpoint::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            get_manifest(registry, name, reference, &req, &m).await
        }
        (Endpoint::Manifest { name, reference }, Method::PUT) => {
            put_manifest(app, name, reference, &req, body).await
        }
        (Endpoint::Manifest { name, reference }, Method::DELETE) => {
            let repo = repository(name)?;
            let reference: Reference = reference.parse()?;
            registry.delete_manifest(&repo, &reference).await?;
            Ok(accepted())
        }
        (Endpoint::Blob { name, digest }, m @ (Method::GET | Method::HEAD)) => {
            get_blob(registry, name, digest, &req.headers, &m).await
        }
        (Endpoint::Blob { name, digest }, Method::DELETE) => {
            let repo = repository(name)?;
            let digest: Digest = digest.parse()?;
            registry.delete_blob(&repo, &digest).await?;
            Ok(accepted())
        }
        (Endpoint::UploadStart { name }, Method::POST) => start_upload(app, name, &req, body).await,
        (Endpoint::Upload { name, id }, Method::GET) => {
            let repo = repository(name)?;
            let state = registry.upload(&repo, id).await?;
            Ok(upload_response(StatusCode::NO_CONTENT, &state))
        }
        (Endpoint::Upload { name, id }, Method::PATCH) => {
            let repo = repository(name)?;
            let range = chunk_range(&req.headers)?;
            let declared = content_length(&req.headers)?;
            let body = body_stream(body, app.body_idle_timeout);
            let state = registry.append(&repo, id, range, declared, body).await?;
            Ok(upload_response(StatusCode::ACCEPTED, &state))
        }
        (Endpoint::Upload { name, id }, Method::PUT) => {
            let repo = repository(name)?;
            let digest = digest_param(&query(&req)?)?;
            let range = chunk_range(&req.headers)?;
            let declared = content_length(&req.headers)?;
            let body = body_stream(body, app.body_idle_timeout);
            registry
                .complete(&repo, id, digest.clone(), range, declared, body)
                .await?;
            Ok(blob_created(&repo, &digest))
        }
        (Endpoint::Upload { name, id }, Method::DELETE) => {
            let repo = repository(name)?;
            registry.cancel(&repo, id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Endpoint::Tags { name }, Method::GET) => tags(registry, name, &req).await,
        (Endpoint::Referrers { name, digest }, Method::GET) => {
            referrers(registry, name, digest, &req).await
        }
        (endpoint, method) => Err(ApiError::new(
            ErrorCode::Unsupported,
            format!(
                "{method} is not supported on the {} endpoint",
                endpoint.label()
            ),
        )),
    }
}

// ----- request parsing -----

fn repository(name: &str) -> Result<RepositoryName, ApiError> {
    Ok(name.parse()?)
}

fn query(req: &Parts) -> Result<HashMap<String, String>, ApiError> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(&req.uri)
        .map(|axum::extract::Query(m)| m)
        .map_err(|_| bad_query("malformed query string"))
}

fn bad_query(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unsupported, message.to_owned()).with_status(StatusCode::BAD_REQUEST)
}

fn digest_param(q: &HashMap<String, String>) -> Result<Digest, ApiError> {
    match q.get("digest") {
        Some(d) => Ok(d.parse()?),
        None => Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "the digest query parameter is required",
        )),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::new(ErrorCode::SizeInvalid, "malformed Content-Length")),
    }
}

fn chunk_range(headers: &HeaderMap) -> Result<Option<ChunkRange>, ApiError> {
    match headers.get(header::CONTENT_RANGE) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(ChunkRange::parse)
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    "Content-Range must be <first>-<last>, inclusive byte offsets",
                )
            }),
    }
}

fn body_stream(body: Body, idle: Duration) -> BodyStream {
    let stream = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(
        Some(stream),
        move |state| async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => Some((Err(BodyError::Idle(idle)), None)),
                Ok(None) => None,
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
                Ok(Some(Err(e))) => Some((Err(BodyError::Read(e.to_string())), None)),
            }
        },
    ))
}

/// Page size and start of a listing: `n` and `last`. Distribution Spec v1.1, "Listing Tags":
/// "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a `Link`
/// header."
fn pagination(q: &HashMap<String, String>, max: u32) -> Result<(u32, Option<String>), ApiError> {
    let n = match q.get("n") {
        None => max,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| bad_query("n must be a non-negative integer"))?
            .min(u64::from(max)) as u32,
    };
    Ok((n, q.get("last").cloned()))
}

// ----- response shaping -----

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn accepted() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (StatusCode::ACCEPTED, headers).into_response()
}

fn json_response(body: String, content_type: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, hv(&body.len().to_string()));
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// A page of a listing (tags, catalog), with `Link` to the next page when there is one.
fn listing_response(body: String, page: &Page, n: u32, path: &str) -> Response {
    let mut response = json_response(body, "application/json");
    if page.more
        && n > 0
        && let Some(last) = page.items.last()
    {
        response
            .headers_mut()
            .insert(header::LINK, link_header(path, n, last));
    }
    response
}

pub(crate) fn range_value(bytes_received: u64) -> String {
    // `Range: 0-<last byte>`; distribution answers `0-0` for an empty upload.
    format!("0-{}", bytes_received.saturating_sub(1))
}

pub(crate) fn upload_location(repo: &RepositoryName, id: &UploadId) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

fn upload_response(status: StatusCode, state: &UploadState) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        hv(&upload_location(&state.repository, &state.id)),
    );
    headers.insert(header::RANGE, hv(&range_value(state.bytes_received)));
    headers.insert(DOCKER_UPLOAD_UUID, hv(state.id.as_str()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (status, headers).into_response()
}

fn blob_created(repo: &RepositoryName, digest: &Digest) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, hv(&format!("/v2/{repo}/blobs/{digest}")));
    headers.insert(DOCKER_CONTENT_DIGEST, hv(&digest.to_string()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (StatusCode::CREATED, headers).into_response()
}

fn link_header(path: &str, n: u32, last: &str) -> HeaderValue {
    let last: String = url_encode(last);
    hv(&format!("<{path}?n={n}&last={last}>; rel=\"next\""))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ----- endpoints -----

async fn start_upload(
    app: &AppState,
    name: &str,
    req: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let repo = repository(name)?;
    let q = query(req)?;
    if let Some(mount) = q.get("mount") {
        let digest: Digest = mount.parse()?;
        let from = match q.get("from") {
            Some(f) => Some(repository(f)?),
            None => None,
        };
        // Distribution Spec v1.1, "Mounting a blob from another repository": 201 with the blob
        // location when mounted; otherwise "it SHOULD return a 202" and start an upload
        // session. The spec lets a registry "treat the from parameter as optional"; we do not,
        // so a mount never reveals that a blob exists in a repository the client did not name
        // (which matters once repositories have permissions).
        if let Some(from) = &from
            && registry.mount(&repo, &digest, Some(from)).await?.is_some()
        {
            metrics::counter!("bonded_blob_mounts_total").increment(1);
            return Ok(blob_created(&repo, &digest));
        }
        let state = registry.start_upload(&repo, digest.algorithm()).await?;
        return Ok(upload_response(StatusCode::ACCEPTED, &state));
    }
    if q.contains_key("digest") {
        let digest = digest_param(&q)?;
        let declared = content_length(&req.headers)?;
        let body = body_stream(body, app.body_idle_timeout);
        registry
            .monolithic(&repo, digest.clone(), declared, body)
            .await?;
        return Ok(blob_created(&repo, &digest));
    }
    let algorithm = match q.get("digest-algorithm") {
        Some(a) => a.parse::<Algorithm>()?,
        None => Algorithm::Sha256,
    };
    let state = registry.start_upload(&repo, algorithm).await?;
    Ok(upload_response(StatusCode::ACCEPTED, &state))
}

async fn get_blob(
    registry: &Registry,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Response, ApiError> {
    let repo = repository(name)?;
    let digest: Digest = digest.parse()?;
    let size = registry.blob_size(&repo, &digest).await?;
    let mut out = HeaderMap::new();
    out.insert(DOCKER_CONTENT_DIGEST, hv(&digest.to_string()));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    let range = match header_str(headers, &header::RANGE) {
        None => None,
        Some(r) => match byte_range(r, size) {
            RangeRequest::Ignore => None,
            RangeRequest::Satisfiable(r) => Some(r),
            RangeRequest::Unsatisfiable => {
                return Err(ApiError::new(
                    ErrorCode::BlobUnknown,
                    "requested range not satisfiable",
                )
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header(header::CONTENT_RANGE, hv(&format!("bytes */{size}"))));
            }
        },
    };
    let (status, len) = match range {
        Some(r) => {
            out.insert(
                header::CONTENT_RANGE,
                hv(&format!("bytes {}-{}/{size}", r.first, r.last)),
            );
            (StatusCode::PARTIAL_CONTENT, r.len())
        }
        None => (StatusCode::OK, size),
    };
    out.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    if method == Method::HEAD || len == 0 {
        return Ok((status, out).into_response());
    }
    let body = registry.read_blob(&digest, range).await?;
    Ok((status, out, Body::from_stream(body)).into_response())
}

enum RangeRequest {
    Ignore,
    Satisfiable(ByteRange),
    Unsatisfiable,
}

/// RFC 9110 §14.1.2 single byte ranges: `bytes=a-b`, `bytes=a-`, `bytes=-n`. A syntactically
/// invalid header, or several ranges, is ignored and the whole blob served (§14.2 allows it).
fn byte_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), num(a), num(b)) {
        // Suffix range: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Satisfiable(ByteRange {
                    first: size - n.min(size),
                    last: size - 1,
                })
            }
        }
        (false, Some(first), last) if b.is_empty() || last.is_some() => {
            if first >= size {
                return RangeRequest::Unsatisfiable;
            }
            match last {
                Some(l) if l < first => RangeRequest::Ignore,
                Some(l) => RangeRequest::Satisfiable(ByteRange {
                    first,
                    last: l.min(size - 1),
                }),
                None => RangeRequest::Satisfiable(ByteRange {
                    first,
                    last: size - 1,
                }),
            }
        }
        _ => RangeRequest::Ignore,
    }
}

async fn get_manifest(
    registry: &Registry,
    name: &str,
    reference: &str,
    req: &Parts,
    method: &Method,
) -> Result<Response, ApiError> {
    let repo = repository(name)?;
    let reference: Reference = match reference.parse() {
        Ok(r) => r,
        // The conformance suite requires 404 (not 400) for a GET of a reference that is not a
        // valid tag (`01_pull_test.go`, ".INVALID_MANIFEST_NAME"); malformed digests stay 400.
        Err(oci::NameError::InvalidTag { .. }) => {
            return Err(ApiError::new(
                ErrorCode::ManifestUnknown,
                "manifest unknown: the reference is not a valid tag",
            )
            .with_detail(json!({ "reference": reference.chars().take(200).collect::<String>() })));
        }
        Err(e) => return Err(e.into()),
    };
    let manifest = registry.manifest(&repo, &reference).await?;
    if !acceptable(&req.headers, &manifest.media_type) {
        // As distribution does: a manifest the client cannot take is "unknown" to it.
        return Err(manifest_unknown(&reference).with_detail(json!({
            "reference": reference.to_string(),
            "mediaType": manifest.media_type,
            "reason": "the Accept header does not include this manifest's media type",
        })));
    }
    let mut out = HeaderMap::new();
    // The pull gate guards the content (GET). A HEAD answers only what a denial names anyway
    // (the digest, media type and size), and signers need it to resolve the tag they sign.
    let verdict = if method == Method::HEAD {
        PullVerdict::Allow
    } else {
        registry.pull_verdict(&repo, &manifest).await
    };
    match verdict {
        PullVerdict::Allow => {}
        PullVerdict::Warn { message } => {
            tracing::warn!(repository = %repo, digest = %manifest.digest, %message, "pull policy warning");
            // RFC 7234 section 5.5: `Warning: 299 <agent> "<text>"` ("Miscellaneous
            // Persistent Warning"); quotes and backslashes escaped, control characters dropped.
            out.insert(header::WARNING, warning_value(&message));
        }
        PullVerdict::Deny { message, detail } => {
            tracing::info!(repository = %repo, digest = %manifest.digest, %message, "pull denied by policy");
            return Err(ApiError::new(ErrorCode::Denied, message).with_detail(detail));
        }
    }
    out.insert(header::CONTENT_TYPE, hv(&manifest.media_type));
    out.insert(DOCKER_CONTENT_DIGEST, hv(&manifest.digest.to_string()));
    out.insert(
        header::CONTENT_LENGTH,
        hv(&manifest.content.len().to_string()),
    );
    out.insert(header::ETAG, hv(&format!("\"{}\"", manifest.digest)));
    if method == Method::HEAD {
        return Ok((StatusCode::OK, out).into_response());
    }
    Ok((StatusCode::OK, out, Body::from(manifest.content)).into_response())
}

fn warning_value(message: &str) -> HeaderValue {
    let text: String = message
        .chars()
        .filter(|c| !c.is_control() && c.is_ascii())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    HeaderValue::from_str(&format!("299 bonded \"{text}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("299 bonded \"pull policy warning\""))
}

/// Content negotiation (RFC 9110 §12.5.1): no `Accept`, `*/*` or `application/*` accept
/// anything; otherwise the stored media type must be listed with a non-zero quality.
fn acceptable(headers: &HeaderMap, media_type: &str) -> bool {
    let mut saw_accept = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let essence = parts.next().unwrap_or("").trim();
            if essence.is_empty() {
                continue;
            }
            saw_accept = true;
            let zero_q = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if zero_q {
                continue;
            }
            if essence == "*/*"
                || essence.eq_ignore_ascii_case("application/*")
                || essence.eq_ignore_ascii_case(media_type)
            {
                return true;
            }
        }
    }
    !saw_accept
}

async fn put_manifest(
    app: &AppState,
    name: &str,
    reference: &str,
    req: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let registry = &app.registry;
    let repo = repository(name)?;
    let reference: Reference = reference.parse()?;
    let limit = registry.limits().max_manifest_bytes;
    // A declared size over the limit is refused without reading when draining it would cost
    // too much; smaller excesses are drained by `collect_limited` first (see there).
    if content_length(&req.headers)?.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large(limit));
    }
    let content_type = header_str(&req.headers, &header::CONTENT_TYPE).map(str::to_owned);
    let body = collect_limited(body_stream(body, app.body_idle_timeout), limit).await?;
    let outcome = registry
        .put_manifest(&repo, &reference, content_type.as_deref(), body)
        .await?;
    let mut out = HeaderMap::new();
    out.insert(
        header::LOCATION,
        hv(&format!("/v2/{repo}/manifests/{}", outcome.digest)),
    );
    out.insert(DOCKER_CONTENT_DIGEST, hv(&outcome.digest.to_string()));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    // Distribution Spec v1.1, "Pushing Manifests with Subject": a registry supporting the
    // referrers API "MUST respond with the response header OCI-Subject: <subject digest>".
    if let Some(subject) = &outcome.subject {
        out.insert(OCI_SUBJECT, hv(&subject.to_string()));
    }
    Ok((StatusCode::CREATED, out).into_response())
}

async fn tags(registry: &Registry, name: &str, req: &Parts) -> Result<Response, ApiError> {
    let repo = repository(name)?;
    let q = query(req)?;
    let (n, last) = pagination(&q, registry.limits().max_page)?;
    let page = registry.tags(&repo, last.as_deref(), n).await?;
    let body = json!({ "name": repo.as_str(), "tags": page.items }).to_string();
    Ok(listing_response(
        body,
        &page,
        n,
        &format!("/v2/{repo}/tags/list"),
    ))
}

async fn catalog(registry: &Registry, req: &Parts) -> Result<Response, ApiError> {
    let q = query(req)?;
    let (n, last) = pagination(&q, registry.limits().max_page)?;
    let page = registry.catalog(last.as_deref(), n).await?;
    let body = json!({ "repositories": page.items }).to_string();
    Ok(listing_response(body, &page, n, "/v2/_catalog"))
}

async fn referrers(
    registry: &Registry,
    name: &str,
    digest: &str,
    req: &Parts,
) -> Result<Response, ApiError> {
    let repo = repository(name)?;
    let digest: Digest = digest.parse()?;
    let q = query(req)?;
    let artifact_type = q.get("artifactType").filter(|s| !s.is_empty());
    let referrers = registry
        .referrers(&repo, &digest, artifact_type.map(String::as_str))
        .await?;
    let manifests: Vec<Value> = referrers
        .into_iter()
        .map(|r| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest.to_string(),
                "size": r.size,
            });
            if let Some(at) = r.artifact_type {
                d["artifactType"] = Value::String(at);
            }
            if let Some(a) = r
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    // Distribution Spec v1.1, "Listing Referrers": the response is an image index and "the
    // Content-Type header MUST be set to application/vnd.oci.image.index.v1+json".
    let body = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OciIndex.as_str(),
        "manifests": manifests,
    })
    .to_string();
    let mut response = json_response(body, MediaType::OciIndex.as_str());
    if artifact_type.is_some() {
        response.headers_mut().insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, size: u64) -> Option<(u64, u64)> {
        match byte_range(v, size) {
            RangeRequest::Satisfiable(r) => Some((r.first, r.last)),
            RangeRequest::Ignore => None,
            RangeRequest::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(r("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(r("bytes=10-", 100), Some((10, 99)));
        assert_eq!(r("bytes=-10", 100), Some((90, 99)));
        assert_eq!(r("bytes=-1000", 100), Some((0, 99)));
        assert_eq!(r("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(r("bytes=100-", 100), Some((u64::MAX, u64::MAX)));
        assert_eq!(r("bytes=9-0", 100), None);
        assert_eq!(r("bytes=0-1,5-6", 100), None);
        assert_eq!(r("items=0-1", 100), None);
        assert_eq!(r("bytes=x-1", 100), None);
        assert_eq!(r("bytes=99999999999999999999999-", 100), None);
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert!(acceptable(&h, "application/vnd.oci.image.index.v1+json"));
        h.insert(header::ACCEPT, hv("application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9"));
        assert!(acceptable(
            &h,
            "application/vnd.docker.distribution.manifest.v2+json"
        ));
        assert!(!acceptable(&h, "application/vnd.oci.image.index.v1+json"));
        h.insert(
            header::ACCEPT,
            hv("application/vnd.oci.image.index.v1+json;q=0"),
        );
        assert!(!acceptable(&h, "application/vnd.oci.image.index.v1+json"));
        h.insert(header::ACCEPT, hv("*/*"));
        assert!(acceptable(&h, "application/vnd.oci.image.index.v1+json"));
    }

    proptest::proptest! {
        #[test]
        fn header_parsers_never_panic(s in "\\PC{0,60}", size in 0u64..u64::MAX) {
            if let Some(r) = ChunkRange::parse(&s) {
                proptest::prop_assert!(r.start <= r.end);
                proptest::prop_assert_eq!(r.len() - 1, r.end - r.start);
            }
            match byte_range(&s, size) {
                RangeRequest::Satisfiable(r) => proptest::prop_assert!(r.first <= r.last && r.last < size),
                RangeRequest::Ignore | RangeRequest::Unsatisfiable => {}
            }
        }

        #[test]
        fn numeric_ranges_never_panic(a in proptest::num::u64::ANY, b in proptest::num::u64::ANY, size in 0u64..u64::MAX) {
            let _ = ChunkRange::parse(&format!("{a}-{b}")).map(|r| r.len());
            for v in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                if let RangeRequest::Satisfiable(r) = byte_range(&v, size) {
                    proptest::prop_assert!(r.first <= r.last && r.last < size);
                    proptest::prop_assert_eq!(r.len() - 1, r.last - r.first);
                }
            }
        }
    }

    #[test]
    fn chunk_ranges() {
        assert_eq!(
            ChunkRange::parse("0-21"),
            Some(ChunkRange { start: 0, end: 21 })
        );
        assert_eq!(
            ChunkRange::parse("bytes 22-41/42"),
            Some(ChunkRange { start: 22, end: 41 })
        );
        assert_eq!(ChunkRange::parse("5-4"), None);
        assert_eq!(ChunkRange::parse("-4"), None);
        assert_eq!(ChunkRange::parse("a-b"), None);
        assert_eq!(ChunkRange::parse("1-99999999999999999999999"), None);
        assert_eq!(ChunkRange::parse("0-18446744073709551615"), None);
        assert_eq!(
            ChunkRange::parse("1-18446744073709551615").map(|r| r.len()),
            Some(u64::MAX)
        );
    }
}
