//! The evidence document a rule reads, and its shape.
//!
//! [`Evidence`] is everything Bonded knows about one image when a rule is evaluated: the image
//! itself, the vulnerability report, the packages and licenses of its SBOM, the verified
//! signatures and the verified provenance. It is built by the services that verified those
//! facts; policy code never verifies anything itself.
//!
//! Two kinds of `null` exist, and the difference decides verdicts:
//! - **Missing** facts: Bonded does not know yet (the image was not scanned, no SBOM was read,
//!   the signature records could not be read). These are absent from what a rule sees, so any
//!   rule that needs one cannot evaluate and comes out pending. They are never replaced by a
//!   guess such as zero findings or an empty package list.
//! - **Known nulls**: Bonded knows there is nothing (the image was pulled by digest so it has
//!   no tag, a finding has no fixed version, no VEX statement covers a finding). These are
//!   `null` values a rule can compare against.
//!
//! [`SHAPE`] describes the document field by field, with the kind of `null` each field may
//! hold. The rule analysis checks field names against it (a typo is a compile error), and
//! [`FactTree`] uses it to drop missing facts and keep known nulls. A test checks that the
//! shape and the serde structs agree.

use std::collections::BTreeMap;
use std::sync::Arc;

use ::cel::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Why an evidence document could not be turned into rule input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence could not be serialized: {reason}")]
    Serialize { reason: String },
    #[error("evidence field {path}: expected {expected}")]
    Shape {
        path: String,
        expected: &'static str,
    },
}

/// Everything known about one image, as rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub image: Image,
    /// `None`: not scanned yet (missing).
    #[serde(default)]
    pub vulnerabilities: Option<VulnerabilityReport>,
    /// `None`: no SBOM has been read (missing).
    #[serde(default)]
    pub packages: Option<Vec<Package>>,
    /// The licenses the SBOM declares. `None`: no SBOM has been read (missing).
    #[serde(default)]
    pub licenses: Option<Vec<String>>,
    /// Signatures verified against a configured trust authority; unverified ones are not
    /// listed. `None`: the signature records could not be read (missing). `Some([])`: none.
    #[serde(default)]
    pub signatures: Option<Vec<Signature>>,
    /// Verified build provenance. `None`: none has been verified (missing).
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// The image a rule is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub repository: String,
    /// `None`: the image was addressed by digest (a known null).
    #[serde(default)]
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
    /// The `created` time of the image configuration. `None`: unknown (missing).
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// The configuration's labels. `None`: the configuration was not read (missing).
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// `None`: unknown, for example for an index (missing).
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// `None`: the platform has no variant (a known null).
    #[serde(default)]
    pub variant: Option<String>,
}

/// A scan's result. The counts leave out findings a VEX statement resolves (`not_affected`,
/// `fixed`), so `critical == 0` agrees with `critical_ids().size() == 0`;
/// [`VulnerabilityReport::from_findings`] computes them that way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnerabilityReport {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub unknown: u64,
    pub total: u64,
    /// Open findings with a fixed version.
    pub fixable: u64,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub severity: Severity,
    pub package: String,
    /// `None`: no fix is known (a known null).
    #[serde(default)]
    pub fixed_version: Option<String>,
    /// `None`: no VEX statement covers this finding (a known null).
    #[serde(default)]
    pub vex_status: Option<VexStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Unknown,
}

/// OpenVEX statuses (OpenVEX specification, "Status Labels").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl Finding {
    /// Whether the finding still counts: no VEX statement says it does not apply.
    pub fn is_open(&self) -> bool {
        !matches!(
            self.vex_status,
            Some(VexStatus::NotAffected | VexStatus::Fixed)
        )
    }
}

impl VulnerabilityReport {
    /// A report whose counts are computed from `findings`, leaving out resolved ones.
    pub fn from_findings(findings: Vec<Finding>) -> VulnerabilityReport {
        let mut report = VulnerabilityReport {
            critical: 0,
            high: 0,
            medium: 0,
            low: 0,
            unknown: 0,
            total: 0,
            fixable: 0,
            findings: Vec::new(),
        };
        for finding in findings.iter().filter(|finding| finding.is_open()) {
            let count = match finding.severity {
                Severity::Critical => &mut report.critical,
                Severity::High => &mut report.high,
                Severity::Medium => &mut report.medium,
                Severity::Low => &mut report.low,
                Severity::Unknown => &mut report.unknown,
            };
            *count += 1;
            report.total += 1;
            if finding.fixed_version.is_some() {
                report.fixable += 1;
            }
        }
        report.findings = findings;
        report
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    /// `None`: the SBOM gives no version (a known null).
    #[serde(default)]
    pub version: Option<String>,
    /// `None`: the SBOM gives no package URL (a known null).
    #[serde(default)]
    pub purl: Option<String>,
}

/// A verified signature, named by the trust authority whose key verified it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub authority: String,
}

