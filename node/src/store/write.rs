//! The one handle that writes ([`StoreWriter`]): every write of the node is one RocksDB
//! `WriteBatch` made here, by the ledger writer thread that owns this handle.
//!
//! There is exactly one `StoreWriter` per open database ([`super::Store::open`] makes it and it is
//! not `Clone`), and its writes take `&mut self`, so "one writer" is a fact of the types rather than
//! a lock: the check-and-set writes (a vote, a fraud proof, a checkpoint signature) and a commit's
//! position check can never race another write.

use super::columns::Column;
use super::error::{StoreError, StoreResult};
use super::{keys, Store};
use coalition_core::checkpoint::{Checkpoint, CheckpointSig};
use coalition_core::encoding;
use coalition_core::hash::Hash;
use coalition_core::log::Equivocation;
use coalition_core::record::{MemberId, PartnerId, SignedOrder, Timestamp, Vote};
use coalition_core::settlement::SettlementStatement;
use coalition_core::wire::HeldVote;
use rocksdb::{WriteBatch, WriteOptions};
use serde::Serialize;
use std::sync::atomic::Ordering;

/// The database's only writer. Reads go through [`Store`], which this derefs to; readers for other
/// threads come from [`StoreWriter::reader`].
#[derive(Debug)]
pub struct StoreWriter {
    store: Store,
    /// Group commit: synced writes are written at once and their sync is owed to
    /// [`StoreWriter::sync_deferred`].
    defer_sync: bool,
    /// A sync is owed.
    sync_owed: bool,
    /// A write failed since the last sync (a full disk, an I/O error): the next
    /// [`StoreWriter::sync_deferred`] fails, so nothing written since the last sync is acknowledged.
    write_failed: Option<String>,
}

/// What [`StoreWriter::put_checkpoint_sig`] did with a partner's checkpoint signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigOutcome {
    /// The first signature of this partner for this epoch: stored.
    Stored,
    /// This partner's signature of this very checkpoint was already held.
    Duplicate,
    /// The partner had already signed a different checkpoint for the epoch: the first is kept.
    Conflict {
        /// The checkpoint the partner signed first.
        first: Hash,
    },
}

impl std::ops::Deref for StoreWriter {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl StoreWriter {
    pub(super) fn new(store: Store) -> StoreWriter {
        StoreWriter {
            store,
            defer_sync: false,
            sync_owed: false,
            write_failed: None,
        }
    }

    /// A read handle on the same database, for other threads.
    pub fn reader(&self) -> Store {
        self.store.clone()
    }

    /// From now on, synced writes do not wait for the disk: they are written at once (visible to
    /// readers, safe from a killed process) and made durable together by the next
    /// [`StoreWriter::sync_deferred`]. For the ledger writer's group commit: one disk sync for every
    /// command it has queued, and no reply before that sync.
    pub fn defer_syncs(&mut self) {
        self.defer_sync = true;
    }

    /// Writes every column's memtable to its SST files, so the next start does not replay the
    /// write-ahead log (and what is on disk can be verified). For a clean close.
    pub fn flush_all(&mut self) -> StoreResult<()> {
        let db = &self.store.inner.db;
        for column in Column::ALL {
            let cf = self.store.cf(column)?;
            db.flush_cf(cf)
                .map_err(StoreError::db("flushing", column))?;
        }
        Ok(())
    }

