//! Properties of the Merkle tree with the protocol hasher: at every size up to 300, every proof the
//! slice functions give verifies, equals the RFC 9162 §2.1 recursive definition, and every corrupted
//! variant of it (the probe list of transparency-dev/merkle `cmd/proofgen`) fails; the frontier
//! agrees with the slice root; verification of arbitrary input returns an error, never panics.

use coalition_core::hash::Hash;
use coalition_core::merkle::{
    self, Blake3Hasher, ConsistencyProof, InclusionProof, MerkleError, MerkleFrontier, MerkleHasher,
};
use proptest::prelude::*;

const H: Blake3Hasher = Blake3Hasher;
/// Every size, index and pair of sizes up to this one is checked, with the full corruption list.
const MAX: u64 = 300;

fn det_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| H.hash_leaf(&i.to_le_bytes())).collect()
}

// --- The RFC 9162 §2.1 definitions, written as plainly as possible -------------------------------

fn k_of(n: usize) -> usize {
    // The largest power of two smaller than n (n >= 2).
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_root(d: &[Hash]) -> Hash {
    match d.len() {
        0 => H.empty_root(),
        1 => d[0],
        n => {
            let k = k_of(n);
            H.hash_children(&ref_root(&d[..k]), &ref_root(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    let (mut p, sibling) = if m < k {
        (ref_path(m, &d[..k]), ref_root(&d[k..]))
    } else {
        (ref_path(m - k, &d[k..]), ref_root(&d[..k]))
    };
    p.push(sibling);
    p
}

fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![ref_root(d)] };
    }
    let k = k_of(n);
    let (mut p, node) = if m <= k {
        (ref_subproof(m, &d[..k], b), ref_root(&d[k..]))
    } else {
        (ref_subproof(m - k, &d[k..], false), ref_root(&d[..k]))
    };
    p.push(node);
    p
}

// --- Corrupted probes, as in transparency-dev/merkle cmd/proofgen ---------------------------------

/// Arbitrary hashes that are no node of any test tree.
fn some_hash() -> Hash {
    Hash([0xab; 32])
}

fn with(proof: &[Hash], front: Option<Hash>, back: Option<Hash>) -> Vec<Hash> {
    front
        .into_iter()
        .chain(proof.iter().copied())
        .chain(back)
        .collect()
}

/// Every corrupted variant of a valid inclusion proof must fail.
fn check_inclusion_probes(index: u64, size: u64, proof: &[Hash], root: Hash, leaf: Hash) {
    let p = || proof.to_vec();
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        (
            "index - 1".into(),
            index.wrapping_sub(1),
            size,
            root,
            leaf,
            p(),
        ),
        ("index + 1".into(), index + 1, size, root, leaf, p()),
        ("index ^ 2".into(), index ^ 2, size, root, leaf, p()),
        ("size * 2".into(), index, size * 2, root, leaf, p()),
        ("size / 2".into(), index, size / 2, root, leaf, p()),
        (
            "wrong leaf".into(),
            index,
            size,
            root,
            H.hash_leaf(b"WrongLeaf"),
            p(),
        ),
        ("empty root".into(), index, size, H.empty_root(), leaf, p()),
        ("random root".into(), index, size, some_hash(), leaf, p()),
        (
            "trailing garbage".into(),
            index,
            size,
            root,
            leaf,
            with(proof, None, Some(Hash::ZERO)),
        ),
        (
            "trailing root".into(),
            index,
            size,
            root,
            leaf,
            with(proof, None, Some(root)),
        ),
        (
            "preceding garbage".into(),
            index,
            size,
            root,
            leaf,
            with(proof, Some(Hash::ZERO), None),
        ),
        (
            "preceding root".into(),
            index,
            size,
            root,
            leaf,
            with(proof, Some(root), None),
        ),
    ];
    for i in 0..proof.len() {
        let mut q = p();
        q[i].0[0] ^= 8;
        probes.push((
            format!("modified proof[{i}] bit 3"),
            index,
            size,
            root,
            leaf,
            q,
        ));
    }
    if let Some((_, init)) = proof.split_last() {
        probes.push((
            "removed component".into(),
            index,
            size,
            root,
            leaf,
            init.to_vec(),
        ));
    }
    if proof.len() > 1 {
        let mut q = vec![proof[0], some_hash()];
        q.extend_from_slice(&proof[1..]);
        probes.push(("inserted component".into(), index, size, root, leaf, q));
    }
    for (desc, index, size, root, leaf, proof) in probes {
        assert!(
            merkle::verify_inclusion(&H, index, size, &leaf, &proof, &root).is_err(),
            "inclusion probe {desc:?} (index {index}, size {size}) verified"
        );
    }
}

/// Every corrupted variant of a valid, non-empty consistency proof must fail.
fn check_consistency_probes(size1: u64, size2: u64, proof: &[Hash], r1: Hash, r2: Hash) {
    let p = || proof.to_vec();
    let wrong = H.hash_leaf(b"WrongRoot");
    let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
        ("size1 - 1".into(), size1 - 1, size2, r1, r2, p()),
        ("size1 + 1".into(), size1 + 1, size2, r1, r2, p()),
        ("size1 ^ 2".into(), size1 ^ 2, size2, r1, r2, p()),
        ("size2 * 2".into(), size1, size2 * 2, r1, r2, p()),
        ("size2 / 2".into(), size1, size2 / 2, r1, r2, p()),
        ("wrong root1".into(), size1, size2, wrong, r2, p()),
        ("wrong root2".into(), size1, size2, r1, wrong, p()),
        ("empty root1".into(), size1, size2, H.empty_root(), r2, p()),
        ("empty root2".into(), size1, size2, r1, H.empty_root(), p()),
        ("swapped roots".into(), size1, size2, r2, r1, p()),
        ("empty proof".into(), size1, size2, r1, r2, vec![]),
        (
            "trailing garbage".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, None, Some(Hash::ZERO)),
        ),
        (
            "trailing root1".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, None, Some(r1)),
        ),
        (
            "trailing root2".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, None, Some(r2)),
        ),
        (
            "preceding garbage".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, Some(Hash::ZERO), None),
        ),
        (
            "preceding root1".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, Some(r1), None),
        ),
        (
            "preceding root2".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, Some(r2), None),
        ),
        (
            "preceding proof[0]".into(),
            size1,
            size2,
            r1,
            r2,
            with(proof, Some(proof[0]), None),
        ),
    ];
    if let Some((_, init)) = proof.split_last() {
        probes.push((
            "truncated proof".into(),
            size1,
            size2,
            r1,
            r2,
            init.to_vec(),
        ));
    }
    for i in 0..proof.len() {
        let mut q = p();
        q[i].0[0] ^= 16;
        probes.push((
            format!("modified proof[{i}] bit 4"),
            size1,
            size2,
            r1,
            r2,
            q,
        ));
    }
    for (desc, s1, s2, root1, root2, proof) in probes {
        assert!(
            merkle::verify_consistency(&H, s1, s2, &proof, &root1, &root2).is_err(),
            "consistency probe {desc:?} ({size1} to {size2}) verified"
        );
    }
}

