//! The audit export and record proofs over a small coalition history built here with real keys:
//! a faithful export verifies; every single-byte change to it, and to a record proof, is caught.

use coalition_core::audit::{
    verify_export, write_item, ExportHeader, ExportItem, ExportTrailer, EXPORT_MAGIC,
};
use coalition_core::cert::CertBuilder;
use coalition_core::checkpoint::{Checkpoint, CheckpointSig, RecordProof, SealedCheckpoint};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::{Genesis, PointValue};
use coalition_core::hash::Hash;
use coalition_core::log::entry_leaf;
use coalition_core::lot_selection::select_lots;
use coalition_core::memory::MemoryLedger;
use coalition_core::merkle::{Blake3Hasher, InclusionProof};
use coalition_core::record::*;
use coalition_core::replica::Ledger;
use coalition_core::settlement::epoch_activity;
use coalition_core::settlement::{compute_statement, SettlementStatement};
use coalition_core::state::LedgerView;
use coalition_core::test_util::test_genesis;
use std::collections::BTreeMap;

const START: Timestamp = 1_000_000;
const EPOCH: u64 = 100;

struct World {
    genesis: Genesis,
    partners: Vec<Keypair>,
    members: Vec<Keypair>,
    ledger: Ledger<MemoryLedger>,
    now: Timestamp,
    receipts: u64,
}

impl World {
    fn new() -> World {
        let (genesis, partners) = test_genesis(4);
        let members = (50..53u8)
            .map(|b| Keypair::from_secret_bytes(&[b; 32]))
            .collect();
        let genesis = Genesis {
            genesis_time: START,
            epoch_secs: EPOCH,
            point_value: PointValue {
                minor_units: 1,
                per_points: 2,
            },
            fee_bps: 150,
            max_clock_skew_secs: 60,
            ..genesis
        };
        genesis.validate().unwrap();
        World {
            ledger: Ledger::new(genesis.clone(), MemoryLedger::new(), 1000),
            genesis,
            partners,
            members,
            now: START,
            receipts: 0,
        }
    }

    fn pid(&self, p: usize) -> PartnerId {
        PartnerId(self.partners[p].public())
    }

    fn append(&mut self, p: usize, record: Record) {
        let head = self.ledger.store().log_head(&self.pid(p)).unwrap();
        let entry = Entry {
            partner: self.pid(p),
            seq: head.size,
            prev: head.last,
            epoch: head.open_epoch,
            time: self.now,
            record,
        }
        .sign(&self.partners[p]);
        self.ledger.ingest(entry).unwrap();
        self.now += 1;
    }

    fn issue(&mut self, p: usize, m: usize, points: u64, ttl: u64) {
        self.receipts += 1;
        let issue = Issue {
            issuer: self.pid(p),
            member: MemberId(self.members[m].public()),
            points,
            expires_at: self.now + ttl,
            reference: reference_hash(&format!("r{}", self.receipts)),
            time: self.now,
        };
        self.append(p, Record::Issue(issue));
    }

    fn redeem(&mut self, p: usize, m: usize, points: u64) {
        let member = MemberId(self.members[m].public());
        let lots = self.ledger.store().member_lots(&member).unwrap();
        let order = RedeemOrder {
            member,
            member_seq: self.ledger.store().member(&member).unwrap().next_seq,
            redeemer: self.pid(p),
            points,
            lots: select_lots(&lots, points, self.now).unwrap(),
            time: self.now,
        }
        .sign(&self.members[m]);
        let mut b = CertBuilder::new(&self.genesis, order).unwrap();
        for v in 0..3 {
            b.add(&Vote::sign(b.order_id(), &self.partners[(p + v) % 4]))
                .unwrap();
        }
        self.append(p, Record::Redeem(b.finish().unwrap().into_inner()));
    }

    fn close_all(&mut self) {
        let epoch = self
            .ledger
            .store()
            .log_head(&self.pid(0))
            .unwrap()
            .open_epoch;
        self.now = self.now.max(self.genesis.epoch_end(epoch));
        for p in 0..4 {
            self.append(p, Record::EpochClose(EpochClose { epoch }));
        }
    }

    /// Statements and sealed checkpoints of epochs `0..epochs`, as honest nodes compute them.
    fn seal(&self, epochs: u64) -> Vec<(SealedCheckpoint, SettlementStatement)> {
        let lots: Vec<_> = self.ledger.store().lots().values().cloned().collect();
        let mut out: Vec<(SealedCheckpoint, SettlementStatement)> = Vec::new();
        for e in 0..epochs {
            let prev = out.last();
            let activity = epoch_activity(&self.genesis, e, &lots).unwrap();
            let st = compute_statement(&self.genesis, &activity, prev.map(|(_, s)| s)).unwrap();
            let closes: BTreeMap<_, _> = (0..4)
                .map(|p| (self.pid(p), self.ledger.store().closes()[&(self.pid(p), e)]))
                .collect();
            let cp = Checkpoint::compute(
                &self.genesis,
                e,
                &closes,
                prev.map(|(c, _)| c.checkpoint.hash()),
                st.hash(),
            )
            .unwrap();
            let signatures = self
                .partners
                .iter()
                .take(3)
                .map(|k| CheckpointSig::sign(&cp, k))
                .collect();
            out.push((
                SealedCheckpoint {
                    checkpoint: cp,
                    signatures,
                },
                st,
            ));
        }
        out
    }

