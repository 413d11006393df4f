//! The promotion worker: an outbox consumer that asks every matching promotion rule about an
//! image whenever the image or its evidence changes, records each rule's decision (a changed
//! verdict writes its `promotion.*` event in the same transaction), and carries out the
//! promotions that pass.
//!
//! When it asks:
//! - `tag.updated`: the tagged image, for the rules whose `from` and tag filter match;
//! - `scan.completed`, `scan.failed`, `signature.added`, `attestation.added`: every tag of
//!   the repository that names the digest;
//! - `vulndb.updated` and a rule change: every tag the rules consider.
//!
//! What a promotion does, in order: links the image's blobs into the target repository (a
//! mount, no bytes are copied), stores the same manifest there (children of an index first)
//! under the templated tag, copies its referrers and cosign `.sig`/`.att`/`.sbom` tags when
//! `copy_referrers`, appends the server key's signature when `sign`, and makes the tag
//! immutable when `immutable`. Each step goes through the registry service, so validation,
//! caches and the trust service's verification run as for a client's push.
//!
//! Idempotence: a rule promotes a digest once (`promoted_at`); asking again only re-records
//! the verdict. A target tag held by another digest is moved only if it is not immutable.
//! Every step is safe to repeat, so an event handed over twice (at least once delivery)
//! changes nothing the second time.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use oci::{Digest, Manifest, ManifestKind, Reference, RepositoryName, Tag};
use policy::promotion::{Decision, Outcome, PromotionConfig, PromotionRule, Target};
use registry::Registry;
use serde_json::json;
use store::{DecisionRow, EventRow, EventStore, MetaStore, NewEvent, PromotionStore, TaggedDigest};
use trust::cosign::{self, AttachmentKind};

use crate::evidence::EvidenceSource;
use crate::outbox::{Consumer, ConsumerError};
use crate::signer::ServerSigner;

