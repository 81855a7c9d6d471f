//! The vote rule as a table (every refusal code reachable), re-votes and conflicts, and quorum
//! thresholds for n = 1..7 partners.

use coalition_core::cert::*;
use coalition_core::cert_window::last_append_epoch;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::ledger::RuleError;
use coalition_core::memory::MemoryError;
use coalition_core::memory::MemoryLedger;
use coalition_core::order::*;
use coalition_core::record::*;
use coalition_core::replica::{IngestError, IngestOutcome, Ledger};
use coalition_core::state::LedgerView;
use coalition_core::test_util::genesis_for;
use coalition_core::vote::*;
use std::collections::BTreeSet;

const NOW: Timestamp = 1_000_000;
const SKEW: u64 = 120;

struct Setup {
    genesis: Genesis,
    partners: Vec<Keypair>,
    ledger: Ledger<MemoryLedger>,
    alice: Keypair,
    bob: Keypair,
    /// Alice's lot, 100 points, long-lived.
    lot: Hash,
    /// Alice's lot expiring at NOW + 10.
    short: Hash,
    /// Bob's lot.
    bobs: Hash,
}

fn genesis(partners: &[Keypair]) -> Genesis {
    let keys: Vec<_> = partners.iter().map(Keypair::public).collect();
    Genesis {
        epoch_secs: 3600,
        max_clock_skew_secs: SKEW,
        ..genesis_for(&keys)
    }
}

fn keys(n: usize, base: u8) -> Vec<Keypair> {
    (0..n as u8)
        .map(|i| Keypair::from_secret_bytes(&[base + i; 32]))
        .collect()
}

impl Setup {
    fn new() -> Setup {
        let partners = keys(4, 1);
        let genesis = genesis(&partners);
        let ledger = Ledger::new(genesis.clone(), MemoryLedger::new(), 100);
        let mut s = Setup {
            genesis,
            partners,
            ledger,
            alice: Keypair::from_secret_bytes(&[50; 32]),
            bob: Keypair::from_secret_bytes(&[51; 32]),
            lot: Hash::ZERO,
            short: Hash::ZERO,
            bobs: Hash::ZERO,
        };
        s.lot = s.issue(MemberId(s.alice.public()), 100, NOW + 100_000);
        s.short = s.issue(MemberId(s.alice.public()), 10, NOW + 10);
        s.bobs = s.issue(MemberId(s.bob.public()), 30, NOW + 100_000);
        s
    }

    fn append(&mut self, p: usize, record: Record) {
        let outcome = self.try_append(p, record, NOW - 100);
        assert!(
            matches!(outcome, Ok(IngestOutcome::Applied { .. })),
            "{outcome:?}"
        );
    }

    fn try_append(
        &mut self,
        p: usize,
        record: Record,
        time: Timestamp,
    ) -> Result<IngestOutcome, IngestError<MemoryError>> {
        let key = &self.partners[p];
        let head = self
            .ledger
            .store()
            .log_head(&PartnerId(key.public()))
            .unwrap();
        let entry = Entry {
            partner: PartnerId(key.public()),
            seq: head.size,
            prev: head.last,
            epoch: head.open_epoch,
            time,
            record,
        }
        .sign(key);
        self.ledger.ingest(entry)
    }

    /// The logs of `partners` close each of their epochs up to `last`, each at its end.
    fn close_through(&mut self, partners: std::ops::Range<usize>, last: Epoch) {
        for p in partners {
            let id = PartnerId(self.partners[p].public());
            let open = self.ledger.store().log_head(&id).unwrap().open_epoch;
            for epoch in open..=last {
                let time = self.genesis.epoch_end(epoch).max(NOW - 100);
                let closed = self.try_append(p, Record::EpochClose(EpochClose { epoch }), time);
                assert!(
                    matches!(closed, Ok(IngestOutcome::Applied { .. })),
                    "{closed:?}"
                );
            }
        }
    }

    fn issue(&mut self, member: MemberId, points: Points, expires_at: Timestamp) -> Hash {
        let issue = Issue {
            issuer: PartnerId(self.partners[0].public()),
            member,
            points,
            expires_at,
            reference: reference_hash(&format!("{member} {points} {expires_at}")),
            time: NOW - 100,
        };
        let id = issue.id();
        self.append(0, Record::Issue(issue));
        id
    }

    /// Alice's order for `points` from her long-lived lot at her next seq.
    fn order(&self, points: Points) -> RedeemOrder {
        let alice = MemberId(self.alice.public());
        RedeemOrder {
            member: alice,
            member_seq: self.ledger.store().member(&alice).unwrap().next_seq,
            redeemer: PartnerId(self.partners[1].public()),
            points,
            lots: vec![LotSpend {
                lot: self.lot,
                points,
            }],
            time: NOW,
        }
    }

