//! CycloneDX 1.6 JSON (`bom-1.6.schema.json`): the image as `metadata.component` (type
//! `container`), every package as a `library` component with `bom-ref`, `purl`, licences and
//! its layer as properties, and, for a scan, `vulnerabilities[]` whose `affects[].ref` points
//! at the component. A fixed version is written as an `unaffected` entry of
//! `affects[].versions` (the 1.6 schema's way to say which versions are not affected); a VEX
//! statement that applied becomes the vulnerability's `analysis`.

use serde_json::{Value, json};

use crate::advisory::{Severity, VexStatus};
use crate::matcher::{Finding, FindingStatus};
use crate::report::{Report, TOOL_NAME, TOOL_VERSION, package_ref, purl};

pub fn render(report: &Report<'_>) -> Value {
    let inv = report.inventory;
    let image_ref = "image";
    let mut image = json!({
        "bom-ref": image_ref,
        "type": "container",
        "name": report.image.name,
    });
    if let Some(digest) = &report.image.manifest_digest {
        image["version"] = json!(digest);
    }
    let mut image_props =
        vec![json!({"name": "bonded:image:config_digest", "value": report.image.config_digest})];
    if let Some(p) = &report.image.platform {
        image_props.push(json!({"name": "bonded:image:platform", "value": p}));
    }
    if let Some(d) = &inv.distro {
        image_props.push(json!({"name": "bonded:os:id", "value": d.id}));
        image_props.push(json!({"name": "bonded:os:version_id", "value": d.version_id}));
    }
    image["properties"] = json!(image_props);

    let components: Vec<Value> = inv
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = json!({
                "bom-ref": package_ref(i, p, inv),
                "type": "library",
                "name": p.name,
                "version": p.version,
                "purl": purl::package_purl(p, inv.distro.as_ref()).to_string(),
            });
            if let Some(ns) = &p.namespace {
                c["group"] = json!(ns);
            }
            if !p.licenses.is_empty() {
                c["licenses"] = json!(
                    p.licenses
                        .iter()
                        .map(|l| json!({"license": {"name": l}}))
                        .collect::<Vec<_>>()
                );
            }
            let mut props = vec![
                json!({"name": "bonded:package:type", "value": p.kind.as_str()}),
                json!({"name": "bonded:package:evidence", "value": p.evidence}),
            ];
            if let Some(layer) = p
                .layer
                .and_then(|l| inv.layers.get(l).map(|info| (l, info)))
            {
                props.push(json!({"name": "bonded:layer:index", "value": layer.0.to_string()}));
                props.push(json!({"name": "bonded:layer:digest", "value": layer.1.digest}));
                if let Some(diff_id) = &layer.1.diff_id {
                    props.push(json!({"name": "bonded:layer:diff_id", "value": diff_id}));
                }
            }
            if let Some(s) = &p.source_name {
                props.push(json!({"name": "bonded:package:source_name", "value": s}));
            }
            if let Some(s) = &p.source_version {
                props.push(json!({"name": "bonded:package:source_version", "value": s}));
            }
            if let Some(o) = &p.owner {
                props.push(json!({"name": "bonded:package:owner", "value": o}));
            }
            c["properties"] = json!(props);
            c
        })
        .collect();

    let mut metadata = json!({
        "timestamp": report.timestamp,
        "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": TOOL_VERSION}]},
        "component": image,
    });
    if let Some(db) = report.db {
        metadata["properties"] = json!([
            {"name": "bonded:db:version", "value": db.version},
            {"name": "bonded:db:built_at", "value": db.built_at},
        ]);
    }
    let mut bom = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", report.document_id),
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": [{
            "ref": image_ref,
            "dependsOn": inv.packages.iter().enumerate().map(|(i, p)| package_ref(i, p, inv)).collect::<Vec<_>>(),
        }],
    });
    if let Some(findings) = report.findings {
        bom["vulnerabilities"] = json!(
            findings
                .iter()
                .enumerate()
                .filter_map(|(i, f)| vulnerability(report, i, f))
                .collect::<Vec<_>>()
        );
    }
    bom
}

