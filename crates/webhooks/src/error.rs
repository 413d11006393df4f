//! The errors of the webhook service. Each variant says whose fault it is: a definition that
//! is refused and a read-only, unknown or disabled webhook are the caller's (the HTTP layer
//! answers 4xx); storage and client set-up failures are ours.

use store::StoreError;

use crate::cloudevents::CloudEventError;
use crate::config::ConfigError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {name:?}: {source}")]
    Invalid {
        name: String,
        #[source]
        source: ConfigError,
    },
    #[error(
        "webhook {name:?} is defined in the configuration file; change it there (it is read-only through the API)"
    )]
    ReadOnly { name: String },
    #[error("no webhook named {name:?}")]
    UnknownWebhook { name: String },
    #[error("webhook {name:?} has no delivery {id:?}")]
    UnknownDelivery { name: String, id: String },
    #[error("webhook {name:?} is disabled ({reason}); PUT its definition again to enable it")]
    Disabled { name: String, reason: String },
    #[error("webhook {name:?} cannot be used: its stored definition is refused now: {reason}")]
    Unusable { name: String, reason: String },
    #[error("building the event failed: {source}")]
    Event {
        #[from]
        source: CloudEventError,
    },
    #[error("drawing a random event id failed: {reason}")]
    Entropy { reason: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("webhook storage failed: {0}")]
    Store(#[from] StoreError),
}
