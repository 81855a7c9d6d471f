//! The ledger writer: one thread owns the ledger driver (`coalition_core::memory::Ledger` over the
//! RocksDB [`Store`]) and performs every state change in turn — our own appends, entries from peers,
//! votes. Serialising them here is what makes "vote at most once per (member, seq)" and "the next
//! entry extends the head" hold without locks elsewhere. Readers go to the store directly.

use crate::store::{Store, StoreError};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::ledger::{LedgerView, Missing};
use coalition_core::log::{EntryError, SignatureChecked};
use coalition_core::memory::{IngestError, IngestOutcome, Ledger, Rejected};
use coalition_core::quorum::{check_vote, VoteDecision, VoteError, VoteRefusal};
use coalition_core::record::{
    Entry, Epoch, EpochClose, PartnerId, Record, RedeemCert, SignedEntry, SignedOrder, Timestamp,
    Vote,
};
use coalition_core::verified::Verified;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Entries parked for missing dependencies, at most.
pub const MAX_PENDING: usize = 100_000;

/// Why an own append failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The record breaks a rule (e.g. a replayed issue); nothing was written.
    #[error("{0}")]
    Rejected(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(String),
    /// The writer is gone (shutting down).
    #[error("the node is shutting down")]
    Closed,
    /// An issue's receipt reference is already on one of our lots; nothing was written.
    #[error("reference already used for lot {lot}")]
    ReferenceUsed {
        /// The lot issued with it.
        lot: coalition_core::hash::Hash,
    },
}

/// Why a vote was not given.
#[derive(Debug)]
pub enum VoteOutcome {
    /// The vote (new or repeated).
    Given(Vote),
    /// Refused by the vote rule.
    Refused(VoteRefusal),
    /// We failed; the requester may retry.
    Failed(String),
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
    pub bad: Vec<String>,
    /// Equivocations detected (fraud proofs stored).
    pub equivocations: Vec<PartnerId>,
    /// Parked entries later found invalid.
    pub rejected: Vec<Rejected>,
    /// Our own failure, if any.
    pub failure: Option<String>,
}

enum Command {
    Append {
        what: ToAppend,
        reply: oneshot::Sender<Result<SignedEntry, AppendError>>,
    },
    CloseDue {
        now: Timestamp,
        reply: oneshot::Sender<Result<Vec<SignedEntry>, AppendError>>,
    },
    Ingest {
        entries: Vec<Checked>,
        reply: oneshot::Sender<IngestReport>,
    },
    Vote {
        order: SignedOrder,
        now: Timestamp,
        reply: oneshot::Sender<VoteOutcome>,
    },
    Pending {
        reply: oneshot::Sender<(usize, Vec<(PartnerId, u64, Missing)>)>,
    },
    PendingMinEpoch {
        reply: oneshot::Sender<Option<Epoch>>,
    },
}

/// A record for our own log.
enum ToAppend {
    /// Any record, all of its signatures checked when appended.
    Record(Record),
    /// A certificate this node built, verified vote by vote as it was built, so not checked again.
    Certificate(Verified<RedeemCert>),
}

/// A handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

/// Starts the writer thread over `store`. It stops when every [`Writer`] is dropped.
pub fn spawn(
    genesis: Arc<Genesis>,
    keypair: Arc<Keypair>,
    store: Store,
) -> (Writer, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    // Synced writes are deferred to one sync per group of commands (see `run`).
    let ledger = Ledger::new(
        genesis.as_ref().clone(),
        store.deferring_sync(),
        MAX_PENDING,
    );
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || run(ledger, genesis, keypair, rx))
        .unwrap_or_else(|e| panic!("cannot start the ledger writer thread: {e}"));
    (Writer { tx }, handle)
}

impl Writer {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    /// Appends a record to our own log; returns once it is durably stored (synced).
    pub async fn append(&self, record: Record) -> Result<SignedEntry, AppendError> {
        self.call(|reply| Command::Append {
            what: ToAppend::Record(record),
            reply,
        })
        .await
        .unwrap_or(Err(AppendError::Closed))
    }

    /// Appends a certificate this node built (its signatures were verified as the votes came in, so
    /// they are not checked again); returns once it is durably stored.
    pub async fn append_certificate(
        &self,
        cert: Verified<RedeemCert>,
    ) -> Result<SignedEntry, AppendError> {
        self.call(|reply| Command::Append {
            what: ToAppend::Certificate(cert),
            reply,
        })
        .await
        .unwrap_or(Err(AppendError::Closed))
    }

