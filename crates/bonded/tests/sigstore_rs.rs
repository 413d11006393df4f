//! The independent cosign implementation that Bonded's signatures are checked against: the
//! Sigstore Rust crate (`sigstore` 0.15.0), wrapped in synchronous functions for the tests.
//!
//! Issue 4 asks for proof that `bonded sign` and `bonded verify` speak cosign's format, with
//! signatures and keys made by an implementation Bonded does not share code with. This module
//! is that other side. It only calls sigstore's public API and adds no format logic of its own:
//! whatever it accepts or rejects, sigstore accepted or rejected.
//!
//! What the functions do, in sigstore's terms (cosign's `specs/SIGNATURE_SPEC.md`, signing.md
//! §4.1):
//! - [`sign`] resolves the image digest (`triangulate`), builds the simple-signing payload
//!   (`SignatureLayer::new_unsigned`), signs it with the key (`PrivateKeySigner`, the scheme
//!   chosen from the key type) and pushes the `sha256-<hex>.sig` manifest (`push_signature`).
//!   **`push_signature` replaces the `.sig` manifest**: it writes one manifest holding only the
//!   layers it is given, whereas cosign and containers/image append a layer to the existing
//!   ones. After a second `sign`, the first signature is gone. Appending through sigstore is
//!   not possible without damage either: `push_signature` re-serializes each layer's parsed
//!   payload instead of keeping its bytes, which would break other signers' signatures.
//! - [`verify`] reads the signature layers (`trusted_signature_layers`: the `.sig` tag, then the
//!   OCI referrers API with its `sha256-<hex>` fallback tag) and checks them with a
//!   `PublicKeyVerifier` through `verify_constraints`. Only the `.sig` tag can yield a layer for
//!   a key: sigstore accepts a referrer only as a Sigstore bundle v0.3 with a Fulcio certificate
//!   and a Rekor entry, which needs a trust root this client does not have.
//!   Any layer of the `.sig` manifest whose media type is not
//!   `application/vnd.dev.cosign.simplesigning.v1+json` makes the whole manifest unreadable;
//!   a simple-signing layer whose payload names another digest, or that lacks the
//!   `dev.cosignproject.cosign/signature` annotation, is skipped and the others still count.
//! - [`verify_payload`] checks one base64 signature over payload bytes, without a registry.
//! - [`generate_key`] and [`load_private_key`] use sigstore's own key generation and its
//!   encrypted-PEM export and import (`ENCRYPTED SIGSTORE PRIVATE KEY`; it also reads
//!   `ENCRYPTED COSIGN PRIVATE KEY`, scrypt N = 32768 or 65536 with r = 8, p = 1 only).
//!
//! Every registry function builds its own single-threaded tokio runtime and blocks on it, so it
//! must be called from a plain `#[test]` or from `tokio::task::spawn_blocking`, never directly
//! inside an async test (tokio refuses to start a runtime inside a runtime). Access is anonymous.
//! `plain_http = true` talks HTTP; `false` talks HTTPS and accepts any server certificate, since
//! the test servers use throwaway self-signed certificates and this module proves the signature
//! format, not TLS trust. Errors are sigstore's messages as strings, with the image named.

use sigstore::cosign::verification_constraint::{
    PublicKeyVerifier, VerificationConstraint, VerificationConstraintVec,
};
use sigstore::cosign::{
    Client, ClientBuilder, Constraint, CosignCapabilities, SignatureLayer,
    constraint::PrivateKeySigner, verify_constraints,
};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
use sigstore::crypto::signing_key::ed25519::Ed25519Keys;
use sigstore::crypto::{CosignVerificationKey, Signature, SigningScheme};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

/// The key types the interop tests exercise. cosign signs container images with ECDSA P-256
/// (SHA-256, DER signatures); Ed25519 is the other type cosign and containers/image verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    EcdsaP256,
    Ed25519,
}

