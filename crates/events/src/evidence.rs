//! The evidence document of one image (`policy::cel::Evidence`), gathered from what the
//! registry already verified: the manifest and its configuration, the stored scan (findings
//! and inventory), the verified signatures and the verified build provenance.
//!
//! Nothing is guessed. A fact Bonded does not have yet stays missing, so the rules that need
//! it are pending: an image not scanned yet (or scanned without a vulnerability DB) has no
//! `vulnerabilities`, no `packages` and no `licenses`; an image without a verified provenance
//! attestation has no `provenance`. OpenVEX statements in the image's verified attestations
//! are applied to its findings (after the DB's own), so a `not_affected` statement resolves a
//! finding for every rule. An index counts as scanned when every child image is, and
//! its findings and packages are those of its children together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::StreamExt;
use oci::{Digest, Manifest, ManifestKind, Reference, RepositoryName};
use policy::cel::{
    Evidence, Finding, Image, Package, Platform, Provenance, Severity, Signature, VexStatus,
    VulnerabilityReport,
};
use registry::Registry;
use scan::matcher::FindingStatus;
use scan::model::Inventory;
use serde_json::Value;
use store::ScanStore;
use trust::service::TrustService;

/// The largest image configuration read for labels and platform.
const MAX_CONFIG_BYTES: usize = 4 << 20;
/// The most children of an index gathered into its evidence.
const MAX_CHILDREN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{repository}@{digest}: {reason}")]
    Manifest {
        repository: String,
        digest: String,
        reason: String,
    },
    #[error("reading stored facts: {0}")]
    Store(#[from] store::StoreError),
    #[error("stored scan of {digest} is unreadable: {reason}")]
    Scan { digest: String, reason: String },
}

/// Builds evidence documents.
#[derive(Clone)]
pub struct EvidenceSource {
    registry: Arc<Registry>,
    scans: Arc<dyn ScanStore>,
    trust: Arc<TrustService>,
}

/// What a scan contributes.
#[derive(Default)]
struct ScanFacts {
    findings: Vec<Finding>,
    packages: Vec<Package>,
    licenses: BTreeSet<String>,
}

impl EvidenceSource {
    pub fn new(
        registry: Arc<Registry>,
        scans: Arc<dyn ScanStore>,
        trust: Arc<TrustService>,
    ) -> EvidenceSource {
        EvidenceSource {
            registry,
            scans,
            trust,
        }
    }

    /// The evidence about `repository@digest`, seen under `tag` (`None`: addressed by digest).
    pub async fn evidence(
        &self,
        repository: &RepositoryName,
        tag: Option<&str>,
        digest: &Digest,
    ) -> Result<Evidence, EvidenceError> {
        let invalid = |reason: String| EvidenceError::Manifest {
            repository: repository.to_string(),
            digest: digest.to_string(),
            reason,
        };
        let stored = self
            .registry
            .manifest(repository, &Reference::Digest(digest.clone()))
            .await
            .map_err(|e| invalid(e.describe()))?;
        let manifest = Manifest::parse(Some(&stored.media_type), &stored.content)
            .map_err(|e| invalid(e.to_string()))?;
        let mut image = Image {
            repository: repository.to_string(),
            tag: tag.map(str::to_owned),
            digest: digest.to_string(),
            media_type: stored.media_type.clone(),
            created: None,
            labels: None,
            platform: None,
        };
        // One read of the verified signatures and attestations: signers, VEX, provenance.
        let trusted = self
            .trust
            .signatures_view(repository, digest)
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let vex = vex_statements(&trusted);
        let scan = match &manifest.kind {
            ManifestKind::Image { config, .. } => {
                self.read_config(&config.digest, &mut image).await;
                self.scan_facts(digest, &vex).await?
            }
            ManifestKind::Index { manifests } => {
                let mut all = Some(ScanFacts::default());
                for child in manifests.iter().take(MAX_CHILDREN) {
                    // Images only: not nested indexes, not artifacts, and not the
                    // `unknown/unknown` attestation manifests buildx adds (never scanned).
                    let nested = oci::MediaType::parse(&child.media_type)
                        .is_some_and(oci::MediaType::is_index);
                    let attestation = child
                        .platform
                        .as_ref()
                        .and_then(|p| p.get("os"))
                        .and_then(Value::as_str)
                        == Some("unknown");
                    if nested || attestation || child.artifact_type.is_some() {
                        continue;
                    }
                    match (self.scan_facts(&child.digest, &vex).await?, all.as_mut()) {
                        (Some(facts), Some(all)) => {
                            all.findings.extend(facts.findings);
                            all.packages.extend(facts.packages);
                            all.licenses.extend(facts.licenses);
                        }
                        _ => all = None,
                    }
                }
                all
            }
        };
        let signatures = ["signed_by", "signed_by_index"]
            .iter()
            .filter_map(|key| trusted.get(key).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|authority| Signature {
                authority: authority.to_owned(),
            })
            .collect();
        let provenance = provenance(&trusted);
        let (vulnerabilities, packages, licenses) = match scan {
            Some(facts) => (
                Some(VulnerabilityReport::from_findings(facts.findings)),
                Some(facts.packages),
                Some(facts.licenses.into_iter().collect()),
            ),
            None => (None, None, None),
        };
        Ok(Evidence {
            image,
            vulnerabilities,
            packages,
            licenses,
            signatures: Some(signatures),
            provenance,
        })
    }

