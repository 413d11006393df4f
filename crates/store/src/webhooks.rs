//! Storage for webhooks: the endpoints, one delivery per endpoint and event, every attempt,
//! and each endpoint's circuit breaker (`migrations/sqlite/0007_webhooks.sql`).
//!
//! The store keeps what the `webhooks` crate hands it and never interprets a URL, a secret, a
//! CloudEvent or a breaker state. What it guarantees:
//! - creating deliveries is idempotent: one delivery per `(webhook, event id)`, however often
//!   the same event is offered;
//! - a delivery's body is written once, when the delivery is created, and never changes;
//! - a claimed delivery belongs to its claimer until the lease ends; a worker that dies
//!   leaves it to be claimed again, and a late result of a superseded claim changes nothing
//!   but the attempt log;
//! - an attempt, the delivery's new state, the breaker state and (after a `410 Gone`) the
//!   endpoint's disabling are written in one transaction;
//! - deleting a webhook deletes its deliveries, attempts and breaker.
//!
//! Times are unix milliseconds.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::StoreError;

/// Where a webhook was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOrigin {
    /// `[[webhook]]` in the configuration file (rewritten at every start).
    Config,
    /// `PUT /api/v1/webhooks/<name>`.
    Api,
}

impl WebhookOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOrigin::Config => "config",
            WebhookOrigin::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookOrigin> {
        match s {
            "config" => Some(WebhookOrigin::Config),
            "api" => Some(WebhookOrigin::Api),
            _ => None,
        }
    }
}

/// What a webhook calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// A signed CloudEvent POSTed to the URL (Standard Webhooks).
    Standard,
    /// GitLab's pipeline trigger API on the GitLab instance at the URL.
    GitlabTrigger,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Standard => "standard",
            WebhookKind::GitlabTrigger => "gitlab-trigger",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookKind> {
        match s {
            "standard" => Some(WebhookKind::Standard),
            "gitlab-trigger" => Some(WebhookKind::GitlabTrigger),
            _ => None,
        }
    }
}

/// The GitLab pipeline trigger of a `gitlab-trigger` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabTriggerRow {
    /// The numeric project id or the project's full path, as text.
    pub project: String,
    pub token: String,
    pub git_ref: String,
    pub variables: BTreeMap<String, String>,
}

/// Why and when a webhook stopped receiving deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDisabled {
    pub reason: String,
    pub at_ms: i64,
}

/// One webhook, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub name: String,
    pub origin: WebhookOrigin,
    pub kind: WebhookKind,
    pub url: String,
    /// Event names (`scan.completed`) or `*`.
    pub events: Vec<String>,
    /// Repository globs; empty means every repository.
    pub repositories: Vec<String>,
    /// The Standard Webhooks secret (`whsec_...`).
    pub secret: Option<String>,
    pub allow_private: bool,
    pub gitlab: Option<GitlabTriggerRow>,
    /// `None` while enabled.
    pub disabled: Option<WebhookDisabled>,
    /// Kept from the first write when a webhook is replaced.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in one).
    Pending,
    /// The receiver accepted it.
    Delivered,
    /// The retry budget is spent.
    Failed,
    /// Its webhook was disabled (`410 Gone`) before it was delivered.
    Disabled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            "disabled" => Some(DeliveryState::Disabled),
            _ => None,
        }
    }
}

/// A delivery to create: `body` is the CloudEvent, serialized once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook: String,
    pub event_id: String,
    pub event_type: String,
    pub body: Vec<u8>,
}

/// One delivery, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook: String,
    pub event_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    /// Attempts recorded in all.
    pub attempts: u32,
    /// Attempts since the delivery was created or last redelivered (the retry budget).
    pub round_attempts: u32,
    /// When it is due, while pending.
    pub next_attempt_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A delivery a worker holds: the row, the bytes to send, and the claim that proves it holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRow,
    pub body: Vec<u8>,
    pub claim: String,
}

/// One attempt to record. Exactly one of `status` and `error` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// At most [`MAX_RESPONSE_EXCERPT`] bytes (longer is cut).
    pub response: Vec<u8>,
    pub attempted_at_ms: i64,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub delivery: String,
    /// 1 for the first attempt of the delivery; numbers keep counting across redeliveries.
    pub number: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub response: Vec<u8>,
    pub attempted_at_ms: i64,
}

/// The most response bytes an attempt keeps.
pub const MAX_RESPONSE_EXCERPT: usize = 4096;

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt {
        at_ms: i64,
    },
    /// The retry budget is spent.
    Failed,
    /// The receiver answered `410 Gone`: the webhook is disabled, and so are its pending
    /// deliveries.
    DisableWebhook {
        reason: String,
    },
}

