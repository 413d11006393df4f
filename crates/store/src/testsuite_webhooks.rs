//! The conformance suite for [`WebhookStore`]: every implementation must pass it. It checks
//! the guarantees listed in [`crate::webhooks`]: idempotent delivery creation, leases that
//! expire, superseded claims that only log, one transaction per attempt, disabling after
//! `410 Gone`, redelivery, pagination, pruning and cascades.

use std::collections::BTreeMap;

use crate::webhooks::{
    AfterAttempt, DeliveryState, FinishedAttempt, GitlabTriggerRow, MAX_RESPONSE_EXCERPT,
    NewAttempt, NewDelivery, WebhookDisabled, WebhookKind, WebhookOrigin, WebhookRow, WebhookStore,
};

const LEASE: i64 = 30_000;

fn webhook(name: &str, origin: WebhookOrigin, at_ms: i64) -> WebhookRow {
    WebhookRow {
        name: name.to_owned(),
        origin,
        kind: WebhookKind::Standard,
        url: format!("https://hooks.example/{name}"),
        events: vec!["scan.completed".to_owned(), "tag.updated".to_owned()],
        repositories: vec!["prod/**".to_owned()],
        secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        allow_private: false,
        gitlab: None,
        disabled: None,
        created_at_ms: at_ms,
        updated_at_ms: at_ms,
    }
}

fn delivery(webhook: &str, event: &str) -> NewDelivery {
    NewDelivery {
        webhook: webhook.to_owned(),
        event_id: event.to_owned(),
        event_type: "dev.bonded.scan.completed".to_owned(),
        body: format!(r#"{{"id":"{event}"}}"#).into_bytes(),
    }
}

fn answered(status: u16, at_ms: i64) -> NewAttempt {
    NewAttempt {
        status: Some(status),
        error: None,
        duration_ms: 12,
        response: b"ok".to_vec(),
        attempted_at_ms: at_ms,
    }
}

fn finished(
    delivery: &str,
    claim: &str,
    attempt: NewAttempt,
    next: AfterAttempt,
    now_ms: i64,
) -> FinishedAttempt {
    FinishedAttempt {
        delivery: delivery.to_owned(),
        claim: claim.to_owned(),
        attempt,
        next,
        breaker: None,
        now_ms,
    }
}

/// Runs the whole suite on an empty store.
pub async fn webhook_store<S: WebhookStore>(store: &S) {
    definitions(store).await;
    deliveries_and_attempts(store).await;
    disabling_and_redelivery(store).await;
    pruning_and_cascades(store).await;
}

async fn definitions<S: WebhookStore>(store: &S) {
    let mut ci = webhook("ci", WebhookOrigin::Api, 1_000);
    assert!(store.put_webhook(&ci).await.expect("create"));
    ci.url = "https://hooks.example/ci/v2".to_owned();
    ci.updated_at_ms = 2_000;
    ci.created_at_ms = 2_000;
    assert!(!store.put_webhook(&ci).await.expect("replace"));
    let stored = store.webhook("ci").await.expect("read").expect("stored");
    assert_eq!(stored.url, ci.url);
    assert_eq!(
        stored.created_at_ms, 1_000,
        "a replaced webhook keeps its creation time"
    );
    assert_eq!(stored.updated_at_ms, 2_000);

    let trigger = WebhookRow {
        kind: WebhookKind::GitlabTrigger,
        secret: None,
        allow_private: true,
        gitlab: Some(GitlabTriggerRow {
            project: "platform/signing".to_owned(),
            token: "glptt-secret".to_owned(),
            git_ref: "main".to_owned(),
            variables: BTreeMap::from([("PROMOTED".to_owned(), "yes".to_owned())]),
        }),
        disabled: Some(WebhookDisabled {
            reason: "410 Gone".to_owned(),
            at_ms: 3_000,
        }),
        ..webhook("sign", WebhookOrigin::Config, 3_000)
    };
    assert!(store.put_webhook(&trigger).await.expect("gitlab"));
    assert_eq!(
        store.webhook("sign").await.expect("read"),
        Some(trigger.clone()),
        "every field comes back as written"
    );
    let names: Vec<String> = store
        .webhooks()
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["ci", "sign"]);
    assert_eq!(store.webhook("absent").await.expect("read"), None);
}

