//! Applying VEX statements to findings: the vendor's (kept in the DB) and the user's
//! (`--vex FILE`, OpenVEX or CycloneDX VEX). A statement applies to a finding when it names
//! one of the finding's ids (the id or an alias) and its product is the package, or its
//! product is the image (or the binary the package was found in) and a subcomponent is the
//! package. Products are compared as package URLs by type, namespace, name and, when the
//! statement gives one, version; qualifiers are ignored.
//!
//! `not_affected` and `fixed` mark the finding `not_affected` with the statement attached
//! (reports show it as analysed; counts and exit codes leave it out). `affected` and
//! `under_investigation` are recorded on the finding without changing its status. When
//! several statements apply, the user's files win over the DB, and among them the last
//! `--vex` given wins, so a user can override a vendor.

use crate::advisory::{VexStatement, VexStatus};
use crate::matcher::{Finding, FindingStatus, VexApplied};
use crate::model::Inventory;
use crate::report::purl::package_purl;

#[derive(Debug, thiserror::Error)]
pub enum VexError {
    #[error("{path}: not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: neither an OpenVEX document nor a CycloneDX BOM with vulnerabilities")]
    UnknownFormat { path: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The parts of a purl that identify a package.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PurlKey {
    ty: String,
    namespace: String,
    name: String,
    version: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_purl(purl: &str) -> Option<PurlKey> {
    let rest = purl.strip_prefix("pkg:")?.trim_start_matches('/');
    let rest = rest.split('#').next()?;
    let rest = rest.split('?').next()?;
    let (ty, path) = rest.split_once('/')?;
    let (path, version) = match path.rsplit_once('@') {
        // An `@` inside the namespace (npm scope) is percent-encoded, so the last `@` splits.
        Some((p, v)) => (p, Some(percent_decode(v))),
        None => (path, None),
    };
    let (namespace, name) = match path.rsplit_once('/') {
        Some((ns, n)) => (ns, n),
        None => ("", path),
    };
    let ty = ty.to_ascii_lowercase();
    let fold = |s: String| {
        if matches!(
            ty.as_str(),
            "pypi" | "npm" | "composer" | "deb" | "apk" | "golang"
        ) {
            s.to_ascii_lowercase()
        } else {
            s
        }
    };
    let name = percent_decode(name);
    let name = if ty == "pypi" {
        name.replace('_', "-")
    } else {
        name
    };
    Some(PurlKey {
        namespace: fold(percent_decode(namespace)),
        name: fold(name),
        version,
        ty,
    })
}

fn purl_matches(statement_purl: &str, package: &PurlKey) -> bool {
    let Some(s) = parse_purl(statement_purl) else {
        return false;
    };
    // Golang versions are written with and without the `v`.
    let same_version =
        |a: &str, b: &str| a == b || a.trim_start_matches('v') == b.trim_start_matches('v');
    s.ty == package.ty
        && s.name == package.name
        && s.namespace == package.namespace
        && match (&s.version, &package.version) {
            (None, _) => true,
            (Some(a), Some(b)) => same_version(a, b),
            (Some(_), None) => false,
        }
}

/// The image as a VEX product: `pkg:oci/<name>@<digest>` with any name, matched by digest.
fn is_image_product(product: &str, manifest_digest: Option<&str>) -> bool {
    match (parse_purl(product), manifest_digest) {
        (Some(p), Some(digest)) => p.ty == "oci" && p.version.as_deref() == Some(digest),
        _ => false,
    }
}

/// Applies `statements` (in increasing priority) to `findings`.
pub fn apply(
    findings: &mut [Finding],
    inventory: &Inventory,
    manifest_digest: Option<&str>,
    statements: &[VexStatement],
) {
    if statements.is_empty() {
        return;
    }
    let keys: Vec<Option<PurlKey>> = inventory
        .packages
        .iter()
        .map(|p| parse_purl(&package_purl(p, inventory.distro.as_ref()).to_string()))
        .collect();
    // Packages read from the same file (a Go binary and its modules) share a product.
    let mut by_evidence: std::collections::HashMap<&str, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, p) in inventory.packages.iter().enumerate() {
        by_evidence.entry(p.evidence.as_str()).or_default().push(i);
    }
    for finding in findings.iter_mut() {
        let Some(Some(key)) = keys.get(finding.package) else {
            continue;
        };
        let Some(package) = inventory.packages.get(finding.package) else {
            continue;
        };
        let matched_status = finding.status;
        for statement in statements {
            let names_finding = std::iter::once(&statement.vulnerability)
                .chain(&statement.aliases)
                .any(|id| finding.all_ids().any(|f| f.eq_ignore_ascii_case(id)));
            if !names_finding {
                continue;
            }
            let applies = if statement.subcomponents.is_empty() {
                statement.products.iter().any(|p| purl_matches(p, key))
            } else {
                let siblings = by_evidence
                    .get(package.evidence.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let product_here = statement.products.iter().any(|p| {
                    is_image_product(p, manifest_digest)
                        || siblings
                            .iter()
                            .filter_map(|&i| keys.get(i).and_then(Option::as_ref))
                            .any(|s| purl_matches(p, s))
                });
                product_here && statement.subcomponents.iter().any(|s| purl_matches(s, key))
            };
            if !applies {
                continue;
            }
            // The last statement that applies decides: `affected` after `not_affected` puts
            // the finding back.
            finding.status =
                if matches!(statement.status, VexStatus::NotAffected | VexStatus::Fixed) {
                    FindingStatus::NotAffected
                } else {
                    matched_status
                };
            finding.vex = Some(VexApplied {
                status: statement.status,
                justification: statement.justification.clone(),
                impact_statement: statement.impact_statement.clone(),
                document: statement.document.clone(),
                author: statement.author.clone(),
                timestamp: statement.timestamp.clone(),
            });
        }
    }
}

/// Matches `inventory` against `db`, then applies the DB's vendor VEX statements and after
/// them `extra` (the user's, in increasing priority, so they win).
pub fn match_with_vex(
    db: &crate::db::VulnDb,
    inventory: &Inventory,
    manifest_digest: Option<&str>,
    extra: &[VexStatement],
) -> Result<Vec<Finding>, crate::db::DbError> {
    let mut findings = crate::matcher::match_inventory(db, inventory)?;
    let mut ids: Vec<String> = findings
        .iter()
        .flat_map(|f| f.all_ids().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    let mut statements = db.vex_statements(&ids)?;
    statements.extend(extra.iter().cloned());
    apply(&mut findings, inventory, manifest_digest, &statements);
    Ok(findings)
}

/// Reads an OpenVEX document held in memory (the predicate of a VEX attestation); `name`
/// names it in messages.
pub fn read_openvex(name: &str, bytes: &[u8]) -> Result<Vec<VexStatement>, VexError> {
    let mut statements = Vec::new();
    let mut stats = crate::import::ImportStats::default();
    crate::import::openvex::import_bytes(
        std::path::Path::new(name),
        bytes,
        &mut |record| {
            if let crate::import::Record::Vex(v) = record {
                statements.push(v);
            }
            Ok(())
        },
        &mut stats,
    )
    .map_err(|e| VexError::Invalid {
        path: name.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(statements)
}

/// Reads a user VEX file: OpenVEX, or a CycloneDX BOM whose `vulnerabilities[]` carry
/// `analysis` (CycloneDX 1.4+ VEX). CycloneDX `affects[].ref` may be a `bom-ref` of a
/// component in the same document (its purl is used) or a purl itself.
pub fn read_file(path: &std::path::Path, bytes: &[u8]) -> Result<Vec<VexStatement>, VexError> {
    let name = path.display().to_string();
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| VexError::Json {
            path: name.clone(),
            source,
        })?;
    let is_openvex = doc
        .get("@context")
        .and_then(|c| c.as_str())
        .is_some_and(|c| c.contains("openvex"));
    if is_openvex {
        let mut statements = Vec::new();
        crate::import::import(path, crate::import::InputFormat::OpenVex, &mut |record| {
            if let crate::import::Record::Vex(v) = record {
                statements.push(v);
            }
            Ok(())
        })
        .map_err(|e| VexError::Invalid {
            path: name,
            reason: e.to_string(),
        })?;
        return Ok(statements);
    }
    if doc.get("bomFormat").and_then(|b| b.as_str()) == Some("CycloneDX") {
        return Ok(cyclonedx_statements(&doc, &name));
    }
    Err(VexError::UnknownFormat { path: name })
}

fn cyclonedx_statements(doc: &serde_json::Value, document: &str) -> Vec<VexStatement> {
    let mut purls = std::collections::HashMap::new();
    collect_component_purls(doc.get("components"), &mut purls);
    if let Some(c) = doc.pointer("/metadata/component") {
        collect_component_purls(Some(&serde_json::Value::Array(vec![c.clone()])), &mut purls);
    }
    let empty = Vec::new();
    let vulns = doc
        .get("vulnerabilities")
        .and_then(|v| v.as_array())
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for v in vulns {
        let Some(id) = v.get("id").and_then(|i| i.as_str()) else {
            continue;
        };
        let Some(state) = v.pointer("/analysis/state").and_then(|s| s.as_str()) else {
            continue;
        };
        // CycloneDX `impactAnalysisState` to the VEX status it means.
        let status = match state {
            "not_affected" | "false_positive" => VexStatus::NotAffected,
            "resolved" | "resolved_with_pedigree" => VexStatus::Fixed,
            "exploitable" => VexStatus::Affected,
            "in_triage" => VexStatus::UnderInvestigation,
            _ => continue,
        };
        let products: Vec<String> = v
            .get("affects")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("ref").and_then(|r| r.as_str()))
            .filter_map(|r| {
                if r.starts_with("pkg:") {
                    Some(r.to_owned())
                } else {
                    // `urn:cdx:<serial>/<version>#<bom-ref>` (BOM-Link) or a plain bom-ref.
                    let local = r.rsplit('#').next().unwrap_or(r);
                    purls.get(local).or_else(|| purls.get(r)).cloned()
                }
            })
            .collect();
        if products.is_empty() {
            continue;
        }
        let aliases = v
            .get("references")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .collect();
        out.push(VexStatement {
            vulnerability: id.to_owned(),
            aliases,
            products,
            subcomponents: Vec::new(),
            status,
            justification: v
                .pointer("/analysis/justification")
                .and_then(|j| j.as_str())
                .map(str::to_owned),
            impact_statement: v
                .pointer("/analysis/detail")
                .and_then(|d| d.as_str())
                .map(str::to_owned),
            action_statement: None,
            author: None,
            timestamp: doc
                .pointer("/metadata/timestamp")
                .and_then(|t| t.as_str())
                .map(str::to_owned),
            document: document.to_owned(),
        });
    }
    out
}

fn collect_component_purls(
    components: Option<&serde_json::Value>,
    out: &mut std::collections::HashMap<String, String>,
) {
    for c in components.and_then(|c| c.as_array()).into_iter().flatten() {
        if let (Some(r), Some(p)) = (
            c.get("bom-ref").and_then(|r| r.as_str()),
            c.get("purl").and_then(|p| p.as_str()),
        ) {
            out.insert(r.to_owned(), p.to_owned());
        }
        collect_component_purls(c.get("components"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_comparison() {
        let key = parse_purl("pkg:npm/%40angular/core@12.0.0").unwrap();
        assert_eq!(key.namespace, "@angular");
        assert!(purl_matches("pkg:npm/%40angular/core", &key));
        assert!(
            !purl_matches("pkg:npm/core", &key),
            "no namespace is not any namespace"
        );
        assert!(purl_matches("pkg:npm/%40angular/core@12.0.0?foo=bar", &key));
        assert!(!purl_matches("pkg:npm/%40angular/core@12.0.1", &key));
        let go = parse_purl("pkg:golang/github.com/x/net@v0.17.0").unwrap();
        assert!(purl_matches("pkg:golang/github.com/x/net@0.17.0", &go));
    }
}
