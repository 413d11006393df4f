//! Signed checkpoints: the signed bytes are a C2SP checkpoint note text, a signature covers
//! every stated field, and hostile JSON is refused.

use audit::checkpoint::{
    CheckpointError, CheckpointSigner, CheckpointVerifier, MAX_CHECKPOINT_JSON, SignedCheckpoint,
    TreeHead,
};
use p256::ecdsa::signature::Verifier as _;

use crate::support::{TestKey, hash_hex};

const ORIGIN: &str = "bonded.example/audit";
/// The root of the eight-leaf RFC 6962 reference tree.
const ROOT_8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
const TIME: u64 = 1_700_000_000;

fn head() -> TreeHead {
    TreeHead::new(ORIGIN, 8, hash_hex(ROOT_8)).expect("valid origin")
}

fn signed(key: &TestKey) -> SignedCheckpoint {
    SignedCheckpoint::sign(&head(), TIME, key).expect("sign")
}

#[test]
fn the_signed_text_is_a_c2sp_checkpoint_with_a_time_line() {
    let checkpoint = signed(&TestKey::new(1));
    assert_eq!(
        checkpoint.signed_text().expect("text"),
        "bonded.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 1700000000\n"
    );
}

/// The example of c2sp.org/tlog-checkpoint: our first three lines are its note text.
#[test]
fn the_first_three_lines_match_the_c2sp_example() {
    use base64::Engine as _;
    let root = base64::engine::general_purpose::STANDARD
        .decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        .expect("base64");
    let head = TreeHead::new(
        "example.com/behind-the-sofa",
        20852163,
        root.try_into().expect("32 bytes"),
    )
    .expect("origin");
    let text = SignedCheckpoint::sign(&head, 1, &TestKey::new(1))
        .expect("sign")
        .signed_text()
        .expect("text");
    assert!(text.starts_with(
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    ));
}

#[test]
fn a_signed_checkpoint_verifies_and_states_its_tree_head() {
    let key = TestKey::new(1);
    let checkpoint = signed(&key);
    assert_eq!(checkpoint.key_id, key.key_id());
    assert_eq!(checkpoint.verify(&key.public()).expect("verifies"), head());
}

/// The signature is an ordinary ECDSA P-256 signature over the note text, as the signed-note
/// ECDSA type (0x02) makes them, checkable without this crate.
#[test]
fn the_signature_covers_exactly_the_note_text() {
    let key = TestKey::new(1);
    let checkpoint = signed(&key);
    let signature = p256::ecdsa::Signature::from_der(&checkpoint.signature).expect("DER");
    let text = checkpoint.signed_text().expect("text");
    assert!(key.public().key.verify(text.as_bytes(), &signature).is_ok());
}

#[test]
fn changing_any_signed_field_breaks_the_signature() {
    let key = TestKey::new(1);
    let original = signed(&key);
    let mut tampered = Vec::new();
    tampered.push(SignedCheckpoint {
        size: 9,
        ..original.clone()
    });
    tampered.push(SignedCheckpoint {
        time: TIME + 1,
        ..original.clone()
    });
    tampered.push(SignedCheckpoint {
        origin: "bonded.example/other".into(),
        ..original.clone()
    });
    let mut root = original.root;
    root[31] ^= 1;
    tampered.push(SignedCheckpoint {
        root,
        ..original.clone()
    });
    let last = original.signature.len() - 1;
    let mut signature = original.signature.clone();
    signature[last] ^= 1;
    tampered.push(SignedCheckpoint {
        signature,
        ..original.clone()
    });
    for checkpoint in tampered {
        let result = checkpoint.verify(&key.public());
        assert!(
            matches!(result, Err(CheckpointError::BadSignature { .. })),
            "{checkpoint:?} gave {result:?}"
        );
    }
}

