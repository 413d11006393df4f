//! The webhook management API, `/api/v1/webhooks`. Every endpoint needs the admin token: a
//! webhook carries a secret, and listing deliveries shows what the registry tells others.
//!
//! - `GET /api/v1/webhooks`: every webhook.
//! - `GET /api/v1/webhooks/<name>`; `PUT` with a definition (the fields of `[[webhook]]`, as
//!   JSON; `name` may be left out, `secret` and `token` too when replacing) creates (201) or
//!   replaces (200) an API webhook and enables it again; `DELETE` removes it (204). Webhooks of
//!   the configuration file are read-only here (409).
//! - `GET /api/v1/webhooks/<name>/deliveries?limit=&before=<id>`: deliveries, newest first.
//! - `GET /api/v1/webhooks/<name>/deliveries/<id>`: one delivery, its event and every attempt
//!   (status or error, duration, the first 4 KiB of the response).
//! - `POST /api/v1/webhooks/<name>/deliveries/<id>/redeliver`: queues it again, same event id
//!   (202).
//! - `POST /api/v1/webhooks/<name>/test`: sends a `dev.bonded.webhook.test` event now and
//!   answers with the attempt (200, whatever the receiver said).
//!
//! Secrets and trigger tokens are never returned: a webhook shows a fingerprint of each, the
//! first 16 hex digits of its SHA-256, enough to tell which secret is configured. The breaker
//! state of each webhook is shown with it. Errors have the registry's JSON shape,
//! `{"errors": [{"code", "message", "detail"}]}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::{AttemptRow, DeliveryRow};
use subtle::ConstantTimeEq;

use crate::config::WebhookConfig;
use crate::error::WebhookError;
use crate::retry::BreakerState;
use crate::service::{WebhookService, WebhookSummary, unix_ms};

/// The largest PUT body.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;
/// Deliveries listed when no `limit` is given, and the most one page holds.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// What the admin check says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminVerdict {
    Allowed,
    /// The server has no admin token: nobody may (403).
    NoAdminToken,
    /// The request does not carry the admin token (401).
    WrongToken,
}

/// Decides whether a request may manage webhooks.
pub type AdminCheck = Arc<dyn Fn(&HeaderMap) -> AdminVerdict + Send + Sync>;

/// The management API's rule: `Authorization: Bearer <token>` with the configured admin
/// token, compared in constant time; without a configured token, nobody.
pub fn bearer_admin(token: Option<Arc<str>>) -> AdminCheck {
    Arc::new(move |headers: &HeaderMap| {
        let Some(expected) = &token else {
            return AdminVerdict::NoAdminToken;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            AdminVerdict::Allowed
        } else {
            AdminVerdict::WrongToken
        }
    })
}

#[derive(Clone)]
struct HttpState {
    service: Arc<WebhookService>,
    admin: AdminCheck,
}

/// The routes of `/api/v1/webhooks`, every one behind `admin`.
pub fn router(service: Arc<WebhookService>, admin: AdminCheck) -> Router {
    let state = HttpState { service, admin };
    Router::new()
        .route("/api/v1/webhooks", get(list_webhooks))
        .route(
            "/api/v1/webhooks/{name}",
            get(get_webhook).put(put_webhook).delete(delete_webhook),
        )
        .route("/api/v1/webhooks/{name}/deliveries", get(list_deliveries))
        .route("/api/v1/webhooks/{name}/deliveries/{id}", get(get_delivery))
        .route(
            "/api/v1/webhooks/{name}/deliveries/{id}/redeliver",
            post(redeliver),
        )
        .route("/api/v1/webhooks/{name}/test", post(send_test))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .with_state(state)
}

/// An error answer: status, code, message and optional detail.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "WEBHOOK_INVALID", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"bonded-admin\""),
            );
        }
        response
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        let message = e.to_string();
        match e {
            WebhookError::Invalid { name, .. } => ApiError {
                detail: json!({"webhook": name}),
                ..ApiError::bad_request(message)
            },
            WebhookError::ReadOnly { .. } => {
                ApiError::new(StatusCode::CONFLICT, "WEBHOOK_READ_ONLY", message)
            }
            WebhookError::Disabled { .. } => {
                ApiError::new(StatusCode::CONFLICT, "WEBHOOK_DISABLED", message)
            }
            WebhookError::Unusable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "WEBHOOK_UNUSABLE", message)
            }
            WebhookError::UnknownWebhook { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "WEBHOOK_UNKNOWN", message)
            }
            WebhookError::UnknownDelivery { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "DELIVERY_UNKNOWN", message)
            }
            WebhookError::Event { .. }
            | WebhookError::Entropy { .. }
            | WebhookError::Transport(_)
            | WebhookError::Store(_) => {
                tracing::error!(error = %message, "webhook API internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

async fn require_admin(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    match (state.admin)(request.headers()) {
        AdminVerdict::Allowed => next.run(request).await,
        AdminVerdict::NoAdminToken => ApiError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "managing webhooks needs an admin token: set [api] admin_token_file (or BONDED_ADMIN_TOKEN) and send Authorization: Bearer <token>",
        )
        .into_response(),
        AdminVerdict::WrongToken => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "this endpoint needs Authorization: Bearer <admin token>",
        )
        .into_response(),
    }
}

