//! The functions rules may call besides CEL's standard ones, for checks that are clumsy in
//! CEL alone.
//!
//! - `signed_by(authority)`: a verified signature from that trust authority exists.
//! - `has_package(name)`: the SBOM lists a package with exactly that name.
//! - `license_in(allowed)`: every license the SBOM declares is in `allowed`. SPDX license
//!   identifiers match case-insensitively (SPDX specification 2.3, annex D: "License
//!   identifiers ... must be matched in a case-insensitive manner"), so the comparison
//!   ignores ASCII case. An SBOM license expression such as `MIT OR Apache-2.0` is compared
//!   as one string; it is not split.
//! - `semver_satisfies(version, range)`: see [`tag_version`] for how a tag is read as a
//!   version. The range uses the `semver` crate's syntax, which is Cargo's: comparators
//!   separated by commas are all required (`>=1.2, <2`), and a bare version is a caret range
//!   (`1.2` means `>=1.2.0, <2.0.0`); write `=1.2.3` for one exact version. A tag that is not
//!   a version (`latest`), or no tag at all (`null`, for a pull by digest), satisfies no
//!   range. An invalid range is an error, found at compile time when it is a literal.
//! - `critical_ids()`: the ids of the critical findings no VEX statement resolves, in report
//!   order without repeats, for messages such as
//!   `'critical findings: ' + critical_ids().join(', ')`.
//! - `list.join(separator)`: the strings of a list joined by `separator` (CEL's strings
//!   extension has it too, but that extension also brings functions rules don't need).
//!
//! Every helper that reads a fact fails with a "missing fact" error when that fact is
//! missing, so a rule that needs it comes out pending instead of guessing.

use std::collections::BTreeSet;
use std::sync::Arc;

use ::cel::extractors::This;
use ::cel::{Context, DeclarationError, ExecutionError, Value};
use semver::{Version, VersionReq};

use super::evidence::{Evidence, Severity};

/// A helper function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Helper {
    SignedBy,
    HasPackage,
    LicenseIn,
    SemverSatisfies,
    CriticalIds,
}

/// The `list.join(separator)` method.
pub(crate) const JOIN: &str = "join";

impl Helper {
    const ALL: [Helper; 5] = [
        Helper::SignedBy,
        Helper::HasPackage,
        Helper::LicenseIn,
        Helper::SemverSatisfies,
        Helper::CriticalIds,
    ];

    pub(crate) fn from_name(name: &str) -> Option<Helper> {
        Helper::ALL.into_iter().find(|helper| helper.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Helper::SignedBy => "signed_by",
            Helper::HasPackage => "has_package",
            Helper::LicenseIn => "license_in",
            Helper::SemverSatisfies => "semver_satisfies",
            Helper::CriticalIds => "critical_ids",
        }
    }

    pub(crate) fn arity(self) -> usize {
        match self {
            Helper::CriticalIds => 0,
            Helper::SemverSatisfies => 2,
            Helper::SignedBy | Helper::HasPackage | Helper::LicenseIn => 1,
        }
    }

    /// The evidence fact the helper reads, as field names from the top.
    pub(crate) fn reads(self) -> &'static [&'static str] {
        match self {
            Helper::SignedBy => &["signatures"],
            Helper::HasPackage => &["packages"],
            Helper::LicenseIn => &["licenses"],
            Helper::CriticalIds => &["vulnerabilities", "findings"],
            Helper::SemverSatisfies => &[],
        }
    }

    fn missing(self) -> ExecutionError {
        ExecutionError::function_error(
            self.name(),
            format!("the fact {} is missing", self.reads().join(".")),
        )
    }
}

/// A helper call whose arguments are all literals, so its result is a fact worth recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LiteralCall {
    SignedBy(String),
    HasPackage(String),
    LicenseIn(Vec<String>),
    CriticalIds,
}

impl LiteralCall {
    /// The call as a rule would write it, with JSON string quoting.
    pub(crate) fn render(&self) -> String {
        let quote = |text: &str| serde_json::Value::from(text).to_string();
        match self {
            LiteralCall::SignedBy(authority) => format!("signed_by({})", quote(authority)),
            LiteralCall::HasPackage(name) => format!("has_package({})", quote(name)),
            LiteralCall::LicenseIn(allowed) => {
                let allowed: Vec<String> = allowed.iter().map(|license| quote(license)).collect();
                format!("license_in([{}])", allowed.join(", "))
            }
            LiteralCall::CriticalIds => "critical_ids()".to_owned(),
        }
    }

