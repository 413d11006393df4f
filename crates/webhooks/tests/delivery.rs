//! Delivery over real HTTP on loopback: signatures checked by the receiver, retries and
//! `Retry-After`, `410 Gone`, the circuit breaker, restarts, redelivery, test events, private
//! targets, the GitLab trigger, filtering and idempotent fan-out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use store::{DeliveryRow, DeliveryState, WebhookStore};
use webhooks::cloudevents::{CloudEvent, EventKind};
use webhooks::config::{ProjectSpec, TargetKind};
use webhooks::retry::BreakerPolicy;
use webhooks::{WebhookConfig, WebhookOptions};

use crate::support::{
    DIGEST, Fixture, Receiver, Reply, SECRET, append, eventually, fast_options, first_error,
    loopback_as, open_store, standard, start_service,
};

const WAIT: Duration = Duration::from_secs(10);

/// Waits until the delivery of `event_id` to `webhook` is in `state`.
async fn settled(
    store: &impl WebhookStore,
    webhook: &str,
    event_id: &str,
    state: DeliveryState,
) -> DeliveryRow {
    eventually(WAIT, &format!("{webhook}/{event_id} {state:?}"), || async {
        store
            .delivery_for_event(webhook, event_id)
            .await
            .expect("read")
            .filter(|d| d.state == state)
    })
    .await
}

#[tokio::test]
async fn delivers_signed_cloudevents_to_subscribers() {
    let receiver = Receiver::start().await;
    receiver.default_reply(Reply::status(202).body("thanks"));
    let hook = WebhookConfig {
        repositories: vec!["prod/**".to_owned()],
        ..standard(
            "ci",
            &receiver.url("/hooks/bonded"),
            &["scan.completed", "promotion.succeeded"],
        )
    };
    let fx = Fixture::new(&[hook], fast_options()).await;
    let wanted = fx
        .event(
            "scan.completed",
            Some("prod/app"),
            None,
            json!({"attempts": 1}),
        )
        .await;
    let other_repository = fx
        .event("scan.completed", Some("dev/app"), None, json!({}))
        .await;
    let other_kind = fx
        .event("artifact.pushed", Some("prod/app"), None, json!({}))
        .await;
    fx.service
        .handle(&[wanted.clone(), other_repository, other_kind])
        .await
        .expect("handle");

    let got = receiver.wait_for(1, WAIT).await;
    let request = &got[0];
    assert_eq!(request.path, "/hooks/bonded");
    assert_eq!(
        request.header("content-type"),
        "application/cloudevents+json"
    );
    assert_eq!(request.header("webhook-id"), wanted.id);
    assert!(request.header("user-agent").starts_with("Bonded-Webhooks/"));
    request
        .verify(SECRET)
        .expect("the receiver verifies the signature");
    let other_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    assert!(
        request.verify(other_secret).is_err(),
        "another secret fails"
    );
    let mut tampered = request.clone();
    tampered.body = axum::body::Bytes::from(request.body.to_vec().repeat(2));
    assert!(tampered.verify(SECRET).is_err(), "a changed body fails");

    let event = CloudEvent::from_json(&request.body).expect("a CloudEvent");
    assert_eq!(event.kind(), EventKind::ScanCompleted);
    assert_eq!(event.id().as_str(), wanted.id);
    assert_eq!(event.subject(), Some(DIGEST));
    assert_eq!(
        event.source(),
        "https://registry.example/api/v1/repositories/prod/app"
    );
    assert_eq!(event.data()["repository"], "prod/app");
    assert_eq!(event.data()["attempts"], 1);
    assert_eq!(
        event.data()["links"]["history"],
        format!("https://registry.example/api/v1/repositories/prod/app/manifests/{DIGEST}/history")
    );

    let delivery = settled(&fx.store, "ci", &wanted.id, DeliveryState::Delivered).await;
    let attempts = fx.store.attempts(&delivery.id).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, Some(202));
    assert_eq!(attempts[0].response, b"thanks");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "nothing else was subscribed");
}

