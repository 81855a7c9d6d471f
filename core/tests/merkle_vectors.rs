//! Known-answer tests: the published Certificate Transparency vectors, run through our generic Merkle
//! code with SHA-256 (the hasher of RFC 6962). All expected values are copied from these sources,
//! none is computed by our code:
//!
//! - transparency-dev/merkle `rfc6962/rfc6962_test.go`: hasher known answers.
//! - transparency-dev/merkle `testonly/constants.go`: the 8-leaf reference tree (`LeafInputs`),
//!   every perfect subtree hash (`NodeHashes`), the root at every size (`RootHashes`) and the
//!   compact ranges (`CompactTrees`).
//! - transparency-dev/merkle `proof/verify_test.go` (same data in `cmd/proofgen/main.go`): inclusion
//!   and consistency proofs with their hashes; `testonly/reference_test.go`: more of them.
//! - transparency-dev/merkle `proof/proof_test.go`: proofs as lists of node positions (level, index),
//!   resolved here through `NodeHashes`.
//! - transparency-dev/merkle `testonly/vectors_test.go` (the "Subtree Test Vectors" of
//!   draft-ietf-plants-merkle-tree-certs): rolling SHA-256 over every subtree hash and every subtree
//!   inclusion proof in a tree of 130 leaves.

use coalition_core::hash::Hash;
use coalition_core::merkle::{
    self, ConsistencyProof, InclusionProof, MerkleError, MerkleFrontier, MerkleHasher,
};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// RFC 6962 hashing with SHA-256, as in CT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sha256Hasher;

impl MerkleHasher for Sha256Hasher {
    fn empty_root(&self) -> Hash {
        Hash(Sha256::digest(b"").into())
    }
    fn hash_leaf(&self, leaf: &[u8]) -> Hash {
        Hash(
            Sha256::new()
                .chain_update([0x00])
                .chain_update(leaf)
                .finalize()
                .into(),
        )
    }
    fn hash_children(&self, l: &Hash, r: &Hash) -> Hash {
        Hash(
            Sha256::new()
                .chain_update([0x01])
                .chain_update(l.0)
                .chain_update(r.0)
                .finalize()
                .into(),
        )
    }
}

const H: Sha256Hasher = Sha256Hasher;

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).unwrap()
}

fn hs(hexes: &[&str]) -> Vec<Hash> {
    hexes.iter().map(|x| h(x)).collect()
}

/// `LeafInputs()` in testonly/constants.go.
const LEAF_INPUTS: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// `EmptyRootHash()`; `printf '' | sha256sum`.
const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `RootHashes()[1..]` in testonly/constants.go (= `roots` in proof/verify_test.go): the root at
/// sizes 1 to 8.
const ROOTS: [&str; 8] = [
    // Size 1 is the leaf hash of "": `printf '\x00' | sha256sum`.
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    // Size 2 is H(0x01 ‖ leaf0 ‖ leaf1):
    // `(printf '\x01'; printf '\x00' | sha256sum | xxd -r -p; printf '\x00\x00' | sha256sum | xxd -r -p) | sha256sum`
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `NodeHashes()` in testonly/constants.go: `[level][index]` of every perfect subtree of the 8-leaf
/// tree. Level 0 holds the leaf hashes; e.g. leaf 1 (`\x00`) is `printf '\x00\x00' | sha256sum`.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `sha256SomeHash` in proof/verify_test.go: a hash that is no node of the tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn leaves() -> Vec<Hash> {
    LEAF_INPUTS.iter().map(|d| H.hash_leaf(d)).collect()
}

fn root_at(size: u64) -> Hash {
    if size == 0 {
        h(EMPTY_ROOT)
    } else {
        h(ROOTS[size as usize - 1])
    }
}

/// A node position `(level, index)` as in proof/proof_test.go's `compact.NewNodeID`.
fn node(level: usize, index: usize) -> Hash {
    h(NODES[level][index])
}

