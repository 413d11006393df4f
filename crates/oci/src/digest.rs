//! Content digests and streaming hashers.
//!
//! A digest is `algorithm ":" encoded`. The OCI Image Specification (descriptor.md, "Digests")
//! gives the grammar:
//!
//! ```text
//! digest                ::= algorithm ":" encoded
//! algorithm             ::= algorithm-component (algorithm-separator algorithm-component)*
//! algorithm-component   ::= [a-z0-9]+
//! algorithm-separator   ::= [+._-]
//! encoded               ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! and registers `sha256` (encoded `[a-f0-9]{64}`) and `sha512` (`[a-f0-9]{128}`). We accept
//! exactly those two. A string that matches the grammar with another algorithm is reported as
//! [`DigestError::UnsupportedAlgorithm`] so callers can tell "malformed" from "not supported".
//!
//! [`Hasher`] hashes a stream incrementally and can export its internal state, so a chunked
//! upload can be resumed after a restart without reading back the bytes already received.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

/// A registered digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding of this algorithm's output.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other if is_algorithm(other) => Err(DigestError::UnsupportedAlgorithm {
                algorithm: other.to_owned(),
            }),
            other => Err(DigestError::Malformed {
                input: truncate(other),
                reason: "algorithm must match [a-z0-9]+([+._-][a-z0-9]+)*",
            }),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a usable digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("malformed digest {input:?}: {reason}")]
    Malformed { input: String, reason: &'static str },
    #[error("unsupported digest algorithm {algorithm:?} (supported: sha256, sha512)")]
    UnsupportedAlgorithm { algorithm: String },
}

/// A validated content digest, for example `sha256:6c3c62…`.
///
/// The encoded part is always lower-case hex of the algorithm's exact length, so two equal
/// digests have equal string forms and the string form is safe to use in file paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from raw hash output.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        Digest {
            algorithm,
            hex: hex::encode(bytes),
        }
    }

    /// Hashes `data` in one go.
    pub fn compute(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed {
                input: truncate(s),
                reason: "expected algorithm:encoded",
            });
        };
        if encoded.is_empty() || !encoded.bytes().all(is_encoded_byte) {
            return Err(DigestError::Malformed {
                input: truncate(s),
                reason: "encoded part must match [a-zA-Z0-9=_-]+",
            });
        }
        let algorithm: Algorithm = algorithm.parse()?;
        // Image spec, descriptor.md: sha256 and sha512 "MUST" be lower-case hex of the exact
        // length; upper case is not a valid encoding for these algorithms.
        if encoded.len() != algorithm.hex_len()
            || !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::Malformed {
                input: truncate(s),
                reason: match algorithm {
                    Algorithm::Sha256 => "sha256 digests are 64 lower-case hex characters",
                    Algorithm::Sha512 => "sha512 digests are 128 lower-case hex characters",
                },
            });
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_encoded_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-')
}

/// Keeps error messages bounded when a client sends a huge bogus digest.
fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An incremental hasher for one of the registered algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Box<Sha256>),
    Sha512(Box<Sha512>),
}

/// The saved state of a [`Hasher`] could not be restored.
#[derive(Debug, thiserror::Error)]
#[error("cannot restore {algorithm} hash state of {len} bytes")]
pub struct HasherStateError {
    pub algorithm: Algorithm,
    pub len: usize,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Box::default()),
            Algorithm::Sha512 => Hasher::Sha512(Box::default()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_bytes(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_bytes(Algorithm::Sha512, &h.finalize()),
        }
    }

    /// Exports the internal state (including buffered partial blocks).
    pub fn save_state(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// Restores a hasher from [`Hasher::save_state`] output.
    pub fn restore(algorithm: Algorithm, state: &[u8]) -> Result<Hasher, HasherStateError> {
        let err = || HasherStateError {
            algorithm,
            len: state.len(),
        };
        match algorithm {
            Algorithm::Sha256 => {
                let state = SerializedState::<Sha256>::try_from(state).map_err(|_| err())?;
                Sha256::deserialize(&state)
                    .map(|h| Hasher::Sha256(Box::new(h)))
                    .map_err(|_| err())
            }
            Algorithm::Sha512 => {
                let state = SerializedState::<Sha512>::try_from(state).map_err(|_| err())?;
                Sha512::deserialize(&state)
                    .map(|h| Hasher::Sha512(Box::new(h)))
                    .map_err(|_| err())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_registered_algorithms() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(Digest::compute(Algorithm::Sha256, b""), d);
        let d512 = Digest::compute(Algorithm::Sha512, b"");
        assert_eq!(d512.to_string().parse::<Digest>().unwrap(), d512);
        assert!(d512.to_string().starts_with("sha512:cf83e1357eefb8bd"));
    }

    #[test]
    fn rejects_malformed_and_unsupported() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../etc/passwd",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/x",
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(DigestError::Malformed { .. })),
                "{bad:?} should be malformed"
            );
        }
        assert!(matches!(
            "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn hasher_state_round_trips_mid_block() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            let mut first = Hasher::new(algorithm);
            first.update(&data[..777]);
            let state = first.save_state();
            let mut resumed = Hasher::restore(algorithm, &state).unwrap();
            resumed.update(&data[777..]);
            assert_eq!(resumed.finish(), Digest::compute(algorithm, &data));
            assert!(Hasher::restore(algorithm, &state[1..]).is_err());
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = s.parse::<Digest>();
        }

        #[test]
        fn display_parse_round_trip(data in proptest::collection::vec(any::<u8>(), 0..512), sha512 in any::<bool>()) {
            let algorithm = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let d = Digest::compute(algorithm, &data);
            prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        }

        #[test]
        fn split_hashing_equals_whole(data in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
            let cut = cut.min(data.len());
            let mut h = Hasher::new(Algorithm::Sha256);
            h.update(&data[..cut]);
            let mut h = Hasher::restore(Algorithm::Sha256, &h.save_state()).unwrap();
            h.update(&data[cut..]);
            prop_assert_eq!(h.finish(), Digest::compute(Algorithm::Sha256, &data));
        }
    }
}