impl Scheme {
    fn signing_scheme(self) -> SigningScheme {
        match self {
            Scheme::EcdsaP256 => SigningScheme::ECDSA_P256_SHA256_ASN1,
            Scheme::Ed25519 => SigningScheme::ED25519,
        }
    }
}

/// Generates a key pair with sigstore and returns `(private PEM, public PEM)`.
///
/// The private key is exported the way sigstore writes it: PEM type
/// `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N = 32768, NaCl secretbox, PKCS#8 inside. The
/// public key is a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM. Panics if sigstore cannot generate
/// or export a key, which only a broken crypto backend causes.
pub fn generate_key(password: &[u8], scheme: Scheme) -> (String, String) {
    let key_pair = scheme
        .signing_scheme()
        .create_signer()
        .and_then(|signer| signer.to_sigstore_keypair())
        .expect("sigstore generates a key pair");
    let private_pem = key_pair
        .private_key_to_encrypted_pem(password)
        .expect("sigstore exports an encrypted private key");
    let public_pem = key_pair
        .public_key_to_pem()
        .expect("sigstore exports the public key");
    (private_pem.to_string(), public_pem)
}

/// Proves that sigstore can decrypt and parse an encrypted private key file.
///
/// On failure, the message carries sigstore's reason for each key type it tried. sigstore 0.15
/// accepts the PEM types `ENCRYPTED SIGSTORE PRIVATE KEY` and `ENCRYPTED COSIGN PRIVATE KEY`
/// (and an unencrypted `PRIVATE KEY` with an empty password), scrypt N = 32768 or 65536 only
/// (N = 131072 gives "Unexpected kdf parameters"); a wrong password gives sigstore's
/// "Failed to encrypt the private key: aead::Error" (sic).
pub fn load_private_key(private_pem: &[u8], password: &[u8]) -> Result<(), String> {
    read_key_pair(private_pem, password).map(|_| ())
}

/// Signs `image` (`host:port/repository:tag` or `@sha256:…`) with an encrypted private key and
/// pushes the signature to the image's `sha256-<hex>.sig` tag, **replacing** any signature
/// manifest already there (see the module header).
pub fn sign(
    image: &str,
    private_pem: &[u8],
    password: &[u8],
    plain_http: bool,
) -> Result<(), String> {
    let reference = parse_reference(image)?;
    let signer = private_key_signer(private_pem, password)?;
    block_on(async {
        let mut client = cosign_client(plain_http)?;
        let auth = Auth::Anonymous;
        let (signature_reference, manifest_digest) = client
            .triangulate(&reference, &auth)
            .await
            .map_err(|e| format!("cannot resolve {image}: {e}"))?;
        let mut layer = SignatureLayer::new_unsigned(&reference, &manifest_digest)
            .map_err(|e| format!("cannot build the simple-signing payload for {image}: {e}"))?;
        let signed = signer
            .add_constraint(&mut layer)
            .map_err(|e| format!("cannot sign the payload for {image}: {e}"))?;
        if !signed {
            return Err(format!("sigstore left the payload for {image} unsigned"));
        }
        client
            .push_signature(None, &auth, &signature_reference, vec![layer])
            .await
            .map_err(|e| format!("cannot push {signature_reference}: {e}"))?;
        Ok(())
    })?
}