#[tokio::test]
async fn retries_with_backoff_and_honours_retry_after() {
    let receiver = Receiver::start().await;
    receiver.reply([
        Reply::status(503).header("retry-after", "1"),
        Reply::status(500).body("still down"),
        Reply::status(200),
    ]);
    let hook = standard("ci", &receiver.url("/h"), &["*"]);
    let fx = Fixture::new(&[hook], fast_options()).await;
    let event = fx
        .event("artifact.pushed", Some("dev/app"), None, json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");

    let got = receiver.wait_for(3, WAIT).await;
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 was honoured: {waited:?}"
    );
    let backoff = got[2].at - got[1].at;
    assert!(
        backoff < Duration::from_millis(900),
        "the backoff is the policy's: {backoff:?}"
    );
    for request in &got {
        assert_eq!(
            request.header("webhook-id"),
            event.id,
            "the same id every time"
        );
        assert_eq!(request.body, got[0].body, "the same bytes every time");
        request.verify(SECRET).expect("each attempt is signed");
    }
    let delivery = settled(&fx.store, "ci", &event.id, DeliveryState::Delivered).await;
    let statuses: Vec<Option<u16>> = fx
        .store
        .attempts(&delivery.id)
        .await
        .expect("attempts")
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, [Some(503), Some(500), Some(200)]);
}

#[tokio::test]
async fn rejections_stop_after_a_few_attempts_and_transient_failures_after_the_budget() {
    let rejecting = Receiver::start().await;
    rejecting.default_reply(Reply::status(404));
    let failing = Receiver::start().await;
    failing.default_reply(Reply::status(502));
    let fx = Fixture::new(
        &[
            standard("rejecting", &rejecting.url("/h"), &["*"]),
            standard("failing", &failing.url("/h"), &["*"]),
        ],
        fast_options(),
    )
    .await;
    let event = fx
        .event("artifact.deleted", Some("dev/app"), None, json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");
    let rejected = settled(&fx.store, "rejecting", &event.id, DeliveryState::Failed).await;
    assert_eq!(rejected.attempts, 2, "max_rejected_attempts");
    let failed = settled(&fx.store, "failing", &event.id, DeliveryState::Failed).await;
    assert_eq!(failed.attempts, 5, "max_attempts");
    assert_eq!(rejecting.received().len(), 2);
    assert_eq!(failing.received().len(), 5);
}

#[tokio::test]
async fn gone_disables_the_webhook_until_it_is_defined_again() {
    let receiver = Receiver::start().await;
    receiver.reply([Reply::status(410)]);
    let fx = Fixture::new(&[], fast_options()).await;
    let api = fx.api().await;
    let definition = json!({"url": receiver.url("/h"), "events": ["*"], "secret": SECRET, "allow_private": true});
    let (status, _) = api
        .put("/api/v1/webhooks/ci", &definition.to_string())
        .await;
    assert_eq!(status, 201);
    let first = fx
        .event(
            "tag.updated",
            Some("dev/app"),
            Some("v1"),
            json!({"previous": null}),
        )
        .await;
    fx.service
        .handle(std::slice::from_ref(&first))
        .await
        .expect("handle");
    let disabled = settled(&fx.store, "ci", &first.id, DeliveryState::Disabled).await;

    let (_, shown) = api.get("/api/v1/webhooks/ci").await;
    assert_eq!(shown["enabled"], false);
    assert!(
        shown["disabled"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("410"),
        "{shown}"
    );
    // A disabled webhook gets no new deliveries and cannot be redelivered to.
    let second = fx
        .event("tag.updated", Some("dev/app"), Some("v2"), json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&second))
        .await
        .expect("handle");
    assert_eq!(
        fx.store
            .delivery_for_event("ci", &second.id)
            .await
            .expect("read"),
        None
    );
    let redeliver = format!("/api/v1/webhooks/ci/deliveries/{}/redeliver", disabled.id);
    let (status, body) = api.post(&redeliver).await;
    assert_eq!(status, 409);
    assert_eq!(first_error(&body).0, "WEBHOOK_DISABLED");

    // Defining it again (the secret may be left out) enables it; the old delivery can go.
    let again = json!({"url": receiver.url("/h"), "events": ["*"], "allow_private": true});
    let (status, shown) = api.put("/api/v1/webhooks/ci", &again.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(shown["enabled"], true);
    let (status, _) = api.post(&redeliver).await;
    assert_eq!(status, 202);
    settled(&fx.store, "ci", &first.id, DeliveryState::Delivered).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), first.id);
    got[1].verify(SECRET).expect("the kept secret signs");
}