    fn check(
        &self,
        order: &SignedOrder,
        now: Timestamp,
        prior: Option<&Hash>,
    ) -> Result<VoteDecision, String> {
        // A prior vote here is for an order of NOW's epoch.
        let prior = prior.map(|&order_id| PriorVote {
            order_id,
            order_time: Some(NOW),
            window_sealed: false,
        });
        check_vote(
            &self.genesis,
            self.ledger.store(),
            order,
            now,
            prior.as_ref(),
        )
        .map_err(|e| match e {
            VoteError::Refused(r) => {
                assert!(!r.to_string().is_empty());
                r.code().to_string()
            }
            VoteError::Store(e) => panic!("store error {e}"),
        })
    }

    /// Applies a certified spend of `points` by Alice, so her next seq moves on.
    fn spend(&mut self, points: Points) -> SignedOrder {
        let order = self.order(points).sign(&self.alice);
        let mut builder = CertBuilder::new(&self.genesis, order.clone()).unwrap();
        for k in &self.partners {
            builder.add(&Vote::sign(builder.order_id(), k)).unwrap();
        }
        let cert = builder.finish().unwrap().into_inner();
        self.append(1, Record::Redeem(cert));
        order
    }
}

#[test]
fn vote_rule_table() {
    let mut s = Setup::new();
    s.spend(5); // Alice's next seq is 1, her lot has 95 left.
    let alice = &s.alice;
    let base = s.order(10);
    let with = |f: &dyn Fn(&mut RedeemOrder)| {
        let mut o = base.clone();
        f(&mut o);
        o.sign(alice)
    };
    let spend = |lot: Hash, points: Points| LotSpend { lot, points };
    let many: Vec<LotSpend> = (0..=MAX_LOTS_PER_ORDER as u64)
        .map(|i| spend(Hash::tagged(b"x", &i.to_le_bytes()), 1))
        .collect();
    let mut forged = base.clone().sign(alice);
    forged.signature = s.bob.sign(&base.id());
    let outsider = PartnerId(s.alice.public());

    let (lot, short, bobs) = (s.lot, s.short, s.bobs);
    let cases: Vec<(&str, SignedOrder, Timestamp, &str)> = vec![
        ("valid", base.clone().sign(alice), NOW, "ok"),
        (
            "valid at the skew edge",
            base.clone().sign(alice),
            NOW + SKEW,
            "ok",
        ),
        (
            "zero points",
            with(&|o| {
                o.points = 0;
                o.lots.clear()
            }),
            NOW,
            "zero_points",
        ),
        ("no lots", with(&|o| o.lots.clear()), NOW, "no_lots"),
        (
            "too many lots",
            with(&|o| {
                o.points = many.len() as u64;
                o.lots = many.clone()
            }),
            NOW,
            "too_many_lots",
        ),
        (
            "zero-point lot",
            with(&|o| o.lots.push(spend(short, 0))),
            NOW,
            "zero_lot_points",
        ),
        (
            "duplicate lot",
            with(&|o| {
                o.points = 20;
                o.lots.push(spend(lot, 10))
            }),
            NOW,
            "duplicate_lot",
        ),
        (
            "lots overflow",
            with(&|o| o.lots.push(spend(short, u64::MAX))),
            NOW,
            "lots_overflow",
        ),
        (
            "sum mismatch",
            with(&|o| o.points = 11),
            NOW,
            "sum_mismatch",
        ),
        (
            "redeemer not a partner",
            with(&|o| o.redeemer = outsider),
            NOW,
            "redeemer_not_partner",
        ),
        (
            "forged member signature",
            forged,
            NOW,
            "bad_member_signature",
        ),
        (
            "clock ahead",
            base.clone().sign(alice),
            NOW - SKEW - 1,
            "clock_skew",
        ),
        (
            "clock behind",
            base.clone().sign(alice),
            NOW + SKEW + 1,
            "clock_skew",
        ),
        ("stale seq", with(&|o| o.member_seq = 0), NOW, "stale_seq"),
        ("future seq", with(&|o| o.member_seq = 2), NOW, "future_seq"),
        (
            "unknown lot",
            with(&|o| o.lots = vec![spend(Hash([9; 32]), 10)]),
            NOW,
            "unknown_lot",
        ),
        (
            "another member's lot",
            with(&|o| o.lots = vec![spend(bobs, 10)]),
            NOW,
            "lot_of_another_member",
        ),
        (
            "expired lot",
            with(&|o| {
                o.time = NOW + 10;
                o.lots = vec![spend(short, 10)]
            }),
            NOW,
            "lot_expired",
        ),
        (
            "insufficient remaining",
            with(&|o| {
                o.points = 96;
                o.lots = vec![spend(lot, 96)]
            }),
            NOW,
            "insufficient_remaining",
        ),
    ];
    let mut seen = BTreeSet::new();
    for (name, order, now, expected) in &cases {
        let got = match s.check(order, *now, None) {
            Ok(VoteDecision::New { order_id }) => {
                assert_eq!(order_id, order.order.id());
                "ok".to_string()
            }
            Ok(other) => panic!("{name}: unexpected {other:?}"),
            Err(code) => code,
        };
        assert_eq!(&got, expected, "case {name}");
        seen.insert(got);
    }
    // A prior vote for another order at this (member, seq) is a conflict, checked on valid orders.
    let order = base.clone().sign(alice);
    assert_eq!(
        s.check(&order, NOW, Some(&Hash([1; 32]))),
        Err("conflict".into())
    );
    seen.insert("conflict".into());

    let all = [
        "ok",
        "zero_points",
        "no_lots",
        "too_many_lots",
        "zero_lot_points",
        "duplicate_lot",
        "lots_overflow",
        "sum_mismatch",
        "redeemer_not_partner",
        "bad_member_signature",
        "conflict",
        "clock_skew",
        "stale_seq",
        "future_seq",
        "unknown_lot",
        "lot_of_another_member",
        "lot_expired",
        "insufficient_remaining",
    ];
    assert_eq!(seen, all.iter().map(|c| c.to_string()).collect());
    for code in all {
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code}"
        );
    }
}

