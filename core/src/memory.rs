//! A whole ledger held in memory ([`MemoryLedger`]): the [`LedgerStore`] the auditor and the tests
//! drive with [`crate::replica::Ledger`], as the node drives its RocksDB store.

use crate::encoding::encode;
use crate::hash::Hash;
use crate::log::{Equivocation, LogClose, LogHead};
use crate::record::{Epoch, MemberId, PartnerId, SignedEntry};
use crate::state::{Changes, LedgerStore, LedgerView, Lot, MemberState};
use crate::verified::Verified;
use std::collections::{BTreeMap, BTreeSet};

/// A [`MemoryLedger`] asked to commit something that does not fit (a bug in the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The entry is not at the end of its log.
    #[error("commit of {partner}/{seq} out of place: the log has {len} entries")]
    OutOfPlace {
        /// The log.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
        /// The log's length.
        len: u64,
    },
}

/// A whole ledger held in memory: every log, the lots (indexed by member), the members, the closes
/// and the fraud proofs. Each commit is applied entirely or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLedger {
    logs: BTreeMap<PartnerId, Vec<SignedEntry>>,
    heads: BTreeMap<PartnerId, LogHead>,
    lots: BTreeMap<Hash, Lot>,
    member_lots: BTreeMap<MemberId, BTreeSet<Hash>>,
    members: BTreeMap<MemberId, MemberState>,
    closes: BTreeMap<(PartnerId, Epoch), LogClose>,
    equivocations: BTreeMap<PartnerId, Equivocation>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }
    /// Every lot, by id.
    pub fn lots(&self) -> &BTreeMap<Hash, Lot> {
        &self.lots
    }
    /// Every member that has spent, with its state.
    pub fn members(&self) -> &BTreeMap<MemberId, MemberState> {
        &self.members
    }
    /// Every non-empty log's head.
    pub fn heads(&self) -> &BTreeMap<PartnerId, LogHead> {
        &self.heads
    }
    /// A partner's log (empty if none).
    pub fn log(&self, partner: &PartnerId) -> &[SignedEntry] {
        self.logs
            .get(partner)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
    /// Every epoch close, by log and epoch.
    pub fn closes(&self) -> &BTreeMap<(PartnerId, Epoch), LogClose> {
        &self.closes
    }
    /// The fraud proofs held, by partner.
    pub fn equivocations(&self) -> &BTreeMap<PartnerId, Equivocation> {
        &self.equivocations
    }
    /// A digest of the whole state (logs, heads, lots, members, closes, fraud proofs), for comparing
    /// two ledgers or one ledger before and after. Not a protocol object.
    pub fn state_digest(&self) -> Hash {
        let bytes = encode(&(
            &self.logs,
            &self.heads,
            &self.lots,
            &self.member_lots,
            &self.members,
            &self.closes,
            &self.equivocations,
        ));
        Hash::tagged(b"coalition/v1/memory-ledger-digest", &bytes)
    }
}

impl LedgerView for MemoryLedger {
    type Error = MemoryError;

    fn log_head(&self, partner: &PartnerId) -> Result<LogHead, MemoryError> {
        Ok(self.heads.get(partner).cloned().unwrap_or_default())
    }
    fn entry(&self, partner: &PartnerId, seq: u64) -> Result<Option<SignedEntry>, MemoryError> {
        let index = usize::try_from(seq).ok();
        Ok(index.and_then(|i| self.log(partner).get(i)).cloned())
    }
    fn lot(&self, id: &Hash) -> Result<Option<Lot>, MemoryError> {
        Ok(self.lots.get(id).cloned())
    }
    fn member(&self, member: &MemberId) -> Result<MemberState, MemoryError> {
        Ok(self.members.get(member).copied().unwrap_or_default())
    }
    fn has_lots(&self, member: &MemberId) -> Result<bool, MemoryError> {
        Ok(self
            .member_lots
            .get(member)
            .is_some_and(|ids| !ids.is_empty()))
    }
    fn member_lots(&self, member: &MemberId) -> Result<Vec<Lot>, MemoryError> {
        let ids = self.member_lots.get(member).into_iter().flatten();
        Ok(ids.filter_map(|id| self.lots.get(id)).cloned().collect())
    }
    fn log_close(
        &self,
        partner: &PartnerId,
        epoch: Epoch,
    ) -> Result<Option<LogClose>, MemoryError> {
        Ok(self.closes.get(&(*partner, epoch)).copied())
    }
}

impl LedgerStore for MemoryLedger {
    fn commit(
        &mut self,
        entry: &Verified<SignedEntry>,
        changes: &Changes,
    ) -> Result<(), MemoryError> {
        let partner = entry.entry.partner;
        let log = self.logs.entry(partner).or_default();
        let len = u64::try_from(log.len()).unwrap_or(u64::MAX);
        if entry.entry.seq != len || changes.seq != len || changes.partner != partner {
            return Err(MemoryError::OutOfPlace {
                partner,
                seq: entry.entry.seq,
                len,
            });
        }
        // Nothing below can fail: the whole commit lands.
        log.push(entry.inner().clone());
        self.heads.insert(partner, changes.head.clone());
        for lot in &changes.lots {
            self.member_lots
                .entry(lot.member)
                .or_default()
                .insert(lot.id);
            self.lots.insert(lot.id, lot.clone());
        }
        for (member, state) in &changes.members {
            self.members.insert(*member, *state);
        }
        if let Some(close) = changes.close {
            self.closes.insert((partner, close.epoch), close);
        }
        Ok(())
    }
    fn equivocation(&self, partner: &PartnerId) -> Result<Option<Equivocation>, MemoryError> {
        Ok(self.equivocations.get(partner).cloned())
    }
    fn record_equivocation(&mut self, proof: &Equivocation) -> Result<(), MemoryError> {
        self.equivocations
            .entry(proof.partner)
            .or_insert_with(|| proof.clone());
        Ok(())
    }
}
