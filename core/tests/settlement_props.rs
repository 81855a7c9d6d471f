//! Properties of epoch settlement: netting never moves a net position, statements are deterministic
//! and independent of input order, outstanding liability carries forward, overflow is an error, and a
//! hand-worked four-partner example with every number written out.

use coalition_core::encoding::encode;
use coalition_core::genesis::{Genesis, PointValue};
use coalition_core::record::{PartnerId, Points};
use coalition_core::settlement::*;
use coalition_core::test_util::{high_street, high_street_epochs, partner_key, test_genesis};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn genesis(n: usize, point_value: PointValue, fee_bps: u32) -> Genesis {
    Genesis {
        point_value,
        fee_bps,
        ..test_genesis(n).0
    }
}

fn ids(g: &Genesis) -> Vec<PartnerId> {
    g.partners.iter().map(|p| p.id).collect()
}

/// Applies the transfers to the net positions: what each partner is left with (all zero if settled).
fn after_transfers(partners: &[PartnerId], net: &[i64], transfers: &[Transfer]) -> Vec<i128> {
    let mut left: Vec<i128> = net.iter().map(|&v| i128::from(v)).collect();
    for t in transfers {
        let from = partners
            .iter()
            .position(|p| *p == t.from)
            .expect("payer is a partner");
        let to = partners
            .iter()
            .position(|p| *p == t.to)
            .expect("payee is a partner");
        left[from] += i128::from(t.amount);
        left[to] -= i128::from(t.amount);
    }
    left
}

/// A random but valid epoch: n partners, redemptions between them (self-redemptions included), and
/// issuance large enough that no outstanding balance goes negative.
#[derive(Debug, Clone)]
struct Case {
    genesis: Genesis,
    activity: EpochActivity,
}

fn activity_for(
    g: &Genesis,
    epoch: u64,
    spends: &[(usize, usize, Points)],
    expired: &[Points],
    restored: &[Points],
    extra: &[Points],
) -> EpochActivity {
    let p = ids(g);
    let redemptions: Vec<Redemption> = spends
        .iter()
        .map(|&(i, r, points)| Redemption {
            issuer: p[i],
            redeemer: p[r],
            points,
        })
        .collect();
    let mut issued = BTreeMap::new();
    let mut exp = BTreeMap::new();
    let mut res = BTreeMap::new();
    for (k, id) in p.iter().enumerate() {
        let redeemed: Points = redemptions
            .iter()
            .filter(|r| r.issuer == *id)
            .map(|r| r.points)
            .sum();
        issued.insert(*id, redeemed + expired[k] + extra[k]);
        if expired[k] > 0 {
            exp.insert(*id, expired[k]);
        }
        if restored[k] > 0 {
            res.insert(*id, restored[k]);
        }
    }
    EpochActivity {
        epoch,
        redemptions,
        issued,
        expired: exp,
        restored: res,
    }
}

fn arb_case() -> impl Strategy<Value = Case> {
    (1usize..=6, 0u32..=10_000, 1u64..=1_000, 1u64..=100)
        .prop_flat_map(|(n, fee, minor, per)| {
            (
                Just(genesis(
                    n,
                    PointValue {
                        minor_units: minor,
                        per_points: per,
                    },
                    fee,
                )),
                prop::collection::vec((0..n, 0..n, 0u64..5_000_000), 0..40),
                prop::collection::vec(0u64..10_000, n),
                prop::collection::vec(0u64..10_000, n),
                prop::collection::vec(0u64..10_000, n),
            )
        })
        .prop_map(|(g, spends, expired, restored, extra)| {
            let activity = activity_for(&g, 0, &spends, &expired, &restored, &extra);
            Case {
                genesis: g,
                activity,
            }
        })
}

/// Net positions that sum to zero.
fn arb_balanced_net() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(-1_000_000_000_000_000i64..1_000_000_000_000_000, 0..10).prop_map(
        |mut v| {
            let sum: i64 = v.iter().sum();
            v.push(-sum);
            v
        },
    )
}

