//! The events crate's integration tests, one binary.

mod outbox;