#[test]
fn same_order_is_voted_again_even_after_it_applied() {
    let mut s = Setup::new();
    let order = s.order(7).sign(&s.alice);
    let id = order.order.id();
    assert_eq!(
        s.check(&order, NOW, None),
        Ok(VoteDecision::New { order_id: id })
    );
    assert_eq!(
        s.check(&order, NOW, Some(&id)),
        Ok(VoteDecision::Again { order_id: id })
    );
    // Once certified and applied, the order is stale for a fresh vote but the same vote is repeated.
    let applied = s.spend(7);
    assert_eq!(applied, order);
    assert_eq!(s.check(&order, NOW, None), Err("stale_seq".into()));
    assert_eq!(
        s.check(&order, NOW + 10_000, Some(&id)),
        Ok(VoteDecision::Again { order_id: id })
    );
}

#[test]
fn a_conflicting_order_at_the_same_seq_is_refused() {
    let s = Setup::new();
    let first = s.order(7).sign(&s.alice);
    let second = s.order(8).sign(&s.alice);
    assert_eq!(first.order.member_seq, second.order.member_seq);
    let voted = first.order.id();
    let prior = PriorVote {
        order_id: voted,
        order_time: Some(first.order.time),
        window_sealed: false,
    };
    let refused = check_vote(&s.genesis, s.ledger.store(), &second, NOW, Some(&prior));
    match refused {
        Err(VoteError::Refused(VoteRefusal::Conflict {
            voted: v,
            order,
            seq,
            ..
        })) => {
            assert_eq!((v, order, seq), (voted, second.order.id(), 0));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A bad signature is reported as such even with a prior vote: no vote for unsigned orders.
    let mut forged = second;
    forged.signature.0[0] ^= 1;
    assert_eq!(
        s.check(&forged, NOW, Some(&voted)),
        Err("bad_member_signature".into())
    );
}

#[test]
fn quorum_thresholds_for_one_to_seven_partners() {
    let expected_quorum = [1, 2, 2, 3, 4, 4, 5];
    let member = Keypair::from_secret_bytes(&[77; 32]);
    for n in 1..=7usize {
        let partners = keys(n, 1);
        let g = genesis(&partners);
        g.validate().unwrap();
        let q = g.quorum();
        assert_eq!(q, expected_quorum[n - 1], "n={n}");
        // Any two quorums share more than f partners, so at least one honest one.
        assert!(2 * q > n + g.f(), "n={n}");
        let order = RedeemOrder {
            member: MemberId(member.public()),
            member_seq: 0,
            redeemer: g.partners[0].id,
            points: 1,
            lots: vec![LotSpend {
                lot: Hash([1; 32]),
                points: 1,
            }],
            time: NOW,
        }
        .sign(&member);
        let id = order.order.id();
        let mut sorted: Vec<&Keypair> = partners.iter().collect();
        sorted.sort_by_key(|k| k.public());
        let cert = |k: usize| RedeemCert {
            order: order.clone(),
            votes: sorted[..k]
                .iter()
                .map(|p| VoteSig {
                    partner: PartnerId(p.public()),
                    signature: p.sign(&vote_message(&id)),
                })
                .collect(),
        };
        assert_eq!(
            verify_cert(&g, &cert(q - 1)),
            Err(CertError::TooFewVotes {
                got: q - 1,
                needed: q
            }),
            "n={n}"
        );
        assert!(verify_cert(&g, &cert(q)).is_ok(), "n={n}");
        assert!(verify_cert(&g, &cert(n)).is_ok(), "n={n}");
        let mut builder = CertBuilder::new(&g, order.clone()).unwrap();
        for (i, p) in partners.iter().enumerate() {
            assert_eq!(builder.has_quorum(), i >= q, "n={n} after {i} votes");
            builder.add(&Vote::sign(id, p)).unwrap();
        }
        let built = builder.finish().unwrap().into_inner();
        assert_eq!(built, cert(n), "the builder's certificate is canonical");
    }
}

/// A sequence number split between two orders, neither certified, is free again once this voter
/// holds a sealed checkpoint of the last epoch that could hold the voted order's certificate: a
/// voter may then vote for a new order of a later epoch. Never for one of the same epoch, never
/// before. Once every log has closed that epoch, the voted order itself gets no vote.
#[test]
fn a_seq_no_certificate_took_is_released_once_its_window_is_sealed() {
    let mut s = Setup::new();
    let epoch_secs = s.genesis.epoch_secs;
    let voted = s.order(7).sign(&s.alice);
    let later_time = NOW + 2 * epoch_secs;
    let mut later = s.order(8);
    later.time = later_time;
    let later = later.sign(&s.alice);
    let mut same_epoch = s.order(9);
    same_epoch.time = NOW + 1;
    let same_epoch = same_epoch.sign(&s.alice);
    let prior = |window_sealed| PriorVote {
        order_id: voted.order.id(),
        order_time: Some(voted.order.time),
        window_sealed,
    };
    let vote = |s: &Setup, order: &SignedOrder, prior: Option<&PriorVote>| {
        check_vote(&s.genesis, s.ledger.store(), order, order.order.time, prior).map_err(
            |e| match e {
                VoteError::Refused(r) => r.code().to_string(),
                VoteError::Store(e) => panic!("store error {e}"),
            },
        )
    };
    // NOW + SKEW is still in NOW's epoch here.
    let last = last_append_epoch(&s.genesis, voted.order.time);
    assert_eq!(last, s.genesis.epoch_at(NOW) + 1);

    // Not sealed: locked, however late the new order.
    assert_eq!(
        vote(&s, &later, Some(&prior(false))),
        Err("conflict".into())
    );
    // Every log but one has closed the window: the voted order can still get a vote.
    s.close_through(0..3, last);
    assert_eq!(
        vote(&s, &voted, None),
        Ok(VoteDecision::New {
            order_id: voted.order.id()
        })
    );
    s.close_through(3..4, last);
    assert_eq!(
        vote(&s, &later, Some(&prior(true))),
        Ok(VoteDecision::Replace {
            order_id: later.order.id(),
            released: voted.order.id()
        })
    );
    // One vote per epoch: an order of the voted order's own epoch stays refused.
    assert_eq!(
        vote(&s, &same_epoch, Some(&prior(true))),
        Err("conflict".into())
    );
    // A vote stored without its order's time is never released.
    let untimed = PriorVote {
        order_time: None,
        ..prior(true)
    };
    assert_eq!(vote(&s, &later, Some(&untimed)), Err("conflict".into()));
    // The released order itself gets no fresh vote: no certificate for it can apply.
    assert_eq!(vote(&s, &voted, None), Err("order_too_late".into()));

    // And the ledger refuses its certificate from a log past the window.
    let mut builder = CertBuilder::new(&s.genesis, voted.clone()).unwrap();
    for k in &s.partners {
        builder.add(&Vote::sign(builder.order_id(), k)).unwrap();
    }
    let cert = builder.finish().unwrap().into_inner();
    let time = s.genesis.epoch_end(last);
    match s.try_append(1, Record::Redeem(cert), time) {
        Err(IngestError::Rule { source, .. }) => match *source {
            RuleError::LateCertificate {
                order,
                order_epoch,
                last_epoch,
                entry_epoch,
            } => assert_eq!(
                (order, order_epoch, last_epoch, entry_epoch),
                (voted.order.id(), last - 1, last, last + 1)
            ),
            other => panic!("expected a late certificate, got {other}"),
        },
        other => panic!("expected a late certificate, got {other:?}"),
    }
}
