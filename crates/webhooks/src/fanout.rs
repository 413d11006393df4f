//! From outbox events to CloudEvents: which events webhooks see, and what they carry.
//!
//! Each outbox event (`store::EventRow`) of a kind the issue lists becomes one CloudEvent with
//! - `id`: the outbox event's id, so the same event has the same id (and `webhook-id`) on
//!   every delivery, retry and redelivery;
//! - `type`: `dev.bonded.<kind>`; `source`: `<public URL>/api/v1/repositories/<repository>`
//!   (the public URL alone for events about no repository); `subject`: the manifest digest;
//!   `time`: when the change committed;
//! - `data`: the event's own facts (`previous`, `media_type`, `reason`, `decision`, ...), then
//!   `repository`, `tag` and `digest` (null when the event has none), `image`
//!   (`<registry host>/<repository>@<digest>`) and `links.history` (the image's story,
//!   `<public URL>/api/v1/repositories/<repository>/manifests/<digest>/history`).
//!
//! `tag.deleted` is not a kind the issue lists; a deleted tag is a `tag.updated` whose
//! `digest` is null and whose `previous` is the digest it pointed at, so subscribers of tag
//! moves learn about removals too. Kinds that are not for webhooks (`config.changed`, which
//! may describe secrets) or unknown ones are not delivered.
//!
//! A CloudEvent is at most 64 KiB. An event whose facts would exceed that (a very long
//! decision) is sent without them, with `"truncated": true`; the history link leads to the
//! whole story.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use store::EventRow;
use url::Url;

use crate::cloudevents::{CloudEvent, CloudEventError, EventId, EventKind};

/// The outbox kind of a deleted tag, delivered as [`EventKind::TagUpdated`].
const TAG_DELETED: &str = "tag.deleted";

/// The webhook event kind of an outbox event kind, if webhooks see it.
pub fn webhook_kind(outbox_kind: &str) -> Option<EventKind> {
    if outbox_kind == TAG_DELETED {
        return Some(EventKind::TagUpdated);
    }
    EventKind::from_name(outbox_kind)
}

/// Builds the CloudEvent of an outbox event (`None` for kinds webhooks do not see) and
/// serializes it.
pub fn cloud_event(
    event: &EventRow,
    public_url: &Url,
) -> Result<Option<(CloudEvent, Vec<u8>)>, CloudEventError> {
    let Some(kind) = webhook_kind(&event.kind) else {
        return Ok(None);
    };
    let facts = match serde_json::from_str::<Value>(&event.data) {
        Ok(Value::Object(facts)) => facts,
        _ => Map::new(),
    };
    let built = build(event, kind, public_url, facts)?;
    match built.to_json() {
        Ok(bytes) => Ok(Some((built, bytes))),
        Err(CloudEventError::TooLarge { .. }) => {
            let mut slim = Map::new();
            slim.insert("truncated".to_owned(), Value::Bool(true));
            let built = build(event, kind, public_url, slim)?;
            let bytes = built.to_json()?;
            Ok(Some((built, bytes)))
        }
        Err(e) => Err(e),
    }
}

fn build(
    event: &EventRow,
    kind: EventKind,
    public_url: &Url,
    mut data: Map<String, Value>,
) -> Result<CloudEvent, CloudEventError> {
    let base = public_url.as_str().trim_end_matches('/');
    let repository = event.repository.as_deref();
    let digest = if event.kind == TAG_DELETED {
        data.insert("previous".to_owned(), json!(event.digest));
        None
    } else {
        event.digest.as_deref()
    };
    data.insert("repository".to_owned(), json!(repository));
    data.insert("tag".to_owned(), json!(event.tag));
    data.insert("digest".to_owned(), json!(digest));
    if let (Some(repository), Some(digest)) = (repository, digest) {
        if let Some(host) = registry_host(public_url) {
            data.insert(
                "image".to_owned(),
                json!(format!("{host}/{repository}@{digest}")),
            );
        }
        data.insert(
            "links".to_owned(),
            json!({
                "history": format!("{base}/api/v1/repositories/{repository}/manifests/{digest}/history")
            }),
        );
    }
    let source = match repository {
        Some(repository) => format!("{base}/api/v1/repositories/{repository}"),
        None => base.to_owned(),
    };
    let created = UNIX_EPOCH + Duration::from_secs(u64::try_from(event.created_at).unwrap_or(0));
    let built = CloudEvent::new(EventId::new(&event.id)?, &source, kind, created, data)?;
    match digest {
        Some(digest) => built.with_subject(digest),
        None => Ok(built),
    }
}

