//! Reads ([`Store`]): from any thread, concurrently with the writer; each sees whole batches.

use super::columns::Column;
use super::error::{StoreError, StoreResult};
use super::{decode, history_item, keys, HistoryItem, RecordLocation, Store};
use coalition_core::checkpoint::{Checkpoint, CheckpointSig, SealedCheckpoint};
use coalition_core::hash::Hash;
use coalition_core::log::{Equivocation, LogClose, LogHead};
use coalition_core::record::{
    Epoch, MemberId, PartnerId, SignedEntry, SignedOrder, Timestamp, Vote,
};
use coalition_core::settlement::SettlementStatement;
use coalition_core::state::Lot;
use coalition_core::wire::HeldVote;
use rocksdb::{Direction, IteratorMode, ReadOptions};
use std::sync::atomic::Ordering;

impl Store {
    /// Up to `limit` entries of `partner`'s log from position `from`, in order.
    pub fn entries(
        &self,
        partner: &PartnerId,
        from: u64,
        limit: usize,
    ) -> StoreResult<Vec<SignedEntry>> {
        let mut out = Vec::new();
        self.log_range(partner, from, limit, |key, bytes| {
            out.push(decode(Column::Entries, key, bytes)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` entries of `partner`'s log from position `from`, as their canonical bytes (what
    /// a peer fetching the log is sent). Each is checked to decode.
    pub fn entries_bytes(
        &self,
        partner: &PartnerId,
        from: u64,
        limit: usize,
    ) -> StoreResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.log_range(partner, from, limit, |key, bytes| {
            decode::<SignedEntry>(Column::Entries, key, bytes)?;
            out.push(bytes.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// The entry at `partner`/`seq`, if held.
    pub fn entry(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<SignedEntry>> {
        self.get(Column::Entries, &keys::partner_u64(partner, seq))
    }

    /// The canonical bytes of the entry at `partner`/`seq`, if held.
    pub fn entry_bytes(&self, partner: &PartnerId, seq: u64) -> StoreResult<Option<Vec<u8>>> {
        let key = keys::partner_u64(partner, seq);
        let Some(bytes) = self.get_raw(Column::Entries, &key)? else {
            return Ok(None);
        };
        decode::<SignedEntry>(Column::Entries, &key, &bytes)?;
        Ok(Some(bytes))
    }

    /// The Merkle leaf hashes of the first `size` entries of `partner`'s log (fewer if the log is
    /// shorter), for inclusion and consistency proofs.
    pub fn leaf_hashes(&self, partner: &PartnerId, size: u64) -> StoreResult<Vec<Hash>> {
        let limit = usize::try_from(size).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        self.scan_column(
            Column::Leaves,
            &keys::partner_u64(partner, 0),
            &keys::partner(partner),
            |key, value| {
                if out.len() >= limit {
                    return Ok(false);
                }
                if keys::read_u64(key, keys::ID) != Some(out.len() as u64) {
                    return Err(StoreError::corrupt(
                        Column::Leaves,
                        key,
                        format!("expected leaf {}", out.len()),
                    ));
                }
                out.push(decode(Column::Leaves, key, value)?);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Every log head held, by partner id.
    pub fn heads(&self) -> StoreResult<Vec<(PartnerId, LogHead)>> {
        let mut out = Vec::new();
        self.scan_column(Column::Heads, &[], &[], |key, value| {
            let id = keys::read_id(key, 0)
                .filter(|_| key.len() == keys::ID)
                .ok_or_else(|| {
                    StoreError::corrupt(Column::Heads, key, "key is not a partner id")
                })?;
            out.push((
                PartnerId(coalition_core::crypto::PublicKey(id)),
                decode(Column::Heads, key, value)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// `partner`'s log size and root right after it closed `epoch`, if it has.
    pub fn close(&self, partner: &PartnerId, epoch: Epoch) -> StoreResult<Option<LogClose>> {
        self.get(Column::Closes, &keys::partner_u64(partner, epoch))
    }

    /// Where the issue with this lot id, or the redemption with this order id, was appended.
    pub fn record_location(&self, record: &Hash) -> StoreResult<Option<RecordLocation>> {
        self.get(Column::Records, &keys::hash(record))
    }

    /// The log entry holding the issue with this lot id, or the redemption with this order id.
    pub fn record_entry(&self, record: &Hash) -> StoreResult<Option<SignedEntry>> {
        match self.record_location(record)? {
            Some(at) => self.entry(&at.partner, at.seq),
            None => Ok(None),
        }
    }

    /// The member's `limit` most recent history lines, oldest first.
    pub fn history(&self, member: &MemberId, limit: usize) -> StoreResult<Vec<HistoryItem>> {
        let prefix = keys::member(member);
        let mut last = [0xffu8; keys::ID + keys::U64 + keys::ID + keys::U64];
        last[..keys::ID].copy_from_slice(&prefix);
        let cf = self.cf(Column::History)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.to_vec());
        let mut out = Vec::new();
        for item in
            self.inner
                .db
                .iterator_cf_opt(cf, opts, IteratorMode::From(&last, Direction::Reverse))
        {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(StoreError::db("scanning", Column::History))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(history_item(&key, &value)?);
        }
        out.reverse();
        Ok(out)
    }

    /// The vote this node gave for `member`'s spend number `seq`, if any.
    pub fn vote(&self, member: &MemberId, seq: u64) -> StoreResult<Option<Vote>> {
        self.get(Column::Votes, &keys::member_seq(member, seq))
    }

    /// The checkpoint of `epoch` with the signatures that match it, if `quorum` of them do.
    pub fn sealed_checkpoint(
        &self,
        quorum: usize,
        epoch: Epoch,
    ) -> StoreResult<Option<SealedCheckpoint>> {
        let Some(checkpoint) = self.checkpoint(epoch)? else {
            return Ok(None);
        };
        let id = checkpoint.hash();
        let mut signatures: Vec<CheckpointSig> = self
            .checkpoint_sigs(epoch)?
            .into_iter()
            .filter(|s| s.checkpoint == id)
            .collect();
        signatures.sort_by_key(|s| s.partner);
        signatures.dedup_by_key(|s| s.partner);
        if signatures.len() < quorum {
            return Ok(None);
        }
        Ok(Some(SealedCheckpoint {
            checkpoint,
            signatures,
        }))
    }

    /// The time of the order this node voted for at `member`'s spend number `seq`, if it is known
    /// (a vote stored before order times were kept has none).
    pub fn vote_time(&self, member: &MemberId, seq: u64) -> StoreResult<Option<Timestamp>> {
        self.get(Column::VoteTimes, &keys::member_seq(member, seq))
    }

    /// Up to `limit` votes of `voter` this node holds for orders it has not certified. A scan of
    /// the whole column: it holds only the votes of attempts that failed, and is read once per
    /// partner start.
    pub fn held_votes_by(&self, voter: &PartnerId, limit: usize) -> StoreResult<Vec<HeldVote>> {
        let mut out = Vec::new();
        self.scan_column(Column::HeldVotes, &[], &[], |key, value| {
            let held: HeldVote = decode(Column::HeldVotes, key, value)?;
            if held.vote.partner == *voter {
                out.push(held);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Every in-flight redemption, by order id.
    pub fn inflight(&self) -> StoreResult<Vec<SignedOrder>> {
        self.collect(Column::Inflight, &[])
    }

    /// Whether any fraud proof may be held (false: certainly none).
    pub(crate) fn may_hold_fraud(&self) -> bool {
        self.inner.fraud_held.load(Ordering::Acquire)
    }

    /// The lot this node issued with receipt reference `reference` (hashed), if any.
    pub fn own_issue_by_reference(&self, reference: &Hash) -> StoreResult<Option<Hash>> {
        self.get(Column::References, &keys::hash(reference))
    }

    /// The fraud proof held against `partner`, if it has equivocated.
    pub fn equivocation(&self, partner: &PartnerId) -> StoreResult<Option<Equivocation>> {
        if !self.may_hold_fraud() {
            return Ok(None);
        }
        let prefix = keys::partner(partner);
        let mut found = None;
        self.scan_column(Column::Fraud, &prefix, &prefix, |key, value| {
            found = Some(decode(Column::Fraud, key, value)?);
            Ok(false)
        })?;
        Ok(found)
    }

    /// Every fraud proof held, by partner and position.
    pub fn fraud_proofs(&self) -> StoreResult<Vec<Equivocation>> {
        self.collect(Column::Fraud, &[])
    }

    /// Calls `f` on every lot, in id order, stopping at its first error: how settlement derives an
    /// epoch's activity without holding every lot in memory.
    pub fn try_for_each_lot<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&Lot) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut failed = None;
        self.scan_column(Column::Lots, &[], &[], |key, value| {
            let lot: Lot = decode(Column::Lots, key, value)?;
            match f(&lot) {
                Ok(()) => Ok(true),
                Err(e) => {
                    failed = Some(e);
                    Ok(false)
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// The checkpoint of `epoch`, if computed.
    pub fn checkpoint(&self, epoch: Epoch) -> StoreResult<Option<Checkpoint>> {
        self.get(Column::Checkpoints, &keys::epoch(epoch))
    }

    /// The settlement statement of `epoch`, if computed.
    pub fn statement(&self, epoch: Epoch) -> StoreResult<Option<SettlementStatement>> {
        self.get(Column::Statements, &keys::epoch(epoch))
    }

    /// The partner checkpoint signatures held for `epoch`, by partner id.
    pub fn checkpoint_sigs(&self, epoch: Epoch) -> StoreResult<Vec<CheckpointSig>> {
        let prefix = keys::epoch(epoch);
        let mut out = Vec::new();
        self.scan_column(Column::CheckpointSigs, &prefix, &prefix, |key, value| {
            let partner = keys::read_id(key, keys::U64)
                .filter(|_| key.len() == keys::U64 + keys::ID)
                .ok_or_else(|| {
                    StoreError::corrupt(Column::CheckpointSigs, key, "key is not epoch ‖ partner")
                })?;
            let sig: CheckpointSig = decode(Column::CheckpointSigs, key, value)?;
            if sig.epoch != epoch || sig.partner.0 .0 != partner {
                return Err(StoreError::corrupt(
                    Column::CheckpointSigs,
                    key,
                    "the signature is not of the epoch and partner of its key",
                ));
            }
            out.push(sig);
            Ok(true)
        })?;
        Ok(out)
    }
}
