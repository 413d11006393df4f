//! The audit API under `/api/v1/audit`.
//!
//! Reading entries needs the admin bearer token, because entries name client addresses and
//! user agents; everything needed to check the log's integrity is public, because it reveals
//! only hashes and sizes, and auditors should not need the admin's secret to watch the log:
//!
//! | route | access | answer |
//! |---|---|---|
//! | `GET /api/v1/audit` | admin | entries, filtered: `repository`, `digest`, `action`, `actor` (a substring of any actor field), `addr` (a client address, with or without port), `since` and `until` (inclusive; Unix seconds or RFC 3339), paged with `start` (the first index) and `limit` (≤ 1,000, default 100). Each with its `index`, `leaf_hash` (of the stored bytes) and the `entry` object. |
//! | `GET /api/v1/audit/entries` | admin | the stored canonical bytes (base64) of the entries `start..end`, `limit` ≤ 10,000: what `bonded audit verify --url` hashes. |
//! | `GET /api/v1/audit/leaves` | public | the leaf hashes recorded at append time, `start..end`, `limit` ≤ 10,000. |
//! | `GET /api/v1/audit/checkpoint` | public | the latest signed checkpoint (the JSON `--checkpoint` reads). |
//! | `GET /api/v1/audit/proof/inclusion?index=N` or `?event_id=ID`, `&size=M` | public | the inclusion proof in the tree of `M` entries (default: the latest checkpoint's), the recorded leaf hash, and the checkpoint of that size if one was signed. |
//! | `GET /api/v1/audit/proof/consistency?from=A&to=B` | public | the consistency proof from `A` to `B` entries (default: the latest checkpoint's), with the checkpoints of both sizes where signed. |
//!
//! Every page answers `next_start`, the `start` of the next page, or null at the end. Hashes,
//! signatures and entry bytes are standard base64. Errors have the registry's JSON shape,
//! `{"errors": [{"code", "message", "detail"}]}`; an unknown or repeated query parameter is an
//! error rather than ignored, so a misspelled filter never returns everything.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use store::{AuditQuery, MAX_AUDIT_PAGE};
use subtle::ConstantTimeEq as _;

use crate::log::{AuditError, AuditLog};
use crate::merkle::{Hash, MerkleError, hash_base64, leaf_hash};

/// Most entries a page of `GET /api/v1/audit` returns, and its default.
pub const MAX_FILTERED_PAGE: u32 = 1_000;
const DEFAULT_FILTERED_PAGE: u32 = 100;
const DEFAULT_RAW_PAGE: u32 = 1_000;
/// A page stops early once its entries exceed this many bytes (a page has at least one).
const MAX_PAGE_BYTES: usize = 16 << 20;
/// Longest accepted text filter.
const MAX_FILTER_LEN: usize = 512;

/// What an admin check decides about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAccess {
    Granted,
    /// The server has no admin token, so nobody may read entries (403).
    NoAdminToken,
    /// The request does not carry the admin token (401).
    Refused,
}

/// Decides whether a request may read entries, from its headers.
pub type AdminCheck = Arc<dyn Fn(&HeaderMap) -> AdminAccess + Send + Sync>;

/// The management API's rule: `Authorization: Bearer <token>`, compared in constant time;
/// without a configured token, entries are readable by nobody.
pub fn bearer_admin(token: Option<Arc<str>>) -> AdminCheck {
    Arc::new(move |headers: &HeaderMap| {
        let Some(expected) = &token else {
            return AdminAccess::NoAdminToken;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            AdminAccess::Granted
        } else {
            AdminAccess::Refused
        }
    })
}

#[derive(Clone)]
struct AuditApi {
    log: Arc<AuditLog>,
    admin: AdminCheck,
}

