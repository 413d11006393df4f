//! Signing and verification keys in the file formats cosign reads and writes.
//!
//! cosign keys are ECDSA P-256 (what `cosign generate-key-pair` makes) or Ed25519. A public
//! key is a PEM `PUBLIC KEY` (PKIX SubjectPublicKeyInfo). A private key is one of:
//!
//! - `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign ≥ 2) or `ENCRYPTED COSIGN PRIVATE KEY` (cosign 1,
//!   still read by every cosign and the type containers/image writes). The PEM body is not DER
//!   but JSON, the format of go-securesystemslib's `encrypted` package (earlier go-tuf's):
//!   `{"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":…},
//!   "cipher":{"name":"nacl/secretbox","nonce":…},"ciphertext":…}`. The 32-byte secretbox key
//!   is `scrypt(password, salt, N, r, p)`; the ciphertext is Go's `secretbox.Seal` output
//!   (Poly1305 tag ‖ XSalsa20 stream ciphertext) of the PKCS#8 DER private key.
//! - a plain PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`, which `cosign import-key-pair`
//!   also loads.
//!
//! Guarantees:
//! - scrypt runs only with the three cost settings go-securesystemslib writes and reads
//!   (N = 32768 "legacy", 65536 "standard", 131072 "OWASP"; always r = 8, p = 1). Any other
//!   value is refused before any work is done: an attacker-supplied key file with N = 2^30
//!   would otherwise cost a terabyte of memory.
//! - A wrong password is [`KeyError::WrongPassword`] (the secretbox tag does not match), never
//!   confused with a malformed file.
//! - Secret material (derived keys, decrypted PKCS#8, PEM text) is zeroized when dropped.
//!
//! NaCl secretbox is composed here (the private `secretbox` module) from the RustCrypto
//! `salsa20` and `poly1305` primitives: `crypto_secretbox` 0.1 belongs to the previous
//! RustCrypto generation (it would duplicate `cipher`, `aead` and `generic-array` next to the
//! `sha2` 0.11 family) and its 0.2 is a pre-release. The composition is pinned by key files
//! written with PyNaCl (`tests/fixtures/keys/`).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use pkcs8::{AssociatedOid as _, DecodePrivateKey as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// PEM type of encrypted keys written by cosign ≥ 2 (and by [`SigningKey::to_encrypted_pem`]).
pub const ENCRYPTED_SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM type of encrypted keys written by cosign 1 and containers/image.
pub const ENCRYPTED_COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PKCS8_LABEL: &str = "PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// The scrypt costs go-securesystemslib accepts (`encrypted.go`: legacy, standard, OWASP).
const ACCEPTED_SCRYPT_N: [u64; 3] = [32768, 65536, 131072];
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// What we write: the one cost every cosign and containers/image version reads (go-tuf 0.5
/// accepts only N = 32768).
const WRITTEN_SCRYPT_LOG_N: u8 = 15;
const SALT_LEN: usize = 32;
const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";

/// DER prefix of a P-256 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { id-ecPublicKey,
/// prime256v1 }, BIT STRING (0 unused bits) }, followed by the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of a P-256 PKCS#8 PrivateKeyInfo (v1, id-ecPublicKey + prime256v1) whose
/// ECPrivateKey (version 1) is followed by the 32-byte scalar.
const P256_PKCS8_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// `[1] publicKey BIT STRING` of the ECPrivateKey, followed by the 65-byte uncompressed point.
const P256_PKCS8_PUBLIC_KEY_TAG: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];
/// DER prefix of an Ed25519 PKCS#8 PrivateKeyInfo (RFC 8410 §7), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The signature algorithms cosign keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256; signatures are ASN.1 DER. cosign's default.
    EcdsaP256,
    /// Ed25519 (RFC 8032); signatures are 64 bytes.
    Ed25519,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "ecdsa" | "p256" => Ok(KeyAlgorithm::EcdsaP256),
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            _ => Err(KeyError::UnknownAlgorithm {
                name: s.chars().take(64).collect(),
            }),
        }
    }
}

