//! The management API: admin token (401/403), unknown webhooks and deliveries (404),
//! read-only configured webhooks (409), malformed definitions (400 with a message), secrets
//! never shown, and delivery listings.

use std::time::Duration;

use serde_json::{Value, json};
use store::DeliveryState;
use webhooks::bearer_admin;

use crate::support::{
    Api, Fixture, Receiver, SECRET, eventually, fast_options, first_error, standard,
};

#[tokio::test]
async fn every_endpoint_needs_the_admin_token() {
    let fx = Fixture::new(&[], fast_options()).await;
    let mut api = fx.api().await;
    let paths = [
        ("GET", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks/ci"),
        ("PUT", "/api/v1/webhooks/ci"),
        ("DELETE", "/api/v1/webhooks/ci"),
        ("GET", "/api/v1/webhooks/ci/deliveries"),
        ("GET", "/api/v1/webhooks/ci/deliveries/x"),
        ("POST", "/api/v1/webhooks/ci/deliveries/x/redeliver"),
        ("POST", "/api/v1/webhooks/ci/test"),
    ];
    for token in [None, Some("wrong".to_owned()), Some(String::new())] {
        api.token = token.clone();
        for (method, path) in paths {
            let method = method.parse().expect("method");
            // Refused before the body is read: a malformed one changes nothing.
            let (status, body) = api.call(method, path, Some("{not json")).await;
            assert_eq!(status, 401, "{path} with {token:?}");
            assert_eq!(first_error(&body).0, "UNAUTHORIZED");
        }
    }
    assert_eq!(
        api.challenge("/api/v1/webhooks").await.as_deref(),
        Some("Bearer realm=\"bonded-admin\"")
    );

    // A server without an admin token lets nobody manage webhooks.
    let closed = Api::serve(fx.service.clone(), bearer_admin(None)).await;
    let (status, body) = closed.get("/api/v1/webhooks").await;
    assert_eq!(status, 403);
    let (code, message) = first_error(&body);
    assert_eq!(code, "DENIED");
    assert!(message.contains("admin_token_file"), "{message}");
}

#[tokio::test]
async fn webhooks_are_created_shown_without_secrets_replaced_and_deleted() {
    let fx = Fixture::new(&[], fast_options()).await;
    let api = fx.api().await;
    let definition = json!({
        "url": "https://ci.example/hooks",
        "events": ["promotion.succeeded", "scan.completed"],
        "repositories": ["prod/**"],
        "secret": SECRET,
    });
    let (status, shown) = api
        .put("/api/v1/webhooks/ci", &definition.to_string())
        .await;
    assert_eq!(status, 201, "{shown}");
    assert_eq!(shown["origin"], "api");
    assert_eq!(shown["kind"], "standard");
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["breaker"]["state"], "closed");
    let fingerprint = shown["secret"]["fingerprint"]
        .as_str()
        .expect("fingerprint");
    assert!(
        fingerprint.starts_with("sha256:") && fingerprint.len() == 23,
        "{fingerprint}"
    );

    let (status, listed) = api.get("/api/v1/webhooks").await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["name"], "ci");
    let text = listed.to_string();
    assert!(
        !text.contains("whsec_") && !text.contains("MfKQ9r8G"),
        "{text}"
    );

    let replaced = json!({"name": "ci", "url": "https://ci.example/v2", "events": ["*"]});
    let (status, shown) = api.put("/api/v1/webhooks/ci", &replaced.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(shown["url"], "https://ci.example/v2");
    assert_eq!(
        shown["secret"]["fingerprint"], fingerprint,
        "the secret is kept"
    );

    let gitlab = json!({
        "kind": "gitlab-trigger",
        "url": "https://gitlab.example.com",
        "project": 42,
        "token": "glptt-secret-token",
        "ref": "main",
        "events": ["promotion.succeeded"],
    });
    let (status, shown) = api.put("/api/v1/webhooks/sign", &gitlab.to_string()).await;
    assert_eq!(status, 201, "{shown}");
    assert_eq!(shown["gitlab"]["project"], "42");
    assert_eq!(shown["secret"], Value::Null);
    assert!(!shown.to_string().contains("glptt"), "{shown}");

    let (status, _) = api.delete("/api/v1/webhooks/ci").await;
    assert_eq!(status, 204);
    let (status, body) = api.get("/api/v1/webhooks/ci").await;
    assert_eq!(status, 404);
    assert_eq!(first_error(&body).0, "WEBHOOK_UNKNOWN");
    let (status, _) = api.delete("/api/v1/webhooks/ci").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn malformed_definitions_are_refused_with_a_message() {
    let fx = Fixture::new(&[], fast_options()).await;
    let api = fx.api().await;
    let good = json!({"url": "https://ci.example/h", "events": ["*"], "secret": SECRET});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body.to_string()
    };
    let without = |key: &str| {
        let mut body = good.clone();
        body.as_object_mut().expect("object").remove(key);
        body.to_string()
    };
    let cases = [
        ("not json".to_owned(), "webhook definition"),
        ("[1, 2]".to_owned(), "webhook definition"),
        (with("colour", json!("red")), "unknown field `colour`"),
        (without("url"), "missing field `url`"),
        (without("events"), "missing field `events`"),
        (with("events", json!("scan.completed")), "invalid type"),
        (with("events", json!([])), "at least one"),
        (
            with("events", json!(["scan.done"])),
            "unknown event kind \"scan.done\"",
        ),
        (with("url", json!("not a url")), "`url`"),
        (with("url", json!("https://10.0.0.1/h")), "private network"),
        (with("repositories", json!(["a/***"])), "glob"),
        (with("secret", json!("plaintext")), "`secret`"),
        (without("secret"), "`secret` is required"),
        (with("token", json!("t")), "`token` is not used"),
        (with("name", json!("other")), "the path names \"ci\""),
        (with("kind", json!("slack")), "unknown variant `slack`"),
        ("x".repeat(70_000), "larger than"),
    ];
    for (body, expected) in cases {
        let (status, answer) = api.put("/api/v1/webhooks/ci", &body).await;
        assert_eq!(status, 400, "{expected}: {answer}");
        let (code, message) = first_error(&answer);
        assert_eq!(code, "WEBHOOK_INVALID");
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    let (status, answer) = api
        .put("/api/v1/webhooks/Bad%20Name", &good.to_string())
        .await;
    assert_eq!(status, 400);
    assert!(
        first_error(&answer).1.contains("names are 1 to 64"),
        "{answer}"
    );
    let (_, listed) = api.get("/api/v1/webhooks").await;
    assert_eq!(listed["webhooks"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn configured_webhooks_are_read_only() {
    let fx = Fixture::new(
        &[standard("from-config", "https://ci.example/h", &["*"])],
        fast_options(),
    )
    .await;
    let api = fx.api().await;
    let (status, shown) = api.get("/api/v1/webhooks/from-config").await;
    assert_eq!(status, 200);
    assert_eq!(shown["origin"], "config");
    let definition =
        json!({"url": "https://elsewhere.example/h", "events": ["*"], "secret": SECRET});
    let (status, body) = api
        .put("/api/v1/webhooks/from-config", &definition.to_string())
        .await;
    assert_eq!(status, 409);
    let (code, message) = first_error(&body);
    assert_eq!(code, "WEBHOOK_READ_ONLY");
    assert!(message.contains("configuration file"), "{message}");
    let (status, _) = api.delete("/api/v1/webhooks/from-config").await;
    assert_eq!(status, 409);
    let (_, shown) = api.get("/api/v1/webhooks/from-config").await;
    assert_eq!(shown["url"], "https://ci.example/h", "unchanged");
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_their_attempts() {
    let receiver = Receiver::start().await;
    receiver.default_reply(crate::support::Reply::status(200).body("ok"));
    let fx = Fixture::new(
        &[standard("ci", &receiver.url("/h"), &["*"])],
        fast_options(),
    )
    .await;
    let api = fx.api().await;
    let mut events = Vec::new();
    for tag in ["a", "b", "c"] {
        events.push(
            fx.event("tag.updated", Some("dev/app"), Some(tag), json!({}))
                .await,
        );
    }
    fx.service.handle(&events).await.expect("handle");
    receiver.wait_for(3, Duration::from_secs(10)).await;

    let (status, page) = api.get("/api/v1/webhooks/ci/deliveries?limit=2").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = page["deliveries"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["event_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(listed, [events[2].id.as_str(), events[1].id.as_str()]);
    let next = page["next_before"].as_str().expect("a next page");
    let (_, rest) = api
        .get(&format!(
            "/api/v1/webhooks/ci/deliveries?limit=2&before={next}"
        ))
        .await;
    assert_eq!(rest["deliveries"][0]["event_id"], events[0].id);
    assert_eq!(rest["next_before"], Value::Null);

    let id = rest["deliveries"][0]["id"].as_str().expect("id").to_owned();
    let detail = eventually(Duration::from_secs(10), "delivered", || async {
        let (_, detail) = api
            .get(&format!("/api/v1/webhooks/ci/deliveries/{id}"))
            .await;
        (detail["state"] == DeliveryState::Delivered.as_str()).then_some(detail)
    })
    .await;
    assert_eq!(detail["event"]["id"], events[0].id);
    assert_eq!(detail["event"]["type"], "dev.bonded.tag.updated");
    assert_eq!(detail["attempt_log"][0]["status"], 200);
    assert_eq!(detail["attempt_log"][0]["response"], "ok");
    assert!(detail["attempt_log"][0]["duration_ms"].is_u64());

    for bad in ["limit=0", "limit=201", "limit=x", "colour=red"] {
        let (status, body) = api
            .get(&format!("/api/v1/webhooks/ci/deliveries?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(first_error(&body).0, "WEBHOOK_INVALID");
    }
    let (status, body) = api.get("/api/v1/webhooks/absent/deliveries").await;
    assert_eq!(
        (status, first_error(&body).0.as_str()),
        (404, "WEBHOOK_UNKNOWN")
    );
    let (status, body) = api.get("/api/v1/webhooks/ci/deliveries/nope").await;
    assert_eq!(
        (status, first_error(&body).0.as_str()),
        (404, "DELIVERY_UNKNOWN")
    );
    let (status, _) = api
        .post("/api/v1/webhooks/ci/deliveries/nope/redeliver")
        .await;
    assert_eq!(status, 404);

    // A delivery is found only under its own webhook.
    let other = json!({"url": "https://other.example/h", "events": ["*"], "secret": SECRET});
    api.put("/api/v1/webhooks/other", &other.to_string()).await;
    let (status, _) = api
        .get(&format!("/api/v1/webhooks/other/deliveries/{id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .post(&format!("/api/v1/webhooks/other/deliveries/{id}/redeliver"))
        .await;
    assert_eq!(status, 404);
}