/// `sha256:` and the first 16 hex digits of the SHA-256 of a secret.
fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex = hex::encode(digest);
    format!("sha256:{}", hex.get(..16).unwrap_or(&hex))
}

fn breaker_json(state: &BreakerState) -> Value {
    match state {
        BreakerState::Closed {
            consecutive_failures,
        } => json!({"state": "closed", "consecutive_failures": consecutive_failures}),
        BreakerState::Open {
            since,
            until,
            trips,
        } => json!({
            "state": "open",
            "since_ms": unix_ms(*since),
            "until_ms": unix_ms(*until),
            "trips": trips,
        }),
        BreakerState::HalfOpen {
            trips,
            trial_started,
        } => json!({
            "state": "half_open",
            "trips": trips,
            "trial_started_ms": trial_started.map(unix_ms),
        }),
    }
}

fn webhook_json(summary: &WebhookSummary) -> Value {
    let row = &summary.row;
    json!({
        "name": row.name,
        "origin": row.origin.as_str(),
        "kind": row.kind.as_str(),
        "url": row.url,
        "events": row.events,
        "repositories": row.repositories,
        "allow_private": row.allow_private,
        "secret": row.secret.as_deref().map(|s| json!({"fingerprint": fingerprint(s)})),
        "gitlab": row.gitlab.as_ref().map(|g| json!({
            "project": g.project,
            "ref": g.git_ref,
            "variables": g.variables,
            "token": {"fingerprint": fingerprint(&g.token)},
        })),
        "enabled": row.disabled.is_none(),
        "disabled": row.disabled.as_ref().map(|d| json!({"reason": d.reason, "at_ms": d.at_ms})),
        "breaker": breaker_json(&summary.breaker),
        "problem": summary.problem,
        "created_at_ms": row.created_at_ms,
        "updated_at_ms": row.updated_at_ms,
    })
}

fn delivery_json(row: &DeliveryRow) -> Value {
    json!({
        "id": row.id,
        "webhook": row.webhook,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "state": row.state.as_str(),
        "attempts": row.attempts,
        "next_attempt_at_ms": row.next_attempt_at_ms,
        "created_at_ms": row.created_at_ms,
        "updated_at_ms": row.updated_at_ms,
    })
}

fn attempt_json(row: &AttemptRow) -> Value {
    json!({
        "number": row.number,
        "status": row.status,
        "error": row.error,
        "duration_ms": row.duration_ms,
        "response": String::from_utf8_lossy(&row.response),
        "attempted_at_ms": row.attempted_at_ms,
    })
}

async fn list_webhooks(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let webhooks = state.service.webhooks().await?;
    let listed: Vec<Value> = webhooks.iter().map(webhook_json).collect();
    Ok(axum::Json(json!({"webhooks": listed})).into_response())
}

async fn get_webhook(
    State(state): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let summary = state.service.webhook(&name).await?;
    Ok(axum::Json(webhook_json(&summary)).into_response())
}

async fn put_webhook(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_DEFINITION_BYTES {
        return Err(ApiError::bad_request(format!(
            "the body is larger than {MAX_DEFINITION_BYTES} bytes"
        )));
    }
    let definition: WebhookConfig = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a webhook definition (JSON object with url, events, and secret or the GitLab fields): {e}"
        ))
    })?;
    let (created, summary) = state.service.put_webhook(&name, definition).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(webhook_json(&summary))).into_response())
}

async fn delete_webhook(
    State(state): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.service.delete_webhook(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `limit` (1 to 200) and `before` (a delivery id) from the query string.
fn page(query: Option<&str>) -> Result<(u32, Option<String>), ApiError> {
    let mut limit = DEFAULT_PAGE;
    let mut before = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))
                    })?;
            }
            "before" => before = Some(value.into_owned()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?} (known: limit, before)"
                )));
            }
        }
    }
    Ok((limit, before))
}

async fn list_deliveries(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (limit, before) = page(query.as_deref())?;
    let rows = state
        .service
        .deliveries(&name, before.as_deref(), limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|d| d.id.clone()))
        .flatten();
    let listed: Vec<Value> = rows.iter().map(delivery_json).collect();
    Ok(axum::Json(json!({"deliveries": listed, "next_before": next})).into_response())
}

async fn get_delivery(
    State(state): State<HttpState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let detail = state.service.delivery(&name, &id).await?;
    let mut body = delivery_json(&detail.delivery);
    let event = serde_json::from_slice::<Value>(&detail.event)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&detail.event).into_owned()));
    if let Some(members) = body.as_object_mut() {
        members.insert("event".to_owned(), event);
        members.insert(
            "attempt_log".to_owned(),
            detail.attempts.iter().map(attempt_json).collect(),
        );
    }
    Ok(axum::Json(body).into_response())
}

async fn redeliver(
    State(state): State<HttpState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let queued = state.service.redeliver(&name, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"delivery": delivery_json(&queued)})),
    )
        .into_response())
}

async fn send_test(
    State(state): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let outcome = state.service.send_test(&name).await?;
    Ok(axum::Json(json!({
        "delivery": delivery_json(&outcome.delivery),
        "attempt": outcome.attempt.as_ref().map(attempt_json),
    }))
    .into_response())
}