#[test]
fn hasher_known_answers() {
    // rfc6962/rfc6962_test.go. `echo -n | sha256sum`
    assert_eq!(H.empty_root(), h(EMPTY_ROOT));
    // `echo -n 00 | xxd -r -p | sha256sum`: the empty leaf is not the empty tree.
    assert_eq!(
        H.hash_leaf(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    // `echo -n 004C313233343536 | xxd -r -p | sha256sum`
    assert_eq!(
        H.hash_leaf(b"L123456"),
        h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    // (The file's node vector hashes 4-byte children; our children are 32-byte hashes, so the node
    // hash is pinned by the subtree hashes below instead.)
}

#[test]
fn leaf_hashes_and_subtree_hashes() {
    let leaves = leaves();
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(*leaf, node(0, i), "leaf {i}");
    }
    // Every perfect subtree: level l, index i covers leaves [i·2^l, (i+1)·2^l).
    for (level, row) in NODES.iter().enumerate() {
        let width = 1usize << level;
        for index in 0..row.len() {
            let sub = &leaves[index * width..(index + 1) * width];
            assert_eq!(
                merkle::root(&H, sub, width as u64).unwrap(),
                node(level, index),
                "node ({level}, {index})"
            );
        }
    }
}

#[test]
fn roots_at_every_size() {
    let leaves = leaves();
    assert_eq!(merkle::root(&H, &leaves, 0).unwrap(), h(EMPTY_ROOT));
    assert_eq!(merkle::root(&H, &[], 0).unwrap(), h(EMPTY_ROOT));
    for size in 1..=8u64 {
        assert_eq!(
            merkle::root(&H, &leaves, size).unwrap(),
            root_at(size),
            "size {size}"
        );
    }
    assert_eq!(
        merkle::root(&H, &leaves, 9),
        Err(MerkleError::SizeBeyondLeaves {
            size: 9,
            available: 8
        })
    );
}

#[test]
fn frontier_matches_compact_trees() {
    // `CompactTrees()` in testonly/constants.go: the right-edge subtrees at each size.
    let compact: [Vec<Hash>; 9] = [
        vec![],
        vec![node(0, 0)],
        vec![node(1, 0)],
        vec![node(1, 0), node(0, 2)],
        vec![node(2, 0)],
        vec![node(2, 0), node(0, 4)],
        vec![node(2, 0), node(1, 2)],
        vec![node(2, 0), node(1, 2), node(0, 6)],
        vec![node(3, 0)],
    ];
    let mut frontier = MerkleFrontier::<Sha256Hasher>::new();
    for (size, leaf) in leaves().into_iter().enumerate() {
        assert_eq!(frontier.size(), size as u64);
        assert_eq!(frontier.nodes(), &compact[size][..], "size {size}");
        assert_eq!(frontier.root(), root_at(size as u64), "size {size}");
        frontier.push(leaf).unwrap();
    }
    assert_eq!(frontier.nodes(), &compact[8][..]);
    assert_eq!(frontier.root(), root_at(8));
}

/// proof/verify_test.go `inclusionProofs` (its leaf numbers are 1-based; 0-based here) and
/// testonly/reference_test.go `TestRefInclusionProof`.
#[rustfmt::skip]
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (0, 8, hs(&[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ])),
        (5, 8, hs(&[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])),
        (2, 3, hs(&["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"])),
        (1, 5, hs(&[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ])),
        // reference_test.go only.
        (0, 2, hs(&["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"])),
        (1, 2, hs(&["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"])),
        // proof/proof_test.go `TestInclusion`, node positions (level, index) resolved through
        // NodeHashes (the cases that need no rehashing).
        (0, 2, vec![node(0, 1)]),              // b
        (1, 2, vec![node(0, 0)]),              // a
        (1, 3, vec![node(0, 0), node(0, 2)]),  // a c
        (4, 7, vec![node(0, 5), node(0, 6), node(2, 0)]), // f j k
        (5, 7, vec![node(0, 4), node(0, 6), node(2, 0)]), // e j k
        (6, 7, vec![node(1, 2), node(2, 0)]),  // i k
        (2, 4, vec![node(0, 3), node(1, 0)]),  // d g
        (3, 5, vec![node(0, 2), node(1, 0), node(0, 4)]), // c g e
        (3, 6, vec![node(0, 2), node(1, 0), node(1, 2)]), // c g i
        (4, 6, vec![node(0, 5), node(2, 0)]),  // f k
    ]
}

