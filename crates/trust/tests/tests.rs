//! One integration-test binary for the trust crate (see STYLE.md: one binary per crate).

mod attestations;
mod bundle;
mod hostile;
mod keys;
mod provenance;
mod signatures;
mod support;
