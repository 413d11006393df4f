//! Checks Bonded's CloudEvents against the official CloudEvents JSON schema with Python's
//! `jsonschema` (format checks on): hand-built events of every kind (with an extension), and
//! the events the fan-out makes from outbox rows of every kind, a deleted tag and a test
//! event included. Needs `python3` with `jsonschema`, `rfc3339-validator` and
//! `rfc3986-validator`; the test fails, never skips, when they are missing.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use store::EventRow;
use url::Url;
use webhooks::cloudevents::{CloudEvent, EventId, EventKind, ExtensionValue};
use webhooks::fanout;

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

fn event(kind: EventKind, index: usize) -> Value {
    let Value::Object(data) = json!({"repository": "dev/app", "digest": DIGEST, "tags": ["1.0"]})
    else {
        unreachable!()
    };
    let mut built = CloudEvent::new(
        EventId::new(&format!("01J9ZQ4C0M6V3T5XK8Y2B7N1R{index}")).unwrap(),
        "/registries/r1/repositories/dev/app",
        kind,
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        data,
    )
    .unwrap();
    if kind != EventKind::VulndbUpdated {
        built = built.with_subject(DIGEST).unwrap();
    }
    let built = built
        .with_extension(
            "traceparent",
            ExtensionValue::String(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            ),
        )
        .unwrap();
    serde_json::from_slice(&built.to_json().unwrap()).unwrap()
}

/// What the fan-out makes of an outbox row of `kind`.
fn fanned_out(kind: &str, index: usize) -> Value {
    let row = EventRow {
        seq: index as i64,
        id: format!("{index:032x}"),
        kind: kind.to_owned(),
        repository: (kind != "vulndb.updated").then(|| "prod/app".to_owned()),
        digest: (kind != "vulndb.updated").then(|| DIGEST.to_owned()),
        tag: Some("v1".to_owned()),
        data: r#"{"decision":{"rule":"blessed","verdict":"promoted"}}"#.to_owned(),
        created_at: 1_700_000_000,
        actor: None,
    };
    let public = Url::parse("https://registry.example:5000").unwrap();
    let (_, bytes) = fanout::cloud_event(&row, &public).unwrap().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn with(mut event: Value, key: &str, value: Option<Value>) -> Value {
    let object: &mut Map<String, Value> = event.as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    event
}

#[test]
fn events_validate_against_the_official_schema() {
    let mut valid: Vec<Value> = EventKind::ALL
        .into_iter()
        .enumerate()
        .map(|(index, kind)| event(kind, index))
        .collect();
    let outbox_kinds = EventKind::ALL.map(EventKind::name);
    for (index, kind) in outbox_kinds.iter().chain(&["tag.deleted"]).enumerate() {
        valid.push(fanned_out(kind, index));
    }
    let id = EventId::new("0123456789abcdef0123456789abcdef").unwrap();
    let public = Url::parse("https://registry.example").unwrap();
    let (_, test_event) = fanout::test_event("ci", &id, &public, UNIX_EPOCH).unwrap();
    valid.push(serde_json::from_slice(&test_event).unwrap());
    let base = valid[0].clone();
    let invalid = vec![
        with(base.clone(), "id", None),
        with(base.clone(), "source", None),
        with(base.clone(), "specversion", Some(json!(""))),
        with(base.clone(), "type", Some(json!(7))),
        with(base.clone(), "subject", Some(json!(""))),
        with(base.clone(), "time", Some(json!("2023-11-14 22:13"))),
        with(base.clone(), "source", Some(json!("/a b"))),
        with(base, "data_base64", Some(json!(5))),
    ];
    let input = json!({"valid": valid, "invalid": invalid}).to_string();

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudevents/validate.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("this test needs python3 with jsonschema: {error}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schema validation failed (needs python3 with jsonschema, rfc3339-validator, \
         rfc3986-validator)\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("26 events valid, 8 controls rejected"),
        "{stdout}"
    );
}