/// Tags read per page when every candidate is asked.
const PAGE: u32 = 500;
/// The deepest index nesting copied.
const MAX_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum PromotionWorkError {
    #[error("promotion {0:?} does not exist")]
    UnknownRule(String),
    #[error("promotion {0:?} is defined in the configuration file and cannot be changed here")]
    ConfigRule(String),
    #[error(transparent)]
    Rule(#[from] policy::promotion::PromotionError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("evidence: {0}")]
    Evidence(#[from] crate::evidence::EvidenceError),
    #[error("{0}")]
    Copy(String),
}

/// One rule's decision about one tagged image, as reported by a run or dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Considered {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    #[serde(flatten)]
    pub decision: serde_json::Value,
    /// Whether this run copied the image (false in a dry run, or when promoted before).
    pub acted: bool,
}

pub struct Promoter {
    registry: Arc<Registry>,
    meta: Arc<dyn MetaStore>,
    promotions: Arc<dyn PromotionStore>,
    events: Arc<dyn EventStore>,
    evidence: EvidenceSource,
    signer: Arc<ServerSigner>,
    /// How signatures name the registry (`host[:port]`).
    public_host: String,
    config_rules: Vec<Arc<PromotionRule>>,
    rules: RwLock<Arc<Vec<Arc<PromotionRule>>>>,
}

#[allow(clippy::too_many_arguments)]
impl Promoter {
    /// A promoter with the configuration's rules and those stored through the API.
    pub async fn new(
        registry: Arc<Registry>,
        meta: Arc<dyn MetaStore>,
        promotions: Arc<dyn PromotionStore>,
        events: Arc<dyn EventStore>,
        evidence: EvidenceSource,
        signer: Arc<ServerSigner>,
        public_host: String,
        config: Vec<PromotionConfig>,
    ) -> Result<Promoter, PromotionWorkError> {
        let config_rules = config
            .into_iter()
            .map(|c| PromotionRule::new(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let promoter = Promoter {
            registry,
            meta,
            promotions,
            events,
            evidence,
            signer,
            public_host,
            config_rules,
            rules: RwLock::new(Arc::new(Vec::new())),
        };
        promoter.reload().await?;
        Ok(promoter)
    }

    /// Every rule: the configuration's, then the API's (a stored rule named like a
    /// configuration rule is ignored).
    pub fn rules(&self) -> Arc<Vec<Arc<PromotionRule>>> {
        self.rules
            .read()
            .map(|r| Arc::clone(&r))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    pub fn rule(&self, name: &str) -> Option<Arc<PromotionRule>> {
        self.rules().iter().find(|r| r.name() == name).cloned()
    }

    pub fn is_config_rule(&self, name: &str) -> bool {
        self.config_rules.iter().any(|r| r.name() == name)
    }

    async fn reload(&self) -> Result<(), PromotionWorkError> {
        let mut all = self.config_rules.clone();
        for (name, definition) in self.promotions.promotion_rules().await? {
            if self.is_config_rule(&name) {
                continue;
            }
            match serde_json::from_str::<PromotionConfig>(&definition)
                .map_err(|e| e.to_string())
                .and_then(|c| PromotionRule::new(c).map_err(|e| e.to_string()))
            {
                Ok(rule) => all.push(Arc::new(rule)),
                Err(e) => {
                    tracing::error!(rule = %name, error = %e, "stored promotion rule is invalid; ignored")
                }
            }
        }
        if let Ok(mut rules) = self.rules.write() {
            *rules = Arc::new(all);
        }
        Ok(())
    }

    /// Creates or replaces an API rule (returns whether it was created) and records the
    /// change as an event, so every image is asked again.
    pub async fn put_rule(&self, config: PromotionConfig) -> Result<bool, PromotionWorkError> {
        if self.is_config_rule(&config.name) {
            return Err(PromotionWorkError::ConfigRule(config.name));
        }
        let rule = PromotionRule::new(config)?;
        let definition = serde_json::to_string(rule.config())
            .map_err(|e| PromotionWorkError::Copy(e.to_string()))?;
        let created = self
            .promotions
            .put_promotion_rule(rule.name(), &definition, unix_now())
            .await?;
        self.reload().await?;
        self.config_changed(rule.name(), "put", Some(rule.policy_digest()))
            .await?;
        Ok(created)
    }

    pub async fn delete_rule(&self, name: &str) -> Result<bool, PromotionWorkError> {
        if self.is_config_rule(name) {
            return Err(PromotionWorkError::ConfigRule(name.to_owned()));
        }
        let deleted = self.promotions.delete_promotion_rule(name).await?;
        if deleted {
            self.reload().await?;
            self.config_changed(name, "delete", None).await?;
        }
        Ok(deleted)
    }

    async fn config_changed(
        &self,
        name: &str,
        change: &str,
        digest: Option<&str>,
    ) -> Result<(), PromotionWorkError> {
        self.events
            .append_event(
                &NewEvent {
                    kind: "config.changed".into(),
                    repository: None,
                    digest: None,
                    tag: None,
                    data: json!({"section": "promotion", "name": name, "change": change, "policy_digest": digest}).to_string(),
                },
                unix_now(),
            )
            .await?;
        Ok(())
    }

    /// Asks `rule` about every tag it considers; acts on passes unless `dry_run`.
    pub async fn run_rule(
        &self,
        name: &str,
        dry_run: bool,
    ) -> Result<Vec<Considered>, PromotionWorkError> {
        let rule = self
            .rule(name)
            .ok_or_else(|| PromotionWorkError::UnknownRule(name.to_owned()))?;
        let mut out = Vec::new();
        for candidate in self.all_candidates(std::slice::from_ref(&rule)).await? {
            if let Some(c) = self.consider(&rule, &candidate, dry_run).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Every tag some of `rules` consider.
    async fn all_candidates(
        &self,
        rules: &[Arc<PromotionRule>],
    ) -> Result<Vec<TaggedDigest>, PromotionWorkError> {
        let mut out = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self
                .promotions
                .all_tags(after.as_ref().map(|(r, t)| (r.as_str(), t.as_str())), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.repository.clone(), last.tag.clone()));
            out.extend(page.into_iter().filter(|t| {
                rules
                    .iter()
                    .any(|r| r.matches(&t.repository, &t.tag).is_some())
            }));
        }
        Ok(out)
    }

    /// The candidates an event concerns.
    async fn candidates(&self, event: &EventRow) -> Result<Vec<TaggedDigest>, PromotionWorkError> {
        let rules = self.rules();
        let considered = |repo: &str| rules.iter().any(|r| r.considers_repository(repo));
        match event.kind.as_str() {
            "tag.updated" => match (&event.repository, &event.tag, &event.digest) {
                (Some(repository), Some(tag), Some(digest)) if considered(repository) => {
                    Ok(vec![TaggedDigest {
                        repository: repository.clone(),
                        tag: tag.clone(),
                        digest: digest.clone(),
                    }])
                }
                _ => Ok(Vec::new()),
            },
            "scan.completed" | "scan.failed" | "signature.added" | "attestation.added" => {
                match (&event.repository, &event.digest) {
                    (Some(repository), Some(digest)) if considered(repository) => Ok(self
                        .promotions
                        .tags_for_digest(repository, digest)
                        .await?
                        .into_iter()
                        .map(|tag| TaggedDigest {
                            repository: repository.clone(),
                            tag,
                            digest: digest.clone(),
                        })
                        .collect()),
                    _ => Ok(Vec::new()),
                }
            }
            "vulndb.updated" => self.all_candidates(&rules).await,
            "config.changed"
                if serde_json::from_str::<serde_json::Value>(&event.data).is_ok_and(|d| {
                    d.get("section").and_then(|s| s.as_str()) == Some("promotion")
                }) =>
            {
                self.all_candidates(&rules).await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Asks `rule` about one tagged image and records its decision; `None` when the rule
    /// does not consider it.
    pub async fn consider(
        &self,
        rule: &PromotionRule,
        candidate: &TaggedDigest,
        dry_run: bool,
    ) -> Result<Option<Considered>, PromotionWorkError> {
        if rule
            .matches(&candidate.repository, &candidate.tag)
            .is_none()
        {
            return Ok(None);
        }
        let Some(evidence) = self.evidence_of(candidate).await? else {
            return Ok(None);
        };
        self.consider_with(rule, candidate, &evidence, dry_run)
            .await
    }

    /// The evidence about a candidate; `None` when its names do not parse (not an image).
    async fn evidence_of(
        &self,
        candidate: &TaggedDigest,
    ) -> Result<Option<policy::cel::Evidence>, PromotionWorkError> {
        let (Ok(repository), Ok(digest)) = (
            RepositoryName::from_str(&candidate.repository),
            Digest::from_str(&candidate.digest),
        ) else {
            return Ok(None);
        };
        Ok(Some(
            self.evidence
                .evidence(&repository, Some(&candidate.tag), &digest)
                .await?,
        ))
    }

    /// [`Promoter::consider`] with the candidate's evidence already gathered (once for
    /// every rule that considers it).
    async fn consider_with(
        &self,
        rule: &PromotionRule,
        candidate: &TaggedDigest,
        evidence: &policy::cel::Evidence,
        dry_run: bool,
    ) -> Result<Option<Considered>, PromotionWorkError> {
        let Some(matched) = rule.matches(&candidate.repository, &candidate.tag) else {
            return Ok(None);
        };
        let (Ok(repository), Ok(digest)) = (
            RepositoryName::from_str(&candidate.repository),
            Digest::from_str(&candidate.digest),
        ) else {
            return Ok(None);
        };
        let now = SystemTime::now();
        let mut decision = rule.decide(evidence, now);
        match rule.target(&candidate.repository, &candidate.tag, &matched, now) {
            Ok(target) => decision.target = Some(target),
            Err(e) => reject(&mut decision, e.to_string()),
        }
        let promoted_before = self
            .promotions
            .promoted_at(rule.name(), &candidate.digest)
            .await?;
        let mut acted = false;
        if decision.verdict == Outcome::Promoted
            && promoted_before.is_none()
            && let Some(target) = decision.target.clone()
        {
            match self.blocked(&target, &digest).await? {
                Some(reason) => reject(&mut decision, reason),
                None if dry_run => {}
                None => {
                    // A failed copy is not a verdict (a store error, a full disk): the
                    // batch is retried with backoff.
                    self.promote(rule, &repository, &candidate.tag, &digest, &target)
                        .await?;
                    acted = true;
                }
            }
        }
        if !dry_run {
            self.record(rule, candidate, &decision, acted.then(unix_now))
                .await?;
        }
        Ok(Some(Considered {
            repository: candidate.repository.clone(),
            tag: candidate.tag.clone(),
            digest: candidate.digest.clone(),
            decision: decision.to_json(),
            acted,
        }))
    }

    async fn record(
        &self,
        rule: &PromotionRule,
        candidate: &TaggedDigest,
        decision: &Decision,
        promoted_at: Option<i64>,
    ) -> Result<(), PromotionWorkError> {
        let row = DecisionRow {
            rule: rule.name().to_owned(),
            repository: candidate.repository.clone(),
            tag: candidate.tag.clone(),
            digest: candidate.digest.clone(),
            verdict: decision.verdict.as_str().to_owned(),
            target_repository: decision.target.as_ref().map(|t| t.repository.clone()),
            target_tag: decision.target.as_ref().map(|t| t.tag.clone()),
            decision: decision.to_json().to_string(),
            policy_digest: rule.policy_digest().to_owned(),
            decided_at: unix_now(),
            promoted_at,
        };
        if self.promotions.record_decision(&row).await? {
            tracing::info!(rule = rule.name(), repository = %candidate.repository,
                tag = %candidate.tag, digest = %candidate.digest,
                verdict = decision.verdict.as_str(), reasons = ?decision.reasons, "promotion decision");
        }
        Ok(())
    }

    /// Why the target tag cannot take `digest`, if it cannot.
    async fn blocked(
        &self,
        target: &Target,
        digest: &Digest,
    ) -> Result<Option<String>, PromotionWorkError> {
        let (Ok(repo), Ok(tag)) = (
            RepositoryName::from_str(&target.repository),
            Tag::from_str(&target.tag),
        ) else {
            return Ok(Some("the target is not a valid repository and tag".into()));
        };
        let Some(current) = self.meta.manifest_by_tag(&repo, &tag).await? else {
            return Ok(None);
        };
        if &current.digest == digest {
            return Ok(None);
        }
        Ok(self
            .promotions
            .tag_lock(&target.repository, &target.tag)
            .await?
            .map(|reason| {
                format!(
                    "the target {}:{} is immutable ({reason}) and holds {}",
                    target.repository, target.tag, current.digest
                )
            }))
    }

    async fn promote(
        &self,
        rule: &PromotionRule,
        source: &RepositoryName,
        source_tag: &str,
        digest: &Digest,
        target: &Target,
    ) -> Result<(), PromotionWorkError> {
        let copy = |e: String| PromotionWorkError::Copy(e);
        let to = RepositoryName::from_str(&target.repository).map_err(|e| copy(e.to_string()))?;
        let tag = Tag::from_str(&target.tag).map_err(|e| copy(e.to_string()))?;
        // The image first (untagged), then what refers to it, and the tag last, so the tag
        // never names an image whose signatures have not arrived yet.
        self.copy_manifest(source, &to, digest, None, 0).await?;
        if rule.config().copy_referrers {
            self.copy_referrers(source, &to, digest).await?;
        }
        let stored = self
            .registry
            .manifest(&to, &Reference::Digest(digest.clone()))
            .await
            .map_err(|e| copy(e.describe()))?;
        self.registry
            .put_manifest(
                &to,
                &Reference::Tag(tag),
                Some(&stored.media_type),
                stored.content,
            )
            .await
            .map_err(|e| copy(e.describe()))?;
        if rule.config().sign {
            let annotations = BTreeMap::from([
                ("dev.bonded.promotion".to_owned(), rule.name().to_owned()),
                (
                    "dev.bonded.promoted-from".to_owned(),
                    format!("{source}:{source_tag}"),
                ),
            ]);
            let reference = format!("{}/{}", self.public_host, to);
            self.signer
                .sign(&to, digest, &reference, &annotations)
                .await
                .map_err(|e| copy(e.to_string()))?;
        }
        if rule.config().immutable {
            self.promotions
                .lock_tag(
                    &target.repository,
                    &target.tag,
                    &format!("promoted by {} from {source}:{source_tag}", rule.name()),
                    unix_now(),
                )
                .await?;
        }
        Ok(())
    }

    /// Stores `digest` of `from` in `to` (children first), linking its blobs.
    async fn copy_manifest(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
        tag: Option<&Tag>,
        depth: usize,
    ) -> Result<(), PromotionWorkError> {
        let copy = |e: String| PromotionWorkError::Copy(e);
        if depth > MAX_DEPTH {
            return Err(copy(format!(
                "{digest}: indexes nested deeper than {MAX_DEPTH}"
            )));
        }
        let stored = self
            .registry
            .manifest(from, &Reference::Digest(digest.clone()))
            .await
            .map_err(|e| copy(e.describe()))?;
        let manifest = Manifest::parse(Some(&stored.media_type), &stored.content)
            .map_err(|e| copy(e.to_string()))?;
        match &manifest.kind {
            ManifestKind::Image { config, layers } => {
                for blob in std::iter::once(config).chain(layers) {
                    self.registry
                        .mount(to, &blob.digest, Some(from))
                        .await
                        .map_err(|e| copy(e.describe()))?;
                }
            }
            ManifestKind::Index { manifests } => {
                for child in manifests {
                    Box::pin(self.copy_manifest(from, to, &child.digest, None, depth + 1)).await?;
                }
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(digest.clone()),
        };
        self.registry
            .put_manifest(
                to,
                &reference,
                Some(&stored.media_type),
                Bytes::clone(&stored.content),
            )
            .await
            .map_err(|e| copy(e.describe()))?;
        Ok(())
    }

    /// Copies the referrers of `digest` and its cosign tags (the subject is already there).
    async fn copy_referrers(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), PromotionWorkError> {
        let copy = |e: String| PromotionWorkError::Copy(e);
        for referrer in self.meta.referrers(from, digest, None).await? {
            self.copy_manifest(from, to, &referrer.digest, None, 0)
                .await?;
        }
        for kind in [
            AttachmentKind::Signature,
            AttachmentKind::Attestation,
            AttachmentKind::Sbom,
        ] {
            let tag = Tag::from_str(&cosign::signature_tag(digest, kind))
                .map_err(|e| copy(e.to_string()))?;
            if let Some(m) = self.meta.manifest_by_tag(from, &tag).await? {
                self.copy_manifest(from, to, &m.digest, Some(&tag), 0)
                    .await?;
            }
        }
        Ok(())
    }
}

fn reject(decision: &mut Decision, reason: String) {
    decision.verdict = Outcome::Rejected;
    decision.reasons.push(reason);
}

#[async_trait]
impl Consumer for Promoter {
    fn name(&self) -> &'static str {
        "promotions"
    }

    async fn handle(&self, events: &[EventRow]) -> Result<(), ConsumerError> {
        let err = |e: PromotionWorkError| ConsumerError::new("promotions", e);
        let mut seen = BTreeSet::new();
        for event in events {
            for candidate in self.candidates(event).await.map_err(err)? {
                if !seen.insert((
                    candidate.repository.clone(),
                    candidate.tag.clone(),
                    candidate.digest.clone(),
                )) {
                    continue;
                }
                let rules = self.rules();
                let considering: Vec<&Arc<PromotionRule>> = rules
                    .iter()
                    .filter(|r| r.matches(&candidate.repository, &candidate.tag).is_some())
                    .collect();
                if considering.is_empty() {
                    continue;
                }
                let Some(evidence) = self.evidence_of(&candidate).await.map_err(err)? else {
                    continue;
                };
                for rule in considering {
                    self.consider_with(rule, &candidate, &evidence, false)
                        .await
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}

fn unix_now() -> i64 {
    crate::outbox::unix_now()
}
