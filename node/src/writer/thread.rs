//! The writer thread: group commit over the ledger driver, and the execution of each command.

use super::{
    AppendError, Checked, Command, IngestReport, Reply, ToAppend, VoteFailure, WriterConfig,
    WriterError, MAX_GROUP,
};
use crate::store::{StoreError, StoreWriter};
use coalition_core::cert_window::{last_append_epoch, order_epoch};
use coalition_core::clock::SharedClock;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::log::SignatureChecked;
use coalition_core::record::{
    Entry, EpochClose, PartnerId, Record, RedeemCert, SignedEntry, SignedOrder, Timestamp, Vote,
};
use coalition_core::replica::{IngestError, IngestOutcome, Ledger};
use coalition_core::state::LedgerView;
use coalition_core::verified::Verified;
use coalition_core::vote::{check_vote, PriorVote, VoteDecision, VoteError};
use coalition_core::wire::HeldVote;
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// An answer held until the group's writes are durable.
trait Deliver: Send {
    /// Sends the answer; if the group's sync failed, a failure instead of anything that promised
    /// durability.
    fn deliver(self: Box<Self>, synced: Result<(), &Arc<StoreError>>);
}

struct Answer<T, E> {
    reply: Reply<T, E>,
    result: Result<T, E>,
}

impl<T: Send, E: From<WriterError> + Send> Deliver for Answer<T, E> {
    fn deliver(self: Box<Self>, synced: Result<(), &Arc<StoreError>>) {
        let result = match synced {
            Ok(()) => self.result,
            Err(e) => Err(WriterError::SyncFailed(e.clone()).into()),
        };
        let _ = self.reply.send(result);
    }
}

struct Report {
    reply: oneshot::Sender<IngestReport>,
    report: IngestReport,
}

impl Deliver for Report {
    fn deliver(self: Box<Self>, synced: Result<(), &Arc<StoreError>>) {
        let mut report = self.report;
        if let Err(e) = synced {
            report.failure = Some(WriterError::SyncFailed(e.clone()));
        }
        let _ = self.reply.send(report);
    }
}

fn answer<T: Send + 'static, E: From<WriterError> + Send + 'static>(
    reply: Reply<T, E>,
    result: Result<T, E>,
) -> Box<dyn Deliver> {
    Box::new(Answer { reply, result })
}

/// The writer thread's state.
pub(super) struct Thread {
    ledger: Ledger<StoreWriter>,
    genesis: Arc<Genesis>,
    keypair: Arc<Keypair>,
    clock: SharedClock,
    me: PartnerId,
    /// Whether our own appends and votes are let through (see [`WriterConfig`]).
    open: bool,
}

/// What [`super::Writer::restore_votes`] did with the votes partners held for us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoteRestore {
    /// Our votes our store had lost, now stored again.
    pub restored: usize,
    /// Already in our store.
    pub held: usize,
    /// Not ours, not for the order they came with, or not validly signed: ignored.
    pub invalid: usize,
    /// Ours, validly signed, but our store holds a vote for another order at the same spend: we
    /// already signed two votes for one spend (after losing the first), which nothing can undo.
    pub conflicting: usize,
}

impl Thread {
    pub(super) fn new(ledger: Ledger<StoreWriter>, config: WriterConfig) -> Thread {
        Thread {
            ledger,
            me: PartnerId(config.keypair.public()),
            genesis: config.genesis,
            keypair: config.keypair,
            clock: config.clock,
            open: !config.closed_until_rejoined,
        }
    }