/// Verified build provenance (SLSA provenance v1 `builder.id` and the source it built).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub builder: String,
    /// `None`: the provenance does not say (missing).
    #[serde(default)]
    pub source_repository: Option<String>,
    /// `None`: the provenance does not say (missing).
    #[serde(default)]
    pub commit: Option<String>,
    /// The git ref built, for example `refs/heads/main`. `None`: not said (missing).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
}

/// The shape of one node of the evidence document.
#[derive(Debug)]
pub(crate) enum Shape {
    Object(&'static [Field]),
    List(&'static Shape),
    /// String keys to string values (labels): any key may be asked for.
    StringMap,
    String,
    Int,
    Timestamp,
}

/// One field of an object.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) shape: Shape,
    pub(crate) null: Null,
}

/// What a `null` in a field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Null {
    /// The field is never null.
    Never,
    /// A null is a missing fact: the field is left out of what the rule sees.
    Missing,
    /// A null is a known fact: the rule sees `null`.
    Known,
}

const fn field(name: &'static str, shape: Shape, null: Null) -> Field {
    Field { name, shape, null }
}

const STRINGS: Shape = Shape::List(&Shape::String);

const PLATFORM: &[Field] = &[
    field("os", Shape::String, Null::Never),
    field("architecture", Shape::String, Null::Never),
    field("variant", Shape::String, Null::Known),
];

const IMAGE: &[Field] = &[
    field("repository", Shape::String, Null::Never),
    field("tag", Shape::String, Null::Known),
    field("digest", Shape::String, Null::Never),
    field("media_type", Shape::String, Null::Never),
    field("created", Shape::Timestamp, Null::Missing),
    field("labels", Shape::StringMap, Null::Missing),
    field("platform", Shape::Object(PLATFORM), Null::Missing),
];

const FINDING: &[Field] = &[
    field("id", Shape::String, Null::Never),
    field("aliases", STRINGS, Null::Never),
    field("severity", Shape::String, Null::Never),
    field("package", Shape::String, Null::Never),
    field("fixed_version", Shape::String, Null::Known),
    field("vex_status", Shape::String, Null::Known),
];

const VULNERABILITIES: &[Field] = &[
    field("critical", Shape::Int, Null::Never),
    field("high", Shape::Int, Null::Never),
    field("medium", Shape::Int, Null::Never),
    field("low", Shape::Int, Null::Never),
    field("unknown", Shape::Int, Null::Never),
    field("total", Shape::Int, Null::Never),
    field("fixable", Shape::Int, Null::Never),
    field(
        "findings",
        Shape::List(&Shape::Object(FINDING)),
        Null::Never,
    ),
];

const PACKAGE: &[Field] = &[
    field("name", Shape::String, Null::Never),
    field("version", Shape::String, Null::Known),
    field("purl", Shape::String, Null::Known),
];

const SIGNATURE: &[Field] = &[field("authority", Shape::String, Null::Never)];

const PROVENANCE: &[Field] = &[
    field("builder", Shape::String, Null::Never),
    field("source_repository", Shape::String, Null::Missing),
    field("commit", Shape::String, Null::Missing),
    field("ref", Shape::String, Null::Missing),
];

/// The evidence document's top level, as serialized.
pub(crate) const SHAPE: Shape = Shape::Object(&[
    field("image", Shape::Object(IMAGE), Null::Never),
    field(
        "vulnerabilities",
        Shape::Object(VULNERABILITIES),
        Null::Missing,
    ),
    field(
        "packages",
        Shape::List(&Shape::Object(PACKAGE)),
        Null::Missing,
    ),
    field("licenses", STRINGS, Null::Missing),
    field(
        "signatures",
        Shape::List(&Shape::Object(SIGNATURE)),
        Null::Missing,
    ),
    field("provenance", Shape::Object(PROVENANCE), Null::Missing),
]);