/// The audit routes, to merge into the server's router.
pub fn router(log: Arc<AuditLog>, admin: AdminCheck) -> Router {
    Router::new()
        .route("/api/v1/audit", get(filtered_entries))
        .route("/api/v1/audit/entries", get(raw_entries))
        .route("/api/v1/audit/leaves", get(leaves))
        .route("/api/v1/audit/checkpoint", get(checkpoint))
        .route("/api/v1/audit/proof/inclusion", get(inclusion_proof))
        .route("/api/v1/audit/proof/consistency", get(consistency_proof))
        .with_state(AuditApi { log, admin })
}

/// An error answer: status, code, message and optional detail.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Value,
}

impl HttpError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
        }
    }

    fn parameter(name: &str, message: impl Into<String>) -> HttpError {
        HttpError {
            detail: json!({ "parameter": name }),
            ..HttpError::new(StatusCode::BAD_REQUEST, "PARAMETER_INVALID", message)
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{
            "code": self.code,
            "message": self.message,
            "detail": self.detail,
        }]});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<AuditError> for HttpError {
    fn from(error: AuditError) -> HttpError {
        match &error {
            AuditError::Merkle(
                MerkleError::IndexOutOfRange { .. }
                | MerkleError::SizeBeyondLog { .. }
                | MerkleError::SizesReversed { .. },
            ) => HttpError::new(StatusCode::BAD_REQUEST, "RANGE_INVALID", error.to_string()),
            AuditError::UnknownEvent { .. } => {
                HttpError::new(StatusCode::NOT_FOUND, "EVENT_UNKNOWN", error.to_string())
            }
            AuditError::NoCheckpoint => {
                HttpError::new(StatusCode::NOT_FOUND, "NO_CHECKPOINT", error.to_string())
            }
            _ => {
                tracing::error!(error = %error, "audit API internal error");
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
            }
        }
    }
}

fn require_admin(api: &AuditApi, headers: &HeaderMap) -> Result<(), HttpError> {
    match (api.admin)(headers) {
        AdminAccess::Granted => Ok(()),
        AdminAccess::NoAdminToken => Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "reading audit entries needs an admin token: set [api] admin_token_file (or \
             BONDED_ADMIN_TOKEN) and send Authorization: Bearer <token>",
        )),
        AdminAccess::Refused => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "reading audit entries needs Authorization: Bearer <admin token>",
        )),
    }
}

/// Query parameters, checked against the names a route accepts.
struct Params(Vec<(String, String)>);

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

impl Params {
    fn new(pairs: QueryPairs, accepted: &[&str]) -> Result<Params, HttpError> {
        let Query(pairs) =
            pairs.map_err(|e| HttpError::parameter("", format!("unreadable query: {e}")))?;
        for (position, (name, _)) in pairs.iter().enumerate() {
            if !accepted.contains(&name.as_str()) {
                return Err(HttpError::parameter(
                    name,
                    format!(
                        "unknown parameter {:?}; this endpoint takes {}",
                        name.chars().take(64).collect::<String>(),
                        accepted.join(", ")
                    ),
                ));
            }
            if pairs.iter().take(position).any(|(other, _)| other == name) {
                return Err(HttpError::parameter(name, format!("{name} is given twice")));
            }
        }
        Ok(Params(pairs))
    }

    fn text(&self, name: &str) -> Result<Option<String>, HttpError> {
        let Some((_, value)) = self.0.iter().find(|(key, _)| key == name) else {
            return Ok(None);
        };
        if value.is_empty() || value.len() > MAX_FILTER_LEN {
            return Err(HttpError::parameter(
                name,
                format!("{name} must be 1 to {MAX_FILTER_LEN} bytes"),
            ));
        }
        Ok(Some(value.clone()))
    }

