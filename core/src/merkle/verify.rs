//! Checking proofs against a root, after transparency-dev/merkle `proof/verify.go`
//! ([`verify_inclusion`], [`verify_consistency`]), and the proofs as values for the wire and for
//! auditors ([`InclusionProof`], [`ConsistencyProof`]).

use super::{consistency_proof, inclusion_proof, MerkleError, MerkleHasher, MerkleResult};
use crate::hash::Hash;
use serde::{Deserialize, Serialize};

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
