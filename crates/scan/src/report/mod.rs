//! Output formats. Every format is built from one [`Report`]: the image, its inventory, the
//! findings (absent for an SBOM alone) and the DB that produced them. JSON shapes follow
//! their specifications exactly: CycloneDX 1.6, SPDX 2.3 and SARIF 2.1.0; the tests
//! validate them against the official JSON schemas.

pub mod cyclonedx;
pub mod purl;
pub mod sarif;
pub mod spdx;
pub mod table;

use serde::Serialize;

use crate::advisory::Severity;
use crate::matcher::{Finding, FindingStatus};
use crate::model::{Inventory, Package};

/// The image a report is about.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    pub config_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// Which DB the findings came from.
#[derive(Debug, Clone, Serialize)]
pub struct DbSummary {
    pub version: String,
    pub built_at: String,
}

pub struct Report<'a> {
    pub image: &'a ImageSummary,
    pub inventory: &'a Inventory,
    /// `None` for an SBOM without vulnerabilities.
    pub findings: Option<&'a [Finding]>,
    pub db: Option<&'a DbSummary>,
    /// RFC 3339, UTC.
    pub timestamp: &'a str,
    /// A random UUID for the document's serial number or namespace.
    pub document_id: &'a str,
}

/// Counts by severity, over findings that still apply (not `not_affected`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub unknown: u64,
    pub total: u64,
    /// Findings with a fixed version available.
    pub fixable: u64,
}

impl Counts {
    pub fn of(findings: &[Finding]) -> Counts {
        let mut c = Counts::default();
        for f in findings
            .iter()
            .filter(|f| f.status != FindingStatus::NotAffected)
        {
            match f.severity {
                Severity::Critical => c.critical += 1,
                Severity::High => c.high += 1,
                Severity::Medium => c.medium += 1,
                Severity::Low => c.low += 1,
                Severity::Unknown => c.unknown += 1,
            }
            c.total += 1;
            if f.status == FindingStatus::Fixed {
                c.fixable += 1;
            }
        }
        c
    }
}

pub const TOOL_NAME: &str = "bonded";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A stable, unique reference for a package inside one document.
pub fn package_ref(index: usize, package: &Package, inventory: &Inventory) -> String {
    format!(
        "{}#{}",
        purl::package_purl(package, inventory.distro.as_ref()),
        index
    )
}

/// Bonded's own JSON: the inventory and findings as they are, with counts.
pub fn json(report: &Report<'_>) -> serde_json::Value {
    #[derive(Serialize)]
    struct Out<'a> {
        image: &'a ImageSummary,
        #[serde(skip_serializing_if = "Option::is_none")]
        db: Option<&'a DbSummary>,
        inventory: &'a Inventory,
        #[serde(skip_serializing_if = "Option::is_none")]
        findings: Option<Vec<JsonFinding<'a>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        counts: Option<Counts>,
    }
    #[derive(Serialize)]
    struct JsonFinding<'a> {
        #[serde(flatten)]
        finding: &'a Finding,
        package_name: &'a str,
        package_version: &'a str,
        purl: String,
    }
    let findings = report.findings.map(|fs| {
        fs.iter()
            .filter_map(|f| {
                let p = report.inventory.packages.get(f.package)?;
                Some(JsonFinding {
                    finding: f,
                    package_name: &p.name,
                    package_version: &p.version,
                    purl: purl::package_purl(p, report.inventory.distro.as_ref()).to_string(),
                })
            })
            .collect()
    });
    serde_json::to_value(Out {
        image: report.image,
        db: report.db,
        inventory: report.inventory,
        findings,
        counts: report.findings.map(Counts::of),
    })
    .unwrap_or(serde_json::Value::Null)
}