proptest! {
    #[test]
    fn netting_never_changes_a_net_position(net in arb_balanced_net(), small in prop::collection::vec(-3i64..=3, 1..8)) {
        for net in [net, {
            // Small values give many ties.
            let mut s = small;
            let sum: i64 = s.iter().sum();
            s.push(-sum);
            s
        }] {
            let g = genesis(net.len(), PointValue { minor_units: 1, per_points: 1 }, 0);
            let p = ids(&g);
            let transfers = netting(&p, &net).unwrap();
            prop_assert!(after_transfers(&p, &net, &transfers).iter().all(|&v| v == 0));
            prop_assert!(transfers.len() < p.len().max(1));
            for t in &transfers {
                prop_assert!(t.amount > 0);
                prop_assert!(t.from != t.to);
                let (f, to) = (p.iter().position(|x| *x == t.from).unwrap(), p.iter().position(|x| *x == t.to).unwrap());
                prop_assert!(net[f] < 0 && net[to] > 0, "money flows from a debtor to a creditor");
            }
            prop_assert_eq!(&netting(&p, &net).unwrap(), &transfers, "deterministic");
        }
    }

    #[test]
    fn statement_invariants_hold(case in arb_case()) {
        let s = compute_statement(&case.genesis, &case.activity, None).unwrap();
        verify_statement_consistency(&s).unwrap();
        let n = s.partners.len();
        prop_assert_eq!(&s.partners, &ids(&case.genesis));
        prop_assert_eq!(s.net.iter().map(|&v| i128::from(v)).sum::<i128>(), 0);
        prop_assert!(s.transfers.len() < n, "at most n - 1 transfers");
        prop_assert!(after_transfers(&s.partners, &s.net, &s.transfers).iter().all(|&v| v == 0));
        prop_assert_eq!(&netting(&s.partners, &s.net).unwrap(), &s.transfers);
        prop_assert_eq!(&net_positions(&s.partners, &s.gross_money).unwrap(), &s.net);
        for i in 0..n {
            prop_assert_eq!(s.gross_points[i][i], 0);
            prop_assert_eq!(s.gross_money[i][i], 0);
            for j in 0..n {
                let points: Points = case.activity.redemptions.iter()
                    .filter(|r| r.issuer == s.partners[i] && r.redeemer == s.partners[j] && i != j)
                    .map(|r| r.points).sum();
                prop_assert_eq!(s.gross_points[i][j], points);
                let money = case.genesis.money_for_points(points).unwrap();
                let fee = (u128::from(money) * u128::from(s.fee_bps) / 10_000) as u64;
                prop_assert_eq!(s.gross_money[i][j], money - fee);
            }
            let t = &s.per_issuer[i];
            prop_assert_eq!(t.opening, 0);
            prop_assert_eq!(t.outstanding, t.issued - t.redeemed - t.expired + t.restored);
        }
    }

    #[test]
    fn same_input_gives_identical_bytes(case in arb_case()) {
        let a = compute_statement(&case.genesis, &case.activity, None).unwrap();
        let b = compute_statement(&case.genesis.clone(), &case.activity, None).unwrap();
        prop_assert_eq!(encode(&a), encode(&b));
        prop_assert_eq!(a.hash(), b.hash());
        // The JSON form carries the same statement.
        let json = serde_json::to_string(&a).unwrap();
        let back: SettlementStatement = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.hash(), a.hash());
    }

    #[test]
    fn permuting_redemptions_changes_nothing(
        (case, shuffled) in arb_case().prop_flat_map(|c| {
            let r = c.activity.redemptions.clone();
            (Just(c), Just(r).prop_shuffle())
        })
    ) {
        let a = compute_statement(&case.genesis, &case.activity, None).unwrap();
        let mut permuted = case.activity.clone();
        permuted.redemptions = shuffled;
        let b = compute_statement(&case.genesis, &permuted, None).unwrap();
        prop_assert_eq!(encode(&a), encode(&b));
    }

    #[test]
    fn splitting_a_redemption_into_lots_changes_nothing(case in arb_case(), cut in 0u64..=100) {
        // Pricing happens per cell, so how the points were split into lots does not matter.
        let a = compute_statement(&case.genesis, &case.activity, None).unwrap();
        let mut split = case.activity.clone();
        split.redemptions = case.activity.redemptions.iter().flat_map(|r| {
            let first = r.points * cut / 100;
            [Redemption { points: first, ..*r }, Redemption { points: r.points - first, ..*r }]
        }).collect();
        prop_assert_eq!(compute_statement(&case.genesis, &split, None).unwrap(), a);
    }

    #[test]
    fn self_redemptions_owe_nothing(case in arb_case(), extra in prop::collection::vec((0usize..6, 1u64..100_000), 1..10)) {
        let base = compute_statement(&case.genesis, &case.activity, None).unwrap();
        let p = ids(&case.genesis);
        let mut with_self = case.activity.clone();
        let mut added = vec![0u64; p.len()];
        for (i, points) in extra {
            let i = i % p.len();
            with_self.redemptions.push(Redemption { issuer: p[i], redeemer: p[i], points });
            *with_self.issued.get_mut(&p[i]).unwrap() += points;
            added[i] += points;
        }
        let s = compute_statement(&case.genesis, &with_self, None).unwrap();
        prop_assert_eq!(&s.gross_points, &base.gross_points);
        prop_assert_eq!(&s.gross_money, &base.gross_money);
        prop_assert_eq!(&s.net, &base.net);
        prop_assert_eq!(&s.transfers, &base.transfers);
        for (i, added) in added.iter().enumerate() {
            // They are redeemed (no longer a liability) but nobody is paid for them.
            prop_assert_eq!(s.per_issuer[i].redeemed, base.per_issuer[i].redeemed + added);
            prop_assert_eq!(s.per_issuer[i].outstanding, base.per_issuer[i].outstanding);
        }
    }

    #[test]
    fn outstanding_carries_forward(
        n in 1usize..=5,
        epochs in prop::collection::vec(
            (prop::collection::vec((0usize..5, 0usize..5, 0u64..100_000), 0..12),
             prop::collection::vec(0u64..1_000, 5),
             prop::collection::vec(0u64..1_000, 5),
             prop::collection::vec(0u64..1_000, 5)),
            1..6),
    ) {
        let g = genesis(n, PointValue { minor_units: 1, per_points: 1 }, 100);
        let p = ids(&g);
        let mut prev: Option<SettlementStatement> = None;
        let mut cumulative = vec![0i128; n];
        for (e, (spends, expired, restored, extra)) in epochs.into_iter().enumerate() {
            let spends: Vec<_> = spends.into_iter().map(|(i, r, pts)| (i % n, r % n, pts)).collect();
            let a = activity_for(&g, e as u64, &spends, &expired[..n], &restored[..n], &extra[..n]);
            let s = compute_statement(&g, &a, prev.as_ref()).unwrap();
            verify_statement_consistency(&s).unwrap();
            for (k, id) in p.iter().enumerate() {
                let t = &s.per_issuer[k];
                prop_assert_eq!(t.opening, prev.as_ref().map_or(0, |ps| ps.per_issuer[k].outstanding));
                let get = |m: &BTreeMap<PartnerId, Points>| i128::from(m.get(id).copied().unwrap_or(0));
                let redeemed: Points = a.redemptions.iter().filter(|r| r.issuer == *id).map(|r| r.points).sum();
                prop_assert_eq!(t.redeemed, redeemed);
                cumulative[k] += get(&a.issued) - i128::from(redeemed) - get(&a.expired) + get(&a.restored);
                prop_assert_eq!(i128::from(t.outstanding), cumulative[k]);
            }
            prev = Some(s);
        }
    }

    #[test]
    fn arbitrary_inputs_never_panic(
        n in 1usize..=4,
        // Half the draws are anywhere in the type (mostly overflowing), half are plausible.
        minor in prop_oneof![0u64..=1_000, any::<u64>()],
        per in prop_oneof![1u64..=1_000, any::<u64>()],
        fee in prop_oneof![0u32..=10_000, any::<u32>()],
        spends in prop::collection::vec((0usize..4, 0usize..4, prop_oneof![0u64..1_000_000, any::<u64>()]), 0..6),
        amounts in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u64>()), 4),
    ) {
        let g = genesis(n, PointValue { minor_units: minor, per_points: per }, fee);
        let p = ids(&g);
        let a = EpochActivity {
            epoch: 0,
            redemptions: spends.iter().map(|&(i, r, points)| Redemption { issuer: p[i % n], redeemer: p[r % n], points }).collect(),
            issued: p.iter().zip(&amounts).map(|(id, a)| (*id, a.0)).collect(),
            expired: p.iter().zip(&amounts).map(|(id, a)| (*id, a.1)).collect(),
            restored: p.iter().zip(&amounts).map(|(id, a)| (*id, a.2)).collect(),
        };
        // Either a statement that passes the audit, or a typed error: never a panic.
        if let Ok(s) = compute_statement(&g, &a, None) {
            verify_statement_consistency(&s).unwrap();
        }
    }
}

