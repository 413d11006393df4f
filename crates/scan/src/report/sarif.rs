//! SARIF 2.1.0 (OASIS `sarif-schema-2.1.0.json`), the format code-scanning dashboards read:
//! one rule per vulnerability id, one result per finding, located at the file the package was
//! read from. `security-severity` carries the CVSS-like score GitHub uses to rank results.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::advisory::Severity;
use crate::matcher::FindingStatus;
use crate::report::{Report, TOOL_NAME, TOOL_VERSION};

pub fn render(report: &Report<'_>) -> Value {
    let inv = report.inventory;
    let findings = report.findings.unwrap_or_default();
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for f in findings
        .iter()
        .filter(|f| f.status != FindingStatus::NotAffected)
    {
        let Some(p) = inv.packages.get(f.package) else {
            continue;
        };
        let score = f
            .ratings
            .iter()
            .filter_map(|r| r.score)
            .fold(None, |best: Option<f32>, s| {
                Some(best.map_or(s, |b| b.max(s)))
            })
            .unwrap_or(match f.severity {
                Severity::Critical => 9.5,
                Severity::High => 8.0,
                Severity::Medium => 5.5,
                Severity::Low => 2.0,
                Severity::Unknown => 0.0,
            });
        rules.entry(f.id.as_str()).or_insert_with(|| {
            json!({
                "id": f.id,
                "name": "VulnerablePackage",
                "shortDescription": {"text": f.summary.clone().unwrap_or_else(|| f.id.clone())},
                "help": {"text": format!("{} (aliases: {})", f.id, f.aliases.join(", "))},
                "properties": {
                    "security-severity": format!("{score:.1}"),
                    "tags": ["vulnerability", "security", f.severity.as_str()],
                },
            })
        });
        let fix = match &f.fixed_version {
            Some(v) => format!("Fixed in {v}."),
            None => format!("Status: {}.", f.status.as_str().replace('_', " ")),
        };
        results.push(json!({
            "ruleId": f.id,
            "level": match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low | Severity::Unknown => "note",
            },
            "message": {"text": format!("{} {} is affected by {} ({}). {fix}", p.name, p.version, f.id, f.severity.as_str())},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": p.evidence}},
                "message": {"text": format!("{} {} in {}", p.name, p.version, report.image.name)},
            }],
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": TOOL_VERSION,
                "informationUri": "https://github.com/bonded-dev/bonded",
                "rules": rules.into_values().collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}