/// Why a key could not be read, decrypted, generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key algorithm {name:?} (expected ecdsa-p256 or ed25519)")]
    UnknownAlgorithm { name: String },
    #[error("malformed PEM: {0}")]
    Pem(pem_rfc7468::Error),
    #[error("unexpected PEM type {label:?}; expected {expected}")]
    UnexpectedPemType {
        label: String,
        expected: &'static str,
    },
    #[error("the key file is encrypted ({label}) and no password was given")]
    PasswordRequired { label: String },
    #[error("malformed encrypted key: the PEM body is not the expected JSON: {0}")]
    EncryptedKeyJson(serde_json::Error),
    #[error("malformed encrypted key: {field} is not valid base64: {source}")]
    FieldBase64 {
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("unsupported key derivation function {name:?} (cosign keys use scrypt)")]
    UnsupportedKdf { name: String },
    #[error("unsupported cipher {name:?} (cosign keys use nacl/secretbox)")]
    UnsupportedCipher { name: String },
    #[error(
        "refusing scrypt parameters N={n}, r={r}, p={p}: cosign keys use N=32768, 65536 or \
         131072 with r=8 and p=1, and other costs are not attempted"
    )]
    UnsupportedScryptParameters { n: u64, r: u64, p: u64 },
    #[error("malformed encrypted key: the nonce is {len} bytes, nacl/secretbox needs 24")]
    NonceLength { len: usize },
    #[error("malformed encrypted key: the ciphertext is {len} bytes, shorter than its 16-byte tag")]
    CiphertextTooShort { len: usize },
    #[error("wrong password: the private key could not be decrypted")]
    WrongPassword,
    #[error("the private key is not valid PKCS#8: {0}")]
    Pkcs8(pkcs8::Error),
    #[error("the private key is not a valid SEC1 EC private key: {0}")]
    Sec1(sec1::Error),
    #[error("the public key is not a valid SubjectPublicKeyInfo: {0}")]
    Spki(spki::Error),
    #[error(
        "unsupported key type {} (cosign keys are ECDSA P-256 or Ed25519)",
        describe_oid(.oid)
    )]
    UnsupportedKeyType { oid: String },
    #[error("unsupported elliptic curve {} (cosign ECDSA keys use P-256)", describe_oid(.oid))]
    UnsupportedCurve { oid: String },
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(getrandom::Error),
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {len}-byte ECDSA signature is not ASN.1 DER (cosign signatures are DER-encoded)")]
    NotDer { len: usize },
    #[error("the Ed25519 signature is {len} bytes; Ed25519 signatures are 64 bytes")]
    WrongLength { len: usize },
    #[error("the signature does not match the signed bytes and this key")]
    Mismatch,
}

/// A private key that signs as cosign does.
///
/// `Debug` shows the algorithm and the public key ID, never secret material; the secret is
/// zeroized on drop by the underlying RustCrypto types.
pub struct SigningKey(Secret);

enum Secret {
    EcdsaP256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system's random number generator fails, as RustCrypto's `random`
    /// constructors do; [`SigningKey::try_generate`] reports that as an error instead.
    pub fn generate(algorithm: KeyAlgorithm) -> SigningKey {
        SigningKey::try_generate(algorithm)
            .unwrap_or_else(|error| panic!("cannot generate a {algorithm} key: {error}"))
    }

