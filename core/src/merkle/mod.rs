//! The Certificate Transparency Merkle tree (RFC 6962 §2.1, unchanged in RFC 9162 §2.1) over a log's
//! entries: roots, inclusion proofs and consistency proofs, and their verification.
//!
//! Each partner's log is such a tree. A node keeps every leaf hash and computes proofs with the slice
//! functions ([`root`], [`inclusion_proof`], [`consistency_proof`]); a [`MerkleFrontier`] keeps only
//! the O(log n) subtree roots on the right edge, enough to append a leaf and know the root at the new
//! size; anyone holding a root checks proofs with [`verify_inclusion`] and [`verify_consistency`]
//! (or the `verify` methods of [`InclusionProof`] and [`ConsistencyProof`]).
//!
//! Everything is generic over [`MerkleHasher`]. The protocol uses [`Blake3Hasher`]; the same code
//! run with SHA-256 reproduces the published CT test vectors, which is how the tests pin the tree
//! shape and the proof order down to the bit.
//!
//! Every input may come from another process (a peer's proof, a stored frontier, a requested size),
//! so nothing here panics: bad sizes, indices and proof lengths are [`MerkleError`]s, checked before
//! any hashing. The verifiers follow transparency-dev/merkle `proof/verify.go`.
//!
//! ```
//! use coalition_core::merkle::{self, Blake3Hasher, MerkleFrontier, MerkleHasher};
//!
//! let h = Blake3Hasher;
//! let leaves: Vec<_> = (0u8..5).map(|i| h.hash_leaf(&[i])).collect();
//!
//! // A node appending one leaf at a time knows the root without keeping the leaves.
//! let mut frontier = MerkleFrontier::<Blake3Hasher>::new();
//! for leaf in &leaves {
//!     frontier.push(*leaf)?;
//! }
//! let root = merkle::root(&h, &leaves, 5)?;
//! assert_eq!(frontier.root(), root);
//!
//! // Leaf 3 is in the tree of size 5...
//! let proof = merkle::inclusion_proof(&h, &leaves, 3, 5)?;
//! merkle::verify_inclusion(&h, 3, 5, &leaves[3], &proof, &root)?;
//!
//! // ...and the tree of size 2 is a prefix of it.
//! let old_root = merkle::root(&h, &leaves, 2)?;
//! let proof = merkle::consistency_proof(&h, &leaves, 2, 5)?;
//! merkle::verify_consistency(&h, 2, 5, &proof, &old_root, &root)?;
//! # Ok::<(), merkle::MerkleError>(())
//! ```

mod frontier;
mod verify;

pub use frontier::MerkleFrontier;
pub use verify::{
    root_from_consistency_proof, root_from_inclusion_proof, verify_consistency, verify_inclusion,
    ConsistencyProof, InclusionProof,
};

use crate::hash::Hash;

/// Prefix of a leaf hash input: `leaf = H(0x00 ‖ data)` (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash input: `node = H(0x01 ‖ left ‖ right)` (RFC 6962 §2.1).
pub const NODE_PREFIX: u8 = 0x01;

/// The three hashes that define a Merkle tree. The prefixes keep a leaf from ever being taken for a
/// node (second-preimage resistance), so implementations must use [`LEAF_PREFIX`] and [`NODE_PREFIX`].
pub trait MerkleHasher {
    /// The root of the empty tree: `H("")`.
    fn empty_root(&self) -> Hash;
    /// The hash of a leaf: `H(0x00 ‖ leaf)`.
    fn hash_leaf(&self, leaf: &[u8]) -> Hash;
    /// The hash of an interior node: `H(0x01 ‖ l ‖ r)`.
    fn hash_children(&self, l: &Hash, r: &Hash) -> Hash;
}

/// The protocol's hasher: RFC 6962 hashing with plain (unkeyed) blake3 in place of SHA-256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blake3Hasher;

impl MerkleHasher for Blake3Hasher {
    fn empty_root(&self) -> Hash {
        Hash(*blake3::hash(b"").as_bytes())
    }

