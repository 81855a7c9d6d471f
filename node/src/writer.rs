//! The ledger writer: one thread owns the ledger driver (`coalition_core::replica::Ledger` over
//! the store's only [`StoreWriter`]) and performs every write of the node in turn: our own appends,
//! entries from peers, votes, in-flight redemptions, checkpoints and checkpoint signatures.
//! Serialising them here is what makes "vote at most once per (member, seq)", "the next entry
//! extends the head" and "one checkpoint signature per partner and epoch" hold without locks.
//! Readers go to the store directly.
//!
//! Group commit: the thread takes every command already queued, executes them in order with their
//! synced writes deferred, syncs the write-ahead log once, and only then answers. Nothing is
//! answered before it is durable, and nothing of ours leaves the node before it is answered.

use crate::store::{SigOutcome, StoreError, StoreWriter};
use coalition_core::checkpoint::{Checkpoint, CheckpointSig};
use coalition_core::clock::SharedClock;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::ledger::Missing;
use coalition_core::log::{EntryError, SignatureChecked};
use coalition_core::record::{
    Entry, Epoch, EpochClose, PartnerId, Record, RedeemCert, SignedEntry, SignedOrder, Timestamp,
    Vote,
};
use coalition_core::replica::{IngestError, IngestOutcome, Ledger, Rejected};
use coalition_core::settlement::SettlementStatement;
use coalition_core::state::LedgerView;
use coalition_core::verified::Verified;
use coalition_core::vote::{check_vote, VoteDecision, VoteError, VoteRefusal};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Entries parked for missing dependencies, at most.
pub const MAX_PENDING: usize = 100_000;

/// Commands executed before one shared disk sync, at most.
const MAX_GROUP: usize = 256;

/// The writer could not do what was asked: our failure, never the sender's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    /// A read or a write of the store failed.
    #[error("storage: {0}")]
    Store(Arc<StoreError>),
    /// The group's sync to disk failed: nothing of the group is known to be durable. The writer
    /// stops; the node must be restarted.
    #[error("storage: the sync to disk failed: {0}")]
    SyncFailed(Arc<StoreError>),
    /// Too many entries wait for a dependency; fetch in log order and try again later.
    #[error("pending buffer full ({limit} entries)")]
    PendingFull {
        /// The bound.
        limit: usize,
    },
    /// The writer is gone: the node is shutting down (or the writer stopped after a failed sync).
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<StoreError> for WriterError {
    fn from(e: StoreError) -> WriterError {
        WriterError::Store(Arc::new(e))
    }
}

/// Why a record was not appended to our own log. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// An issue's receipt reference is already on one of our lots.
    #[error("reference already used for lot {lot}")]
    ReferenceUsed {
        /// The lot issued with it.
        lot: Hash,
    },
    /// The record waits for something this node does not hold yet (a certificate for an order whose
    /// earlier spend has not reached us); it was withdrawn, so the log position stays free.
    #[error("cannot append yet: {0}")]
    Waiting(Missing),
    /// The record breaks a log or ledger rule.
    #[error("{0}")]
    Rejected(Box<IngestError<StoreError>>),
    /// The ledger found our own new entry already held, or conflicting with one held: a bug.
    #[error("unexpected outcome for our own entry: {outcome}")]
    OwnEntry {
        /// What the ledger said.
        outcome: &'static str,
    },
    /// The writer failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
}

/// Why a vote was not given.
#[derive(Debug, thiserror::Error)]
pub enum VoteFailure {
    /// Refused by the vote rule.
    #[error(transparent)]
    Refused(VoteRefusal),
    /// We failed; the requester may retry.
    #[error(transparent)]
    Writer(#[from] WriterError),
}

/// What happened to a batch of entries from a peer.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Entries newly committed (including parked ones they released).
    pub applied: usize,
    /// Already held.
    pub duplicates: usize,
    /// What the parked ones wait for.
    pub missing: Vec<Missing>,
    /// Entries refused because the sender (or the author) is at fault.
    pub bad: Vec<IngestError<StoreError>>,
    /// Equivocations detected (fraud proofs stored).
    pub equivocations: Vec<PartnerId>,
    /// Parked entries later found invalid.
    pub rejected: Vec<Rejected>,
    /// Our own failure, if any.
    pub failure: Option<WriterError>,
}

/// An entry from a peer after its signature check: what [`Writer::ingest_checked`] takes.
pub type Checked = Result<SignatureChecked, EntryError>;

/// A record for our own log.
enum ToAppend {
    /// Any record, all of its signatures checked when appended.
    Record(Record),
    /// A certificate this node built, verified vote by vote as it was built, so not checked again.
    Certificate(Verified<RedeemCert>),
}

type Reply<T, E> = oneshot::Sender<Result<T, E>>;