    fn number(&self, name: &str) -> Result<Option<u64>, HttpError> {
        self.text(name)?
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    HttpError::parameter(name, format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    }

    /// A time: Unix seconds, or an RFC 3339 date-time.
    fn time(&self, name: &str) -> Result<Option<i64>, HttpError> {
        self.text(name)?
            .map(|value| {
                value
                    .parse::<i64>()
                    .ok()
                    .or_else(|| {
                        chrono::DateTime::parse_from_rfc3339(&value)
                            .ok()
                            .map(|time| time.timestamp())
                    })
                    .ok_or_else(|| {
                        HttpError::parameter(
                            name,
                            format!(
                                "{name} must be Unix seconds or an RFC 3339 date-time such as \
                                 2025-01-31T12:00:00Z"
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// `start`, `end` and `limit` (default `default`, at most `max`).
    fn range(&self, default: u32, max: u32) -> Result<(i64, Option<i64>, u32), HttpError> {
        let start = to_i64(self.number("start")?.unwrap_or(0));
        let end = self.number("end")?.map(to_i64);
        let limit = match self.number("limit")? {
            None => default,
            Some(0) => return Err(HttpError::parameter("limit", "limit must be at least 1")),
            Some(limit) => u32::try_from(limit).unwrap_or(u32::MAX).min(max),
        };
        Ok((start, end, limit))
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn index_of(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// The `start` of the page after one that ended at `last` (if it was cut short or full).
fn next_start(last: Option<i64>, more: bool) -> Option<u64> {
    last.filter(|_| more)
        .map(|seq| index_of(seq).saturating_add(1))
}

async fn filtered_entries(
    State(api): State<AuditApi>,
    headers: HeaderMap,
    pairs: QueryPairs,
) -> Result<Response, HttpError> {
    require_admin(&api, &headers)?;
    let params = Params::new(
        pairs,
        &[
            "start",
            "limit",
            "repository",
            "digest",
            "action",
            "actor",
            "addr",
            "since",
            "until",
        ],
    )?;
    let (start, _, limit) = params.range(DEFAULT_FILTERED_PAGE, MAX_FILTERED_PAGE)?;
    let query = AuditQuery {
        repository: params.text("repository")?,
        digest: params.text("digest")?,
        action: params.text("action")?,
        actor: params.text("actor")?,
        addr: params.text("addr")?,
        since: params.time("since")?,
        until: params.time("until")?,
        ..AuditQuery::from_index(start, limit)
    };
    let rows = api
        .log
        .reader()
        .audit_entries(&query)
        .await
        .map_err(AuditError::from)?;
    let full = rows.len() >= limit as usize;
    let mut bytes = 0;
    let mut entries = Vec::new();
    let mut last = None;
    for row in &rows {
        if bytes > MAX_PAGE_BYTES {
            break;
        }
        bytes += row.entry.len();
        last = Some(row.seq);
        // An entry that is no longer JSON (edited behind the server's back) is shown as null;
        // `bonded audit verify` names it.
        let entry: Value = serde_json::from_slice(&row.entry).unwrap_or(Value::Null);
        entries.push(json!({
            "index": index_of(row.seq),
            "leaf_hash": STANDARD.encode(leaf_hash(&row.entry)),
            "entry": entry,
        }));
    }
    let more = full || entries.len() < rows.len();
    Ok(axum::Json(json!({
        "entries": entries,
        "next_start": next_start(last, more),
    }))
    .into_response())
}

/// A page of `GET /api/v1/audit/entries`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RawEntriesPage {
    pub entries: Vec<RawEntry>,
    pub next_start: Option<u64>,
}

/// One stored entry, byte for byte.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RawEntry {
    pub index: u64,
    pub event_id: String,
    #[serde(
        serialize_with = "bytes_to_base64",
        deserialize_with = "bytes_from_base64"
    )]
    pub canonical: Vec<u8>,
}

/// A page of `GET /api/v1/audit/leaves`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LeavesPage {
    pub leaves: Vec<RecordedLeaf>,
    pub next_start: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RecordedLeaf {
    pub index: u64,
    #[serde(with = "hash_base64")]
    pub hash: Hash,
}

fn bytes_to_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

fn bytes_from_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}

async fn raw_entries(
    State(api): State<AuditApi>,
    headers: HeaderMap,
    pairs: QueryPairs,
) -> Result<Response, HttpError> {
    require_admin(&api, &headers)?;
    let params = Params::new(pairs, &["start", "end", "limit"])?;
    let (start, end, limit) = params.range(DEFAULT_RAW_PAGE, MAX_AUDIT_PAGE)?;
    let query = AuditQuery {
        end,
        ..AuditQuery::from_index(start, limit)
    };
    let rows = api
        .log
        .reader()
        .audit_entries(&query)
        .await
        .map_err(AuditError::from)?;
    let full = rows.len() >= limit as usize;
    let mut bytes = 0;
    let mut entries = Vec::new();
    for row in rows.iter() {
        if bytes > MAX_PAGE_BYTES {
            break;
        }
        bytes += row.entry.len();
        entries.push(RawEntry {
            index: index_of(row.seq),
            event_id: row.event_id.clone(),
            canonical: row.entry.clone(),
        });
    }
    let more = full || entries.len() < rows.len();
    let last = entries.last().map(|entry| to_i64(entry.index));
    Ok(axum::Json(RawEntriesPage {
        next_start: next_start(last, more),
        entries,
    })
    .into_response())
}

async fn leaves(State(api): State<AuditApi>, pairs: QueryPairs) -> Result<Response, HttpError> {
    let params = Params::new(pairs, &["start", "end", "limit"])?;
    let (start, end, limit) = params.range(DEFAULT_RAW_PAGE, MAX_AUDIT_PAGE)?;
    let rows = api
        .log
        .reader()
        .audit_leaves(start, end.unwrap_or(i64::MAX), limit)
        .await
        .map_err(AuditError::from)?;
    let more = rows.len() >= limit as usize;
    Ok(axum::Json(LeavesPage {
        next_start: next_start(rows.last().map(|leaf| leaf.seq), more),
        leaves: rows
            .iter()
            .map(|leaf| RecordedLeaf {
                index: index_of(leaf.seq),
                hash: leaf.hash,
            })
            .collect(),
    })
    .into_response())
}

async fn checkpoint(State(api): State<AuditApi>) -> Result<Response, HttpError> {
    let latest = api
        .log
        .latest_checkpoint()
        .await?
        .ok_or(AuditError::NoCheckpoint)?;
    Ok(axum::Json(latest).into_response())
}

async fn inclusion_proof(
    State(api): State<AuditApi>,
    pairs: QueryPairs,
) -> Result<Response, HttpError> {
    let params = Params::new(pairs, &["index", "event_id", "size"])?;
    let size = params.number("size")?;
    let inclusion = match (params.number("index")?, params.text("event_id")?) {
        (Some(index), None) => api.log.inclusion_proof(index, size).await?,
        (None, Some(event_id)) => api.log.inclusion_proof_for_event(&event_id, size).await?,
        _ => {
            return Err(HttpError::parameter(
                "index",
                "give exactly one of index and event_id",
            ));
        }
    };
    let mut body = serde_json::to_value(&inclusion.proof).map_err(internal)?;
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "leaf_hash".into(),
            Value::String(STANDARD.encode(inclusion.leaf_hash)),
        );
        object.insert(
            "checkpoint".into(),
            serde_json::to_value(&inclusion.checkpoint).map_err(internal)?,
        );
    }
    Ok(axum::Json(body).into_response())
}

async fn consistency_proof(
    State(api): State<AuditApi>,
    pairs: QueryPairs,
) -> Result<Response, HttpError> {
    let params = Params::new(pairs, &["from", "to"])?;
    let from = params
        .number("from")?
        .ok_or_else(|| HttpError::parameter("from", "from (the older tree size) is required"))?;
    let consistency = api
        .log
        .consistency_proof(from, params.number("to")?)
        .await?;
    let mut body = serde_json::to_value(&consistency.proof).map_err(internal)?;
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "old_checkpoint".into(),
            serde_json::to_value(&consistency.old_checkpoint).map_err(internal)?,
        );
        object.insert(
            "new_checkpoint".into(),
            serde_json::to_value(&consistency.new_checkpoint).map_err(internal)?,
        );
    }
    Ok(axum::Json(body).into_response())
}

fn internal(error: serde_json::Error) -> HttpError {
    tracing::error!(error = %error, "audit API cannot write its answer");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}