    fn hash_leaf(&self, leaf: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&[LEAF_PREFIX]);
        h.update(leaf);
        Hash(*h.finalize().as_bytes())
    }

    fn hash_children(&self, l: &Hash, r: &Hash) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&[NODE_PREFIX]);
        h.update(&l.0);
        h.update(&r.0);
        Hash(*h.finalize().as_bytes())
    }
}

/// Why a Merkle computation or proof check failed. Every variant but [`MerkleError::SizeBeyondLeaves`]
/// and [`MerkleError::TreeFull`] means the input (a proof, a size, a stored frontier) is bad; those
/// two mean we were asked for something we do not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index at or past the end of the tree (`index < size` is required).
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The leaf index given.
        index: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// A tree size larger than the number of leaf hashes passed in.
    #[error("tree size {size} exceeds the {available} leaves available")]
    SizeBeyondLeaves {
        /// The tree size asked for.
        size: u64,
        /// How many leaf hashes there are.
        available: u64,
    },
    /// Consistency sizes in the wrong order (`size1 <= size2` is required).
    #[error("first tree size {size1} is larger than second tree size {size2}")]
    SizeOrder {
        /// The older tree size.
        size1: u64,
        /// The newer tree size.
        size2: u64,
    },
    /// A new root asked of a consistency proof from the empty tree: such a proof is empty and
    /// carries no information about the new tree (only [`verify_consistency`] accepts it).
    #[error("a consistency proof from the empty tree to size {size2} determines no root")]
    ConsistencyFromEmpty {
        /// The newer tree size.
        size2: u64,
    },
    /// A proof with the wrong number of hashes for its index and sizes.
    #[error("wrong proof size: expected {expected} hashes, got {got}")]
    WrongProofSize {
        /// The length the index and sizes call for.
        expected: usize,
        /// The length of the proof given.
        got: usize,
    },
    /// The root recomputed from a proof differs from the root it was checked against.
    #[error("computed root {computed} does not match expected root {expected}")]
    RootMismatch {
        /// The root the proof was checked against.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// A frontier whose subtree roots do not match its size (one root per set bit of the size).
    #[error("malformed frontier: size {size} needs {expected} subtree roots, got {got}")]
    MalformedFrontier {
        /// The frontier's size.
        size: u64,
        /// `size.count_ones()`.
        expected: u32,
        /// How many subtree roots it holds.
        got: usize,
    },
    /// A frontier already holding `u64::MAX` leaves.
    #[error("tree is full at size {size}")]
    TreeFull {
        /// The frontier's size.
        size: u64,
    },
}

/// `Result` with a [`MerkleError`].
pub type MerkleResult<T> = Result<T, MerkleError>;

// ---------------------------------------------------------------------------------------------------
// Computation over the leaf hashes (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1)
// ---------------------------------------------------------------------------------------------------

/// The root of the tree made of the first `size` leaf hashes (`MTH(D[0:size])`). O(size) hashes.
pub fn root<H: MerkleHasher + ?Sized>(
    hasher: &H,
    leaves: &[Hash],
    size: u64,
) -> MerkleResult<Hash> {
    Ok(subtree_root(hasher, prefix(leaves, size)?))
}

