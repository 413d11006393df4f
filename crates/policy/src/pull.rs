//! The pull policy: images in guarded repositories are served only when the required trust
//! authorities have signed them.
//!
//! ```toml
//! [[pull_policy]]
//! repositories = ["prod/**"]
//! require_signatures = { authorities = ["release"], mode = "all" }   # "any", or at_least = N
//! when = [{ rule = "vulnerabilities.critical == 0", message = "'critical: ' + critical_ids().join(', ')" }]
//! action = "deny"                                                     # or "warn"
//! ```
//!
//! `when` conditions are CEL rules over the image's evidence document (the same evaluator and
//! document as promotions, [`crate::cel`]); each must hold. A condition that needs a fact
//! Bonded does not have yet (an image not scanned yet) is pending, and a pending pull is
//! refused by a `deny` policy: unscanned is never clean. Evidence is gathered at each pull of
//! a guarded image, so scan results and DB updates take effect at once.
//! A refused pull is recorded as a `pull.denied` event with its decision.
//!
//! Rules, in the order they apply:
//! - Only what a runtime could run is guarded ([`oci::Manifest::may_run`]: an image manifest
//!   with a filesystem layer, an index listing anything but platform-less artifacts), judged
//!   as runtimes judge it: `artifactType` and `subject` are ignored, since docker, containerd
//!   and podman ignore them. Signatures, attestations and SBOMs (no filesystem layers) stay
//!   readable, so clients can fetch the very signatures that would satisfy the policy; the
//!   referrers API and blobs are not manifests and are never gated.
//! - Every policy whose globs match the repository applies; a pull is denied when any
//!   `deny` policy is unmet, and warned about when only `warn` policies are.
//! - An index needs signatures over its own digest. An image manifest counts the
//!   authorities that signed its own digest and those that signed an index in the same
//!   repository that lists it: an index digest commits to its children's digests, so
//!   `cosign sign` of a multi-platform tag (which signs the index) lets each platform's
//!   manifest be pulled without `--recursive`.
//! - Decisions are cached per (repository, digest) and invalidated by the trust service's
//!   generation counter, which moves whenever a verdict is recorded: a signature takes effect
//!   on the next pull after it is pushed.
//! - If the signature records cannot be read, `deny` policies deny (fail closed).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use oci::Manifest;
use registry::{PullGate, PullVerdict};
use serde::Deserialize;
use serde_json::json;
use store::{Signers, StoreError, StoredManifest};

use crate::glob::RepositoryGlob;

/// Why a pull policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullPolicyError {
    #[error("pull policy {policy}: {reason}")]
    Invalid { policy: String, reason: String },
}

/// One `[[pull_policy]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullPolicy {
    /// A name for messages; the repository globs otherwise.
    #[serde(default)]
    pub name: Option<String>,
    pub repositories: Vec<RepositoryGlob>,
    #[serde(default)]
    pub require_signatures: Option<SignatureRequirement>,
    /// CEL conditions over the image's evidence; all must hold.
    #[serde(default)]
    pub when: Vec<crate::promotion::Condition>,
    #[serde(default)]
    pub action: Action,
}

/// `require_signatures = { authorities = [...], mode = "all" | "any" }` or `at_least = N`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequirement {
    pub authorities: Vec<String>,
    #[serde(default)]
    pub mode: Option<SignatureMode>,
    #[serde(default)]
    pub at_least: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureMode {
    All,
    Any,
}

/// What an unmet policy does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Deny,
    Warn,
}

/// How far a manifest's signers fall short of a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Required authorities that have not signed.
    pub missing: Vec<String>,
    /// How many distinct required authorities must sign.
    pub needed: usize,
    /// How many have.
    pub have: usize,
}

impl SignatureRequirement {
    /// How many of the authorities must have signed.
    pub fn needed(&self) -> usize {
        match (self.mode, self.at_least) {
            (_, Some(n)) => n,
            (Some(SignatureMode::Any), None) => 1,
            _ => self.authorities.len(),
        }
    }

