//! Storage for promotions: the rules defined through the API, the latest decision of each
//! rule about each tagged image (a changed verdict writes its event in the same transaction),
//! and the tags promotions made immutable (enforced by triggers on every path that moves or
//! deletes a tag, so no code path can forget).

use async_trait::async_trait;

use crate::StoreError;

/// A rule's decision about one tagged image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub rule: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// `promoted`, `pending` or `rejected`.
    pub verdict: String,
    pub target_repository: Option<String>,
    pub target_tag: Option<String>,
    /// The decision as JSON: rule, verdict, reasons, facts, policy digest.
    pub decision: String,
    pub policy_digest: String,
    pub decided_at: i64,
    /// When this rule copied this digest; kept once set.
    pub promoted_at: Option<i64>,
}

/// A tag and the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedDigest {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// Implementations must pass [`crate::testsuite::promotion_store`].
#[async_trait]
pub trait PromotionStore: Send + Sync + 'static {
    /// Creates or replaces an API-defined rule; returns whether it was created.
    async fn put_promotion_rule(
        &self,
        name: &str,
        definition: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn delete_promotion_rule(&self, name: &str) -> Result<bool, StoreError>;
    /// API-defined rules (name, definition JSON), by name.
    async fn promotion_rules(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Stores a decision; returns whether its verdict differs from the one stored before (and
    /// so wrote a `promotion.*` event). `promoted_at` is kept once set.
    async fn record_decision(&self, row: &DecisionRow) -> Result<bool, StoreError>;
    async fn decision(
        &self,
        rule: &str,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Result<Option<DecisionRow>, StoreError>;
    /// When `rule` promoted `digest` (from any tag), if it did.
    async fn promoted_at(&self, rule: &str, digest: &str) -> Result<Option<i64>, StoreError>;
    async fn decisions_for_digest(&self, digest: &str) -> Result<Vec<DecisionRow>, StoreError>;
    async fn decisions_for_rule(
        &self,
        rule: &str,
        limit: u32,
    ) -> Result<Vec<DecisionRow>, StoreError>;

    /// Makes a tag immutable (idempotent).
    async fn lock_tag(
        &self,
        repository: &str,
        tag: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Why a tag is immutable, if it is.
    async fn tag_lock(&self, repository: &str, tag: &str) -> Result<Option<String>, StoreError>;

    /// The tags of `repository` that name `digest`.
    async fn tags_for_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<String>, StoreError>;
    /// Every tag of every repository, ordered by (repository, tag), after `after`.
    async fn all_tags(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<TaggedDigest>, StoreError>;
}
