//! The store as a ledger: [`LedgerView`] (what the ledger rules and the vote rule read) and
//! [`LedgerStore`] (one entry's effects, committed as one write batch).

use super::columns::Column;
use super::error::{StoreError, StoreResult};
use super::{keys, HistoryKind, HistoryRow, RecordLocation, Store, StoreWriter};
use coalition_core::hash::Hash;
use coalition_core::log::{entry_leaf, Equivocation, LogClose, LogHead};
use coalition_core::record::{Epoch, MemberId, PartnerId, Record, SignedEntry};
use coalition_core::state::{Changes, LedgerStore, LedgerView, Lot, MemberState};
use coalition_core::verified::Verified;

impl LedgerView for Store {
    type Error = StoreError;

    fn log_head(&self, partner: &PartnerId) -> StoreResult<LogHead> {
        Ok(self
            .get(Column::Heads, &keys::partner(partner))?
            .unwrap_or_else(LogHead::empty))
    }

    fn entry(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<SignedEntry>> {
        Store::entry(self, partner, seq)
    }

    fn lot(&self, id: &Hash) -> StoreResult<Option<Lot>> {
        self.get(Column::Lots, &keys::hash(id))
    }

    fn member(&self, member: &MemberId) -> StoreResult<MemberState> {
        Ok(self
            .get(Column::Members, &keys::member(member))?
            .unwrap_or_default())
    }

    fn has_lots(&self, member: &MemberId) -> StoreResult<bool> {
        self.any_under(Column::MemberLots, &keys::member(member))
    }

    fn member_lots(&self, member: &MemberId) -> StoreResult<Vec<Lot>> {
        let prefix = keys::member(member);
        let mut ids = Vec::new();
        self.scan_column(Column::MemberLots, &prefix, &prefix, |key, _| {
            let id = keys::read_id(key, keys::ID)
                .filter(|_| key.len() == keys::ID + keys::ID)
                .ok_or_else(|| {
                    StoreError::corrupt(Column::MemberLots, key, "key is not member ‖ lot")
                })?;
            ids.push((key.to_vec(), Hash(id)));
            Ok(true)
        })?;
        ids.into_iter()
            .map(|(key, id)| {
                self.get(Column::Lots, &keys::hash(&id))?.ok_or_else(|| {
                    StoreError::corrupt(
                        Column::MemberLots,
                        &key,
                        format!("indexes lot {id}, which is not stored"),
                    )
                })
            })
            .collect()
    }

    fn log_close(&self, partner: &PartnerId, epoch: Epoch) -> StoreResult<Option<LogClose>> {
        self.close(partner, epoch)
    }
}

/// The writer reads what the ledger rules read, through its store.
impl LedgerView for StoreWriter {
    type Error = StoreError;

    fn log_head(&self, partner: &PartnerId) -> StoreResult<LogHead> {
        LedgerView::log_head(&**self, partner)
    }
    fn entry(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<SignedEntry>> {
        Store::entry(self, partner, seq)
    }
    fn lot(&self, id: &Hash) -> StoreResult<Option<Lot>> {
        LedgerView::lot(&**self, id)
    }
    fn member(&self, member: &MemberId) -> StoreResult<MemberState> {
        LedgerView::member(&**self, member)
    }
    fn has_lots(&self, member: &MemberId) -> StoreResult<bool> {
        LedgerView::has_lots(&**self, member)
    }
    fn member_lots(&self, member: &MemberId) -> StoreResult<Vec<Lot>> {
        LedgerView::member_lots(&**self, member)
    }
    fn log_close(&self, partner: &PartnerId, epoch: Epoch) -> StoreResult<Option<LogClose>> {
        self.close(partner, epoch)
    }
}

impl LedgerStore for StoreWriter {
    /// Writes the entry, its Merkle leaf, the new head, every lot and member state in `changes`,
    /// the member-lot index, the history lines, the record's location and the epoch close, as one
    /// batch.
    /// Synced when this node authored the entry (the POS is told it is appended once this returns);
    /// not synced for peers' entries, which can be fetched again after a crash.
    ///
    /// Commits must come from one driver: `changes` was computed from the state before this entry,
    /// and only the log position is re-checked here ([`StoreError::OutOfOrder`]).
    fn commit(&mut self, entry: &Verified<SignedEntry>, changes: &Changes) -> StoreResult<()> {
        let e = &entry.entry;
        let id = entry.id();
        let (partner, seq) = (e.partner, e.seq);
        if changes.partner != partner
            || changes.seq != seq
            || changes.entry_id != id
            || Some(changes.head.size) != seq.checked_add(1)
        {
            return Err(StoreError::ChangesMismatch { partner, seq });
        }
        let head = LedgerView::log_head(&**self, &partner)?;
        if head.size != seq {
            return Err(StoreError::OutOfOrder {
                partner,
                expected: head.size,
                found: seq,
            });
        }

        let mut batch = self.batch();
        let position = keys::partner_u64(&partner, seq);
        batch.put(Column::Entries, &position, entry.inner())?;
        batch.put(Column::Leaves, &position, &entry_leaf(&id))?;
        batch.put(Column::Heads, &keys::partner(&partner), &changes.head)?;
        for lot in &changes.lots {
            batch.put(Column::Lots, &keys::hash(&lot.id), lot)?;
            batch.put(
                Column::MemberLots,
                &keys::member_lot(&lot.member, &lot.id),
                &(),
            )?;
        }
        for (member, state) in &changes.members {
            batch.put(Column::Members, &keys::member(member), state)?;
        }
        if let Some(close) = &changes.close {
            batch.put(
                Column::Closes,
                &keys::partner_u64(&partner, close.epoch),
                close,
            )?;
        }
        // Issues and redemptions have ids unique across the coalition (a replayed issue or a second
        // certificate for an order never applies). An epoch close's record id is the same for every
        // partner closing that epoch, so closes are found through `closes` instead.
        if !matches!(e.record, Record::EpochClose(_)) {
            let location = RecordLocation { partner, seq };
            batch.put(Column::Records, &keys::hash(&e.record.id()), &location)?;
        }
        let history = match &e.record {
            Record::Issue(issue) => Some((
                issue.member,
                issue.time,
                HistoryRow {
                    kind: HistoryKind::Earn,
                    points: issue.points,
                    partner: issue.issuer,
                    record: issue.id(),
                },
            )),
            Record::Redeem(cert) => {
                let order = &cert.order.order;
                Some((
                    order.member,
                    order.time,
                    HistoryRow {
                        kind: HistoryKind::Redeem,
                        points: order.points,
                        partner: order.redeemer,
                        record: order.id(),
                    },
                ))
            }
            Record::EpochClose(_) => None,
        };
        if let Some((member, time, row)) = history {
            batch.put(
                Column::History,
                &keys::history(&member, time, &partner, seq),
                &row,
            )?;
        }
        let own = partner == self.me();
        if let (true, Record::Issue(issue)) = (own, &e.record) {
            batch.put(
                Column::References,
                &keys::hash(&issue.reference),
                &issue.id(),
            )?;
        }
        self.write(batch, own, || format!("entry {partner}/{seq}"))
    }

    fn equivocation(&self, partner: &PartnerId) -> StoreResult<Option<Equivocation>> {
        Store::equivocation(self, partner)
    }

    fn record_equivocation(&mut self, proof: &Equivocation) -> StoreResult<()> {
        self.put_fraud(proof).map(|_| ())
    }
}
