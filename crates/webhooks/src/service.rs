//! The webhook service: the outbox handler that turns events into deliveries, the operations
//! behind `/api/v1/webhooks`, and the state the delivery worker ([`crate::worker`]) shares.
//!
//! Guarantees:
//! - [`WebhookService::handle`] is idempotent per event id: the same events handed over twice
//!   (after a crash or an error, as the outbox does) create each delivery once.
//! - Nothing is lost across restarts: a delivery exists in the store before `handle` returns,
//!   and the worker of any later process takes it (and any delivery whose worker died, once
//!   its lease ends).
//! - Configured webhooks (`[[webhook]]`) are written to the store at every start, enabled,
//!   and those no longer configured are removed; through the API they are read-only.
//! - Secrets and tokens leave the service only inside requests to their own endpoint; the
//!   API shows fingerprints.
//!
//! Handlers call this service, the service calls the store; the store never calls up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store::{
    AttemptRow, DeliveryRow, EventRow, NewDelivery, WebhookOrigin, WebhookRow, WebhookStore,
};
use tokio::sync::Notify;
use url::Url;

use crate::cloudevents::EventId;
use crate::config::{ConfigError, Endpoint, GlobCompiler, WebhookConfig, first_duplicate};
use crate::error::WebhookError;
use crate::fanout;
use crate::retry::{BreakerPolicy, BreakerState, CircuitBreaker, RetryPolicy};
use crate::transport::{HostLookup, SystemLookup, Transport};

/// How much longer than an attempt's deadline a lease lasts at least: the time to record the
/// attempt after it ended.
pub const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// The shortest idle poll (a zero one would spin).
const MIN_IDLE_POLL: Duration = Duration::from_millis(10);

/// How deliveries are attempted.
#[derive(Clone)]
pub struct WebhookOptions {
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    /// The deadline of one attempt (connect, send, response head, first 4 KiB).
    pub attempt_timeout: Duration,
    /// How long a claimed delivery belongs to its worker; after that a worker that died is
    /// presumed dead and the delivery is taken again. At least the attempt timeout plus
    /// [`LEASE_MARGIN`].
    pub lease: Duration,
    /// Attempts in flight at once.
    pub max_in_flight: usize,
    /// The longest the worker sleeps when nothing is due and nobody wakes it.
    pub idle_poll: Duration,
    /// How long finished deliveries (and their attempts) are kept.
    pub retention: Duration,
    /// Name resolution for delivery (the system resolver by default).
    pub lookup: Arc<dyn HostLookup>,
}

impl Default for WebhookOptions {
    /// The retry and breaker defaults of [`crate::retry`], 15 s per attempt (Standard Webhooks
    /// suggests 15 to 30 s), a 60 s lease, 16 attempts in flight, finished deliveries kept 30
    /// days.
    fn default() -> Self {
        WebhookOptions {
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            attempt_timeout: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            max_in_flight: 16,
            idle_poll: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 24 * 60 * 60),
            lookup: Arc::new(SystemLookup),
        }
    }
}

/// A webhook as the API shows it: the stored row, its breaker, and why its stored definition
/// is unusable if it is.
#[derive(Debug, Clone)]
pub struct WebhookSummary {
    pub row: WebhookRow,
    pub breaker: BreakerState,
    pub problem: Option<String>,
}

/// One delivery with the event it sends and its attempts.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRow,
    pub event: Vec<u8>,
    pub attempts: Vec<AttemptRow>,
}

/// The delivery a test created and its one attempt.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub delivery: DeliveryRow,
    pub attempt: Option<AttemptRow>,
}

/// A webhook the service knows: compiled, or refused with the reason.
#[derive(Clone)]
pub(crate) enum EndpointEntry {
    Ready(Arc<Endpoint>),
    Unusable(String),
}

pub struct WebhookService {
    pub(crate) store: Arc<dyn WebhookStore>,
    pub(crate) globs: GlobCompiler,
    pub(crate) public_url: Url,
    pub(crate) options: WebhookOptions,
    pub(crate) transport: Transport,
    pub(crate) endpoints: RwLock<BTreeMap<String, EndpointEntry>>,
    pub(crate) breakers: Mutex<BTreeMap<String, CircuitBreaker>>,
    pub(crate) wake: Notify,
}