/// The name rules use for the evaluation time.
pub(crate) const NOW: &str = "now";

/// A top-level name a rule may use (`image`, ..., `now`), with its shape.
pub(crate) fn root_field(name: &str) -> Option<(&'static str, &'static Shape)> {
    if name == NOW {
        return Some((NOW, &Shape::Timestamp));
    }
    match &SHAPE {
        Shape::Object(fields) => fields
            .iter()
            .find(|field| field.name == name)
            .map(|field| (field.name, &field.shape)),
        _ => None,
    }
}

/// The evidence as JSON with the missing facts left out and known nulls kept: what a rule
/// may read, and where the recorded facts are looked up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FactTree {
    root: serde_json::Map<String, Json>,
}

impl FactTree {
    /// The top-level fields of `evidence` named in `roots`; the others are not read, so a
    /// rule pays only for the facts it uses.
    pub(crate) fn new(evidence: &Evidence, roots: &[&str]) -> Result<FactTree, EvidenceError> {
        let Shape::Object(fields) = &SHAPE else {
            return Err(shape_error("", "an object"));
        };
        let mut root = serde_json::Map::new();
        for field in fields.iter().filter(|field| roots.contains(&field.name)) {
            match (top_level_json(evidence, field.name)?, field.null) {
                (Json::Null, Null::Missing) => {}
                (Json::Null, _) => return Err(shape_error(field.name, "a value, not null")),
                (json, _) => {
                    let json = prune(json, &field.shape, field.name)?;
                    root.insert(field.name.to_owned(), json);
                }
            }
        }
        Ok(FactTree { root })
    }

    pub(crate) fn root(&self) -> &serde_json::Map<String, Json> {
        &self.root
    }

    /// The top-level facts named in `names` that are present, as CEL values.
    pub(crate) fn variables(&self, names: &[&str]) -> Result<Vec<(&str, Value)>, EvidenceError> {
        let mut variables = Vec::with_capacity(names.len());
        for (name, value) in self
            .root
            .iter()
            .filter(|(name, _)| names.contains(&name.as_str()))
        {
            let (_, shape) = root_field(name).ok_or_else(|| shape_error(name, "a known field"))?;
            variables.push((name.as_str(), to_cel(value, shape, name)?));
        }
        Ok(variables)
    }
}

/// One top-level field of `evidence` as JSON.
fn top_level_json(evidence: &Evidence, name: &str) -> Result<Json, EvidenceError> {
    let json = match name {
        "image" => serde_json::to_value(&evidence.image),
        "vulnerabilities" => serde_json::to_value(&evidence.vulnerabilities),
        "packages" => serde_json::to_value(&evidence.packages),
        "licenses" => serde_json::to_value(&evidence.licenses),
        "signatures" => serde_json::to_value(&evidence.signatures),
        "provenance" => serde_json::to_value(&evidence.provenance),
        other => return Err(shape_error(other, "a top-level field of the evidence")),
    };
    json.map_err(|error| EvidenceError::Serialize {
        reason: error.to_string(),
    })
}

