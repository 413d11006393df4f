//! Deliveries per second to a loopback receiver (run with `--release` for the number in the
//! report). It also checks that a thousand events arrive exactly once each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use store::{DeliveryState, WebhookStore};

use crate::support::{Fixture, Receiver, eventually, fast_options, standard};

const EVENTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_per_second_to_a_loopback_receiver() {
    let receiver = Receiver::start().await;
    let fx = Fixture::new(
        &[standard("bench", &receiver.url("/h"), &["*"])],
        fast_options(),
    )
    .await;
    let mut events = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        events.push(
            fx.event("artifact.pushed", Some("bench/app"), None, json!({"i": i}))
                .await,
        );
    }

    let started = Instant::now();
    for batch in events.chunks(256) {
        fx.service.handle(batch).await.expect("handle");
    }
    let got = receiver.wait_for(EVENTS, Duration::from_secs(120)).await;
    let sent = started.elapsed();
    eventually(
        Duration::from_secs(60),
        "every delivery recorded",
        || async {
            let rows = fx
                .store
                .deliveries("bench", None, EVENTS as u32)
                .await
                .expect("deliveries");
            (rows.len() == EVENTS && rows.iter().all(|d| d.state == DeliveryState::Delivered))
                .then_some(())
        },
    )
    .await;
    let recorded = started.elapsed();

    let ids: BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), EVENTS, "each event arrived");
    assert_eq!(receiver.received().len(), EVENTS, "and arrived once");
    println!(
        "{EVENTS} deliveries: all received after {sent:?} ({:.0}/s), all recorded after {recorded:?} ({:.0}/s)",
        EVENTS as f64 / sent.as_secs_f64(),
        EVENTS as f64 / recorded.as_secs_f64()
    );
}