    /// A fresh key from the operating system's random number generator, or why there is none.
    pub fn try_generate(algorithm: KeyAlgorithm) -> Result<SigningKey, KeyError> {
        // A uniformly random 32-byte string is a valid P-256 scalar unless it is zero or at
        // least the group order, which happens with probability below 2^-32; retrying a few
        // times makes a failure here practically impossible without looping forever.
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut_slice()).map_err(KeyError::Randomness)?;
            match algorithm {
                KeyAlgorithm::Ed25519 => {
                    return Ok(SigningKey(Secret::Ed25519(
                        ed25519_dalek::SigningKey::from_bytes(&seed),
                    )));
                }
                KeyAlgorithm::EcdsaP256 => {
                    let bytes = Zeroizing::new(p256::FieldBytes::from(*seed));
                    if let Ok(key) = p256::ecdsa::SigningKey::from_bytes(&bytes) {
                        return Ok(SigningKey(Secret::EcdsaP256(key)));
                    }
                }
            }
        }
        Err(KeyError::Randomness(getrandom::Error::UNEXPECTED))
    }

    /// Reads a private key file: an encrypted cosign key (either PEM type, `password`
    /// required) or a plain PKCS#8 / SEC1 key (`password` ignored).
    pub fn from_pem(pem: &[u8], password: Option<&[u8]>) -> Result<SigningKey, KeyError> {
        let (label, body) = decode_pem(pem)?;
        let body = Zeroizing::new(body);
        match label.as_str() {
            ENCRYPTED_SIGSTORE_LABEL | ENCRYPTED_COSIGN_LABEL => {
                let password = password.ok_or(KeyError::PasswordRequired { label })?;
                let pkcs8_der = decrypt(&body, password)?;
                SigningKey::from_pkcs8_der(&pkcs8_der)
            }
            PKCS8_LABEL => SigningKey::from_pkcs8_der(&body),
            SEC1_LABEL => SigningKey::from_sec1_der(&body),
            _ => Err(KeyError::UnexpectedPemType {
                label: label.chars().take(64).collect(),
                expected: "ENCRYPTED SIGSTORE PRIVATE KEY, ENCRYPTED COSIGN PRIVATE KEY, \
                           PRIVATE KEY or EC PRIVATE KEY",
            }),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(KeyError::Pkcs8)?;
        let oid = info.algorithm.oid;
        if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
            let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(KeyError::Pkcs8)?;
            return Ok(SigningKey(Secret::Ed25519(key)));
        }
        if oid != p256::elliptic_curve::ALGORITHM_OID {
            return Err(KeyError::UnsupportedKeyType {
                oid: oid.to_string(),
            });
        }
        match info.algorithm.parameters_oid() {
            Ok(curve) if curve == p256::NistP256::OID => {}
            Ok(curve) => {
                return Err(KeyError::UnsupportedCurve {
                    oid: curve.to_string(),
                });
            }
            Err(error) => return Err(KeyError::Pkcs8(error.into())),
        }
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(KeyError::Pkcs8)?;
        Ok(SigningKey(Secret::EcdsaP256(key)))
    }

    fn from_sec1_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let parsed = sec1::EcPrivateKey::try_from(der).map_err(KeyError::Sec1)?;
        if let Some(sec1::EcParameters::NamedCurve(curve)) = parsed.parameters
            && curve != p256::NistP256::OID
        {
            return Err(KeyError::UnsupportedCurve {
                oid: curve.to_string(),
            });
        }
        let secret = p256::SecretKey::try_from(parsed).map_err(|e| KeyError::Sec1(e.into()))?;
        Ok(SigningKey(Secret::EcdsaP256(secret.into())))
    }

    /// Writes the key as cosign does: PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N = 32768,
    /// r = 8, p = 1, a fresh 32-byte salt and 24-byte nonce, base64 lines of 64 characters.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let pkcs8_der = self.to_pkcs8_der();
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; secretbox::NONCE_LEN];
        getrandom::fill(&mut salt).map_err(KeyError::Randomness)?;
        getrandom::fill(&mut nonce).map_err(KeyError::Randomness)?;
        let box_key = derive_box_key(password, &salt, WRITTEN_SCRYPT_LOG_N)?;
        let ciphertext = secretbox::seal(&box_key, &nonce, &pkcs8_der);
        let file = EncryptedKeyFile {
            kdf: Kdf {
                name: KDF_NAME.to_owned(),
                params: ScryptParams {
                    n: 1 << WRITTEN_SCRYPT_LOG_N,
                    r: SCRYPT_R.into(),
                    p: SCRYPT_P.into(),
                },
                salt: STANDARD.encode(salt),
            },
            cipher: Cipher {
                name: CIPHER_NAME.to_owned(),
                nonce: STANDARD.encode(nonce),
            },
            ciphertext: STANDARD.encode(ciphertext),
        };
        let json = serde_json::to_vec(&file).map_err(KeyError::EncryptedKeyJson)?;
        Ok(pem_encode(ENCRYPTED_SIGSTORE_LABEL, &json))
    }

    /// The unencrypted PKCS#8 PEM (`PRIVATE KEY`), as `cosign import-key-pair` reads it.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem_encode(PKCS8_LABEL, &self.to_pkcs8_der()))
    }

    /// PKCS#8 v1 DER in the exact form Go's `x509.MarshalPKCS8PrivateKey` writes (and the
    /// RustCrypto encoders too, which the tests check): for P-256 an RFC 5915 ECPrivateKey
    /// with the public key and without the curve parameters, which the outer
    /// AlgorithmIdentifier already names; for Ed25519 the RFC 8410 CurvePrivateKey without
    /// the optional public key. Both are fixed-size, so the DER is a constant prefix around
    /// the key bytes and cannot fail to encode.
    fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut der = Zeroizing::new(Vec::with_capacity(160));
        match &self.0 {
            Secret::EcdsaP256(key) => {
                let scalar = Zeroizing::new(key.to_bytes());
                let point = key.verifying_key().to_sec1_point(false);
                der.extend_from_slice(&P256_PKCS8_PREFIX);
                der.extend_from_slice(scalar.as_slice());
                der.extend_from_slice(&P256_PKCS8_PUBLIC_KEY_TAG);
                der.extend_from_slice(point.as_bytes());
            }
            Secret::Ed25519(key) => {
                let seed = Zeroizing::new(key.to_bytes());
                der.extend_from_slice(&ED25519_PKCS8_PREFIX);
                der.extend_from_slice(seed.as_slice());
            }
        }
        der
    }

    pub fn public_key(&self) -> PublicKey {
        match &self.0 {
            Secret::EcdsaP256(key) => PublicKey(Public::EcdsaP256(*key.verifying_key())),
            Secret::Ed25519(key) => PublicKey(Public::Ed25519(key.verifying_key())),
        }
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            Secret::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Secret::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Signs `message` as cosign does: ECDSA P-256 over SHA-256(message), encoded as ASN.1
    /// DER; Ed25519 over the message itself (64 bytes).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.0 {
            Secret::EcdsaP256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            Secret::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

/// A public key that verifies cosign signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(Public);

#[derive(Clone, PartialEq, Eq)]
enum Public {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (PKIX SubjectPublicKeyInfo) holding a P-256 or Ed25519 key.
    pub fn from_pem(pem: &[u8]) -> Result<PublicKey, KeyError> {
        let (label, der) = decode_pem(pem)?;
        if label != PUBLIC_KEY_LABEL {
            return Err(KeyError::UnexpectedPemType {
                label: label.chars().take(64).collect(),
                expected: PUBLIC_KEY_LABEL,
            });
        }
        PublicKey::from_spki_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo holding a P-256 or Ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        use spki::DecodePublicKey as _;
        let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(KeyError::Spki)?;
        let oid = info.algorithm.oid;
        if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
            let key =
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(KeyError::Spki)?;
            return Ok(PublicKey(Public::Ed25519(key)));
        }
        if oid != p256::elliptic_curve::ALGORITHM_OID {
            return Err(KeyError::UnsupportedKeyType {
                oid: oid.to_string(),
            });
        }
        let curve = info.algorithm.parameters_oid().map_err(KeyError::Spki)?;
        if curve != p256::NistP256::OID {
            return Err(KeyError::UnsupportedCurve {
                oid: curve.to_string(),
            });
        }
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(KeyError::Spki)?;
        Ok(PublicKey(Public::EcdsaP256(key)))
    }

    /// The DER SubjectPublicKeyInfo, with the P-256 point uncompressed as Go writes it.
    pub fn to_spki_der(&self) -> Vec<u8> {
        match &self.0 {
            Public::EcdsaP256(key) => {
                let point = key.to_sec1_point(false);
                [&P256_SPKI_PREFIX[..], point.as_bytes()].concat()
            }
            Public::Ed25519(key) => [&ED25519_SPKI_PREFIX[..], key.as_bytes()].concat(),
        }
    }

    /// PEM `PUBLIC KEY`, the form of `cosign.pub`.
    pub fn to_pem(&self) -> String {
        pem_encode(PUBLIC_KEY_LABEL, &self.to_spki_der())
    }

    /// Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.to_spki_der()))
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            Public::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Public::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Checks `signature` over `message`: ECDSA P-256/SHA-256 with a DER signature (what
    /// Go's `ecdsa.VerifyASN1` accepts), or Ed25519 with a 64-byte signature checked with
    /// the strict rules (canonical S, no small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match &self.0 {
            Public::EcdsaP256(key) => {
                let signature = p256::ecdsa::Signature::from_der(signature).map_err(|_| {
                    SignatureError::NotDer {
                        len: signature.len(),
                    }
                })?;
                key.verify(message, &signature)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Public::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                    SignatureError::WrongLength {
                        len: signature.len(),
                    }
                })?;
                key.verify_strict(message, &signature)
                    .map_err(|_| SignatureError::Mismatch)
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id())
            .finish()
    }
}

