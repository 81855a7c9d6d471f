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

// Sizes, indices and proofs come from outside: no arithmetic that can overflow, no indexing that can
// panic, no unwrap. (Tests are in `core/tests/merkle_*.rs`.)
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::hash::Hash;
use serde::{Deserialize, Serialize};

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
fn prefix(leaves: &[Hash], size: u64) -> MerkleResult<&[Hash]> {
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
fn append_leaf<H: MerkleHasher + ?Sized>(hasher: &H, nodes: &mut Vec<Hash>, size: u64, leaf: Hash) {
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
fn fold_frontier<H: MerkleHasher + ?Sized>(hasher: &H, nodes: &[Hash]) -> Hash {
    let mut rev = nodes.iter().rev();
    match rev.next() {
        None => hasher.empty_root(),
        Some(last) => rev.fold(*last, |right, left| hasher.hash_children(left, &right)),
    }
}

// ---------------------------------------------------------------------------------------------------
// The frontier (compact range [0, size))
// ---------------------------------------------------------------------------------------------------

/// The right edge of a tree: the roots of the perfect subtrees that make up `[0, size)`, one per set
/// bit of `size`, largest (leftmost) first. Enough to append leaves and get the root at the current
/// size in O(log n) memory. Serialized as `{ size, nodes }`; deserializing checks that the number of
/// nodes matches the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "FrontierParts",
    bound(serialize = "", deserialize = "H: MerkleHasher + Default")
)]
pub struct MerkleFrontier<H = Blake3Hasher> {
    size: u64,
    nodes: Vec<Hash>,
    #[serde(skip)]
    hasher: H,
}

/// The serialized form of a [`MerkleFrontier`], checked on the way in.
#[derive(Deserialize)]
struct FrontierParts {
    size: u64,
    nodes: Vec<Hash>,
}

impl<H: MerkleHasher + Default> TryFrom<FrontierParts> for MerkleFrontier<H> {
    type Error = MerkleError;
    fn try_from(parts: FrontierParts) -> MerkleResult<Self> {
        MerkleFrontier::from_parts(H::default(), parts.size, parts.nodes)
    }
}

impl<H: MerkleHasher + Default> MerkleFrontier<H> {
    /// The empty tree.
    pub fn new() -> Self {
        Self::with_hasher(H::default())
    }
}

impl<H: MerkleHasher + Default> Default for MerkleFrontier<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: MerkleHasher> MerkleFrontier<H> {
    /// The empty tree, hashing with `hasher`.
    pub fn with_hasher(hasher: H) -> Self {
        MerkleFrontier {
            size: 0,
            nodes: Vec::new(),
            hasher,
        }
    }

    /// The frontier of the first `size` leaf hashes. O(size) hashes.
    pub fn from_leaves(hasher: H, leaves: &[Hash], size: u64) -> MerkleResult<Self> {
        let mut frontier = Self::with_hasher(hasher);
        for leaf in prefix(leaves, size)? {
            frontier.push(*leaf)?;
        }
        Ok(frontier)
    }

