//! The node's RocksDB store, against a real database in a temporary directory: round trips of every
//! column, durability across close and reopen, the open-time checks, the vote check-and-set, the same
//! ledger scenario run against the core's in-memory store and this one, and a `kill -9` crash test.

use coalition_core::cert::CertBuilder;
use coalition_core::checkpoint::{Checkpoint, CheckpointSig};
use coalition_core::crypto::Keypair;
use coalition_core::encoding;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::log::{entry_leaf, Equivocation, LogClose, LogHead};
use coalition_core::lot_selection::select_lots;
use coalition_core::memory::MemoryLedger;
use coalition_core::merkle::{self, Blake3Hasher};
use coalition_core::record::{
    reference_hash, Entry, EpochClose, Issue, MemberId, PartnerId, Points, Record, RedeemOrder,
    SignedEntry, SignedOrder, Timestamp, Vote,
};
use coalition_core::replica::{IngestError, IngestOutcome, Ledger};
use coalition_core::settlement::{compute_statement, EpochActivity, SettlementStatement};
use coalition_core::state::{Balance, LedgerStore, LedgerView, Lot, MemberState};
use coalition_core::test_util::test_genesis;
use coalition_node::store::{
    Column, HistoryKind, RecordLocation, SigOutcome, Store, StoreError, StoreWriter,
    CURRENT_SCHEMA_VERSION,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

// -------------------------------------------------------------------------------------------------
// Fixture: a coalition with real keys, and an author that builds valid entries
// -------------------------------------------------------------------------------------------------

const T0: Timestamp = 1_700_000_000;
const EPOCH_SECS: u64 = 100;

/// Four partners and three members, with keys from fixed seeds (so a child process rebuilds them).
struct Net {
    genesis: Genesis,
    partners: Vec<Keypair>,
    members: Vec<Keypair>,
}

impl Net {
    fn new() -> Net {
        let (genesis, partners) = test_genesis(4);
        let members: Vec<Keypair> = (101..=103u8)
            .map(|i| Keypair::from_secret_bytes(&[i; 32]))
            .collect();
        let genesis = Genesis {
            genesis_time: T0,
            epoch_secs: EPOCH_SECS,
            ..genesis
        };
        genesis.validate().expect("test genesis is valid");
        Net {
            genesis,
            partners,
            members,
        }
    }

    fn partner(&self, i: usize) -> PartnerId {
        PartnerId(self.partners[i].public())
    }

    fn member(&self, i: usize) -> MemberId {
        MemberId(self.members[i].public())
    }

    fn open(&self, path: &Path, me: usize) -> StoreWriter {
        Store::open(path, self.genesis.hash(), self.partner(me)).expect("store opens")
    }
}

/// Builds a valid history by appending to an in-memory ledger that plays every author.
struct Author<'n> {
    net: &'n Net,
    ledger: Ledger<MemoryLedger>,
    entries: Vec<SignedEntry>,
}

