//! Standard Webhooks 1.0 symmetric signatures (`v1`, HMAC-SHA256) for outgoing deliveries.
//!
//! Every webhook Bonded delivers carries three headers defined by the Standard Webhooks
//! specification (standard-webhooks/standard-webhooks, `spec/standard-webhooks.md`):
//! `webhook-id` (the event id, stable across retries, the receiver's idempotency key),
//! `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature` (a space-delimited
//! list of `v1,<base64 HMAC-SHA256>`). The signed content is `{id}.{timestamp}.{body}`.
//!
//! This module guarantees that:
//! - secrets are only accepted in the serialized `whsec_<base64>` form and hold 24 to 64 bytes
//!   (the specification: "Random. At least 24 bytes (192 bits, 512 maximum)");
//! - a message id that contains `.` or anything but visible ASCII is refused on both sides,
//!   because the specification warns that the id "not be allowed to include any `.`" (otherwise
//!   `{id}.{timestamp}.{body}` is ambiguous) and the id travels in an HTTP header;
//! - the timestamp is rendered and parsed as canonical decimal digits only, so the signed text
//!   is byte-for-byte what the header carries;
//! - verification compares MACs in constant time (`hmac`'s `verify_slice`, built on `subtle`),
//!   tries every `v1` entry so secret rotation works, ignores other schemes (`v1a`, unknown
//!   versions), and refuses timestamps more than five minutes away from the verifier's clock,
//!   the tolerance the reference libraries use.
//!
//! The HMAC comes from RustCrypto (`hmac` 0.13 over `sha2` 0.11); only the framing above is
//! written here, because no crate of that generation implements it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand_core::TryCryptoRng;
use sha2::Sha256;

/// Header carrying the message id (the CloudEvents `id`), identical on every retry.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix timestamp (seconds) of this delivery attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-delimited signature list.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Prefix of a serialized symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a received timestamp may be from the verifier's clock, as in the reference libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Smallest secret the specification allows (192 bits).
pub const MIN_SECRET_BYTES: usize = 24;
/// Largest secret the specification allows (512 bits).
pub const MAX_SECRET_BYTES: usize = 64;
/// Size of the secrets [`WebhookSecret::generate`] creates (256 bits).
pub const GENERATED_SECRET_BYTES: usize = 32;
/// Longest message id accepted; ids are ULIDs or UUIDs in practice.
pub const MAX_MESSAGE_ID_LEN: usize = 256;

/// Identifier of the symmetric signature scheme in the signature list.
const SCHEME_V1: &str = "v1";
/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a secret, a signature or a verification was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("webhook secret must start with `{SECRET_PREFIX}`")]
    SecretPrefix,
    #[error("webhook secret is not valid base64: {source}")]
    SecretEncoding { source: base64::DecodeError },
    #[error("webhook secret has {len} bytes; the specification requires {min} to {max}")]
    SecretLength { len: usize, min: usize, max: usize },
    #[error("could not draw random bytes for a webhook secret: {reason}")]
    Entropy { reason: String },
    #[error("no signing secret was given")]
    NoSecrets,
    #[error("webhook id is unusable: {reason}")]
    MessageId { reason: &'static str },
    #[error("webhook timestamp {value:?} is not canonical unix seconds")]
    Timestamp { value: String },
    #[error("the clock reads before the unix epoch")]
    ClockBeforeEpoch,
    #[error("webhook timestamp {timestamp} is more than {tolerance_secs} s before now ({now})")]
    TimestampTooOld {
        timestamp: u64,
        now: u64,
        tolerance_secs: u64,
    },
    #[error("webhook timestamp {timestamp} is more than {tolerance_secs} s after now ({now})")]
    TimestampInFuture {
        timestamp: u64,
        now: u64,
        tolerance_secs: u64,
    },
    #[error("none of the {v1_entries} v1 signature(s) matches")]
    NoMatchingSignature { v1_entries: usize },
}

/// A symmetric signing secret (HMAC key) of one endpoint.
///
/// `Debug` never prints the key; [`WebhookSecret::to_whsec`] is the only way to reveal it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    /// The HMAC state right after keying, cloned for every message.
    keyed: HmacSha256,
}

