//! Request logging and Prometheus metrics.
//!
//! Every request gets an id (returned as `X-Request-Id`) and one structured log line with
//! method, path, route, status, bytes and duration. Metrics:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `bonded_http_requests_total` | counter | route, method, status |
//! | `bonded_http_request_duration_seconds` | histogram | route, method |
//! | `bonded_http_request_bytes_total` | counter | (bytes received in upload and manifest bodies) |
//! | `bonded_http_response_bytes_total` | counter | (bytes of response bodies) |
//! | `bonded_uploads_in_progress` | gauge | (upload requests streaming data now) |
//! | `bonded_upload_sessions_started_total`, `bonded_blobs_committed_total`, `bonded_blob_mounts_total`, `bonded_manifests_pushed_total` | counter | |

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::RouteLabel;

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("bonded_http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding several servers):
            // then this handle simply renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The address a connection came from, put on each of its requests by the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Longest user agent kept with an event.
const MAX_USER_AGENT: usize = 256;

/// Middleware: request id, one log line, metrics, and the request's actor for the store (the
/// events a request's changes write name its address, user agent and request id).
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = format!(
        "{:x}-{:x}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let bytes_in = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let actor = store::context::Actor {
        addr: req.extensions().get::<PeerAddr>().map(|p| p.0.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(MAX_USER_AGENT).collect()),
        request_id: Some(id.clone()),
    };
    let mut response = store::context::scope(actor, next.run(req)).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0)
        .unwrap_or(match path.as_str() {
            "/healthz" => "healthz",
            "/metrics" => "metrics",
            _ => "other",
        });
    let bytes_out = if method == axum::http::Method::HEAD {
        0
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| http_body::Body::size_hint(response.body()).exact())
            .unwrap_or(0)
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        path = %path,
        query = query.as_deref().unwrap_or(""),
        route,
        status,
        bytes_in,
        bytes_out,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    let method_label = method.as_str().to_owned();
    metrics::counter!("bonded_http_requests_total", "route" => route, "method" => method_label.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("bonded_http_request_duration_seconds", "route" => route, "method" => method_label)
        .record(elapsed.as_secs_f64());
    metrics::counter!("bonded_http_response_bytes_total").increment(bytes_out);
    response
}
