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

mod error;
mod thread;

pub use error::{AppendError, IngestReport, VoteFailure, WriterError};
pub use thread::VoteRestore;

use crate::store::{SigOutcome, StoreWriter};
use coalition_core::checkpoint::{Checkpoint, CheckpointSig};
use coalition_core::clock::SharedClock;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::ledger::Missing;
use coalition_core::log::{EntryError, SignatureChecked};
use coalition_core::record::{
    Epoch, PartnerId, Record, RedeemCert, SignedEntry, SignedOrder, Timestamp, Vote,
};
use coalition_core::replica::Ledger;
use coalition_core::settlement::SettlementStatement;
use coalition_core::verified::Verified;
use coalition_core::wire::HeldVote;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// Entries parked for missing dependencies, at most.
pub const MAX_PENDING: usize = 100_000;

/// Commands executed before one shared disk sync, at most.
const MAX_GROUP: usize = 256;

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
    HoldVotes {
        order: SignedOrder,
        votes: Vec<Vote>,
        reply: Reply<(), WriterError>,
    },
    RestoreVotes {
        held: Vec<HeldVote>,
        reply: Reply<VoteRestore, WriterError>,
    },
    Open {
        reply: oneshot::Sender<()>,
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
    /// Set by the thread when a write or sync to disk failed and it stopped.
    failure: Arc<OnceLock<String>>,
    /// Whether our own appends and votes are let through (see [`Writer::open`]).
    open: Arc<AtomicBool>,
}

/// What the writer thread needs: the coalition, our key, the clock our appends are timed by.
pub struct WriterConfig {
    /// The coalition.
    pub genesis: Arc<Genesis>,
    /// Our partner key: signs our log entries and votes.
    pub keypair: Arc<Keypair>,
    /// Whether our own appends and votes are refused ([`WriterError::Rejoining`]) until
    /// [`Writer::open`]: after a start, until the node has confirmed with its partners that it
    /// holds all of its own log and votes.
    pub closed_until_rejoined: bool,
    /// The time of our appends.
    pub clock: SharedClock,
}

/// The writer thread, for whoever runs the node.
pub struct WriterThread {
    /// Joins the thread (the store is closed once it returns).
    pub handle: std::thread::JoinHandle<()>,
    /// Completes when the thread has stopped: when every [`Writer`] is gone, or after a failed
    /// write or sync (then [`Writer::storage_failure`] says why).
    pub ended: oneshot::Receiver<()>,
}

/// Starts the writer thread over the store's writer. It stops when every [`Writer`] is dropped, or
/// after a sync to disk fails.
pub fn spawn(
    config: WriterConfig,
    mut store: StoreWriter,
) -> std::io::Result<(Writer, WriterThread)> {
    let (tx, rx) = mpsc::channel(1024);
    store.defer_syncs();
    let ledger = Ledger::new(config.genesis.as_ref().clone(), store, MAX_PENDING);
    // Dropped, and so `ended` completed, when the thread returns.
    let (alive, ended) = oneshot::channel::<()>();
    let failure = Arc::new(OnceLock::new());
    let open = Arc::new(AtomicBool::new(!config.closed_until_rejoined));
    let slot = failure.clone();
    let handle = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || {
            thread::Thread::new(ledger, config).run(rx, &slot);
            drop(alive);
        })?;
    Ok((Writer { tx, failure, open }, WriterThread { handle, ended }))
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
        match self.call(make).await {
            Some(answer) => answer,
            None => Err(self.gone().into()),
        }
    }

    /// Why the writer no longer answers: its storage failed, or the node is stopping.
    fn gone(&self) -> WriterError {
        match self.failure.get() {
            Some(reason) => WriterError::StorageFailed {
                reason: reason.clone(),
            },
            None => WriterError::ShuttingDown,
        }
    }

    /// Why the writer stopped, if a write or sync to disk failed: the node can write nothing more.
    pub fn storage_failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
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
                failure: Some(self.gone()),
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

    /// Keeps partners' votes for an order whose certificate was not formed (unsynced), for the
    /// voters to learn back if they lose them.
    pub async fn hold_votes(
        &self,
        order: SignedOrder,
        votes: Vec<Vote>,
    ) -> Result<(), WriterError> {
        self.call_result(|reply| Command::HoldVotes {
            order,
            votes,
            reply,
        })
        .await
    }

    /// Stores, synced, each of our own votes a partner held that our store no longer has.
    pub async fn restore_votes(&self, held: Vec<HeldVote>) -> Result<VoteRestore, WriterError> {
        self.call_result(|reply| Command::RestoreVotes { held, reply })
            .await
    }

    /// Lets our own appends and votes through from now on (the node has rejoined).
    pub async fn open(&self) -> Result<(), WriterError> {
        self.call(|reply| Command::Open { reply })
            .await
            .ok_or_else(|| self.gone())?;
        self.open.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether our own appends and votes are let through: false from a start until
    /// [`Writer::open`].
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
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