/// An attempt's result, written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAttempt {
    pub delivery: String,
    /// The claim the attempt was made under.
    pub claim: String,
    pub attempt: NewAttempt,
    pub next: AfterAttempt,
    /// The endpoint's breaker after the attempt (opaque JSON), if it is to be saved.
    pub breaker: Option<String>,
    pub now_ms: i64,
}

/// The result of [`WebhookStore::finish_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRecorded {
    /// The attempt's number; 0 if the delivery no longer exists (its webhook was deleted while
    /// the attempt ran), and nothing was recorded.
    pub number: u32,
    /// False when the claim had been superseded (a redelivery, an expired lease): the attempt
    /// is logged, but the delivery's state was left alone.
    pub applied: bool,
}

/// Webhook storage. Implementations must pass [`crate::testsuite_webhooks::webhook_store`].
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Creates or replaces a webhook; true if it was created. A replaced webhook keeps its
    /// `created_at_ms`, its deliveries and its breaker.
    async fn put_webhook(&self, row: &WebhookRow) -> Result<bool, StoreError>;
    async fn webhook(&self, name: &str) -> Result<Option<WebhookRow>, StoreError>;
    /// Every webhook, by name.
    async fn webhooks(&self) -> Result<Vec<WebhookRow>, StoreError>;
    /// Deletes a webhook with its deliveries, attempts and breaker; true if it existed.
    async fn delete_webhook(&self, name: &str) -> Result<bool, StoreError>;
    /// Deletes the webhooks of `origin` not named in `keep` (the configuration file's, at start).
    async fn prune_webhooks(
        &self,
        origin: WebhookOrigin,
        keep: &[String],
    ) -> Result<(), StoreError>;

    /// Creates the deliveries that do not exist yet (by `(webhook, event_id)`), due at `now_ms`;
    /// deliveries for webhooks that do not exist are skipped. Returns how many were created.
    async fn create_deliveries(
        &self,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<u64, StoreError>;
    /// Creates one delivery and claims it in the same transaction, for an attempt made at once
    /// (a test event); `None` if its webhook does not exist or the event already has a
    /// delivery there.
    async fn create_claimed_delivery(
        &self,
        delivery: &NewDelivery,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError>;
    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError>;
    /// The delivery of `event_id` to `webhook`.
    async fn delivery_for_event(
        &self,
        webhook: &str,
        event_id: &str,
    ) -> Result<Option<DeliveryRow>, StoreError>;
    /// The CloudEvent a delivery sends.
    async fn delivery_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A webhook's deliveries, newest first, older than the delivery `before` when given.
    async fn deliveries(
        &self,
        webhook: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError>;
    /// A delivery's attempts, oldest first.
    async fn attempts(&self, delivery: &str) -> Result<Vec<AttemptRow>, StoreError>;

    /// Claims up to `limit` pending deliveries of enabled webhooks that are due at `now_ms`
    /// and not held by a live lease, oldest due first, for `lease_ms`.
    async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Claims one delivery whatever its state or due time (a test event sent at once); `None`
    /// if it does not exist or a live lease holds it.
    async fn claim_delivery(
        &self,
        id: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError>;
    /// Records an attempt and what follows it (see [`FinishedAttempt`]).
    async fn finish_attempt(&self, result: &FinishedAttempt)
    -> Result<AttemptRecorded, StoreError>;
    /// Gives a claimed delivery back without an attempt, due at `at_ms` (its endpoint is
    /// paused); false if the claim had been superseded.
    async fn postpone_delivery(
        &self,
        id: &str,
        claim: &str,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Queues a delivery again, due now, with a fresh retry budget, whatever its state (a
    /// delivery of a disabled webhook is queued but not claimed until the webhook is enabled).
    async fn redeliver(&self, id: &str, now_ms: i64) -> Result<Option<DeliveryRow>, StoreError>;
    /// When the next pending delivery of an enabled webhook becomes claimable (the later of
    /// its due time and its lease), if there is one.
    async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError>;
    /// Deletes delivered, failed and disabled deliveries last changed before `before_ms`;
    /// returns how many went.
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Saves an endpoint's breaker state (opaque JSON); ignored if the webhook does not exist.
    async fn save_breaker(&self, webhook: &str, state: &str, now_ms: i64)
    -> Result<(), StoreError>;
    /// Every saved breaker state, by webhook name.
    async fn breakers(&self) -> Result<BTreeMap<String, String>, StoreError>;
}