// --- Exhaustive checks over a deterministic tree --------------------------------------------------

#[test]
fn frontier_root_equals_slice_root_at_every_size() {
    let leaves = det_leaves(MAX);
    let mut frontier = MerkleFrontier::<Blake3Hasher>::new();
    assert_eq!(frontier.root(), H.empty_root());
    assert_eq!(merkle::root(&H, &leaves, 0).unwrap(), H.empty_root());
    for (i, leaf) in leaves.iter().enumerate() {
        frontier.push(*leaf).unwrap();
        let size = i as u64 + 1;
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.nodes().len(), size.count_ones() as usize);
        assert_eq!(
            frontier.root(),
            merkle::root(&H, &leaves, size).unwrap(),
            "size {size}"
        );
        if size <= 64 {
            assert_eq!(frontier.root(), ref_root(&leaves[..i + 1]), "size {size}");
        }
    }
    let rebuilt = MerkleFrontier::from_leaves(H, &leaves, MAX).unwrap();
    assert_eq!(rebuilt, frontier);
}

#[test]
fn every_inclusion_proof_verifies_and_every_probe_fails() {
    let leaves = det_leaves(MAX);
    for size in 1..=MAX {
        let root = merkle::root(&H, &leaves, size).unwrap();
        for index in 0..size {
            let leaf = leaves[index as usize];
            let proof = merkle::inclusion_proof(&H, &leaves, index, size).unwrap();
            if size <= 64 {
                assert_eq!(
                    proof,
                    ref_path(index as usize, &leaves[..size as usize]),
                    "{index} in {size}"
                );
            }
            merkle::verify_inclusion(&H, index, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("{index} in {size}: {e}"));
            check_inclusion_probes(index, size, &proof, root, leaf);
        }
        assert_eq!(
            merkle::inclusion_proof(&H, &leaves, size, size),
            Err(MerkleError::IndexOutOfRange { index: size, size })
        );
    }
}

