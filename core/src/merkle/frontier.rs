//! The right edge of a Merkle tree ([`MerkleFrontier`]): enough to append leaves and know the root
//! at every size, in O(log n) memory.

use super::{
    append_leaf, fold_frontier, prefix, Blake3Hasher, MerkleError, MerkleHasher, MerkleResult,
};
use crate::hash::Hash;
use serde::{Deserialize, Serialize};

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
