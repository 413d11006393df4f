//! Trust formats: the signatures and attestations Bonded stores, serves and verifies.
//!
//! - [`keys`]: cosign key files (encrypted `ENCRYPTED SIGSTORE/COSIGN PRIVATE KEY`, PKCS#8,
//!   SEC1, PKIX public keys), signing and verification with ECDSA P-256 and Ed25519.
//! - [`payload`]: the simple-signing payload a cosign `.sig` signature covers.
//! - [`cosign`]: the `sha256-<hex>.sig/.att/.sbom` attachment manifests, and verification of
//!   one simple-signing signature against an expected digest and repository.
//! - [`dsse`]: DSSE envelopes and in-toto Statements (cosign attestations).
//! - [`provenance`]: build records read from SLSA v0.2 and v1 provenance.
//! - [`bundle`]: key-signed Sigstore bundles (cosign v3 signatures stored as referrers).
//!
//! Architecture invariant: this crate does no I/O and keeps no state. It never fetches a
//! blob, reads a file or a clock, or talks to a transparency log; callers hand it bytes
//! (already bounded by the `MAX_*` constants) and get parsed, verified values back. Every
//! input, however hostile, gives a value or an error, never a panic.

pub mod attach;
pub mod bundle;
pub mod cosign;
pub mod dsse;
pub mod keys;
pub mod payload;
pub mod provenance;
pub mod service;

pub use bundle::{BundleError, make_bundle, verify_bundle};
pub use cosign::{
    AttachmentKind, CosignError, Expected, LayerDescriptor, SignatureManifest, VerifyError,
    append_layer, parse_attachment_manifest, signature_tag, verify_simple_signing,
};
pub use dsse::{DsseError, Statement, Subject, verify_attestation};
pub use keys::{KeyAlgorithm, KeyError, PublicKey, SignatureError, SigningKey};
pub use payload::{PayloadError, SimpleSigning, parse_simple_signing, simple_signing_payload};
pub use provenance::{BuildRecord, build_record};