    /// Group commit (see the module docs). Stops when every handle is gone, or after a failed write
    /// or sync: what the disk did with the unsynced writes is unknown, so no more commands are
    /// taken, and none of the group is acknowledged. The failure goes in `failure` before the
    /// queue closes, so every caller after it is told why.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>, failure: &OnceLock<String>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut replies: Vec<Box<dyn Deliver>> = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = rx.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(cmd) => group.push(cmd),
                    Err(_) => break,
                }
            }
            for cmd in group.drain(..) {
                if let Some(reply) = self.execute(cmd) {
                    replies.push(reply);
                }
            }
            let synced = self.ledger.store_mut().sync_deferred().map_err(Arc::new);
            if let Err(e) = &synced {
                tracing::error!(error = %e, "storage failed: the ledger writer cannot write to disk and stops");
                let _ = failure.set(e.to_string());
            }
            for reply in replies.drain(..) {
                reply.deliver(synced.as_ref().map(|_| ()));
            }
            if synced.is_err() {
                return;
            }
        }
        // Every handle is gone: a clean stop.
        if let Err(e) = self.ledger.store_mut().flush_all() {
            tracing::warn!(error = %e, "cannot flush the database at shutdown; the next start replays its log");
        }
    }

    /// Executes one command; its answer, unless it needs no sync and was sent already.
    fn execute(&mut self, cmd: Command) -> Option<Box<dyn Deliver>> {
        Some(match cmd {
            Command::Append { reply, .. } if !self.open => {
                answer(reply, Err(WriterError::Rejoining.into()))
            }
            Command::CloseDue { reply, .. } if !self.open => {
                answer(reply, Err(WriterError::Rejoining.into()))
            }
            Command::Vote { reply, .. } if !self.open => {
                answer(reply, Err(WriterError::Rejoining.into()))
            }
            Command::Append { what, reply } => {
                let now = self.clock.now();
                let appended = match what {
                    ToAppend::Record(record) => self.append(record, None, now),
                    ToAppend::Certificate(cert) => {
                        let record = Record::Redeem(cert.inner().clone());
                        let appended = self.append(record, Some(&cert), now);
                        if appended.is_ok() {
                            self.drop_held_votes(cert.inner());
                        }
                        appended
                    }
                };
                answer(reply, appended)
            }
            Command::CloseDue { now, reply } => answer(reply, self.close_due(now)),
            Command::Ingest { entries, reply } => Box::new(Report {
                reply,
                report: self.ingest(entries),
            }),
            Command::Vote { order, now, reply } => answer(reply, self.vote(order, now)),
            Command::PutInflight { order, reply } => {
                let done = self.ledger.store_mut().put_inflight(&order);
                answer(reply, done.map_err(WriterError::from))
            }
            Command::HoldVotes {
                order,
                votes,
                reply,
            } => {
                let done = self.ledger.store_mut().put_held_votes(&order, &votes);
                answer(reply, done.map_err(WriterError::from))
            }
            Command::RestoreVotes { held, reply } => answer(reply, self.restore_votes(held)),
            Command::Open { reply } => {
                self.open = true;
                let _ = reply.send(());
                return None;
            }
            Command::RemoveInflight { order_id, reply } => {
                let done = self.ledger.store_mut().remove_inflight(&order_id);
                answer(reply, done.map_err(WriterError::from))
            }
            Command::PutEpoch {
                statement,
                checkpoint,
                signature,
                reply,
            } => {
                let store = self.ledger.store_mut();
                let done = store.put_epoch(&statement, &checkpoint, &signature);
                answer(reply, done.map_err(WriterError::from))
            }
            Command::PutCheckpointSig { sig, reply } => {
                let done = self.ledger.store_mut().put_checkpoint_sig(&sig);
                answer(reply, done.map_err(WriterError::from))
            }
            Command::PendingMinEpoch { reply } => {
                let _ = reply.send(self.ledger.pending_min_epoch());
                return None;
            }
            Command::Pending { reply } => {
                let _ = reply.send((self.ledger.pending_len(), self.ledger.pending_missing()));
                return None;
            }
        })
    }

    fn append(
        &mut self,
        record: Record,
        cert: Option<&Verified<RedeemCert>>,
        time: Timestamp,
    ) -> Result<SignedEntry, AppendError> {
        let me = self.me;
        if let Record::Issue(issue) = &record {
            // Checked here, on the one thread that appends, so two retries of one receipt cannot
            // both pass: the index is written in the same batch as the issue.
            let used = self.ledger.store().own_issue_by_reference(&issue.reference);
            if let Some(lot) = used.map_err(WriterError::from)? {
                return Err(AppendError::ReferenceUsed { lot });
            }
        }
        let head = LedgerView::log_head(self.ledger.store(), &me).map_err(WriterError::from)?;
        let entry = Entry {
            partner: me,
            seq: head.size,
            prev: head.last,
            epoch: head.open_epoch,
            time: time.max(head.last_time),
            record,
        };
        let checked = SignatureChecked::sign(entry, &self.keypair, cert)
            .map_err(|e| AppendError::Rejected(Box::new(IngestError::Entry(e))))?;
        let entry = checked.entry().clone();
        match self.ledger.ingest_presigned(checked) {
            Ok(IngestOutcome::Applied { .. }) => Ok(entry),
            Ok(IngestOutcome::Pending(missing)) => {
                // Left parked, our next entry at this seq would be recorded as our own
                // equivocation.
                self.ledger.unpark(&me, entry.entry.seq);
                Err(AppendError::Waiting(missing))
            }
            Ok(IngestOutcome::Duplicate) => Err(AppendError::OwnEntry {
                outcome: "already held",
            }),
            Ok(IngestOutcome::Equivocation(_)) => Err(AppendError::OwnEntry {
                outcome: "equivocation",
            }),
            Err(IngestError::Store(e)) => Err(WriterError::from(e).into()),
            Err(IngestError::PendingFull { limit }) => {
                Err(WriterError::PendingFull { limit }.into())
            }
            Err(e) => Err(AppendError::Rejected(Box::new(e))),
        }
    }

    fn close_due(&mut self, now: Timestamp) -> Result<Vec<SignedEntry>, AppendError> {
        let mut closed = Vec::new();
        loop {
            let head =
                LedgerView::log_head(self.ledger.store(), &self.me).map_err(WriterError::from)?;
            let epoch = head.open_epoch;
            if now < self.genesis.epoch_end(epoch) {
                return Ok(closed);
            }
            let close = Record::EpochClose(EpochClose { epoch });
            closed.push(self.append(close, None, now)?);
        }
    }

    fn ingest(&mut self, checked: Vec<Checked>) -> IngestReport {
        let mut report = IngestReport::default();
        for c in checked {
            let result = match c {
                Ok(entry) => self.ledger.ingest_presigned(entry),
                Err(e) => Err(IngestError::Entry(e)),
            };
            match result {
                Ok(IngestOutcome::Applied { released, rejected }) => {
                    report.applied += 1 + released.len();
                    report.rejected.extend(rejected);
                }
                Ok(IngestOutcome::Pending(m)) => report.missing.push(m),
                Ok(IngestOutcome::Duplicate) => report.duplicates += 1,
                Ok(IngestOutcome::Equivocation(proof)) => {
                    tracing::error!(partner = %proof.partner.short(), seq = proof.seq, "equivocation: two entries signed for one position; fraud proof stored, partner's entries refused");
                    report.equivocations.push(proof.partner);
                }
                Err(IngestError::Store(e)) => report.failure = Some(e.into()),
                Err(IngestError::PendingFull { limit }) => {
                    report.failure = Some(WriterError::PendingFull { limit })
                }
                Err(e) => report.bad.push(e),
            }
        }
        report
    }

    /// The votes held for a certificate's order are in the certificate now.
    fn drop_held_votes(&mut self, cert: &RedeemCert) {
        let order_id = cert.order.order.id();
        let voters: Vec<PartnerId> = cert.votes.iter().map(|v| v.partner).collect();
        if let Err(e) = self
            .ledger
            .store_mut()
            .remove_held_votes(&order_id, &voters)
        {
            // Only a second copy: a vote held too long is answered to its voter, who has it.
            tracing::warn!(order = %order_id.short(), error = %e, "cannot drop the votes held for a certified order");
        }
    }

    /// Stores our own votes that partners held and our store lost; see [`VoteRestore`].
    fn restore_votes(&mut self, held: Vec<HeldVote>) -> Result<VoteRestore, WriterError> {
        let mut done = VoteRestore::default();
        for HeldVote { order, vote } in held {
            if vote.partner != self.me
                || vote.order_id != order.order.id()
                || vote.verify_signature().is_err()
            {
                done.invalid += 1;
                continue;
            }
            let (member, seq) = (order.order.member, order.order.member_seq);
            let time = order.order.time;
            let epoch = order_epoch(&self.genesis, time);
            let store = self.ledger.store_mut();
            match store.vote(&member, seq)? {
                Some(ours) if ours.order_id == vote.order_id => done.held += 1,
                Some(ours) => {
                    // We vote for a second order at one spend only once the first can no longer be
                    // certified, and only for an order of a later epoch: the later of the two is
                    // our vote, and holding it proves we released the earlier.
                    let ours_epoch = store
                        .vote_time(&member, seq)?
                        .map(|t| order_epoch(&self.genesis, t));
                    match ours_epoch {
                        Some(e) if e > epoch => done.held += 1,
                        Some(e) if e < epoch => {
                            store.put_vote_synced(
                                &member,
                                seq,
                                &vote,
                                time,
                                Some(&ours.order_id),
                            )?;
                            done.restored += 1;
                        }
                        _ => {
                            tracing::error!(%member, seq, kept = %ours.order_id.short(), other = %vote.order_id.short(),
                                "this node signed votes for two orders at one spend (its store had lost the first)");
                            done.conflicting += 1;
                        }
                    }
                }
                None => {
                    store.put_vote_synced(&member, seq, &vote, time, None)?;
                    done.restored += 1;
                }
            }
        }
        Ok(done)
    }

    fn vote(&mut self, order: SignedOrder, now: Timestamp) -> Result<Vote, VoteFailure> {
        let (member, seq) = (order.order.member, order.order.member_seq);
        let store = self.ledger.store_mut();
        let stored = store.vote(&member, seq).map_err(WriterError::from)?;
        let prior = match &stored {
            Some(v) if v.order_id != order.order.id() => {
                let order_time = store.vote_time(&member, seq).map_err(WriterError::from)?;
                // Read only when another order asks: the release needs the seal of the voted
                // order's last window epoch.
                let window_sealed = match order_time {
                    Some(t) => store
                        .sealed_checkpoint(
                            self.genesis.quorum(),
                            last_append_epoch(&self.genesis, t),
                        )
                        .map_err(WriterError::from)?
                        .is_some(),
                    None => false,
                };
                Some(PriorVote {
                    order_id: v.order_id,
                    order_time,
                    window_sealed,
                })
            }
            Some(v) => Some(PriorVote {
                order_id: v.order_id,
                order_time: None,
                window_sealed: false,
            }),
            None => None,
        };
        let (order_id, released) = match (
            check_vote(&self.genesis, &**store, &order, now, prior.as_ref()),
            stored,
        ) {
            (Ok(VoteDecision::Again { .. }), Some(v)) => return Ok(v),
            (Ok(VoteDecision::Again { .. }), None) => {
                return Err(WriterError::Invariant {
                    what: "the vote rule said 'again' without a stored vote",
                }
                .into())
            }
            (Ok(VoteDecision::New { order_id }), _) => (order_id, None),
            (Ok(VoteDecision::Replace { order_id, released }), _) => {
                tracing::info!(%member, seq, released = %released.short(), order = %order_id.short(),
                    "voting for a new order at a spend whose earlier order can no longer be certified");
                (order_id, Some(released))
            }
            (Err(VoteError::Refused(r)), _) => return Err(VoteFailure::Refused(r)),
            (Err(VoteError::Store(e)), _) => return Err(WriterError::from(e).into()),
        };
        let v = Vote::sign(order_id, &self.keypair);
        // Durable before it leaves this node (the reply waits for the group's sync): a restart
        // must never let us vote twice.
        Ok(store
            .put_vote_synced(&member, seq, &v, order.order.time, released.as_ref())
            .map_err(WriterError::from)?)
    }
}