    /// The call's result on `facts`; `None` when the fact it reads is missing.
    pub(crate) fn result(&self, facts: &HelperFacts) -> Option<serde_json::Value> {
        match self {
            LiteralCall::SignedBy(authority) => facts.signed_by(authority).map(Into::into),
            LiteralCall::HasPackage(name) => facts.has_package(name).map(Into::into),
            LiteralCall::LicenseIn(allowed) => facts.license_in(allowed).map(Into::into),
            LiteralCall::CriticalIds => facts.critical_ids().map(Into::into),
        }
    }
}

/// What the helpers read, taken from the evidence once per evaluation. `None` is a missing
/// fact, or one no helper the rule calls reads: the analysis lists every helper a rule
/// calls (CEL cannot call a function by a computed name), and only those are prepared.
#[derive(Debug)]
pub(crate) struct HelperFacts {
    authorities: Option<BTreeSet<String>>,
    packages: Option<BTreeSet<String>>,
    licenses: Option<Vec<String>>,
    critical_ids: Option<Vec<String>>,
}

impl HelperFacts {
    pub(crate) fn new(evidence: &Evidence, helpers: &[Helper]) -> HelperFacts {
        let uses = |helper| helpers.contains(&helper);
        HelperFacts {
            authorities: evidence
                .signatures
                .as_ref()
                .filter(|_| uses(Helper::SignedBy))
                .map(|signatures| {
                    signatures
                        .iter()
                        .map(|signature| signature.authority.clone())
                        .collect()
                }),
            packages: evidence
                .packages
                .as_ref()
                .filter(|_| uses(Helper::HasPackage))
                .map(|packages| {
                    packages
                        .iter()
                        .map(|package| package.name.clone())
                        .collect()
                }),
            licenses: evidence
                .licenses
                .clone()
                .filter(|_| uses(Helper::LicenseIn)),
            critical_ids: evidence
                .vulnerabilities
                .as_ref()
                .filter(|_| uses(Helper::CriticalIds))
                .map(|report| {
                    let mut seen = BTreeSet::new();
                    report
                        .findings
                        .iter()
                        .filter(|finding| {
                            finding.severity == Severity::Critical && finding.is_open()
                        })
                        .filter(|finding| seen.insert(finding.id.as_str()))
                        .map(|finding| finding.id.clone())
                        .collect()
                }),
        }
    }

    fn signed_by(&self, authority: &str) -> Option<bool> {
        self.authorities
            .as_ref()
            .map(|authorities| authorities.contains(authority))
    }

    fn has_package(&self, name: &str) -> Option<bool> {
        self.packages
            .as_ref()
            .map(|packages| packages.contains(name))
    }

    fn license_in(&self, allowed: &[String]) -> Option<bool> {
        self.licenses.as_ref().map(|licenses| {
            licenses.iter().all(|license| {
                allowed
                    .iter()
                    .any(|permitted| permitted.eq_ignore_ascii_case(license))
            })
        })
    }

    fn critical_ids(&self) -> Option<&[String]> {
        self.critical_ids.as_deref()
    }
}

/// Adds the helpers, reading `facts`, to a rule's context.
pub(crate) fn register(
    context: &mut Context<'_, '_>,
    facts: &Arc<HelperFacts>,
) -> Result<(), DeclarationError> {
    let read = Arc::clone(facts);
    context.add_function(
        Helper::SignedBy.name(),
        move |authority: Arc<String>| -> Result<bool, ExecutionError> {
            read.signed_by(&authority)
                .ok_or_else(|| Helper::SignedBy.missing())
        },
    )?;
    let read = Arc::clone(facts);
    context.add_function(
        Helper::HasPackage.name(),
        move |name: Arc<String>| -> Result<bool, ExecutionError> {
            read.has_package(&name)
                .ok_or_else(|| Helper::HasPackage.missing())
        },
    )?;
    let read = Arc::clone(facts);
    context.add_function(
        Helper::LicenseIn.name(),
        move |allowed: Arc<Vec<Value>>| -> Result<bool, ExecutionError> {
            let allowed = strings(Helper::LicenseIn.name(), &allowed)?;
            read.license_in(&allowed)
                .ok_or_else(|| Helper::LicenseIn.missing())
        },
    )?;
    context.add_function(Helper::SemverSatisfies.name(), satisfies_value)?;
    let read = Arc::clone(facts);
    context.add_function(
        Helper::CriticalIds.name(),
        move || -> Result<Value, ExecutionError> {
            let ids = read
                .critical_ids()
                .ok_or_else(|| Helper::CriticalIds.missing())?;
            Ok(Value::List(Arc::new(
                ids.iter()
                    .map(|id| Value::String(Arc::new(id.clone())))
                    .collect(),
            )))
        },
    )?;
    context.add_function(JOIN, join)?;
    Ok(())
}