/// How many entries are parked, and for each log with parked entries its first parked position and
/// what it waits for.
pub type PendingSummary = (usize, Vec<(PartnerId, u64, Missing)>);

// Inline variants: each command is built once and moved once, into the channel and out.
#[allow(clippy::large_enum_variant)]
enum Command {
    Append {
        what: ToAppend,
        reply: Reply<SignedEntry, AppendError>,
    },
    CloseDue {
        now: Timestamp,
        reply: Reply<Vec<SignedEntry>, AppendError>,
    },
    Ingest {
        entries: Vec<Checked>,
        reply: oneshot::Sender<IngestReport>,
    },
    Vote {
        order: SignedOrder,
        now: Timestamp,
        reply: Reply<Vote, VoteFailure>,
    },
    PutInflight {
        order: SignedOrder,
        reply: Reply<(), WriterError>,
    },
    RemoveInflight {
        order_id: Hash,
        reply: Reply<(), WriterError>,
    },
    PutEpoch {
        statement: SettlementStatement,
        checkpoint: Checkpoint,
        signature: CheckpointSig,
        reply: Reply<(), WriterError>,
    },
    PutCheckpointSig {
        sig: CheckpointSig,
        reply: Reply<SigOutcome, WriterError>,
    },
    Pending {
        reply: oneshot::Sender<PendingSummary>,
    },
    PendingMinEpoch {
        reply: oneshot::Sender<Option<Epoch>>,
    },
}

/// A handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

/// What the writer thread needs: the coalition, our key, the clock our appends are timed by.
pub struct WriterConfig {
    /// The coalition.
    pub genesis: Arc<Genesis>,
    /// Our partner key: signs our log entries and votes.
    pub keypair: Arc<Keypair>,
    /// The time of our appends.
    pub clock: SharedClock,
}

/// Starts the writer thread over the store's writer. It stops when every [`Writer`] is dropped.
pub fn spawn(
    config: WriterConfig,
    mut store: StoreWriter,
) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(1024);
    store.defer_syncs();
    let ledger = Ledger::new(config.genesis.as_ref().clone(), store, MAX_PENDING);
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || Thread::new(ledger, config).run(rx))?;
    Ok((Writer { tx }, handle))
}

impl Writer {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    async fn call_result<T, E: From<WriterError>>(
        &self,
        make: impl FnOnce(Reply<T, E>) -> Command,
    ) -> Result<T, E> {
        self.call(make)
            .await
            .unwrap_or(Err(WriterError::ShuttingDown.into()))
    }

    /// Appends a record to our own log; returns once it is durably stored (synced).
    pub async fn append(&self, record: Record) -> Result<SignedEntry, AppendError> {
        self.call_result(|reply| Command::Append {
            what: ToAppend::Record(record),
            reply,
        })
        .await
    }

    /// Appends a certificate this node built (its signatures were verified as the votes came in, so
    /// they are not checked again); returns once it is durably stored.
    pub async fn append_certificate(
        &self,
        cert: Verified<RedeemCert>,
    ) -> Result<SignedEntry, AppendError> {
        self.call_result(|reply| Command::Append {
            what: ToAppend::Certificate(cert),
            reply,
        })
        .await
    }

    /// Appends an `EpochClose` for every epoch of our log that has ended by `now`.
    pub async fn close_due_epochs(&self, now: Timestamp) -> Result<Vec<SignedEntry>, AppendError> {
        self.call_result(|reply| Command::CloseDue { now, reply })
            .await
    }

    /// Ingests entries from a peer (in any order), checking their signatures first on the caller's
    /// thread ([`check_signatures`]).
    pub async fn ingest(&self, entries: Vec<SignedEntry>) -> IngestReport {
        self.ingest_checked(check_signatures(entries)).await
    }

    /// Ingests entries whose signatures were checked by [`check_signatures`], elsewhere than on the
    /// writer thread: catch-up checks one range while the writer applies the one before.
    pub async fn ingest_checked(&self, entries: Vec<Checked>) -> IngestReport {
        self.call(|reply| Command::Ingest { entries, reply })
            .await
            .unwrap_or_else(|| IngestReport {
                failure: Some(WriterError::ShuttingDown),
                ..IngestReport::default()
            })
    }

    /// Applies the vote rule to an order at time `now` and, if it passes, stores the vote (synced)
    /// and returns it.
    pub async fn vote(&self, order: SignedOrder, now: Timestamp) -> Result<Vote, VoteFailure> {
        self.call_result(|reply| Command::Vote { order, now, reply })
            .await
    }

    /// Remembers an order this node is collecting votes for (synced), so it survives a restart.
    pub async fn put_inflight(&self, order: SignedOrder) -> Result<(), WriterError> {
        self.call_result(|reply| Command::PutInflight { order, reply })
            .await
    }