#[test]
fn every_consistency_proof_verifies_and_every_probe_fails() {
    let leaves = det_leaves(MAX);
    let roots: Vec<Hash> = (0..=MAX)
        .map(|s| merkle::root(&H, &leaves, s).unwrap())
        .collect();
    for size2 in 1..=MAX {
        let root2 = roots[size2 as usize];
        for size1 in 1..=size2 {
            let root1 = roots[size1 as usize];
            let proof = merkle::consistency_proof(&H, &leaves, size1, size2).unwrap();
            if size2 <= 64 && size1 < size2 {
                assert_eq!(
                    proof,
                    ref_subproof(size1 as usize, &leaves[..size2 as usize], true),
                    "{size1} to {size2}"
                );
            }
            merkle::verify_consistency(&H, size1, size2, &proof, &root1, &root2)
                .unwrap_or_else(|e| panic!("{size1} to {size2}: {e}"));
            assert_eq!(proof.is_empty(), size1 == size2);
            if !proof.is_empty() {
                check_consistency_probes(size1, size2, &proof, root1, root2);
            }
        }
        // From the empty tree: an empty proof, accepted against the empty root only.
        assert_eq!(merkle::consistency_proof(&H, &leaves, 0, size2), Ok(vec![]));
        merkle::verify_consistency(&H, 0, size2, &[], &roots[0], &root2).unwrap();
        assert!(merkle::verify_consistency(&H, 0, size2, &[], &root2, &root2).is_err());
    }
}

#[test]
fn sizes_beyond_the_leaves_are_errors() {
    let leaves = det_leaves(10);
    let beyond = MerkleError::SizeBeyondLeaves {
        size: 11,
        available: 10,
    };
    assert_eq!(merkle::root(&H, &leaves, 11), Err(beyond.clone()));
    assert_eq!(
        merkle::inclusion_proof(&H, &leaves, 0, 11),
        Err(beyond.clone())
    );
    assert_eq!(merkle::consistency_proof(&H, &leaves, 1, 11), Err(beyond));
    assert_eq!(
        merkle::root(&H, &leaves, u64::MAX).unwrap_err(),
        MerkleError::SizeBeyondLeaves {
            size: u64::MAX,
            available: 10
        }
    );
    assert!(MerkleFrontier::from_leaves(H, &leaves, 11).is_err());
}

// --- The frontier as stored data -------------------------------------------------------------------

