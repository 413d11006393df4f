//! The Merkle tree over Bonded's audit log, as RFC 6962 §2.1 defines it (RFC 9162 §2.1 is the
//! same tree with the verification algorithms spelled out).
//!
//! Every audit entry is a leaf. The leaf hash is `SHA-256(0x00 ‖ entry)`, an interior node is
//! `SHA-256(0x01 ‖ left ‖ right)`, and the tree over `n` leaves splits at the largest power of
//! two smaller than `n`, so that the tree of an append-only log only ever grows to the right.
//! The distinct prefixes keep a leaf from ever being taken for a node (second-preimage
//! resistance).
//!
//! What this module guarantees:
//! - [`MerkleLog`] appends a leaf in O(1) amortized time and O(log n) memory: it keeps only the
//!   "frontier", the roots of the perfect subtrees along the right edge, from which the root of
//!   the whole log follows in O(log n) hashes.
//! - Roots of earlier sizes and proofs are computed from stored leaf hashes ([`LeafSource`]),
//!   never from entries, so the caller's store decides where hashes live. Each costs
//!   O(size) hashes and O(log size) memory; no cache of interior nodes is kept. A store that
//!   pages its leaves streams them into an [`InclusionProofBuilder`] or
//!   [`ConsistencyProofBuilder`] instead of loading them all.
//! - Inclusion proofs follow RFC 6962 §2.1.1 (`PATH`) and consistency proofs §2.1.2
//!   (`PROOF`/`SUBPROOF`), so they are byte-for-byte the proofs Certificate Transparency and
//!   transparency-dev logs produce; both are verified with the algorithms of RFC 9162 §2.1.3.2
//!   and §2.1.4.2, after checking that the proof has exactly the length its sizes imply.
//! - No input, however hostile, panics or makes unbounded work: a proof is at most
//!   [`MAX_PROOF_HASHES`] hashes, also when deserialized.
//!
//! It is written here rather than taken from a crate. `ct-merkle` 0.3 (same RustCrypto
//! generation) keeps every leaf and interior node in memory, or else builds proofs from
//! interior nodes the caller stores under its array indexing, and its proof helpers panic on
//! bad sizes or byte lengths (its README also warns that it is unaudited); `tlog_tiles` brings
//! the C2SP tile storage layout, which Bonded does not use; most others are on `digest` 0.10.
//! Bonded stores only leaf hashes, so the tree here is computed from those: a few hundred
//! lines, checked against the transparency-dev test vectors (see `tests/SOURCES.md`).

use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 value: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// The most hashes any proof can have. An inclusion proof has one hash per level of the tree,
/// at most 64 for a log of up to 2^64 - 1 leaves; a consistency proof may add the root of the
/// older tree's last subtree (RFC 6962 §2.1.2, `SUBPROOF(m, D[m], false)`).
pub const MAX_PROOF_HASHES: usize = 65;

/// RFC 6962 §2.1: "MTH({d(0)}) = SHA-256(0x00 || d(0))".
const LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 §2.1: "MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))".
const NODE_PREFIX: u8 = 0x01;

/// Why a tree operation or a proof check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a tree of {size} leaves was asked for, but only {available} leaf hashes are stored")]
    SizeBeyondLog { size: u64, available: u64 },
    #[error("the older tree size {old_size} is larger than the newer tree size {new_size}")]
    SizesReversed { old_size: u64, new_size: u64 },
    #[error("the leaf source has no leaf hash at index {index}")]
    MissingLeaf { index: u64 },
    #[error("the log already holds the largest number of leaves a 64-bit size can count")]
    LogFull,
    #[error("the proof has {actual} hashes, but a proof for these tree sizes has {expected}")]
    ProofLength { expected: usize, actual: usize },
    #[error(
        "the inclusion proof for leaf {index} does not lead to the root of the tree of {size} leaves"
    )]
    InclusionMismatch { index: u64, size: u64 },
    #[error(
        "the consistency proof does not connect the root of size {old_size} to the root of size {new_size}"
    )]
    ConsistencyMismatch { old_size: u64, new_size: u64 },
}

