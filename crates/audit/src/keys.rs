//! Bonded's own keys (`trust::keys`, cosign's key formats) sign and verify checkpoints.
//!
//! The key ID is the one `trust` shows everywhere (the hex SHA-256 of the DER
//! SubjectPublicKeyInfo), so a checkpoint names the same key as `GET /api/v1/authorities`.
//! ECDSA P-256 keys sign SHA-256 of the checkpoint text with a DER signature, Ed25519 keys
//! sign the text itself; `trust` checks Ed25519 signatures with the strict rules.

use trust::keys::{PublicKey, SigningKey};

use crate::checkpoint::{CheckpointSigner, CheckpointVerifier, SignatureRejection};

impl CheckpointSigner for SigningKey {
    fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        SigningKey::sign(self, message)
    }
}

impl CheckpointVerifier for PublicKey {
    fn key_id(&self) -> String {
        PublicKey::key_id(self)
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejection> {
        PublicKey::verify(self, message, signature).map_err(Into::into)
    }
}
