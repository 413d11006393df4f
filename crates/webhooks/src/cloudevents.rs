//! CloudEvents 1.0 events in structured JSON mode, the body of every generic webhook delivery.
//!
//! Bonded describes each occurrence (a push, a scan, a promotion, ...) as a CloudEvent whose
//! `type` is `dev.bonded.<noun>.<verb>`, whose `subject` is the artifact digest when there is one,
//! and whose `data` is a thin JSON object. The event is serialized once, stored, and the same
//! bytes are sent on every retry, so the `id` (also the Standard Webhooks `webhook-id`) is stable.
//!
//! What this module guarantees, following cloudevents/spec `cloudevents/spec.md` (v1.0.2) and
//! `cloudevents/formats/json-format.md`:
//! - the REQUIRED attributes `specversion` ("1.0"), `id`, `source` and `type` are present and
//!   non-empty; `source` is a URI-reference (RFC 3986 §4.1, checked by [`is_uri_reference`]);
//! - `time` is an RFC 3339 UTC timestamp, `datacontenttype` is `application/json` and `data` is
//!   a JSON object stored as a JSON value, never as an encoded string (json-format §3.1.1);
//! - every String attribute avoids the characters the type system forbids: "the control
//!   characters in the ranges U+0000-U+001F and U+007F-U+009F" and Unicode noncharacters;
//! - extension attributes follow the naming rule "attribute names MUST consist of lower-case
//!   letters ('a' to 'z') or digits ('0' to '9') from the ASCII character set", are at most 20
//!   characters (a SHOULD that Bonded enforces for its own events), never reuse a core attribute
//!   name, and never use the reserved name `data`; Integer values stay in the signed 32-bit range;
//! - the serialized event is at most 64 KiB, the size every intermediary MUST forward.
//!
//! Serialization uses `serde_json`; the `cloudevents-sdk` crate was not taken because it pulls in
//! transport integrations and `chrono`, while Bonded needs only this one structured format.
//! Attribute validation is hand-written because no small crate offers it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

/// Media type of a structured-mode CloudEvent in JSON (json-format §3).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// The `specversion` every Bonded event carries.
pub const SPEC_VERSION: &str = "1.0";
/// Reverse-DNS prefix of every Bonded event type.
pub const TYPE_PREFIX: &str = "dev.bonded";
/// The `datacontenttype` of Bonded events: `data` is always a JSON object.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Largest serialized event (CloudEvents "Size Limits": intermediaries MUST forward 64 KiB).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest extension attribute name Bonded emits (the specification's SHOULD).
pub const MAX_EXTENSION_NAME_LEN: usize = 20;
/// Longest event id; ids are ULIDs or UUIDs in practice.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// Attribute names that the core specification and the JSON format already use.
const RESERVED_NAMES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// Why an event could not be built or serialized.
#[derive(Debug, thiserror::Error)]
pub enum CloudEventError {
    #[error("event id {id:?} must be 1 to 128 characters of A-Z, a-z, 0-9, `_` or `-`")]
    EventId { id: String },
    #[error("event source {value:?} is not a non-empty URI-reference")]
    Source { value: String },
    #[error("attribute `{attribute}` is not a valid CloudEvents String: {reason}")]
    StringValue {
        attribute: String,
        reason: &'static str,
    },
    #[error("event time is before 1970-01-01 or after 9999-12-31")]
    TimeOutOfRange,
    #[error("extension name {name:?} must be 1 to 20 lower-case ASCII letters or digits")]
    ExtensionName { name: String },
    #[error("extension name {name:?} is a core attribute name")]
    ReservedExtensionName { name: String },
    #[error("serializing the event failed: {source}")]
    Serialize { source: serde_json::Error },
    #[error("serialized event has {size} bytes, more than the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("not a Bonded CloudEvent in structured JSON: {reason}")]
    Parse { reason: String },
}

/// What happened, as the `<noun>.<verb>` part of a Bonded event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ArtifactPushed,
    ArtifactDeleted,
    TagUpdated,
    ScanCompleted,
    ScanFailed,
    SignatureAdded,
    AttestationAdded,
    PromotionSucceeded,
    PromotionPending,
    PromotionRejected,
    PullDenied,
    VulndbUpdated,
    /// A test event sent on request (`POST /api/v1/webhooks/<name>/test`); never subscribed to.
    WebhookTest,
}

