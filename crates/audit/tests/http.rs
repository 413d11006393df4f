//! The audit API through its router: access rules, filters, pages, proofs and the JSON error
//! shape.

use std::sync::Arc;

use audit::checkpoint::SignedCheckpoint;
use audit::http::{bearer_admin, router};
use audit::merkle::{ConsistencyProof, InclusionProof, leaf_hash};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::data_dir::DataDir;

const TOKEN: &str = "s3cret-admin-token";

struct Api {
    data: DataDir,
    router: axum::Router,
}

impl Api {
    async fn new(events: usize) -> Api {
        let data = DataDir::new().await;
        if events > 0 {
            let written = data.record(events).await;
            for batch in written.chunks(4) {
                data.log.handle(batch).await.expect("handle");
            }
        }
        let router = router(data.log.clone(), bearer_admin(Some(Arc::from(TOKEN))));
        Api { data, router }
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {bytes:?}"));
        (status, body)
    }

    async fn admin(&self, uri: &str) -> Value {
        let (status, body) = self.get(uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    async fn public(&self, uri: &str) -> Value {
        let (status, body) = self.get(uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }
}

fn indexes(page: &Value) -> Vec<u64> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["index"].as_u64().expect("index"))
        .collect()
}

fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().expect("an error code")
}

#[tokio::test]
async fn entries_need_the_admin_token_and_integrity_data_does_not() {
    let api = Api::new(5).await;
    for uri in ["/api/v1/audit", "/api/v1/audit/entries"] {
        let (status, body) = api.get(uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(error_code(&body), "UNAUTHORIZED");
        assert!(body["errors"][0]["message"].is_string());
        let (status, _) = api.get(uri, Some("wrong")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let closed = router(api.data.log.clone(), bearer_admin(None));
    let response = closed
        .oneshot(
            Request::get("/api/v1/audit")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "no admin token configured: nobody reads entries"
    );
    for uri in [
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/leaves",
        "/api/v1/audit/proof/inclusion?index=0",
        "/api/v1/audit/proof/consistency?from=1",
    ] {
        api.public(uri).await;
    }
}

#[tokio::test]
async fn entries_are_filtered_and_paged_by_index() {
    let api = Api::new(12).await;
    let all = api.admin("/api/v1/audit").await;
    assert_eq!(indexes(&all), (0..12).collect::<Vec<_>>());
    assert_eq!(all["next_start"], Value::Null);
    let first = &all["entries"][0];
    let stored = STANDARD.encode(leaf_hash(
        &serde_json_canonicalizer::to_vec(&first["entry"]).expect("JCS"),
    ));
    assert_eq!(first["leaf_hash"], Value::String(stored));
    assert_eq!(first["entry"]["version"], 1);
    assert_eq!(first["entry"]["actor"]["kind"], "system");

    let page = api.admin("/api/v1/audit?limit=5").await;
    assert_eq!(indexes(&page), [0, 1, 2, 3, 4]);
    assert_eq!(page["next_start"], 5);
    let next = api.admin("/api/v1/audit?limit=5&start=5").await;
    assert_eq!(indexes(&next), [5, 6, 7, 8, 9]);

    // Sample events cycle push, tag, promotion rejected, pull denied; every third has no
    // actor; addresses are 192.0.2.(n % 7).
    let prod = api.admin("/api/v1/audit?repository=prod/app").await;
    assert_eq!(indexes(&prod), [2, 3, 6, 7, 10, 11]);
    let denied = api.admin("/api/v1/audit?action=pull.denied").await;
    assert_eq!(indexes(&denied), [3, 7, 11]);
    assert_eq!(denied["entries"][0]["entry"]["outcome"], "denied");
    assert_eq!(
        denied["entries"][0]["entry"]["decision"]["rule"],
        "no-critical"
    );
    let digest = format!("sha256:{:064x}", 3);
    let by_digest = api.admin(&format!("/api/v1/audit?digest={digest}")).await;
    assert_eq!(indexes(&by_digest), [6, 7]);
    let by_addr = api.admin("/api/v1/audit?addr=192.0.2.1").await;
    assert_eq!(indexes(&by_addr), [1, 8], "n % 7 == 1, with an actor");
    let by_request = api.admin("/api/v1/audit?actor=req-10").await;
    assert_eq!(indexes(&by_request), [10]);
    let system = api.admin("/api/v1/audit?actor=system").await;
    assert_eq!(indexes(&system), [0, 3, 6, 9]);
    let since = api
        .admin("/api/v1/audit?since=1700000004&until=2023-11-14T22:13:27Z")
        .await;
    // Times are 1_700_000_000 + n for events with an actor and 1_700_000_000 without;
    // 2023-11-14T22:13:27Z is 1_700_000_007.
    assert_eq!(indexes(&since), [4, 5, 7]);
}

#[tokio::test]
async fn bad_parameters_are_json_errors() {
    let api = Api::new(3).await;
    for uri in [
        "/api/v1/audit?repo=dev/app",
        "/api/v1/audit?limit=0",
        "/api/v1/audit?limit=ten",
        "/api/v1/audit?since=yesterday",
        "/api/v1/audit?action=a&action=b",
        "/api/v1/audit?repository=",
    ] {
        let (status, body) = api.get(uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(error_code(&body), "PARAMETER_INVALID", "{uri}");
        assert!(
            body["errors"][0]["detail"]["parameter"].is_string(),
            "{uri}"
        );
    }
    for (uri, status, code) in [
        (
            "/api/v1/audit/proof/inclusion?index=3",
            StatusCode::BAD_REQUEST,
            "RANGE_INVALID",
        ),
        (
            "/api/v1/audit/proof/inclusion?index=0&size=4",
            StatusCode::BAD_REQUEST,
            "RANGE_INVALID",
        ),
        (
            "/api/v1/audit/proof/inclusion?index=0&event_id=x",
            StatusCode::BAD_REQUEST,
            "PARAMETER_INVALID",
        ),
        (
            "/api/v1/audit/proof/inclusion?event_id=unknown",
            StatusCode::NOT_FOUND,
            "EVENT_UNKNOWN",
        ),
        (
            "/api/v1/audit/proof/consistency?from=2&to=1",
            StatusCode::BAD_REQUEST,
            "RANGE_INVALID",
        ),
        (
            "/api/v1/audit/proof/consistency",
            StatusCode::BAD_REQUEST,
            "PARAMETER_INVALID",
        ),
    ] {
        let (got, body) = api.get(uri, None).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(error_code(&body), code, "{uri}");
    }
}

#[tokio::test]
async fn an_empty_log_has_no_checkpoint() {
    let api = Api::new(0).await;
    let (status, body) = api.get("/api/v1/audit/checkpoint", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NO_CHECKPOINT");
    let (status, _) = api.get("/api/v1/audit/proof/inclusion?index=0", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        indexes(&api.admin("/api/v1/audit").await),
        Vec::<u64>::new()
    );
}

#[tokio::test]
async fn checkpoint_and_proofs_verify_with_the_server_key() {
    let api = Api::new(10).await;
    let body = api.public("/api/v1/audit/checkpoint").await;
    let checkpoint =
        SignedCheckpoint::from_json(body.to_string().as_bytes()).expect("a checkpoint");
    let head = checkpoint
        .verify(&api.data.key.public_key())
        .expect("signed by the server key");
    assert_eq!(head.size, 10);

    let raw = api.admin("/api/v1/audit/entries?start=0&end=10").await;
    let entries: Vec<Vec<u8>> = raw["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            STANDARD
                .decode(entry["canonical"].as_str().expect("base64"))
                .expect("base64")
        })
        .collect();
    assert_eq!(entries.len(), 10);
    let leaves = api.public("/api/v1/audit/leaves?limit=3").await;
    assert_eq!(leaves["leaves"].as_array().expect("leaves").len(), 3);
    assert_eq!(leaves["next_start"], 3);

    for (index, entry) in entries.iter().enumerate() {
        let proof = api
            .public(&format!("/api/v1/audit/proof/inclusion?index={index}"))
            .await;
        let inclusion: InclusionProof = serde_json::from_value(proof.clone()).expect("a proof");
        let leaf = leaf_hash(entry);
        assert_eq!(
            proof["leaf_hash"],
            Value::String(STANDARD.encode(leaf)),
            "the recorded leaf is the served entry's hash"
        );
        assert_eq!(proof["checkpoint"], body);
        inclusion
            .verify(&leaf, &head.root)
            .unwrap_or_else(|e| panic!("{index}: {e}"));
    }
    let event_id = raw["entries"][6]["event_id"].as_str().expect("event id");
    let by_event = api
        .public(&format!(
            "/api/v1/audit/proof/inclusion?event_id={event_id}"
        ))
        .await;
    assert_eq!(by_event["leaf_index"], 6);

    // Batches of four were signed: checkpoints at 4, 8 and 10.
    let proof = api
        .public("/api/v1/audit/proof/consistency?from=4&to=10")
        .await;
    let consistency: ConsistencyProof = serde_json::from_value(proof.clone()).expect("a proof");
    let old = SignedCheckpoint::from_json(proof["old_checkpoint"].to_string().as_bytes())
        .expect("old checkpoint")
        .verify(&api.data.key.public_key())
        .expect("signed");
    consistency
        .verify(&old.root, &head.root)
        .expect("consistent");
}
