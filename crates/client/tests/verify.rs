//! `VerifiedBlob`: a stream that cannot be read to a clean end unless it is what its digest
//! and size promised.

use std::io::{self, Read};

use client::{VerifiedBlob, VerifyError};
use oci::{Algorithm, Digest};

fn verify_error(error: &io::Error) -> &VerifyError {
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<VerifyError>())
        .unwrap_or_else(|| panic!("not a VerifyError: {error}"))
}

#[test]
fn checks_digest_and_size() {
    let data = b"layer bytes".to_vec();
    let digest = Digest::compute(Algorithm::Sha256, &data);
    let mut ok = Vec::new();
    VerifiedBlob::new(&data[..], digest.clone(), Some(data.len() as u64))
        .read_to_end(&mut ok)
        .unwrap();
    assert_eq!(ok, data);
    let mut unsized_ok = Vec::new();
    VerifiedBlob::new(&data[..], digest.clone(), None)
        .read_to_end(&mut unsized_ok)
        .unwrap();
    assert_eq!(unsized_ok, data);

    let mut bad = data.clone();
    bad[0] ^= 1;
    let mut reader = VerifiedBlob::new(&bad[..], digest.clone(), None);
    let mut received = Vec::new();
    let error = reader.read_to_end(&mut received).unwrap_err();
    // Every byte was handed over; the end of the stream is where the mismatch shows.
    assert_eq!(received, bad);
    match verify_error(&error) {
        VerifyError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &digest);
            assert_eq!(actual, &Digest::compute(Algorithm::Sha256, &bad));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(error.to_string().contains("digest mismatch"), "{error}");
    // The failure is sticky, and keeps its type.
    let again = reader.read(&mut [0; 8]).unwrap_err();
    assert!(matches!(
        verify_error(&again),
        VerifyError::DigestMismatch { .. }
    ));

    let longer = [data.clone(), b"x".to_vec()].concat();
    let error = VerifiedBlob::new(&longer[..], digest.clone(), Some(data.len() as u64))
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(
        verify_error(&error),
        &VerifyError::TooLarge {
            what: format!("blob {digest}"),
            limit: data.len() as u64
        }
    );

    let error = VerifiedBlob::new(&data[..4], digest.clone(), Some(data.len() as u64))
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(
            verify_error(&error),
            VerifyError::Truncated {
                read: 4,
                expected: 11,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("ended after 4 bytes"), "{error}");
}

#[test]
fn other_algorithms_are_used_as_named() {
    let data = b"sha512 content".to_vec();
    let digest = Digest::compute(Algorithm::Sha512, &data);
    let mut out = Vec::new();
    VerifiedBlob::new(&data[..], digest, None)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
}