    /// Appends an `EpochClose` for every epoch of our log that has ended by `now`.
    pub async fn close_due_epochs(&self, now: Timestamp) -> Result<Vec<SignedEntry>, AppendError> {
        self.call(|reply| Command::CloseDue { now, reply })
            .await
            .unwrap_or(Err(AppendError::Closed))
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
                failure: Some("the node is shutting down".into()),
                ..IngestReport::default()
            })
    }

    /// Applies the vote rule to an order and, if it passes, stores the vote (synced) and returns it.
    pub async fn vote(&self, order: SignedOrder, now: Timestamp) -> VoteOutcome {
        self.call(|reply| Command::Vote { order, now, reply })
            .await
            .unwrap_or_else(|| VoteOutcome::Failed("the node is shutting down".into()))
    }

    /// The earliest epoch of a parked entry (`None` when nothing is parked).
    pub async fn pending_min_epoch(&self) -> Option<Epoch> {
        self.call(|reply| Command::PendingMinEpoch { reply })
            .await
            .flatten()
    }

    /// How many entries are parked, and what each log waits for.
    pub async fn pending(&self) -> (usize, Vec<(PartnerId, u64, Missing)>) {
        self.call(|reply| Command::Pending { reply })
            .await
            .unwrap_or_default()
    }
}

/// Commands executed before one shared disk sync, at most.
const MAX_GROUP: usize = 256;

/// A command's answer, held until the group's writes are durable.
// Inline variants: each is made once per command and moved once.
#[allow(clippy::large_enum_variant)]
enum Reply {
    Append(
        oneshot::Sender<Result<SignedEntry, AppendError>>,
        Result<SignedEntry, AppendError>,
    ),
    CloseDue(
        oneshot::Sender<Result<Vec<SignedEntry>, AppendError>>,
        Result<Vec<SignedEntry>, AppendError>,
    ),
    Ingest(oneshot::Sender<IngestReport>, IngestReport),
    Vote(oneshot::Sender<VoteOutcome>, VoteOutcome),
}

impl Reply {
    /// Sends the answer; if the group's sync failed, a failure instead of anything that promised
    /// durability.
    fn send(self, sync_failed: Option<&str>) {
        let failed = |e: &str| format!("storage: the sync to disk failed: {e}");
        match (self, sync_failed) {
            (Reply::Append(tx, r), None) => drop(tx.send(r)),
            (Reply::Append(tx, _), Some(e)) => drop(tx.send(Err(AppendError::Store(failed(e))))),
            (Reply::CloseDue(tx, r), None) => drop(tx.send(r)),
            (Reply::CloseDue(tx, _), Some(e)) => drop(tx.send(Err(AppendError::Store(failed(e))))),
            (Reply::Ingest(tx, r), None) => drop(tx.send(r)),
            (Reply::Ingest(tx, mut r), Some(e)) => {
                r.failure = Some(failed(e));
                drop(tx.send(r))
            }
            (Reply::Vote(tx, v), None) => drop(tx.send(v)),
            (Reply::Vote(tx, _), Some(e)) => drop(tx.send(VoteOutcome::Failed(failed(e)))),
        }
    }
}

