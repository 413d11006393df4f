//! Server-side signing: the server key's cosign signature of a digest, appended to the
//! digest's `.sig` manifest through the registry (so the push runs the same validation and
//! hooks as a client's, and the trust service records the new signature).
//!
//! Appending reads, extends and rewrites the `.sig` manifest, so signings are serialized
//! here: the API's `POST …/sign` and promotions share one [`ServerSigner`].

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use oci::{Digest, Reference, RepositoryName, Tag};
use registry::Registry;
use trust::AttachmentKind;
use trust::cosign;
use trust::service::TrustService;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the server cannot sign: {0}")]
    Key(String),
    #[error("the .sig manifest of {digest} is full: {reason}")]
    Full { digest: String, reason: String },
    #[error("storing the signature in {repository}: {reason}")]
    Registry { repository: String, reason: String },
}

pub struct ServerSigner {
    registry: Arc<Registry>,
    trust: Arc<TrustService>,
    serial: tokio::sync::Mutex<()>,
}

impl ServerSigner {
    pub fn new(registry: Arc<Registry>, trust: Arc<TrustService>) -> ServerSigner {
        ServerSigner {
            registry,
            trust,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// Signs `name@digest` as `docker_reference` and stores the signature; returns the digest
    /// of the new `.sig` manifest.
    pub async fn sign(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        docker_reference: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Digest, SignError> {
        let layer = self
            .trust
            .server_signature(docker_reference, digest, annotations)
            .map_err(|e| SignError::Key(e.to_string()))?;
        let registry_error = |e: registry::ApiError| SignError::Registry {
            repository: name.to_string(),
            reason: e.describe(),
        };
        let tag: Tag = cosign::signature_tag(digest, AttachmentKind::Signature)
            .parse()
            .map_err(|e: oci::NameError| SignError::Registry {
                repository: name.to_string(),
                reason: e.to_string(),
            })?;
        let _serial = self.serial.lock().await;
        let existing = match self
            .registry
            .manifest(name, &Reference::Tag(tag.clone()))
            .await
        {
            Ok(m) => Some(m.content),
            Err(e) if e.code() == "MANIFEST_UNKNOWN" => None,
            Err(e) => return Err(registry_error(e)),
        };
        let built = cosign::append_layer(existing.as_deref(), layer.descriptor).map_err(|e| {
            SignError::Full {
                digest: digest.to_string(),
                reason: e.to_string(),
            }
        })?;
        self.registry
            .store_blob(name, Bytes::from(layer.payload))
            .await
            .map_err(registry_error)?;
        self.registry
            .store_blob(name, Bytes::from(built.config))
            .await
            .map_err(registry_error)?;
        let outcome = self
            .registry
            .put_manifest(
                name,
                &Reference::Tag(tag),
                Some(oci::MediaType::OciManifest.as_str()),
                Bytes::from(built.manifest),
            )
            .await
            .map_err(registry_error)?;
        Ok(outcome.digest)
    }
}