impl<'n> Author<'n> {
    fn new(net: &'n Net) -> Author<'n> {
        Author {
            net,
            ledger: Ledger::new(net.genesis.clone(), MemoryLedger::new(), 1000),
            entries: Vec::new(),
        }
    }

    fn head(&self, p: usize) -> LogHead {
        self.ledger
            .store()
            .log_head(&self.net.partner(p))
            .expect("memory store reads")
    }

    fn append(&mut self, p: usize, time: Timestamp, record: Record) -> SignedEntry {
        let entry = next_entry(&self.head(p), self.net.partner(p), time, record)
            .sign(&self.net.partners[p]);
        match self.ledger.ingest(entry.clone()) {
            Ok(IngestOutcome::Applied { .. }) => {}
            other => panic!(
                "author's own entry {p}/{} did not apply: {other:?}",
                entry.entry.seq
            ),
        }
        self.entries.push(entry.clone());
        entry
    }

    fn issue(
        &mut self,
        p: usize,
        m: usize,
        points: Points,
        time: Timestamp,
        expires_at: Timestamp,
    ) -> SignedEntry {
        let issue = Issue {
            issuer: self.net.partner(p),
            member: self.net.member(m),
            points,
            expires_at,
            reference: reference_hash(&format!("receipt {p}/{}", self.head(p).size)),
            time,
        };
        self.append(p, time, Record::Issue(issue))
    }

    /// A redemption at partner `p`, certified by a real quorum of partner votes.
    fn redeem(&mut self, p: usize, m: usize, points: Points, time: Timestamp) -> SignedEntry {
        let view = self.ledger.store();
        let member = self.net.member(m);
        let lots = view.member_lots(&member).expect("memory store reads");
        let order = RedeemOrder {
            member,
            member_seq: view.member(&member).expect("memory store reads").next_seq,
            redeemer: self.net.partner(p),
            points,
            lots: select_lots(&lots, points, time).expect("member has the points"),
            time,
        }
        .sign(&self.net.members[m]);
        let mut builder = CertBuilder::new(&self.net.genesis, order).expect("order is well formed");
        for voter in self.net.partners.iter().take(self.net.genesis.quorum()) {
            builder
                .add(&Vote::sign(builder.order_id(), voter))
                .expect("vote is valid");
        }
        let cert = builder.finish().expect("quorum reached").into_inner();
        self.append(p, time, Record::Redeem(cert))
    }

    fn close(&mut self, p: usize, time: Timestamp) -> SignedEntry {
        let epoch = self.head(p).open_epoch;
        self.append(p, time, Record::EpochClose(EpochClose { epoch }))
    }
}

fn next_entry(head: &LogHead, partner: PartnerId, time: Timestamp, record: Record) -> Entry {
    Entry {
        partner,
        seq: head.size,
        prev: head.last,
        epoch: head.open_epoch,
        time,
        record,
    }
}

/// A small history over two closed epochs: issues by every partner to every member, redemptions
/// (some paying from lots of several issuers), a lot that expires in between, and every log closed.
fn history(net: &Net) -> Vec<SignedEntry> {
    let mut a = Author::new(net);
    for step in 0..24u64 {
        let (p, m) = ((step % 4) as usize, (step % 3) as usize);
        let expires = if step % 5 == 0 { T0 + 150 } else { T0 + 10_000 };
        a.issue(p, m, 10 + step, T0 + step, expires);
        if step % 6 == 5 {
            a.redeem((p + 1) % 4, m, 15, T0 + step);
        }
    }
    for p in 0..4 {
        a.close(p, T0 + EPOCH_SECS + p as u64);
    }
    for step in 0..12u64 {
        let (p, m) = ((step % 4) as usize, (step % 3) as usize);
        let time = T0 + 160 + step;
        if step % 3 == 0 {
            a.redeem(p, m, 20 + step, time);
        } else {
            a.issue(p, m, 5 + step, time, T0 + 20_000);
        }
    }
    for p in 0..4 {
        a.close(p, T0 + 2 * EPOCH_SECS + p as u64);
    }
    a.entries
}

/// A deterministic shuffle (xorshift), so dependencies arrive out of order.
fn shuffled<T>(mut items: Vec<T>, mut seed: u64) -> Vec<T> {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    items
}

// -------------------------------------------------------------------------------------------------
// One scenario, two stores
// -------------------------------------------------------------------------------------------------

/// Everything a ledger store exposes, read through the core's traits.
#[derive(Debug, PartialEq)]
struct Snapshot {
    heads: Vec<LogHead>,
    logs: Vec<Vec<SignedEntry>>,
    ids: Vec<Vec<Option<Hash>>>,
    lots: Vec<Option<Lot>>,
    members: Vec<MemberState>,
    member_lots: Vec<Vec<Lot>>,
    balances: Vec<Balance>,
    closes: Vec<Option<LogClose>>,
    equivocations: Vec<Option<Equivocation>>,
}

fn snapshot<S: LedgerStore>(net: &Net, store: &S, lot_ids: &[Hash]) -> Snapshot
where
    S::Error: Debug,
{
    let partners: Vec<PartnerId> = (0..4).map(|p| net.partner(p)).collect();
    let members: Vec<MemberId> = (0..3).map(|m| net.member(m)).collect();
    let heads: Vec<LogHead> = partners
        .iter()
        .map(|p| store.log_head(p).unwrap())
        .collect();
    let logs = partners
        .iter()
        .zip(&heads)
        .map(|(p, h)| {
            (0..=h.size)
                .map_while(|seq| store.entry(p, seq).unwrap())
                .collect()
        })
        .collect();
    let ids = partners
        .iter()
        .zip(&heads)
        .map(|(p, h)| {
            (0..=h.size)
                .map(|seq| store.entry_id(p, seq).unwrap())
                .collect()
        })
        .collect();
    let member_lots: Vec<Vec<Lot>> = members
        .iter()
        .map(|m| {
            let mut lots = store.member_lots(m).unwrap();
            lots.sort_by_key(|l| l.id);
            lots
        })
        .collect();
    Snapshot {
        heads,
        logs,
        ids,
        lots: lot_ids.iter().map(|id| store.lot(id).unwrap()).collect(),
        members: members.iter().map(|m| store.member(m).unwrap()).collect(),
        balances: member_lots
            .iter()
            .map(|lots| Balance::of_lots(lots, T0 + 200).unwrap())
            .collect(),
        member_lots,
        closes: partners
            .iter()
            .flat_map(|p| (0..3).map(move |e| (*p, e)))
            .map(|(p, e)| store.log_close(&p, e).unwrap())
            .collect(),
        equivocations: partners
            .iter()
            .map(|p| store.equivocation(p).unwrap())
            .collect(),
    }
}

/// The scenario, generic over the store: feeds the history in a shuffled order through the core's
/// driver, then an equivocation by partner 3, then checks what any correct store must show.
fn run_scenario<S: LedgerStore>(
    net: &Net,
    store: S,
    entries: &[SignedEntry],
) -> (Ledger<S>, Snapshot)
where
    S::Error: Debug,
{
    let mut ledger = Ledger::new(net.genesis.clone(), store, 1000);
    let mut parked = 0;
    for entry in shuffled(entries.to_vec(), 0x5eed_1234_abcd_0001) {
        match ledger.ingest(entry.clone()) {
            Ok(IngestOutcome::Applied { rejected, .. }) => {
                assert!(rejected.is_empty(), "{rejected:?}")
            }
            Ok(IngestOutcome::Pending(_)) => parked += 1,
            other => panic!(
                "entry {}/{}: {other:?}",
                entry.entry.partner, entry.entry.seq
            ),
        }
    }
    assert!(
        parked > entries.len() / 4,
        "the shuffle makes entries wait ({parked} parked)"
    );
    assert_eq!(
        ledger.pending_len(),
        0,
        "everything applies once all entries are in"
    );
    // A duplicate changes nothing.
    assert!(matches!(
        ledger.ingest(entries[0].clone()),
        Ok(IngestOutcome::Duplicate)
    ));

    // Partner 3 signs a second entry for its last position: a fraud proof, then a ban.
    let p3 = net.partner(3);
    let head = ledger.store().log_head(&p3).unwrap();
    let last = ledger.store().entry(&p3, head.size - 1).unwrap().unwrap();
    let mut forged = last.entry.clone();
    forged.time += 1;
    let forged = forged.sign(&net.partners[3]);
    match ledger.ingest(forged.clone()) {
        Ok(IngestOutcome::Equivocation(proof)) => {
            assert_eq!((proof.first.clone(), proof.second.clone()), (last, forged));
        }
        other => panic!("expected an equivocation, got {other:?}"),
    }
    let next = next_entry(
        &head,
        p3,
        T0 + 500,
        Record::EpochClose(EpochClose {
            epoch: head.open_epoch,
        }),
    )
    .sign(&net.partners[3]);
    assert!(matches!(
        ledger.ingest(next),
        Err(IngestError::Banned { .. })
    ));

    let lot_ids: Vec<Hash> = entries
        .iter()
        .filter_map(|e| match &e.entry.record {
            Record::Issue(i) => Some(i.id()),
            _ => None,
        })
        .collect();
    let snap = snapshot(net, ledger.store(), &lot_ids);
    assert!(snap.lots.iter().all(Option::is_some), "every lot is stored");
    let redemptions = entries
        .iter()
        .filter(|e| matches!(e.entry.record, Record::Redeem(_)))
        .count();
    assert_eq!(
        snap.members.iter().map(|m| m.next_seq).sum::<u64>(),
        redemptions as u64,
        "every redemption applied"
    );
    for (head, log) in snap.heads.iter().zip(&snap.logs) {
        assert_eq!(head.size, log.len() as u64);
        assert_eq!(head.open_epoch, 2);
    }
    (ledger, snap)
}

#[test]
fn same_scenario_same_state_in_memory_and_in_rocksdb() {
    let net = Net::new();
    let entries = history(&net);
    let dir = tempfile::tempdir().unwrap();

    let (_, in_memory) = run_scenario(&net, MemoryLedger::new(), &entries);
    let (ledger, on_disk) = run_scenario(&net, net.open(dir.path(), 0), &entries);
    assert_eq!(in_memory, on_disk);

    // The store's own indexes agree with the logs.
    let store = ledger.into_store();
    for (p, head) in on_disk.heads.iter().enumerate() {
        let partner = net.partner(p);
        let leaves = store.leaf_hashes(&partner, head.size).unwrap();
        let ids: Vec<Hash> = on_disk.logs[p]
            .iter()
            .map(|e| entry_leaf(&e.id()))
            .collect();
        assert_eq!(leaves, ids);
        assert_eq!(
            merkle::root(&Blake3Hasher, &leaves, head.size).unwrap(),
            head.root()
        );
        assert_eq!(store.leaf_hashes(&partner, 3).unwrap().len(), 3);
        let close = store.close(&partner, 0).unwrap().unwrap();
        assert_eq!(
            merkle::root(&Blake3Hasher, &leaves, close.size).unwrap(),
            close.root
        );
        for e in &on_disk.logs[p] {
            let at = RecordLocation {
                partner,
                seq: e.entry.seq,
            };
            let found = store.record_location(&e.entry.record.id()).unwrap();
            match e.entry.record {
                Record::EpochClose(_) => {
                    assert_eq!(found, None, "closes are found by (partner, epoch)")
                }
                _ => assert_eq!(found, Some(at)),
            }
        }
        let range = store.entries(&partner, 2, 3).unwrap();
        assert_eq!(range, on_disk.logs[p][2..5]);
        let bytes = store.entries_bytes(&partner, 2, 3).unwrap();
        assert_eq!(
            bytes,
            range.iter().map(encoding::encode).collect::<Vec<_>>()
        );
        assert_eq!(
            store.entry_bytes(&partner, 1).unwrap(),
            Some(encoding::encode(&on_disk.logs[p][1]))
        );
        assert_eq!(store.entries(&partner, head.size, 10).unwrap(), vec![]);
    }
    let heads = store.heads().unwrap();
    assert_eq!(heads.len(), 4);
    for (partner, head) in &heads {
        let p = net.genesis.index_of(partner).unwrap();
        assert_eq!(head, &on_disk.heads[p]);
    }
    assert_eq!(store.fraud_proofs().unwrap().len(), 1);

    // History: every earn and redeem of member 0, in time order, matching the logs.
    let member = net.member(0);
    let all = store.history(&member, usize::MAX).unwrap();
    let expected: Vec<(Timestamp, HistoryKind, Points)> = entries
        .iter()
        .filter_map(|e| match &e.entry.record {
            Record::Issue(i) if i.member == member => Some((i.time, HistoryKind::Earn, i.points)),
            Record::Redeem(c) if c.order.order.member == member => Some((
                c.order.order.time,
                HistoryKind::Redeem,
                c.order.order.points,
            )),
            _ => None,
        })
        .collect();
    let mut expected_sorted = expected;
    expected_sorted.sort_by_key(|(t, _, _)| *t);
    let got: Vec<_> = all
        .iter()
        .map(|h| (h.time, h.row.kind, h.row.points))
        .collect();
    assert_eq!(got, expected_sorted);
    let recent = store.history(&member, 2).unwrap();
    assert_eq!(
        recent,
        all[all.len() - 2..],
        "the most recent lines, oldest first"
    );
    assert!(store
        .history(&MemberId(Keypair::generate().public()), 10)
        .unwrap()
        .is_empty());

    // Close and reopen: the same state, read back from disk.
    let lot_ids: Vec<Hash> = on_disk.lots.iter().flatten().map(|l| l.id).collect();
    drop(store);
    let store = net.open(dir.path(), 0);
    assert_eq!(snapshot(&net, &store, &lot_ids), on_disk);
    assert_eq!(store.history(&member, usize::MAX).unwrap(), all);
}

// -------------------------------------------------------------------------------------------------
// Round trips of the non-ledger columns, and durability
// -------------------------------------------------------------------------------------------------

/// A statement and checkpoint of `epoch` (of no activity; its closes are made up).
fn epoch_of(net: &Net, epoch: u64) -> (SettlementStatement, Checkpoint) {
    let activity = EpochActivity {
        epoch,
        ..EpochActivity::default()
    };
    let prev = (epoch > 0).then(|| {
        let mut s = compute_statement(&net.genesis, &EpochActivity::default(), None).unwrap();
        s.epoch = epoch - 1;
        s
    });
    let statement = compute_statement(&net.genesis, &activity, prev.as_ref()).unwrap();
    let closes: BTreeMap<PartnerId, LogClose> = (0..4)
        .map(|p| {
            let close = LogClose {
                epoch,
                size: epoch + 1,
                root: Hash([p as u8; 32]),
            };
            (net.partner(p), close)
        })
        .collect();
    let checkpoint =
        Checkpoint::compute(&net.genesis, epoch, &closes, None, statement.hash()).unwrap();
    (statement, checkpoint)
}

fn order(net: &Net, m: usize, seq: u64, points: Points) -> SignedOrder {
    RedeemOrder {
        member: net.member(m),
        member_seq: seq,
        redeemer: net.partner(0),
        points,
        lots: vec![coalition_core::record::LotSpend {
            lot: Hash([9; 32]),
            points,
        }],
        time: T0,
    }
    .sign(&net.members[m])
}

#[test]
fn every_column_round_trips_and_survives_reopen() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let store = net.open(dir.path(), 0);
    assert_eq!(store.me(), net.partner(0));
    assert_eq!(store.genesis_hash(), net.genesis.hash());

