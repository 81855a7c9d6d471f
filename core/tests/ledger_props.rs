//! Properties of the ledger rules and the replication driver over random valid histories:
//! arrival order does not matter, points are conserved, lots never go negative or above their points,
//! and every attack is refused with its typed reason, leaving the state byte-identical.

use coalition_core::cert::{CertBuilder, CertError};
use coalition_core::crypto::{Keypair, PublicKey};
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::ledger::{Missing, RuleError};
use coalition_core::log::{check_entry, EntryError};
use coalition_core::memory::MemoryLedger;
use coalition_core::record::*;
use coalition_core::replica::{IngestError, IngestOutcome, Ledger};
use coalition_core::state::{Balance, LedgerView};
use coalition_core::test_util::genesis_for;
use proptest::prelude::*;

const EPOCH_SECS: u64 = 30;
const START: Timestamp = 1_000_000;

/// A coalition with deterministic keys and a reference ledger fed in generation order.
#[derive(Clone)]
struct World {
    genesis: Genesis,
    partners: Vec<PartnerKey>,
    members: Vec<MemberKey>,
    ledger: Ledger<MemoryLedger>,
    history: Vec<SignedEntry>,
    now: Timestamp,
    issued: u64,
    redeemed: u64,
    references: std::cell::Cell<u64>,
}

#[derive(Clone)]
struct PartnerKey(std::sync::Arc<Keypair>);
#[derive(Clone)]
struct MemberKey(std::sync::Arc<Keypair>);

impl PartnerKey {
    fn id(&self) -> PartnerId {
        PartnerId(self.0.public())
    }
}
impl MemberKey {
    fn id(&self) -> MemberId {
        MemberId(self.0.public())
    }
}

#[derive(Debug, Clone)]
enum Action {
    Issue {
        p: usize,
        m: usize,
        points: u64,
        ttl: u64,
    },
    Redeem {
        p: usize,
        m: usize,
        percent: u64,
        voters: usize,
    },
    Close {
        p: usize,
    },
    Tick(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..4usize, 0..3usize, 1..100u64, 1..200u64)
            .prop_map(|(p, m, points, ttl)| Action::Issue { p, m, points, ttl }),
        3 => (0..4usize, 0..3usize, 1..=100u64, 0..4usize)
            .prop_map(|(p, m, percent, voters)| Action::Redeem { p, m, percent, voters }),
        1 => (0..4usize).prop_map(|p| Action::Close { p }),
        1 => (1..60u64).prop_map(Action::Tick),
    ]
}

fn genesis_of(partners: &[PartnerKey]) -> Genesis {
    let keys: Vec<_> = partners.iter().map(|k| k.id().0).collect();
    Genesis {
        genesis_time: START,
        epoch_secs: EPOCH_SECS,
        ..genesis_for(&keys)
    }
}

impl World {
    fn new(n: usize) -> World {
        let key = |b: u8| std::sync::Arc::new(Keypair::from_secret_bytes(&[b; 32]));
        let partners: Vec<PartnerKey> = (0..n as u8).map(|i| PartnerKey(key(i + 1))).collect();
        let members = (0..3u8).map(|i| MemberKey(key(100 + i))).collect();
        let genesis = genesis_of(&partners);
        genesis.validate().unwrap();
        World {
            ledger: Ledger::new(genesis.clone(), MemoryLedger::new(), 10_000),
            genesis,
            partners,
            members,
            history: Vec::new(),
            now: START,
            issued: 0,
            redeemed: 0,
            references: std::cell::Cell::new(0),
        }
    }

    fn store(&self) -> &MemoryLedger {
        self.ledger.store()
    }

    /// The next entry of partner `p`'s log carrying `record`, signed.
    fn next_entry(&self, p: usize, record: Record) -> SignedEntry {
        let key = &self.partners[p];
        let head = self.store().log_head(&key.id()).unwrap();
        Entry {
            partner: key.id(),
            seq: head.size,
            prev: head.last,
            epoch: head.open_epoch,
            time: self.now,
            record,
        }
        .sign(&key.0)
    }