/// The leaf hash of one log entry: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(entry)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree, RFC 6962 §2.1: "MTH({}) = SHA-256()".
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Leaf hashes as the caller's store keeps them, in log order.
pub trait LeafSource {
    /// How many leaf hashes are stored.
    fn len(&self) -> u64;

    /// The leaf hash at `index`, or `None` when the store has none there.
    fn leaf(&self, index: u64) -> Option<Hash>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LeafSource for [Hash] {
    fn len(&self) -> u64 {
        // A slice never holds more than isize::MAX elements, which fits in u64.
        u64::try_from(<[Hash]>::len(self)).unwrap_or(u64::MAX)
    }

    fn leaf(&self, index: u64) -> Option<Hash> {
        usize::try_from(index)
            .ok()
            .and_then(|index| self.get(index))
            .copied()
    }
}

impl LeafSource for Vec<Hash> {
    fn len(&self) -> u64 {
        LeafSource::len(self.as_slice())
    }

    fn leaf(&self, index: u64) -> Option<Hash> {
        self.as_slice().leaf(index)
    }
}

/// An append-only Merkle log that keeps only its right edge.
///
/// The frontier holds one subtree root per set bit of the size, largest (leftmost) first: a log
/// of 13 = 8 + 4 + 1 leaves holds the roots of leaves 0..8, 8..12 and 12..13.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleLog {
    size: u64,
    frontier: Vec<Hash>,
}

impl MerkleLog {
    pub fn new() -> MerkleLog {
        MerkleLog::default()
    }

    /// The log of every leaf hash in `source`.
    pub fn from_leaves<S: LeafSource + ?Sized>(source: &S) -> Result<MerkleLog, MerkleError> {
        MerkleLog::from_range(source, 0..source.len())
    }

    /// The log of the leaves `range` of `source`, as if they were a log of their own.
    fn from_range<S: LeafSource + ?Sized>(
        source: &S,
        range: Range<u64>,
    ) -> Result<MerkleLog, MerkleError> {
        let mut log = MerkleLog::new();
        for index in range {
            let leaf = source
                .leaf(index)
                .ok_or(MerkleError::MissingLeaf { index })?;
            log.append(leaf)?;
        }
        Ok(log)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and returns its index.
    pub fn append(&mut self, leaf: Hash) -> Result<u64, MerkleError> {
        let index = self.size;
        self.size = index.checked_add(1).ok_or(MerkleError::LogFull)?;
        // Every trailing one bit of the old size is a perfect subtree as large as the one the
        // new leaf completes, so the two merge; the frontier has exactly one root per set bit.
        let mut node = leaf;
        for _ in 0..index.trailing_ones() {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            node = node_hash(&left, &node);
        }
        self.frontier.push(node);
        Ok(index)
    }

    /// The root of the whole log: the frontier folded from the right, since RFC 6962 puts the
    /// largest perfect subtree on the left at every split.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.frontier.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// The root of the tree of the first `size` leaves of `source`.
pub fn root_at<S: LeafSource + ?Sized>(source: &S, size: u64) -> Result<Hash, MerkleError> {
    check_size(source, size)?;
    subtree_root(source, 0..size)
}

/// The roots of the trees of the first `sizes[i]` leaves of `source`, in the order of `sizes`,
/// in one pass over the leaves: O(largest size + sizes × log size) hashes.
pub fn prefix_roots<S: LeafSource + ?Sized>(
    source: &S,
    sizes: &[u64],
) -> Result<Vec<Hash>, MerkleError> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&position| sizes.get(position).copied().unwrap_or(0));
    let mut roots = vec![empty_root(); sizes.len()];
    let mut log = MerkleLog::new();
    for position in order {
        let Some(&size) = sizes.get(position) else {
            continue;
        };
        check_size(source, size)?;
        while log.size() < size {
            let index = log.size();
            let leaf = source
                .leaf(index)
                .ok_or(MerkleError::MissingLeaf { index })?;
            log.append(leaf)?;
        }
        if let Some(root) = roots.get_mut(position) {
            *root = log.root();
        }
    }
    Ok(roots)
}