    // Ledger columns through a commit.
    let mut ledger = Ledger::new(net.genesis.clone(), store, 10);
    let mut author = Author::new(&net);
    let issue = author.issue(0, 1, 42, T0 + 1, T0 + 1000);
    let redeem = author.redeem(0, 1, 40, T0 + 2);
    for e in [&issue, &redeem] {
        assert!(matches!(
            ledger.ingest(e.clone()),
            Ok(IngestOutcome::Applied { .. })
        ));
    }
    let Record::Issue(i) = &issue.entry.record else {
        unreachable!()
    };
    let lot_id = i.id();

    // Votes, in-flight orders, fraud proofs, checkpoints, signatures, statements.
    let store = ledger.store_mut();
    let o1 = order(&net, 2, 0, 5);
    let o2 = order(&net, 2, 1, 6);
    let vote = Vote::sign(o1.order.id(), &net.partners[0]);
    assert_eq!(
        store
            .put_vote_synced(&net.member(2), 0, &vote, 7, None)
            .unwrap(),
        vote
    );
    store.put_inflight(&o1).unwrap();
    store.put_inflight(&o2).unwrap();
    store.remove_inflight(&o2.order.id()).unwrap();
    let first = next_entry(
        &LogHead::empty(),
        net.partner(2),
        T0,
        Record::EpochClose(EpochClose { epoch: 0 }),
    );
    let mut second = first.clone();
    second.time += 1;
    let proof =
        Equivocation::new(first.sign(&net.partners[2]), second.sign(&net.partners[2])).unwrap();
    assert!(store.put_fraud(&proof).unwrap());
    assert!(!store.put_fraud(&proof).unwrap(), "one proof per position");
    let (statement3, checkpoint3) = epoch_of(&net, 3);
    let sig = |p: usize, cp: &Checkpoint| CheckpointSig::sign(cp, &net.partners[p]);
    store
        .put_epoch(&statement3, &checkpoint3, &sig(0, &checkpoint3))
        .unwrap();
    assert_eq!(
        store.put_checkpoint_sig(&sig(1, &checkpoint3)).unwrap(),
        SigOutcome::Stored
    );
    assert_eq!(
        store.put_checkpoint_sig(&sig(1, &checkpoint3)).unwrap(),
        SigOutcome::Duplicate
    );
    let (_, other3) = epoch_of(&net, 3);
    let other3 = Checkpoint {
        statement: Hash([7; 32]),
        ..other3
    };
    assert_eq!(
        store.put_checkpoint_sig(&sig(1, &other3)).unwrap(),
        SigOutcome::Conflict {
            first: checkpoint3.hash()
        },
        "one checkpoint signature per partner and epoch: the first is kept"
    );
    let (_, checkpoint4) = epoch_of(&net, 4);
    store.put_checkpoint_sig(&sig(0, &checkpoint4)).unwrap();