    fn append(&mut self, p: usize, record: Record) -> SignedEntry {
        let entry = self.next_entry(p, record);
        let outcome = self.ledger.ingest(entry.clone()).unwrap();
        assert_eq!(
            outcome,
            IngestOutcome::Applied {
                released: vec![],
                rejected: vec![]
            }
        );
        self.history.push(entry.clone());
        entry
    }

    fn new_issue(&self, p: usize, m: usize, points: u64, ttl: u64) -> Issue {
        self.references.set(self.references.get() + 1);
        Issue {
            issuer: self.partners[p].id(),
            member: self.members[m].id(),
            points,
            expires_at: self.now + ttl,
            reference: reference_hash(&format!("receipt {}", self.references.get())),
            time: self.now,
        }
    }

    fn issue(&mut self, p: usize, m: usize, points: u64, ttl: u64) -> Hash {
        let issue = self.new_issue(p, m, points, ttl);
        self.issued += points;
        let id = issue.id();
        self.append(p, Record::Issue(issue));
        id
    }

    /// An order by member `m` at partner `p` for `points`, choosing lots like a wallet.
    fn order(&self, p: usize, m: usize, points: u64) -> Option<RedeemOrder> {
        let member = self.members[m].id();
        let lots = self.store().member_lots(&member).unwrap();
        let chosen = coalition_core::lot_selection::select_lots(&lots, points, self.now).ok()?;
        Some(RedeemOrder {
            member,
            member_seq: self.store().member(&member).unwrap().next_seq,
            redeemer: self.partners[p].id(),
            points,
            lots: chosen,
            time: self.now,
        })
    }

    /// A certificate with real votes from a quorum of partners starting at `first`.
    fn certify(&self, order: SignedOrder, first: usize) -> RedeemCert {
        let mut builder = CertBuilder::new(&self.genesis, order).unwrap();
        let n = self.partners.len();
        for i in 0..self.genesis.quorum() {
            let voter = &self.partners[(first + i) % n];
            builder
                .add(&Vote::sign(builder.order_id(), &voter.0))
                .unwrap();
        }
        builder.finish().unwrap().into_inner()
    }

    fn available(&self, m: usize) -> u64 {
        let lots = self.store().member_lots(&self.members[m].id()).unwrap();
        Balance::of_lots(&lots, self.now).unwrap().available
    }

    fn redeem(&mut self, p: usize, m: usize, percent: u64, voters: usize) {
        let available = self.available(m);
        if available == 0 {
            return;
        }
        let points = (available * percent).div_ceil(100).max(1);
        let order = self
            .order(p, m, points)
            .expect("lots for an available amount");
        let cert = self.certify(order.sign(&self.members[m].0), voters);
        self.redeemed += points;
        self.append(p, Record::Redeem(cert));
    }

    fn close(&mut self, p: usize) {
        let head = self.store().log_head(&self.partners[p].id()).unwrap();
        self.now = self.now.max(self.genesis.epoch_end(head.open_epoch));
        self.append(
            p,
            Record::EpochClose(EpochClose {
                epoch: head.open_epoch,
            }),
        );
    }

    fn run(&mut self, actions: &[Action]) {
        let n = self.partners.len();
        for a in actions {
            self.now += 1;
            match *a {
                Action::Issue { p, m, points, ttl } => {
                    self.issue(p % n, m, points, ttl);
                }
                Action::Redeem {
                    p,
                    m,
                    percent,
                    voters,
                } => self.redeem(p % n, m, percent, voters),
                Action::Close { p } => self.close(p % n),
                Action::Tick(t) => self.now += t,
            }
        }
    }
}

/// Every lot within bounds: remaining never above points, and points = remaining + spent.
fn check_lot_bounds(store: &MemoryLedger) -> Result<(), TestCaseError> {
    for lot in store.lots().values() {
        prop_assert!(
            lot.remaining <= lot.points,
            "lot {:?} above its points",
            lot.id
        );
        prop_assert_eq!(lot.spent().unwrap() + lot.remaining, lot.points);
    }
    Ok(())
}

