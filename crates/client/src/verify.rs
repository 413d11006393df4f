//! Checking that what a registry sent is what was asked for.
//!
//! Content addressing is the whole security model of a registry pull: a digest names exactly
//! one byte string. Small documents (manifests, configs, signature payloads) are read whole
//! and compared with [`verify_digest`]; large blobs are streamed through [`VerifiedBlob`],
//! which hashes while the caller reads and turns the end of the stream into an error when the
//! digest or the declared size does not match, so a corrupted blob can never be read to a
//! clean end.

use std::io::{self, Read};

use oci::{Digest, Hasher};

/// Content that is not what its digest or size promised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} ended after {read} bytes, {expected} were expected")]
    Truncated {
        what: String,
        read: u64,
        expected: u64,
    },
    #[error("the registry announces {announced} bytes for {what}, {expected} were expected")]
    SizeMismatch {
        what: String,
        announced: u64,
        expected: u64,
    },
}

/// Checks that `bytes` hash to `expected` (with `expected`'s algorithm).
pub(crate) fn verify_digest(
    what: &str,
    expected: &Digest,
    bytes: &[u8],
) -> Result<(), VerifyError> {
    let actual = Digest::compute(expected.algorithm(), bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(VerifyError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.clone(),
            actual,
        })
    }
}

/// A blob stream that is hashed as it is read.
///
/// The read that reaches the end of the stream fails with [`VerifyError::DigestMismatch`]
/// (inside an [`io::Error`] of kind `InvalidData`, reachable with `get_ref` and
/// `downcast_ref`) when the bytes do not hash to the expected digest, or with
/// [`VerifyError::Truncated`] when fewer bytes than the declared size arrived; any read fails
/// with [`VerifyError::TooLarge`] as soon as more bytes arrive than the declared size. A
/// failure is sticky: every later read returns the same error.
pub struct VerifiedBlob<R> {
    inner: R,
    expected: Digest,
    size: Option<u64>,
    read: u64,
    state: VerifyState,
}

enum VerifyState {
    Reading(Hasher),
    Verified,
    Failed(VerifyError),
}

impl<R: Read> VerifiedBlob<R> {
    /// Reads `inner`, which must hash to `expected` and, when `size` is given, hold exactly
    /// that many bytes.
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> VerifiedBlob<R> {
        let hasher = Hasher::new(expected.algorithm());
        VerifiedBlob {
            inner,
            expected,
            size,
            read: 0,
            state: VerifyState::Reading(hasher),
        }
    }

    fn what(&self) -> String {
        format!("blob {}", self.expected)
    }

    fn fail(&mut self, error: VerifyError) -> io::Error {
        self.state = VerifyState::Failed(error.clone());
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// The end of the stream: compare what was read with what was promised.
    fn finish(&mut self) -> io::Result<()> {
        // `read` returns before calling this in the `Failed` state.
        let VerifyState::Reading(hasher) =
            std::mem::replace(&mut self.state, VerifyState::Verified)
        else {
            return Ok(());
        };
        if let Some(size) = self.size
            && self.read != size
        {
            let error = VerifyError::Truncated {
                what: self.what(),
                read: self.read,
                expected: size,
            };
            return Err(self.fail(error));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            let error = VerifyError::DigestMismatch {
                what: self.what(),
                expected: self.expected.clone(),
                actual,
            };
            return Err(self.fail(error));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifiedBlob<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let VerifyState::Failed(error) = &self.state {
            return Err(io::Error::new(io::ErrorKind::InvalidData, error.clone()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        self.read = self.read.saturating_add(n as u64);
        if let Some(size) = self.size
            && self.read > size
        {
            let error = VerifyError::TooLarge {
                what: self.what(),
                limit: size,
            };
            return Err(self.fail(error));
        }
        if let (VerifyState::Reading(hasher), Some(chunk)) = (&mut self.state, buf.get(..n)) {
            hasher.update(chunk);
        }
        Ok(n)
    }
}
