//! The OCI Distribution 1.1 HTTP API of Bonded.
//!
//! [`router`] builds the axum router that `bonded serve` runs and the tests drive: the
//! Distribution API under `/v2`, `/healthz` and Prometheus `/metrics`. Handlers
//! ([`http`]) parse requests and shape responses; the rules live in [`Registry`]
//! ([`service`]); storage is reached only through the `store` traits.
//!
//! Architecture invariants:
//! - No request path panics or unwraps; every failure is an [`ApiError`] rendered as the
//!   spec's error JSON with its status.
//! - Bytes are served exactly as stored: manifests are never re-serialized.
//! - This crate knows nothing of scanning or policy internals.

mod cache;
pub mod error;
pub mod hooks;
pub mod http;
pub mod observe;
pub mod route;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use metrics_exporter_prometheus::PrometheusHandle;

pub use error::{ApiError, ErrorCode};
pub use hooks::{ManifestObserver, PullGate, PullVerdict, StoredEvent};
pub use http::AppState;
pub use service::{Limits, Registry};

/// Options of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// How long a request body may stall before the request is abandoned.
    pub body_idle_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            body_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Builds the router serving the Distribution API, `/healthz` and `/metrics`.
pub fn router(registry: Arc<Registry>, options: HttpOptions) -> Router {
    let metrics = observe::metrics_handle();
    let state = Arc::new(AppState {
        registry,
        body_idle_timeout: options.body_idle_timeout,
    });
    let api = Router::new()
        .route("/v2", any(http::dispatch))
        .route("/v2/", any(http::dispatch))
        .route("/v2/{*rest}", any(http::dispatch))
        .route("/healthz", get(healthz))
        .with_state(state);
    let metrics_route = Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    api.merge(metrics_route)
        .layer(axum::middleware::from_fn(observe::observe))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.registry.healthy().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata store unavailable\n",
            )
                .into_response()
        }
    }
}

async fn render_metrics(State(handle): State<PrometheusHandle>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
        .into_response()
}