impl WebhookSecret {
    /// Parses the serialized form `whsec_<standard base64>`.
    pub fn parse(serialized: &str) -> Result<Self, SignatureError> {
        let encoded = serialized
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SignatureError::SecretPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|source| SignatureError::SecretEncoding { source })?;
        Self::from_bytes(&key)
    }

    /// Wraps raw key bytes after checking the length the specification allows.
    pub fn from_bytes(key: &[u8]) -> Result<Self, SignatureError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SignatureError::SecretLength {
                len: key.len(),
                min: MIN_SECRET_BYTES,
                max: MAX_SECRET_BYTES,
            });
        }
        let keyed = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| {
            SignatureError::SecretLength {
                len: key.len(),
                min: MIN_SECRET_BYTES,
                max: MAX_SECRET_BYTES,
            }
        })?;
        Ok(Self {
            key: key.to_vec(),
            keyed,
        })
    }

    /// Draws a fresh 256-bit secret from a cryptographic random number generator
    /// (for example `getrandom::SysRng`).
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, SignatureError> {
        let mut key = [0u8; GENERATED_SECRET_BYTES];
        rng.try_fill_bytes(&mut key)
            .map_err(|error| SignatureError::Entropy {
                reason: error.to_string(),
            })?;
        Self::from_bytes(&key)
    }

    /// The serialized form shown to the endpoint's owner: `whsec_<standard base64>`.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac_over(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for WebhookSecret {}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The three Standard Webhooks header values of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    /// Value of `webhook-id`.
    pub id: String,
    /// Value of `webhook-timestamp`.
    pub timestamp: String,
    /// Value of `webhook-signature`.
    pub signature: String,
}

impl WebhookHeaders {
    /// Signs one attempt with every given secret (the current one first; older ones while a
    /// rotation is in progress), stamping it with `sent_at`.
    pub fn sign(
        secrets: &[WebhookSecret],
        msg_id: &str,
        sent_at: SystemTime,
        body: &[u8],
    ) -> Result<Self, SignatureError> {
        if secrets.is_empty() {
            return Err(SignatureError::NoSecrets);
        }
        let timestamp = unix_seconds(sent_at)?;
        let signatures = secrets
            .iter()
            .map(|secret| sign(secret, msg_id, timestamp, body))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id: msg_id.to_owned(),
            timestamp: timestamp.to_string(),
            signature: signatures.join(" "),
        })
    }

    /// The headers as `(name, value)` pairs, ready for an HTTP request.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_ID, self.id.as_str()),
            (HEADER_TIMESTAMP, self.timestamp.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }
}

/// Computes one signature-list entry, `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, SignatureError> {
    check_message_id(msg_id)?;
    let tag = secret
        .mac_over(msg_id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("{SCHEME_V1},{}", STANDARD.encode(tag)))
}

/// Verifies received headers against `body` with the default five-minute tolerance.
pub fn verify(
    secret: &WebhookSecret,
    headers: &WebhookHeaders,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    verify_with_tolerance(secret, headers, body, now, DEFAULT_TOLERANCE)
}

/// Verifies received headers against `body`, accepting timestamps within `tolerance` of `now`.
///
/// Succeeds when at least one `v1` entry of the signature list matches; entries of other
/// schemes and entries that are not valid base64 are skipped.
pub fn verify_with_tolerance(
    secret: &WebhookSecret,
    headers: &WebhookHeaders,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    check_message_id(&headers.id)?;
    let timestamp = parse_timestamp(&headers.timestamp)?;
    check_freshness(timestamp, unix_seconds(now)?, tolerance)?;

    let expected = secret.mac_over(&headers.id, &headers.timestamp, body);
    let mut v1_entries = 0;
    for entry in headers.signature.split(' ') {
        let Some((scheme, encoded)) = entry.split_once(',') else {
            continue;
        };
        if scheme != SCHEME_V1 {
            continue;
        }
        v1_entries += 1;
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        if candidate.len() == TAG_LEN && expected.clone().verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatchingSignature { v1_entries })
}

fn check_message_id(msg_id: &str) -> Result<(), SignatureError> {
    let reason = if msg_id.is_empty() {
        "it is empty"
    } else if msg_id.len() > MAX_MESSAGE_ID_LEN {
        "it is longer than 256 bytes"
    } else if msg_id.contains('.') {
        "it contains `.`, which makes the signed content ambiguous"
    } else if !msg_id.bytes().all(|byte| byte.is_ascii_graphic()) {
        "it contains a character other than visible ASCII"
    } else {
        return Ok(());
    };
    Err(SignatureError::MessageId { reason })
}

