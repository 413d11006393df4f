//! A blocking client for the OCI Distribution Specification v1.1, shared by `bonded scan`
//! (pulling an image without a container engine) and `bonded sign`/`attest` (pushing small
//! blobs and manifests, reading signatures and referrers).
//!
//! - [`ImageReference`] parses `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]` with docker's
//!   normalization (`alpine` is `docker.io/library/alpine:latest`).
//! - [`RegistryClient`] talks to one registry over HTTPS, or plain HTTP when asked: manifests
//!   by tag or digest, blobs read whole or streamed, the referrers API, monolithic blob
//!   uploads and manifest pushes.
//!
//! Guarantees, detailed in the modules: every byte pulled is verified against its digest
//! ([`VerifiedBlob`] for streams); credentials go only to the registry's own origin, never to
//! the storage hosts it redirects to; every wait and every body is bounded; errors name the
//! method, the URL without its query, the status and the OCI error code ([`RemoteError`]).
//!
//! Architecture invariant: this crate knows the wire protocol and nothing about images,
//! scanning or signatures; of Bonded's crates it depends on `oci` only.

mod challenge;
mod error;
mod reference;
mod referrers;
mod registry;
#[cfg(feature = "testkit")]
pub mod testkit;
mod transport;
mod verify;

pub use challenge::{Challenge, parse_challenges};
pub use error::{RemoteError, error_chain, oci_error_detail};
pub use reference::{ImageReference, ReferenceError};
pub use referrers::MAX_REFERRER_PAGES;
pub use registry::{FetchedManifest, MAX_DOCUMENT_BYTES, ManifestHead, RegistryClient};
pub use transport::{CONNECT_TIMEOUT, Credentials, IDLE_TIMEOUT, MAX_REDIRECTS};
pub use verify::{VerifiedBlob, VerifyError};