/// The inclusion proof (audit path, `PATH(index, D[0:size])`) of leaf `index` in the tree of the
/// first `size` leaf hashes, ordered from the leaf's sibling up to the child of the root.
/// O(size) hashes.
pub fn inclusion_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    leaves: &[Hash],
    index: u64,
    size: u64,
) -> MerkleResult<Vec<Hash>> {
    let mut tree = prefix(leaves, size)?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // `index < size <= leaves.len()`, so it fits.
    let mut m = usize::try_from(index).map_err(|_| MerkleError::IndexOutOfRange { index, size })?;
    // Walk down from the root; the RFC's recursion appends each sibling after the deeper ones, so
    // the path comes out top-down and is reversed at the end.
    let mut path = Vec::new();
    while let Some((left, right)) = split(tree) {
        match m.checked_sub(left.len()) {
            None => {
                path.push(subtree_root(hasher, right));
                tree = left;
            }
            Some(rest) => {
                path.push(subtree_root(hasher, left));
                tree = right;
                m = rest;
            }
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof (`PROOF(size1, D[0:size2])`) that the tree of the first `size1` leaf hashes
/// is a prefix of the tree of the first `size2`. Empty when the sizes are equal. O(size2) hashes.
pub fn consistency_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    leaves: &[Hash],
    size1: u64,
    size2: u64,
) -> MerkleResult<Vec<Hash>> {
    if size1 > size2 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    let mut tree = prefix(leaves, size2)?;
    if size1 == size2 || size1 == 0 {
        // Every tree extends the empty tree: nothing to prove (see `verify_consistency`).
        return Ok(Vec::new());
    }
    // `0 < size1 < size2 <= leaves.len()`, so it fits.
    let mut m = usize::try_from(size1).map_err(|_| MerkleError::SizeOrder { size1, size2 })?;
    // SUBPROOF(m, D[n], b), unrolled: `complete` is the RFC's `b`, true while the subtree of size
    // `m` we descend towards is the old root itself (whose hash the verifier already has).
    let mut complete = true;
    let mut path = Vec::new();
    // Invariant: 0 < m <= tree.len(), and tree.len() shrinks every step.
    loop {
        if m == tree.len() {
            if !complete {
                path.push(subtree_root(hasher, tree));
            }
            break;
        }
        let Some((left, right)) = split(tree) else {
            break;
        };
        match m.checked_sub(left.len()) {
            Some(rest) if rest > 0 => {
                path.push(subtree_root(hasher, left));
                tree = right;
                m = rest;
                complete = false;
            }
            _ => {
                path.push(subtree_root(hasher, right));
                tree = left;
            }
        }
    }
    path.reverse();
    Ok(path)
}

/// The first `size` leaves.
pub(crate) fn prefix(leaves: &[Hash], size: u64) -> MerkleResult<&[Hash]> {
    let too_big = || MerkleError::SizeBeyondLeaves {
        size,
        available: u64::try_from(leaves.len()).unwrap_or(u64::MAX),
    };
    let n = usize::try_from(size).map_err(|_| too_big())?;
    leaves.get(..n).ok_or_else(too_big)
}

/// Splits a tree of `n >= 2` leaves at `k`, the largest power of two below `n` (RFC 6962 §2.1);
/// `None` for a single leaf or none.
fn split(tree: &[Hash]) -> Option<(&[Hash], &[Hash])> {
    let log = tree.len().checked_sub(1)?.checked_ilog2()?;
    tree.split_at_checked(1usize.checked_shl(log)?)
}

/// `MTH(leaves)`: fold the leaves into perfect subtrees as a frontier does, then join those right to
/// left, which gives the same tree as the RFC's recursive split.
fn subtree_root<H: MerkleHasher + ?Sized>(hasher: &H, leaves: &[Hash]) -> Hash {
    let mut nodes = Vec::with_capacity(64);
    for (size, leaf) in (0u64..).zip(leaves) {
        append_leaf(hasher, &mut nodes, size, *leaf);
    }
    fold_frontier(hasher, &nodes)
}

/// Appends a leaf to the right-edge subtree roots of a tree of `size` leaves: each trailing one bit
/// of `size` is a subtree of the same height as the carry, merged into it.
pub(crate) fn append_leaf<H: MerkleHasher + ?Sized>(
    hasher: &H,
    nodes: &mut Vec<Hash>,
    size: u64,
    leaf: Hash,
) {
    let mut carry = leaf;
    for _ in 0..size.trailing_ones() {
        // There is one node per set bit of `size`, so the pop never fails for a well-formed frontier.
        if let Some(left) = nodes.pop() {
            carry = hasher.hash_children(&left, &carry);
        }
    }
    nodes.push(carry);
}

/// The root from the right-edge subtree roots (largest first): joined right to left.
pub(crate) fn fold_frontier<H: MerkleHasher + ?Sized>(hasher: &H, nodes: &[Hash]) -> Hash {
    let mut rev = nodes.iter().rev();
    match rev.next() {
        None => hasher.empty_root(),
        Some(last) => rev.fold(*last, |right, left| hasher.hash_children(left, &right)),
    }
}
