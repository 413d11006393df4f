//! The delivery worker: claims due deliveries, attempts them, records every attempt, and
//! schedules what follows.
//!
//! - **At least once, across restarts.** A delivery is claimed with a lease
//!   ([`crate::WebhookOptions::lease`]) before it is attempted and released only by writing
//!   its attempt; if the process dies in between, the lease ends and a later worker takes it
//!   again. Receivers deduplicate by `webhook-id` (the event id), as Standard Webhooks asks.
//! - **Retries** follow [`crate::retry::RetryPolicy`]: exponential backoff with full jitter,
//!   `Retry-After` honoured (capped), few retries for rejections, `410 Gone` disables the
//!   webhook (and its pending deliveries).
//! - **A circuit breaker per webhook** ([`crate::retry::CircuitBreaker`]): after repeated
//!   failures the webhook is paused; its due deliveries are put back, without an attempt and
//!   without spending their retry budget, until the cool-down ends, then one trial decides.
//!   The breaker is saved with each attempt, so the API shows it and a restart keeps it.
//! - **Prompt and quiet.** The worker wakes when deliveries are created or redelivered and
//!   otherwise sleeps until the next delivery is due (at most
//!   [`crate::WebhookOptions::idle_poll`]). At most [`crate::WebhookOptions::max_in_flight`]
//!   attempts run at once. Finished deliveries older than the retention are pruned hourly.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use store::{AfterAttempt, ClaimedDelivery, DeliveryRow, FinishedAttempt, NewAttempt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::cloudevents::{self, CloudEvent};
use crate::config::{Endpoint, Target};
use crate::error::WebhookError;
use crate::retry::{
    Admission, AttemptOutcome, BreakerState, CircuitBreaker, Decision, OutcomeClass,
};
use crate::service::{EndpointEntry, WebhookService, duration_ms, unix_ms};
use crate::standard_webhooks::WebhookHeaders;
use crate::transport::{AttemptReport, OutgoingRequest};

/// How often finished deliveries past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// How long the deliveries of a webhook whose stored definition is refused wait.
const UNUSABLE_RETRY: Duration = Duration::from_secs(5 * 60);
/// Why a webhook is disabled after a `410`.
const GONE: &str = "the receiver answered 410 Gone";

/// How many attempts a delivery gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// The retry policy decides; the breaker may pause it.
    Scheduled,
    /// One attempt, now, whatever the breaker says (a test event).
    Once,
}

