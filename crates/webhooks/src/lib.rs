//! `webhooks`: Bonded tells other systems what happened, by signed and durable webhooks.
//!
//! The path of an event: a state change writes its event in the outbox (store, same
//! transaction); the outbox runner hands it to [`WebhookService::handle`], which turns it into
//! a CloudEvent ([`fanout`]) and stores one delivery per subscribed webhook, idempotently; the
//! delivery worker ([`WebhookService::spawn_worker`]) claims due deliveries, signs them ([`standard_webhooks`]) or builds a
//! GitLab pipeline trigger ([`gitlab`]), sends them over a pinned, checked connection
//! ([`transport`], [`target`]), records every attempt, and retries ([`retry`]) until the
//! receiver accepts, the budget is spent, or it answers `410 Gone`. [`http`] serves
//! `/api/v1/webhooks`.
//!
//! Architecture invariants: this crate never writes outbox events and never reads registry
//! content; it sees the registry only through `store::EventRow`s and its own tables. It never
//! follows a redirect, never connects to an address it has not checked, and never returns a
//! secret.
//!
//! Specifications: CloudEvents 1.0 (structured JSON mode), Standard Webhooks 1.0 (`v1`
//! signatures), GitLab's pipeline trigger API, RFC 9110 `Retry-After`.

pub mod cloudevents;
pub mod config;
mod error;
pub mod fanout;
pub mod gitlab;
pub mod http;
pub mod retry;
mod service;
pub mod standard_webhooks;
pub mod target;
pub mod transport;
mod worker;

pub use config::{GlobCompiler, RepositoryMatcher, WebhookConfig};
pub use error::WebhookError;
pub use http::{AdminCheck, AdminVerdict, bearer_admin, router};
pub use service::{
    DeliveryDetail, LEASE_MARGIN, TestOutcome, WebhookOptions, WebhookService, WebhookSummary,
};