    let check = |store: &Store| {
        let p0 = net.partner(0);
        assert_eq!(store.entry(&p0, 0).unwrap().as_ref(), Some(&issue));
        assert_eq!(store.entry(&p0, 1).unwrap().as_ref(), Some(&redeem));
        assert_eq!(store.entry(&p0, 2).unwrap(), None);
        assert_eq!(store.log_head(&p0).unwrap().size, 2);
        assert_eq!(store.log_head(&net.partner(1)).unwrap(), LogHead::empty());
        let lot = store.lot(&lot_id).unwrap().unwrap();
        assert_eq!((lot.points, lot.remaining), (42, 2));
        assert_eq!(store.member_lots(&net.member(1)).unwrap(), vec![lot]);
        assert_eq!(
            store.member(&net.member(1)).unwrap(),
            MemberState { next_seq: 1 }
        );
        assert_eq!(
            store.member(&net.member(0)).unwrap(),
            MemberState::default()
        );
        assert_eq!(
            store.record_location(&lot_id).unwrap(),
            Some(RecordLocation {
                partner: p0,
                seq: 0
            })
        );
        let kinds: Vec<_> = store
            .history(&net.member(1), 10)
            .unwrap()
            .iter()
            .map(|h| h.row.kind)
            .collect();
        assert_eq!(kinds, vec![HistoryKind::Earn, HistoryKind::Redeem]);
        assert_eq!(store.vote(&net.member(2), 0).unwrap(), Some(vote.clone()));
        assert_eq!(store.vote(&net.member(2), 1).unwrap(), None);
        assert_eq!(store.inflight().unwrap(), vec![o1.clone()]);
        assert_eq!(store.fraud_proofs().unwrap(), vec![proof.clone()]);
        assert_eq!(
            store.equivocation(&net.partner(2)).unwrap(),
            Some(proof.clone())
        );
        assert_eq!(store.equivocation(&net.partner(1)).unwrap(), None);
        assert_eq!(store.checkpoint(3).unwrap().as_ref(), Some(&checkpoint3));
        assert_eq!(store.checkpoint(4).unwrap(), None);
        let mut sigs = vec![sig(0, &checkpoint3), sig(1, &checkpoint3)];
        sigs.sort_by_key(|s| s.partner);
        assert_eq!(store.checkpoint_sigs(3).unwrap(), sigs);
        assert_eq!(
            store.checkpoint_sigs(4).unwrap(),
            vec![sig(0, &checkpoint4)]
        );
        assert_eq!(store.checkpoint_sigs(5).unwrap(), vec![]);
        assert_eq!(store.statement(3).unwrap().as_ref(), Some(&statement3));
    };
    check(&ledger.store().reader());
    drop(ledger);
    check(&net.open(dir.path(), 0).reader());
}