#[tokio::test]
async fn the_breaker_pauses_a_failing_endpoint_and_shows_it() {
    let receiver = Receiver::start().await;
    receiver.reply([Reply::status(500), Reply::status(500), Reply::status(500)]);
    let mut options = fast_options();
    options.retry.max_attempts = 10;
    options.retry.base_delay = Duration::from_millis(10);
    options.retry.max_delay = Duration::from_millis(30);
    options.breaker = BreakerPolicy {
        failure_threshold: 3,
        cool_down: Duration::from_millis(1_200),
        max_cool_down: Duration::from_millis(1_200),
    };
    let fx = Fixture::new(&[standard("ci", &receiver.url("/h"), &["*"])], options).await;
    let api = fx.api().await;
    let event = fx
        .event("signature.added", Some("prod/app"), None, json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");

    receiver.wait_for(3, WAIT).await;
    let shown = eventually(WAIT, "an open breaker", || async {
        let (_, shown) = api.get("/api/v1/webhooks/ci").await;
        (shown["breaker"]["state"] == "open").then_some(shown)
    })
    .await;
    let breaker = &shown["breaker"];
    assert_eq!(breaker["trips"], 1);
    assert!(
        breaker["until_ms"].as_i64() > breaker["since_ms"].as_i64(),
        "{breaker}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "paused: no attempt during the cool-down"
    );
    let pending = fx
        .store
        .delivery_for_event("ci", &event.id)
        .await
        .expect("read")
        .expect("delivery");
    assert_eq!(pending.state, DeliveryState::Pending);
    assert_eq!(pending.attempts, 3, "a pause spends no attempts");

    // After the cool-down one trial goes through; it succeeds and closes the breaker.
    let got = receiver.wait_for(4, WAIT).await;
    assert!(got[3].at - got[2].at >= Duration::from_millis(1_100));
    settled(&fx.store, "ci", &event.id, DeliveryState::Delivered).await;
    let (_, shown) = api.get("/api/v1/webhooks/ci").await;
    assert_eq!(shown["breaker"]["state"], "closed", "{shown}");
}

#[tokio::test]
async fn a_restart_finishes_what_was_queued() {
    let receiver = Receiver::start().await;
    let hook = standard("ci", &receiver.url("/h"), &["*"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let event = {
        let store = open_store(dir.path()).await;
        let service = start_service(&store, std::slice::from_ref(&hook), fast_options()).await;
        let event = append(&store, "artifact.pushed", Some("dev/app"), None, json!({})).await;
        // No worker runs in this process: it stops with the delivery queued.
        service
            .handle(std::slice::from_ref(&event))
            .await
            .expect("handle");
        settled(&store, "ci", &event.id, DeliveryState::Pending).await;
        store.close().await;
        event
    };
    assert!(receiver.received().is_empty());

    let store = open_store(dir.path()).await;
    let service = start_service(&store, &[hook], fast_options()).await;
    let worker = service.spawn_worker();
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-id"), event.id);
    settled(&store, "ci", &event.id, DeliveryState::Delivered).await;
    worker.abort();
}

#[tokio::test]
async fn a_delivery_whose_worker_died_is_taken_again_after_its_lease() {
    let receiver = Receiver::start().await;
    // The first attempt never gets an answer in time: its process dies meanwhile.
    receiver.reply([Reply::status(200).delay(Duration::from_secs(30))]);
    let hook = standard("ci", &receiver.url("/h"), &["*"]);
    let options = WebhookOptions {
        attempt_timeout: Duration::from_secs(1),
        lease: Duration::from_secs(1),
        ..fast_options()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let (first_hook, first_options) = (hook.clone(), options.clone());
    let (runtime, event) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let event = runtime.block_on(async {
            let store = open_store(&path).await;
            let service = start_service(&store, &[first_hook], first_options).await;
            service.spawn_worker();
            let event = append(&store, "scan.failed", Some("dev/app"), None, json!({})).await;
            service
                .handle(std::slice::from_ref(&event))
                .await
                .expect("handle");
            event
        });
        (runtime, event)
    })
    .join()
    .expect("first process");
    receiver.wait_for(1, WAIT).await;
    // The first process dies in the middle of its attempt.
    runtime.shutdown_background();

    let store = open_store(dir.path()).await;
    let service = start_service(&store, &[hook], options).await;
    let worker = service.spawn_worker();
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got[1].header("webhook-id"), event.id);
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(2_500),
        "taken again only after the lease (attempt timeout + margin)"
    );
    let delivery = settled(&store, "ci", &event.id, DeliveryState::Delivered).await;
    assert_eq!(
        statuses(&store, &delivery.id).await,
        [Some(204)],
        "the dead worker recorded nothing"
    );
    worker.abort();
}