/// An audit path showing that one leaf is in a tree (RFC 6962 §2.1.1), ordered from the
/// leaf's sibling up to the child of the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(with = "proof_hashes")]
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that `leaf` is the leaf at `leaf_index` of the tree of `tree_size` leaves with
    /// this `root`.
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), MerkleError> {
        verify_inclusion(leaf, self.leaf_index, self.tree_size, &self.hashes, root)
    }
}

/// A proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves
/// (RFC 6962 §2.1.2), ordered from the deepest subtree up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    #[serde(with = "proof_hashes")]
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks that `old_root` (of `old_size` leaves) and `new_root` (of `new_size` leaves) are
    /// roots of one append-only log.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), MerkleError> {
        verify_consistency(
            self.old_size,
            self.new_size,
            old_root,
            new_root,
            &self.hashes,
        )
    }
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves of `source`.
pub fn inclusion_proof<S: LeafSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, MerkleError> {
    check_size(source, size)?;
    let mut builder = InclusionProofBuilder::new(index, size)?;
    feed(&mut builder.roots, source)?;
    builder.finish()
}

/// The consistency proof between the trees of the first `old_size` and `new_size` leaves of
/// `source`. It is empty when `old_size` is 0 or equals `new_size`: nothing needs proving.
pub fn consistency_proof<S: LeafSource + ?Sized>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, MerkleError> {
    check_size(source, new_size)?;
    let mut builder = ConsistencyProofBuilder::new(old_size, new_size)?;
    feed(&mut builder.roots, source)?;
    builder.finish()
}

/// Streams the leaves `roots` needs from `source`.
fn feed<S: LeafSource + ?Sized>(roots: &mut SubtreeRoots, source: &S) -> Result<(), MerkleError> {
    for index in roots.needed() {
        let leaf = source
            .leaf(index)
            .ok_or(MerkleError::MissingLeaf { index })?;
        roots.push(index, leaf)?;
    }
    Ok(())
}

/// Builds an inclusion proof from leaf hashes streamed in index order, for stores that page
/// their leaves rather than hold them all: O(size) hashes, O(log size) memory.
#[derive(Debug, Clone)]
pub struct InclusionProofBuilder {
    index: u64,
    size: u64,
    roots: SubtreeRoots,
}

impl InclusionProofBuilder {
    /// A builder of the proof of leaf `index` in the tree of `size` leaves.
    pub fn new(index: u64, size: u64) -> Result<InclusionProofBuilder, MerkleError> {
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        Ok(InclusionProofBuilder {
            index,
            size,
            roots: SubtreeRoots::new(inclusion_subtrees(index, size)),
        })
    }

    /// The leaf indexes to [`push`](Self::push), in order.
    pub fn needed(&self) -> Range<u64> {
        self.roots.needed()
    }

    /// Takes the leaf hash at `index`, the next one of [`needed`](Self::needed).
    pub fn push(&mut self, index: u64, leaf: Hash) -> Result<(), MerkleError> {
        self.roots.push(index, leaf)
    }

    /// The proof, once every needed leaf was pushed.
    pub fn finish(self) -> Result<InclusionProof, MerkleError> {
        Ok(InclusionProof {
            leaf_index: self.index,
            tree_size: self.size,
            hashes: self.roots.finish()?,
        })
    }
}

/// Builds a consistency proof from leaf hashes streamed in index order, as
/// [`InclusionProofBuilder`] does for inclusion proofs.
#[derive(Debug, Clone)]
pub struct ConsistencyProofBuilder {
    old_size: u64,
    new_size: u64,
    roots: SubtreeRoots,
}

