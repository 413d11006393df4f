//! The audit entry: what the log records about one outbox event, and its canonical bytes.
//!
//! An entry is a JSON object built from a [`store::EventRow`] (issue 5, "Audit log"):
//!
//! ```text
//! {"action":       the event kind ("artifact.pushed", "promotion.rejected", ...),
//!  "actor":        the event's actor object ({"kind":"anonymous","addr",...}), or
//!                  {"kind":"system"} for work with no request behind it,
//!  "correlation":  {"event_id": the stable outbox id, "request_id": the actor's, or null},
//!  "data":         the event's type-specific data, as stored,
//!  "decision":     {"rule","verdict","facts","policy_digest"} copied from data.decision
//!                  (promotions, pulls denied), or null,
//!  "outcome":      "success" | "denied" | "rejected" | "pending" | "failure",
//!  "resource":     {"repository","tag","digest"}, each null when the event has none,
//!  "time":         when the event was committed, Unix seconds (UTC),
//!  "version":      1, the version of this format}
//! ```
//!
//! Its position in the log (the leaf index) is not part of the entry: the Merkle tree already
//! binds each entry to its index, and the entry's bytes can be made before the store assigns
//! the index.
//!
//! Canonical bytes: RFC 8785, the JSON Canonicalization Scheme (JCS): no white space, object
//! members sorted by the UTF-16 code units of their names, strings with the minimal escapes
//! of ECMAScript's `JSON.stringify`, numbers in ECMAScript's shortest form. JCS rather than
//! "serde_json with sorted keys" because that second form is not a specification anyone else
//! can implement (it depends on serde_json's formatting of floats, which differs from every
//! other language's), and because serde_json's key order silently becomes insertion order when
//! any crate in the build enables its `preserve_order` feature; JCS sorts by itself. The
//! `serde_json_canonicalizer` crate implements it (checked against the RFC's and cyberphone's
//! test data in that crate). As in JavaScript, integers beyond 2^53 lose precision, which
//! Bonded's event data never holds.
//!
//! The stored bytes are what the tree hashes, so a verifier needs no canonicalizer: it hashes
//! the bytes as stored. Canonical form matters to whoever rebuilds an entry from its parts
//! (an auditor recomputing an entry from the event it cites), and it makes the entry of an
//! event the same bytes every time it is built.

use serde::Serialize;
use serde_json::{Map, Value};
use store::{EventRow, NewAuditEntry};

use crate::merkle::leaf_hash;

/// The version of the entry format written today.
pub const ENTRY_VERSION: u64 = 1;

/// Why an entry could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the audit entry of event {event_id} cannot be written as canonical JSON: {source}")]
pub struct EntryError {
    pub event_id: String,
    #[source]
    pub source: serde_json::Error,
}

/// One audit entry (see the module documentation for its JSON form).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub version: u64,
    pub time: i64,
    pub actor: Value,
    pub action: String,
    pub resource: Resource,
    pub outcome: Outcome,
    pub decision: Option<Decision>,
    pub correlation: Correlation,
    pub data: Value,
}

/// What the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// How the action ended, from the event kind's last word: `*.denied`, `*.rejected`,
/// `*.pending` and `*.failed` say so; every other event records a change that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Rejected,
    Pending,
    Failure,
}

impl Outcome {
    fn of_kind(kind: &str) -> Outcome {
        match kind.rsplit('.').next() {
            Some("denied") => Outcome::Denied,
            Some("rejected") => Outcome::Rejected,
            Some("pending") => Outcome::Pending,
            Some("failed") => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

/// A policy decision, as the promotion and pull policies record it in `data.decision`.
/// Fields the event lacks are null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub rule: Value,
    pub verdict: Value,
    pub facts: Value,
    pub policy_digest: Value,
}

/// What ties the entry to the rest of the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correlation {
    pub event_id: String,
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// The entry of `event`. Never fails: an actor or data column that is not JSON (which
    /// Bonded never writes) is recorded as the string it is.
    pub fn from_event(event: &EventRow) -> AuditEntry {
        let actor = match &event.actor {
            None => serde_json::json!({"kind": "system"}),
            Some(text) => json_or_string(text),
        };
        let data = json_or_string(&event.data);
        let request_id = actor
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        AuditEntry {
            version: ENTRY_VERSION,
            time: event.created_at,
            decision: data
                .get("decision")
                .and_then(Value::as_object)
                .map(Decision::from_object),
            actor,
            action: event.kind.clone(),
            resource: Resource {
                repository: event.repository.clone(),
                tag: event.tag.clone(),
                digest: event.digest.clone(),
            },
            outcome: Outcome::of_kind(&event.kind),
            correlation: Correlation {
                event_id: event.id.clone(),
                request_id,
            },
            data,
        }
    }

    /// The RFC 8785 canonical JSON bytes: the Merkle leaf data.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, EntryError> {
        serde_json_canonicalizer::to_vec(self).map_err(|source| EntryError {
            event_id: self.correlation.event_id.clone(),
            source,
        })
    }

    /// The row the store appends: the canonical bytes, their leaf hash, and the fields the
    /// audit API filters on.
    pub fn to_new_entry(&self) -> Result<NewAuditEntry, EntryError> {
        let entry = self.canonical_bytes()?;
        Ok(NewAuditEntry {
            event_id: self.correlation.event_id.clone(),
            leaf_hash: leaf_hash(&entry),
            entry,
            time: self.time,
            action: self.action.clone(),
            repository: self.resource.repository.clone(),
            digest: self.resource.digest.clone(),
            actor: Some(self.actor.to_string()),
        })
    }
}

impl Decision {
    fn from_object(decision: &Map<String, Value>) -> Decision {
        let field = |name: &str| decision.get(name).cloned().unwrap_or(Value::Null);
        Decision {
            rule: field("rule"),
            verdict: field("verdict"),
            facts: field("facts"),
            policy_digest: field("policy_digest"),
        }
    }
}

fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