/// proof/verify_test.go `consistencyProofs` and testonly/reference_test.go `TestRefConsistencyProof`.
#[rustfmt::skip]
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (1, 8, hs(&[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ])),
        (6, 8, hs(&[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])),
        (2, 5, hs(&[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ])),
        (6, 7, hs(&[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ])),
        // proof/proof_test.go `TestConsistency`, node positions resolved through NodeHashes (the
        // cases that need no rehashing).
        (1, 2, vec![node(0, 1)]),                         // b
        (1, 4, vec![node(0, 1), node(1, 1)]),             // b h
        (1, 6, vec![node(0, 1), node(1, 1), node(1, 2)]), // b h i
        (2, 3, vec![node(0, 2)]),                         // c
        (2, 8, vec![node(1, 1), node(2, 1)]),             // h l
        (5, 7, vec![node(0, 4), node(0, 5), node(0, 6), node(2, 0)]), // e f j k
        (6, 7, vec![node(1, 2), node(0, 6), node(2, 0)]), // i j k
        (7, 8, vec![node(0, 6), node(0, 7), node(1, 2), node(2, 0)]), // j leaf#7 i k
        (2, 4, vec![node(1, 1)]),                         // h
        (3, 5, vec![node(0, 2), node(0, 3), node(1, 0), node(0, 4)]), // c d g e
        (3, 6, vec![node(0, 2), node(0, 3), node(1, 0), node(1, 2)]), // c d g i
        (4, 6, vec![node(1, 2)]),                         // i
        (2, 2, vec![]),
        (3, 3, vec![]),
        (4, 4, vec![]),
        (5, 5, vec![]),
        (7, 7, vec![]),
        (8, 8, vec![]),
    ]
}

#[test]
fn inclusion_proofs_match_published_paths_and_verify() {
    let leaves = leaves();
    for (index, size, want) in inclusion_vectors() {
        let got = merkle::inclusion_proof(&H, &leaves, index, size).unwrap();
        assert_eq!(got, want, "inclusion proof {index} in {size}");
        let leaf = leaves[index as usize];
        let root = root_at(size);
        merkle::verify_inclusion(&H, index, size, &leaf, &want, &root).unwrap();
        assert_eq!(
            merkle::root_from_inclusion_proof(&H, index, size, &leaf, &want),
            Ok(root)
        );
        let proof = InclusionProof::from_leaves(&H, &leaves, index, size).unwrap();
        proof.verify(&H, &leaf, &root).unwrap();
        assert_probes_fail_inclusion(index, size, &want, &root, &leaf);
    }
}

#[test]
fn consistency_proofs_match_published_paths_and_verify() {
    let leaves = leaves();
    for (size1, size2, want) in consistency_vectors() {
        let got = merkle::consistency_proof(&H, &leaves, size1, size2).unwrap();
        assert_eq!(got, want, "consistency proof {size1} to {size2}");
        let (root1, root2) = (root_at(size1), root_at(size2));
        merkle::verify_consistency(&H, size1, size2, &want, &root1, &root2).unwrap();
        let proof = ConsistencyProof::from_leaves(&H, &leaves, size1, size2).unwrap();
        proof.verify(&H, &root1, &root2).unwrap();
        if !want.is_empty() {
            assert_probes_fail_consistency(size1, size2, &want, &root1, &root2);
        }
    }
}