// The hand-worked example: `coalition_core::test_util::high_street_epochs`, every number written
// out there.

fn map(entries: &[(PartnerId, Points)]) -> BTreeMap<PartnerId, Points> {
    entries.iter().copied().collect()
}

#[test]
fn hand_worked_high_street_example() {
    let (g, s0, s1) = high_street_epochs();
    let [cafe, book, cinema, fuel]: [PartnerId; 4] = ids(&g).try_into().unwrap();

    assert_eq!(s0.transfers, vec![]);
    assert_eq!(s0.net, vec![0, 0, 0, 0]);
    assert_eq!(
        s0.per_issuer
            .iter()
            .map(|t| t.outstanding)
            .collect::<Vec<_>>(),
        vec![8000, 5000, 1900, 4000]
    );

    assert_eq!(s1.epoch, 1);
    assert_eq!(s1.currency, "EUR");
    assert_eq!(s1.fee_bps, 250);
    assert_eq!(s1.partners, vec![cafe, book, cinema, fuel]);
    assert_eq!(
        s1.gross_points,
        vec![
            vec![0, 4000, 1000, 0],
            vec![2000, 0, 0, 3000],
            vec![0, 0, 0, 800],
            vec![1500, 0, 700, 0],
        ]
    );
    assert_eq!(
        s1.gross_money,
        vec![
            vec![0, 3900, 975, 0],
            vec![1950, 0, 0, 2925],
            vec![0, 0, 0, 780],
            vec![1463, 0, 683, 0],
        ]
    );
    assert_eq!(s1.net, vec![-1462, -975, 878, 1559]);
    assert_eq!(
        s1.transfers,
        vec![
            Transfer {
                from: cafe,
                to: fuel,
                amount: 1462
            },
            Transfer {
                from: book,
                to: cinema,
                amount: 878
            },
            Transfer {
                from: book,
                to: fuel,
                amount: 97
            },
        ]
    );
    assert_eq!(s1.gross_total(), 12_676);
    let totals = |issuer, opening, issued, redeemed, expired, restored, outstanding| IssuerTotals {
        issuer,
        opening,
        issued,
        redeemed,
        expired,
        restored,
        outstanding,
    };
    assert_eq!(
        s1.per_issuer,
        vec![
            totals(cafe, 8000, 2000, 5500, 200, 0, 4300),
            totals(book, 5000, 1000, 5000, 0, 0, 1000),
            totals(cinema, 1900, 1000, 800, 0, 100, 2200),
            totals(fuel, 4000, 1000, 2200, 300, 0, 2500),
        ]
    );
    verify_statement_consistency(&s1).unwrap();
}