    fn export(&self, epochs: u64) -> Vec<u8> {
        let sealed = self.seal(epochs);
        let last = &sealed.last().unwrap().0.checkpoint;
        let mut buf = EXPORT_MAGIC.to_vec();
        let log_sizes: Vec<_> = last.logs.iter().map(|l| (l.partner, l.size)).collect();
        write_item(
            &mut buf,
            &ExportItem::Header(ExportHeader {
                coalition: self.genesis.hash(),
                epoch: epochs - 1,
                log_sizes: log_sizes.clone(),
            }),
        )
        .unwrap();
        let mut entries = 0;
        for (p, size) in &log_sizes {
            for e in &self.ledger.store().log(p)[..*size as usize] {
                write_item(&mut buf, &ExportItem::Entry(e.clone())).unwrap();
                entries += 1;
            }
        }
        for (c, s) in &sealed {
            write_item(&mut buf, &ExportItem::Checkpoint(c.clone())).unwrap();
            write_item(&mut buf, &ExportItem::Statement(s.clone())).unwrap();
        }
        write_item(
            &mut buf,
            &ExportItem::Trailer(ExportTrailer {
                entries,
                checkpoints: epochs,
                statements: epochs,
            }),
        )
        .unwrap();
        buf
    }
}

/// Three epochs: earning everywhere, cross-partner redemptions, a lot that expires unspent, and
/// entries after the last close (not exported).
fn history() -> World {
    let mut w = World::new();
    w.issue(0, 0, 500, 10_000);
    w.issue(1, 0, 300, 10_000);
    w.issue(3, 1, 200, 150); // expires in epoch 1 with 50 left
    w.redeem(2, 0, 600);
    w.redeem(1, 1, 150);
    w.close_all();
    w.issue(2, 2, 90, 10_000);
    w.redeem(3, 0, 100);
    w.close_all();
    w.redeem(0, 2, 45);
    w.close_all();
    w.issue(0, 1, 10, 10_000);
    w
}

fn fast_rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn a_faithful_export_verifies() {
    let w = history();
    let sealed = w.seal(3);
    // The money adds up and breakage is where the lot expired.
    for (_, s) in &sealed {
        assert_eq!(s.net.iter().sum::<i64>(), 0);
    }
    assert_eq!(sealed[1].1.per_issuer[3].expired, 50);
    let report = verify_export(w.genesis.clone(), &w.export(3)[..], |_| {}).unwrap();
    assert_eq!(report.epoch, 2);
    assert_eq!(report.certificates, 4);
    assert_eq!(report.last_checkpoint, sealed[2].0.checkpoint.hash());
}

#[test]
fn every_single_byte_change_is_caught() {
    let w = history();
    let good = w.export(3);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut bad = good.clone();
        let i = (fast_rng(&mut seed) % bad.len() as u64) as usize;
        let delta = (fast_rng(&mut seed) % 255 + 1) as u8;
        bad[i] = bad[i].wrapping_add(delta);
        let err = verify_export(w.genesis.clone(), &bad[..], |_| {})
            .expect_err(&format!("changing byte {i} went unnoticed"));
        assert!(!err.to_string().is_empty());
    }
    // Truncation anywhere is caught too.
    for cut in [8, good.len() / 2, good.len() - 1] {
        assert!(verify_export(w.genesis.clone(), &good[..cut], |_| {}).is_err());
    }
}

#[test]
fn a_forged_statement_is_named() {
    let w = history();
    let mut sealed = w.seal(2);
    sealed[1].1.net[0] += 1;
    let err = coalition_core::settlement::verify_statement_consistency(&sealed[1].1);
    assert!(err.is_err());
}

#[test]
fn record_proof_verifies_and_fails_when_changed() {
    let w = history();
    let sealed = w.seal(3);
    let cp = &sealed[2].0;
    let p = w.pid(2);
    let (index, log) = cp.checkpoint.log_of(&p).unwrap();
    let entries = w.ledger.store().log(&p);
    let leaves: Vec<Hash> = entries.iter().map(|e| entry_leaf(&e.id())).collect();
    let seq = 1; // partner 2's certificate
    let logs_leaves: Vec<Hash> = cp.checkpoint.logs.iter().map(|l| l.leaf()).collect();
    let proof = RecordProof {
        entry: entries[seq].clone(),
        in_log: InclusionProof::from_leaves(&Blake3Hasher, &leaves, seq as u64, log.size).unwrap(),
        in_checkpoint: InclusionProof::from_leaves(&Blake3Hasher, &logs_leaves, index as u64, 4)
            .unwrap(),
        sealed: cp.clone(),
    };
    proof.verify(&w.genesis).unwrap();
    let bytes = coalition_core::encoding::encode(&proof);
    let mut seed = 42u64;
    for _ in 0..200 {
        let mut bad = bytes.clone();
        let i = (fast_rng(&mut seed) % bad.len() as u64) as usize;
        bad[i] ^= 1 << (fast_rng(&mut seed) % 8);
        if let Ok(p) = coalition_core::encoding::decode::<RecordProof>(&bad) {
            assert!(
                p.verify(&w.genesis).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
    }
}
