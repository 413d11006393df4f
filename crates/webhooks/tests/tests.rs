//! The integration tests of the `webhooks` crate, in one binary.

mod api;
mod cloudevents_schema;
mod delivery;
mod support;
mod throughput;
