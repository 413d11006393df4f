//! Every tree of 1 to 64 leaves: roots, every inclusion proof and every consistency proof
//! against a recursive transcription of RFC 6962, and every single-bit corruption of a proof,
//! leaf or root refused.

use audit::merkle::{
    ConsistencyProofBuilder, Hash, InclusionProofBuilder, MerkleError, MerkleLog,
    consistency_proof, empty_root, inclusion_proof, prefix_roots, root_at, verify_consistency,
    verify_inclusion,
};

use crate::support::{flipped, leaves, reference_path, reference_proof, reference_root};

const MAX_SIZE: u64 = 64;

/// One bit per byte, a different bit in each byte: 32 corruptions per hash.
fn corruptions(hash: &Hash) -> impl Iterator<Item = Hash> + '_ {
    (0..32).map(move |byte| flipped(hash, byte * 8 + byte % 8))
}

#[test]
fn roots_match_the_recursive_definition_for_every_size() {
    let all = leaves(MAX_SIZE);
    let mut log = MerkleLog::new();
    assert_eq!(log.root(), reference_root(&[]));
    for size in 1..=MAX_SIZE {
        log.append(all[size as usize - 1]).expect("append");
        let expected = reference_root(&all[..size as usize]);
        assert_eq!(log.root(), expected, "incremental root of {size}");
        assert_eq!(root_at(&all, size), Ok(expected), "root_at {size}");
        assert_eq!(
            MerkleLog::from_leaves(&all[..size as usize]).map(|log| log.root()),
            Ok(expected)
        );
    }
    let sizes: Vec<u64> = (0..=MAX_SIZE).rev().collect();
    let roots = prefix_roots(&all, &sizes).expect("prefix roots");
    for (size, root) in sizes.iter().zip(&roots) {
        assert_eq!(
            *root,
            reference_root(&all[..*size as usize]),
            "prefix root {size}"
        );
    }
}

#[test]
fn every_inclusion_proof_is_rfc6962_path_and_verifies() {
    let all = leaves(MAX_SIZE);
    for size in 1..=MAX_SIZE {
        let tree = &all[..size as usize];
        let root = reference_root(tree);
        for index in 0..size {
            let proof = inclusion_proof(&all, index, size).expect("proof");
            assert_eq!(
                proof.hashes,
                reference_path(index as usize, tree),
                "{index}/{size}"
            );
            let leaf = all[index as usize];
            assert_eq!(proof.verify(&leaf, &root), Ok(()), "{index}/{size}");
        }
    }
}

#[test]
fn every_corrupted_inclusion_check_fails() {
    let all = leaves(MAX_SIZE);
    for size in 1..=MAX_SIZE {
        let root = reference_root(&all[..size as usize]);
        for index in 0..size {
            let leaf = all[index as usize];
            let proof = inclusion_proof(&all, index, size).expect("proof").hashes;
            let refused = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
                verify_inclusion(leaf, index, size, proof, root).is_err()
            };
            for bad_leaf in corruptions(&leaf) {
                assert!(refused(&bad_leaf, index, size, &proof, &root));
            }
            for bad_root in corruptions(&root) {
                assert!(refused(&leaf, index, size, &proof, &bad_root));
            }
            for position in 0..proof.len() {
                for bad in corruptions(&proof[position]) {
                    let mut bad_proof = proof.clone();
                    bad_proof[position] = bad;
                    assert!(refused(&leaf, index, size, &bad_proof, &root));
                }
                let mut shorter = proof.clone();
                shorter.remove(position);
                assert!(refused(&leaf, index, size, &shorter, &root));
            }
            for extra in [root, leaf, empty_root()] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(refused(&leaf, index, size, &longer, &root));
                longer.rotate_right(1);
                assert!(refused(&leaf, index, size, &longer, &root));
            }
            // Another leaf's position or another tree size. A leaf whose hash equals
            // another's is impossible here: all entries differ.
            for other_index in [index.wrapping_sub(1), index + 1, index ^ 2] {
                if other_index != index {
                    assert!(refused(&leaf, other_index, size, &proof, &root));
                }
            }
            // A size with another tree shape. Neighbouring sizes can share the shape of a
            // path (leaf 0 of 3 and of 4 hashes the same way), so the proof alone does not
            // bind the size: the signed checkpoint binds size and root together.
            for other_size in [size * 2, size / 2] {
                if other_size != size {
                    assert!(refused(&leaf, index, other_size, &proof, &root));
                }
            }
        }
    }
}