#[test]
fn store_is_a_cheap_shared_handle() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Store>();

    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = net.open(dir.path(), 0);
    let (statement, checkpoint) = epoch_of(&net, 1);
    let sig = CheckpointSig::sign(&checkpoint, &net.partners[0]);
    store.put_epoch(&statement, &checkpoint, &sig).unwrap();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (s, want) = (store.reader(), statement.clone());
            std::thread::spawn(move || {
                (0..100).all(|_| s.statement(1).unwrap() == Some(want.clone()))
            })
        })
        .collect();
    assert!(readers.into_iter().all(|r| r.join().unwrap()));
}

// -------------------------------------------------------------------------------------------------
// Votes: check-and-set
// -------------------------------------------------------------------------------------------------

#[test]
fn vote_is_check_and_set() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = net.open(dir.path(), 0);
    let member = net.member(0);
    let a = Vote::sign(order(&net, 0, 0, 5).order.id(), &net.partners[0]);
    let b = Vote::sign(order(&net, 0, 0, 6).order.id(), &net.partners[0]);

    assert_eq!(store.put_vote_synced(&member, 0, &a, 10, None).unwrap(), a);
    assert_eq!(
        store.put_vote_synced(&member, 0, &a, 10, None).unwrap(),
        a,
        "asked again: the same vote"
    );
    assert_eq!(store.vote_time(&member, 0).unwrap(), Some(10));
    // Releasing an order that is not the one voted for replaces nothing.
    let c = Vote::sign(order(&net, 0, 0, 7).order.id(), &net.partners[0]);
    for released in [None, Some(&c.order_id)] {
        match store.put_vote_synced(&member, 0, &b, 20, released) {
            Err(StoreError::VoteConflict {
                member: m,
                seq: 0,
                existing,
                requested,
            }) => {
                assert_eq!((m, existing, requested), (member, a.order_id, b.order_id));
            }
            other => panic!("expected a vote conflict, got {other:?}"),
        }
    }
    assert_eq!(store.vote(&member, 0).unwrap(), Some(a.clone()));
    assert_eq!(store.vote_time(&member, 0).unwrap(), Some(10));
    // Another seq is another question.
    assert_eq!(store.put_vote_synced(&member, 1, &b, 20, None).unwrap(), b);
    // Released by the vote rule: the vote and its order's time are replaced together.
    assert_eq!(
        store
            .put_vote_synced(&member, 0, &c, 30, Some(&a.order_id))
            .unwrap(),
        c
    );
    assert_eq!(store.vote(&member, 0).unwrap(), Some(c));
    assert_eq!(store.vote_time(&member, 0).unwrap(), Some(30));
    // Racing voters cannot exist: the one `StoreWriter` writes through `&mut self`, so votes are
    // serialised by the types (the node's writer thread owns it).
}