fn parse_timestamp(value: &str) -> Result<u64, SignatureError> {
    let invalid = || SignatureError::Timestamp {
        value: value.chars().take(32).collect(),
    };
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    let seconds: u64 = value.parse().map_err(|_| invalid())?;
    // Leading zeros would sign a different text than the sender rendered.
    if seconds.to_string() != value {
        return Err(invalid());
    }
    Ok(seconds)
}

fn check_freshness(timestamp: u64, now: u64, tolerance: Duration) -> Result<(), SignatureError> {
    let tolerance_secs = tolerance.as_secs();
    if now.saturating_sub(timestamp) > tolerance_secs {
        return Err(SignatureError::TimestampTooOld {
            timestamp,
            now,
            tolerance_secs,
        });
    }
    if timestamp.saturating_sub(now) > tolerance_secs {
        return Err(SignatureError::TimestampInFuture {
            timestamp,
            now,
            tolerance_secs,
        });
    }
    Ok(())
}

fn unix_seconds(time: SystemTime) -> Result<u64, SignatureError> {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .map_err(|_| SignatureError::ClockBeforeEpoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors published by the Standard Webhooks reference libraries (see
    // tests/fixtures/SOURCES.md): the JavaScript and Go suites' `sign` vector and the Rust
    // suite's `test_sign` vector.
    const VECTOR_A_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_A_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_A_TIMESTAMP: u64 = 1_614_265_330;
    const VECTOR_A_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_A_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    const VECTOR_B_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_B_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_B_TIMESTAMP: u64 = 1_649_367_553;
    const VECTOR_B_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_B_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    // A well-formed v1 entry that matches nothing, as used by the reference suites.
    const FOREIGN_ENTRY: &str = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

    fn secret_a() -> WebhookSecret {
        WebhookSecret::parse(VECTOR_A_SECRET).unwrap()
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn vector_a_headers(signature: &str) -> WebhookHeaders {
        WebhookHeaders {
            id: VECTOR_A_ID.to_owned(),
            timestamp: VECTOR_A_TIMESTAMP.to_string(),
            signature: signature.to_owned(),
        }
    }

    #[test]
    fn signs_the_reference_vectors() {
        let signed = sign(&secret_a(), VECTOR_A_ID, VECTOR_A_TIMESTAMP, VECTOR_A_BODY).unwrap();
        assert_eq!(signed, VECTOR_A_SIGNATURE);

        let secret_b = WebhookSecret::parse(VECTOR_B_SECRET).unwrap();
        let signed = sign(&secret_b, VECTOR_B_ID, VECTOR_B_TIMESTAMP, VECTOR_B_BODY).unwrap();
        assert_eq!(signed, VECTOR_B_SIGNATURE);
    }

    #[test]
    fn headers_carry_id_timestamp_and_signature() {
        let headers = WebhookHeaders::sign(
            &[secret_a()],
            VECTOR_A_ID,
            at(VECTOR_A_TIMESTAMP),
            VECTOR_A_BODY,
        )
        .unwrap();
        assert_eq!(
            headers.pairs(),
            [
                ("webhook-id", VECTOR_A_ID),
                ("webhook-timestamp", "1614265330"),
                ("webhook-signature", VECTOR_A_SIGNATURE),
            ]
        );
    }

    #[test]
    fn rotation_signs_with_every_secret_in_order() {
        let secret_b = WebhookSecret::parse(VECTOR_B_SECRET).unwrap();
        let headers = WebhookHeaders::sign(
            &[secret_b.clone(), secret_a()],
            VECTOR_A_ID,
            at(VECTOR_A_TIMESTAMP),
            VECTOR_A_BODY,
        )
        .unwrap();
        let entries: Vec<&str> = headers.signature.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], VECTOR_A_SIGNATURE);
        let now = at(VECTOR_A_TIMESTAMP);
        verify(&secret_a(), &headers, VECTOR_A_BODY, now).unwrap();
        verify(&secret_b, &headers, VECTOR_A_BODY, now).unwrap();
    }

    #[test]
    fn verifies_the_reference_vector_within_tolerance() {
        let headers = vector_a_headers(VECTOR_A_SIGNATURE);
        for now in [
            VECTOR_A_TIMESTAMP,
            VECTOR_A_TIMESTAMP - 300,
            VECTOR_A_TIMESTAMP + 300,
        ] {
            verify(&secret_a(), &headers, VECTOR_A_BODY, at(now)).unwrap();
        }
    }

    #[test]
    fn refuses_timestamps_outside_tolerance() {
        let headers = vector_a_headers(VECTOR_A_SIGNATURE);
        let too_old = verify(
            &secret_a(),
            &headers,
            VECTOR_A_BODY,
            at(VECTOR_A_TIMESTAMP + 301),
        );
        assert!(matches!(
            too_old,
            Err(SignatureError::TimestampTooOld { .. })
        ));
        let future = verify(
            &secret_a(),
            &headers,
            VECTOR_A_BODY,
            at(VECTOR_A_TIMESTAMP - 301),
        );
        assert!(matches!(
            future,
            Err(SignatureError::TimestampInFuture { .. })
        ));
    }

    #[test]
    fn finds_the_valid_entry_among_several() {
        let list = format!(
            "v1,{FOREIGN_ENTRY} v2,{FOREIGN_ENTRY} {VECTOR_A_SIGNATURE} v1,{FOREIGN_ENTRY}"
        );
        let headers = vector_a_headers(&list);
        verify(&secret_a(), &headers, VECTOR_A_BODY, at(VECTOR_A_TIMESTAMP)).unwrap();
    }

    #[test]
    fn refuses_lists_without_a_valid_entry() {
        let now = at(VECTOR_A_TIMESTAMP);
        let cases = [
            (format!("v1,{FOREIGN_ENTRY}"), 1),
            (format!("v1,{FOREIGN_ENTRY} v1,{FOREIGN_ENTRY}"), 2),
            ("v1,dawfeoifkpqwoekfpqoekf".to_owned(), 1),
            ("v1,".to_owned(), 1),
            (VECTOR_A_SIGNATURE[..8].to_owned(), 1),
            // The right MAC under another scheme name is not a v1 signature.
            (VECTOR_A_SIGNATURE.replacen("v1,", "v1a,", 1), 0),
            (String::new(), 0),
        ];
        for (list, v1_entries) in cases {
            let result = verify(&secret_a(), &vector_a_headers(&list), VECTOR_A_BODY, now);
            match result {
                Err(SignatureError::NoMatchingSignature { v1_entries: seen }) => {
                    assert_eq!(seen, v1_entries, "list {list:?}");
                }
                other => panic!("list {list:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_changed_body_id_or_timestamp_breaks_the_signature() {
        let now = at(VECTOR_A_TIMESTAMP);
        let tampered_body = verify(
            &secret_a(),
            &vector_a_headers(VECTOR_A_SIGNATURE),
            br#"{"test": 2432232315}"#,
            now,
        );
        assert!(matches!(
            tampered_body,
            Err(SignatureError::NoMatchingSignature { .. })
        ));

        let mut other_id = vector_a_headers(VECTOR_A_SIGNATURE);
        other_id.id = "msg_p5jXN8AQM9LWM0D4loKWxJel".to_owned();
        let result = verify(&secret_a(), &other_id, VECTOR_A_BODY, now);
        assert!(matches!(
            result,
            Err(SignatureError::NoMatchingSignature { .. })
        ));

        let mut other_time = vector_a_headers(VECTOR_A_SIGNATURE);
        other_time.timestamp = (VECTOR_A_TIMESTAMP + 1).to_string();
        let result = verify(&secret_a(), &other_time, VECTOR_A_BODY, now);
        assert!(matches!(
            result,
            Err(SignatureError::NoMatchingSignature { .. })
        ));
    }

    #[test]
    fn another_secret_does_not_verify() {
        let secret_b = WebhookSecret::parse(VECTOR_B_SECRET).unwrap();
        let result = verify(
            &secret_b,
            &vector_a_headers(VECTOR_A_SIGNATURE),
            VECTOR_A_BODY,
            at(VECTOR_A_TIMESTAMP),
        );
        assert!(matches!(
            result,
            Err(SignatureError::NoMatchingSignature { v1_entries: 1 })
        ));
    }

    #[test]
    fn refuses_non_canonical_timestamps() {
        for value in [
            "",
            "hello",
            "+1614265330",
            "01614265330",
            "1614265330.0",
            " 1614265330",
        ] {
            let mut headers = vector_a_headers(VECTOR_A_SIGNATURE);
            headers.timestamp = value.to_owned();
            let result = verify(&secret_a(), &headers, VECTOR_A_BODY, at(VECTOR_A_TIMESTAMP));
            assert!(
                matches!(result, Err(SignatureError::Timestamp { .. })),
                "{value:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn refuses_ambiguous_or_unprintable_message_ids() {
        for id in ["", "msg.1", "msg 1", "msg\n1", "msgé"] {
            let result = sign(&secret_a(), id, VECTOR_A_TIMESTAMP, VECTOR_A_BODY);
            assert!(
                matches!(result, Err(SignatureError::MessageId { .. })),
                "{id:?}"
            );
            let mut headers = vector_a_headers(VECTOR_A_SIGNATURE);
            headers.id = id.to_owned();
            let result = verify(&secret_a(), &headers, VECTOR_A_BODY, at(VECTOR_A_TIMESTAMP));
            assert!(
                matches!(result, Err(SignatureError::MessageId { .. })),
                "{id:?}"
            );
        }
        let long = "m".repeat(MAX_MESSAGE_ID_LEN + 1);
        assert!(sign(&secret_a(), &long, 1, b"").is_err());
    }

    #[test]
    fn secrets_must_use_the_whsec_form_and_length() {
        assert!(matches!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignatureError::SecretPrefix)
        ));
        assert!(matches!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SignatureError::SecretEncoding { .. })
        ));
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert!(matches!(
            WebhookSecret::parse(&short),
            Err(SignatureError::SecretLength { len: 23, .. })
        ));
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert!(matches!(
            WebhookSecret::parse(&long),
            Err(SignatureError::SecretLength { len: 65, .. })
        ));
        assert_eq!(secret_a().to_whsec(), VECTOR_A_SECRET);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", secret_a());
        assert!(!shown.contains("MfKQ"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn signing_requires_a_secret_and_a_clock_after_the_epoch() {
        let result = WebhookHeaders::sign(&[], VECTOR_A_ID, at(1), b"");
        assert!(matches!(result, Err(SignatureError::NoSecrets)));
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        let result = WebhookHeaders::sign(&[secret_a()], VECTOR_A_ID, before_epoch, b"");
        assert!(matches!(result, Err(SignatureError::ClockBeforeEpoch)));
    }

    /// A deterministic stand-in for a cryptographic generator.
    struct CountingRng(u8);

    impl rand_core::TryRng for CountingRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from(self.0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.0))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for byte in dst {
                self.0 = self.0.wrapping_add(1);
                *byte = self.0;
            }
            Ok(())
        }
    }

    impl rand_core::TryCryptoRng for CountingRng {}

    #[test]
    fn generated_secrets_round_trip_through_the_whsec_form() {
        let secret = WebhookSecret::generate(&mut CountingRng(0)).unwrap();
        let serialized = secret.to_whsec();
        assert!(serialized.starts_with("whsec_"));
        let expected: Vec<u8> = (1..=32).collect();
        assert_eq!(serialized, format!("whsec_{}", STANDARD.encode(&expected)));
        assert_eq!(WebhookSecret::parse(&serialized).unwrap(), secret);
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics(
            id in ".{0,40}",
            timestamp in ".{0,24}",
            signature in ".{0,200}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            now in 0u64..4_000_000_000,
        ) {
            let headers = WebhookHeaders { id, timestamp, signature };
            let _ = verify(&secret_a(), &headers, &body, at(now));
        }

        #[test]
        fn parse_secret_never_panics(serialized in ".{0,120}") {
            let _ = WebhookSecret::parse(&serialized);
        }

        #[test]
        fn what_is_signed_verifies(
            id in "[A-Za-z0-9_-]{1,40}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            sent in 0u64..4_000_000_000,
        ) {
            let headers = WebhookHeaders::sign(&[secret_a()], &id, at(sent), &body).unwrap();
            proptest::prop_assert!(verify(&secret_a(), &headers, &body, at(sent)).is_ok());
        }
    }
}
