//! Fixtures for tests, benchmarks and fuzzers (the `test-util` feature): one coalition genesis
//! with deterministic partner keys, so every test starts from the same, readable setup.
//!
//! ```
//! use coalition_core::test_util::test_genesis;
//! let (genesis, keys) = test_genesis(4);
//! assert_eq!(genesis.quorum(), 3);
//! assert_eq!(genesis.partners[2].id.0, keys[2].public());
//! ```
//!
//! Tests that need other parameters change the fields they care about
//! (`Genesis { epoch_secs: 10, ..genesis }`); tests that bring their own keys use [`genesis_for`].

// Fixtures, never in a node: a fixture that cannot be built is a failed test, so it may panic.
#![allow(clippy::panic)]

use crate::crypto::{Keypair, PublicKey};
use crate::genesis::{Genesis, GenesisPartner, PointValue};
use crate::hash::Hash;
use crate::record::{
    Epoch, LotSpend, MemberId, PartnerId, Points, RedeemOrder, SignedOrder, Timestamp,
};
use crate::settlement::{compute_statement, EpochActivity, Redemption, SettlementStatement};
use crate::state::{Lot, Spend};
use std::collections::BTreeMap;

/// The key of test partner `i`: the same in every run (seed `[i + 1; 32]`, wrapping after 255).
pub fn partner_key(i: usize) -> Keypair {
    let seed = u8::try_from(i % 255).unwrap_or(0).wrapping_add(1);
    Keypair::from_secret_bytes(&[seed; 32])
}

/// A valid genesis of `n` partners named `p0`, `p1`, … with [`partner_key`]s: epoch 0 starts at
/// time 0, epochs of 60 s, a point worth one cent, no fee, 300 s of allowed clock skew.
pub fn test_genesis(n: usize) -> (Genesis, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..n).map(partner_key).collect();
    let ids: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
    (genesis_for(&ids), keys)
}

/// [`test_genesis`] for the partner keys given, in that order.
pub fn genesis_for(keys: &[PublicKey]) -> Genesis {
    Genesis {
        coalition: "test".into(),
        genesis_time: 0,
        epoch_secs: 60,
        partners: keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisPartner {
                name: format!("p{i}"),
                id: PartnerId(*k),
                settlement_account: format!("acct-{i}"),
            })
            .collect(),
        fault_tolerance: None,
        point_value: PointValue {
            minor_units: 1,
            per_points: 1,
        },
        currency: "EUR".into(),
        fee_bps: 0,
        max_clock_skew_secs: 300,
    }
}

/// A lot of `points` with `remaining` left (the difference spent at partner key `[2; 32]` in epoch
/// 2), expiring at `expires_at`, issued by partner key `[1; 32]` to a fresh member; its id is
/// `[id; 32]`.
pub fn test_lot(id: u8, points: Points, remaining: Points, expires_at: Timestamp) -> Lot {
    Lot {
        id: Hash([id; 32]),
        issuer: PartnerId(PublicKey([1; 32])),
        member: MemberId(Keypair::generate().public()),
        points,
        remaining,
        expires_at,
        issued_epoch: 0,
        spends: vec![test_spend(2, points.saturating_sub(remaining))],
    }
}

/// A spend of `points` in `epoch` at partner key `[2; 32]`.
pub fn test_spend(epoch: Epoch, points: Points) -> Spend {
    Spend {
        epoch,
        redeemer: PartnerId(PublicKey([2; 32])),
        points,
    }
}

/// A member-signed order at sequence 0 and time `time`, spending `lots` at `redeemer`, its points
/// the sum of the lots' (wrapping, so tests can build overflowing orders).
pub fn test_order(
    redeemer: PartnerId,
    member: &Keypair,
    lots: Vec<(Hash, Points)>,
    time: Timestamp,
) -> SignedOrder {
    RedeemOrder {
        member: MemberId(member.public()),
        member_seq: 0,
        redeemer,
        points: lots.iter().fold(0u64, |a, l| a.wrapping_add(l.1)),
        lots: lots
            .into_iter()
            .map(|(lot, points)| LotSpend { lot, points })
            .collect(),
        time,
    }
    .sign(member)
}