#[test]
fn another_key_is_refused() {
    let checkpoint = signed(&TestKey::new(2));
    let log_key = TestKey::new(1).public();
    match checkpoint.verify(&log_key) {
        Err(CheckpointError::UnknownKey {
            size,
            expected,
            found,
        }) => {
            assert_eq!(size, 8);
            assert_eq!(expected, log_key.key_id());
            assert_eq!(found, TestKey::new(2).key_id());
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    // Claiming the log's key ID does not help: the signature is checked with its key.
    let forged = SignedCheckpoint {
        key_id: log_key.key_id(),
        ..checkpoint
    };
    assert!(matches!(
        forged.verify(&log_key),
        Err(CheckpointError::BadSignature { size: 8, .. })
    ));
}

#[test]
fn json_round_trips_with_the_documented_field_names() {
    let checkpoint = signed(&TestKey::new(1));
    let json = serde_json::to_value(&checkpoint).expect("JSON");
    let mut fields: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["key_id", "origin", "root", "signature", "size", "time"]
    );
    assert_eq!(json["root"], "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=");
    let text = serde_json::to_vec(&checkpoint).expect("JSON");
    assert_eq!(
        SignedCheckpoint::from_json(&text).expect("parse"),
        checkpoint
    );
}

#[test]
fn invalid_origins_are_refused_everywhere() {
    let key = TestKey::new(1);
    for origin in [
        "",
        "two words",
        "line\nbreak",
        "tab\there",
        "a+b",
        "nul\0",
        "no\u{a0}break",
        &"x".repeat(257),
    ] {
        assert!(
            matches!(
                TreeHead::new(origin, 1, [0; 32]),
                Err(CheckpointError::InvalidOrigin { .. })
            ),
            "{origin:?}"
        );
        let head = TreeHead {
            origin: origin.to_string(),
            size: 1,
            root: [0; 32],
        };
        assert!(matches!(
            SignedCheckpoint::sign(&head, TIME, &key),
            Err(CheckpointError::InvalidOrigin { .. })
        ));
        let json = serde_json::json!({
            "origin": origin, "size": 1, "root": "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "time": 1, "key_id": "k", "signature": "AA=="
        });
        let parsed = SignedCheckpoint::from_json(json.to_string().as_bytes());
        assert!(
            matches!(parsed, Err(CheckpointError::InvalidOrigin { .. })),
            "{origin:?}: {parsed:?}"
        );
    }
}

#[test]
fn malformed_or_oversized_json_is_refused() {
    let valid = serde_json::to_value(signed(&TestKey::new(1))).expect("JSON");
    let with = |field: &str, value: serde_json::Value| {
        let mut document = valid.clone();
        document[field] = value;
        SignedCheckpoint::from_json(document.to_string().as_bytes())
    };
    assert!(matches!(
        with("root", "AAAA".into()),
        Err(CheckpointError::Json(_))
    ));
    assert!(matches!(
        with("root", "not base64!".into()),
        Err(CheckpointError::Json(_))
    ));
    assert!(matches!(
        with("size", (-1).into()),
        Err(CheckpointError::Json(_))
    ));
    assert!(matches!(
        with("signature", "%%%".into()),
        Err(CheckpointError::Json(_))
    ));
    assert!(matches!(
        with("key_id", "k".repeat(300).into()),
        Err(CheckpointError::FieldTooLong {
            field: "key_id",
            ..
        })
    ));
    use base64::Engine as _;
    let huge = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 5000]);
    assert!(matches!(
        with("signature", huge.into()),
        Err(CheckpointError::FieldTooLong {
            field: "signature",
            ..
        })
    ));
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove("time");
    assert!(matches!(
        SignedCheckpoint::from_json(missing.to_string().as_bytes()),
        Err(CheckpointError::Json(_))
    ));
    let oversized = vec![b' '; MAX_CHECKPOINT_JSON + 1];
    assert!(matches!(
        SignedCheckpoint::from_json(&oversized),
        Err(CheckpointError::TooLarge { .. })
    ));
    assert!(matches!(
        SignedCheckpoint::from_json(b"\xff\xfe"),
        Err(CheckpointError::Json(_))
    ));
}