#[test]
fn frontier_serde_round_trip_and_validation() {
    let leaves = det_leaves(13);
    let frontier = MerkleFrontier::from_leaves(H, &leaves, 13).unwrap();
    let json = serde_json::to_string(&frontier).unwrap();
    let back: MerkleFrontier = serde_json::from_str(&json).unwrap();
    assert_eq!(back, frontier);
    assert_eq!(back.root(), merkle::root(&H, &leaves, 13).unwrap());

    // 13 = 0b1101 needs three subtree roots.
    let mut parts: serde_json::Value = serde_json::from_str(&json).unwrap();
    parts["nodes"].as_array_mut().unwrap().pop();
    let err = serde_json::from_value::<MerkleFrontier>(parts).unwrap_err();
    assert!(err.to_string().contains("malformed frontier"), "{err}");
    assert_eq!(
        MerkleFrontier::from_parts(H, 13, vec![Hash::ZERO; 2]),
        Err(MerkleError::MalformedFrontier {
            size: 13,
            expected: 3,
            got: 2
        })
    );

    // A full tree refuses another leaf instead of wrapping around.
    let mut full = MerkleFrontier::from_parts(H, u64::MAX, vec![Hash::ZERO; 64]).unwrap();
    assert_eq!(
        full.push(Hash::ZERO),
        Err(MerkleError::TreeFull { size: u64::MAX })
    );
    assert_eq!(full.size(), u64::MAX);
}

#[test]
fn proof_values_round_trip_and_verify() {
    let leaves = det_leaves(21);
    let root = merkle::root(&H, &leaves, 21).unwrap();
    let incl = InclusionProof::from_leaves(&H, &leaves, 17, 21).unwrap();
    let back: InclusionProof =
        serde_json::from_str(&serde_json::to_string(&incl).unwrap()).unwrap();
    assert_eq!(back, incl);
    back.verify(&H, &leaves[17], &root).unwrap();
    assert_eq!(back.root(&H, &leaves[17]), Ok(root));
    assert!(back.verify(&H, &leaves[16], &root).is_err());

    let old = merkle::root(&H, &leaves, 6).unwrap();
    let cons = ConsistencyProof::from_leaves(&H, &leaves, 6, 21).unwrap();
    let back: ConsistencyProof =
        serde_json::from_str(&serde_json::to_string(&cons).unwrap()).unwrap();
    assert_eq!(back, cons);
    back.verify(&H, &old, &root).unwrap();
    assert!(back.verify(&H, &root, &old).is_err());
}

#[test]
fn huge_sizes_are_checked_not_overflowed() {
    let leaf = H.hash_leaf(b"x");
    let long = vec![Hash::ZERO; 130];
    for (index, size) in [
        (u64::MAX - 1, u64::MAX),
        (0, u64::MAX),
        (u64::MAX, u64::MAX),
        (1 << 63, u64::MAX),
    ] {
        for len in [0, 63, 64, 65, 128, 130] {
            let proof = &long[..len];
            assert!(merkle::verify_inclusion(&H, index, size, &leaf, proof, &leaf).is_err());
        }
    }
    for (size1, size2) in [
        (1, u64::MAX),
        (u64::MAX - 1, u64::MAX),
        (1 << 63, u64::MAX),
        (3, 1 << 63),
    ] {
        for len in [0, 1, 63, 64, 65, 128, 130] {
            let proof = &long[..len];
            assert!(merkle::verify_consistency(&H, size1, size2, proof, &leaf, &leaf).is_err());
        }
    }
}

// --- Random leaf contents ----------------------------------------------------------------------------

