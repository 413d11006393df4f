//! Audit entries: the fields taken from each event, and their RFC 8785 canonical bytes.

use audit::entry::{AuditEntry, Outcome};
use audit::merkle::leaf_hash;
use serde_json::{Value, json};
use store::EventRow;

fn event(kind: &str, data: &str, actor: Option<&str>) -> EventRow {
    EventRow {
        seq: 7,
        id: "0123456789abcdef0123456789abcdef".into(),
        kind: kind.into(),
        repository: Some("dev/app".into()),
        digest: Some(format!("sha256:{}", "ab".repeat(32))),
        tag: Some("v1.2.3".into()),
        data: data.into(),
        created_at: 1_700_000_123,
        actor: actor.map(str::to_owned),
    }
}

const ACTOR: &str = r#"{"kind":"anonymous","addr":"192.0.2.7:5123","user_agent":"skopeo/1.9","request_id":"req-9"}"#;

fn canonical(entry: &AuditEntry) -> String {
    String::from_utf8(entry.canonical_bytes().expect("canonical")).expect("UTF-8")
}

#[test]
fn an_entry_is_canonical_json_with_every_field() {
    let entry = AuditEntry::from_event(&event(
        "tag.updated",
        r#"{"previous": "sha256:00"}"#,
        Some(ACTOR),
    ));
    let expected = concat!(
        r#"{"action":"tag.updated","#,
        r#""actor":{"addr":"192.0.2.7:5123","kind":"anonymous","request_id":"req-9","user_agent":"skopeo/1.9"},"#,
        r#""correlation":{"event_id":"0123456789abcdef0123456789abcdef","request_id":"req-9"},"#,
        r#""data":{"previous":"sha256:00"},"#,
        r#""decision":null,"#,
        r#""outcome":"success","#,
        r#""resource":{"digest":"sha256:abababababababababababababababababababababababababababababababab","repository":"dev/app","tag":"v1.2.3"},"#,
        r#""time":1700000123,"#,
        r#""version":1}"#
    );
    assert_eq!(canonical(&entry), expected);
    let row = entry.to_new_entry().expect("row");
    assert_eq!(row.entry, expected.as_bytes());
    assert_eq!(row.leaf_hash, leaf_hash(expected.as_bytes()));
    assert_eq!(row.event_id, "0123456789abcdef0123456789abcdef");
    assert_eq!(row.action, "tag.updated");
    assert_eq!(row.repository.as_deref(), Some("dev/app"));
    assert_eq!(row.time, 1_700_000_123);
    let actor: Value = serde_json::from_str(row.actor.as_deref().expect("actor")).expect("JSON");
    assert_eq!(actor["addr"], "192.0.2.7:5123");
}

#[test]
fn work_without_a_request_is_done_by_the_system() {
    let entry = AuditEntry::from_event(&event("scan.completed", "{}", None));
    assert_eq!(entry.actor, json!({"kind": "system"}));
    assert_eq!(entry.correlation.request_id, None);
}

#[test]
fn decisions_are_copied_from_the_event_data() {
    let data = json!({"decision": {
        "rule": "blessed", "verdict": "rejected", "reasons": ["critical == 0"],
        "facts": {"vulnerabilities.critical": 2}, "policy_digest": "sha256:5eed",
        "target": "prod/app"
    }});
    let entry = AuditEntry::from_event(&event("promotion.rejected", &data.to_string(), None));
    let decision = serde_json::to_value(&entry.decision).expect("JSON");
    assert_eq!(
        decision,
        json!({"rule": "blessed", "verdict": "rejected",
               "facts": {"vulnerabilities.critical": 2}, "policy_digest": "sha256:5eed"})
    );
    assert_eq!(entry.data, data, "the whole data is kept too");
    let partial = AuditEntry::from_event(&event(
        "pull.denied",
        r#"{"decision": {"verdict": "deny"}}"#,
        None,
    ));
    let decision = serde_json::to_value(&partial.decision).expect("JSON");
    assert_eq!(
        decision,
        json!({"rule": null, "verdict": "deny", "facts": null, "policy_digest": null})
    );
    let none = AuditEntry::from_event(&event("pull.denied", r#"{"decision": null}"#, None));
    assert_eq!(none.decision, None);
}

#[test]
fn the_outcome_follows_the_event_kind() {
    for (kind, outcome) in [
        ("artifact.pushed", Outcome::Success),
        ("promotion.succeeded", Outcome::Success),
        ("promotion.pending", Outcome::Pending),
        ("promotion.rejected", Outcome::Rejected),
        ("pull.denied", Outcome::Denied),
        ("scan.failed", Outcome::Failure),
        ("config.changed", Outcome::Success),
    ] {
        assert_eq!(
            AuditEntry::from_event(&event(kind, "{}", None)).outcome,
            outcome,
            "{kind}"
        );
    }
}

#[test]
fn columns_that_are_not_json_are_recorded_as_text() {
    let entry = AuditEntry::from_event(&event("config.changed", "not json", Some("nor this")));
    assert_eq!(entry.data, json!("not json"));
    assert_eq!(entry.actor, json!("nor this"));
    assert!(canonical(&entry).contains(r#""data":"not json""#));
}

/// RFC 8785 §3.2.3: members are sorted by their names' UTF-16 code units, so U+1F600 (a
/// surrogate pair starting 0xD83D) sorts before U+FB33; numbers take ECMAScript's form.
#[test]
fn canonical_form_is_rfc8785() {
    let data = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001,-0]}"#;
    let entry = AuditEntry::from_event(&event("config.changed", data, None));
    let text = canonical(&entry);
    let data_start = text.find(r#""data":"#).expect("data") + r#""data":"#.len();
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\
                    \"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27,0],\
                    \"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1f600}\":\"Emoji: Grinning Face\",\
                    \"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(
        text.get(data_start..data_start + expected.len()),
        Some(expected)
    );
}

#[test]
fn the_same_event_always_gives_the_same_bytes() {
    let row = event(
        "pull.denied",
        r#"{"z": 1, "a": {"y": [3, 2, 1], "b": null}}"#,
        Some(ACTOR),
    );
    let first = AuditEntry::from_event(&row)
        .canonical_bytes()
        .expect("bytes");
    // The same JSON written with other spacing and member order.
    let reordered = EventRow {
        data: r#"{ "a" : { "b" : null , "y" : [3,2,1] } , "z" : 1 }"#.into(),
        ..row
    };
    let second = AuditEntry::from_event(&reordered)
        .canonical_bytes()
        .expect("bytes");
    assert_eq!(first, second);
}
