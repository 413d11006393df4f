//! Signed checkpoints: the server's signed statement "the audit log from `origin` had `size`
//! entries with Merkle root `root` at `time`".
//!
//! The signed bytes are a C2SP tlog-checkpoint note text (c2sp.org/tlog-checkpoint), so any
//! tool that reads checkpoints reads ours:
//!
//! ```text
//! bonded.example/audit        origin: names the log
//! 1234                        tree size, ASCII decimal without leading zeroes
//! CsUYapGGPo4dkMgIAUqom/...=  root hash, standard base64
//! time 1700000000             extension line: when the server signed, Unix seconds
//! ```
//!
//! The spec allows extension lines ("opaque and OPTIONAL ... MUST be non-empty") and calls them
//! NOT RECOMMENDED because monitors cannot audit them; one is used anyway so that the signing
//! time is signed too, and an old checkpoint cannot be passed off as a fresh one. Its syntax
//! (`time`, a space, ASCII decimal) is the timestamp line of c2sp.org/tlog-cosignature.
//!
//! The checkpoint travels as JSON (`GET /api/v1/audit/checkpoint`, the file that
//! `bonded audit verify --checkpoint` reads): `{"origin", "size", "root" (base64), "time",
//! "key_id", "signature" (base64)}`. The signature scheme is the caller's: a
//! [`CheckpointSigner`] signs the note text and names its key, a [`CheckpointVerifier`] checks
//! it. Bonded's cosign keys (`trust::keys`) fit both, ECDSA P-256 over SHA-256 of the note
//! text (as the C2SP signature type 0x02) or Ed25519.
//!
//! Guarantees: a checkpoint only verifies if it is signed by the expected key over exactly the
//! origin, size, root and time it states; origins that could break the line format (empty,
//! with spaces, control characters or `+`, C2SP's key-name rules) are refused when signing and
//! when reading; JSON input is bounded to [`MAX_CHECKPOINT_JSON`] bytes.

use std::error::Error as StdError;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::merkle::{Hash, hash_base64};

/// The largest checkpoint JSON document read.
pub const MAX_CHECKPOINT_JSON: usize = 64 * 1024;
const MAX_ORIGIN_LEN: usize = 256;
const MAX_KEY_ID_LEN: usize = 256;
/// Larger than any signature Bonded's keys make (ECDSA P-256 DER ≤ 72 bytes, Ed25519 64),
/// with room for post-quantum schemes (ML-DSA-44 signatures are 2,420 bytes).
const MAX_SIGNATURE_LEN: usize = 4096;
const TIME_LINE_PREFIX: &str = "time ";

/// The error a [`CheckpointVerifier`] gives for a signature it rejects.
pub type SignatureRejection = Box<dyn StdError + Send + Sync + 'static>;

/// Signs checkpoints with the log's key.
pub trait CheckpointSigner {
    /// The identifier verifiers know the key by (for Bonded's keys, the hex SHA-256 of the
    /// DER SubjectPublicKeyInfo).
    fn key_id(&self) -> String;

    /// The signature over `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Checks checkpoint signatures against the log's public key.
pub trait CheckpointVerifier {
    /// The identifier of the key, as the signer reports it.
    fn key_id(&self) -> String;

    /// `Ok` if `signature` is this key's signature over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejection>;
}

/// Why a checkpoint could not be made, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the log origin {origin:?} cannot be used in a checkpoint: {reason}")]
    InvalidOrigin {
        origin: String,
        reason: &'static str,
    },
    #[error("the checkpoint is {len} bytes; checkpoints are at most {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("the checkpoint is not valid JSON of the expected form: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the checkpoint's {field} is {len} bytes; at most {limit} are accepted")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        limit: usize,
    },
    #[error(
        "the checkpoint of size {size} is signed by key {found}, not by the log's key {expected}"
    )]
    UnknownKey {
        size: u64,
        expected: String,
        found: String,
    },
    #[error("the signature on the checkpoint of size {size} does not verify: {source}")]
    BadSignature {
        size: u64,
        #[source]
        source: SignatureRejection,
    },
}

/// What a checkpoint states: the log's origin, its size and its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl TreeHead {
    /// A tree head for the log named `origin`; the origin must be a valid C2SP key name.
    pub fn new(
        origin: impl Into<String>,
        size: u64,
        root: Hash,
    ) -> Result<TreeHead, CheckpointError> {
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(TreeHead { origin, size, root })
    }
}