async fn statuses(store: &impl WebhookStore, id: &str) -> Vec<Option<u16>> {
    store
        .attempts(id)
        .await
        .expect("attempts")
        .iter()
        .map(|a| a.status)
        .collect()
}

#[tokio::test]
async fn redelivery_sends_the_same_event_again() {
    let receiver = Receiver::start().await;
    let fx = Fixture::new(
        &[standard("ci", &receiver.url("/h"), &["*"])],
        fast_options(),
    )
    .await;
    let api = fx.api().await;
    let event = fx
        .event(
            "promotion.succeeded",
            Some("prod/app"),
            Some("1.0"),
            json!({}),
        )
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");
    let delivery = settled(&fx.store, "ci", &event.id, DeliveryState::Delivered).await;

    let path = format!("/api/v1/webhooks/ci/deliveries/{}/redeliver", delivery.id);
    let (status, body) = api.post(&path).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["delivery"]["state"], "pending");
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].header("webhook-id"), event.id);
    assert_eq!(got[1].body, got[0].body);
    got[1].verify(SECRET).expect("signed again");
    eventually(WAIT, "two attempts", || async {
        let (_, shown) = api
            .get(&format!("/api/v1/webhooks/ci/deliveries/{}", delivery.id))
            .await;
        (shown["attempt_log"].as_array().map(Vec::len) == Some(2) && shown["state"] == "delivered")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_test_endpoint_sends_a_test_event_now() {
    let receiver = Receiver::start().await;
    receiver.reply([Reply::status(200).body("pong"), Reply::status(500)]);
    let fx = Fixture::new(
        &[standard("ci", &receiver.url("/h"), &["scan.completed"])],
        fast_options(),
    )
    .await;
    let api = fx.api().await;

    let (status, body) = api.post("/api/v1/webhooks/ci/test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attempt"]["status"], 200);
    assert_eq!(body["attempt"]["response"], "pong");
    assert_eq!(body["delivery"]["state"], "delivered");
    assert_eq!(body["delivery"]["event_type"], "dev.bonded.webhook.test");
    let got = receiver.received();
    assert_eq!(got.len(), 1, "sent before the answer");
    got[0].verify(SECRET).expect("signed");
    let event = CloudEvent::from_json(&got[0].body).expect("a CloudEvent");
    assert_eq!(event.kind(), EventKind::WebhookTest);
    assert_eq!(event.data()["webhook"], "ci");

    // A failing test is one attempt, reported, not retried.
    let (status, body) = api.post("/api/v1/webhooks/ci/test").await;
    assert_eq!(status, 200);
    assert_eq!(body["attempt"]["status"], 500);
    assert_eq!(body["delivery"]["state"], "failed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
    let (status, _) = api.post("/api/v1/webhooks/absent/test").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    let options = WebhookOptions {
        lookup: loopback_as("hooks.internal.test"),
        ..fast_options()
    };
    let fx = Fixture::new(&[], options).await;
    let api = fx.api().await;
    let put = |name: &str, url: String, allow_private: bool| {
        let body =
            json!({"url": url, "events": ["*"], "secret": SECRET, "allow_private": allow_private});
        let path = format!("/api/v1/webhooks/{name}");
        let api = &api;
        async move { api.put(&path, &body.to_string()).await }
    };

    // Literal private addresses are refused when the webhook is saved.
    let (status, body) = put("direct", format!("https://127.0.0.1:{port}/h"), false).await;
    assert_eq!(status, 400);
    assert!(first_error(&body).1.contains("loopback"), "{body}");
    let (status, body) = put("plain", format!("http://127.0.0.1:{port}/h"), false).await;
    assert_eq!(status, 400);
    assert!(first_error(&body).1.contains("allow_private"), "{body}");

    // A name that resolves to loopback when the delivery is made: refused then, never reached.
    let (status, _) = put(
        "rebound",
        format!("https://hooks.internal.test:{port}/h"),
        false,
    )
    .await;
    assert_eq!(status, 201);
    let event = fx
        .event("artifact.pushed", Some("dev/app"), None, json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");
    let failed = settled(&fx.store, "rebound", &event.id, DeliveryState::Failed).await;
    let attempts = fx.store.attempts(&failed.id).await.expect("attempts");
    assert_eq!(attempts.len(), 2, "a refusal is retried like a rejection");
    for attempt in &attempts {
        assert_eq!(attempt.status, None);
        let error = attempt.error.as_deref().unwrap_or("");
        assert!(error.contains("127.0.0.1 is refused (loopback)"), "{error}");
    }
    assert!(receiver.received().is_empty(), "no request left");

    // With allow_private the same name is resolved by Bonded and delivered to.
    let (status, _) = put(
        "internal",
        format!("http://hooks.internal.test:{port}/h"),
        true,
    )
    .await;
    assert_eq!(status, 201);
    let event = fx
        .event("artifact.pushed", Some("dev/app"), None, json!({}))
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");
    settled(&fx.store, "internal", &event.id, DeliveryState::Delivered).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("host"), format!("hooks.internal.test:{port}"));
}

#[tokio::test]
async fn a_gitlab_trigger_starts_a_pipeline_with_the_image() {
    let gitlab = Receiver::start().await;
    gitlab.default_reply(Reply::status(201).body(r#"{"id":4711,"status":"created"}"#));
    let trigger = WebhookConfig {
        name: "sign".to_owned(),
        kind: TargetKind::GitlabTrigger,
        url: gitlab.url(""),
        allow_private: true,
        project: Some(ProjectSpec::Path("platform/signing".to_owned())),
        token: Some("glptt-test-token".to_owned()),
        git_ref: Some("main".to_owned()),
        variables: BTreeMap::from([("SIGNING_PROFILE".to_owned(), "release".to_owned())]),
        events: vec!["promotion.succeeded".to_owned()],
        ..WebhookConfig::default()
    };
    let fx = Fixture::new(&[trigger], fast_options()).await;
    let decision = json!({"decision": {"rule": "blessed", "verdict": "promoted"}});
    let event = fx
        .event(
            "promotion.succeeded",
            Some("prod/app"),
            Some("1.2.3"),
            decision,
        )
        .await;
    fx.service
        .handle(std::slice::from_ref(&event))
        .await
        .expect("handle");

    let got = gitlab.wait_for(1, WAIT).await;
    let request = &got[0];
    assert_eq!(
        request.path,
        "/api/v4/projects/platform%2Fsigning/trigger/pipeline"
    );
    assert_eq!(
        request.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        request.header("webhook-signature"),
        "",
        "GitLab gets its token instead"
    );
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let field = |key: &str| form.get(key).map(String::as_str).unwrap_or("");
    assert_eq!(field("token"), "glptt-test-token");
    assert_eq!(field("ref"), "main");
    assert_eq!(
        field("variables[BONDED_IMAGE]"),
        format!("registry.example/prod/app@{DIGEST}")
    );
    assert_eq!(field("variables[BONDED_DIGEST]"), DIGEST);
    assert_eq!(field("variables[BONDED_TAG]"), "1.2.3");
    assert_eq!(field("variables[BONDED_REPOSITORY]"), "prod/app");
    assert_eq!(field("variables[BONDED_EVENT_ID]"), event.id);
    assert_eq!(
        field("variables[BONDED_EVENT_TYPE]"),
        "dev.bonded.promotion.succeeded"
    );
    assert_eq!(field("variables[SIGNING_PROFILE]"), "release");
    let data: serde_json::Value =
        serde_json::from_str(field("variables[BONDED_EVENT_DATA]")).expect("data JSON");
    assert_eq!(data["decision"]["verdict"], "promoted");

    let delivery = settled(&fx.store, "sign", &event.id, DeliveryState::Delivered).await;
    let attempts = fx.store.attempts(&delivery.id).await.expect("attempts");
    assert_eq!(attempts[0].status, Some(201));
    assert!(String::from_utf8_lossy(&attempts[0].response).contains("4711"));
}

#[tokio::test]
async fn events_are_filtered_and_fanned_out_once() {
    let receiver = Receiver::start().await;
    let scans = WebhookConfig {
        repositories: vec!["prod/**".to_owned()],
        ..standard("prod-scans", &receiver.url("/scans"), &["scan.completed"])
    };
    let tags = WebhookConfig {
        repositories: vec!["dev/app".to_owned()],
        ..standard("tags", &receiver.url("/tags"), &["tag.updated"])
    };
    let everything = standard("everything", &receiver.url("/all"), &["*"]);
    let fx = Fixture::new(&[scans, tags, everything], fast_options()).await;
    let events = [
        fx.event("scan.completed", Some("prod/app"), None, json!({}))
            .await,
        fx.event("scan.completed", Some("dev/app"), None, json!({}))
            .await,
        fx.event("tag.updated", Some("dev/app"), Some("v1"), json!({}))
            .await,
        fx.event("tag.deleted", Some("dev/app"), Some("v0"), json!({}))
            .await,
        fx.event("config.changed", None, None, json!({"secret": "x"}))
            .await,
        fx.event("vulndb.updated", None, None, json!({"version": "2"}))
            .await,
    ];
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    // The outbox may hand the same events over again (after a crash): nothing doubles.
    for _ in 0..3 {
        fx.service.handle(&events).await.expect("handle");
    }
    let delivered_ids = |name: &'static str| {
        let store = &fx.store;
        async move {
            store
                .deliveries(name, None, 100)
                .await
                .expect("deliveries")
                .into_iter()
                .map(|d| d.event_id)
                .collect::<BTreeSet<String>>()
        }
    };
    let set = |indexes: &[usize]| -> BTreeSet<String> {
        indexes.iter().map(|i| ids[*i].to_owned()).collect()
    };
    assert_eq!(delivered_ids("prod-scans").await, set(&[0]));
    assert_eq!(delivered_ids("tags").await, set(&[2, 3]));
    assert_eq!(delivered_ids("everything").await, set(&[0, 1, 2, 3, 5]));
    assert_eq!(
        fx.store
            .deliveries("everything", None, 100)
            .await
            .expect("list")
            .len(),
        5
    );

    receiver.wait_for(8, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 8, "each delivery sent once");
    let deleted = got
        .iter()
        .find(|r| r.path == "/tags" && r.header("webhook-id") == ids[3])
        .expect("the deleted tag");
    let body = deleted.json();
    assert_eq!(body["type"], "dev.bonded.tag.updated");
    assert_eq!(body["data"]["digest"], serde_json::Value::Null);
    assert_eq!(body["data"]["previous"], DIGEST);
}