async fn deliveries_and_attempts<S: WebhookStore>(store: &S) {
    let now = 10_000;
    let batch = [
        delivery("ci", "e1"),
        delivery("ci", "e2"),
        delivery("no-such-webhook", "e1"),
    ];
    assert_eq!(
        store.create_deliveries(&batch, now).await.expect("create"),
        2,
        "deliveries for a webhook that does not exist are skipped"
    );
    assert_eq!(
        store
            .create_deliveries(&batch, now + 1)
            .await
            .expect("again"),
        0,
        "the same events again create nothing"
    );
    let first = store
        .delivery_for_event("ci", "e1")
        .await
        .expect("read")
        .expect("created");
    assert_eq!(first.state, DeliveryState::Pending);
    assert_eq!(first.next_attempt_at_ms, Some(now));
    assert_eq!((first.attempts, first.round_attempts), (0, 0));
    assert_eq!(
        store.delivery_body(&first.id).await.expect("body"),
        Some(br#"{"id":"e1"}"#.to_vec())
    );
    assert_eq!(store.next_delivery_due().await.expect("due"), Some(now));

    // Nothing is due before its time.
    assert!(
        store
            .claim_due_deliveries(now - 1, LEASE, 10)
            .await
            .expect("early")
            .is_empty()
    );
    let claimed = store
        .claim_due_deliveries(now, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    assert!(
        store
            .claim_due_deliveries(now, LEASE, 10)
            .await
            .expect("held")
            .is_empty(),
        "a live lease keeps a delivery from other workers"
    );
    assert_eq!(
        store.next_delivery_due().await.expect("due"),
        Some(now + LEASE),
        "a held delivery is claimable again when its lease ends"
    );
    let old = claimed
        .iter()
        .find(|c| c.delivery.id == first.id)
        .expect("first claimed");
    assert_eq!(old.body, br#"{"id":"e1"}"#.to_vec());

    // The worker holding it died: after the lease it is taken again, with a new claim.
    let retaken = store
        .claim_due_deliveries(now + LEASE, LEASE, 1)
        .await
        .expect("retake");
    let new = retaken.first().expect("retaken");
    assert_eq!(new.delivery.id, first.id, "oldest due first");
    assert_ne!(new.claim, old.claim);

    // The dead worker's late result is logged but changes nothing.
    let late = store
        .finish_attempt(&finished(
            &first.id,
            &old.claim,
            answered(200, now + 1),
            AfterAttempt::Delivered,
            now + LEASE + 1,
        ))
        .await
        .expect("late");
    assert_eq!((late.number, late.applied), (1, false));
    let row = store.delivery(&first.id).await.expect("read").expect("row");
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!((row.attempts, row.round_attempts), (1, 0));

    // The live claim's result applies: a retry, with a long response cut to 4 KiB.
    let retry_at = now + LEASE + 500;
    let mut attempt = answered(503, now + LEASE + 2);
    attempt.response = vec![b'x'; MAX_RESPONSE_EXCERPT + 100];
    let mut result = finished(
        &first.id,
        &new.claim,
        attempt,
        AfterAttempt::RetryAt { at_ms: retry_at },
        now + LEASE + 3,
    );
    result.breaker = Some(r#"{"state":"closed","consecutive_failures":1}"#.to_owned());
    let recorded = store.finish_attempt(&result).await.expect("retry");
    assert_eq!((recorded.number, recorded.applied), (2, true));
    let row = store.delivery(&first.id).await.expect("read").expect("row");
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!(row.next_attempt_at_ms, Some(retry_at));
    assert_eq!((row.attempts, row.round_attempts), (2, 1));
    assert_eq!(row.updated_at_ms, now + LEASE + 3);
    let attempts = store.attempts(&first.id).await.expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(attempts[1].status, Some(503));
    assert_eq!(attempts[1].response.len(), MAX_RESPONSE_EXCERPT);
    assert_eq!(
        store
            .breakers()
            .await
            .expect("breakers")
            .get("ci")
            .map(String::as_str),
        Some(r#"{"state":"closed","consecutive_failures":1}"#)
    );

    // A paused endpoint: the delivery goes back without an attempt.
    let again = store
        .claim_due_deliveries(retry_at, LEASE, 10)
        .await
        .expect("claim");
    let held = again
        .iter()
        .find(|c| c.delivery.id == first.id)
        .expect("due again");
    assert!(
        store
            .postpone_delivery(&first.id, &held.claim, retry_at + 5_000, retry_at)
            .await
            .expect("postpone")
    );
    assert!(
        !store
            .postpone_delivery(&first.id, &held.claim, retry_at + 9_000, retry_at)
            .await
            .expect("stale postpone"),
        "a claim is used up once the delivery is given back"
    );
    let row = store.delivery(&first.id).await.expect("read").expect("row");
    assert_eq!(row.next_attempt_at_ms, Some(retry_at + 5_000));
    assert_eq!(row.attempts, 2);

    // The other delivery (its first lease long expired) is delivered at once.
    let second = again
        .iter()
        .find(|c| c.delivery.id != first.id)
        .expect("e2 due");
    store
        .finish_attempt(&finished(
            &second.delivery.id,
            &second.claim,
            answered(204, retry_at),
            AfterAttempt::Delivered,
            retry_at + 1,
        ))
        .await
        .expect("delivered");

    // A transport error is recorded without a status; then the receiver accepts.
    let held = store
        .claim_delivery(&first.id, retry_at + 5_000, LEASE)
        .await
        .expect("claim one")
        .expect("free");
    let error = NewAttempt {
        status: None,
        error: Some("connection refused".to_owned()),
        response: Vec::new(),
        ..answered(0, retry_at + 5_000)
    };
    let last_try = retry_at + 6_000;
    store
        .finish_attempt(&finished(
            &first.id,
            &held.claim,
            error,
            AfterAttempt::RetryAt { at_ms: last_try },
            retry_at + 5_001,
        ))
        .await
        .expect("transport error");
    let held = store
        .claim_delivery(&first.id, last_try, LEASE)
        .await
        .expect("claim one")
        .expect("free");
    store
        .finish_attempt(&finished(
            &first.id,
            &held.claim,
            answered(200, last_try),
            AfterAttempt::Delivered,
            last_try + 1,
        ))
        .await
        .expect("delivered");
    let row = store.delivery(&first.id).await.expect("read").expect("row");
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(row.next_attempt_at_ms, None);
    assert_eq!((row.attempts, row.round_attempts), (4, 3));
    let attempts = store.attempts(&first.id).await.expect("attempts");
    assert_eq!(attempts[2].error.as_deref(), Some("connection refused"));
    assert_eq!(attempts[2].status, None);
    assert_eq!(attempts[3].status, Some(200));
    assert_eq!(store.next_delivery_due().await.expect("due"), None);

    // Listing: newest first, then the page before a given delivery.
    let listed = store.deliveries("ci", None, 10).await.expect("list");
    let events: Vec<&str> = listed.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(events, ["e2", "e1"]);
    let page = store
        .deliveries("ci", Some(&listed[0].id), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, first.id);
    assert!(
        store
            .deliveries("ci", Some("unknown"), 10)
            .await
            .expect("unknown")
            .is_empty()
    );
}

async fn disabling_and_redelivery<S: WebhookStore>(store: &S) {
    let now = 100_000;
    let gone = webhook("gone", WebhookOrigin::Api, now);
    store.put_webhook(&gone).await.expect("create");
    let batch = [delivery("gone", "g1"), delivery("gone", "g2")];
    assert_eq!(
        store.create_deliveries(&batch, now).await.expect("create"),
        2
    );
    let claimed = store
        .claim_due_deliveries(now, LEASE, 10)
        .await
        .expect("claim");
    let ours: Vec<_> = claimed
        .iter()
        .filter(|c| c.delivery.webhook == "gone")
        .collect();
    assert_eq!(ours.len(), 2);
    let (one, two) = (ours[0], ours[1]);
    store
        .finish_attempt(&finished(
            &one.delivery.id,
            &one.claim,
            answered(410, now + 1),
            AfterAttempt::DisableWebhook {
                reason: "410 Gone".to_owned(),
            },
            now + 2,
        ))
        .await
        .expect("gone");
    let row = store.webhook("gone").await.expect("read").expect("row");
    assert_eq!(
        row.disabled,
        Some(WebhookDisabled {
            reason: "410 Gone".to_owned(),
            at_ms: now + 2
        })
    );
    for id in [&one.delivery.id, &two.delivery.id] {
        let d = store.delivery(id).await.expect("read").expect("row");
        assert_eq!(d.state, DeliveryState::Disabled, "{id}");
    }
    let late = store
        .finish_attempt(&finished(
            &two.delivery.id,
            &two.claim,
            answered(200, now + 3),
            AfterAttempt::Delivered,
            now + 3,
        ))
        .await
        .expect("late");
    assert!(
        !late.applied,
        "disabling took the claims of deliveries in flight"
    );

    // Redelivery queues it again, but a disabled webhook's deliveries are not claimed.
    let queued = store
        .redeliver(&one.delivery.id, now + 10)
        .await
        .expect("redeliver")
        .expect("exists");
    assert_eq!(queued.state, DeliveryState::Pending);
    assert_eq!(queued.round_attempts, 0);
    assert_eq!(queued.attempts, 1);
    assert!(
        store
            .claim_due_deliveries(now + 10, LEASE, 10)
            .await
            .expect("claim")
            .iter()
            .all(|c| c.delivery.webhook != "gone")
    );
    assert_eq!(store.next_delivery_due().await.expect("due"), None);
    assert_eq!(
        store.redeliver("unknown", now).await.expect("unknown"),
        None
    );

    // An attempt made at once (a test event): created and claimed together, so no worker
    // can take it in between; created at most once per event, and only for a webhook that
    // exists.
    let test = delivery("gone", "test-1");
    let held = store
        .create_claimed_delivery(&test, now + 11, LEASE)
        .await
        .expect("create claimed")
        .expect("created");
    assert_eq!(held.delivery.event_id, "test-1");
    assert_eq!(held.body, test.body);
    assert!(
        store
            .create_claimed_delivery(&test, now + 11, LEASE)
            .await
            .expect("again")
            .is_none()
    );
    assert!(
        store
            .create_claimed_delivery(&delivery("no-such-webhook", "t"), now + 11, LEASE)
            .await
            .expect("unknown webhook")
            .is_none()
    );
    store
        .finish_attempt(&finished(
            &held.delivery.id,
            &held.claim,
            answered(500, now + 12),
            AfterAttempt::Failed,
            now + 12,
        ))
        .await
        .expect("test attempt");

    // Enabling it again (a new definition) lets it flow.
    store
        .put_webhook(&webhook("gone", WebhookOrigin::Api, now + 20))
        .await
        .expect("enable");
    let claimed = store
        .claim_due_deliveries(now + 20, LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.delivery.id.as_str())
            .collect::<Vec<_>>(),
        [one.delivery.id.as_str()]
    );
    let held = &claimed[0];
    assert!(
        store
            .claim_delivery(&held.delivery.id, now + 20, LEASE)
            .await
            .expect("claim one")
            .is_none(),
        "a held delivery cannot be claimed by id either"
    );
    store
        .finish_attempt(&finished(
            &held.delivery.id,
            &held.claim,
            answered(500, now + 21),
            AfterAttempt::Failed,
            now + 22,
        ))
        .await
        .expect("failed");
    let d = store
        .delivery(&held.delivery.id)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(d.state, DeliveryState::Failed);
    assert_eq!((d.attempts, d.round_attempts), (2, 1));
}

async fn pruning_and_cascades<S: WebhookStore>(store: &S) {
    let now = 200_000;
    store
        .save_breaker("gone", r#"{"state":"open"}"#, now)
        .await
        .expect("breaker");
    store
        .save_breaker("no-such-webhook", r#"{"state":"open"}"#, now)
        .await
        .expect("ignored");
    let breakers = store.breakers().await.expect("breakers");
    assert!(breakers.contains_key("gone"));
    assert!(!breakers.contains_key("no-such-webhook"));

    // Deleting a webhook takes its deliveries, attempts and breaker.
    let gone_deliveries = store.deliveries("gone", None, 10).await.expect("list");
    assert_eq!(gone_deliveries.len(), 3);
    assert!(store.delete_webhook("gone").await.expect("delete"));
    assert!(!store.delete_webhook("gone").await.expect("again"));
    for d in &gone_deliveries {
        assert_eq!(store.delivery(&d.id).await.expect("read"), None);
        assert!(store.attempts(&d.id).await.expect("attempts").is_empty());
    }
    assert!(
        !store
            .breakers()
            .await
            .expect("breakers")
            .contains_key("gone")
    );

    // Finished deliveries last changed before the cut go; pending ones stay.
    store
        .create_deliveries(&[delivery("ci", "fresh")], now)
        .await
        .expect("create");
    assert_eq!(store.prune_deliveries(now).await.expect("prune"), 2);
    let left = store.deliveries("ci", None, 10).await.expect("list");
    let events: Vec<&str> = left.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(events, ["fresh"]);

    // The configuration's webhooks not named any more go; API webhooks stay.
    store
        .put_webhook(&webhook("old-config", WebhookOrigin::Config, now))
        .await
        .expect("config");
    store
        .prune_webhooks(WebhookOrigin::Config, &["sign".to_owned()])
        .await
        .expect("prune");
    let names: Vec<String> = store
        .webhooks()
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["ci", "sign"]);
}