impl ConsistencyProofBuilder {
    /// A builder of the proof that the tree of `old_size` leaves is a prefix of the tree of
    /// `new_size` leaves.
    pub fn new(old_size: u64, new_size: u64) -> Result<ConsistencyProofBuilder, MerkleError> {
        if old_size > new_size {
            return Err(MerkleError::SizesReversed { old_size, new_size });
        }
        Ok(ConsistencyProofBuilder {
            old_size,
            new_size,
            roots: SubtreeRoots::new(consistency_subtrees(old_size, new_size)),
        })
    }

    /// The leaf indexes to [`push`](Self::push), in order.
    pub fn needed(&self) -> Range<u64> {
        self.roots.needed()
    }

    /// Takes the leaf hash at `index`, the next one of [`needed`](Self::needed).
    pub fn push(&mut self, index: u64, leaf: Hash) -> Result<(), MerkleError> {
        self.roots.push(index, leaf)
    }

    /// The proof, once every needed leaf was pushed.
    pub fn finish(self) -> Result<ConsistencyProof, MerkleError> {
        Ok(ConsistencyProof {
            old_size: self.old_size,
            new_size: self.new_size,
            hashes: self.roots.finish()?,
        })
    }
}

/// The roots of a proof's subtrees, computed from leaves streamed in index order.
///
/// The subtrees of an RFC 6962 proof are disjoint leaf ranges, so one pass over the leaves
/// from the first range's start to the last range's end computes all of them, each with a
/// [`MerkleLog`] of its own: O(log n) memory however large the tree.
#[derive(Debug, Clone)]
struct SubtreeRoots {
    /// The ranges in leaf order, with their position in the proof.
    pending: std::vec::IntoIter<(usize, Range<u64>)>,
    current: Option<(usize, Range<u64>)>,
    log: MerkleLog,
    roots: Vec<Option<Hash>>,
    needed: Range<u64>,
    next: u64,
}

impl SubtreeRoots {
    fn new(subtrees: Vec<Range<u64>>) -> SubtreeRoots {
        let roots = vec![None; subtrees.len()];
        let mut ordered: Vec<(usize, Range<u64>)> = subtrees.into_iter().enumerate().collect();
        ordered.sort_by_key(|(_, range)| range.start);
        let start = ordered.first().map_or(0, |(_, range)| range.start);
        let end = ordered
            .iter()
            .map(|(_, range)| range.end)
            .max()
            .unwrap_or(0);
        let mut pending = ordered.into_iter();
        SubtreeRoots {
            current: pending.next(),
            pending,
            log: MerkleLog::new(),
            roots,
            needed: start..end,
            next: start,
        }
    }

    fn needed(&self) -> Range<u64> {
        self.needed.clone()
    }

    fn push(&mut self, index: u64, leaf: Hash) -> Result<(), MerkleError> {
        if index != self.next || index >= self.needed.end {
            return Err(MerkleError::MissingLeaf { index: self.next });
        }
        self.next = index + 1;
        let Some((position, range)) = self.current.clone() else {
            return Ok(());
        };
        // Leaves between subtrees (the proven leaf itself, in an inclusion proof) are skipped.
        if index < range.start {
            return Ok(());
        }
        self.log.append(leaf)?;
        if index + 1 == range.end {
            if let Some(root) = self.roots.get_mut(position) {
                *root = Some(self.log.root());
            }
            self.log = MerkleLog::new();
            self.current = self.pending.next();
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Hash>, MerkleError> {
        if self.next < self.needed.end {
            return Err(MerkleError::MissingLeaf { index: self.next });
        }
        self.roots
            .into_iter()
            .map(|root| root.ok_or(MerkleError::MissingLeaf { index: self.next }))
            .collect()
    }
}

/// Checks an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    check_proof_length(inclusion_subtrees(index, size).len(), proof.len())?;
    let mismatch = MerkleError::InclusionMismatch { index, size };
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(mismatch);
        }
        // "If LSB(fn) is set, or if fn is equal to sn, then: Set r to HASH(0x01 || p || r).
        // If LSB(fn) is not set, then right-shift both fn and sn equally until either LSB(fn)
        // is set or fn is 0. Otherwise: Set r to HASH(0x01 || r || p)."
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n == 0 && r == *root {
        Ok(())
    } else {
        Err(mismatch)
    }
}