/// The JSON inside an encrypted cosign key (go-securesystemslib `encrypted.data`); field
/// order matches Go's output.
#[derive(Serialize, Deserialize)]
struct EncryptedKeyFile {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Decrypts the JSON body of an encrypted cosign key into PKCS#8 DER. Every check that does
/// not need the password runs before scrypt.
fn decrypt(body: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file: EncryptedKeyFile =
        serde_json::from_slice(body).map_err(KeyError::EncryptedKeyJson)?;
    if file.kdf.name != KDF_NAME {
        return Err(KeyError::UnsupportedKdf {
            name: file.kdf.name.chars().take(64).collect(),
        });
    }
    let ScryptParams { n, r, p } = file.kdf.params;
    if !ACCEPTED_SCRYPT_N.contains(&n) || r != u64::from(SCRYPT_R) || p != u64::from(SCRYPT_P) {
        return Err(KeyError::UnsupportedScryptParameters { n, r, p });
    }
    if file.cipher.name != CIPHER_NAME {
        return Err(KeyError::UnsupportedCipher {
            name: file.cipher.name.chars().take(64).collect(),
        });
    }
    let salt = decode_field("kdf.salt", &file.kdf.salt)?;
    let nonce = decode_field("cipher.nonce", &file.cipher.nonce)?;
    let ciphertext = decode_field("ciphertext", &file.ciphertext)?;
    let nonce: [u8; secretbox::NONCE_LEN] = nonce
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::NonceLength { len: nonce.len() })?;
    if ciphertext.len() < secretbox::TAG_LEN {
        return Err(KeyError::CiphertextTooShort {
            len: ciphertext.len(),
        });
    }
    // n is one of the accepted powers of two, so trailing_zeros is its exact log2 (15..=17).
    let log_n = u8::try_from(n.trailing_zeros())
        .map_err(|_| KeyError::UnsupportedScryptParameters { n, r, p })?;
    let box_key = derive_box_key(password, &salt, log_n)?;
    secretbox::open(&box_key, &nonce, &ciphertext).ok_or(KeyError::WrongPassword)
}

