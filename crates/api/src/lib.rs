//! `api`: the management REST API under `/api/v1`. Handlers read through the store traits
//! and ask workers to act; they never touch storage files or run scans themselves.
//!
//! - `GET /api/v1/repositories/<name>/manifests/<digest>/scan`: the scan of an image (status
//!   `pending`, `running`, `done` or `failed` with its reason; the DB version; counts by
//!   severity; findings; what changed at the last re-matches). For an index, the scans of its
//!   children.
//! - `POST` to the same path queues a rescan (of every child, for an index): `202`.
//! - Trust (module `signing`): `…/signatures`, `POST …/sign` and `/api/v1/authorities`. Changing
//!   trust needs the admin bearer token (`require_admin`).
//!
//! Errors use the registry's JSON shape, `{"errors": [{"code", "message"}]}`.

use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::scan_worker::ScanWorker;
use oci::{Digest, Manifest, ManifestKind, RepositoryName};
use registry::Registry;
use scan::matcher::Finding;
use scan::model::Inventory;
use scan::report::purl::package_purl;
use serde_json::{Value, json};
use store::{MetaStore, ScanStore};
use trust::service::TrustService;

mod pipeline;
mod signing;

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    pub meta: Arc<dyn MetaStore>,
    pub scans: Arc<dyn ScanStore>,
    pub worker: Option<Arc<ScanWorker>>,
    pub registry: Arc<Registry>,
    pub trust: Arc<TrustService>,
    /// Server-side signing (shared with promotions, which sign too).
    pub signing: Arc<events::signer::ServerSigner>,
    pub events: Arc<dyn store::EventStore>,
    pub promotions: Arc<dyn store::PromotionStore>,
    pub promoter: Arc<events::promotion::Promoter>,
    pub evidence: events::evidence::EvidenceSource,
    /// The bearer token that changing trust (authorities, server signing) requires. Without
    /// one those endpoints refuse: until users and roles exist, trust changes need a secret.
    pub admin_token: Option<Arc<str>>,
}

/// Checks `Authorization: Bearer <admin token>` for an endpoint that changes trust.
pub(crate) fn require_admin(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "changing trust needs an admin token: set [api] admin_token_file (or BONDED_ADMIN_TOKEN) and send Authorization: Bearer <token>",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in constant time: the token is a secret.
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let differs = a.len() != b.len() || a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) != 0;
    if differs {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "this endpoint needs Authorization: Bearer <admin token>",
        ));
    }
    Ok(())
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/api/v1/repositories/{*rest}",
            get(get_manifest_resource).post(post_manifest_resource),
        )
        .route(
            "/api/v1/authorities/{name}",
            get(signing::get_authority).put(signing::put_authority),
        )
        .route("/api/v1/authorities", get(signing::list_authorities))
        .route("/api/v1/promotions", get(pipeline::list_promotions))
        .route(
            "/api/v1/promotions/{name}",
            get(pipeline::get_promotion)
                .put(pipeline::put_promotion)
                .delete(pipeline::delete_promotion),
        )
        .route(
            "/api/v1/promotions/{name}/{action}",
            axum::routing::post(pipeline::post_promotion_action),
        )
        .with_state(state)
}

/// What follows `<name>/manifests/<digest>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Scan,
    Signatures,
    Sign,
    Evidence,
    History,
}

/// `<name>/manifests/<digest>/<resource>`, split from the right since names contain `/`.
fn parse_manifest_path(rest: &str) -> Result<(RepositoryName, Digest, Resource), ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API endpoint");
    let (rest, resource) = rest.rsplit_once('/').ok_or_else(not_found)?;
    let resource = match resource {
        "scan" => Resource::Scan,
        "signatures" => Resource::Signatures,
        "sign" => Resource::Sign,
        "evidence" => Resource::Evidence,
        "history" => Resource::History,
        _ => return Err(not_found()),
    };
    let (name, digest) = rest.rsplit_once("/manifests/").ok_or_else(not_found)?;
    let name = RepositoryName::from_str(name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", e.to_string()))?;
    let digest = Digest::from_str(digest)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()))?;
    Ok((name, digest, resource))
}

