//! The trust endpoints: authorities, the signatures of a manifest, and signing with the
//! server's key.
//!
//! - `GET /api/v1/authorities`: every authority (name, origin, keys).
//! - `GET /api/v1/authorities/<name>`; `PUT` with `{"keys": ["<PEM>", ...]}` creates or
//!   replaces an API authority (authorities from the configuration file and the server's own
//!   `bonded` are read-only here: 409). Every stored signature is re-verified against the
//!   new set before the PUT is answered.
//! - `GET /api/v1/repositories/<name>/manifests/<digest>/signatures`: which authorities have
//!   validly signed it, every signature and attestation with its verdict or the reason it is
//!   invalid, and the verified build history (SLSA provenance).
//! - `POST /api/v1/repositories/<name>/manifests/<digest>/sign`: signs the digest with the
//!   server key (authority `bonded`) and stores the signature as cosign does, appended to the
//!   `sha256-<hex>.sig` manifest. Optional body `{"annotations": {"k": "v"}}`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci::{Digest, RepositoryName};
use serde_json::{Value, json};
use trust::cosign::{self, AttachmentKind};
use trust::service::{ServiceError, valid_authority_name};

use crate::{ApiError, ApiState, manifest, require_admin};

/// Most bytes of a PUT authority body.
const MAX_AUTHORITY_BODY: usize = 256 << 10;
/// Most bytes of a POST sign body (annotations), and most annotations.
const MAX_SIGN_BODY: usize = 16 << 10;
const MAX_SIGN_ANNOTATIONS: usize = 32;

fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Authority { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "AUTHORITY_INVALID", e.to_string())
        }
        ServiceError::ReadOnlyAuthority { .. } => {
            ApiError::new(StatusCode::CONFLICT, "AUTHORITY_READ_ONLY", e.to_string())
        }
        ServiceError::NoServerKey => {
            ApiError::new(StatusCode::CONFLICT, "NO_SERVER_KEY", e.to_string())
        }
        ServiceError::Store(e) => ApiError::internal(e),
    }
}

fn authority_json(row: &store::AuthorityRow) -> Value {
    json!({
        "name": row.name,
        "origin": row.origin.as_str(),
        "keys": row.keys,
        "key_ids": row.keys.iter().map(|pem| trust::keys::PublicKey::from_pem(pem.as_bytes()).map(|k| k.key_id()).ok()).collect::<Vec<_>>(),
        "updated_at": row.updated_at,
    })
}

pub(crate) async fn list_authorities(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for authority in state.trust.authorities().iter() {
        if let Some(row) = state
            .trust
            .authority(&authority.name)
            .await
            .map_err(service_error)?
        {
            out.push(authority_json(&row));
        }
    }
    Ok(axum::Json(json!({ "authorities": out })).into_response())
}

/// `GET /api/v1/authorities/<name>`: JSON, or the keys alone as PEM with
/// `Accept: application/x-pem-file` (so `curl … > server.pub` gives a key for
/// `bonded verify --key`).
pub(crate) async fn get_authority(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = state
        .trust
        .authority(&name)
        .await
        .map_err(service_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "AUTHORITY_UNKNOWN",
                format!(
                    "no authority named {:?}",
                    name.chars().take(80).collect::<String>()
                ),
            )
        })?;
    let wants_pem = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-pem-file"));
    if wants_pem {
        let pem: String = row
            .keys
            .iter()
            .map(|k| format!("{}\n", k.trim_end()))
            .collect();
        return Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response());
    }
    Ok(axum::Json(authority_json(&row)).into_response())
}

pub(crate) async fn put_authority(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "AUTHORITY_INVALID", m);
    if !valid_authority_name(&name) {
        return Err(bad(
            "authority names are 1 to 64 characters: lower-case letters, digits, '-', '_', '.'"
                .into(),
        ));
    }
    if body.len() > MAX_AUTHORITY_BODY {
        return Err(bad(format!(
            "the body is larger than {MAX_AUTHORITY_BODY} bytes"
        )));
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        keys: Vec<String>,
    }
    let parsed: Body = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "the body must be {{\"keys\": [\"<PEM public key>\", ...]}}: {e}"
        ))
    })?;
    let existed = state
        .trust
        .authority(&name)
        .await
        .map_err(service_error)?
        .is_some();
    state
        .trust
        .put_authority(&name, parsed.keys)
        .await
        .map_err(service_error)?;
    let row = state
        .trust
        .authority(&name)
        .await
        .map_err(service_error)?
        .ok_or_else(|| ApiError::internal("the authority vanished after it was stored"))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(authority_json(&row))).into_response())
}

pub(crate) async fn get_signatures(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
) -> Result<Response, ApiError> {
    manifest(state, &name, &digest).await?;
    let view = state
        .trust
        .signatures_view(&name, &digest)
        .await
        .map_err(service_error)?;
    Ok(axum::Json(view).into_response())
}

pub(crate) async fn post_sign(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
    headers: &HeaderMap,
    authority: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    require_admin(state, headers)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "SIGN_INVALID", m);
    if body.len() > MAX_SIGN_BODY {
        return Err(bad(format!(
            "the body is larger than {MAX_SIGN_BODY} bytes"
        )));
    }
    let annotations: BTreeMap<String, String> = if body.iter().all(u8::is_ascii_whitespace) {
        BTreeMap::new()
    } else {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        serde_json::from_slice::<Body>(body)
            .map_err(|e| {
                bad(format!(
                    "the body must be {{\"annotations\": {{...}}}}: {e}"
                ))
            })?
            .annotations
    };
    if annotations.len() > MAX_SIGN_ANNOTATIONS {
        return Err(bad(format!("at most {MAX_SIGN_ANNOTATIONS} annotations")));
    }
    manifest(state, &name, &digest).await?;
    // The identity the payload names: the registry as this client reached it (the Host
    // header, or the request's authority under HTTP/2), which must be a plain `host[:port]`.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)
        .filter(|h| valid_host(h))
        .ok_or_else(|| {
            bad(
                "the request names no valid host (Host header or :authority) to name the image by"
                    .into(),
            )
        })?;
    let docker_reference = format!("{host}/{name}");
    let signature_manifest = state
        .signing
        .sign(&name, &digest, &docker_reference, &annotations)
        .await
        .map_err(|e| match e {
            events::signer::SignError::Full { .. } => {
                ApiError::new(StatusCode::CONFLICT, "SIGNATURES_FULL", e.to_string())
            }
            e => ApiError::internal(e),
        })?;
    let view = state
        .trust
        .signatures_view(&name, &digest)
        .await
        .map_err(service_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "repository": name.to_string(),
            "digest": digest.to_string(),
            "signature_manifest": signature_manifest.to_string(),
            "tag": cosign::signature_tag(&digest, AttachmentKind::Signature),
            "signed_by": view.get("signed_by").cloned().unwrap_or(Value::Null),
        })),
    )
        .into_response())
}

/// `host[:port]` as a registry host may be written: letters, digits, `.`, `-`, or a bracketed
/// IPv6 address, and an optional numeric port. Anything else (a path, `@`, spaces) would let a
/// client choose a name the signature was not meant for.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        }
    };
    name_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}
