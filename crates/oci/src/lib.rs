//! OCI primitives shared by every Bonded crate.
//!
//! This crate knows the grammar of the OCI Distribution and Image specifications: digests
//! ([`Digest`], [`Hasher`]), repository names and tags ([`RepositoryName`], [`Tag`],
//! [`Reference`]), the manifest media types ([`MediaType`]) and what makes a manifest valid
//! ([`Manifest::parse`]).
//!
//! Architecture invariant: nothing here does I/O, and nothing here re-serializes a manifest.
//! Manifests are parsed only to validate them and to extract the digests they reference;
//! the bytes a client sent are the bytes that are hashed, stored and served.

mod digest;
mod manifest;
mod media;
mod name;

pub use digest::{Algorithm, Digest, DigestError, Hasher, HasherStateError};
pub use manifest::{Descriptor, MAX_MANIFEST_BYTES, Manifest, ManifestError, ManifestKind};
pub use media::MediaType;
pub use name::{NameError, Reference, RepositoryName, Tag};