// -------------------------------------------------------------------------------------------------
// Open-time checks and corruption
// -------------------------------------------------------------------------------------------------

/// Writes `value` under `key` in `column` through a raw RocksDB handle, bypassing the store.
fn raw_put(path: &Path, column: &str, key: &[u8], value: &[u8]) {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, path).unwrap();
    let db = rocksdb::DB::open_cf(&opts, path, names).unwrap();
    db.put_cf(db.cf_handle(column).unwrap(), key, value)
        .unwrap();
}

#[test]
fn fresh_database_gets_its_metadata_and_reopens() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(net.open(&path, 1));
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, &path).unwrap();
    for column in Column::ALL {
        assert!(
            names.iter().any(|n| n == column.name()),
            "column {column} exists"
        );
    }
    let db = rocksdb::DB::open_cf(&opts, &path, &names).unwrap();
    let meta = db.cf_handle("meta").unwrap();
    let version = db.get_cf(meta, b"schema_version").unwrap().unwrap();
    assert_eq!(
        encoding::decode::<u32>(&version).unwrap(),
        CURRENT_SCHEMA_VERSION
    );
    drop(db);
    drop(net.open(&path, 1));
}

#[test]
fn wrong_schema_version_is_refused() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    drop(net.open(dir.path(), 0));
    raw_put(
        dir.path(),
        "meta",
        b"schema_version",
        &encoding::encode(&(CURRENT_SCHEMA_VERSION + 1)),
    );
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(0)).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaMismatch { found, expected }
            if found == CURRENT_SCHEMA_VERSION + 1 && expected == CURRENT_SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("schema version"), "{err}");
}

#[test]
fn unknown_columns_from_a_newer_build_are_reported_as_a_schema_mismatch() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    drop(net.open(dir.path(), 0));
    {
        let opts = rocksdb::Options::default();
        let names = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&opts, dir.path(), names).unwrap();
        db.create_cf("from_the_future", &opts).unwrap();
        db.put_cf(
            db.cf_handle("meta").unwrap(),
            b"schema_version",
            encoding::encode(&99u32),
        )
        .unwrap();
    }
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(0)).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaMismatch { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn wrong_genesis_or_partner_is_refused() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    drop(net.open(dir.path(), 0));
    let other = Hash([0xab; 32]);
    let err = Store::open(dir.path(), other, net.partner(0)).unwrap_err();
    assert!(
        matches!(err, StoreError::WrongGenesis { found, expected } if found == net.genesis.hash() && expected == other),
        "{err:?}"
    );
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(1)).unwrap_err();
    assert!(matches!(err, StoreError::WrongPartner { .. }), "{err:?}");
    assert!(err.to_string().contains("belongs to partner"), "{err}");
    // Neither refusal touched the database.
    drop(net.open(dir.path(), 0));
}