/// Checks a consistency proof with the algorithm of RFC 9162 §2.1.4.2.
///
/// Equal sizes need an empty proof and equal roots. The empty tree is consistent with every
/// tree, but only if its root really is the empty root: a checkpoint of size 0 with another
/// root is malformed.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesReversed { old_size, new_size });
    }
    check_proof_length(consistency_subtrees(old_size, new_size).len(), proof.len())?;
    let mismatch = MerkleError::ConsistencyMismatch { old_size, new_size };
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(mismatch)
        };
    }
    if old_size == 0 {
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(mismatch)
        };
    }
    // "If first is an exact power of 2, then prepend first_hash to the consistency_path
    // array." The older tree is then itself a complete subtree of the newer one, which PROOF
    // leaves out because the verifier already holds its root.
    let seed: &[Hash] = if old_size.is_power_of_two() {
        std::slice::from_ref(old_root)
    } else {
        &[]
    };
    let mut path = seed.iter().chain(proof);
    let Some(first) = path.next() else {
        return Err(mismatch);
    };
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut f_r = *first;
    let mut s_r = *first;
    for c in path {
        if s_n == 0 {
            return Err(mismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if f_r == *old_root && s_r == *new_root && s_n == 0 {
        Ok(())
    } else {
        Err(mismatch)
    }
}

/// The leaf ranges whose subtree roots make up `PATH(index, D[size])`, in proof order.
///
/// RFC 6962 §2.1.1, for `n > 1` and `k` the largest power of two smaller than `n`:
/// "PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k; and
///  PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k".
/// The recursion is unrolled from the root down, so the siblings come out last-first.
fn inclusion_subtrees(index: u64, size: u64) -> Vec<Range<u64>> {
    let mut siblings = Vec::new();
    let mut subtree = 0..size;
    while subtree.end - subtree.start > 1 {
        let split = subtree.start + largest_power_of_two_below(subtree.end - subtree.start);
        if index < split {
            siblings.push(split..subtree.end);
            subtree.end = split;
        } else {
            siblings.push(subtree.start..split);
            subtree.start = split;
        }
    }
    siblings.reverse();
    siblings
}

/// The leaf ranges whose subtree roots make up `PROOF(old_size, D[new_size])`, in proof order.
///
/// RFC 6962 §2.1.2: "PROOF(m, D[n]) = SUBPROOF(m, D[n], true)";
/// "SUBPROOF(m, D[m], true) = {}"; "SUBPROOF(m, D[m], false) = {MTH(D[m])}";
/// for `m < n`: "SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])" if `m <= k`,
/// and "SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])" if `m > k`.
/// A proof from the empty tree is empty as well: it has nothing to show.
fn consistency_subtrees(old_size: u64, new_size: u64) -> Vec<Range<u64>> {
    let mut subtrees = Vec::new();
    if old_size == 0 || old_size >= new_size {
        return subtrees;
    }
    let mut subtree = 0..new_size;
    // The old tree's part of `subtree`: its first `old_in_subtree` leaves.
    let mut old_in_subtree = old_size;
    // `b` of SUBPROOF: whether `subtree` starts the old tree, whose root the verifier holds.
    let mut starts_old_tree = true;
    loop {
        let width = subtree.end - subtree.start;
        if old_in_subtree == width {
            if !starts_old_tree {
                subtrees.push(subtree);
            }
            break;
        }
        let split = subtree.start + largest_power_of_two_below(width);
        if old_in_subtree <= split - subtree.start {
            subtrees.push(split..subtree.end);
            subtree.end = split;
        } else {
            subtrees.push(subtree.start..split);
            old_in_subtree -= split - subtree.start;
            subtree.start = split;
            starts_old_tree = false;
        }
    }
    subtrees.reverse();
    subtrees
}

/// The largest power of two strictly smaller than `n`, for `n >= 2` (RFC 6962's `k`).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n.saturating_sub(1) | 1).leading_zeros())
}

/// The root of the subtree over the leaves `range` (MTH of RFC 6962 §2.1).
fn subtree_root<S: LeafSource + ?Sized>(
    source: &S,
    range: Range<u64>,
) -> Result<Hash, MerkleError> {
    Ok(MerkleLog::from_range(source, range)?.root())
}

fn check_size<S: LeafSource + ?Sized>(source: &S, size: u64) -> Result<(), MerkleError> {
    let available = source.len();
    if size > available {
        return Err(MerkleError::SizeBeyondLog { size, available });
    }
    Ok(())
}

fn check_proof_length(expected: usize, actual: usize) -> Result<(), MerkleError> {
    if expected == actual {
        Ok(())
    } else {
        Err(MerkleError::ProofLength { expected, actual })
    }
}

/// Serde for one hash as standard base64, the encoding of C2SP checkpoints and of the
/// transparency-dev test data.
pub(crate) mod hash_base64 {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        deserializer.deserialize_str(HashVisitor)
    }
}

