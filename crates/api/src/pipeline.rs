//! The pipeline's endpoints: promotion rules (`/api/v1/promotions`), their dry runs and runs,
//! an image's evidence document and its whole story (`…/manifests/<digest>/evidence`,
//! `…/history`).
//!
//! Changing a rule or running one needs the admin token (it copies and signs images); reading
//! rules, decisions, evidence and history is open like the scan and signature views.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oci::{Digest, RepositoryName};
use policy::promotion::PromotionConfig;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, manifest, require_admin};
use events::promotion::PromotionWorkError;

/// Most decisions listed with a rule.
const MAX_DECISIONS: u32 = 200;
/// Largest rule body accepted.
const MAX_RULE_BODY: usize = 64 << 10;
/// Most events in a history.
const MAX_HISTORY: u32 = 1000;

fn work_error(e: PromotionWorkError) -> ApiError {
    match e {
        PromotionWorkError::UnknownRule(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
        }
        PromotionWorkError::ConfigRule(_) => {
            ApiError::new(StatusCode::CONFLICT, "READ_ONLY", e.to_string())
        }
        PromotionWorkError::Rule(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "POLICY_INVALID", e.to_string())
        }
        e => ApiError::internal(e),
    }
}

fn rule_view(state: &ApiState, rule: &policy::promotion::PromotionRule) -> Value {
    json!({
        "name": rule.name(),
        "origin": if state.promoter.is_config_rule(rule.name()) { "config" } else { "api" },
        "policy_digest": rule.policy_digest(),
        "rule": rule.config(),
    })
}

pub(crate) async fn list_promotions(State(state): State<ApiState>) -> Response {
    let rules: Vec<Value> = state
        .promoter
        .rules()
        .iter()
        .map(|r| rule_view(&state, r))
        .collect();
    axum::Json(json!({ "promotions": rules })).into_response()
}

pub(crate) async fn get_promotion(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rule = state
        .promoter
        .rule(&name)
        .ok_or_else(|| work_error(PromotionWorkError::UnknownRule(name.clone())))?;
    let decisions = state
        .promotions
        .decisions_for_rule(&name, MAX_DECISIONS)
        .await
        .map_err(ApiError::internal)?;
    let mut view = rule_view(&state, &rule);
    view["decisions"] = decisions
        .iter()
        .map(|d| {
            json!({
                "repository": d.repository, "tag": d.tag, "digest": d.digest,
                "verdict": d.verdict, "decided_at": d.decided_at, "promoted_at": d.promoted_at,
                "decision": serde_json::from_str::<Value>(&d.decision).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(axum::Json(view).into_response())
}

pub(crate) async fn put_promotion(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "POLICY_INVALID", m);
    if body.len() > MAX_RULE_BODY {
        return Err(bad(format!(
            "the body is larger than {MAX_RULE_BODY} bytes"
        )));
    }
    let mut config: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body must be a JSON promotion rule: {e}")))?;
    match config.get("name") {
        None => config["name"] = json!(name),
        Some(given) if given == &json!(name) => {}
        Some(given) => {
            return Err(bad(format!(
                "the body names {given}, the path names {name:?}"
            )));
        }
    }
    let config: PromotionConfig =
        serde_json::from_value(config).map_err(|e| bad(format!("invalid promotion rule: {e}")))?;
    let created = state.promoter.put_rule(config).await.map_err(work_error)?;
    let rule = state
        .promoter
        .rule(&name)
        .ok_or_else(|| ApiError::internal("the rule vanished after being stored"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(rule_view(&state, &rule))).into_response())
}

pub(crate) async fn delete_promotion(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    if state
        .promoter
        .delete_rule(&name)
        .await
        .map_err(work_error)?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(work_error(PromotionWorkError::UnknownRule(name)))
    }
}

/// `POST /api/v1/promotions/<name>/dry-run` and `…/run`.
pub(crate) async fn post_promotion_action(
    State(state): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let dry_run = match action.as_str() {
        "dry-run" => true,
        "run" => {
            require_admin(&state, &headers)?;
            false
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such API endpoint",
            ));
        }
    };
    let considered = state
        .promoter
        .run_rule(&name, dry_run)
        .await
        .map_err(work_error)?;
    let count = |verdict: &str| {
        considered
            .iter()
            .filter(|c| c.decision.get("verdict").and_then(Value::as_str) == Some(verdict))
            .count()
    };
    Ok(axum::Json(json!({
        "promotion": name,
        "dry_run": dry_run,
        "promoted": count("promoted"),
        "pending": count("pending"),
        "rejected": count("rejected"),
        "images": considered,
    }))
    .into_response())
}

/// `GET …/manifests/<digest>/evidence`: what rules would see (by digest, so no tag).
pub(crate) async fn get_evidence(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
) -> Result<Response, ApiError> {
    manifest(state, &name, &digest).await?;
    let evidence = state
        .evidence
        .evidence(&name, None, &digest)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(evidence).into_response())
}

/// `GET …/manifests/<digest>/history`: pushes (when, by whom, from where), tags, scans,
/// signatures, attestations, promotion decisions and refused pulls, oldest first, with the
/// verified build provenance.
pub(crate) async fn get_history(
    state: &ApiState,
    name: RepositoryName,
    digest: Digest,
) -> Result<Response, ApiError> {
    manifest(state, &name, &digest).await?;
    let key = digest.to_string();
    let events = state
        .events
        .events_for_digest(&key, 0, MAX_HISTORY)
        .await
        .map_err(ApiError::internal)?;
    let story: Vec<Value> = events
        .iter()
        .filter(|e| {
            e.repository.as_deref() == Some(name.as_str()) || e.kind.starts_with("promotion.")
        })
        .map(|e| {
            json!({
                "event_id": e.id,
                "seq": e.seq,
                "type": e.kind,
                "time": e.created_at,
                "repository": e.repository,
                "tag": e.tag,
                "actor": e.actor.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
                "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
            })
        })
        .collect();
    let decisions = state
        .promotions
        .decisions_for_digest(&key)
        .await
        .map_err(ApiError::internal)?;
    let signatures = state
        .trust
        .signatures_view(&name, &digest)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({
        "repository": name.to_string(),
        "digest": key,
        "events": story,
        "truncated": events.len() as u32 >= MAX_HISTORY,
        "build_history": signatures.get("build_history").cloned().unwrap_or(Value::Null),
        "signed_by": signatures.get("signed_by").cloned().unwrap_or(Value::Null),
        "promotions": decisions.iter().map(|d| json!({
            "rule": d.rule, "tag": d.tag, "verdict": d.verdict,
            "target": d.target_repository.as_ref().map(|r| json!({"repository": r, "tag": d.target_tag})),
            "decided_at": d.decided_at, "promoted_at": d.promoted_at,
            "decision": serde_json::from_str::<Value>(&d.decision).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}
