//! Decoding outside bytes never panics: random bytes, and valid encodings with bytes changed,
//! truncated or extended, are either decoded or refused with an error, for every type that arrives
//! from outside (peers, files, order tokens).

use coalition_core::audit::{verify_export, ExportItem, EXPORT_MAGIC};
use coalition_core::checkpoint::{Checkpoint, CheckpointSig, RecordProof, SealedCheckpoint};
use coalition_core::crypto::Keypair;
use coalition_core::encoding::{decode, encode};
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::*;
use coalition_core::settlement::SettlementStatement;
use coalition_core::test_util::test_genesis;
use proptest::prelude::*;

fn try_all(bytes: &[u8]) {
    let _ = decode::<SignedEntry>(bytes);
    let _ = decode::<Entry>(bytes);
    let _ = decode::<Record>(bytes);
    let _ = decode::<SignedOrder>(bytes);
    let _ = decode::<RedeemCert>(bytes);
    let _ = decode::<Vote>(bytes);
    let _ = decode::<Checkpoint>(bytes);
    let _ = decode::<CheckpointSig>(bytes);
    let _ = decode::<SealedCheckpoint>(bytes);
    let _ = decode::<SettlementStatement>(bytes);
    let _ = decode::<RecordProof>(bytes);
    let _ = decode::<ExportItem>(bytes);
}

fn genesis() -> Genesis {
    test_genesis(4).0
}

/// A valid signed entry carrying a certified order, to mutate.
fn sample_entry() -> SignedEntry {
    let partner = Keypair::from_secret_bytes(&[1; 32]);
    let member = Keypair::from_secret_bytes(&[9; 32]);
    let order = RedeemOrder {
        member: MemberId(member.public()),
        member_seq: 3,
        redeemer: PartnerId(partner.public()),
        points: 40,
        lots: vec![LotSpend {
            lot: Hash([5; 32]),
            points: 40,
        }],
        time: 1000,
    }
    .sign(&member);
    let votes = (1..=3u8)
        .map(|b| {
            let v = Vote::sign(order.order.id(), &Keypair::from_secret_bytes(&[b; 32]));
            VoteSig {
                partner: v.partner,
                signature: v.signature,
            }
        })
        .collect();
    Entry {
        partner: PartnerId(partner.public()),
        seq: 7,
        prev: Hash([2; 32]),
        epoch: 1,
        time: 1000,
        record: Record::Redeem(RedeemCert { order, votes }),
    }
    .sign(&partner)
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        try_all(&bytes);
        let mut with_version = vec![1u8];
        with_version.extend_from_slice(&bytes);
        try_all(&with_version);
    }

    #[test]
    fn mutated_encodings_never_panic(
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let good = encode(&sample_entry());
        let mut bad = good.clone();
        for (i, b) in &changes {
            let k = i.index(bad.len());
            bad[k] = *b;
        }
        try_all(&bad);
        try_all(&good[..cut.index(good.len())]);
        let mut longer = good;
        longer.extend_from_slice(&extra);
        if !extra.is_empty() {
            prop_assert!(decode::<SignedEntry>(&longer).is_err(), "trailing bytes accepted");
        }
    }

    #[test]
    fn random_export_files_never_panic(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut file = EXPORT_MAGIC.to_vec();
        file.extend_from_slice(&body);
        let from_file = verify_export(genesis(), &file[..], |_| {});
        prop_assert!(from_file.is_err());
        let from_body = verify_export(genesis(), &body[..], |_| {});
        prop_assert!(from_body.is_err());
    }
}

#[test]
fn a_valid_entry_round_trips() {
    let e = sample_entry();
    assert_eq!(decode::<SignedEntry>(&encode(&e)).ok(), Some(e));
}