#[test]
fn every_consistency_proof_is_rfc6962_proof_and_verifies() {
    let all = leaves(MAX_SIZE);
    for new in 1..=MAX_SIZE {
        let new_root = reference_root(&all[..new as usize]);
        for old in 1..=new {
            let old_root = reference_root(&all[..old as usize]);
            let proof = consistency_proof(&all, old, new).expect("proof");
            assert_eq!(
                proof.hashes,
                reference_proof(old as usize, &all[..new as usize]),
                "{old} -> {new}"
            );
            assert_eq!(proof.verify(&old_root, &new_root), Ok(()), "{old} -> {new}");
        }
        // From the empty tree: an empty proof, and only the empty root.
        let from_empty = consistency_proof(&all, 0, new).expect("proof");
        assert!(from_empty.hashes.is_empty());
        assert_eq!(from_empty.verify(&empty_root(), &new_root), Ok(()));
        assert!(from_empty.verify(&new_root, &new_root).is_err());
    }
}

#[test]
fn every_corrupted_consistency_check_fails() {
    let all = leaves(MAX_SIZE);
    for new in 2..=MAX_SIZE {
        let new_root = reference_root(&all[..new as usize]);
        for old in 1..new {
            let old_root = reference_root(&all[..old as usize]);
            let proof = consistency_proof(&all, old, new).expect("proof").hashes;
            let refused = |old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
                verify_consistency(old, new, old_root, new_root, proof).is_err()
            };
            for bad in corruptions(&old_root) {
                assert!(refused(old, new, &bad, &new_root, &proof), "{old} -> {new}");
            }
            for bad in corruptions(&new_root) {
                assert!(refused(old, new, &old_root, &bad, &proof));
            }
            assert!(
                refused(old, new, &new_root, &old_root, &proof),
                "swapped roots"
            );
            for position in 0..proof.len() {
                for bad in corruptions(&proof[position]) {
                    let mut bad_proof = proof.clone();
                    bad_proof[position] = bad;
                    assert!(refused(old, new, &old_root, &new_root, &bad_proof));
                }
                let mut shorter = proof.clone();
                shorter.remove(position);
                assert!(refused(old, new, &old_root, &new_root, &shorter));
            }
            for extra in [old_root, new_root, proof[0]] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(refused(old, new, &old_root, &new_root, &longer));
                longer.rotate_right(1);
                assert!(refused(old, new, &old_root, &new_root, &longer));
            }
            assert!(refused(old, new, &old_root, &new_root, &[]));
            for (other_old, other_new) in [
                (old - 1, new),
                (old + 1, new),
                (old ^ 2, new),
                (old, new * 2),
                (old, new / 2),
            ] {
                if (other_old, other_new) != (old, new) {
                    assert!(refused(other_old, other_new, &old_root, &new_root, &proof));
                }
            }
        }
    }
}