/// Group commit: takes every command already queued (up to [`MAX_GROUP`]), executes them in order
/// over a store handle whose synced writes are deferred, syncs the write-ahead log once, and only
/// then answers. Under load many votes and appends share one disk sync instead of queueing behind
/// one sync each; alone, a command costs what it did. Nothing is answered before it is durable, and
/// nothing of ours leaves the node before it is answered.
fn run(
    mut ledger: Ledger<Store>,
    genesis: Arc<Genesis>,
    keypair: Arc<Keypair>,
    mut rx: mpsc::Receiver<Command>,
) {
    let me = PartnerId(keypair.public());
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut replies = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(_) => break,
            }
        }
        for cmd in group.drain(..) {
            match cmd {
                Command::Append { what, reply } => {
                    let appended = match what {
                        ToAppend::Record(record) => {
                            append(&mut ledger, &keypair, me, record, None, now())
                        }
                        ToAppend::Certificate(cert) => {
                            let record = Record::Redeem(cert.inner().clone());
                            append(&mut ledger, &keypair, me, record, Some(&cert), now())
                        }
                    };
                    replies.push(Reply::Append(reply, appended));
                }
                Command::CloseDue { now, reply } => {
                    replies.push(Reply::CloseDue(
                        reply,
                        close_due(&mut ledger, &genesis, &keypair, me, now),
                    ));
                }
                Command::Ingest { entries, reply } => {
                    replies.push(Reply::Ingest(reply, ingest(&mut ledger, entries)));
                }
                Command::Vote { order, now, reply } => {
                    replies.push(Reply::Vote(
                        reply,
                        vote(&ledger, &genesis, &keypair, order, now),
                    ));
                }
                Command::PendingMinEpoch { reply } => {
                    let _ = reply.send(ledger.pending_min_epoch());
                }
                Command::Pending { reply } => {
                    let _ = reply.send((ledger.pending_len(), ledger.pending_missing()));
                }
            }
        }
        let synced = ledger.store().sync_deferred();
        if let Err(e) = &synced {
            tracing::error!(error = %e, "the ledger writer cannot sync to disk; it stops, and the node must be restarted");
        }
        let failed = synced.as_ref().err().map(|e| e.to_string());
        for reply in replies.drain(..) {
            reply.send(failed.as_deref());
        }
        // What the disk did with the unsynced writes is unknown: stop taking commands.
        if failed.is_some() {
            return;
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn append(
    ledger: &mut Ledger<Store>,
    keypair: &Keypair,
    me: PartnerId,
    record: Record,
    cert: Option<&Verified<RedeemCert>>,
    time: Timestamp,
) -> Result<SignedEntry, AppendError> {
    if let Record::Issue(issue) = &record {
        // Checked here, on the one thread that appends, so two retries of one receipt cannot both
        // pass: the index is written in the same batch as the issue.
        let used = ledger.store().own_issue_by_reference(&issue.reference);
        if let Some(lot) = used.map_err(|e| AppendError::Store(e.to_string()))? {
            return Err(AppendError::ReferenceUsed { lot });
        }
    }
    let head = ledger
        .store()
        .log_head(&me)
        .map_err(|e| AppendError::Store(e.to_string()))?;
    let entry = Entry {
        partner: me,
        seq: head.size,
        prev: head.last,
        epoch: head.open_epoch,
        time: time.max(head.last_time),
        record,
    };
    let checked = SignatureChecked::sign(entry, keypair, cert)
        .map_err(|e| AppendError::Rejected(e.to_string()))?;
    let entry = checked.entry().clone();
    match ledger.ingest_presigned(checked) {
        Ok(IngestOutcome::Applied { .. }) => Ok(entry),
        Ok(IngestOutcome::Pending(missing)) => {
            // Our own record waits on something we do not hold (e.g. a certificate for an order whose
            // earlier spend has not reached us). Report it as not appended and withdraw it: left
            // parked, our next entry at this seq would be recorded as our own equivocation.
            ledger.unpark(&me, entry.entry.seq);
            Err(AppendError::Rejected(format!(
                "cannot append yet: {missing}"
            )))
        }
        Ok(other) => Err(AppendError::Rejected(format!(
            "unexpected outcome for own entry: {other:?}"
        ))),
        Err(IngestError::Store(e)) => Err(AppendError::Store(e.to_string())),
        Err(e) => Err(AppendError::Rejected(e.to_string())),
    }
}

fn close_due(
    ledger: &mut Ledger<Store>,
    genesis: &Genesis,
    keypair: &Keypair,
    me: PartnerId,
    now: Timestamp,
) -> Result<Vec<SignedEntry>, AppendError> {
    let mut closed = Vec::new();
    loop {
        let head = ledger
            .store()
            .log_head(&me)
            .map_err(|e| AppendError::Store(e.to_string()))?;
        let epoch = head.open_epoch;
        if now < genesis.epoch_end(epoch) {
            return Ok(closed);
        }
        closed.push(append(
            ledger,
            keypair,
            me,
            Record::EpochClose(EpochClose { epoch }),
            None,
            now,
        )?);
    }
}

/// An entry from a peer after its signature check: what [`Writer::ingest_checked`] takes.
pub type Checked = Result<SignatureChecked, EntryError>;

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

fn ingest(ledger: &mut Ledger<Store>, checked: Vec<Checked>) -> IngestReport {
    let mut report = IngestReport::default();
    for c in checked {
        let result = match c {
            Ok(entry) => ledger.ingest_presigned(entry),
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
            Err(IngestError::Store(e)) => report.failure = Some(e.to_string()),
            Err(e) if e.is_bad_input() => report.bad.push(e.to_string()),
            Err(e) => report.failure = Some(e.to_string()),
        }
    }
    report
}

fn vote(
    ledger: &Ledger<Store>,
    genesis: &Genesis,
    keypair: &Keypair,
    order: SignedOrder,
    now: Timestamp,
) -> VoteOutcome {
    let store = ledger.store();
    let (member, seq) = (order.order.member, order.order.member_seq);
    let prior = match store.vote(&member, seq) {
        Ok(v) => v,
        Err(e) => return VoteOutcome::Failed(e.to_string()),
    };
    match check_vote(
        genesis,
        store,
        &order,
        now,
        prior.as_ref().map(|v| &v.order_id),
    ) {
        Ok(VoteDecision::Again { .. }) => match prior {
            Some(v) => VoteOutcome::Given(v),
            None => VoteOutcome::Failed("vote rule said 'again' without a stored vote".into()),
        },
        Ok(VoteDecision::New { order_id }) => {
            let v = Vote::sign(order_id, keypair);
            // Durable before it leaves this node (the reply waits for the group's sync): a restart
            // must never let us vote twice.
            match store.put_vote_synced(&member, seq, &v) {
                Ok(stored) if stored == v => VoteOutcome::Given(v),
                Ok(_) => VoteOutcome::Failed("a different vote was stored concurrently".into()),
                Err(e) => VoteOutcome::Failed(store_err(e)),
            }
        }
        Err(VoteError::Refused(r)) => VoteOutcome::Refused(r),
        Err(VoteError::Store(e)) => VoteOutcome::Failed(e.to_string()),
    }
}

fn store_err(e: StoreError) -> String {
    e.to_string()
}
