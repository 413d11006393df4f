//! Storage integration tests: the shared conformance suite on every local backend.

mod conformance;