    /// Forgets an in-flight order (certified, or given up).
    pub async fn remove_inflight(&self, order_id: Hash) -> Result<(), WriterError> {
        self.call_result(|reply| Command::RemoveInflight { order_id, reply })
            .await
    }

    /// Stores what this node computed for an epoch and its own signature, in one synced batch.
    pub async fn put_epoch(
        &self,
        statement: SettlementStatement,
        checkpoint: Checkpoint,
        signature: CheckpointSig,
    ) -> Result<(), WriterError> {
        self.call_result(|reply| Command::PutEpoch {
            statement,
            checkpoint,
            signature,
            reply,
        })
        .await
    }

    /// Stores a partner's checkpoint signature (already verified) unless it already signed the
    /// epoch.
    pub async fn put_checkpoint_sig(&self, sig: CheckpointSig) -> Result<SigOutcome, WriterError> {
        self.call_result(|reply| Command::PutCheckpointSig { sig, reply })
            .await
    }

    /// The earliest epoch of a parked entry (`None` when nothing is parked).
    pub async fn pending_min_epoch(&self) -> Option<Epoch> {
        self.call(|reply| Command::PendingMinEpoch { reply })
            .await
            .flatten()
    }

    /// How many entries are parked, and what each log waits for.
    pub async fn pending(&self) -> PendingSummary {
        self.call(|reply| Command::Pending { reply })
            .await
            .unwrap_or_default()
    }
}

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
struct Thread {
    ledger: Ledger<StoreWriter>,
    genesis: Arc<Genesis>,
    keypair: Arc<Keypair>,
    clock: SharedClock,
    me: PartnerId,
}

impl Thread {
    fn new(ledger: Ledger<StoreWriter>, config: WriterConfig) -> Thread {
        Thread {
            ledger,
            me: PartnerId(config.keypair.public()),
            genesis: config.genesis,
            keypair: config.keypair,
            clock: config.clock,
        }
    }

    /// Group commit (see the module docs). Stops when every handle is gone, or after a failed sync:
    /// what the disk did with the unsynced writes is unknown, so no more commands are taken.
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
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
                tracing::error!(error = %e, "the ledger writer cannot sync to disk; it stops, and the node must be restarted");
            }
            for reply in replies.drain(..) {
                reply.deliver(synced.as_ref().map(|_| ()));
            }
            if synced.is_err() {
                return;
            }
        }
    }

    /// Executes one command; its answer, unless it needs no sync and was sent already.
    fn execute(&mut self, cmd: Command) -> Option<Box<dyn Deliver>> {
        Some(match cmd {
            Command::Append { what, reply } => {
                let now = self.clock.now();
                let appended = match what {
                    ToAppend::Record(record) => self.append(record, None, now),
                    ToAppend::Certificate(cert) => {
                        let record = Record::Redeem(cert.inner().clone());
                        self.append(record, Some(&cert), now)
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

    fn vote(&mut self, order: SignedOrder, now: Timestamp) -> Result<Vote, VoteFailure> {
        let (member, seq) = (order.order.member, order.order.member_seq);
        let store = self.ledger.store_mut();
        let prior = store.vote(&member, seq).map_err(WriterError::from)?;
        let prior_id = prior.as_ref().map(|v| v.order_id);
        match (
            check_vote(&self.genesis, &**store, &order, now, prior_id.as_ref()),
            prior,
        ) {
            (Ok(VoteDecision::Again { .. }), Some(v)) => Ok(v),
            // "New", or "again" with nothing stored (which the rule never says): sign and store.
            (Ok(VoteDecision::New { order_id } | VoteDecision::Again { order_id }), _) => {
                let v = Vote::sign(order_id, &self.keypair);
                // Durable before it leaves this node (the reply waits for the group's sync): a
                // restart must never let us vote twice.
                Ok(store
                    .put_vote_synced(&member, seq, &v)
                    .map_err(WriterError::from)?)
            }
            (Err(VoteError::Refused(r)), _) => Err(VoteFailure::Refused(r)),
            (Err(VoteError::Store(e)), _) => Err(WriterError::from(e).into()),
        }
    }
}

/// Checks the signatures of entries from a peer, one result per entry. A range (catch-up) is
/// verified in one batch, falling back to one by one if it fails so that the good entries still
/// land and the bad one is named; a single entry (gossip) with `verify_strict`
/// (docs/protocol.md, "Signatures").
pub fn check_signatures(entries: Vec<SignedEntry>) -> Vec<Checked> {
    if entries.len() > 1 {
        SignatureChecked::verify_batch(entries)
    } else {
        entries.into_iter().map(SignatureChecked::verify).collect()
    }
}