#[test]
fn equal_sizes_need_an_empty_proof_and_equal_roots() {
    let all = leaves(4);
    let root = reference_root(&all);
    assert_eq!(verify_consistency(4, 4, &root, &root, &[]), Ok(()));
    assert_eq!(
        verify_consistency(4, 4, &root, &empty_root(), &[]),
        Err(MerkleError::ConsistencyMismatch {
            old_size: 4,
            new_size: 4
        })
    );
    assert_eq!(
        verify_consistency(4, 4, &root, &root, &[root]),
        Err(MerkleError::ProofLength {
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
        Ok(())
    );
}

#[test]
fn requests_outside_the_log_are_errors() {
    let all = leaves(8);
    assert_eq!(
        inclusion_proof(&all, 8, 8),
        Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        inclusion_proof(&all, 0, 9),
        Err(MerkleError::SizeBeyondLog {
            size: 9,
            available: 8
        })
    );
    assert_eq!(
        consistency_proof(&all, 5, 4),
        Err(MerkleError::SizesReversed {
            old_size: 5,
            new_size: 4
        })
    );
    assert_eq!(
        root_at(&all, 9),
        Err(MerkleError::SizeBeyondLog {
            size: 9,
            available: 8
        })
    );
    assert_eq!(
        verify_inclusion(&all[0], 0, 0, &[], &empty_root()),
        Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_consistency(2, 1, &empty_root(), &empty_root(), &[]),
        Err(MerkleError::SizesReversed {
            old_size: 2,
            new_size: 1
        })
    );
}

/// A leaf source that loses a leaf, as a store with a gap would.
struct Gappy(Vec<Hash>);

impl audit::merkle::LeafSource for Gappy {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn leaf(&self, index: u64) -> Option<Hash> {
        if index == 3 {
            None
        } else {
            self.0.get(index as usize).copied()
        }
    }
}

#[test]
fn a_missing_stored_leaf_is_an_error() {
    let source = Gappy(leaves(8));
    assert_eq!(
        root_at(&source, 8),
        Err(MerkleError::MissingLeaf { index: 3 })
    );
    assert_eq!(
        inclusion_proof(&source, 0, 8),
        Err(MerkleError::MissingLeaf { index: 3 })
    );
    assert_eq!(root_at(&source, 3).map(|_| ()), Ok(()));
}

/// The streaming builders (what the server uses, paging leaves from its store) read only the
/// leaves a proof needs, in order, and refuse anything else.
#[test]
fn proof_builders_take_exactly_the_leaves_they_need() {
    let all = leaves(16);
    let mut inclusion = InclusionProofBuilder::new(0, 16).expect("builder");
    assert_eq!(
        inclusion.needed(),
        1..16,
        "the proven leaf itself is not needed"
    );
    assert_eq!(
        inclusion.push(2, all[2]),
        Err(MerkleError::MissingLeaf { index: 1 }),
        "leaves come in order"
    );
    let mut early = InclusionProofBuilder::new(0, 16).expect("builder");
    early.push(1, all[1]).expect("push");
    assert_eq!(
        early.finish(),
        Err(MerkleError::MissingLeaf { index: 2 }),
        "not every needed leaf was pushed"
    );
    for index in 1..16 {
        inclusion.push(index, all[index as usize]).expect("push");
    }
    assert_eq!(
        inclusion.push(16, all[0]),
        Err(MerkleError::MissingLeaf { index: 16 }),
        "nothing past the tree"
    );
    assert_eq!(
        inclusion.finish(),
        inclusion_proof(&all, 0, 16),
        "the same proof as from all the leaves"
    );

    let consistency = ConsistencyProofBuilder::new(8, 16).expect("builder");
    assert_eq!(
        consistency.needed(),
        8..16,
        "a power-of-two old tree is the verifier's own root: its leaves are not needed"
    );
    let mut consistency = ConsistencyProofBuilder::new(5, 13).expect("builder");
    for index in consistency.needed() {
        consistency.push(index, all[index as usize]).expect("push");
    }
    assert_eq!(consistency.finish(), consistency_proof(&all, 5, 13));
    assert_eq!(
        ConsistencyProofBuilder::new(7, 7).map(|b| b.needed()),
        Ok(0..0)
    );
    assert_eq!(
        InclusionProofBuilder::new(3, 3).map(|b| b.needed()),
        Err(MerkleError::IndexOutOfRange { index: 3, size: 3 })
    );
    assert!(ConsistencyProofBuilder::new(4, 3).is_err());
}
