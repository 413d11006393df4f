//! The policy crate's integration tests, one binary.

mod cel;