/// A tree head with the time it was signed, the key that signed it and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    #[serde(with = "hash_base64")]
    pub root: Hash,
    /// When the server signed, in seconds since the Unix epoch.
    pub time: u64,
    pub key_id: String,
    #[serde(
        serialize_with = "serialize_signature",
        deserialize_with = "deserialize_signature"
    )]
    pub signature: Vec<u8>,
}

impl SignedCheckpoint {
    /// Signs `head` as of `time` (Unix seconds).
    pub fn sign(
        head: &TreeHead,
        time: u64,
        signer: &dyn CheckpointSigner,
    ) -> Result<SignedCheckpoint, CheckpointError> {
        check_origin(&head.origin)?;
        let text = note_text(&head.origin, head.size, &head.root, time);
        Ok(SignedCheckpoint {
            origin: head.origin.clone(),
            size: head.size,
            root: head.root,
            time,
            key_id: signer.key_id(),
            signature: signer.sign(text.as_bytes()),
        })
    }

    /// Reads a checkpoint from its JSON form, refusing oversized documents and fields.
    pub fn from_json(json: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        if json.len() > MAX_CHECKPOINT_JSON {
            return Err(CheckpointError::TooLarge {
                len: json.len(),
                limit: MAX_CHECKPOINT_JSON,
            });
        }
        let checkpoint: SignedCheckpoint =
            serde_json::from_slice(json).map_err(CheckpointError::Json)?;
        check_origin(&checkpoint.origin)?;
        check_field("key_id", checkpoint.key_id.len(), MAX_KEY_ID_LEN)?;
        check_field("signature", checkpoint.signature.len(), MAX_SIGNATURE_LEN)?;
        Ok(checkpoint)
    }

    /// The exact bytes the signature covers: the C2SP checkpoint note text with the `time`
    /// extension line.
    pub fn signed_text(&self) -> Result<String, CheckpointError> {
        check_origin(&self.origin)?;
        Ok(note_text(&self.origin, self.size, &self.root, self.time))
    }

    /// Checks that `verifier`'s key signed this checkpoint, and returns what it states.
    pub fn verify(&self, verifier: &dyn CheckpointVerifier) -> Result<TreeHead, CheckpointError> {
        let expected = verifier.key_id();
        if self.key_id != expected {
            return Err(CheckpointError::UnknownKey {
                size: self.size,
                expected,
                found: self.key_id.chars().take(MAX_KEY_ID_LEN).collect(),
            });
        }
        let text = self.signed_text()?;
        verifier
            .verify(text.as_bytes(), &self.signature)
            .map_err(|source| CheckpointError::BadSignature {
                size: self.size,
                source,
            })?;
        Ok(TreeHead {
            origin: self.origin.clone(),
            size: self.size,
            root: self.root,
        })
    }
}

/// The note text: origin, size, base64 root (tlog-checkpoint §"Note text") and the time line,
/// each ending in a newline.
fn note_text(origin: &str, size: u64, root: &Hash, time: u64) -> String {
    format!(
        "{origin}\n{size}\n{root}\n{TIME_LINE_PREFIX}{time}\n",
        root = STANDARD.encode(root)
    )
}

/// C2SP tlog-checkpoint: "The origin MUST be non-empty, and it SHOULD be a schema-less URL
/// containing neither Unicode spaces nor plus (U+002B)"; signed-note: notes "MUST NOT contain
/// any ASCII control characters (those below U+0020) other than newline", and key names, which
/// the origin doubles as, "MUST NOT contain any Unicode spaces or plus (U+002B) characters".
/// The SHOULD is enforced as a MUST: a space or newline in the origin would shift the lines.
fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    let reason = if origin.is_empty() {
        Some("it is empty")
    } else if origin.len() > MAX_ORIGIN_LEN {
        Some("it is longer than 256 bytes")
    } else if origin.chars().any(char::is_whitespace) {
        Some("it contains white space")
    } else if origin.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if origin.contains('+') {
        Some("it contains '+'")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(CheckpointError::InvalidOrigin {
            origin: origin.chars().take(64).collect(),
            reason,
        }),
    }
}

fn check_field(field: &'static str, len: usize, limit: usize) -> Result<(), CheckpointError> {
    if len > limit {
        return Err(CheckpointError::FieldTooLong { field, len, limit });
    }
    Ok(())
}

fn serialize_signature<S: Serializer>(signature: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(signature))
}

fn deserialize_signature<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}