async fn get_manifest_resource(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    match parse_manifest_path(&rest)? {
        (name, digest, Resource::Scan) => get_scan(&state, name, digest).await,
        (name, digest, Resource::Signatures) => signing::get_signatures(&state, name, digest).await,
        (name, digest, Resource::Evidence) => pipeline::get_evidence(&state, name, digest).await,
        (name, digest, Resource::History) => pipeline::get_history(&state, name, digest).await,
        (_, _, Resource::Sign) => Err(method_not_allowed("POST")),
    }
}

async fn post_manifest_resource(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    match parse_manifest_path(&rest)? {
        (name, digest, Resource::Scan) => post_scan(&state, name, digest).await,
        (name, digest, Resource::Sign) => {
            signing::post_sign(
                &state,
                name,
                digest,
                &headers,
                uri.authority().map(|a| a.as_str()),
                &body,
            )
            .await
        }
        (_, _, Resource::Signatures | Resource::Evidence | Resource::History) => {
            Err(method_not_allowed("GET"))
        }
    }
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        format!("this resource only answers {allowed}"),
    )
}

pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "management API internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message}]});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The manifest, parsed, or 404.
async fn manifest(
    state: &ApiState,
    name: &RepositoryName,
    digest: &Digest,
) -> Result<Manifest, ApiError> {
    let stored = state
        .meta
        .manifest_by_digest(name, digest)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                format!("{name} has no manifest {digest}"),
            )
        })?;
    Manifest::parse(Some(&stored.media_type), &stored.content).map_err(ApiError::internal)
}

async fn get_scan(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
) -> Result<Response, ApiError> {
    let manifest = manifest(state, &name, &digest).await?;
    if let ManifestKind::Index { manifests } = &manifest.kind {
        let mut children = Vec::new();
        for child in image_children(state, &name, manifests).await? {
            let mut entry = image_scan(state, &child.digest.to_string(), false).await?;
            if let Some(platform) = &child.platform {
                entry["platform"] = platform.clone();
            }
            children.push(entry);
        }
        let status = aggregate(&children);
        return Ok(axum::Json(json!({
            "repository": name.to_string(),
            "digest": digest.to_string(),
            "status": status,
            "manifests": children,
        }))
        .into_response());
    }
    if !manifest.is_container_image() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "SCAN_UNKNOWN",
            format!(
                "{digest} is not a container image (an artifact such as a signature or an SBOM); it is not scanned"
            ),
        ));
    }
    let mut body = image_scan(state, &digest.to_string(), true).await?;
    body["repository"] = json!(name.to_string());
    Ok(axum::Json(body).into_response())
}

/// The children of an index that are container images: BuildKit attestation manifests
/// (`unknown/unknown`), signatures and other artifacts are not scanned, so they take no part
/// in the index's status.
async fn image_children<'a>(
    state: &ApiState,
    name: &RepositoryName,
    manifests: &'a [oci::Descriptor],
) -> Result<Vec<&'a oci::Descriptor>, ApiError> {
    let mut out = Vec::new();
    for child in manifests {
        let unknown_platform = child
            .platform
            .as_ref()
            .and_then(|p| p.get("os"))
            .and_then(|os| os.as_str())
            == Some("unknown");
        if unknown_platform {
            continue;
        }
        let Some(stored) = state
            .meta
            .manifest_by_digest(name, &child.digest)
            .await
            .map_err(ApiError::internal)?
        else {
            continue;
        };
        if Manifest::parse(Some(&stored.media_type), &stored.content)
            .is_ok_and(|m| m.is_container_image())
        {
            out.push(child);
        }
    }
    Ok(out)
}