fn satisfies_value(version: Value, range: Arc<String>) -> Result<bool, ExecutionError> {
    let name = Helper::SemverSatisfies.name();
    let range =
        VersionReq::parse(&range).map_err(|error| ExecutionError::function_error(name, error))?;
    match version {
        Value::String(version) => Ok(satisfies(&version, &range)),
        Value::Null => Ok(false),
        other => Err(ExecutionError::function_error(
            name,
            format!(
                "the version must be a string or null, not {}",
                other.type_of()
            ),
        )),
    }
}

fn join(
    This(items): This<Arc<Vec<Value>>>,
    separator: Arc<String>,
) -> Result<Value, ExecutionError> {
    let items = strings(JOIN, &items)?;
    Ok(Value::String(Arc::new(items.join(separator.as_str()))))
}

fn strings(function: &str, items: &[Value]) -> Result<Vec<String>, ExecutionError> {
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(text.to_string()),
            other => Err(ExecutionError::function_error(
                function,
                format!("expected a list of strings, found a {}", other.type_of()),
            )),
        })
        .collect()
}

/// Reads an image tag as a semantic version, or `None` when it is not one.
///
/// Image tags are often versions written loosely, so one leading `v` is dropped (`v1.2.3`),
/// and a tag of bare numbers may leave out the minor and patch numbers (`1.2` is `1.2.0`,
/// `3` is `3.0.0`). Otherwise the tag must be a SemVer 2.0.0 version (semver.org): three
/// numbers without leading zeros, then an optional pre-release after `-` and build metadata
/// after `+`. So a suffixed tag needs all three numbers: `1.2.3-alpine` is a version whose
/// pre-release is `alpine`, while `1.25-alpine` and `2024-01-01` are not versions. SemVer
/// ranges only match a pre-release when they name one of the same version, so `>=1.2` does
/// not match `1.2.3-alpine` (`>=1.2.3-a` does). `latest`, `stable` and four-part versions
/// are not versions.
pub fn tag_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    let suffixed = text.contains(['-', '+']);
    let padding = match (text.split('.').count(), suffixed) {
        (1, false) => ".0.0",
        (2, false) => ".0",
        _ => "",
    };
    Version::parse(&format!("{text}{padding}")).ok()
}

/// Whether the tag `version`, read by [`tag_version`], is in `range`.
pub fn satisfies(version: &str, range: &VersionReq) -> bool {
    tag_version(version).is_some_and(|version| range.matches(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_read_as_versions() {
        let cases = [
            ("1.2.3", Some("1.2.3")),
            ("v1.2.3", Some("1.2.3")),
            ("1.2", Some("1.2.0")),
            ("v2", Some("2.0.0")),
            ("1.2.3-alpine", Some("1.2.3-alpine")),
            ("1.2-rc.1", None),
            ("1.25-alpine", None),
            ("3", Some("3.0.0")),
            ("1.2.3+build.5", Some("1.2.3+build.5")),
            ("latest", None),
            ("", None),
            ("v", None),
            ("vv1.2.3", None),
            ("1.2.3.4", None),
            ("01.2.3", None),
            ("2024-01-01", None),
            ("1..2", None),
            ("V1.2.3", None),
        ];
        for (tag, expected) in cases {
            let found = tag_version(tag).map(|version| version.to_string());
            assert_eq!(found.as_deref(), expected, "{tag}");
        }
    }

    #[test]
    fn ranges_follow_semver() {
        let cases = [
            ("1.2.0", ">=1.2", true),
            ("v1.10.0", ">=1.2, <2", true),
            ("2.0.0", ">=1.2, <2", false),
            ("1.2", "=1.2.0", true),
            ("1.3.0", "1.2", true),
            ("2.0.0", "1.2", false),
            ("1.2.3-alpine", ">=1.2", false),
            ("1.2.3-alpine", ">=1.2.3-a", true),
            ("latest", ">=0.0.0", false),
        ];
        for (tag, range, expected) in cases {
            let range = VersionReq::parse(range).unwrap();
            assert_eq!(satisfies(tag, &range), expected, "{tag} in {range}");
        }
    }

    #[test]
    fn npm_style_alternatives_are_not_a_range() {
        assert!(VersionReq::parse("^1 || ^2").is_err());
    }
}
