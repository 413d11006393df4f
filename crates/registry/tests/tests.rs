//! Registry integration tests: the real router and real stores (files + SQLite) on a real
//! socket, driven over HTTP. One test binary; modules group the areas.

mod support;

/// Malformed and hostile requests: names, digests, bodies, disconnects, manifests.
mod hostile;
/// Pull, push, discovery and management: every endpoint and each of its error cases.
mod protocol;
/// Upload sessions and data across a server restart.
mod restart;