/// `host[:port]` of the public URL, as image references name the registry.
fn registry_host(public_url: &Url) -> Option<String> {
    let host = public_url.host_str()?;
    Some(match public_url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// A test event for webhook `name`: a fresh id, no subject, and a note saying what it is.
pub fn test_event(
    name: &str,
    id: &EventId,
    public_url: &Url,
    now: SystemTime,
) -> Result<(CloudEvent, Vec<u8>), CloudEventError> {
    let Value::Object(data) = json!({
        "webhook": name,
        "message": "A test event from Bonded: this webhook is reachable and its signature can be checked.",
    }) else {
        return Err(CloudEventError::Parse {
            reason: "test data is not an object".to_owned(),
        });
    };
    let source = public_url.as_str().trim_end_matches('/');
    let event = CloudEvent::new(id.clone(), source, EventKind::WebhookTest, now, data)?;
    let bytes = event.to_json()?;
    Ok((event, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn row(kind: &str, data: &str) -> EventRow {
        EventRow {
            seq: 7,
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            kind: kind.to_owned(),
            repository: Some("prod/app".to_owned()),
            digest: Some(DIGEST.to_owned()),
            tag: Some("v1".to_owned()),
            data: data.to_owned(),
            created_at: 1_700_000_000,
            actor: None,
        }
    }

    fn public() -> Url {
        Url::parse("https://registry.example:5000/").unwrap()
    }

    fn json_of(event: &EventRow) -> Value {
        let (_, bytes) = cloud_event(event, &public()).unwrap().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_promotion_carries_its_decision_and_links() {
        let decision = r#"{"decision":{"rule":"blessed","verdict":"promoted","reasons":[]}}"#;
        let body = json_of(&row("promotion.succeeded", decision));
        assert_eq!(
            body,
            json!({
                "specversion": "1.0",
                "id": "0123456789abcdef0123456789abcdef",
                "source": "https://registry.example:5000/api/v1/repositories/prod/app",
                "type": "dev.bonded.promotion.succeeded",
                "subject": DIGEST,
                "time": "2023-11-14T22:13:20.000Z",
                "datacontenttype": "application/json",
                "data": {
                    "decision": {"rule": "blessed", "verdict": "promoted", "reasons": []},
                    "repository": "prod/app",
                    "tag": "v1",
                    "digest": DIGEST,
                    "image": format!("registry.example:5000/prod/app@{DIGEST}"),
                    "links": {"history": format!("https://registry.example:5000/api/v1/repositories/prod/app/manifests/{DIGEST}/history")},
                }
            })
        );
    }

    #[test]
    fn a_deleted_tag_is_a_tag_update_to_nothing() {
        let body = json_of(&row("tag.deleted", "{}"));
        assert_eq!(body["type"], "dev.bonded.tag.updated");
        assert_eq!(body["data"]["digest"], Value::Null);
        assert_eq!(body["data"]["previous"], DIGEST);
        assert_eq!(body["data"]["tag"], "v1");
        assert!(body.get("subject").is_none());
        assert!(body["data"].get("links").is_none());
    }

    #[test]
    fn registry_wide_events_have_the_registry_as_source() {
        let mut event = row("vulndb.updated", r#"{"version":"2024-06-01"}"#);
        event.repository = None;
        event.digest = None;
        event.tag = None;
        let body = json_of(&event);
        assert_eq!(body["source"], "https://registry.example:5000");
        assert_eq!(body["data"]["version"], "2024-06-01");
        assert_eq!(body["data"]["repository"], Value::Null);
    }

    #[test]
    fn kinds_webhooks_do_not_see_are_skipped() {
        for kind in ["config.changed", "artifact.pulled", ""] {
            assert!(
                cloud_event(&row(kind, "{}"), &public()).unwrap().is_none(),
                "{kind}"
            );
        }
        for kind in EventKind::ALL {
            assert!(
                cloud_event(&row(kind.name(), "{}"), &public())
                    .unwrap()
                    .is_some()
            );
        }
    }

    #[test]
    fn oversized_facts_are_dropped_not_the_event() {
        let huge = format!(r#"{{"decision":{{"facts":"{}"}}}}"#, "x".repeat(70_000));
        let body = json_of(&row("promotion.rejected", &huge));
        assert_eq!(body["data"]["truncated"], true);
        assert!(body["data"].get("decision").is_none());
        assert!(body["data"]["links"]["history"].is_string());
    }

    #[test]
    fn malformed_facts_are_ignored() {
        let body = json_of(&row("scan.completed", "not json"));
        assert_eq!(body["data"]["repository"], "prod/app");
    }

    #[test]
    fn an_unusable_event_id_is_an_error() {
        let mut event = row("scan.completed", "{}");
        event.id = "a.b".to_owned();
        assert!(cloud_event(&event, &public()).is_err());
    }
}