/// Unix milliseconds of `time` (0 before the epoch).
pub(crate) fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl WebhookService {
    /// Writes the configured webhooks to the store (replacing earlier configured ones), loads
    /// every webhook and breaker, and builds the HTTP clients. The delivery worker is started
    /// separately ([`WebhookService::spawn_worker`]).
    pub async fn start(
        store: Arc<dyn WebhookStore>,
        configured: &[WebhookConfig],
        public_url: Url,
        globs: GlobCompiler,
        mut options: WebhookOptions,
    ) -> Result<Arc<WebhookService>, WebhookError> {
        options.lease = options.lease.max(options.attempt_timeout + LEASE_MARGIN);
        options.max_in_flight = options.max_in_flight.max(1);
        options.idle_poll = options.idle_poll.max(MIN_IDLE_POLL);
        if let Some(name) = first_duplicate(configured) {
            return Err(WebhookError::Invalid {
                name: name.to_owned(),
                source: ConfigError::Duplicate,
            });
        }
        let now = unix_ms(SystemTime::now());
        let mut names = Vec::with_capacity(configured.len());
        for config in configured {
            let previous = store.webhook(&config.name).await?;
            let row = config
                .to_row(WebhookOrigin::Config, previous.as_ref(), now, &globs)
                .map_err(|source| WebhookError::Invalid {
                    name: config.name.clone(),
                    source,
                })?;
            if previous.is_some_and(|p| p.origin == WebhookOrigin::Api) {
                tracing::warn!(webhook = %row.name, "a configured webhook replaces the API webhook of the same name");
            }
            store.put_webhook(&row).await?;
            names.push(row.name);
        }
        store.prune_webhooks(WebhookOrigin::Config, &names).await?;

        let transport = Transport::new(Arc::clone(&options.lookup), options.attempt_timeout)?;
        let service = WebhookService {
            store,
            globs,
            public_url,
            transport,
            endpoints: RwLock::new(BTreeMap::new()),
            breakers: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            options,
        };
        service.load().await?;
        Ok(Arc::new(service))
    }

    /// Reads every webhook and breaker from the store into memory.
    async fn load(&self) -> Result<(), WebhookError> {
        let mut endpoints = BTreeMap::new();
        for row in self.store.webhooks().await? {
            endpoints.insert(row.name.clone(), self.compile(&row));
        }
        let mut breakers = BTreeMap::new();
        for (name, state) in self.store.breakers().await? {
            match serde_json::from_str::<BreakerState>(&state) {
                Ok(state) => {
                    let breaker = CircuitBreaker::restore(self.options.breaker.clone(), state);
                    breakers.insert(name, breaker);
                }
                Err(e) => {
                    tracing::warn!(webhook = %name, error = %e, "stored breaker state is unreadable; starting closed")
                }
            }
        }
        if let Ok(mut map) = self.endpoints.write() {
            *map = endpoints;
        }
        if let Ok(mut map) = self.breakers.lock() {
            *map = breakers;
        }
        Ok(())
    }

    fn compile(&self, row: &WebhookRow) -> EndpointEntry {
        match Endpoint::from_row(row, &self.globs) {
            Ok(endpoint) => EndpointEntry::Ready(Arc::new(endpoint)),
            Err(e) => {
                tracing::error!(webhook = %row.name, error = %e, "stored webhook is refused; it delivers nothing until it is defined again");
                EndpointEntry::Unusable(e.to_string())
            }
        }
    }

    /// Replaces (or, with `None`, forgets) the in-memory entry of one webhook.
    pub(crate) fn remember(&self, name: &str, row: Option<&WebhookRow>) {
        let entry = row.map(|row| self.compile(row));
        if let Ok(mut map) = self.endpoints.write() {
            match entry {
                Some(entry) => map.insert(name.to_owned(), entry),
                None => map.remove(name),
            };
        }
    }

    pub(crate) fn endpoint(&self, name: &str) -> Option<EndpointEntry> {
        self.endpoints.read().ok()?.get(name).cloned()
    }

    fn ready_endpoints(&self) -> Vec<Arc<Endpoint>> {
        let Ok(map) = self.endpoints.read() else {
            return Vec::new();
        };
        map.values()
            .filter_map(|entry| match entry {
                EndpointEntry::Ready(endpoint) if endpoint.disabled.is_none() => {
                    Some(Arc::clone(endpoint))
                }
                _ => None,
            })
            .collect()
    }

    /// The breaker state of a webhook (closed if it never failed).
    pub fn breaker(&self, name: &str) -> BreakerState {
        self.breakers
            .lock()
            .ok()
            .and_then(|map| map.get(name).map(|b| b.state().clone()))
            .unwrap_or(BreakerState::Closed {
                consecutive_failures: 0,
            })
    }

    /// Asks the worker to look for due deliveries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The outbox handler: one delivery per event and subscribed, enabled webhook, created
    /// idempotently (by event id); then the worker is woken. Events of kinds webhooks do not
    /// see, and events that cannot become a CloudEvent (logged), create nothing.
    pub async fn handle(&self, events: &[EventRow]) -> Result<(), WebhookError> {
        let endpoints = self.ready_endpoints();
        if endpoints.is_empty() {
            return Ok(());
        }
        let mut deliveries = Vec::new();
        for event in events {
            let Some(kind) = fanout::webhook_kind(&event.kind) else {
                continue;
            };
            let subscribers: Vec<&Arc<Endpoint>> = endpoints
                .iter()
                .filter(|e| e.subscription.wants(kind, event.repository.as_deref()))
                .collect();
            if subscribers.is_empty() {
                continue;
            }
            let (cloud_event, body) = match fanout::cloud_event(event, &self.public_url) {
                Ok(Some(built)) => built,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(event = %event.id, kind = %event.kind, error = %e, "event cannot become a CloudEvent; not delivered");
                    continue;
                }
            };
            let event_type = cloud_event.kind().type_name();
            for endpoint in subscribers {
                deliveries.push(NewDelivery {
                    webhook: endpoint.name.clone(),
                    event_id: event.id.clone(),
                    event_type: event_type.clone(),
                    body: body.clone(),
                });
            }
        }
        let created = self
            .store
            .create_deliveries(&deliveries, unix_ms(SystemTime::now()))
            .await?;
        if created > 0 {
            self.wake();
        }
        Ok(())
    }

    fn summary(&self, row: WebhookRow) -> WebhookSummary {
        let problem = match self.endpoint(&row.name) {
            Some(EndpointEntry::Unusable(reason)) => Some(reason),
            _ => None,
        };
        WebhookSummary {
            breaker: self.breaker(&row.name),
            row,
            problem,
        }
    }

    /// Every webhook, by name.
    pub async fn webhooks(&self) -> Result<Vec<WebhookSummary>, WebhookError> {
        let rows = self.store.webhooks().await?;
        Ok(rows.into_iter().map(|row| self.summary(row)).collect())
    }

    async fn row(&self, name: &str) -> Result<WebhookRow, WebhookError> {
        self.store
            .webhook(name)
            .await?
            .ok_or_else(|| WebhookError::UnknownWebhook {
                name: name.to_owned(),
            })
    }

    pub async fn webhook(&self, name: &str) -> Result<WebhookSummary, WebhookError> {
        Ok(self.summary(self.row(name).await?))
    }

    /// Creates or replaces an API webhook (enabled, with a closed breaker); true if created.
    /// A secret or token left out of a replacement is kept.
    pub async fn put_webhook(
        &self,
        name: &str,
        mut definition: WebhookConfig,
    ) -> Result<(bool, WebhookSummary), WebhookError> {
        let invalid = |source| WebhookError::Invalid {
            name: name.to_owned(),
            source,
        };
        if definition.name.is_empty() {
            definition.name = name.to_owned();
        } else if definition.name != name {
            return Err(invalid(ConfigError::NameMismatch {
                path: name.to_owned(),
                body: definition.name,
            }));
        }
        let previous = self.store.webhook(name).await?;
        if previous
            .as_ref()
            .is_some_and(|p| p.origin == WebhookOrigin::Config)
        {
            return Err(WebhookError::ReadOnly {
                name: name.to_owned(),
            });
        }
        let now = unix_ms(SystemTime::now());
        let row = definition
            .to_row(WebhookOrigin::Api, previous.as_ref(), now, &self.globs)
            .map_err(invalid)?;
        let created = self.store.put_webhook(&row).await?;
        let closed = CircuitBreaker::new(self.options.breaker.clone());
        if let Ok(state) = serde_json::to_string(closed.state()) {
            self.store.save_breaker(name, &state, now).await?;
        }
        if let Ok(mut map) = self.breakers.lock() {
            map.insert(name.to_owned(), closed);
        }
        self.remember(name, Some(&row));
        self.wake();
        Ok((created, self.summary(row)))
    }

    /// Deletes an API webhook with its deliveries.
    pub async fn delete_webhook(&self, name: &str) -> Result<(), WebhookError> {
        let row = self.row(name).await?;
        if row.origin == WebhookOrigin::Config {
            return Err(WebhookError::ReadOnly {
                name: name.to_owned(),
            });
        }
        self.store.delete_webhook(name).await?;
        self.remember(name, None);
        if let Ok(mut map) = self.breakers.lock() {
            map.remove(name);
        }
        Ok(())
    }

    /// A webhook's deliveries, newest first, older than delivery `before` when given.
    pub async fn deliveries(
        &self,
        name: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, WebhookError> {
        self.row(name).await?;
        Ok(self.store.deliveries(name, before, limit).await?)
    }

    async fn own_delivery(&self, name: &str, id: &str) -> Result<DeliveryRow, WebhookError> {
        let unknown = || WebhookError::UnknownDelivery {
            name: name.to_owned(),
            id: id.to_owned(),
        };
        let delivery = self.store.delivery(id).await?.ok_or_else(unknown)?;
        if delivery.webhook != name {
            return Err(unknown());
        }
        Ok(delivery)
    }

    /// One delivery of webhook `name`, with its event and attempts.
    pub async fn delivery(&self, name: &str, id: &str) -> Result<DeliveryDetail, WebhookError> {
        self.row(name).await?;
        let delivery = self.own_delivery(name, id).await?;
        let event = self.store.delivery_body(id).await?.unwrap_or_default();
        let attempts = self.store.attempts(id).await?;
        Ok(DeliveryDetail {
            delivery,
            event,
            attempts,
        })
    }

    /// Queues a delivery again, due now, with a fresh retry budget and the same event (id and
    /// bytes).
    pub async fn redeliver(&self, name: &str, id: &str) -> Result<DeliveryRow, WebhookError> {
        let row = self.row(name).await?;
        if let Some(disabled) = row.disabled {
            return Err(WebhookError::Disabled {
                name: name.to_owned(),
                reason: disabled.reason,
            });
        }
        self.own_delivery(name, id).await?;
        let queued = self
            .store
            .redeliver(id, unix_ms(SystemTime::now()))
            .await?
            .ok_or_else(|| WebhookError::UnknownDelivery {
                name: name.to_owned(),
                id: id.to_owned(),
            })?;
        self.wake();
        Ok(queued)
    }

    /// Sends a `dev.bonded.webhook.test` event to webhook `name` now, once (whatever its
    /// breaker or enabled state: a test is how an owner checks a repaired endpoint), records it
    /// as a delivery, and returns it with its attempt.
    pub async fn send_test(&self, name: &str) -> Result<TestOutcome, WebhookError> {
        self.row(name).await?;
        if let Some(EndpointEntry::Unusable(reason)) = self.endpoint(name) {
            return Err(WebhookError::Unusable {
                name: name.to_owned(),
                reason,
            });
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| WebhookError::Entropy {
            reason: e.to_string(),
        })?;
        let id = EventId::new(&hex::encode(random))?;
        let now = SystemTime::now();
        let (event, body) = fanout::test_event(name, &id, &self.public_url, now)?;
        let delivery = NewDelivery {
            webhook: name.to_owned(),
            event_id: id.as_str().to_owned(),
            event_type: event.kind().type_name(),
            body,
        };
        let claimed = self
            .store
            .create_claimed_delivery(&delivery, unix_ms(now), duration_ms(self.options.lease))
            .await?
            .ok_or_else(|| WebhookError::UnknownWebhook {
                name: name.to_owned(),
            })?;
        let id = claimed.delivery.id.clone();
        self.attempt(claimed, crate::worker::Budget::Once).await?;
        let delivery = self.own_delivery(name, &id).await?;
        let attempt = self.store.attempts(&id).await?.pop();
        Ok(TestOutcome { delivery, attempt })
    }
}