#[test]
fn statement_is_stable_json_and_hash() {
    let (_, _, s1) = high_street_epochs();
    let v: serde_json::Value = serde_json::to_value(&s1).unwrap();
    assert_eq!(v["net"], serde_json::json!([-1462, -975, 878, 1559]));
    assert_eq!(v["transfers"][2]["amount"], 97);
    assert_eq!(v["partners"][0], serde_json::json!(s1.partners[0].to_hex()));
    let back: SettlementStatement = serde_json::from_value(v).unwrap();
    assert_eq!(back, s1);
    let mut other = s1.clone();
    other.epoch = 2;
    assert_ne!(other.hash(), s1.hash());
}

// ------------------------------------------------------------------------------------------------
// Errors.

#[test]
fn overflow_is_an_error_not_a_panic() {
    let g = genesis(
        2,
        PointValue {
            minor_units: 1,
            per_points: 1,
        },
        0,
    );
    let [a, b]: [PartnerId; 2] = ids(&g).try_into().unwrap();
    let big = |issuer, redeemer| Redemption {
        issuer,
        redeemer,
        points: u64::MAX / 2 + 1,
    };
    let activity = |redemptions| EpochActivity {
        epoch: 0,
        redemptions,
        issued: map(&[(a, u64::MAX)]),
        ..Default::default()
    };

    // Two lots in one cell that do not fit in u64.
    let err = compute_statement(&g, &activity(vec![big(a, b), big(a, b)]), None).unwrap_err();
    assert_eq!(
        err,
        SettlementError::Overflow {
            what: "points redeemed",
            partner: a
        }
    );
    // Self-redemptions too: they are never in the matrix but still counted as redeemed.
    let err = compute_statement(&g, &activity(vec![big(a, a), big(a, a)]), None).unwrap_err();
    assert_eq!(
        err,
        SettlementError::Overflow {
            what: "points redeemed",
            partner: a
        }
    );

    // Points that fit, money that does not.
    let rich = genesis(
        2,
        PointValue {
            minor_units: u64::MAX,
            per_points: 1,
        },
        0,
    );
    let [a, b]: [PartnerId; 2] = ids(&rich).try_into().unwrap();
    let one = EpochActivity {
        redemptions: vec![Redemption {
            issuer: a,
            redeemer: b,
            points: 2,
        }],
        issued: map(&[(a, 2)]),
        ..Default::default()
    };
    assert_eq!(
        compute_statement(&rich, &one, None).unwrap_err(),
        SettlementError::Overflow {
            what: "money owed",
            partner: a
        }
    );
    // A net position beyond i64 is refused rather than wrapped.
    let mut one = one;
    one.redemptions[0].points = 1;
    assert_eq!(
        compute_statement(&rich, &one, None).unwrap_err(),
        SettlementError::Overflow {
            what: "net position",
            partner: a
        }
    );

    // Outstanding beyond u64.
    let g = genesis(
        1,
        PointValue {
            minor_units: 1,
            per_points: 1,
        },
        0,
    );
    let [a]: [PartnerId; 1] = ids(&g).try_into().unwrap();
    let a0 = EpochActivity {
        issued: map(&[(a, u64::MAX)]),
        ..Default::default()
    };
    let s0 = compute_statement(&g, &a0, None).unwrap();
    let a1 = EpochActivity {
        epoch: 1,
        issued: map(&[(a, 1)]),
        ..Default::default()
    };
    assert_eq!(
        compute_statement(&g, &a1, Some(&s0)).unwrap_err(),
        SettlementError::Overflow {
            what: "outstanding points",
            partner: a
        }
    );
}