fn vulnerability(report: &Report<'_>, index: usize, f: &Finding) -> Option<Value> {
    let inv = report.inventory;
    let package = inv.packages.get(f.package)?;
    let source = f
        .evidence
        .first()
        .map(|e| e.source.clone())
        .unwrap_or_else(|| "unknown".into());
    let mut versions = vec![
        json!({"version": package.version, "status": if f.status == FindingStatus::NotAffected { "unaffected" } else { "affected" }}),
    ];
    if let Some(fixed) = &f.fixed_version {
        versions.push(json!({"version": fixed, "status": "unaffected"}));
    }
    let mut v = json!({
        "bom-ref": format!("vuln-{index}-{}", f.id),
        "id": f.id,
        "source": {"name": source},
        "ratings": ratings(f),
        "affects": [{"ref": package_ref(f.package, package, inv), "versions": versions}],
        "properties": [{"name": "bonded:status", "value": f.status.as_str()}],
    });
    if !f.aliases.is_empty() {
        v["references"] = json!(
            f.aliases
                .iter()
                .map(|a| json!({"id": a, "source": {"name": alias_source(a)}}))
                .collect::<Vec<_>>()
        );
    }
    if let Some(summary) = &f.summary {
        v["description"] = json!(summary);
    }
    if let Some(fixed) = &f.fixed_version {
        v["recommendation"] = json!(format!("Upgrade {} to {fixed} or later.", package.name));
        if let Some(props) = v["properties"].as_array_mut() {
            props.push(json!({"name": "bonded:fixed_version", "value": fixed}));
        }
    }
    let advisories: Vec<Value> = f
        .references
        .iter()
        .filter(|r| r.starts_with("http"))
        .map(|r| json!({"url": r}))
        .collect();
    if !advisories.is_empty() {
        v["advisories"] = json!(advisories);
    }
    if let Some(vex) = &f.vex {
        let mut analysis = json!({"state": match vex.status {
            VexStatus::NotAffected => "not_affected",
            VexStatus::Fixed => "resolved",
            VexStatus::Affected => "exploitable",
            VexStatus::UnderInvestigation => "in_triage",
        }});
        if let Some(j) = vex.justification.as_deref().and_then(cdx_justification) {
            analysis["justification"] = json!(j);
        }
        let mut detail = format!("VEX statement from {}", vex.document);
        if let Some(impact) = &vex.impact_statement {
            detail.push_str(": ");
            detail.push_str(impact);
        }
        analysis["detail"] = json!(detail);
        v["analysis"] = analysis;
    }
    Some(v)
}

fn ratings(f: &Finding) -> Vec<Value> {
    let mut out: Vec<Value> = f
        .ratings
        .iter()
        .map(|r| {
            let mut rating = json!({"source": {"name": r.source}});
            if let Some(score) = r.score {
                rating["score"] = json!(score);
            }
            if let Some(level) = r.level.or(r.score.map(Severity::from_cvss_score)) {
                rating["severity"] = json!(level.as_str().to_ascii_lowercase());
            }
            let method = match (r.method.as_deref(), r.vector.as_deref()) {
                (_, Some(v)) if v.starts_with("CVSS:3.1") => "CVSSv31",
                (_, Some(v)) if v.starts_with("CVSS:3.0") => "CVSSv3",
                (_, Some(v)) if v.starts_with("CVSS:4") => "CVSSv4",
                (Some("CVSS_V2"), _) => "CVSSv2",
                _ => "other",
            };
            rating["method"] = json!(method);
            if let Some(vector) = &r.vector {
                rating["vector"] = json!(vector);
            }
            rating
        })
        .collect();
    if out.is_empty() || f.severity_source.is_some() {
        out.insert(
            0,
            json!({
                "source": {"name": f.severity_source.clone().unwrap_or_else(|| "bonded".into())},
                "severity": f.severity.as_str().to_ascii_lowercase(),
                "method": "other",
            }),
        );
    }
    out
}

fn alias_source(id: &str) -> &'static str {
    match id.split('-').next().unwrap_or_default() {
        "CVE" => "NVD",
        "GHSA" => "GitHub Advisory Database",
        "PYSEC" => "PyPA Advisory Database",
        "RUSTSEC" => "RustSec Advisory Database",
        "GO" => "Go Vulnerability Database",
        "DSA" | "DLA" => "Debian Security Tracker",
        _ => "OSV",
    }
}

/// OpenVEX justifications (OpenVEX spec, "Status Justifications") in CycloneDX's vocabulary
/// (`impactAnalysisJustification`).
fn cdx_justification(openvex: &str) -> Option<&'static str> {
    Some(match openvex {
        "component_not_present" | "vulnerable_code_not_present" | "code_not_present" => {
            "code_not_present"
        }
        "vulnerable_code_not_in_execute_path" | "code_not_reachable" => "code_not_reachable",
        "vulnerable_code_cannot_be_controlled_by_adversary" | "requires_environment" => {
            "requires_environment"
        }
        "inline_mitigations_already_exist" | "protected_by_mitigating_control" => {
            "protected_by_mitigating_control"
        }
        "requires_configuration" => "requires_configuration",
        "requires_dependency" => "requires_dependency",
        "protected_by_compiler" => "protected_by_compiler",
        "protected_at_runtime" => "protected_at_runtime",
        "protected_at_perimeter" => "protected_at_perimeter",
        _ => return None,
    })
}