#[test]
fn not_a_database_is_refused_with_the_path() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a database").unwrap();
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(0)).unwrap_err();
    match &err {
        StoreError::Open { path, reason } => {
            assert_eq!(path, dir.path());
            assert!(reason.contains("no RocksDB database"), "{reason}");
        }
        other => panic!("expected Open, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing was created"
    );

    let file = dir.path().join("notes.txt");
    let err = Store::open(&file, net.genesis.hash(), net.partner(0)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { reason, .. } if reason.contains("is a file")),
        "{err:?}"
    );
}

#[test]
fn corrupt_database_files_are_refused() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    drop(net.open(dir.path(), 0));
    std::fs::write(dir.path().join("CURRENT"), b"\x00\x01garbage").unwrap();
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(0)).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let _first = net.open(dir.path(), 0);
    let err = Store::open(dir.path(), net.genesis.hash(), net.partner(0)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { reason, .. } if reason.contains("another coalition-node")),
        "{err:?}"
    );
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let mut author = Author::new(&net);
    let issue = author.issue(0, 0, 10, T0, T0 + 1000);
    let Record::Issue(i) = &issue.entry.record else {
        unreachable!()
    };
    let lot_id = i.id();
    {
        let mut ledger = Ledger::new(net.genesis.clone(), net.open(dir.path(), 0), 10);
        assert!(matches!(
            ledger.ingest(issue.clone()),
            Ok(IngestOutcome::Applied { .. })
        ));
    }
    let p0 = net.partner(0);
    let mut entry_key = p0.0 .0.to_vec();
    entry_key.extend_from_slice(&0u64.to_be_bytes());
    raw_put(dir.path(), "lots", &lot_id.0, b"\x01garbage");
    raw_put(dir.path(), "entries", &entry_key, b"");
    raw_put(dir.path(), "heads", &p0.0 .0, &[7, 7, 7]);
    raw_put(
        dir.path(),
        "statements",
        &5u64.to_be_bytes(),
        b"\x01not a statement",
    );
    // A valid signature of partner 1 for epoch 3, stored under partner 0's key for epoch 6.
    let (_, checkpoint3) = epoch_of(&net, 3);
    let misplaced = CheckpointSig::sign(&checkpoint3, &net.partners[1]);
    let mut sig_key = 6u64.to_be_bytes().to_vec();
    sig_key.extend_from_slice(&p0.0 .0);
    raw_put(
        dir.path(),
        "checkpoint_sigs",
        &sig_key,
        &encoding::encode(&misplaced),
    );
    raw_put(dir.path(), "votes", &[1, 2, 3], &encoding::encode(&1u64));

    let store = net.open(dir.path(), 0);
    let corrupt_in = |r: Result<(), StoreError>, column: Column| match r {
        Err(StoreError::Corrupt {
            column: c,
            key,
            reason,
        }) => {
            assert_eq!(c, column);
            assert!(!key.is_empty() && !reason.is_empty());
        }
        other => panic!("expected corruption in {column}, got {other:?}"),
    };
    corrupt_in(store.lot(&lot_id).map(drop), Column::Lots);
    corrupt_in(store.member_lots(&net.member(0)).map(drop), Column::Lots);
    corrupt_in(store.entry(&p0, 0).map(drop), Column::Entries);
    corrupt_in(store.entry_bytes(&p0, 0).map(drop), Column::Entries);
    corrupt_in(store.entries(&p0, 0, 10).map(drop), Column::Entries);
    corrupt_in(store.log_head(&p0).map(drop), Column::Heads);
    corrupt_in(store.heads().map(drop), Column::Heads);
    corrupt_in(store.statement(5).map(drop), Column::Statements);
    corrupt_in(store.checkpoint_sigs(6).map(drop), Column::CheckpointSigs);
    let err = store.lot(&lot_id).unwrap_err();
    assert!(err.to_string().contains("column lots"), "{err}");

    // A garbled metadata value is also named, at open.
    drop(store);
    raw_put(dir.path(), "meta", b"genesis_hash", b"\x01short");
    let err = Store::open(dir.path(), net.genesis.hash(), p0).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                column: Column::Meta,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn commit_refuses_out_of_order_and_mismatched_changes() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = net.open(dir.path(), 0);
    let mut author = Author::new(&net);
    let e0 = author.issue(0, 0, 10, T0, T0 + 1000);
    let e1 = author.issue(0, 0, 11, T0 + 1, T0 + 1000);
    let e2 = author.issue(0, 0, 12, T0 + 2, T0 + 1000);
    let verify = |e: &SignedEntry| coalition_core::log::verify_entry(&net.genesis, e).unwrap();
    let changes0 = coalition_core::ledger::apply(&net.genesis, &store, &verify(&e0)).unwrap();
    store.commit(&verify(&e0), &changes0).unwrap();
    // Changes computed for e2 by a ledger that holds e0 and e1, committed here where e1 is missing.
    let changes2 = {
        let mut l = Ledger::new(net.genesis.clone(), MemoryLedger::new(), 10);
        l.ingest(e0).unwrap();
        l.ingest(e1.clone()).unwrap();
        coalition_core::ledger::apply(&net.genesis, l.store(), &verify(&e2)).unwrap()
    };
    let err = store.commit(&verify(&e2), &changes2).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OutOfOrder {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.commit(&verify(&e1), &changes2).unwrap_err();
    assert!(
        matches!(err, StoreError::ChangesMismatch { seq: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        store.log_head(&net.partner(0)).unwrap().size,
        1,
        "nothing was written"
    );
}

// -------------------------------------------------------------------------------------------------
// Crash: acknowledged own entries survive kill -9
// -------------------------------------------------------------------------------------------------

const CRASH_DIR_VAR: &str = "COALITION_STORE_CRASH_CHILD_DIR";
const ACKS_BEFORE_KILL: u64 = 40;

/// Own entry number `seq` of partner 0, the same in the child and in the parent.
fn own_entries(net: &Net, count: u64) -> impl Iterator<Item = SignedEntry> + '_ {
    let mut head = LogHead::empty();
    (0..count).map(move |seq| {
        let issue = Issue {
            issuer: net.partner(0),
            member: net.member(seq as usize % 3),
            points: seq + 1,
            expires_at: T0 + 1_000_000,
            reference: reference_hash(&format!("receipt {seq}")),
            time: T0 + seq,
        };
        let entry = next_entry(&head, net.partner(0), T0 + seq, Record::Issue(issue));
        head = head.advance(&entry).unwrap();
        entry.sign(&net.partners[0])
    })
}

/// Not a test on its own: the child half of the crash test. Without the environment variable it
/// does nothing; with it, it commits own entries one by one and prints `ack <seq>` after each commit
/// returns, until it is killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_VAR) else {
        return;
    };
    let net = Net::new();
    let mut ledger = Ledger::new(net.genesis.clone(), net.open(Path::new(&dir), 0), 10);
    let mut out = std::io::stdout().lock();
    for entry in own_entries(&net, 100_000) {
        let seq = entry.entry.seq;
        assert!(matches!(
            ledger.ingest(entry),
            Ok(IngestOutcome::Applied { .. })
        ));
        use std::io::Write;
        writeln!(out, "ack {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_own_entries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CRASH_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            acked = seq.trim().parse::<u64>().unwrap() + 1;
            if acked >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    // SIGKILL, right after the child acknowledged the N-th entry (it may have committed more).
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        acked >= ACKS_BEFORE_KILL,
        "the child stopped after {acked} acks ({status}); stderr:\n{stderr}"
    );
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child was killed, not finished: {status}"
        );
    }

    let net = Net::new();
    let store = net.open(dir.path(), 0);
    let head = store.log_head(&net.partner(0)).unwrap();
    assert!(
        head.size >= acked,
        "{} entries survived, {acked} were acknowledged",
        head.size
    );
    for expected in own_entries(&net, acked) {
        let seq = expected.entry.seq;
        assert_eq!(
            store.entry(&net.partner(0), seq).unwrap(),
            Some(expected),
            "acknowledged entry {seq}"
        );
    }
    let lots: Points = (0..3)
        .map(|m| store.member_lots(&net.member(m)).unwrap().len() as u64)
        .sum();
    assert_eq!(
        lots, head.size,
        "every surviving entry's lot survived with it"
    );
}