fn decode_field(field: &'static str, value: &str) -> Result<Vec<u8>, KeyError> {
    STANDARD
        .decode(value)
        .map_err(|source| KeyError::FieldBase64 { field, source })
}

fn derive_box_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
) -> Result<Zeroizing<[u8; secretbox::KEY_LEN]>, KeyError> {
    let unsupported = || KeyError::UnsupportedScryptParameters {
        n: 1u64 << log_n.min(63),
        r: SCRYPT_R.into(),
        p: SCRYPT_P.into(),
    };
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P).map_err(|_| unsupported())?;
    let mut key = Zeroizing::new([0u8; secretbox::KEY_LEN]);
    scrypt::scrypt(password, salt, &params, key.as_mut_slice()).map_err(|_| unsupported())?;
    Ok(key)
}

/// NaCl `crypto_secretbox_xsalsa20poly1305` in Go's `secretbox` layout (tag ‖ ciphertext).
///
/// XSalsa20 keyed with (key, 24-byte nonce) produces a keystream; its first 32 bytes are the
/// one-time Poly1305 key, the rest is XORed with the message, and the tag is Poly1305 over
/// the ciphertext (NaCl, "Cryptography in NaCl" §9; Go `golang.org/x/crypto/nacl/secretbox`).
mod secretbox {
    use poly1305::Poly1305;
    use poly1305::universal_hash::KeyInit as _;
    use salsa20::XSalsa20;
    use salsa20::cipher::{KeyIvInit as _, StreamCipher as _};
    use subtle::ConstantTimeEq as _;
    use zeroize::Zeroizing;

