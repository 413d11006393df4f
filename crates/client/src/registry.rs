//! The registry API of the OCI Distribution Specification v1.1, on one registry: pulling
//! manifests and blobs ("Pulling manifests", "Pulling blobs", "Checking if content exists"),
//! pushing them ("Pushing blobs" with a POST then a PUT, "Pushing Manifests").
//!
//! Guarantees: every byte that comes back is checked against its digest before the caller
//! sees it (streamed blobs at the end of the stream, see [`VerifiedBlob`]); documents read
//! whole are bounded by [`MAX_DOCUMENT_BYTES`] or the caller's limit; a digest the registry
//! announces (`Docker-Content-Digest`) must agree with the bytes, on pull and on push.
//!
//! Not done: chunked uploads (`PATCH`), cross-repository mounts and deletes. Pushes are meant
//! for small blobs (signatures, attestations, configs) held in memory.

use std::str::FromStr;

use oci::{Algorithm, Digest, MediaType, Reference, RepositoryName};
use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use crate::error::{RemoteError, display_url, status_error};
use crate::reference::{ReferenceError, api_origin};
use crate::transport::{Access, Credentials, Exchange, Method, Transport, header, read_document};
use crate::verify::{VerifiedBlob, VerifyError, verify_digest};

/// The largest manifest, index or referrers page read (8 MiB: twice the 4 MiB a registry must
/// accept, to be lenient on what others pushed).
pub const MAX_DOCUMENT_BYTES: u64 = 8 << 20;

/// The header a registry names a manifest's or blob's digest in.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A client for one registry host.
pub struct RegistryClient {
    pub(crate) transport: Transport,
}

/// A manifest as the registry sent it, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// `Content-Type`, as sent.
    pub media_type: Option<String>,
    /// The digest of `bytes`: the one asked for when fetched by digest; when fetched by tag,
    /// the one the registry announced in `Docker-Content-Digest` (checked), else SHA-256.
    pub digest: Digest,
}

/// What a `HEAD` of a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    /// `Content-Type`, as sent.
    pub media_type: Option<String>,
    /// `Content-Length`, when sent.
    pub size: Option<u64>,
}