fn shape_error(path: &str, expected: &'static str) -> EvidenceError {
    EvidenceError::Shape {
        path: path.to_owned(),
        expected,
    }
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Drops the fields whose null means "missing"; rejects nulls where none may be.
fn prune(json: Json, shape: &Shape, path: &str) -> Result<Json, EvidenceError> {
    match (shape, json) {
        (Shape::Object(fields), Json::Object(object)) => {
            let mut kept = serde_json::Map::new();
            for (name, value) in object {
                let field_path = join_path(path, &name);
                let field = fields
                    .iter()
                    .find(|field| field.name == name)
                    .ok_or_else(|| shape_error(&field_path, "a field of the evidence shape"))?;
                match (&value, field.null) {
                    (Json::Null, Null::Missing) => {}
                    (Json::Null, Null::Known) => {
                        kept.insert(name, Json::Null);
                    }
                    (Json::Null, Null::Never) => {
                        return Err(shape_error(&field_path, "a value, not null"));
                    }
                    _ => {
                        let value = prune(value, &field.shape, &field_path)?;
                        kept.insert(name, value);
                    }
                }
            }
            Ok(Json::Object(kept))
        }
        (Shape::List(element), Json::Array(items)) => items
            .into_iter()
            .map(|item| prune(item, element, &format!("{path}[]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        (_, json) => Ok(json),
    }
}

/// Converts a pruned node into the CEL value a rule sees.
fn to_cel(json: &Json, shape: &Shape, path: &str) -> Result<Value, EvidenceError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    match shape {
        Shape::Object(fields) => {
            let object = json
                .as_object()
                .ok_or_else(|| shape_error(path, "an object"))?;
            let mut map = std::collections::HashMap::with_capacity(object.len());
            for (name, value) in object {
                let field_path = join_path(path, name);
                let field = fields
                    .iter()
                    .find(|field| field.name == name)
                    .ok_or_else(|| shape_error(&field_path, "a field of the evidence shape"))?;
                map.insert(name.clone(), to_cel(value, &field.shape, &field_path)?);
            }
            Ok(Value::from(map))
        }
        Shape::List(element) => {
            let items = json.as_array().ok_or_else(|| shape_error(path, "a list"))?;
            let element_path = format!("{path}[]");
            items
                .iter()
                .map(|item| to_cel(item, element, &element_path))
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Value::List(Arc::new(items)))
        }
        Shape::StringMap => {
            let object = json.as_object().ok_or_else(|| shape_error(path, "a map"))?;
            let mut map = std::collections::HashMap::with_capacity(object.len());
            for (key, value) in object {
                let value = value
                    .as_str()
                    .ok_or_else(|| shape_error(path, "string values"))?;
                map.insert(key.clone(), Value::String(Arc::new(value.to_owned())));
            }
            Ok(Value::from(map))
        }
        Shape::String => json
            .as_str()
            .map(|text| Value::String(Arc::new(text.to_owned())))
            .ok_or_else(|| shape_error(path, "a string")),
        Shape::Int => json
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| shape_error(path, "an integer up to 2^63-1")),
        Shape::Timestamp => json
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(Value::Timestamp)
            .ok_or_else(|| shape_error(path, "an RFC 3339 timestamp")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Evidence {
        Evidence {
            image: Image {
                repository: "prod/app".into(),
                tag: Some("v1.2.3".into()),
                digest: format!("sha256:{}", "a".repeat(64)),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                created: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()),
                labels: Some(BTreeMap::from([("team".into(), "payments".into())])),
                platform: Some(Platform {
                    os: "linux".into(),
                    architecture: "arm64".into(),
                    variant: Some("v8".into()),
                }),
            },
            vulnerabilities: Some(VulnerabilityReport::from_findings(vec![Finding {
                id: "CVE-2021-44228".into(),
                aliases: vec!["GHSA-jfh8-c2jp-5v3q".into()],
                severity: Severity::Critical,
                package: "log4j-core".into(),
                fixed_version: Some("2.15.0".into()),
                vex_status: Some(VexStatus::Affected),
            }])),
            packages: Some(vec![Package {
                name: "log4j-core".into(),
                version: Some("2.14.1".into()),
                purl: Some("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".into()),
            }]),
            licenses: Some(vec!["Apache-2.0".into()]),
            signatures: Some(vec![Signature {
                authority: "ci".into(),
            }]),
            provenance: Some(Provenance {
                builder: "https://gitlab.example.com/runner".into(),
                source_repository: Some("https://gitlab.example.com/app".into()),
                commit: Some("0123abc".into()),
                git_ref: Some("refs/heads/main".into()),
            }),
        }
    }

    fn roots() -> Vec<&'static str> {
        let Shape::Object(fields) = SHAPE else {
            panic!("the root is an object")
        };
        fields.iter().map(|field| field.name).collect()
    }

    fn empty() -> Evidence {
        let mut evidence = full();
        evidence.image.tag = None;
        evidence.image.created = None;
        evidence.image.labels = None;
        evidence.image.platform = None;
        evidence.vulnerabilities = None;
        evidence.packages = None;
        evidence.licenses = None;
        evidence.signatures = None;
        evidence.provenance = None;
        evidence
    }

    /// Every field the structs serialize is in the shape with a matching kind, and every
    /// field of the shape is serialized.
    fn assert_matches(json: &Json, shape: &Shape, path: &str) {
        match (shape, json) {
            (Shape::Object(fields), Json::Object(object)) => {
                let names: Vec<&str> = object.keys().map(String::as_str).collect();
                let mut expected: Vec<&str> = fields.iter().map(|field| field.name).collect();
                let mut names_sorted = names.clone();
                names_sorted.sort_unstable();
                expected.sort_unstable();
                assert_eq!(names_sorted, expected, "fields of {path}");
                for field in *fields {
                    assert_matches(
                        &object[field.name],
                        &field.shape,
                        &join_path(path, field.name),
                    );
                }
            }
            (Shape::List(element), Json::Array(items)) => {
                assert!(!items.is_empty(), "{path} needs an item to check");
                for item in items {
                    assert_matches(item, element, &format!("{path}[]"));
                }
            }
            (Shape::StringMap, Json::Object(object)) => {
                assert!(object.values().all(Json::is_string), "{path}");
            }
            (Shape::String, Json::String(_)) | (Shape::Int, Json::Number(_)) => {}
            (Shape::Timestamp, Json::String(text)) => {
                assert!(DateTime::parse_from_rfc3339(text).is_ok(), "{path}: {text}");
            }
            (shape, json) => panic!("{path}: {json} does not fit {shape:?}"),
        }
    }

    #[test]
    fn the_shape_describes_the_serialized_structs() {
        let json = serde_json::to_value(full()).unwrap();
        assert_matches(&json, &SHAPE, "");
    }

    #[test]
    fn every_null_the_structs_can_produce_is_declared_nullable() {
        let json = serde_json::to_value(empty()).unwrap();
        let Shape::Object(fields) = SHAPE else {
            panic!("the root is an object")
        };
        let mut nulls = Vec::new();
        for field in fields {
            if json[field.name].is_null() {
                nulls.push((field.name, field.null));
            }
        }
        let Shape::Object(image) = fields[0].shape else {
            panic!("image is an object")
        };
        for field in image {
            if json["image"][field.name].is_null() {
                nulls.push((field.name, field.null));
            }
        }
        assert_eq!(nulls.len(), 9, "{nulls:?}");
        assert!(
            nulls.iter().all(|(_, null)| *null != Null::Never),
            "{nulls:?}"
        );
    }

    #[test]
    fn missing_facts_are_dropped_and_known_nulls_kept() {
        let tree = FactTree::new(&empty(), &roots()).unwrap();
        let names: Vec<&str> = tree.root().keys().map(String::as_str).collect();
        assert_eq!(names, ["image"]);
        let image = tree.root()["image"].as_object().unwrap();
        assert_eq!(image.get("tag"), Some(&Json::Null), "a known null stays");
        assert!(!image.contains_key("created"), "a missing fact goes");
        assert!(!image.contains_key("labels"));
    }

    #[test]
    fn the_full_document_converts_to_cel_values() {
        let tree = FactTree::new(&full(), &roots()).unwrap();
        let variables = tree.variables(&roots()).unwrap();
        assert_eq!(variables.len(), 6);
        assert_eq!(tree.variables(&["image"]).unwrap().len(), 1);
        let partial = FactTree::new(&full(), &["signatures"]).unwrap();
        let names: Vec<&str> = partial.root().keys().map(String::as_str).collect();
        assert_eq!(names, ["signatures"]);
        let (_, image) = variables.iter().find(|(name, _)| *name == "image").unwrap();
        let Value::Map(image) = image else {
            panic!("image is a map")
        };
        assert!(matches!(
            image.get(&::cel::objects::Key::from("created")),
            Some(Value::Timestamp(_))
        ));
    }

    #[test]
    fn counts_leave_out_findings_vex_resolves() {
        let finding = |id: &str, severity, vex_status, fixed: Option<&str>| Finding {
            id: id.into(),
            aliases: Vec::new(),
            severity,
            package: "p".into(),
            fixed_version: fixed.map(Into::into),
            vex_status,
        };
        let report = VulnerabilityReport::from_findings(vec![
            finding("A", Severity::Critical, None, Some("1")),
            finding("B", Severity::Critical, Some(VexStatus::NotAffected), None),
            finding(
                "C",
                Severity::High,
                Some(VexStatus::UnderInvestigation),
                None,
            ),
            finding("D", Severity::Low, Some(VexStatus::Fixed), Some("2")),
        ]);
        assert_eq!(
            (
                report.critical,
                report.high,
                report.low,
                report.total,
                report.fixable
            ),
            (1, 1, 0, 2, 1)
        );
        assert_eq!(report.findings.len(), 4, "resolved findings stay listed");
    }
}