// -------------------------------------------------------------------------------------------------
// Memory: a million lots
// -------------------------------------------------------------------------------------------------

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Run with `cargo test -p coalition-node --test store -- --ignored a_million_lots`.
#[test]
#[ignore = "slow: validates and commits a million issues"]
fn a_million_lots_stay_under_512_mib() {
    const LOTS: u64 = 1_000_000;
    let net = Net::new();
    let members: Vec<MemberId> = (0..1000u32)
        .map(|i| {
            let mut seed = [0x55u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            MemberId(Keypair::from_secret_bytes(&seed).public())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut store = net.open(dir.path(), 0);
    // Partner 1's log: a replicated peer log, committed without sync, as during catch-up.
    let (p, key) = (net.partner(1), &net.partners[1]);
    let mut head = LogHead::empty();
    let started = std::time::Instant::now();
    for seq in 0..LOTS {
        let issue = Issue {
            issuer: p,
            member: members[(seq % 1000) as usize],
            points: 1 + seq % 500,
            expires_at: T0 + 10_000_000,
            reference: reference_hash(&format!("receipt {seq}")),
            time: T0 + seq,
        };
        let entry = next_entry(&head, p, T0 + seq, Record::Issue(issue)).sign(key);
        let verified = coalition_core::log::verify_entry(&net.genesis, &entry).unwrap();
        let changes = coalition_core::ledger::apply(&net.genesis, &store, &verified).unwrap();
        store.commit(&verified, &changes).unwrap();
        head = changes.head;
    }
    let elapsed = started.elapsed();
    assert_eq!(
        store.member_lots(&members[7]).unwrap().len(),
        (LOTS / 1000) as usize
    );
    let peak = peak_rss_bytes().unwrap_or(0);
    eprintln!(
        "{LOTS} lots committed in {elapsed:?}; peak RSS {} MiB",
        peak >> 20
    );
    assert!(peak < 512 << 20, "peak RSS {} MiB", peak >> 20);
}
