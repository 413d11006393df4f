//! Fixtures and helpers shared by the test modules.

use std::str::FromStr;
use std::sync::OnceLock;

use oci::Digest;
use trust::{KeyAlgorithm, SigningKey};

/// The image signed in the captured cosign fixtures (signing.md §4.1).
pub const FIXTURE_DIGEST: &str =
    "sha256:0828d9ab49be3144b8212eb062bc5af4e41a97a067b8485c2a5612524b0c3a4f";
pub const FIXTURE_REFERENCE: &str = "127.0.0.1:45000/demo/hello:v1";
pub const FIXTURE_REPOSITORY: &str = "127.0.0.1:45000/demo/hello";

pub const COSIGN_PUB: &[u8] = include_bytes!("fixtures/cosign/cosign.pub");
pub const SIGSTORE_RS_PAYLOAD: &[u8] =
    include_bytes!("fixtures/cosign/sig-payload-sigstore-rs.json");
pub const SIGSTORE_RS_MANIFEST: &[u8] =
    include_bytes!("fixtures/cosign/sig-manifest-sigstore-rs.json");
pub const SKOPEO_MANIFEST: &[u8] =
    include_bytes!("fixtures/cosign/sig-manifest-written-by-skopeo.json");

pub fn digest(s: &str) -> Digest {
    Digest::from_str(s).expect("test digest")
}

pub fn fixture_digest() -> Digest {
    digest(FIXTURE_DIGEST)
}

/// A digest that is not the fixture image.
pub fn other_digest() -> Digest {
    digest("sha256:1111111111111111111111111111111111111111111111111111111111111111")
}

/// Keys generated once per test binary (generation is cheap, but signing tests share them).
pub fn ecdsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(KeyAlgorithm::EcdsaP256))
}

pub fn ed25519_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(KeyAlgorithm::Ed25519))
}

pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unbase64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("test base64")
}

/// Wraps `body` in a PEM block of type `label` (64-character lines).
pub fn pem(label: &str, body: &[u8]) -> Vec<u8> {
    let encoded = base64(body);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// The label and decoded body of a PEM file.
pub fn unpem(pem: &[u8]) -> (String, Vec<u8>) {
    let text = std::str::from_utf8(pem).expect("PEM is text");
    let mut lines = text.lines();
    let begin = lines.next().expect("BEGIN line");
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"))
        .expect("BEGIN line form")
        .to_owned();
    let body: String = lines
        .take_while(|line| !line.starts_with("-----END "))
        .collect();
    (label, unbase64(&body))
}
