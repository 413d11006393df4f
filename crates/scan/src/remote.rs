//! Pulling an image straight from a registry to scan it, without a container engine.
//!
//! A [`RemoteImage`] is built from a reference `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`
//! ([`ImageReference::parse`], docker's normalization: `alpine` means
//! `docker.io/library/alpine:latest`) and reads the image through a
//! [`client::RegistryClient`], which speaks the OCI Distribution Specification v1.1 over
//! HTTPS, or plain HTTP when asked. The wire protocol, authentication, redirects and their
//! guarantees live in the `client` crate; this module turns a registry into one more
//! [`BlobSource`] for the scanner.
//!
//! Guarantees:
//! - Every byte is verified. Manifests, indexes and configs are read whole (at most
//!   [`MAX_DOCUMENT_BYTES`]) and checked against their digest, by the client and again by
//!   [`crate::image::resolve_manifest`]; a manifest fetched by tag is checked against the
//!   `Docker-Content-Digest` the registry announces. Layers are streamed through
//!   [`VerifiedBlob`], so a corrupted layer can never be read to a clean end; its failure
//!   reaches the scanner as an [`ImageError`] inside the `io::Error`.
//! - Credentials only go to the registry's origin, never to the storage hosts it redirects
//!   blob downloads to; error messages show URLs without their query.
//!
//! Errors are [`RemoteError`]s, carried through the [`BlobSource`] API shared with the other
//! image sources as [`ImageError`]: digest and size failures keep their own variants, the
//! rest is [`ImageError::Remote`] with the method, URL, status and OCI error code.
//!
//! Not supported: foreign layers (`urls` on a descriptor, old Windows base images) are asked
//! of the registry like any other blob, and a `Docker-Content-Digest` is not required.

use std::io::{self, Read};

use client::{Credentials, RegistryClient, VerifyError};
use oci::{MediaType, Reference};

pub(crate) use client::error_chain;
pub use client::{
    CONNECT_TIMEOUT, Challenge, IDLE_TIMEOUT, ImageReference, MAX_REDIRECTS, RemoteError,
    VerifiedBlob, oci_error_detail, parse_challenges,
};

use crate::image::{
    BlobSource, ImageError, LayerRef, Locator, MAX_DOCUMENT_BYTES, PlatformChoice, ResolvedImage,
    resolve_manifest,
};

// The client's bound on manifests is the scanner's bound on documents, which scan's tests and
// users see in `ImageError::TooLarge`.
const _: () = assert!(client::MAX_DOCUMENT_BYTES == MAX_DOCUMENT_BYTES);

impl From<RemoteError> for ImageError {
    fn from(error: RemoteError) -> ImageError {
        match error {
            RemoteError::Verify(error) => error.into(),
            RemoteError::Reference(error) => ImageError::Invalid {
                what: "image reference".to_owned(),
                reason: error.to_string(),
            },
            other => ImageError::Remote(other.to_string()),
        }
    }
}

impl From<VerifyError> for ImageError {
    fn from(error: VerifyError) -> ImageError {
        let reason = error.to_string();
        match error {
            VerifyError::DigestMismatch {
                what,
                expected,
                actual,
            } => ImageError::DigestMismatch {
                what,
                expected: expected.to_string(),
                actual: actual.to_string(),
            },
            VerifyError::TooLarge { what, limit } => ImageError::TooLarge { what, limit },
            VerifyError::Truncated { what, .. } | VerifyError::SizeMismatch { what, .. } => {
                ImageError::Invalid { what, reason }
            }
        }
    }
}

/// An image in a registry, ready to be resolved and read.
pub struct RemoteImage {
    registry: RegistryClient,
    reference: ImageReference,
}

impl RemoteImage {
    /// Parses `reference` and prepares an HTTP client; no request is made until
    /// [`RemoteImage::resolve`]. `plain_http` talks HTTP instead of HTTPS (local registries);
    /// `credentials` are a user name and password (or token) for basic or token auth.
    pub fn connect(
        reference: &str,
        plain_http: bool,
        credentials: Option<(String, String)>,
    ) -> Result<RemoteImage, ImageError> {
        let reference = ImageReference::parse(reference).map_err(RemoteError::from)?;
        let credentials =
            credentials.map(|(username, password)| Credentials { username, password });
        let registry = RegistryClient::new(&reference.registry, plain_http, credentials)?;
        Ok(RemoteImage {
            registry,
            reference,
        })
    }

    /// The normalized reference (`docker.io/library/alpine:latest`).
    pub fn reference(&self) -> &ImageReference {
        &self.reference
    }

    /// Fetches the manifest the reference names and, for an index, the manifests of the
    /// chosen platforms, with their configs. Every document is verified against its digest.
    pub fn resolve(&self, platform: &PlatformChoice) -> Result<Vec<ResolvedImage>, ImageError> {
        let repository = &self.reference.repository;
        let accept = MediaType::ALL.map(MediaType::as_str);
        let (top, fetched) = match &self.reference.reference {
            Reference::Digest(digest) => (digest.clone(), None),
            Reference::Tag(tag) => {
                let fetched = self
                    .registry
                    .fetch_manifest(repository, tag.as_str(), &accept)?;
                (fetched.digest, Some((fetched.bytes, fetched.media_type)))
            }
        };
        let name = self.reference.to_string();
        resolve_manifest(
            &name,
            top.clone(),
            platform,
            &|digest| match &fetched {
                // The manifest fetched by tag is the top one; no need to ask twice.
                Some(document) if digest == &top => Ok(document.clone()),
                _ => {
                    let fetched =
                        self.registry
                            .fetch_manifest(repository, &digest.to_string(), &accept)?;
                    Ok((fetched.bytes, fetched.media_type))
                }
            },
            &|digest| {
                Ok(self
                    .registry
                    .get_blob(repository, digest, MAX_DOCUMENT_BYTES)?)
            },
            &|descriptor| Locator::Remote(descriptor.digest.clone()),
        )
    }
}

impl BlobSource for RemoteImage {
    fn open_layer(&self, layer: &LayerRef) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let Locator::Remote(digest) = &layer.locator else {
            return Err(ImageError::Invalid {
                what: layer.digest.clone(),
                reason: "not a registry blob".to_owned(),
            });
        };
        let blob = self
            .registry
            .open_blob(&self.reference.repository, digest, layer.size)?;
        Ok(Box::new(LayerReader(blob)))
    }
}

/// A verified layer stream whose verification failures are [`ImageError`]s, as every
/// [`BlobSource`] reports them.
struct LayerReader<R>(R);

impl<R: Read> Read for LayerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|error| {
            match error
                .get_ref()
                .and_then(|e| e.downcast_ref::<VerifyError>())
            {
                Some(failure) => io::Error::new(error.kind(), ImageError::from(failure.clone())),
                None => error,
            }
        })
    }
}