impl RegistryClient {
    /// Prepares a client for `registry` (`host[:port]` as in an image reference; `docker.io`
    /// is Docker Hub). No request is made yet. `plain_http` talks HTTP instead of HTTPS
    /// (local registries); `credentials` answer basic and token challenges.
    pub fn new(
        registry: &str,
        plain_http: bool,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient, RemoteError> {
        let origin = api_origin(registry, plain_http)?;
        Ok(RegistryClient {
            transport: Transport::new(origin, plain_http, credentials)?,
        })
    }

    /// `GET /v2/<name>/manifests/<reference>`; `None` when the registry answers 404.
    /// `accept` lists the media types wanted; empty means every manifest type Bonded knows.
    pub fn get_manifest(
        &self,
        repository: &RepositoryName,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<FetchedManifest>, RemoteError> {
        let reference = parse_reference(reference)?;
        let response = self.manifest_request(Method::Get, repository, &reference, accept)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_manifest(response, &reference).map(Some)
    }

    /// Like [`RegistryClient::get_manifest`], but a missing manifest is an error that carries
    /// the registry's error code (`404 Not Found: MANIFEST_UNKNOWN: …`).
    pub fn fetch_manifest(
        &self,
        repository: &RepositoryName,
        reference: &str,
        accept: &[&str],
    ) -> Result<FetchedManifest, RemoteError> {
        let reference = parse_reference(reference)?;
        let response = self.manifest_request(Method::Get, repository, &reference, accept)?;
        read_manifest(response, &reference)
    }

    /// `HEAD /v2/<name>/manifests/<reference>`; `None` when the registry answers 404. A
    /// registry that does not announce the digest of a tagged manifest is asked for the
    /// manifest itself, which is then hashed.
    pub fn head_manifest(
        &self,
        repository: &RepositoryName,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<ManifestHead>, RemoteError> {
        let parsed = parse_reference(reference)?;
        let response = self.manifest_request(Method::Head, repository, &parsed, accept)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error("HEAD", response));
        }
        let media_type = header(&response, CONTENT_TYPE.as_str());
        // reqwest reports the length of a HEAD response's (empty) body, not the header.
        let size = header(&response, CONTENT_LENGTH.as_str()).and_then(|n| n.parse().ok());
        let digest = match (&parsed, header(&response, DOCKER_CONTENT_DIGEST)) {
            (Reference::Digest(digest), _) => digest.clone(),
            (Reference::Tag(_), Some(announced)) => {
                announced_digest(Method::Head, response.url(), &announced)?
            }
            (Reference::Tag(_), None) => {
                return self
                    .get_manifest(repository, reference, accept)
                    .map(|fetched| fetched.map(|m| head_of(&m)));
            }
        };
        Ok(Some(ManifestHead {
            digest,
            media_type,
            size,
        }))
    }

    /// `PUT /v2/<name>/manifests/<reference>` with `bytes` as `media_type`; returns the
    /// manifest's digest. A digest reference must be the digest of `bytes` (checked before
    /// anything is sent); a `Docker-Content-Digest` in the answer must agree with the bytes.
    pub fn put_manifest(
        &self,
        repository: &RepositoryName,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RemoteError> {
        let parsed = parse_reference(reference)?;
        let what = format!("manifest {reference}");
        let digest = match &parsed {
            Reference::Digest(digest) => {
                verify_digest(&what, digest, bytes)?;
                digest.clone()
            }
            Reference::Tag(_) => Digest::compute(Algorithm::Sha256, bytes),
        };
        let response = self.transport.send(&Exchange {
            method: Method::Put,
            url: self
                .transport
                .url(&format!("v2/{repository}/manifests/{parsed}"))?,
            repository,
            access: Access::Push,
            accept: None,
            body: Some((media_type, bytes)),
        })?;
        if !response.status().is_success() {
            return Err(status_error("PUT", response));
        }
        check_announced_digest(Method::Put, &response, &what, bytes)?;
        Ok(digest)
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the repository holds the blob.
    pub fn blob_exists(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, RemoteError> {
        self.blob_exists_for(repository, digest, Access::Pull)
    }

    /// `GET /v2/<name>/blobs/<digest>`, read whole (at most `max_bytes`) and verified.
    pub fn get_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        let response = self.blob_response(repository, digest)?;
        let what = format!("blob {digest}");
        let bytes = read_document(response, &what, max_bytes)?;
        verify_digest(&what, digest, &bytes)?;
        Ok(bytes)
    }

    /// `GET /v2/<name>/blobs/<digest>` as a stream that is verified while it is read (see
    /// [`VerifiedBlob`]). With `size` (the descriptor's), a registry announcing another
    /// length is refused at once.
    pub fn open_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<VerifiedBlob<Response>, RemoteError> {
        let response = self.blob_response(repository, digest)?;
        if let (Some(announced), Some(expected)) = (response.content_length(), size)
            && announced != expected
        {
            return Err(VerifyError::SizeMismatch {
                what: format!("blob {digest}"),
                announced,
                expected,
            }
            .into());
        }
        Ok(VerifiedBlob::new(response, digest.clone(), size))
    }

    /// Uploads `bytes` as a blob unless the repository already holds it, and returns its
    /// SHA-256 digest. The upload is monolithic: `POST /v2/<name>/blobs/uploads/`, then `PUT`
    /// of the whole body to the `Location` the registry answered, with `digest=<digest>`
    /// added to its query (Distribution Spec v1.1, "POST then PUT": "the `<location>` MAY
    /// contain critical query parameters").
    pub fn push_blob(
        &self,
        repository: &RepositoryName,
        bytes: &[u8],
    ) -> Result<Digest, RemoteError> {
        let digest = Digest::compute(Algorithm::Sha256, bytes);
        // Asking with push access makes a first token good for the upload as well.
        if self.blob_exists_for(repository, &digest, Access::Push)? {
            return Ok(digest);
        }
        let mut upload = self.start_upload(repository)?;
        upload
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self.transport.send(&Exchange {
            method: Method::Put,
            url: upload,
            repository,
            access: Access::Push,
            accept: None,
            body: Some(("application/octet-stream", bytes)),
        })?;
        if !response.status().is_success() {
            return Err(status_error("PUT", response));
        }
        check_announced_digest(Method::Put, &response, &format!("blob {digest}"), bytes)?;
        Ok(digest)
    }

    /// `POST /v2/<name>/blobs/uploads/`: opens an upload session and returns its URL.
    fn start_upload(&self, repository: &RepositoryName) -> Result<reqwest::Url, RemoteError> {
        let response = self.transport.send(&Exchange {
            method: Method::Post,
            url: self
                .transport
                .url(&format!("v2/{repository}/blobs/uploads/"))?,
            repository,
            access: Access::Push,
            accept: None,
            body: Some(("application/octet-stream", &[])),
        })?;
        if !response.status().is_success() {
            return Err(status_error("POST", response));
        }
        let fail = |reason: String| RemoteError::Protocol {
            method: "POST",
            url: display_url(response.url()),
            reason,
        };
        let location = header(&response, LOCATION.as_str())
            .ok_or_else(|| fail("the upload was accepted without a Location".to_owned()))?;
        // A relative Location is relative to the URL that answered.
        let upload = response
            .url()
            .join(&location)
            .map_err(|e| fail(format!("bad Location: {e}")))?;
        self.transport.check_scheme(&upload).map_err(fail)?;
        Ok(upload)
    }

    fn blob_exists_for(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        access: Access,
    ) -> Result<bool, RemoteError> {
        let response = self.transport.send(&Exchange {
            method: Method::Head,
            url: self
                .transport
                .url(&format!("v2/{repository}/blobs/{digest}"))?,
            repository,
            access,
            accept: None,
            body: None,
        })?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => Err(status_error("HEAD", response)),
        }
    }

    fn blob_response(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Response, RemoteError> {
        let response = self.transport.send(&Exchange {
            method: Method::Get,
            url: self
                .transport
                .url(&format!("v2/{repository}/blobs/{digest}"))?,
            repository,
            access: Access::Pull,
            accept: None,
            body: None,
        })?;
        if !response.status().is_success() {
            return Err(status_error("GET", response));
        }
        Ok(response)
    }

    /// `GET <path>` on the registry's origin with pull access to `repository` (Bonded's
    /// management API), read whole up to `limit` bytes; `None` when the answer is 404.
    pub fn get_document(
        &self,
        repository: &RepositoryName,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let url = self.transport.url(path)?;
        let response = self.transport.send(&Exchange {
            method: Method::Get,
            url,
            repository,
            access: Access::Pull,
            accept: Some("application/json"),
            body: None,
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(crate::error::status_error("GET", response));
        }
        read_document(response, path, limit).map(Some)
    }

    fn manifest_request(
        &self,
        method: Method,
        repository: &RepositoryName,
        reference: &Reference,
        accept: &[&str],
    ) -> Result<Response, RemoteError> {
        let url = self
            .transport
            .url(&format!("v2/{repository}/manifests/{reference}"))?;
        let accept = if accept.is_empty() {
            MediaType::ALL.map(MediaType::as_str).join(", ")
        } else {
            accept.join(", ")
        };
        self.transport.send(&Exchange {
            method,
            url,
            repository,
            access: Access::Pull,
            accept: Some(&accept),
            body: None,
        })
    }
}

/// A tag or a digest, refusing anything that could change the URL's path.
fn parse_reference(reference: &str) -> Result<Reference, RemoteError> {
    Reference::from_str(reference).map_err(|e| ReferenceError::new(reference, e).into())
}

/// Reads a manifest answer and checks its digest.
fn read_manifest(
    response: Response,
    reference: &Reference,
) -> Result<FetchedManifest, RemoteError> {
    if !response.status().is_success() {
        return Err(status_error("GET", response));
    }
    let url = response.url().clone();
    let media_type = header(&response, CONTENT_TYPE.as_str());
    let announced = header(&response, DOCKER_CONTENT_DIGEST);
    let what = format!("manifest {reference}");
    let bytes = read_document(response, &what, MAX_DOCUMENT_BYTES)?;
    let digest = match (reference, announced) {
        (Reference::Digest(digest), _) => digest.clone(),
        (Reference::Tag(_), Some(announced)) => announced_digest(Method::Get, &url, &announced)?,
        (Reference::Tag(_), None) => Digest::compute(Algorithm::Sha256, &bytes),
    };
    verify_digest(&what, &digest, &bytes)?;
    Ok(FetchedManifest {
        bytes,
        media_type,
        digest,
    })
}

fn head_of(manifest: &FetchedManifest) -> ManifestHead {
    ManifestHead {
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: Some(manifest.bytes.len() as u64),
    }
}

/// A `Docker-Content-Digest` value, which must be a digest.
fn announced_digest(
    method: Method,
    url: &reqwest::Url,
    value: &str,
) -> Result<Digest, RemoteError> {
    Digest::from_str(value).map_err(|e| RemoteError::Protocol {
        method: method.as_str(),
        url: display_url(url),
        reason: format!("bad Docker-Content-Digest: {e}"),
    })
}

/// After a push: a `Docker-Content-Digest` in the answer, if any, must be that of the bytes
/// sent (hashed with the algorithm it names).
fn check_announced_digest(
    method: Method,
    response: &Response,
    what: &str,
    bytes: &[u8],
) -> Result<(), RemoteError> {
    let Some(value) = header(response, DOCKER_CONTENT_DIGEST) else {
        return Ok(());
    };
    let announced = announced_digest(method, response.url(), &value)?;
    let sent = Digest::compute(announced.algorithm(), bytes);
    if sent != announced {
        return Err(VerifyError::DigestMismatch {
            what: format!("{what} as stored by the registry"),
            expected: sent,
            actual: announced,
        }
        .into());
    }
    Ok(())
}