fn leaf_data(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..=max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// For random leaves, a random inclusion and a random consistency proof verify, match the RFC
    /// definition, and their corrupted variants fail; the frontier agrees with the slice root.
    #[test]
    fn random_trees(data in leaf_data(MAX as usize), a in any::<u64>(), b in any::<u64>()) {
        // Distinct leaves: with two equal neighbours a proof rightly verifies at either index, which
        // the probes below would take for a forgery (random data repeats, e.g. empty leaves).
        let leaves: Vec<Hash> = data
            .iter()
            .enumerate()
            .map(|(i, d)| H.hash_leaf(&[&(i as u64).to_le_bytes()[..], d].concat()))
            .collect();
        let size = leaves.len() as u64;
        let root = merkle::root(&H, &leaves, size).unwrap();
        prop_assert_eq!(root, ref_root(&leaves));
        let mut frontier = MerkleFrontier::<Blake3Hasher>::new();
        for leaf in &leaves {
            frontier.push(*leaf).unwrap();
        }
        prop_assert_eq!(frontier.root(), root);

        let index = a % size;
        let proof = merkle::inclusion_proof(&H, &leaves, index, size).unwrap();
        prop_assert_eq!(&proof, &ref_path(index as usize, &leaves));
        merkle::verify_inclusion(&H, index, size, &leaves[index as usize], &proof, &root).unwrap();
        check_inclusion_probes(index, size, &proof, root, leaves[index as usize]);

        let size1 = b % size + 1;
        let root1 = merkle::root(&H, &leaves, size1).unwrap();
        let proof = merkle::consistency_proof(&H, &leaves, size1, size).unwrap();
        if size1 < size {
            prop_assert_eq!(&proof, &ref_subproof(size1 as usize, &leaves, true));
            check_consistency_probes(size1, size, &proof, root1, root);
        }
        merkle::verify_consistency(&H, size1, size, &proof, &root1, &root).unwrap();
    }

    /// Arbitrary indices, sizes and proofs: verification returns, it never panics, and a proof of the
    /// wrong length is rejected as such before any hashing.
    #[test]
    fn arbitrary_input_never_panics(
        index in prop_oneof![any::<u64>(), 0..1000u64, Just(u64::MAX), Just(u64::MAX - 1)],
        size in prop_oneof![any::<u64>(), 0..1000u64, Just(u64::MAX), Just(1u64 << 63)],
        len in 0usize..140,
        seed in any::<u8>(),
    ) {
        let proof: Vec<Hash> = (0..len).map(|i| Hash([seed ^ i as u8; 32])).collect();
        let leaf = Hash([seed; 32]);
        let _ = merkle::verify_inclusion(&H, index, size, &leaf, &proof, &leaf);
        let _ = merkle::root_from_inclusion_proof(&H, index, size, &leaf, &proof);
        let _ = merkle::verify_consistency(&H, index, size, &proof, &leaf, &leaf);
        let _ = merkle::root_from_consistency_proof(&H, index, size, &proof, &leaf);
        if len > 129 {
            let too_long = matches!(
                merkle::verify_inclusion(&H, index, size, &leaf, &proof, &leaf),
                Err(MerkleError::WrongProofSize { .. } | MerkleError::IndexOutOfRange { .. })
            );
            prop_assert!(too_long);
        }
    }
}

/// The size the brief sets for a node's log: proofs over 200,000 stored leaf hashes. Run with
/// `cargo test --release -p coalition-core --test merkle_props -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run by hand in release"]
fn large_log_timing() {
    use std::time::Instant;
    let n = 200_000u64;
    let leaves = det_leaves(n);
    let t = Instant::now();
    let root = merkle::root(&H, &leaves, n).unwrap();
    println!("root of {n}: {:?}", t.elapsed());
    let t = Instant::now();
    let proof = merkle::inclusion_proof(&H, &leaves, 123_456, n).unwrap();
    println!("inclusion proof: {:?}", t.elapsed());
    merkle::verify_inclusion(&H, 123_456, n, &leaves[123_456], &proof, &root).unwrap();
    let t = Instant::now();
    let proof = merkle::consistency_proof(&H, &leaves, 150_001, n).unwrap();
    println!("consistency proof: {:?}", t.elapsed());
    let root1 = merkle::root(&H, &leaves, 150_001).unwrap();
    merkle::verify_consistency(&H, 150_001, n, &proof, &root1, &root).unwrap();
    let t = Instant::now();
    let mut frontier = MerkleFrontier::<Blake3Hasher>::new();
    for leaf in &leaves {
        frontier.push(*leaf).unwrap();
    }
    assert_eq!(frontier.root(), root);
    println!("frontier of {n}: {:?}", t.elapsed());
}