    /// A frontier from its size and subtree roots (largest first), as [`Self::nodes`] gives them.
    pub fn from_parts(hasher: H, size: u64, nodes: Vec<Hash>) -> MerkleResult<Self> {
        let expected = size.count_ones();
        if u32::try_from(nodes.len()).ok() != Some(expected) {
            return Err(MerkleError::MalformedFrontier {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(MerkleFrontier {
            size,
            nodes,
            hasher,
        })
    }

    /// Appends a leaf hash (already [`MerkleHasher::hash_leaf`]ed). O(log n) hashes; fails only at
    /// `u64::MAX` leaves.
    pub fn push(&mut self, leaf_hash: Hash) -> MerkleResult<()> {
        let next = self
            .size
            .checked_add(1)
            .ok_or(MerkleError::TreeFull { size: self.size })?;
        append_leaf(&self.hasher, &mut self.nodes, self.size, leaf_hash);
        self.size = next;
        Ok(())
    }

    /// The root at the current size. O(log n) hashes.
    pub fn root(&self) -> Hash {
        fold_frontier(&self.hasher, &self.nodes)
    }

    /// The number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees covering `[0, size)`, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }
}

// ---------------------------------------------------------------------------------------------------
// Verification (after transparency-dev/merkle proof/verify.go)
// ---------------------------------------------------------------------------------------------------

/// Checks that `proof` shows the leaf hash `leaf_hash` at `index` in the tree of `size` whose root is
/// `root`. Requires `index < size`.
pub fn verify_inclusion<H: MerkleHasher + ?Sized>(
    hasher: &H,
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> MerkleResult<()> {
    let computed = root_from_inclusion_proof(hasher, index, size, leaf_hash, proof)?;
    verify_match(computed, root)
}

/// The root of the tree of `size` that `proof` leads to from the leaf hash `leaf_hash` at `index`.
/// Checks `index < size` and the proof length before hashing.
pub fn root_from_inclusion_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> MerkleResult<Hash> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decomp_incl_proof(index, size);
    let (inner, border) = check_len(proof, 0, inner, border)?;
    let res = chain_inner(hasher, *leaf_hash, inner, index);
    Ok(chain_border_right(hasher, res, border))
}

/// Checks that `proof` shows the tree of `size1` with root `root1` to be a prefix of the tree of
/// `size2` with root `root2`. Equal sizes need an empty proof and equal roots. From size 0 the
/// proof must be empty and `root1` the empty root: every tree extends the empty tree (as in
/// transparency-dev/merkle's `VerifyConsistency`, which, stricter here, also checks `root1`).
pub fn verify_consistency<H: MerkleHasher + ?Sized>(
    hasher: &H,
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> MerkleResult<()> {
    if size1 == 0 && size1 < size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofSize {
                expected: 0,
                got: proof.len(),
            });
        }
        return verify_match(hasher.empty_root(), root1);
    }
    let computed = root_from_consistency_proof(hasher, size1, size2, proof, root1)?;
    verify_match(computed, root2)
}

/// The root of the tree of `size2` that `proof` leads to from the tree of `size1` with root `root1`,
/// after checking that the same proof leads to `root1`. Checks the sizes and the proof length before
/// hashing. Requires `0 < size1 <= size2`: from the empty tree the (empty) proof determines nothing.
pub fn root_from_consistency_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
) -> MerkleResult<Hash> {
    if size2 < size1 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofSize {
                expected: 0,
                got: proof.len(),
            });
        }
        return Ok(*root1);
    }
    if size1 == 0 {
        return Err(MerkleError::ConsistencyFromEmpty { size2 });
    }

    // From here 0 < size1 < size2. The proof is the inclusion proof of leaf size1-1 in the tree of
    // size2, cut below the level `shift` of the largest perfect subtree that ends at size1 (whose
    // hash, the seed, is the proof's first element, unless it is the whole old tree: root1).
    let (inner, border) = decomp_incl_proof(size1.saturating_sub(1), size2);
    let shift = size1.trailing_zeros();
    // shift < inner whenever size1 < size2: leaves size1-1 and size2-1 are in different perfect
    // subtrees of height shift.
    let inner = inner.saturating_sub(shift);
    let seed_in_proof = size1.count_ones() != 1;
    let (seed, rest) = match (seed_in_proof, proof.split_first()) {
        (false, _) => (*root1, proof),
        (true, Some((first, rest))) => (*first, rest),
        (true, None) => {
            let expected = expected_len(1, inner, border);
            return Err(MerkleError::WrongProofSize { expected, got: 0 });
        }
    };
    let (inner_path, border_path) = check_len(rest, usize::from(seed_in_proof), inner, border)?;

    // Start chaining from level `shift`.
    let mask = size1.saturating_sub(1).checked_shr(shift).unwrap_or(0);
    let hash1 = chain_inner_right(hasher, seed, inner_path, mask);
    let hash1 = chain_border_right(hasher, hash1, border_path);
    verify_match(hash1, root1)?;

    let hash2 = chain_inner(hasher, seed, inner_path, mask);
    Ok(chain_border_right(hasher, hash2, border_path))
}

/// `Ok` if the computed root is the expected one.
fn verify_match(computed: Hash, expected: &Hash) -> MerkleResult<()> {
    if computed == *expected {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            expected: *expected,
            computed,
        })
    }
}