impl WebhookService {
    /// Starts the delivery worker; it runs until the task is aborted. Aborting it loses
    /// nothing: deliveries in flight are taken again when their lease ends.
    pub fn spawn_worker(self: &Arc<Self>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run().await })
    }

    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.options.max_in_flight));
        let mut next_prune = Instant::now();
        loop {
            if Instant::now() >= next_prune {
                self.prune().await;
                next_prune = Instant::now() + PRUNE_EVERY;
            }
            let free = slots.available_permits();
            if free == 0 {
                // Every slot is busy: wait until one frees up.
                if let Ok(permit) = Arc::clone(&slots).acquire_owned().await {
                    drop(permit);
                }
                continue;
            }
            let now = unix_ms(SystemTime::now());
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            let claimed = match self
                .store
                .claim_due_deliveries(now, duration_ms(self.options.lease), limit)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                    self.sleep_or_wake(self.options.idle_poll).await;
                    continue;
                }
            };
            let full = claimed.len() >= free;
            for delivery in claimed {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let this = Arc::clone(&self);
                tokio::spawn(async move {
                    let id = delivery.delivery.id.clone();
                    if let Err(e) = this.attempt(delivery, Budget::Scheduled).await {
                        tracing::warn!(delivery = %id, error = %e, "webhook attempt not recorded; it is retried after its lease");
                    }
                    drop(permit);
                });
            }
            if !full {
                let wait = self.until_next_due().await;
                self.sleep_or_wake(wait).await;
            }
        }
    }

    async fn sleep_or_wake(&self, wait: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// How long until the next delivery becomes claimable, at most the idle poll.
    async fn until_next_due(&self) -> Duration {
        let idle = self.options.idle_poll;
        match self.store.next_delivery_due().await {
            Ok(Some(at)) => {
                let now = unix_ms(SystemTime::now());
                Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0)).min(idle)
            }
            Ok(None) => idle,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read when the next webhook delivery is due");
                idle
            }
        }
    }

    async fn prune(&self) {
        let cut = SystemTime::now()
            .checked_sub(self.options.retention)
            .map_or(0, unix_ms);
        match self.store.prune_deliveries(cut).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old webhook deliveries pruned"),
            Err(e) => tracing::warn!(error = %e, "cannot prune old webhook deliveries"),
        }
    }

    /// The webhook's entry, read from the store when memory does not know it (yet).
    async fn endpoint_or_load(&self, name: &str) -> Result<Option<EndpointEntry>, WebhookError> {
        if let Some(entry) = self.endpoint(name) {
            return Ok(Some(entry));
        }
        let row = self.store.webhook(name).await?;
        self.remember(name, row.as_ref());
        Ok(self.endpoint(name))
    }

    /// Makes one attempt of a claimed delivery (or puts it back while its webhook is paused)
    /// and records it with what follows, in one store transaction.
    pub(crate) async fn attempt(
        &self,
        claimed: ClaimedDelivery,
        budget: Budget,
    ) -> Result<(), WebhookError> {
        let ClaimedDelivery {
            delivery,
            body,
            claim,
        } = claimed;
        let now = SystemTime::now();
        let endpoint = match self.endpoint_or_load(&delivery.webhook).await? {
            // Deleted: its deliveries went with it.
            None => return Ok(()),
            Some(EndpointEntry::Unusable(_)) => {
                let later = unix_ms(now + UNUSABLE_RETRY);
                self.store
                    .postpone_delivery(&delivery.id, &claim, later, unix_ms(now))
                    .await?;
                return Ok(());
            }
            Some(EndpointEntry::Ready(endpoint)) => endpoint,
        };
        if budget == Budget::Scheduled
            && let Some(resume) = self.paused_until(&endpoint.name, now)
        {
            self.store
                .postpone_delivery(&delivery.id, &claim, unix_ms(resume), unix_ms(now))
                .await?;
            return Ok(());
        }
        let report = match request_for(&endpoint, &delivery, &body, now) {
            Ok(request) => self.transport.send(request).await,
            Err(reason) => AttemptReport::not_sent(reason),
        };
        let finished = SystemTime::now();
        let next = self.next_step(budget, delivery.round_attempts + 1, &report, finished);
        let breaker = self.record_outcome(&endpoint.name, &report.outcome, finished);
        let result = FinishedAttempt {
            delivery: delivery.id.clone(),
            claim,
            attempt: NewAttempt {
                status: report.status(),
                error: report.error.clone(),
                duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                response: report.response,
                attempted_at_ms: unix_ms(now),
            },
            next: next.clone(),
            breaker,
            now_ms: unix_ms(finished),
        };
        let recorded = self.store.finish_attempt(&result).await?;
        tracing::debug!(webhook = %endpoint.name, delivery = %delivery.id, attempt = recorded.number,
            status = ?result.attempt.status, error = ?result.attempt.error, next = ?next, "webhook attempt");
        match next {
            AfterAttempt::DisableWebhook { .. } if recorded.applied => {
                tracing::warn!(webhook = %endpoint.name, "webhook disabled: {GONE}");
                let row = self.store.webhook(&endpoint.name).await?;
                self.remember(&endpoint.name, row.as_ref());
            }
            AfterAttempt::RetryAt { .. } => self.wake(),
            _ => {}
        }
        Ok(())
    }

    /// When a paused webhook may be tried again, or `None` if an attempt may start now.
    fn paused_until(&self, name: &str, now: SystemTime) -> Option<SystemTime> {
        let mut breakers = self.breakers.lock().ok()?;
        let breaker = breakers
            .entry(name.to_owned())
            .or_insert_with(|| CircuitBreaker::new(self.options.breaker.clone()));
        match breaker.admit(now) {
            Admission::Allowed => None,
            Admission::Paused { retry_at } => Some(match breaker.state() {
                // A trial is running: look again once it must have ended, not a whole
                // cool-down later.
                BreakerState::HalfOpen { .. } => {
                    retry_at.min(now + self.options.attempt_timeout + Duration::from_secs(1))
                }
                _ => retry_at,
            }),
        }
    }

    /// Feeds an outcome to the webhook's breaker; returns the state to save.
    fn record_outcome(
        &self,
        name: &str,
        outcome: &AttemptOutcome,
        now: SystemTime,
    ) -> Option<String> {
        let mut breakers = self.breakers.lock().ok()?;
        let breaker = breakers
            .entry(name.to_owned())
            .or_insert_with(|| CircuitBreaker::new(self.options.breaker.clone()));
        breaker.record(outcome, now);
        serde_json::to_string(breaker.state()).ok()
    }

    fn next_step(
        &self,
        budget: Budget,
        attempt: u32,
        report: &AttemptReport,
        now: SystemTime,
    ) -> AfterAttempt {
        let gone = || AfterAttempt::DisableWebhook {
            reason: GONE.to_owned(),
        };
        if budget == Budget::Once {
            return match report.outcome.class() {
                OutcomeClass::Delivered => AfterAttempt::Delivered,
                OutcomeClass::Gone => gone(),
                OutcomeClass::Transient | OutcomeClass::Rejected => AfterAttempt::Failed,
            };
        }
        match self
            .options
            .retry
            .decide(attempt, &report.outcome, now, &mut getrandom::SysRng)
        {
            Ok(Decision::Delivered) => AfterAttempt::Delivered,
            Ok(Decision::DisableEndpoint) => gone(),
            Ok(Decision::RetryAt { at, .. }) => AfterAttempt::RetryAt { at_ms: unix_ms(at) },
            Ok(Decision::GiveUp { .. }) => AfterAttempt::Failed,
            Err(e) => {
                tracing::error!(error = %e, "no retry schedule; the delivery fails (redeliver it by hand)");
                AfterAttempt::Failed
            }
        }
    }
}

/// The request one attempt sends: the stored CloudEvent, signed, or the GitLab trigger form
/// built from it.
fn request_for(
    endpoint: &Endpoint,
    delivery: &DeliveryRow,
    body: &[u8],
    now: SystemTime,
) -> Result<OutgoingRequest, String> {
    match &endpoint.target {
        Target::Standard { url, secret } => {
            let signed =
                WebhookHeaders::sign(std::slice::from_ref(secret), &delivery.event_id, now, body)
                    .map_err(|e| e.to_string())?;
            Ok(OutgoingRequest {
                url: url.url().clone(),
                allow_private: endpoint.allow_private,
                content_type: cloudevents::CONTENT_TYPE,
                headers: signed
                    .pairs()
                    .iter()
                    .map(|(name, value)| (*name, (*value).to_owned()))
                    .collect(),
                body: body.to_vec(),
            })
        }
        Target::GitlabTrigger(trigger) => {
            let event = CloudEvent::from_json(body).map_err(|e| e.to_string())?;
            let request = trigger.request_for(&event).map_err(|e| e.to_string())?;
            Ok(OutgoingRequest {
                url: request.url,
                allow_private: endpoint.allow_private,
                content_type: request.content_type,
                headers: Vec::new(),
                body: request.body.into_bytes(),
            })
        }
    }
}