/// The hand-worked settlement example, every number written out:
///
/// ```text
/// Four partners in genesis order: Café (0), Bookshop (1), Cinema (2), Fuel (3).
/// One point is worth one cent (1 minor unit per 1 point); the fee is 250 bps = 2.5 %, rounded down.
///
/// Epoch 0: issued Café 8000, Bookshop 5000, Cinema 2000, Fuel 4000; 100 Cinema points expired.
///          → outstanding 8000 / 5000 / 1900 / 4000.
/// Epoch 1: issued Café 2000, Bookshop 1000, Cinema 1000, Fuel 1000; expired Café 200, Fuel 300;
///          100 of Cinema's expired points were redeemed late (restored 100). Redemptions:
///            Café's points     at Bookshop 4000, at Cinema 600 + 400 (two lots), at Café 500 (own)
///            Bookshop's points at Café 2000, at Fuel 3000
///            Cinema's points   at Fuel 800
///            Fuel's points     at Café 1500, at Cinema 700
///
///   cell                points  money  fee ⌊m/40⌋  owed
///   Café → Bookshop       4000   4000     100      3900
///   Café → Cinema         1000   1000      25       975
///   Bookshop → Café       2000   2000      50      1950
///   Bookshop → Fuel       3000   3000      75      2925
///   Cinema → Fuel          800    800      20       780
///   Fuel → Café           1500   1500      37      1463   (37.5 rounds down)
///   Fuel → Cinema          700    700      17       683   (17.5 rounds down)
///
///   partner    received             paid                 net
///   Café       1950+1463 = 3413     3900+975  = 4875     −1462
///   Bookshop   3900                 1950+2925 = 4875      −975
///   Cinema     975+683   = 1658     780                   +878
///   Fuel       2925+780  = 3705     1463+683  = 2146     +1559      (sum 0)
///
///   Netting: Café (−1462) pays Fuel (+1559) 1462 → Fuel +97;
///            Bookshop (−975) pays Cinema (+878) 878 → Bookshop −97;
///            Bookshop pays Fuel 97. Three transfers = n − 1; 24.37 EUR settles 126.76 EUR gross.
///
///   outstanding: Café 8000+2000−5500−200 = 4300; Bookshop 5000+1000−5000 = 1000;
///                Cinema 1900+1000−800+100 = 2200; Fuel 4000+1000−2200−300 = 2500.
/// ```
pub fn high_street() -> Genesis {
    let names = ["Café", "Bookshop", "Cinema", "Fuel"];
    let partners = names
        .iter()
        .zip(1u8..)
        .map(|(name, seed)| GenesisPartner {
            name: (*name).into(),
            id: PartnerId(Keypair::from_secret_bytes(&[seed; 32]).public()),
            settlement_account: format!("ACCT-{seed}"),
        })
        .collect();
    Genesis {
        coalition: "High Street".into(),
        genesis_time: 1_700_000_000,
        epoch_secs: 86_400,
        partners,
        fee_bps: 250,
        ..genesis_for(&[])
    }
}

/// The [`high_street`] coalition's statements of epochs 0 and 1.
pub fn high_street_epochs() -> (Genesis, SettlementStatement, SettlementStatement) {
    let g = high_street();
    let id = |i: usize| {
        g.partners
            .get(i)
            .map_or(PartnerId(PublicKey([0; 32])), |p| p.id)
    };
    let (cafe, book, cinema, fuel) = (id(0), id(1), id(2), id(3));
    let map = |entries: &[(PartnerId, Points)]| -> BTreeMap<PartnerId, Points> {
        entries.iter().copied().collect()
    };
    let e0 = EpochActivity {
        epoch: 0,
        redemptions: vec![],
        issued: map(&[(cafe, 8000), (book, 5000), (cinema, 2000), (fuel, 4000)]),
        expired: map(&[(cinema, 100)]),
        restored: BTreeMap::new(),
    };
    let r = |issuer, redeemer, points| Redemption {
        issuer,
        redeemer,
        points,
    };
    let e1 = EpochActivity {
        epoch: 1,
        redemptions: vec![
            r(cafe, book, 4000),
            r(cafe, cinema, 600),
            r(cafe, cinema, 400),
            r(cafe, cafe, 500),
            r(book, cafe, 2000),
            r(book, fuel, 3000),
            r(cinema, fuel, 800),
            r(fuel, cafe, 1500),
            r(fuel, cinema, 700),
        ],
        issued: map(&[(cafe, 2000), (book, 1000), (cinema, 1000), (fuel, 1000)]),
        expired: map(&[(cafe, 200), (fuel, 300)]),
        restored: map(&[(cinema, 100)]),
    };
    // The example is valid by construction; a failure here is a bug in the settlement code, which
    // the tests using this fixture are there to catch.
    let s0 = compute_statement(&g, &e0, None).unwrap_or_else(|e| panic!("epoch 0: {e}"));
    let s1 = compute_statement(&g, &e1, Some(&s0)).unwrap_or_else(|e| panic!("epoch 1: {e}"));
    (g, s0, s1)
}