/// Verifies the signatures of `image` with a public key and returns how many signature layers
/// the key verifies (at least 1 on success).
///
/// Errors: "found 0 signature layers …" when sigstore reads no usable signature layer at all
/// (unsigned image, or a `.sig` manifest it cannot read), and sigstore's
/// "Several Signature Layers failed verification" when layers exist but none verifies with the
/// key.
pub fn verify(image: &str, public_pem: &[u8], plain_http: bool) -> Result<usize, String> {
    let reference = parse_reference(image)?;
    let verifier = PublicKeyVerifier::try_from(public_pem)
        .map_err(|e| format!("sigstore cannot read the public key: {e}"))?;
    let layers = block_on(async {
        let mut client = cosign_client(plain_http)?;
        client
            .trusted_signature_layers(&Auth::Anonymous, &reference)
            .await
            .map_err(|e| format!("cannot read the signatures of {image}: {e}"))
    })??;
    if layers.is_empty() {
        return Err(format!(
            "found 0 signature layers for {image}: sigstore read no simple-signing layer from the \
             .sig tag and no verifiable bundle from the referrers"
        ));
    }
    let verified = layers
        .iter()
        .filter(|layer| matches!(verifier.verify(layer), Ok(true)))
        .count();
    let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
    verify_constraints(&layers, constraints.iter()).map_err(|e| {
        format!(
            "{} signature layer(s) found for {image}, none verified with the key: {e}",
            layers.len()
        )
    })?;
    Ok(verified)
}

/// Verifies one base64 signature over `payload` with a `PUBLIC KEY` PEM, the way sigstore checks
/// a `.sig` layer (ECDSA P-256 + SHA-256 with a DER signature, or Ed25519 over the raw bytes).
/// The key type is detected from the key (`CosignVerificationKey::try_from_pem`).
pub fn verify_payload(
    payload: &[u8],
    signature_b64: &str,
    public_pem: &[u8],
) -> Result<(), String> {
    let key = CosignVerificationKey::try_from_pem(public_pem)
        .map_err(|e| format!("sigstore cannot read the public key: {e}"))?;
    key.verify_signature(Signature::Base64Encoded(signature_b64.as_bytes()), payload)
        .map_err(|e| format!("sigstore rejects the signature: {e}"))
}

/// Decrypts a private key and turns it into a signer whose scheme matches the key type:
/// ECDSA P-256 signs with SHA-256 and DER signatures, Ed25519 signs the payload itself.
fn private_key_signer(private_pem: &[u8], password: &[u8]) -> Result<PrivateKeySigner, String> {
    let key_pair = read_key_pair(private_pem, password)?;
    let scheme = match key_pair {
        SigStoreKeyPair::ECDSA(_) => SigningScheme::ECDSA_P256_SHA256_ASN1,
        SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
        SigStoreKeyPair::RSA(_) => return Err("RSA keys are not part of these tests".to_string()),
    };
    let signer = key_pair
        .to_sigstore_signer(&scheme)
        .map_err(|e| format!("sigstore cannot sign with this key: {e}"))?;
    Ok(PrivateKeySigner::new_with_signer(signer))
}

/// Tries the key types sigstore's `SigStoreKeyPair::from_encrypted_pem` tries, in its order, but
/// keeps each rejection's reason (sigstore reports them all as "Unsupported key type") and skips
/// RSA, which these tests do not use. Each attempt runs scrypt once.
fn read_key_pair(private_pem: &[u8], password: &[u8]) -> Result<SigStoreKeyPair, String> {
    let as_ecdsa = match ECDSAKeys::from_encrypted_pem(private_pem, password) {
        Ok(keys) => return Ok(SigStoreKeyPair::ECDSA(keys)),
        Err(e) => e,
    };
    let as_ed25519 = match Ed25519Keys::from_encrypted_pem(private_pem, password) {
        Ok(keys) => return Ok(SigStoreKeyPair::ED25519(keys)),
        Err(e) => e,
    };
    Err(format!(
        "sigstore cannot load the private key (as ECDSA: {as_ecdsa}; as Ed25519: {as_ed25519})"
    ))
}

fn parse_reference(image: &str) -> Result<OciReference, String> {
    image
        .parse()
        .map_err(|e| format!("not an image reference: {e}"))
}

fn cosign_client(plain_http: bool) -> Result<Client, String> {
    let config = ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: !plain_http,
        ..ClientConfig::default()
    };
    ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .map_err(|e| format!("cannot build the sigstore client: {e}"))
}

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    Ok(runtime.block_on(future))
}