    /// Makes every deferred write durable (one sync of the write-ahead log). Cheap when nothing is
    /// owed.
    pub fn sync_deferred(&mut self) -> StoreResult<()> {
        if let Some(reason) = self.write_failed.take() {
            self.sync_owed = false;
            return Err(StoreError::WriteFailed { reason });
        }
        if std::mem::take(&mut self.sync_owed) {
            self.store
                .inner
                .db
                .flush_wal(true)
                .map_err(|source| StoreError::Write {
                    what: "the sync of the write-ahead log".into(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Records this node's vote for `member`'s spend number `seq`, for an order timed at
    /// `order_time`, synced, before it is sent.
    ///
    /// Check-and-set: if a vote for the same order is already stored, that vote is returned and
    /// nothing is written (asked again, the node answers the same vote); if a vote for a different
    /// order is stored, it is replaced only if it is the vote for `released` (an order the vote
    /// rule found can no longer be certified), and otherwise [`StoreError::VoteConflict`]. Returns
    /// the vote now on disk.
    pub fn put_vote_synced(
        &mut self,
        member: &MemberId,
        seq: u64,
        vote: &Vote,
        order_time: Timestamp,
        released: Option<&Hash>,
    ) -> StoreResult<Vote> {
        let key = keys::member_seq(member, seq);
        if let Some(existing) = self.get::<Vote>(Column::Votes, &key)? {
            if existing.order_id == vote.order_id {
                return Ok(existing);
            }
            if released != Some(&existing.order_id) {
                return Err(StoreError::VoteConflict {
                    member: *member,
                    seq,
                    existing: existing.order_id,
                    requested: vote.order_id,
                });
            }
        }
        let mut batch = self.batch();
        batch.put(Column::Votes, &key, vote)?;
        batch.put(Column::VoteTimes, &key, &order_time)?;
        self.write(batch, true, || {
            format!("the vote for member {member} seq {seq}")
        })?;
        Ok(vote.clone())
    }

    /// Remembers a redemption this node is collecting votes for (synced: it survives a restart).
    pub fn put_inflight(&mut self, order: &SignedOrder) -> StoreResult<()> {
        let id = order.order.id();
        let mut batch = self.batch();
        batch.put(Column::Inflight, &keys::hash(&id), order)?;
        self.write(batch, true, || format!("in-flight order {id}"))
    }

    /// Keeps partners' votes gathered for `order` that did not make a certificate (see
    /// [`Column::HeldVotes`]). Not synced: each voter holds its own synced copy.
    pub fn put_held_votes(&mut self, order: &SignedOrder, votes: &[Vote]) -> StoreResult<()> {
        let id = order.order.id();
        let mut batch = self.batch();
        for vote in votes.iter().filter(|v| v.order_id == id) {
            let held = HeldVote {
                order: order.clone(),
                vote: vote.clone(),
            };
            batch.put(
                Column::HeldVotes,
                &keys::hash_partner(&id, &vote.partner),
                &held,
            )?;
        }
        self.write(batch, false, || format!("votes held for order {id}"))
    }

    /// Drops the votes held for `order_id` from each of `voters` (its certificate is appended now,
    /// and carries them). Not synced, like the removal of the in-flight order. Most orders never
    /// had votes held: one seek finds that, and nothing is written.
    pub fn remove_held_votes(&mut self, order_id: &Hash, voters: &[PartnerId]) -> StoreResult<()> {
        if !self.any_under(Column::HeldVotes, &keys::hash(order_id))? {
            return Ok(());
        }
        let mut batch = self.batch();
        for voter in voters {
            batch.delete(Column::HeldVotes, &keys::hash_partner(order_id, voter))?;
        }
        self.write(batch, false, || {
            format!("removal of the votes held for order {order_id}")
        })
    }

    /// Forgets an in-flight redemption (certified, or given up). Not synced: if a crash undoes the
    /// removal, the restarted node retries the order, finds it certified or refused, and removes it
    /// again; a sync here would cost every redemption a second disk flush for nothing.
    pub fn remove_inflight(&mut self, order_id: &Hash) -> StoreResult<()> {
        let mut batch = self.batch();
        batch.delete(Column::Inflight, &keys::hash(order_id))?;
        self.write(batch, false, || {
            format!("removal of in-flight order {order_id}")
        })
    }

    /// Keeps a fraud proof. Only the first proof for a position is kept; returns whether this one
    /// was new.
    pub fn put_fraud(&mut self, proof: &Equivocation) -> StoreResult<bool> {
        let key = keys::partner_u64(&proof.partner, proof.seq);
        if self.get_raw(Column::Fraud, &key)?.is_some() {
            return Ok(false);
        }
        self.store.inner.fraud_held.store(true, Ordering::Release);
        let mut batch = self.batch();
        batch.put(Column::Fraud, &key, proof)?;
        self.write(batch, true, || {
            format!("fraud proof {}/{}", proof.partner, proof.seq)
        })?;
        Ok(true)
    }

    /// Stores what this node computed for an epoch, in one synced batch: the settlement statement,
    /// the checkpoint, and this node's signature over it. A restart finds all three or none.
    pub fn put_epoch(
        &mut self,
        statement: &SettlementStatement,
        checkpoint: &Checkpoint,
        signature: &CheckpointSig,
    ) -> StoreResult<()> {
        let epoch = checkpoint.epoch;
        let mut batch = self.batch();
        batch.put(Column::Statements, &keys::epoch(epoch), statement)?;
        batch.put(Column::Checkpoints, &keys::epoch(epoch), checkpoint)?;
        batch.put(
            Column::CheckpointSigs,
            &keys::epoch_partner(epoch, &signature.partner),
            signature,
        )?;
        self.write(batch, true, || format!("the checkpoint of epoch {epoch}"))
    }

    /// Stores a partner's checkpoint signature (checked by the caller) unless that partner already
    /// signed for the epoch. Check-and-set, so two signatures of one partner for one epoch can never
    /// both be stored.
    pub fn put_checkpoint_sig(&mut self, sig: &CheckpointSig) -> StoreResult<SigOutcome> {
        let key = keys::epoch_partner(sig.epoch, &sig.partner);
        if let Some(held) = self.get::<CheckpointSig>(Column::CheckpointSigs, &key)? {
            return Ok(if held.checkpoint == sig.checkpoint {
                SigOutcome::Duplicate
            } else {
                SigOutcome::Conflict {
                    first: held.checkpoint,
                }
            });
        }
        let mut batch = self.batch();
        batch.put(Column::CheckpointSigs, &key, sig)?;
        self.write(batch, true, || {
            format!("the checkpoint signature of epoch {}", sig.epoch)
        })?;
        Ok(SigOutcome::Stored)
    }

    pub(super) fn batch(&self) -> Batch {
        Batch {
            store: self.store.clone(),
            batch: WriteBatch::default(),
        }
    }

    /// Writes one batch; `sync` waits for the write-ahead log to reach the disk (or, while syncs are
    /// deferred, marks the sync as owed).
    pub(super) fn write(
        &mut self,
        batch: Batch,
        sync: bool,
        what: impl FnOnce() -> String,
    ) -> StoreResult<()> {
        let batch = batch.batch;
        let sync = if sync && self.defer_sync {
            self.sync_owed = true;
            false
        } else {
            sync
        };
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        let written = self
            .store
            .inner
            .db
            .write_opt(batch, &opts)
            .map_err(|source| StoreError::Write {
                what: what(),
                source,
            });
        if let Err(e) = &written {
            self.write_failed.get_or_insert_with(|| e.to_string());
        }
        written
    }
}

/// One atomic write being assembled.
pub(super) struct Batch {
    /// The database the batch is for (a handle: column families are looked up through it).
    store: Store,
    batch: WriteBatch,
}

impl Batch {
    /// Puts the canonical encoding of `value`.
    pub(super) fn put<T: Serialize>(
        &mut self,
        column: Column,
        key: &[u8],
        value: &T,
    ) -> StoreResult<()> {
        let cf = self.store.cf(column)?;
        self.batch.put_cf(cf, key, encoding::encode(value));
        Ok(())
    }

    pub(super) fn delete(&mut self, column: Column, key: &[u8]) -> StoreResult<()> {
        let cf = self.store.cf(column)?;
        self.batch.delete_cf(cf, key);
        Ok(())
    }
}
