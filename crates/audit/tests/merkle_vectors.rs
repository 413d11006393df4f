//! The published RFC 6962 test vectors of transparency-dev/merkle (see SOURCES.md): the
//! eight-leaf reference tree, its roots, and its inclusion and consistency proofs. Our proofs
//! must be these exact proofs, and must verify.

use audit::merkle::{
    ConsistencyProof, MerkleLog, consistency_proof, empty_root, inclusion_proof, leaf_hash,
    root_at, verify_consistency, verify_inclusion,
};

use crate::support::hash_hex;

/// The leaf data of the reference tree, hex.
const LEAF_DATA: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// The roots of the reference tree of sizes 1 to 8.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path). The source lists 1-based leaf numbers; these are the
/// 0-based indexes.
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn reference_leaves() -> Vec<[u8; 32]> {
    LEAF_DATA
        .iter()
        .map(|data| leaf_hash(&hex::decode(data).expect("hex")))
        .collect()
}

fn root(size: u64) -> [u8; 32] {
    hash_hex(ROOTS[size as usize - 1])
}

fn hashes(list: &[&str]) -> Vec<[u8; 32]> {
    list.iter().map(|hex| hash_hex(hex)).collect()
}

#[test]
fn hashes_match_the_rfc6962_hasher_vectors() {
    assert_eq!(
        empty_root(),
        hash_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        leaf_hash(b""),
        hash_hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash(b"L123456"),
        hash_hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
}

#[test]
fn appending_the_reference_leaves_gives_the_reference_roots() {
    let leaves = reference_leaves();
    let mut log = MerkleLog::new();
    assert_eq!(log.root(), empty_root());
    for (index, leaf) in leaves.iter().enumerate() {
        assert_eq!(log.append(*leaf), Ok(index as u64));
        assert_eq!(log.root(), root(log.size()), "size {}", log.size());
    }
}

#[test]
fn roots_of_earlier_sizes_are_the_reference_roots() {
    let leaves = reference_leaves();
    assert_eq!(root_at(&leaves, 0), Ok(empty_root()));
    for size in 1..=8 {
        assert_eq!(root_at(&leaves, size), Ok(root(size)), "size {size}");
    }
}

#[test]
fn inclusion_proofs_are_the_published_ones_and_verify() {
    let leaves = reference_leaves();
    for (index, size, expected) in INCLUSION {
        let proof = inclusion_proof(&leaves, index, size).expect("proof");
        assert_eq!(proof.hashes, hashes(expected), "leaf {index} of {size}");
        let leaf = leaves[index as usize];
        assert_eq!(
            verify_inclusion(&leaf, index, size, &proof.hashes, &root(size)),
            Ok(())
        );
    }
}

#[test]
fn consistency_proofs_are_the_published_ones_and_verify() {
    let leaves = reference_leaves();
    for (old, new, expected) in CONSISTENCY {
        let proof = consistency_proof(&leaves, old, new).expect("proof");
        assert_eq!(proof.hashes, hashes(expected), "{old} -> {new}");
        assert_eq!(
            verify_consistency(old, new, &root(old), &root(new), &proof.hashes),
            Ok(())
        );
    }
}

/// transparency-dev/merkle testdata/consistency/1/happy-path.json, the same 1 -> 8 proof in
/// the JSON form of that repository (base64 hashes).
#[test]
fn consistency_vector_in_base64_form_verifies() {
    let json = r#"{"old_size":1,"new_size":8,"hashes":[
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="]}"#;
    let proof: ConsistencyProof = serde_json::from_str(json).expect("proof JSON");
    let old_root = hash_base64("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=");
    let new_root = hash_base64("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=");
    assert_eq!(old_root, root(1));
    assert_eq!(new_root, root(8));
    assert_eq!(proof.verify(&old_root, &new_root), Ok(()));
}

fn hash_base64(text: &str) -> [u8; 32] {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    bytes.try_into().expect("32 bytes")
}