/// `corruptInclusionProof` in proof/verify_test.go: each probe must fail.
fn assert_probes_fail_inclusion(index: u64, size: u64, proof: &[Hash], root: &Hash, leaf: &Hash) {
    let some = h(SOME_HASH);
    let empty = h(EMPTY_ROOT);
    let wrong_leaf = H.hash_leaf(b"WrongLeaf");
    let with = |front: Option<Hash>, back: Option<Hash>| -> Vec<Hash> {
        front
            .into_iter()
            .chain(proof.iter().copied())
            .chain(back)
            .collect()
    };
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        (
            "index - 1".into(),
            index.wrapping_sub(1),
            size,
            *root,
            *leaf,
            proof.to_vec(),
        ),
        (
            "index + 1".into(),
            index + 1,
            size,
            *root,
            *leaf,
            proof.to_vec(),
        ),
        (
            "index ^ 2".into(),
            index ^ 2,
            size,
            *root,
            *leaf,
            proof.to_vec(),
        ),
        (
            "size * 2".into(),
            index,
            size * 2,
            *root,
            *leaf,
            proof.to_vec(),
        ),
        (
            "size / 2".into(),
            index,
            size / 2,
            *root,
            *leaf,
            proof.to_vec(),
        ),
        (
            "wrong leaf".into(),
            index,
            size,
            *root,
            wrong_leaf,
            proof.to_vec(),
        ),
        (
            "empty root".into(),
            index,
            size,
            empty,
            *leaf,
            proof.to_vec(),
        ),
        (
            "random root".into(),
            index,
            size,
            some,
            *leaf,
            proof.to_vec(),
        ),
        // Go appends an empty byte string; our hashes are fixed-size, so the zero hash stands in.
        (
            "trailing garbage".into(),
            index,
            size,
            *root,
            *leaf,
            with(None, Some(Hash::ZERO)),
        ),
        (
            "trailing root".into(),
            index,
            size,
            *root,
            *leaf,
            with(None, Some(*root)),
        ),
        (
            "preceding garbage".into(),
            index,
            size,
            *root,
            *leaf,
            with(Some(Hash::ZERO), None),
        ),
        (
            "preceding root".into(),
            index,
            size,
            *root,
            *leaf,
            with(Some(*root), None),
        ),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[0] ^= 8;
        probes.push((
            format!("modified proof[{i}] bit 3"),
            index,
            size,
            *root,
            *leaf,
            p,
        ));
    }
    if !proof.is_empty() {
        probes.push((
            "removed component".into(),
            index,
            size,
            *root,
            *leaf,
            proof[..proof.len() - 1].to_vec(),
        ));
    }
    if proof.len() > 1 {
        let mut p = vec![proof[0], some];
        p.extend_from_slice(&proof[1..]);
        probes.push(("inserted component".into(), index, size, *root, *leaf, p));
    }
    for (desc, index, size, root, leaf, proof) in probes {
        assert!(
            merkle::verify_inclusion(&H, index, size, &leaf, &proof, &root).is_err(),
            "inclusion probe {desc:?} verified"
        );
    }
}