struct HashVisitor;

impl Visitor<'_> for HashVisitor {
    type Value = Hash;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 SHA-256 hash")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Hash, E> {
        // A 32-byte value is 44 base64 characters; refuse anything longer before decoding.
        if text.len() != 44 {
            return Err(E::invalid_length(text.len(), &"44 base64 characters"));
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))?;
        Hash::try_from(bytes.as_slice()).map_err(|_| E::invalid_length(bytes.len(), &self))
    }
}

/// Serde for the hashes of a proof: a JSON array of base64 strings, at most
/// [`MAX_PROOF_HASHES`] long, refused as soon as it grows past that.
mod proof_hashes {
    use super::*;

    pub fn serialize<S: Serializer>(hashes: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hashes.iter().map(|hash| STANDARD.encode(hash)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        deserializer.deserialize_seq(ProofVisitor)
    }

    struct ProofVisitor;

    #[derive(Deserialize)]
    struct Base64Hash(#[serde(with = "super::hash_base64")] Hash);

    impl<'de> Visitor<'de> for ProofVisitor {
        type Value = Vec<Hash>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {MAX_PROOF_HASHES} base64 SHA-256 hashes")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Hash>, A::Error> {
            let mut hashes = Vec::new();
            while let Some(Base64Hash(hash)) = seq.next_element()? {
                if hashes.len() == MAX_PROOF_HASHES {
                    return Err(de::Error::invalid_length(hashes.len() + 1, &self));
                }
                hashes.push(hash);
            }
            Ok(hashes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (u64::MAX, 1 << 63),
        ];
        for (n, k) in cases {
            assert_eq!(largest_power_of_two_below(n), k, "n = {n}");
        }
    }

    #[test]
    fn proof_shapes_never_exceed_the_bound() {
        let sizes = [2, 3, 1 << 32, (1 << 63) + 1, u64::MAX];
        for &size in &sizes {
            for index in [0, 1, size / 2, size - 1] {
                assert!(inclusion_subtrees(index, size).len() <= MAX_PROOF_HASHES);
            }
            for old in [1, 2, 3, size / 2 + 1, size - 1] {
                let shape = consistency_subtrees(old, size);
                assert!(
                    shape.len() <= MAX_PROOF_HASHES,
                    "{old} -> {size}: {}",
                    shape.len()
                );
            }
        }
        assert_eq!(inclusion_subtrees(0, u64::MAX).len(), 64);
    }
}
