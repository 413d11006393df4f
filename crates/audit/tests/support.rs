//! Test keys, entries and a direct transcription of RFC 6962 §2.1 to compare against.

use audit::checkpoint::{CheckpointSigner, CheckpointVerifier, SignatureRejection};
use audit::merkle::{Hash, leaf_hash};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use sha2::{Digest as _, Sha256};

/// An ECDSA P-256 key, the algorithm of Bonded's default cosign keys, from a fixed scalar.
pub struct TestKey {
    key: p256::ecdsa::SigningKey,
}

impl TestKey {
    pub fn new(seed: u8) -> TestKey {
        let scalar = p256::FieldBytes::from([seed; 32]);
        let key = p256::ecdsa::SigningKey::from_bytes(&scalar).expect("a valid P-256 scalar");
        TestKey { key }
    }

    pub fn public(&self) -> TestPublicKey {
        TestPublicKey {
            key: *self.key.verifying_key(),
        }
    }
}

impl CheckpointSigner for TestKey {
    fn key_id(&self) -> String {
        self.public().key_id()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

pub struct TestPublicKey {
    pub key: p256::ecdsa::VerifyingKey,
}

impl CheckpointVerifier for TestPublicKey {
    fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.key.to_sec1_point(false).as_bytes()))
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejection> {
        let signature = p256::ecdsa::Signature::from_der(signature)?;
        self.key.verify(message, &signature)?;
        Ok(())
    }
}

pub fn hash_hex(text: &str) -> Hash {
    Hash::try_from(hex::decode(text).expect("hex").as_slice()).expect("32 bytes")
}

/// Audit entries shaped like Bonded's: small JSON documents, all different.
pub fn entries(count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|seq| {
            format!(
                r#"{{"seq":{seq},"time":{},"actor":{{"kind":"user","id":"u{}"}},"action":"artifact.push","resource":{{"repository":"team/app","tag":"v{seq}"}}}}"#,
                1_700_000_000 + seq,
                seq % 7
            )
            .into_bytes()
        })
        .collect()
}

pub fn leaves(count: u64) -> Vec<Hash> {
    entries(count)
        .iter()
        .map(|entry| leaf_hash(entry))
        .collect()
}

/// MTH of RFC 6962 §2.1, recursively, exactly as written.
pub fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// PATH of RFC 6962 §2.1.1, recursively.
pub fn reference_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut path = reference_path(m, &leaves[..k]);
        path.push(reference_root(&leaves[k..]));
        path
    } else {
        let mut path = reference_path(m - k, &leaves[k..]);
        path.push(reference_root(&leaves[..k]));
        path
    }
}

/// PROOF of RFC 6962 §2.1.2 (via SUBPROOF), recursively, for 0 < m <= n.
pub fn reference_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    reference_subproof(m, leaves, true)
}

fn reference_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![reference_root(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut proof = reference_subproof(m, &leaves[..k], complete);
        proof.push(reference_root(&leaves[k..]));
        proof
    } else {
        let mut proof = reference_subproof(m - k, &leaves[k..], false);
        proof.push(reference_root(&leaves[..k]));
        proof
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// `hash` with one bit flipped.
pub fn flipped(hash: &Hash, bit: usize) -> Hash {
    let mut changed = *hash;
    changed[bit / 8 % 32] ^= 1 << (bit % 8);
    changed
}