/// `corruptConsistencyProof` in proof/verify_test.go: each probe must fail.
fn assert_probes_fail_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) {
    let wrong = H.hash_leaf(b"WrongRoot");
    let with = |front: Option<Hash>, back: Option<Hash>| -> Vec<Hash> {
        front
            .into_iter()
            .chain(proof.iter().copied())
            .chain(back)
            .collect()
    };
    let (r1, r2, p) = (*root1, *root2, proof.to_vec());
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        ("size1 - 1".into(), size1 - 1, size2, r1, r2, p.clone()),
        ("size1 + 1".into(), size1 + 1, size2, r1, r2, p.clone()),
        ("size1 ^ 2".into(), size1 ^ 2, size2, r1, r2, p.clone()),
        ("size2 * 2".into(), size1, size2 * 2, r1, r2, p.clone()),
        ("size2 / 2".into(), size1, size2 / 2, r1, r2, p.clone()),
        ("wrong root1".into(), size1, size2, wrong, r2, p.clone()),
        ("wrong root2".into(), size1, size2, r1, wrong, p.clone()),
        ("swapped roots".into(), size1, size2, r2, r1, p),
        ("empty proof".into(), size1, size2, r1, r2, vec![]),
        (
            "trailing garbage".into(),
            size1,
            size2,
            r1,
            r2,
            with(None, Some(Hash::ZERO)),
        ),
        (
            "trailing root1".into(),
            size1,
            size2,
            r1,
            r2,
            with(None, Some(r1)),
        ),
        (
            "trailing root2".into(),
            size1,
            size2,
            r1,
            r2,
            with(None, Some(r2)),
        ),
        (
            "preceding garbage".into(),
            size1,
            size2,
            r1,
            r2,
            with(Some(Hash::ZERO), None),
        ),
        (
            "preceding root1".into(),
            size1,
            size2,
            r1,
            r2,
            with(Some(r1), None),
        ),
        (
            "preceding root2".into(),
            size1,
            size2,
            r1,
            r2,
            with(Some(r2), None),
        ),
        (
            "preceding proof[0]".into(),
            size1,
            size2,
            r1,
            r2,
            with(Some(proof[0]), None),
        ),
        (
            "truncated proof".into(),
            size1,
            size2,
            r1,
            r2,
            proof[..proof.len() - 1].to_vec(),
        ),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[0] ^= 16;
        probes.push((
            format!("modified proof[{i}] bit 4"),
            size1,
            size2,
            r1,
            r2,
            p,
        ));
    }
    for (desc, size1, size2, root1, root2, proof) in probes {
        assert!(
            merkle::verify_consistency(&H, size1, size2, &proof, &root1, &root2).is_err(),
            "consistency probe {desc:?} from {size1} to {size2} verified"
        );
    }
}

#[test]
fn verify_inclusion_edge_cases() {
    // `TestVerifyInclusionSingleEntry`: in a 1-leaf tree the root is the leaf hash, the proof empty.
    let leaf = H.hash_leaf(b"data");
    merkle::verify_inclusion(&H, 0, 1, &leaf, &[], &leaf).unwrap();
    assert!(merkle::verify_inclusion(&H, 0, 1, &leaf, &[], &Hash::ZERO).is_err());
    assert!(merkle::verify_inclusion(&H, 0, 1, &Hash::ZERO, &[], &leaf).is_err());

    // `TestVerifyInclusion`: impossible index/size pairs fail whatever the hashes.
    let (some, empty) = (h(SOME_HASH), h(EMPTY_ROOT));
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        for (leaf, root) in [(some, Hash::ZERO), (Hash::ZERO, empty), (some, empty)] {
            assert!(
                merkle::verify_inclusion(&H, index, size, &leaf, &[], &root).is_err(),
                "{index} {size}"
            );
        }
    }
    // The preconditions are reported as such.
    assert_eq!(
        merkle::verify_inclusion(&H, 1, 0, &some, &[], &empty),
        Err(MerkleError::IndexOutOfRange { index: 1, size: 0 })
    );
    assert_eq!(
        merkle::verify_inclusion(&H, 0, 8, &some, &[], &empty),
        Err(MerkleError::WrongProofSize {
            expected: 3,
            got: 0
        })
    );
    assert_eq!(
        merkle::verify_inclusion(&H, 0, 1, &some, &[], &empty),
        Err(MerkleError::RootMismatch {
            expected: empty,
            computed: some
        })
    );
}

