//! Black-box tests of the `bonded` binary: configuration, TLS, shutdown, crash recovery, and
//! the real third-party clients (skopeo, podman, oras) over loopback. One test binary.
//!
//! A test that needs an external program fails when it is missing: the README's test command
//! installs them; nothing here passes silently without its client.

mod support;

/// skopeo, podman and oras against a running `bonded serve`.
mod clients;
/// The supply-chain pipeline: promotions, decisions, history, immutable tags.
mod pipeline;
/// Scanning inside `bonded serve`: the worker, the API, re-matching.
mod registry_scan;
/// `bonded scan`, `bonded sbom` and `bonded db`.
mod scan;
/// `bonded serve` configuration, TLS, graceful shutdown and kill -9.
mod serve;
/// `bonded key/sign/verify/attest`, the trust service, the pull policy, interop.
mod signing;
/// The `sigstore` crate as an independent cosign implementation (test support).
mod sigstore_rs;