    pub const KEY_LEN: usize = 32;
    pub const NONCE_LEN: usize = 24;
    pub const TAG_LEN: usize = 16;

    fn keystream(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (XSalsa20, Poly1305) {
        let mut cipher = XSalsa20::new(key.into(), nonce.into());
        let mut one_time_key = Zeroizing::new([0u8; KEY_LEN]);
        cipher.apply_keystream(one_time_key.as_mut_slice());
        let mac = Poly1305::new((&*one_time_key).into());
        (cipher, mac)
    }

    pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let (mut cipher, mac) = keystream(key, nonce);
        let mut ciphertext = plaintext.to_vec();
        cipher.apply_keystream(&mut ciphertext);
        let tag = mac.compute_unpadded(&ciphertext);
        [tag.as_slice(), &ciphertext].concat()
    }

    /// `None` when the tag does not authenticate the ciphertext (wrong key or tampering).
    pub fn open(
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (tag, ciphertext) = sealed.split_at_checked(TAG_LEN)?;
        let (mut cipher, mac) = keystream(key, nonce);
        let expected = mac.compute_unpadded(ciphertext);
        if !bool::from(expected.as_slice().ct_eq(tag)) {
            return None;
        }
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        cipher.apply_keystream(&mut plaintext);
        Some(plaintext)
    }
}

/// Decodes the first PEM block of `input`. Like Go's `pem.Decode`, text before the block
/// and after its end line is ignored; the block itself must be strict RFC 7468.
fn decode_pem(input: &[u8]) -> Result<(String, Vec<u8>), KeyError> {
    let block = first_pem_block(input);
    let (label, der) = pem_rfc7468::decode_vec(block).map_err(KeyError::Pem)?;
    Ok((label.to_owned(), der))
}

fn first_pem_block(input: &[u8]) -> &[u8] {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    const DASHES: &[u8] = b"-----";
    let Some(start) = find(input, BEGIN, 0) else {
        return input;
    };
    let Some(end_line) = find(input, END, start) else {
        return input;
    };
    let Some(dashes) = find(input, DASHES, end_line + END.len()) else {
        return input;
    };
    input.get(start..dashes + DASHES.len()).unwrap_or(input)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| position + from)
}

/// PEM with 64-character base64 lines and LF line ends, byte for byte what Go's
/// `pem.EncodeToMemory` writes.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = Zeroizing::new(STANDARD.encode(der));
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    pem.push_str("-----BEGIN ");
    pem.push_str(label);
    pem.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

/// `1.2.840.113549.1.1.1 (RSA)` for the OIDs users are likely to meet.
fn describe_oid(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.1" => Some("RSA"),
        "1.2.840.113549.1.1.10" => Some("RSASSA-PSS"),
        "1.2.840.10040.4.1" => Some("DSA"),
        "1.3.101.110" => Some("X25519"),
        "1.3.101.111" => Some("X448"),
        "1.3.101.113" => Some("Ed448"),
        "1.3.132.0.10" => Some("secp256k1"),
        "1.3.132.0.34" => Some("P-384"),
        "1.3.132.0.35" => Some("P-521"),
        _ => None,
    };
    match name {
        Some(name) => format!("{oid} ({name})"),
        None => oid.to_owned(),
    }
}