#[test]
fn outstanding_underflow_names_the_issuer() {
    let g = high_street();
    let [cafe, book, ..]: [PartnerId; 4] = ids(&g).try_into().unwrap();
    let a = EpochActivity {
        redemptions: vec![Redemption {
            issuer: book,
            redeemer: cafe,
            points: 10,
        }],
        issued: map(&[(book, 4)]),
        expired: map(&[(book, 1)]),
        ..Default::default()
    };
    let err = compute_statement(&g, &a, None).unwrap_err();
    assert_eq!(
        err,
        SettlementError::OutstandingUnderflow {
            issuer: book,
            opening: 0,
            issued: 4,
            redeemed: 10,
            expired: 1,
            restored: 0
        }
    );
    assert!(err.to_string().contains(&book.to_hex()), "{err}");
}

#[test]
fn strangers_are_refused() {
    let g = high_street();
    let [cafe, ..]: [PartnerId; 4] = ids(&g).try_into().unwrap();
    let stranger = PartnerId(partner_key(98).public());
    let spend = |issuer, redeemer| EpochActivity {
        redemptions: vec![Redemption {
            issuer,
            redeemer,
            points: 1,
        }],
        issued: map(&[(cafe, 1)]),
        ..Default::default()
    };
    let unknown = |role| SettlementError::UnknownPartner {
        partner: stranger,
        role,
    };
    assert_eq!(
        compute_statement(&g, &spend(stranger, cafe), None),
        Err(unknown("redemption issuer"))
    );
    assert_eq!(
        compute_statement(&g, &spend(cafe, stranger), None),
        Err(unknown("redemption redeemer"))
    );
    for role in ["issued", "expired", "restored"] {
        let mut a = EpochActivity::default();
        let m = match role {
            "issued" => &mut a.issued,
            "expired" => &mut a.expired,
            _ => &mut a.restored,
        };
        m.insert(stranger, 0);
        assert_eq!(compute_statement(&g, &a, None), Err(unknown(role)));
    }
}