#[test]
fn verify_consistency_edge_cases() {
    // `TestVerifyConsistency` in proof/verify_test.go, with "don't care" roots.
    let r1 = H.hash_leaf(b"don't care 1");
    let r2 = H.hash_leaf(b"don't care 2");
    let empty = h(EMPTY_ROOT);
    let cases: [(u64, u64, Hash, Hash, Vec<Hash>, bool); 12] = [
        (0, 0, r1, r2, vec![], false),
        (1, 1, r1, r2, vec![], false),
        // Sizes that are always consistent.
        (0, 0, r1, r1, vec![], true),
        (1, 1, r2, r2, vec![], true),
        // Time travel to the past.
        (1, 0, r1, r2, vec![], false),
        (2, 1, r1, r2, vec![], false),
        // Empty proof.
        (1, 2, r1, r2, vec![], false),
        // Roots don't match.
        (0, 0, empty, r2, vec![], false),
        (1, 1, empty, r2, vec![], false),
        // Roots match but the proof is not empty.
        (0, 0, empty, empty, vec![empty], false),
        (0, 1, empty, empty, vec![empty], false),
        (1, 1, empty, empty, vec![empty], false),
    ];
    for (size1, size2, root1, root2, proof, ok) in cases {
        let res = merkle::verify_consistency(&H, size1, size2, &proof, &root1, &root2);
        assert_eq!(res.is_ok(), ok, "{size1} to {size2}: {res:?}");
    }
    // Go accepts (0, 1) with any root1; we also require root1 to be the empty root.
    merkle::verify_consistency(&H, 0, 1, &[], &empty, &r2).unwrap();
    assert!(merkle::verify_consistency(&H, 0, 1, &[], &r1, &r2).is_err());
    assert_eq!(merkle::consistency_proof(&H, &leaves(), 0, 5), Ok(vec![]));
    assert_eq!(
        merkle::root_from_consistency_proof(&H, 0, 5, &[], &empty),
        Err(MerkleError::ConsistencyFromEmpty { size2: 5 })
    );
    assert_eq!(
        merkle::verify_consistency(&H, 2, 1, &[], &r1, &r2),
        Err(MerkleError::SizeOrder { size1: 2, size2: 1 })
    );
    assert_eq!(
        merkle::consistency_proof(&H, &leaves(), 3, 2),
        Err(MerkleError::SizeOrder { size1: 3, size2: 2 })
    );
}

/// testonly/vectors_test.go: the tree D with `d[i] = [i]` for i < 130.
fn vector_tree() -> Vec<Hash> {
    (0u8..130).map(|i| H.hash_leaf(&[i])).collect()
}

/// `isSubtreeValid` in testonly/tree.go: `[start, end)` is a node of some tree when `start` is a
/// multiple of `bit_ceil(end - start)`.
fn subtree_valid(start: u64, end: u64) -> bool {
    start < end && (start == 0 || start % (end - start).next_power_of_two() == 0)
}

#[test]
fn draft_subtree_hash_vector() {
    // `TestSubtreeHashVectors`: SHA-256 over lines "[start, end) <hash>\n". A valid subtree
    // `[start, end)` hashes like a tree of its own leaves.
    let d = vector_tree();
    let mut lines = String::new();
    for end in 1..=130u64 {
        for start in 0..end {
            if subtree_valid(start, end) {
                let sub = &d[start as usize..end as usize];
                let hash = merkle::root(&H, sub, end - start).unwrap();
                writeln!(lines, "[{start}, {end}) {hash}").unwrap();
            }
        }
    }
    assert_eq!(
        hex::encode(Sha256::digest(lines.as_bytes())),
        "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"
    );
}

#[test]
fn draft_subtree_inclusion_proof_vector() {
    // `TestSubtreeInclusionProofVectors`: SHA-256 over lines "index [start, end) <h1> <h2>...\n",
    // where the proof of `index` in `[start, end)` is PATH(index - start, D[start:end]).
    let d = vector_tree();
    let mut lines = String::new();
    for end in 1..=130u64 {
        for start in 0..end {
            if !subtree_valid(start, end) {
                continue;
            }
            let sub = &d[start as usize..end as usize];
            for index in start..end {
                let path = merkle::inclusion_proof(&H, sub, index - start, end - start).unwrap();
                write!(lines, "{index} [{start}, {end})").unwrap();
                for hash in &path {
                    write!(lines, " {hash}").unwrap();
                }
                lines.push('\n');
            }
        }
    }
    assert_eq!(
        hex::encode(Sha256::digest(lines.as_bytes())),
        "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"
    );
}