impl EventKind {
    /// Every kind a webhook can subscribe to (all but [`EventKind::WebhookTest`]).
    pub const ALL: [EventKind; 12] = [
        EventKind::ArtifactPushed,
        EventKind::ArtifactDeleted,
        EventKind::TagUpdated,
        EventKind::ScanCompleted,
        EventKind::ScanFailed,
        EventKind::SignatureAdded,
        EventKind::AttestationAdded,
        EventKind::PromotionSucceeded,
        EventKind::PromotionPending,
        EventKind::PromotionRejected,
        EventKind::PullDenied,
        EventKind::VulndbUpdated,
    ];

    /// The short name, `<noun>.<verb>` (for subscriptions and logs).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ArtifactPushed => "artifact.pushed",
            EventKind::ArtifactDeleted => "artifact.deleted",
            EventKind::TagUpdated => "tag.updated",
            EventKind::ScanCompleted => "scan.completed",
            EventKind::ScanFailed => "scan.failed",
            EventKind::SignatureAdded => "signature.added",
            EventKind::AttestationAdded => "attestation.added",
            EventKind::PromotionSucceeded => "promotion.succeeded",
            EventKind::PromotionPending => "promotion.pending",
            EventKind::PromotionRejected => "promotion.rejected",
            EventKind::PullDenied => "pull.denied",
            EventKind::VulndbUpdated => "vulndb.updated",
            EventKind::WebhookTest => "webhook.test",
        }
    }

    /// The CloudEvents `type`, `dev.bonded.<noun>.<verb>`.
    pub fn type_name(self) -> String {
        format!("{TYPE_PREFIX}.{}", self.name())
    }

    /// The kind whose CloudEvents `type` is `type_name`, if Bonded defines one.
    pub fn from_type_name(type_name: &str) -> Option<Self> {
        let name = type_name.strip_prefix(TYPE_PREFIX)?.strip_prefix('.')?;
        match Self::from_name(name) {
            Some(kind) => Some(kind),
            None => (name == EventKind::WebhookTest.name()).then_some(EventKind::WebhookTest),
        }
    }

    /// The subscribable kind whose short name is `name` (`scan.completed`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// An event id: unique per `source`, identical on every retry of the same event.
///
/// Restricted to `[A-Za-z0-9_-]` so that it can serve unchanged as the Standard Webhooks
/// `webhook-id` (which must not contain `.`) and as an HTTP header value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// Checks and wraps an id such as a ULID or a UUID.
    pub fn new(id: &str) -> Result<Self, CloudEventError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if id.is_empty() || id.len() > MAX_EVENT_ID_LEN || !id.chars().all(allowed) {
            return Err(CloudEventError::EventId {
                id: id.chars().take(MAX_EVENT_ID_LEN).collect(),
            });
        }
        Ok(Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The value of an extension attribute, limited to the CloudEvents types JSON can carry
/// without ambiguity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ExtensionValue {
    Boolean(bool),
    /// The CloudEvents `Integer` type is signed 32-bit.
    Integer(i32),
    String(String),
}

/// One CloudEvent, validated when built.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    id: EventId,
    source: String,
    kind: EventKind,
    subject: Option<String>,
    time: String,
    extensions: BTreeMap<String, ExtensionValue>,
    data: Map<String, Value>,
}

impl CloudEvent {
    /// Builds an event with the REQUIRED attributes, `time` and a JSON object as `data`.
    pub fn new(
        id: EventId,
        source: &str,
        kind: EventKind,
        time: SystemTime,
        data: Map<String, Value>,
    ) -> Result<Self, CloudEventError> {
        check_string("source", source)?;
        if !is_uri_reference(source) {
            return Err(CloudEventError::Source {
                value: source.chars().take(256).collect(),
            });
        }
        Ok(Self {
            id,
            source: source.to_owned(),
            kind,
            subject: None,
            time: rfc3339(time)?,
            extensions: BTreeMap::new(),
            data,
        })
    }

    /// Sets `subject` (for Bonded, the artifact digest); it must be a non-empty String.
    pub fn with_subject(mut self, subject: &str) -> Result<Self, CloudEventError> {
        if subject.is_empty() {
            return Err(CloudEventError::StringValue {
                attribute: "subject".to_owned(),
                reason: "it is empty",
            });
        }
        check_string("subject", subject)?;
        self.subject = Some(subject.to_owned());
        Ok(self)
    }