#[test]
fn previous_statement_must_be_the_epoch_before() {
    let (g, s0, s1) = high_street_epochs();
    let quiet = |epoch| EpochActivity {
        epoch,
        ..Default::default()
    };
    assert_eq!(
        compute_statement(&g, &quiet(2), None),
        Err(SettlementError::MissingPrevious { epoch: 2 })
    );
    assert_eq!(
        compute_statement(&g, &quiet(3), Some(&s1)),
        Err(SettlementError::NotConsecutive {
            previous: 1,
            epoch: 3
        })
    );
    assert_eq!(
        compute_statement(&g, &quiet(0), Some(&s0)),
        Err(SettlementError::NotConsecutive {
            previous: 0,
            epoch: 0
        })
    );
    // Another partner set: only two of the four.
    let other = genesis(2, g.point_value, g.fee_bps);
    assert!(matches!(
        compute_statement(&other, &quiet(2), Some(&s1)),
        Err(SettlementError::PreviousMismatch { .. })
    ));
    // A quiet epoch keeps every balance.
    let s2 = compute_statement(&g, &quiet(2), Some(&s1)).unwrap();
    assert_eq!(
        s2.per_issuer
            .iter()
            .map(|t| (t.opening, t.outstanding))
            .collect::<Vec<_>>(),
        vec![(4300, 4300), (1000, 1000), (2200, 2200), (2500, 2500)]
    );
    assert!(s2.transfers.is_empty());
}

