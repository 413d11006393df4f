//! The scan crate's integration tests, linked into one binary.

mod binaries;
mod e2e;
mod golden;
mod hostile;
mod import;
mod remote;
mod rpmdb;
mod support;
mod versions;