    fn describe(&self) -> String {
        let list = self.authorities.join(", ");
        match (self.mode, self.at_least) {
            (_, Some(n)) => format!("at least {n} of: {list}"),
            (Some(SignatureMode::Any), None) => format!("any of: {list}"),
            _ => format!("all of: {list}"),
        }
    }

    /// `None` when `signers` meet the requirement.
    pub fn shortfall(&self, signers: &BTreeSet<String>) -> Option<Shortfall> {
        let required: BTreeSet<&String> = self.authorities.iter().collect();
        let have = required.iter().filter(|a| signers.contains(**a)).count();
        let needed = self.needed();
        (have < needed).then(|| Shortfall {
            missing: required
                .into_iter()
                .filter(|a| !signers.contains(*a))
                .cloned()
                .collect(),
            needed,
            have,
        })
    }
}

impl PullPolicy {
    /// The name shown in messages.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.repositories
                .iter()
                .map(RepositoryGlob::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// Checks what serde cannot: a requirement that can be met, stated one way.
    pub fn validate(&self) -> Result<(), PullPolicyError> {
        let fail = |reason: String| PullPolicyError::Invalid {
            policy: self.label(),
            reason,
        };
        if self.repositories.is_empty() {
            return Err(fail("`repositories` is empty".into()));
        }
        for (index, condition) in self.when.iter().enumerate() {
            condition
                .compile()
                .map_err(|e| fail(format!("when[{index}]: {e}")))?;
        }
        let Some(r) = &self.require_signatures else {
            return match self.when.is_empty() {
                true => Err(fail("give `require_signatures`, `when`, or both".into())),
                false => Ok(()),
            };
        };
        if r.authorities.is_empty() {
            return Err(fail("`require_signatures.authorities` is empty".into()));
        }
        if let Some(bad) = r.authorities.iter().find(|a| a.is_empty() || a.len() > 64) {
            return Err(fail(format!(
                "authority name {bad:?} is not 1 to 64 characters"
            )));
        }
        let distinct: std::collections::BTreeSet<&String> = r.authorities.iter().collect();
        if distinct.len() != r.authorities.len() {
            return Err(fail(
                "`require_signatures.authorities` lists an authority twice".into(),
            ));
        }
        match (r.mode, r.at_least) {
            (Some(_), Some(_)) => Err(fail("give either `mode` or `at_least`, not both".into())),
            (_, Some(n)) if n == 0 || n > r.authorities.len() => Err(fail(format!(
                "`at_least = {n}` must be between 1 and the {} authorities listed",
                r.authorities.len()
            ))),
            _ => Ok(()),
        }
    }

    pub fn applies_to(&self, repository: &str) -> bool {
        self.repositories.iter().any(|g| g.matches(repository))
    }
}

/// Where the enforcer learns who signed what: the trust service.
#[async_trait]
pub trait SignerLookup: Send + Sync + 'static {
    /// Moves whenever a verdict changes; cached decisions older than it are recomputed.
    fn generation(&self) -> u64;
    async fn signers(&self, repository: &str, digest: &str) -> Result<Signers, StoreError>;
}

#[async_trait]
impl SignerLookup for trust::service::TrustService {
    fn generation(&self) -> u64 {
        trust::service::TrustService::generation(self)
    }

    async fn signers(&self, repository: &str, digest: &str) -> Result<Signers, StoreError> {
        trust::service::TrustService::signers(self, repository, digest).await
    }
}

/// What a guarded manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    Image,
    Index,
    /// Not runnable: served regardless.
    Artifact,
}

/// The facts a decision uses, cached.
#[derive(Debug)]
struct Facts {
    generation: u64,
    guarded: Guarded,
    /// `None` when the records could not be read.
    signers: Option<BTreeSet<String>>,
}

/// Cached decisions for this many manifests.
const FACTS_CACHE_ENTRIES: usize = 100_000;

