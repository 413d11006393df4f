//! Property tests: proofs over random logs verify and stop verifying when anything changes;
//! hostile proofs and sizes never panic; proof JSON is bounded.

use audit::merkle::{
    ConsistencyProof, Hash, InclusionProof, MAX_PROOF_HASHES, MerkleLog, consistency_proof,
    inclusion_proof, leaf_hash, root_at, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

use crate::support::{flipped, reference_root};

fn log_leaves(count: u64, salt: u64) -> Vec<Hash> {
    (0..count)
        .map(|i| leaf_hash(format!("{salt}:{i}").as_bytes()))
        .collect()
}

fn any_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_root_matches_the_definition(count in 0u64..600, salt in any::<u64>()) {
        let leaves = log_leaves(count, salt);
        let mut log = MerkleLog::new();
        for leaf in &leaves {
            log.append(*leaf).expect("append");
        }
        prop_assert_eq!(log.root(), reference_root(&leaves));
        prop_assert_eq!(log.size(), count);
    }

    #[test]
    fn inclusion_proofs_verify_and_detect_a_flipped_bit(
        size in 1u64..2000,
        index_seed in any::<u64>(),
        bit in 0usize..256,
        target in any::<prop::sample::Index>(),
    ) {
        let leaves = log_leaves(size, 1);
        let index = index_seed % size;
        let root = root_at(&leaves, size).expect("root");
        let proof = inclusion_proof(&leaves, index, size).expect("proof");
        let leaf = leaves[index as usize];
        prop_assert_eq!(proof.verify(&leaf, &root), Ok(()));
        prop_assert!(proof.verify(&flipped(&leaf, bit), &root).is_err());
        prop_assert!(proof.verify(&leaf, &flipped(&root, bit)).is_err());
        if !proof.hashes.is_empty() {
            let mut bad = proof.clone();
            let position = target.index(bad.hashes.len());
            bad.hashes[position] = flipped(&bad.hashes[position], bit);
            prop_assert!(bad.verify(&leaf, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_detect_a_flipped_bit(
        new in 1u64..2000,
        old_seed in any::<u64>(),
        bit in 0usize..256,
        target in any::<prop::sample::Index>(),
    ) {
        let leaves = log_leaves(new, 2);
        let old = old_seed % (new + 1);
        let old_root = root_at(&leaves, old).expect("old root");
        let new_root = root_at(&leaves, new).expect("new root");
        let proof = consistency_proof(&leaves, old, new).expect("proof");
        prop_assert_eq!(proof.verify(&old_root, &new_root), Ok(()));
        prop_assert!(proof.verify(&flipped(&old_root, bit), &new_root).is_err());
        // The empty tree is a prefix of every tree, whatever its root.
        if 0 < old && old < new {
            prop_assert!(proof.verify(&old_root, &flipped(&new_root, bit)).is_err());
        }
        if !proof.hashes.is_empty() {
            let mut bad = proof.clone();
            let position = target.index(bad.hashes.len());
            bad.hashes[position] = flipped(&bad.hashes[position], bit);
            prop_assert!(bad.verify(&old_root, &new_root).is_err());
        }
    }

    /// A log that changed one leaf is not consistent with its earlier self.
    #[test]
    fn a_rewritten_history_is_never_consistent(
        new in 2u64..500,
        old_seed in any::<u64>(),
        changed_seed in any::<u64>(),
    ) {
        let leaves = log_leaves(new, 3);
        let old = 1 + old_seed % (new - 1);
        let mut rewritten = leaves.clone();
        let changed = (changed_seed % old) as usize;
        rewritten[changed] = leaf_hash(b"rewritten");
        let old_root = root_at(&leaves, old).expect("old root");
        let new_root = root_at(&rewritten, new).expect("new root");
        let proof = consistency_proof(&rewritten, old, new).expect("proof");
        prop_assert!(proof.verify(&old_root, &new_root).is_err());
    }

    #[test]
    fn hostile_inclusion_input_never_panics(
        leaf in any_hash(),
        index in any::<u64>(),
        size in any::<u64>(),
        proof in prop::collection::vec(any_hash(), 0..80),
        root in any_hash(),
    ) {
        let _ = verify_inclusion(&leaf, index, size, &proof, &root);
    }

    #[test]
    fn hostile_consistency_input_never_panics(
        old in any::<u64>(),
        new in any::<u64>(),
        old_root in any_hash(),
        new_root in any_hash(),
        proof in prop::collection::vec(any_hash(), 0..80),
    ) {
        let _ = verify_consistency(old, new, &old_root, &new_root, &proof);
    }

    #[test]
    fn proof_json_round_trips(size in 1u64..300, index_seed in any::<u64>()) {
        let leaves = log_leaves(size, 4);
        let proof = inclusion_proof(&leaves, index_seed % size, size).expect("proof");
        let json = serde_json::to_string(&proof).expect("JSON");
        let back: InclusionProof = serde_json::from_str(&json).expect("parse");
        prop_assert_eq!(back, proof);
    }

    #[test]
    fn arbitrary_text_never_panics_the_proof_parser(text in ".{0,300}") {
        let _ = serde_json::from_str::<ConsistencyProof>(&text);
        let _ = serde_json::from_str::<InclusionProof>(&text);
    }
}

#[test]
fn proof_json_is_bounded_and_strict() {
    let hash = "\"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\"";
    let list = |count: usize| vec![hash; count].join(",");
    let document =
        |hashes: String| format!(r#"{{"leaf_index":0,"tree_size":1,"hashes":[{hashes}]}}"#);
    assert!(serde_json::from_str::<InclusionProof>(&document(list(MAX_PROOF_HASHES))).is_ok());
    let too_long = serde_json::from_str::<InclusionProof>(&document(list(MAX_PROOF_HASHES + 1)));
    assert!(too_long.is_err(), "{too_long:?}");
    for bad in [
        "\"AAAA\"",
        "\"not base64 at all, but forty-four chars long\"",
        "7",
    ] {
        let parsed = serde_json::from_str::<InclusionProof>(&document(bad.to_string()));
        assert!(parsed.is_err(), "{bad} parsed: {parsed:?}");
    }
}