    /// Created time, labels and platform from the image configuration; left missing when it
    /// cannot be read.
    async fn read_config(&self, config: &Digest, image: &mut Image) {
        let Ok(mut body) = self.registry.read_blob(config, None).await else {
            return;
        };
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            if bytes.len() + chunk.len() > MAX_CONFIG_BYTES {
                return;
            }
            bytes.extend_from_slice(&chunk);
        }
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        image.created = doc
            .get("created")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        image.labels = Some(
            doc.pointer("/config/Labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_else(BTreeMap::new),
        );
        if let (Some(os), Some(architecture)) = (
            doc.get("os").and_then(Value::as_str),
            doc.get("architecture").and_then(Value::as_str),
        ) {
            image.platform = Some(Platform {
                os: os.to_owned(),
                architecture: architecture.to_owned(),
                variant: doc
                    .get("variant")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }

    /// The findings and packages of a matched scan; `None` when there is none yet.
    async fn scan_facts(
        &self,
        digest: &Digest,
        vex: &[scan::advisory::VexStatement],
    ) -> Result<Option<ScanFacts>, EvidenceError> {
        let key = digest.to_string();
        // A digest's content never changes, so a stored result stays true while the same
        // digest is scanned again (pushed to another repository): it is used until then.
        let Some(result) = self.scans.scan_result(&key).await? else {
            return Ok(None);
        };
        let Some(findings) = result.findings else {
            // Inventoried without a vulnerability DB: the findings are not known.
            return Ok(None);
        };
        let unreadable = |e: serde_json::Error| EvidenceError::Scan {
            digest: key.clone(),
            reason: e.to_string(),
        };
        let inventory: Inventory = serde_json::from_str(&result.inventory).map_err(unreadable)?;
        let mut findings: Vec<scan::matcher::Finding> =
            serde_json::from_str(&findings).map_err(unreadable)?;
        // Verified VEX attestations of the image win over the DB's statements.
        scan::vex::apply(&mut findings, &inventory, Some(&key), vex);
        let package_name = |i: usize| {
            inventory
                .packages
                .get(i)
                .map_or_else(String::new, |p| p.name.clone())
        };
        let findings = findings
            .iter()
            .map(|f| Finding {
                id: f.id.clone(),
                aliases: f.aliases.clone(),
                severity: match f.severity {
                    scan::advisory::Severity::Critical => Severity::Critical,
                    scan::advisory::Severity::High => Severity::High,
                    scan::advisory::Severity::Medium => Severity::Medium,
                    scan::advisory::Severity::Low => Severity::Low,
                    scan::advisory::Severity::Unknown => Severity::Unknown,
                },
                package: package_name(f.package),
                fixed_version: f.fixed_version.clone(),
                vex_status: match (&f.vex, f.status) {
                    (Some(applied), _) => Some(match applied.status {
                        scan::advisory::VexStatus::NotAffected => VexStatus::NotAffected,
                        scan::advisory::VexStatus::Affected => VexStatus::Affected,
                        scan::advisory::VexStatus::Fixed => VexStatus::Fixed,
                        scan::advisory::VexStatus::UnderInvestigation => {
                            VexStatus::UnderInvestigation
                        }
                    }),
                    (None, FindingStatus::NotAffected) => Some(VexStatus::NotAffected),
                    (None, _) => None,
                },
            })
            .collect();
        let licenses = inventory
            .packages
            .iter()
            .flat_map(|p| p.licenses.iter().cloned())
            .collect();
        let packages = inventory
            .packages
            .into_iter()
            .map(|p| Package {
                name: p.name,
                version: Some(p.version),
                purl: None,
            })
            .collect();
        Ok(Some(ScanFacts {
            findings,
            packages,
            licenses,
        }))
    }
}

/// The OpenVEX statements of the verified VEX attestations in a signatures view, oldest
/// first (so the newest wins when they disagree). A statement that cannot be read is skipped.
fn vex_statements(view: &Value) -> Vec<scan::advisory::VexStatement> {
    let mut statements = Vec::new();
    for attestation in view
        .get("attestations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("valid") == Some(&Value::Bool(true)))
    {
        let Some(document) = attestation.get("vex") else {
            continue;
        };
        let name = format!(
            "VEX attestation {}",
            attestation
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        match serde_json::to_vec(document)
            .map_err(|e| e.to_string())
            .and_then(|b| scan::vex::read_openvex(&name, &b).map_err(|e| e.to_string()))
        {
            Ok(found) => statements.extend(found),
            Err(e) => tracing::warn!(%name, error = %e, "VEX attestation not applied"),
        }
    }
    statements
}

/// The newest verified build record of a signatures view, if any.
fn provenance(view: &Value) -> Option<Provenance> {
    let build = view.get("build_history")?.as_array()?.last()?;
    let text = |key: &str| build.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(Provenance {
        builder: text("builder_id")?,
        source_repository: text("source_repository"),
        commit: text("source_commit"),
        git_ref: text("source_ref"),
    })
}

#[async_trait::async_trait]
impl policy::pull::EvidenceLookup for EvidenceSource {
    async fn evidence(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Evidence, String> {
        EvidenceSource::evidence(self, repository, None, digest)
            .await
            .map_err(|e| e.to_string())
    }
}