#[test]
fn auditor_catches_every_kind_of_tampering() {
    let (_, _, good) = high_street_epochs();
    verify_statement_consistency(&good).unwrap();
    let [cafe, book, cinema, fuel]: [PartnerId; 4] = good.partners.clone().try_into().unwrap();
    let check = |tamper: &dyn Fn(&mut SettlementStatement),
                 expect: &dyn Fn(&SettlementError) -> bool| {
        let mut s = good.clone();
        tamper(&mut s);
        let err = verify_statement_consistency(&s).expect_err("tampering must be caught");
        assert!(expect(&err), "unexpected error: {err}");
        assert_ne!(s.hash(), good.hash());
    };

    check(&|s| s.gross_money[0][1] += 1, &|e| {
        matches!(
            e,
            SettlementError::MoneyMismatch {
                expected: 3900,
                found: 3901,
                ..
            }
        )
    });
    check(&|s| s.gross_points[3][2] = 701, &|e| {
        matches!(e, SettlementError::MoneyMismatch { points: 701, .. })
    });
    check(
        &|s| {
            s.gross_points[1][1] = 5;
        },
        &|e| matches!(e, SettlementError::SelfOwed { points: 5, .. }),
    );
    check(
        &|s| {
            s.net[2] += 1;
            s.net[3] -= 1;
        },
        &|e| {
            matches!(
                e,
                SettlementError::NetMismatch {
                    expected: 878,
                    found: 879,
                    ..
                }
            )
        },
    );
    check(&|s| s.transfers[0].amount -= 1, &|e| {
        matches!(e, SettlementError::Unsettled { .. })
    });
    check(
        &|s| {
            s.transfers.pop();
        },
        &|e| matches!(e, SettlementError::Unsettled { .. }),
    );
    check(
        &|s| {
            s.transfers.push(Transfer {
                from: cafe,
                to: cinema,
                amount: 0,
            })
        },
        &|e| {
            matches!(
                e,
                SettlementError::TooManyTransfers {
                    count: 4,
                    partners: 4
                }
            )
        },
    );
    check(
        &|s| {
            s.transfers[2] = Transfer {
                from: book,
                to: book,
                amount: 97,
            }
        },
        &|e| {
            matches!(
                e,
                SettlementError::BadTransfer {
                    reason: "a partner pays itself",
                    ..
                }
            )
        },
    );
    check(
        &|s| {
            s.transfers[2] = Transfer {
                from: fuel,
                to: book,
                amount: 97,
            }
        },
        &|e| {
            matches!(
                e,
                SettlementError::BadTransfer {
                    reason: "the payer is not a net debtor",
                    ..
                }
            )
        },
    );
    check(
        &|s| s.transfers[2].to = PartnerId(partner_key(98).public()),
        &|e| matches!(e, SettlementError::BadTransfer { .. }),
    );
    check(&|s| s.per_issuer[0].outstanding += 1, &|e| {
        matches!(e, SettlementError::Totals { .. })
    });
    check(
        &|s| {
            s.per_issuer[0].redeemed = 4999;
            s.per_issuer[0].outstanding = 4801;
        },
        &|e| matches!(e, SettlementError::Totals { .. }),
    );
    check(&|s| s.per_issuer.swap(0, 1), &|e| {
        matches!(e, SettlementError::Totals { .. })
    });
    check(
        &|s| {
            s.gross_money.pop();
        },
        &|e| matches!(e, SettlementError::Shape { .. }),
    );
    check(
        &|s| {
            s.gross_points[0].push(0);
        },
        &|e| matches!(e, SettlementError::Shape { .. }),
    );
    check(&|s| s.partners[1] = cafe, &|e| {
        matches!(e, SettlementError::DuplicatePartner { .. })
    });
    check(&|s| s.fee_bps = 10_001, &|e| {
        matches!(
            e,
            SettlementError::Parameter {
                field: "fee_bps",
                ..
            }
        )
    });
    check(&|s| s.fee_bps = 0, &|e| {
        matches!(e, SettlementError::MoneyMismatch { .. })
    });
}

#[test]
fn single_partner_and_no_activity() {
    let g = genesis(
        1,
        PointValue {
            minor_units: 1,
            per_points: 1,
        },
        0,
    );
    let s = compute_statement(&g, &EpochActivity::default(), None).unwrap();
    assert_eq!(s.gross_points, vec![vec![0]]);
    assert_eq!(s.net, vec![0]);
    assert!(s.transfers.is_empty());
    verify_statement_consistency(&s).unwrap();
}