/// Splits an inclusion proof for leaf `index` in a tree of `size` (`index < size`) into the part
/// below the level where the paths to `index` and to `size - 1` meet ("inner", left and right
/// siblings) and the part above ("border", left siblings only). Returns their lengths.
fn decomp_incl_proof(index: u64, size: u64) -> (u32, u32) {
    let inner = inner_proof_size(index, size);
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// The number of levels below the meeting point of the paths to `index` and `size - 1`.
fn inner_proof_size(index: u64, size: u64) -> u32 {
    let last = size.saturating_sub(1);
    u64::BITS.saturating_sub((index ^ last).leading_zeros())
}

/// `extra + inner + border`, which is at most 1 + 64 + 64.
fn expected_len(extra: usize, inner: u32, border: u32) -> usize {
    let bits = usize::try_from(inner.saturating_add(border)).unwrap_or(usize::MAX);
    extra.saturating_add(bits)
}

/// Checks that `proof` holds exactly `inner + border` hashes and splits it there. `extra` is the
/// number of hashes already taken off the front, counted in the error.
fn check_len(
    proof: &[Hash],
    extra: usize,
    inner: u32,
    border: u32,
) -> MerkleResult<(&[Hash], &[Hash])> {
    let expected = expected_len(extra, inner, border);
    let got = proof.len().saturating_add(extra);
    if got != expected {
        return Err(MerkleError::WrongProofSize { expected, got });
    }
    let at = usize::try_from(inner).unwrap_or(usize::MAX);
    proof
        .split_at_checked(at)
        .ok_or(MerkleError::WrongProofSize { expected, got })
}

/// Whether bit `i` of `x` is set (false past bit 63).
fn bit(x: u64, i: usize) -> bool {
    u32::try_from(i)
        .ok()
        .and_then(|i| x.checked_shr(i))
        .is_some_and(|v| v & 1 == 1)
}

/// Hashes `seed` (a node at `index` on its level) up through `proof`, lowest level first, taking each
/// sibling from the side the index bits say.
fn chain_inner<H: MerkleHasher + ?Sized>(
    hasher: &H,
    seed: Hash,
    proof: &[Hash],
    index: u64,
) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, sibling)| {
        if bit(index, i) {
            hasher.hash_children(sibling, &acc)
        } else {
            hasher.hash_children(&acc, sibling)
        }
    })
}

/// Like [`chain_inner`], but only the left siblings count: the result is the hash of the same
/// subtree as it was before the leaves right of the path were added.
fn chain_inner_right<H: MerkleHasher + ?Sized>(
    hasher: &H,
    seed: Hash,
    proof: &[Hash],
    index: u64,
) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, sibling)| {
        if bit(index, i) {
            hasher.hash_children(sibling, &acc)
        } else {
            acc
        }
    })
}

/// Hashes up the right border of the tree, where every sibling is on the left.
fn chain_border_right<H: MerkleHasher + ?Sized>(hasher: &H, seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |acc, sibling| hasher.hash_children(sibling, &acc))
}

// ---------------------------------------------------------------------------------------------------
// Proofs as values, for the wire and for auditors
// ---------------------------------------------------------------------------------------------------

/// A proof that the leaf at `index` is in the tree of `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf's index, from 0.
    pub index: u64,
    /// The tree size the proof is against.
    pub size: u64,
    /// The sibling hashes from the leaf up, as [`inclusion_proof`] gives them.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// The proof for leaf `index` in the tree of the first `size` leaf hashes.
    pub fn from_leaves<H: MerkleHasher + ?Sized>(
        hasher: &H,
        leaves: &[Hash],
        index: u64,
        size: u64,
    ) -> MerkleResult<Self> {
        let path = inclusion_proof(hasher, leaves, index, size)?;
        Ok(InclusionProof { index, size, path })
    }

    /// The root this proof leads to from `leaf_hash`.
    pub fn root<H: MerkleHasher + ?Sized>(
        &self,
        hasher: &H,
        leaf_hash: &Hash,
    ) -> MerkleResult<Hash> {
        root_from_inclusion_proof(hasher, self.index, self.size, leaf_hash, &self.path)
    }

    /// Checks that `leaf_hash` is at `index` in the tree of `size` with root `root`.
    pub fn verify<H: MerkleHasher + ?Sized>(
        &self,
        hasher: &H,
        leaf_hash: &Hash,
        root: &Hash,
    ) -> MerkleResult<()> {
        verify_inclusion(hasher, self.index, self.size, leaf_hash, &self.path, root)
    }
}

/// A proof that the tree of `size1` leaves is a prefix of the tree of `size2` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older (smaller) tree size.
    pub size1: u64,
    /// The newer (larger or equal) tree size.
    pub size2: u64,
    /// The proof hashes, as [`consistency_proof`] gives them.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// The proof between the trees of the first `size1` and the first `size2` leaf hashes.
    pub fn from_leaves<H: MerkleHasher + ?Sized>(
        hasher: &H,
        leaves: &[Hash],
        size1: u64,
        size2: u64,
    ) -> MerkleResult<Self> {
        let path = consistency_proof(hasher, leaves, size1, size2)?;
        Ok(ConsistencyProof { size1, size2, path })
    }

    /// Checks that the tree of `size1` with root `root1` is a prefix of the tree of `size2` with root
    /// `root2`.
    pub fn verify<H: MerkleHasher + ?Sized>(
        &self,
        hasher: &H,
        root1: &Hash,
        root2: &Hash,
    ) -> MerkleResult<()> {
        verify_consistency(hasher, self.size1, self.size2, &self.path, root1, root2)
    }
}
