//! The outbox's consumers: each reads the events after its cursor, in commit order, hands
//! them to its handler, and moves its cursor only after the handler succeeded.
//!
//! Guarantees:
//! - At least once: an event is handed over again after a handler error or a crash before
//!   the cursor moved, so handlers are idempotent per event id (`EventRow::id`).
//! - Nothing is skipped: a consumer never moves past an event its handler did not accept. A
//!   failing batch is retried with exponential backoff and jitter (from
//!   [`RunOptions::min_backoff`] up to [`RunOptions::max_backoff`]), so one broken event
//!   holds its consumer back, visibly in the log and the `bonded_outbox_failures_total`
//!   metric, and never loses what follows it.
//! - Prompt: a consumer waits on the store's commit signal, so a new event is read as soon as
//!   its transaction commits, with a slow poll only as a safety net.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use store::{EventRow, EventStore};
use tokio::task::JoinHandle;

/// Why a handler could not take a batch; the batch comes again after a backoff.
#[derive(Debug, thiserror::Error)]
#[error("{consumer}: {reason}")]
pub struct ConsumerError {
    pub consumer: String,
    pub reason: String,
}

impl ConsumerError {
    pub fn new(consumer: &str, reason: impl std::fmt::Display) -> ConsumerError {
        ConsumerError {
            consumer: consumer.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A reader of the outbox.
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// The cursor's name; stable across releases (renaming it replays every event).
    fn name(&self) -> &'static str;
    /// Handles events in commit order. Must be idempotent per event id.
    async fn handle(&self, events: &[EventRow]) -> Result<(), ConsumerError>;
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Events handed over at once.
    pub batch: u32,
    /// How long a consumer waits for a commit signal before looking anyway.
    pub poll: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch: 256,
            poll: Duration::from_secs(2),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Runs `consumer` until the task is aborted.
pub fn spawn(
    events: Arc<dyn EventStore>,
    consumer: Arc<dyn Consumer>,
    options: RunOptions,
) -> JoinHandle<()> {
    tokio::spawn(run(events, consumer, options))
}

async fn run(events: Arc<dyn EventStore>, consumer: Arc<dyn Consumer>, options: RunOptions) {
    let name = consumer.name();
    let mut commits = events.subscribe();
    let mut failures: u32 = 0;
    loop {
        // Marked seen before reading, so a commit after the read wakes the wait below.
        commits.borrow_and_update();
        match step(&*events, &*consumer, &options).await {
            Ok(true) => failures = 0,
            Ok(false) => {
                failures = 0;
                let _ = tokio::time::timeout(options.poll, commits.changed()).await;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = backoff(&options, failures);
                metrics::counter!("bonded_outbox_failures_total", "consumer" => name).increment(1);
                tracing::warn!(consumer = name, error = %e, attempt = failures,
                    retry_in_ms = delay.as_millis() as u64, "outbox consumer failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Hands over the next batch; `Ok(false)` when there was nothing to hand over.
async fn step(
    events: &dyn EventStore,
    consumer: &dyn Consumer,
    options: &RunOptions,
) -> Result<bool, ConsumerError> {
    let name = consumer.name();
    let cursor = events
        .cursor(name)
        .await
        .map_err(|e| ConsumerError::new(name, e))?;
    let batch = events
        .events_after(cursor, options.batch)
        .await
        .map_err(|e| ConsumerError::new(name, e))?;
    let Some(last) = batch.last().map(|e| e.seq) else {
        return Ok(false);
    };
    consumer.handle(&batch).await?;
    events
        .advance_cursor(name, last, unix_now())
        .await
        .map_err(|e| ConsumerError::new(name, e))?;
    metrics::counter!("bonded_outbox_events_total", "consumer" => name)
        .increment(batch.len() as u64);
    Ok(true)
}

/// Exponential backoff with full jitter in its upper half: `[d/2, d)` for
/// `d = min(min_backoff * 2^(failures-1), max_backoff)`.
fn backoff(options: &RunOptions, failures: u32) -> Duration {
    let exp = options
        .min_backoff
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let ceiling = exp.min(options.max_backoff);
    let mut bytes = [0u8; 4];
    let fraction = match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_and_stays_jittered() {
        let options = RunOptions {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RunOptions::default()
        };
        for failures in 1..40 {
            let d = backoff(&options, failures);
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << (failures - 1).min(20))
                .min(Duration::from_secs(1));
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
    }
}