/// A deterministic shuffle (xorshift-driven Fisher-Yates) of `0..len`.
fn shuffled(len: usize, mut seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    seed |= 1;
    for i in (1..len).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    order
}

fn history() -> impl Strategy<Value = (usize, Vec<Action>)> {
    (3..=4usize, proptest::collection::vec(action(), 10..45))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// (a) Any delivery order, with repeats, yields the state of in-order delivery; (c) at every
    /// step, every lot stays within bounds.
    #[test]
    fn arrival_order_does_not_matter((n, actions) in history(), seed in any::<u64>(), repeats in 0..8usize) {
        let mut world = World::new(n);
        world.run(&actions);
        let mut order = shuffled(world.history.len(), seed);
        order.extend(shuffled(world.history.len(), seed.rotate_left(17)).into_iter().take(repeats));
        let mut replica = Ledger::new(world.genesis.clone(), MemoryLedger::new(), 10_000);
        for &i in &order {
            let outcome = replica.ingest(world.history[i].clone());
            match outcome {
                Ok(IngestOutcome::Applied { rejected, .. }) => prop_assert!(rejected.is_empty()),
                Ok(IngestOutcome::Pending(_)) | Ok(IngestOutcome::Duplicate) => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            check_lot_bounds(replica.store())?;
        }
        prop_assert_eq!(replica.pending_len(), 0);
        prop_assert_eq!(replica.store().state_digest(), world.store().state_digest());
        prop_assert_eq!(replica.store(), world.store());
    }

    /// (b) Conservation: issued = remaining + spent, and per member at any time
    /// issued = available + expired + redeemed, matching what the history issued and redeemed.
    #[test]
    fn points_are_conserved((n, actions) in history(), later in 0..400u64) {
        let mut world = World::new(n);
        world.run(&actions);
        let store = world.store();
        check_lot_bounds(store)?;
        let lots = store.lots().values();
        let issued: u64 = lots.clone().map(|l| l.points).sum();
        let remaining: u64 = lots.clone().map(|l| l.remaining).sum();
        let spent: u64 = lots.clone().map(|l| l.spent().unwrap()).sum();
        prop_assert_eq!(issued, world.issued);
        prop_assert_eq!(spent, world.redeemed);
        prop_assert_eq!(issued, remaining + spent);
        // The last epoch's view of each lot is its current remainder.
        for lot in store.lots().values() {
            prop_assert_eq!(lot.remaining_at_epoch(u64::MAX).unwrap(), lot.remaining);
        }
        let now = world.now + later;
        let mut total = Balance::default();
        for m in &world.members {
            let b = Balance::of_lots(&store.member_lots(&m.id()).unwrap(), now).unwrap();
            prop_assert_eq!(b.issued, b.available + b.expired + b.redeemed);
            total.issued += b.issued;
            total.redeemed += b.redeemed;
        }
        prop_assert_eq!(total.issued, world.issued);
        prop_assert_eq!(total.redeemed, world.redeemed);
        // Spend counters count the certified spends.
        let spends: u64 = store.members().values().map(|s| s.next_seq).sum();
        let certs = world.history.iter().filter(|e| matches!(e.entry.record, Record::Redeem(_))).count();
        prop_assert_eq!(spends, certs as u64);
    }
}

/// A copy of `order` changed by `f`.
fn modified(order: &RedeemOrder, f: impl FnOnce(&mut RedeemOrder)) -> RedeemOrder {
    let mut o = order.clone();
    f(&mut o);
    o
}

/// What an attack must produce.
enum Expect {
    Rule(fn(&RuleError) -> bool),
    Entry(fn(&EntryError) -> bool),
    Pending(fn(&Missing) -> bool),
}

fn cert_error(e: &RuleError, f: fn(&CertError) -> bool) -> bool {
    matches!(e, RuleError::Cert(c) if f(c))
}

/// Ingests `entry` into a copy of the world's ledger and checks the result and that the store is
/// byte-identical afterwards.
fn attack(
    world: &World,
    name: &str,
    entry: SignedEntry,
    expect: Expect,
) -> Result<(), TestCaseError> {
    let before = world.store().state_digest();
    let mut ledger = world.ledger.clone();
    let result = ledger.ingest(entry);
    let ok = match (&result, &expect) {
        (Err(IngestError::Rule { source, .. }), Expect::Rule(f)) => f(source),
        (Err(IngestError::Entry(e)), Expect::Entry(f)) => f(e),
        (Ok(IngestOutcome::Pending(m)), Expect::Pending(f)) => f(m),
        _ => false,
    };
    prop_assert!(ok, "attack {}: unexpected {:?}", name, result);
    prop_assert_eq!(
        ledger.store().state_digest(),
        before,
        "attack {} changed the state",
        name
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// (d) Each attack on top of a random valid history is refused with its typed reason and
    /// changes nothing.
    #[test]
    fn attacks_are_refused((n, actions) in history()) {
        let mut w = World::new(n);
        w.run(&actions);
        // Fixtures: two lots of member 0 (one short-lived), one of member 1, one spend by member 0.
        let lot_a = w.issue(0, 0, 50, 10_000);
        let short = w.issue(1, 0, 5, 2);
        let lot_b = w.issue(0, 1, 20, 10_000);
        w.now += 1;
        let mut order = w.order(1, 0, 1).unwrap();
        order.lots = vec![LotSpend { lot: lot_a, points: 1 }];
        let cert = w.certify(order.sign(&w.members[0].0), 0);
        w.redeemed += 1;
        w.append(1, Record::Redeem(cert));
        w.now += 10; // `short` is now expired
        let r = 2 % n;
        let m0 = w.members[0].id();
        let next_seq = w.store().member(&m0).unwrap().next_seq;
        let left_a = w.store().lot(&lot_a).unwrap().unwrap().remaining;
        let base = RedeemOrder {
            member: m0,
            member_seq: next_seq,
            redeemer: w.partners[r].id(),
            points: 1,
            lots: vec![LotSpend { lot: lot_a, points: 1 }],
            time: w.now,
        };
        let spend = |w: &World, order: RedeemOrder| -> SignedEntry {
            let cert = w.certify(order.sign(&w.members[0].0), 1);
            w.next_entry(r, Record::Redeem(cert))
        };
        // The base order itself is valid (so each attack below fails for its own reason).
        let mut ok = w.ledger.clone();
        let valid = ok.ingest(spend(&w, base.clone()));
        prop_assert!(matches!(valid, Ok(IngestOutcome::Applied { .. })), "base order: {:?}", valid);

        let over = modified(&base, |o| { o.points = left_a + 1; o.lots = vec![LotSpend { lot: lot_a, points: left_a + 1 }] });
        attack(&w, "overspend", spend(&w, over),
            Expect::Rule(|e| matches!(e, RuleError::Overspend { .. })))?;
        let expired = modified(&base, |o| o.lots = vec![LotSpend { lot: short, points: 1 }]);
        attack(&w, "expired lot", spend(&w, expired),
            Expect::Rule(|e| matches!(e, RuleError::LotExpired { .. })))?;
        let foreign = modified(&base, |o| o.lots = vec![LotSpend { lot: lot_b, points: 1 }]);
        attack(&w, "another member's lot", spend(&w, foreign),
            Expect::Rule(|e| matches!(e, RuleError::LotOfAnotherMember { .. })))?;
        let stale = RedeemOrder { member_seq: next_seq - 1, ..base.clone() };
        attack(&w, "stale seq", spend(&w, stale),
            Expect::Rule(|e| matches!(e, RuleError::StaleSeq { .. })))?;
        let future = RedeemOrder { member_seq: next_seq + 1, ..base.clone() };
        attack(&w, "future seq", spend(&w, future),
            Expect::Pending(|m| matches!(m, Missing::PriorSpend { .. })))?;

        // Certificates that do not hold.
        let signed = base.clone().sign(&w.members[0].0);
        let order_id = base.id();
        let mut voters: Vec<&PartnerKey> = w.partners.iter().collect();
        voters.sort_by_key(|k| k.id());
        let vote = |k: &Keypair, id: &Hash| VoteSig { partner: PartnerId(k.public()), signature: k.sign(&vote_message(id)) };
        let q = w.genesis.quorum();
        let votes_for = |id: &Hash| -> Vec<VoteSig> { voters.iter().take(q).map(|k| vote(&k.0, id)).collect() };
        let good = votes_for(&order_id);
        let with_votes = |votes: Vec<VoteSig>, order: SignedOrder| {
            w.next_entry(r, Record::Redeem(RedeemCert { order, votes }))
        };
        let mut forged_member = signed.clone();
        forged_member.signature = w.members[1].0.sign(&order_id);
        attack(&w, "forged member signature", with_votes(good.clone(), forged_member),
            Expect::Entry(|e| matches!(e, EntryError::BadCertificate { source: CertError::MemberSignature { .. }, .. })))?;
        attack(&w, "too few votes", with_votes(good[..q - 1].to_vec(), signed.clone()),
            Expect::Rule(|e| cert_error(e, |c| matches!(c, CertError::TooFewVotes { .. }))))?;
        let mut dup = good[..q - 1].to_vec();
        dup.push(good[q - 2].clone());
        attack(&w, "duplicate votes", with_votes(dup, signed.clone()),
            Expect::Rule(|e| cert_error(e, |c| matches!(c, CertError::DuplicateVote { .. }))))?;
        let mut outsider = good[..q - 1].to_vec();
        outsider.push(vote(&w.members[2].0, &order_id));
        outsider.sort_by_key(|v| v.partner);
        attack(&w, "non-partner vote", with_votes(outsider, signed.clone()),
            Expect::Rule(|e| cert_error(e, |c| matches!(c, CertError::VoterNotPartner { .. }))))?;
        let mut forged = good.clone();
        forged[q - 1].signature.0[5] ^= 0x20;
        attack(&w, "forged vote", with_votes(forged, signed.clone()),
            Expect::Entry(|e| matches!(e, EntryError::BadCertificate { source: CertError::BadVote { .. }, .. })))?;
        let mut unsorted = good;
        unsorted.reverse();
        if q > 1 {
            attack(&w, "unsorted votes", with_votes(unsorted, signed),
                Expect::Rule(|e| cert_error(e, |c| matches!(c, CertError::VotesUnsorted { .. }))))?;
        }
        let zero_lot = modified(&base, |o| o.lots.push(LotSpend { lot: short, points: 0 }));
        let zero_lot_votes = votes_for(&zero_lot.id());
        attack(&w, "zero-point lot", with_votes(zero_lot_votes, zero_lot.sign(&w.members[0].0)),
            Expect::Rule(|e| cert_error(e, |c| matches!(c, CertError::Order(_)))))?;

        // Issues.
        let replay = w.history.iter().rev().find_map(|e| match &e.entry.record {
            Record::Issue(i) if i.id() == lot_a => Some(i.clone()),
            _ => None,
        }).unwrap();
        attack(&w, "replayed issue", w.next_entry(0, Record::Issue(replay)),
            Expect::Rule(|e| matches!(e, RuleError::DuplicateLot { .. })))?;
        let zero = Issue { points: 0, ..w.new_issue(0, 0, 1, 100) };
        attack(&w, "zero-point issue", w.next_entry(0, Record::Issue(zero)),
            Expect::Rule(|e| matches!(e, RuleError::ZeroIssue { .. })))?;
        // The identity point: a key nobody can sign with.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let to_nobody = Issue { member: MemberId(PublicKey(identity)), ..w.new_issue(0, 0, 10, 100) };
        attack(&w, "issue to an invalid key", w.next_entry(0, Record::Issue(to_nobody)),
            Expect::Rule(|e| matches!(e, RuleError::BadMemberKey { .. })))?;
        let foreign_issue = w.new_issue(1, 0, 10, 100);
        attack(&w, "issue in another partner's name", w.next_entry(0, Record::Issue(foreign_issue)),
            Expect::Entry(|e| matches!(e, EntryError::IssuerMismatch { .. })))?;

        // Log-layer attacks.
        let fresh = w.new_issue(0, 0, 10, 100);
        let good_entry = w.next_entry(0, Record::Issue(fresh));
        let resign = |e: Entry| e.sign(&w.partners[0].0);
        let mut broken_prev = good_entry.entry.clone();
        broken_prev.prev = Hash([7; 32]);
        attack(&w, "broken prev link", resign(broken_prev),
            Expect::Entry(|e| matches!(e, EntryError::PrevMismatch { .. })))?;
        let mut ahead = good_entry.entry.clone();
        ahead.seq += 1;
        attack(&w, "seq ahead of the log", resign(ahead.clone()),
            Expect::Pending(|m| matches!(m, Missing::PriorEntry { .. })))?;
        let head = w.store().log_head(&w.partners[0].id()).unwrap();
        let direct = check_entry(&w.genesis, &head, &resign(ahead));
        prop_assert!(matches!(direct, Err(EntryError::WrongSeq { .. })), "{:?}", direct);
        let mut forged_entry = good_entry.clone();
        forged_entry.signature.0[9] ^= 1;
        attack(&w, "forged entry signature", forged_entry,
            Expect::Entry(|e| matches!(e, EntryError::BadSignature { .. })))?;
        let mut back_in_time = good_entry.entry.clone();
        back_in_time.time = head.last_time - 1;
        attack(&w, "time going backwards", resign(back_in_time),
            Expect::Entry(|e| matches!(e, EntryError::TimeBackwards { .. })))?;
        let outsider_key = &w.members[0].0;
        let mut by_outsider = good_entry.entry.clone();
        by_outsider.partner = PartnerId(outsider_key.public());
        let before = w.store().state_digest();
        let mut l = w.ledger.clone();
        let refused = l.ingest(by_outsider.sign(outsider_key));
        prop_assert!(matches!(refused, Err(IngestError::Entry(EntryError::NotAPartner { .. }))), "{:?}", refused);
        prop_assert_eq!(l.store().state_digest(), before);

        // A different, validly signed entry at a held position: an equivocation, kept as proof; the
        // ledger state proper (logs, lots, members) is untouched and the partner is refused after.
        let mut rewrite = w.store().log(&w.partners[0].id())[0].entry.clone();
        rewrite.time += 1;
        let mut l = w.ledger.clone();
        match l.ingest(resign(rewrite)) {
            Ok(IngestOutcome::Equivocation(proof)) => prop_assert!(proof.verify().is_ok()),
            other => prop_assert!(false, "expected an equivocation, got {:?}", other),
        }
        prop_assert_eq!(l.store().lots(), w.store().lots());
        prop_assert_eq!(l.store().heads(), w.store().heads());
        let banned = l.ingest(good_entry);
        prop_assert!(matches!(banned, Err(IngestError::Banned { .. })), "{:?}", banned);
    }
}

/// A redeemer whose certificate waits for the member's previous spend reports it as not appended;
/// once withdrawn with `unpark`, its next entry at that position is an ordinary append, not an
/// equivocation by itself (which would halt its log for good).
#[test]
fn a_withdrawn_own_entry_leaves_its_position_free() {
    let mut w = World::new(4);
    let lot = w.issue(0, 0, 50, 10_000);
    w.now += 1;
    let mut order = w.order(1, 0, 5).unwrap();
    order.member_seq += 1; // the spend before it has not arrived
    let cert = w.certify(order.sign(&w.members[0].0), 1);
    let waiting = w.next_entry(1, Record::Redeem(cert));
    let (p1, seq) = (w.partners[1].id(), waiting.entry.seq);
    let outcome = w.ledger.ingest(waiting.clone());
    assert!(
        matches!(
            outcome,
            Ok(IngestOutcome::Pending(Missing::PriorSpend { .. }))
        ),
        "{outcome:?}"
    );

    assert_eq!(w.ledger.unpark(&p1, seq), Some(waiting));
    assert_eq!(w.ledger.unpark(&p1, seq), None);
    assert_eq!(w.ledger.pending_len(), 0);
    let next = w.append(1, Record::Issue(w.new_issue(1, 0, 10, 100)));
    assert_eq!(next.entry.seq, seq);
    assert!(w.store().equivocations().is_empty());
    assert!(w.store().lot(&lot).unwrap().is_some());
}
