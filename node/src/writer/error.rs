//! What the writer answers when it did not do what was asked, and what an ingest did.

use crate::store::StoreError;
use coalition_core::hash::Hash;
use coalition_core::ledger::Missing;
use coalition_core::record::PartnerId;
use coalition_core::replica::{IngestError, Rejected};
use coalition_core::vote::VoteRefusal;
use std::sync::Arc;

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
    /// A rule the writer relies on did not hold (a bug): nothing was written.
    #[error("internal invariant broken: {what}")]
    Invariant {
        /// Which.
        what: &'static str,
    },
    /// The writer stopped after a write or sync to disk failed: nothing more can be written until
    /// the node restarts (with space on its disk).
    #[error("storage failed: {reason}")]
    StorageFailed {
        /// The failed write's or sync's error.
        reason: String,
    },
    /// The node has just started and has not yet confirmed with its partners that none holds
    /// more of its own log or votes than it does (docs/protocol.md, "Rejoining after a start"):
    /// nothing of ours is signed until it has.
    #[error("the node is confirming its own log and votes with its partners after a start; try again shortly")]
    Rejoining,
    /// The writer is gone: the node is shutting down.
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