/// The registry's [`PullGate`] for the configured pull policies.
pub struct PullEnforcer {
    policies: Vec<PullPolicy>,
    /// Each policy's compiled `when` conditions.
    conditions: Vec<Vec<crate::cel::CompiledRule>>,
    lookup: Arc<dyn SignerLookup>,
    facts: quick_cache::sync::Cache<(String, String), Arc<Facts>>,
    /// Where `when` conditions get their evidence; set once the registry exists.
    evidence: std::sync::OnceLock<Arc<dyn EvidenceLookup>>,
    /// Where refused pulls are recorded.
    events: Option<Arc<dyn store::EventStore>>,
}

/// Where the enforcer gets an image's evidence document.
#[async_trait]
pub trait EvidenceLookup: Send + Sync + 'static {
    async fn evidence(
        &self,
        repository: &oci::RepositoryName,
        digest: &oci::Digest,
    ) -> Result<crate::cel::Evidence, String>;
}

impl PullEnforcer {
    pub fn new(
        policies: Vec<PullPolicy>,
        lookup: Arc<dyn SignerLookup>,
    ) -> Result<PullEnforcer, PullPolicyError> {
        let mut conditions = Vec::new();
        for policy in &policies {
            policy.validate()?;
            conditions.push(
                policy
                    .when
                    .iter()
                    .map(|c| {
                        c.compile().map_err(|e| PullPolicyError::Invalid {
                            policy: policy.label(),
                            reason: e.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(PullEnforcer {
            policies,
            conditions,
            lookup,
            facts: quick_cache::sync::Cache::new(FACTS_CACHE_ENTRIES),
            evidence: std::sync::OnceLock::new(),
            events: None,
        })
    }

    /// Records every refused pull as a `pull.denied` event.
    pub fn with_events(mut self, events: Arc<dyn store::EventStore>) -> PullEnforcer {
        self.events = Some(events);
        self
    }

    /// Gives `when` conditions their evidence (until then they cannot be checked, and a
    /// `deny` policy with conditions denies).
    pub fn set_evidence(&self, evidence: Arc<dyn EvidenceLookup>) {
        let _ = self.evidence.set(evidence);
    }

    /// The failing or pending conditions of policy `index` for this image, in words, with
    /// the decision; `None` when they all hold.
    async fn unmet_conditions(
        &self,
        index: usize,
        repository: &oci::RepositoryName,
        manifest: &StoredManifest,
    ) -> Option<(String, serde_json::Value)> {
        let conditions = self.conditions.get(index).filter(|c| !c.is_empty())?;
        let evidence = match self.evidence.get() {
            Some(source) => source.evidence(repository, &manifest.digest).await,
            None => Err("no evidence source".into()),
        };
        let evidence = match evidence {
            Ok(e) => e,
            Err(e) => {
                return Some((
                    format!("its evidence could not be gathered ({e})"),
                    json!({"error": e}),
                ));
            }
        };
        let now = std::time::SystemTime::now();
        let mut reasons = Vec::new();
        let mut results = Vec::new();
        for rule in conditions {
            let (verdict, reason) = match crate::cel::evaluate(rule, &evidence, now) {
                Ok(e) => match e.verdict {
                    crate::cel::Verdict::Pass => (json!({"verdict": "pass"}), None),
                    crate::cel::Verdict::Fail { message } => (
                        json!({"verdict": "fail", "message": message, "facts": e.facts}),
                        Some(match message {
                            Some(m) => format!("{} failed: {m}", rule.text()),
                            None => format!("{} failed", rule.text()),
                        }),
                    ),
                    crate::cel::Verdict::Pending { missing } => (
                        json!({"verdict": "pending", "missing": missing}),
                        Some(format!(
                            "{} is not decided yet: not known yet: {}",
                            rule.text(),
                            missing.join(", ")
                        )),
                    ),
                },
                Err(e) => (
                    json!({"verdict": "error", "error": e.to_string()}),
                    Some(format!("{} could not be evaluated: {e}", rule.text())),
                ),
            };
            results.push(json!({"when": rule.text(), "result": verdict}));
            reasons.extend(reason);
        }
        (!reasons.is_empty()).then(|| (reasons.join("; "), json!({ "conditions": results })))
    }

    async fn record_denial(
        &self,
        repository: &str,
        digest: &str,
        message: &str,
        detail: &serde_json::Value,
    ) {
        let Some(events) = &self.events else { return };
        let event = store::NewEvent {
            kind: "pull.denied".into(),
            repository: Some(repository.to_owned()),
            digest: Some(digest.to_owned()),
            tag: None,
            data: json!({"reason": message, "decision": detail}).to_string(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if let Err(e) = events.append_event(&event, now).await {
            tracing::error!(repository, digest, error = %e, "cannot record a refused pull");
        }
    }

    pub fn policies(&self) -> &[PullPolicy] {
        &self.policies
    }

    async fn facts(&self, repository: &str, manifest: &StoredManifest) -> Arc<Facts> {
        let generation = self.lookup.generation();
        let key = (repository.to_owned(), manifest.digest.to_string());
        if let Some(facts) = self.facts.get(&key)
            && facts.generation == generation
        {
            return facts;
        }
        // A stored manifest was validated when it was pushed; one that no longer parses is
        // guarded as an image, never waved through.
        let guarded = match Manifest::parse(Some(&manifest.media_type), &manifest.content) {
            Ok(m) if !m.may_run() => Guarded::Artifact,
            Ok(m) if m.is_index() => Guarded::Index,
            _ => Guarded::Image,
        };
        let signers = if guarded == Guarded::Artifact {
            Some(BTreeSet::new())
        } else {
            match self.lookup.signers(repository, &key.1).await {
                Ok(s) if guarded == Guarded::Index => Some(s.direct),
                Ok(s) => Some(s.all()),
                Err(e) => {
                    tracing::error!(repository, digest = %manifest.digest, error = %e,
                        "cannot read signature records for the pull policy");
                    None
                }
            }
        };
        let facts = Arc::new(Facts {
            generation,
            guarded,
            signers,
        });
        if facts.signers.is_some() {
            self.facts.insert(key, Arc::clone(&facts));
        }
        facts
    }
}

#[async_trait]
impl PullGate for PullEnforcer {
    async fn decide(
        &self,
        repository: &oci::RepositoryName,
        manifest: &StoredManifest,
    ) -> PullVerdict {
        let repo = repository.as_str();
        let applicable: Vec<(usize, &PullPolicy)> = self
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.applies_to(repo))
            .collect();
        if applicable.is_empty() {
            return PullVerdict::Allow;
        }
        let facts = self.facts(repo, manifest).await;
        if facts.guarded == Guarded::Artifact {
            return PullVerdict::Allow;
        }
        let what = format!("{repo}@{}", manifest.digest);
        let mut denials = Vec::new();
        let mut warnings = Vec::new();
        for (index, policy) in applicable {
            let mut unmet: Vec<(String, serde_json::Value)> = Vec::new();
            if let Some(requirement) = &policy.require_signatures {
                match &facts.signers {
                    None => unmet.push((
                        "the signature records could not be read".into(),
                        json!({"error": "signature records unreadable"}),
                    )),
                    Some(signers) => {
                        if let Some(short) = requirement.shortfall(signers) {
                            unmet.push((
                                format!(
                                    "it is not signed as required ({}): missing signatures of {} ({} of {} required authorities signed)",
                                    requirement.describe(),
                                    short.missing.join(", "),
                                    short.have,
                                    short.needed,
                                ),
                                json!({
                                    "required": requirement.authorities,
                                    "needed": short.needed,
                                    "signed_by": signers,
                                    "missing": short.missing,
                                }),
                            ));
                        }
                    }
                }
            }
            if let Some(conditions) = self.unmet_conditions(index, repository, manifest).await {
                unmet.push(conditions);
            }
            if unmet.is_empty() {
                continue;
            }
            let kind = if facts.guarded == Guarded::Index {
                "index"
            } else {
                "image"
            };
            let message = format!(
                "{what} is refused by pull policy \"{}\": {}",
                policy.label(),
                unmet
                    .iter()
                    .map(|(m, _)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            let mut detail = json!({
                "repository": repo,
                "digest": manifest.digest.to_string(),
                "kind": kind,
                "policy": policy.label(),
            });
            for (_, d) in unmet {
                if let (Some(detail), Some(extra)) = (detail.as_object_mut(), d.as_object()) {
                    detail.extend(extra.clone());
                }
            }
            match policy.action {
                Action::Deny => denials.push((message, detail)),
                Action::Warn => warnings.push(message),
            }
        }
        if let Some((message, _)) = denials.first() {
            let message = message.clone();
            let detail = if denials.len() == 1 {
                denials
                    .into_iter()
                    .map(|(_, d)| d)
                    .next()
                    .unwrap_or_default()
            } else {
                json!({ "policies": denials.into_iter().map(|(_, d)| d).collect::<Vec<_>>() })
            };
            self.record_denial(repo, &manifest.digest.to_string(), &message, &detail)
                .await;
            return PullVerdict::Deny { message, detail };
        }
        match warnings.is_empty() {
            true => PullVerdict::Allow,
            false => PullVerdict::Warn {
                message: warnings.join("; "),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(
        authorities: &[&str],
        mode: Option<SignatureMode>,
        at_least: Option<usize>,
    ) -> SignatureRequirement {
        SignatureRequirement {
            authorities: authorities.iter().map(|a| (*a).to_owned()).collect(),
            mode,
            at_least,
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn modes() {
        let all = requirement(&["a", "b"], Some(SignatureMode::All), None);
        assert_eq!(all.shortfall(&set(&["a", "b", "c"])), None);
        let short = all.shortfall(&set(&["a", "c"])).expect("short");
        assert_eq!(
            (short.missing, short.have, short.needed),
            (vec!["b".to_owned()], 1, 2)
        );
        let default_is_all = requirement(&["a", "b"], None, None);
        assert!(default_is_all.shortfall(&set(&["a"])).is_some());
        let any = requirement(&["a", "b"], Some(SignatureMode::Any), None);
        assert_eq!(any.shortfall(&set(&["b"])), None);
        assert_eq!(
            any.shortfall(&set(&["c"])).map(|s| s.missing.len()),
            Some(2)
        );
        let two = requirement(&["a", "b", "c"], None, Some(2));
        assert_eq!(two.shortfall(&set(&["a", "c"])), None);
        let short = two.shortfall(&set(&["c", "x", "y"])).expect("short");
        assert_eq!((short.have, short.needed), (1, 2));
        // Listing an authority twice does not let one signature count twice.
        let dup = requirement(&["a", "a"], None, Some(2));
        assert!(dup.shortfall(&set(&["a"])).is_some());
    }

    #[test]
    fn invalid_policies() {
        let policy = |r: SignatureRequirement| PullPolicy {
            name: None,
            repositories: vec!["prod/**".parse().expect("glob")],
            require_signatures: Some(r),
            when: Vec::new(),
            action: Action::Deny,
        };
        assert!(policy(requirement(&[], None, None)).validate().is_err());
        assert!(
            policy(requirement(&["a"], None, Some(0)))
                .validate()
                .is_err()
        );
        assert!(
            policy(requirement(&["a"], None, Some(2)))
                .validate()
                .is_err()
        );
        assert!(
            policy(requirement(&["a"], Some(SignatureMode::Any), Some(1)))
                .validate()
                .is_err()
        );
        assert!(
            policy(requirement(&["a"], Some(SignatureMode::Any), None))
                .validate()
                .is_ok()
        );
        assert!(
            policy(requirement(&["a", "a"], None, None))
                .validate()
                .is_err()
        );
    }
}