/// The status of an index: failed if any child failed, else the least advanced child's.
fn aggregate(children: &[Value]) -> &'static str {
    let statuses: Vec<&str> = children
        .iter()
        .filter_map(|c| c["status"].as_str())
        .collect();
    if statuses.contains(&"failed") {
        "failed"
    } else if statuses.contains(&"pending") || statuses.contains(&"not_scanned") {
        "pending"
    } else if statuses.contains(&"running") {
        "running"
    } else {
        "done"
    }
}

/// One image's scan: the job's state and, when there is a result, the result.
async fn image_scan(
    state: &ApiState,
    digest: &str,
    with_findings: bool,
) -> Result<Value, ApiError> {
    let job = state
        .scans
        .scan_job(digest)
        .await
        .map_err(ApiError::internal)?;
    let result = state
        .scans
        .scan_result(digest)
        .await
        .map_err(ApiError::internal)?;
    let mut body = json!({
        "digest": digest,
        "status": job.as_ref().map_or("not_scanned", |j| j.state.as_str()),
    });
    if let Some(job) = &job {
        body["reason"] = json!(job.reason);
        body["attempts"] = json!(job.attempts);
        body["queued_at"] = json!(job.queued_at);
        body["finished_at"] = json!(job.finished_at);
    }
    let Some(result) = result else {
        return Ok(body);
    };
    body["db_version"] = json!(result.db_version);
    body["scanned_at"] = json!(result.scanned_at);
    body["matched_at"] = json!(result.matched_at);
    body["counts"] = result
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    if !with_findings {
        return Ok(body);
    }
    let inventory: Inventory =
        serde_json::from_str(&result.inventory).map_err(ApiError::internal)?;
    let findings: Vec<Finding> = match result.findings.as_deref() {
        Some(f) => serde_json::from_str(f).map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    body["packages"] = json!(inventory.packages.len());
    body["distro"] = json!(inventory.distro);
    body["layers"] = json!(inventory.layers);
    body["notes"] = json!(inventory.notes);
    body["findings"] = Value::Array(
        findings
            .iter()
            .filter_map(|f| {
                let p = inventory.packages.get(f.package)?;
                let mut v = serde_json::to_value(f).ok()?;
                v["package"] = json!({
                    "name": p.name,
                    "version": p.version,
                    "type": p.kind.as_str(),
                    "purl": package_purl(p, inventory.distro.as_ref()).to_string(),
                    "layer": p.layer,
                    "path": p.evidence,
                });
                Some(v)
            })
            .collect(),
    );
    let changes = state
        .scans
        .scan_changes(digest, 10)
        .await
        .map_err(ApiError::internal)?;
    body["changes"] = Value::Array(
        changes
            .iter()
            .map(|c| {
                json!({
                    "from_db": c.from_db,
                    "to_db": c.to_db,
                    "added": serde_json::from_str::<Value>(&c.added).unwrap_or(Value::Null),
                    "removed": serde_json::from_str::<Value>(&c.removed).unwrap_or(Value::Null),
                    "at": c.at,
                })
            })
            .collect(),
    );
    Ok(body)
}

async fn post_scan(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
) -> Result<Response, ApiError> {
    let manifest = manifest(state, &name, &digest).await?;
    let targets: Vec<Digest> = match &manifest.kind {
        ManifestKind::Index { manifests } => image_children(state, &name, manifests)
            .await?
            .into_iter()
            .map(|m| m.digest.clone())
            .collect(),
        ManifestKind::Image { .. } if manifest.is_container_image() => vec![digest.clone()],
        ManifestKind::Image { .. } => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "SCAN_UNSUPPORTED",
                format!("{digest} is not a container image; only images are scanned"),
            ));
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for target in &targets {
        state
            .scans
            .request_scan(name.as_str(), &target.to_string(), now)
            .await
            .map_err(ApiError::internal)?;
    }
    if let Some(worker) = &state.worker {
        worker.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "repository": name.to_string(),
            "digest": digest.to_string(),
            "status": "pending",
            "manifests": targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })),
    )
        .into_response())
}