    /// Adds (or replaces) an extension attribute such as `traceparent`.
    pub fn with_extension(
        mut self,
        name: &str,
        value: ExtensionValue,
    ) -> Result<Self, CloudEventError> {
        check_extension_name(name)?;
        if let ExtensionValue::String(text) = &value {
            check_string(name, text)?;
        }
        self.extensions.insert(name.to_owned(), value);
        Ok(self)
    }

    /// The event id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The `source` URI-reference.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The `subject`, when set.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The `time` attribute as serialized (RFC 3339, UTC, milliseconds).
    pub fn time(&self) -> &str {
        &self.time
    }

    /// The extension attributes.
    pub fn extensions(&self) -> &BTreeMap<String, ExtensionValue> {
        &self.extensions
    }

    /// The `data` object.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    /// Serializes the event in structured mode (send with [`CONTENT_TYPE`]).
    pub fn to_json(&self) -> Result<Vec<u8>, CloudEventError> {
        let wire = WireEvent {
            specversion: SPEC_VERSION,
            id: self.id.as_str(),
            source: &self.source,
            kind: self.kind.type_name(),
            subject: self.subject.as_deref(),
            time: &self.time,
            datacontenttype: DATA_CONTENT_TYPE,
            extensions: &self.extensions,
            data: &self.data,
        };
        let bytes =
            serde_json::to_vec(&wire).map_err(|source| CloudEventError::Serialize { source })?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(CloudEventError::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        Ok(bytes)
    }
}

impl CloudEvent {
    /// Parses a structured-mode event as [`CloudEvent::to_json`] writes it (a stored delivery,
    /// or what a receiver got), with the checks of [`CloudEvent::new`]. Members other than the
    /// core attributes and `data` are extensions.
    pub fn from_json(bytes: &[u8]) -> Result<Self, CloudEventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(CloudEventError::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        let parsed: Value =
            serde_json::from_slice(bytes).map_err(|e| parse_error(e.to_string()))?;
        let Value::Object(mut members) = parsed else {
            return Err(parse_error("it is not a JSON object".to_owned()));
        };
        let spec_version = required_text(&mut members, "specversion")?;
        if spec_version != SPEC_VERSION {
            return Err(parse_error(format!(
                "specversion {spec_version:?} is not \"1.0\""
            )));
        }
        let id = EventId::new(&required_text(&mut members, "id")?)?;
        let source = required_text(&mut members, "source")?;
        let type_name = required_text(&mut members, "type")?;
        let kind = EventKind::from_type_name(&type_name)
            .ok_or_else(|| parse_error(format!("type {type_name:?} is not a Bonded event type")))?;
        let time = required_text(&mut members, "time")?;
        let time = humantime::parse_rfc3339(&time)
            .map_err(|e| parse_error(format!("time {time:?}: {e}")))?;
        let subject = optional_text(&mut members, "subject")?;
        if let Some(content_type) = optional_text(&mut members, "datacontenttype")?
            && content_type != DATA_CONTENT_TYPE
        {
            return Err(parse_error(format!(
                "datacontenttype {content_type:?} is not {DATA_CONTENT_TYPE}"
            )));
        }
        let data = match members.remove("data") {
            None => Map::new(),
            Some(Value::Object(data)) => data,
            Some(_) => return Err(parse_error("`data` is not a JSON object".to_owned())),
        };
        let mut event = CloudEvent::new(id, &source, kind, time, data)?;
        if let Some(subject) = subject {
            event = event.with_subject(&subject)?;
        }
        for (name, value) in members {
            let value = match value {
                Value::Bool(b) => ExtensionValue::Boolean(b),
                Value::String(text) => ExtensionValue::String(text),
                Value::Number(n) => n
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .map(ExtensionValue::Integer)
                    .ok_or_else(|| parse_error(format!("extension `{name}` is not an Integer")))?,
                _ => {
                    return Err(parse_error(format!(
                        "extension `{name}` has an unusable type"
                    )));
                }
            };
            event = event.with_extension(&name, value)?;
        }
        Ok(event)
    }
}

fn parse_error(reason: String) -> CloudEventError {
    CloudEventError::Parse { reason }
}

fn optional_text(
    members: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, CloudEventError> {
    match members.remove(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(parse_error(format!("`{name}` is not a string"))),
    }
}

fn required_text(members: &mut Map<String, Value>, name: &str) -> Result<String, CloudEventError> {
    optional_text(members, name)?.ok_or_else(|| parse_error(format!("`{name}` is missing")))
}

/// The JSON shape of a structured-mode event; extensions are top-level members
/// (json-format §2: "Extensions MUST be serialized as a top-level JSON property").
#[derive(Serialize)]
struct WireEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    time: &'a str,
    datacontenttype: &'static str,
    #[serde(flatten)]
    extensions: &'a BTreeMap<String, ExtensionValue>,
    data: &'a Map<String, Value>,
}

/// Whether `text` is a non-empty URI-reference in the sense of RFC 3986 §4.1.
///
/// Checks the character repertoire (unreserved, reserved and `%` followed by two hex digits),
/// at most one `#`, and that a `:` before the first `/`, `?` or `#` ends a valid scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`), because a relative reference's first segment
/// cannot contain `:` (RFC 3986 §4.2).
pub fn is_uri_reference(text: &str) -> bool {
    if text.is_empty() || text.matches('#').count() > 1 || !has_valid_percent_escapes(text) {
        return false;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    if !text.chars().all(allowed) {
        return false;
    }
    let first_part = text.split(['/', '?', '#']).next().unwrap_or_default();
    match first_part.split_once(':') {
        None => true,
        Some((scheme, _)) => is_scheme(scheme),
    }
}

fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn has_valid_percent_escapes(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(index, byte)| {
        *byte != b'%'
            || matches!(
                (bytes.get(index + 1), bytes.get(index + 2)),
                (Some(high), Some(low)) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit()
            )
    })
}

fn check_extension_name(name: &str) -> Result<(), CloudEventError> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_EXTENSION_NAME_LEN
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    if !well_formed {
        return Err(CloudEventError::ExtensionName {
            name: name.chars().take(64).collect(),
        });
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(CloudEventError::ReservedExtensionName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks the CloudEvents `String` type: no control characters, no noncharacters.
/// (Unpaired surrogates cannot occur in a Rust `str`.)
fn check_string(attribute: &str, text: &str) -> Result<(), CloudEventError> {
    let reason = if text.chars().any(char::is_control) {
        "it contains a control character"
    } else if text.chars().any(is_noncharacter) {
        "it contains a Unicode noncharacter"
    } else {
        return Ok(());
    };
    Err(CloudEventError::StringValue {
        attribute: attribute.to_owned(),
        reason,
    })
}

/// Unicode noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

/// RFC 3339 in UTC with millisecond precision, for times humantime can render
/// (1970-01-01 to 9999-12-31; it would panic before the epoch).
fn rfc3339(time: SystemTime) -> Result<String, CloudEventError> {
    time.duration_since(UNIX_EPOCH)
        .map_err(|_| CloudEventError::TimeOutOfRange)?;
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_millis(time))
        .map_err(|_| CloudEventError::TimeOutOfRange)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    const SOURCE: &str = "/registries/r1/repositories/dev/app";

    fn pushed_at(seconds: u64) -> CloudEvent {
        let data = json!({"repository": "dev/app", "tags": ["1.0"], "digest": DIGEST});
        let Value::Object(data) = data else {
            unreachable!()
        };
        CloudEvent::new(
            EventId::new("01J9ZQ4C0M6V3T5XK8Y2B7N1RD").unwrap(),
            SOURCE,
            EventKind::ArtifactPushed,
            UNIX_EPOCH + Duration::from_millis(seconds * 1000 + 250),
            data,
        )
        .unwrap()
    }

    fn parse(event: &CloudEvent) -> Value {
        serde_json::from_slice(&event.to_json().unwrap()).unwrap()
    }

    #[test]
    fn serializes_all_attributes_in_structured_mode() {
        let event = pushed_at(1_700_000_000)
            .with_subject(DIGEST)
            .unwrap()
            .with_extension(
                "traceparent",
                ExtensionValue::String(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
                ),
            )
            .unwrap()
            .with_extension("sequence", ExtensionValue::Integer(42))
            .unwrap();
        assert_eq!(
            parse(&event),
            json!({
                "specversion": "1.0",
                "id": "01J9ZQ4C0M6V3T5XK8Y2B7N1RD",
                "source": SOURCE,
                "type": "dev.bonded.artifact.pushed",
                "subject": DIGEST,
                "time": "2023-11-14T22:13:20.250Z",
                "datacontenttype": "application/json",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "sequence": 42,
                "data": {"repository": "dev/app", "tags": ["1.0"], "digest": DIGEST},
            })
        );
    }

    #[test]
    fn omits_an_unset_subject() {
        let value = parse(&pushed_at(0));
        assert!(value.get("subject").is_none());
        assert_eq!(value["time"], "1970-01-01T00:00:00.250Z");
    }

    #[test]
    fn same_event_serializes_to_the_same_bytes() {
        let event = pushed_at(1_700_000_000).with_subject(DIGEST).unwrap();
        assert_eq!(event.to_json().unwrap(), event.clone().to_json().unwrap());
    }

    #[test]
    fn parsing_gives_back_the_event_that_was_serialized() {
        let event = pushed_at(1_700_000_000)
            .with_subject(DIGEST)
            .unwrap()
            .with_extension("sequence", ExtensionValue::Integer(7))
            .unwrap()
            .with_extension("replay", ExtensionValue::Boolean(true))
            .unwrap();
        let bytes = event.to_json().unwrap();
        let parsed = CloudEvent::from_json(&bytes).unwrap();
        assert_eq!(parsed, event);
        assert_eq!(parsed.to_json().unwrap(), bytes);
    }

    #[test]
    fn parsing_refuses_what_is_not_a_bonded_event() {
        let good = parse(&pushed_at(1_700_000_000));
        let altered = |key: &str, value: Option<Value>| {
            let mut event = good.clone();
            let members = event.as_object_mut().unwrap();
            match value {
                Some(value) => members.insert(key.to_owned(), value),
                None => members.remove(key),
            };
            serde_json::to_vec(&event).unwrap()
        };
        let cases = [
            altered("specversion", Some(json!("0.3"))),
            altered("id", None),
            altered("id", Some(json!("a.b"))),
            altered("type", Some(json!("com.example.other"))),
            altered("time", Some(json!("yesterday"))),
            altered("data", Some(json!("text"))),
            altered("datacontenttype", Some(json!("text/plain"))),
            altered("Upper", Some(json!("x"))),
            altered("big", Some(json!(1_u64 << 40))),
            altered("nested", Some(json!({"a": 1}))),
            b"[1, 2]".to_vec(),
            b"{".to_vec(),
            vec![b' '; MAX_EVENT_BYTES + 1],
        ];
        for (index, bytes) in cases.iter().enumerate() {
            assert!(CloudEvent::from_json(bytes).is_err(), "case {index}");
        }
    }

    #[test]
    fn type_names_follow_the_bonded_scheme() {
        let names: Vec<String> = EventKind::ALL.iter().map(|kind| kind.type_name()).collect();
        assert_eq!(
            names,
            [
                "dev.bonded.artifact.pushed",
                "dev.bonded.artifact.deleted",
                "dev.bonded.tag.updated",
                "dev.bonded.scan.completed",
                "dev.bonded.scan.failed",
                "dev.bonded.signature.added",
                "dev.bonded.attestation.added",
                "dev.bonded.promotion.succeeded",
                "dev.bonded.promotion.pending",
                "dev.bonded.promotion.rejected",
                "dev.bonded.pull.denied",
                "dev.bonded.vulndb.updated",
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_type_name(&kind.type_name()), Some(kind));
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(
            EventKind::from_type_name("dev.bonded.webhook.test"),
            Some(EventKind::WebhookTest)
        );
        assert_eq!(
            EventKind::from_name("webhook.test"),
            None,
            "test events cannot be subscribed to"
        );
        for unknown in [
            "artifact.pushed",
            "dev.bonded.artifact",
            "dev.bondedartifact.pushed",
        ] {
            assert_eq!(EventKind::from_type_name(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn event_ids_must_be_header_and_signature_safe() {
        for good in [
            "01J9ZQ4C0M6V3T5XK8Y2B7N1RD",
            "6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "a_b",
        ] {
            assert_eq!(EventId::new(good).unwrap().as_str(), good);
        }
        let too_long = "a".repeat(MAX_EVENT_ID_LEN + 1);
        for bad in ["", "a.b", "a b", "a/b", "é", too_long.as_str()] {
            assert!(
                matches!(EventId::new(bad), Err(CloudEventError::EventId { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn sources_must_be_uri_references() {
        for good in [
            "/registries/r1/repositories/dev/app",
            "https://registry.example.com/v2/dev/app",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "mailto:cncf-wg-serverless@lists.cncf.io",
            "1-555-123-4567",
            "cloudevents/spec/pull/123",
            "/a%20b?q=1#frag",
        ] {
            assert!(is_uri_reference(good), "{good}");
        }
        for bad in [
            "", "/a b", "/a%zz", "/a%2", "/é", "1:2/path", "/a#b#c", "/a\\b", "/a<b>",
        ] {
            assert!(!is_uri_reference(bad), "{bad}");
            let result = CloudEvent::new(
                EventId::new("e1").unwrap(),
                bad,
                EventKind::TagUpdated,
                UNIX_EPOCH,
                Map::new(),
            );
            assert!(result.is_err(), "{bad}");
        }
    }

    #[test]
    fn extension_names_follow_the_naming_convention() {
        for bad in [
            "",
            "traceParent",
            "trace-parent",
            "trace_parent",
            "é",
            "abcdefghijklmnopqrstu",
        ] {
            let result = pushed_at(0).with_extension(bad, ExtensionValue::Boolean(true));
            assert!(
                matches!(result, Err(CloudEventError::ExtensionName { .. })),
                "{bad:?}"
            );
        }
        for reserved in RESERVED_NAMES.iter().filter(|name| !name.contains('_')) {
            let result = pushed_at(0).with_extension(reserved, ExtensionValue::Boolean(true));
            assert!(
                matches!(result, Err(CloudEventError::ReservedExtensionName { .. })),
                "{reserved}"
            );
        }
        assert!(
            pushed_at(0)
                .with_extension("abcdefghijklmnopqrst", ExtensionValue::Boolean(true))
                .is_ok()
        );
    }

    #[test]
    fn string_attributes_refuse_control_and_noncharacters() {
        for bad in [
            "a\nb",
            "a\u{0}b",
            "a\u{85}b",
            "a\u{FDD0}b",
            "a\u{FFFE}b",
            "a\u{1FFFF}b",
        ] {
            let subject = pushed_at(0).with_subject(bad);
            assert!(
                matches!(subject, Err(CloudEventError::StringValue { .. })),
                "{bad:?}"
            );
            let extension =
                pushed_at(0).with_extension("note", ExtensionValue::String(bad.to_owned()));
            assert!(
                matches!(extension, Err(CloudEventError::StringValue { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            pushed_at(0).with_subject(""),
            Err(CloudEventError::StringValue { .. })
        ));
        assert!(pushed_at(0).with_subject("naïve ✓").is_ok());
    }

    #[test]
    fn times_outside_the_rfc3339_range_are_refused() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        for time in [before_epoch, year_10000] {
            let result = CloudEvent::new(
                EventId::new("e1").unwrap(),
                SOURCE,
                EventKind::VulndbUpdated,
                time,
                Map::new(),
            );
            assert!(matches!(result, Err(CloudEventError::TimeOutOfRange)));
        }
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut data = Map::new();
        data.insert(
            "blob".to_owned(),
            Value::String("x".repeat(MAX_EVENT_BYTES)),
        );
        let event = CloudEvent::new(
            EventId::new("e1").unwrap(),
            SOURCE,
            EventKind::ScanCompleted,
            UNIX_EPOCH,
            data,
        )
        .unwrap();
        assert!(matches!(
            event.to_json(),
            Err(CloudEventError::TooLarge {
                limit: MAX_EVENT_BYTES,
                ..
            })
        ));
    }

    proptest::proptest! {
        #[test]
        fn builders_never_panic(
            text in "\\PC{0,40}",
            any_text in ".{0,40}",
            seconds in proptest::num::u64::ANY,
        ) {
            let _ = is_uri_reference(&any_text);
            let _ = EventId::new(&any_text);
            let time = UNIX_EPOCH.checked_add(Duration::from_secs(seconds)).unwrap_or(UNIX_EPOCH);
            if let Ok(event) = CloudEvent::new(
                EventId::new("e1").unwrap(), &text, EventKind::PullDenied, time, Map::new(),
            ) {
                let _ = event.clone().with_subject(&any_text);
                let _ = event.with_extension(&text, ExtensionValue::String(any_text.clone()));
            }
        }
    }
}
