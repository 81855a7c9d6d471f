//! What a node operation can fail with ([`NodeError`]): a typed cause for every failure, so the
//! callers that decide (the in-flight retry, the API's one mapping to HTTP in `api/error.rs`, the
//! metrics) match on variants instead of words.

use crate::store::StoreError;
use crate::writer::{AppendError, WriterError};
use coalition_core::cert::{AddVoteError, CertError};
use coalition_core::checkpoint::CheckpointError;
use coalition_core::hash::Hash;
use coalition_core::merkle::MerkleError;
use coalition_core::record::{Epoch, PartnerId, Timestamp};
use coalition_core::refusal::RefusalCode;
use coalition_core::wire::Refusal;

/// The result of a node operation.
pub type NodeResult<T> = Result<T, NodeError>;

/// Why a node operation did not happen. Unless a variant says otherwise, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request breaks one of this node's rules for requests.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// What was asked for does not exist here (yet).
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The record breaks a log or ledger rule (a replayed issue, say); nothing was appended.
    #[error("{0}")]
    Rejected(#[source] AppendError),
    /// The order itself does not deserve a vote (its form, or the member's signature); no partner
    /// was asked.
    #[error("redemption refused: {0}")]
    OrderRefused(#[source] CertError),
    /// A partner refused to vote with a final reason, so a quorum is out of reach.
    #[error("redemption refused: {partner} refused: {message} ({got} of {needed} votes)")]
    RefusedBy {
        /// The refusing partner's name.
        partner: String,
        /// Its reason.
        code: RefusalCode,
        /// Its words.
        message: String,
        /// Votes gathered.
        got: usize,
        /// Votes needed.
        needed: usize,
    },
    /// The order can no longer be certified here: this partner's log has closed the last epoch its
    /// certificate could be appended in (docs/protocol.md, "Releasing a sequence number"). Final.
    #[error(
        "order {order} is of epoch {order_epoch}; its certificate had to be appended by the end of \
         epoch {last_epoch}, which this partner has closed. Sign a new order: the member's sequence \
         number is free again once every partner has closed epoch {last_epoch}"
    )]
    OrderTooLate {
        /// The order.
        order: Hash,
        /// The epoch of its time.
        order_epoch: Epoch,
        /// The last epoch its certificate could be appended in.
        last_epoch: Epoch,
    },
    /// Too few partners voted in time.
    #[error("no quorum: {got} of {needed} votes ({})", join(failures))]
    NoQuorum {
        /// Votes gathered.
        got: usize,
        /// Votes needed.
        needed: usize,
        /// Every partner that did not vote, and why.
        failures: Vec<VoteMiss>,
    },
    /// The receipt reference already names another issue of ours.
    #[error(
        "this receipt reference was already used for lot {lot}, with another member, amount or \
         lifetime"
    )]
    ReferenceReused {
        /// The lot issued with it.
        lot: Hash,
    },
    /// Another request is redeeming this very order now.
    #[error(
        "this order is being redeemed by another request now; submit it again for the receipt"
    )]
    Busy {
        /// The order.
        order: Hash,
    },
    /// The node has just started and is confirming with its partners that it holds all of its
    /// own log and votes; it signs nothing until then.
    #[error("{}", WriterError::Rejoining)]
    Rejoining,
    /// The node is shutting down (the writer or the network task has stopped).
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node's storage failed (a full disk, an I/O error): it writes nothing more, and exits so a
    /// supervisor can restart it once the disk is usable.
    #[error("storage failed: {reason}")]
    StorageFailed {
        /// The failed write's error.
        reason: String,
    },
    /// A quorum certified the order but its certificate could not be appended yet (our store
    /// failed, or it waits for an earlier spend this node lacks). The order stays in flight and is
    /// retried.
    #[error("certified but not appended: {0}")]
    NotAppended(#[source] AppendError),
    /// The ledger writer failed.
    #[error(transparent)]
    Writer(WriterError),
    /// A read of the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store contradicts itself: an index names a record that is not there.
    #[error("the store is inconsistent: {0}")]
    Inconsistent(#[from] Inconsistency),
    /// A proof this node built does not verify (a bug, or a damaged store).
    #[error("the proof built does not verify: {0}")]
    Proof(#[from] CheckpointError),
    /// A proof could not be built from the stored leaves.
    #[error("cannot build the proof: {0}")]
    Merkle(#[from] MerkleError),
    /// A sum of points over the ledger overflows (a damaged store: no valid ledger gets there).
    #[error(transparent)]
    Overflow(#[from] coalition_core::state::Overflow),
    /// A rule the node relies on did not hold (a bug); nothing changed. Retried like a failure of
    /// ours.
    #[error("internal invariant broken: {what}")]
    Invariant {
        /// Which.
        what: &'static str,
    },
    /// Blocking work panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl NodeError {
    /// Whether an in-flight redemption that failed with this should be tried again later: the
    /// quorum or the append may succeed once partners or the disk are back, or an earlier spend has
    /// arrived. A refusal is final, and so is a certificate the ledger rules reject.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NodeError::NoQuorum { .. }
                | NodeError::NotAppended(AppendError::Waiting(_) | AppendError::Writer(_))
                | NodeError::Writer(_)
                | NodeError::Store(_)
                | NodeError::Invariant { .. }
                | NodeError::Task(_)
                | NodeError::StorageFailed { .. }
                | NodeError::Rejoining
        )
    }

    /// Whether this is the node's storage failing (a full disk, an I/O error) rather than a bug: the
    /// failed write itself, its group's sync, or any write after the writer stopped for it.
    pub fn is_storage_failure(&self) -> bool {
        let writer = match self {
            NodeError::StorageFailed { .. } => return true,
            NodeError::Writer(w) | NodeError::NotAppended(AppendError::Writer(w)) => w,
            _ => return false,
        };
        match writer {
            WriterError::StorageFailed { .. } | WriterError::SyncFailed(_) => true,
            WriterError::Store(e) => matches!(
                e.as_ref(),
                StoreError::Write { .. } | StoreError::WriteFailed { .. }
            ),
            _ => false,
        }
    }

    /// The metrics label of a failed redemption.
    pub fn redemption_reason(&self) -> &'static str {
        let [bad_signature, malformed, no_quorum, other] = Self::REDEMPTION_REASONS;
        match self {
            NodeError::RefusedBy { code, .. } => code.as_str(),
            NodeError::OrderRefused(CertError::MemberSignature { .. }) => bad_signature,
            NodeError::OrderRefused(_) => malformed,
            NodeError::NoQuorum { .. } => no_quorum,
            NodeError::OrderTooLate { .. } => RefusalCode::OrderTooLate.as_str(),
            _ => other,
        }
    }

    /// What [`NodeError::redemption_reason`] answers besides a refusal code (metrics label them).
    pub const REDEMPTION_REASONS: [&'static str; 4] =
        ["bad_member_signature", "malformed", "no_quorum", "other"];
}

impl From<WriterError> for NodeError {
    fn from(e: WriterError) -> NodeError {
        match e {
            WriterError::ShuttingDown => NodeError::ShuttingDown,
            WriterError::Rejoining => NodeError::Rejoining,
            WriterError::StorageFailed { reason } => NodeError::StorageFailed { reason },
            other => NodeError::Writer(other),
        }
    }
}

impl From<AppendError> for NodeError {
    /// An append of a record this node was asked to make (an issue, an epoch close).
    fn from(e: AppendError) -> NodeError {
        match e {
            AppendError::ReferenceUsed { lot } => NodeError::ReferenceReused { lot },
            AppendError::Writer(w) => w.into(),
            rule => NodeError::Rejected(rule),
        }
    }
}

/// A request this node does not take.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRequest {
    /// An issue of no points.
    #[error("points must be at least 1")]
    ZeroPoints,
    /// An issue above the sanity bound.
    #[error("points must be at most {max}")]
    TooManyPoints {
        /// The bound.
        max: u64,
    },
    /// The member id is not a usable ed25519 key.
    #[error("member id is not a valid ed25519 key")]
    MemberKey,
    /// A lot lifetime out of range.
    #[error("expires_in_secs must be between 1 and {max}")]
    Lifetime {
        /// The longest lifetime.
        max: u64,
    },
    /// A backup directory that cannot be used.
    #[error("backup directory {dir}: {reason}")]
    BackupDir {
        /// The path given.
        dir: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A receipt reference of nothing but whitespace.
    #[error("reference must not be empty: send the receipt number, or leave reference out")]
    EmptyReference,
    /// The order token does not decode.
    #[error(transparent)]
    OrderToken(#[from] coalition_client::order::TokenError),
    /// The order names another partner as its redeemer.
    #[error("this order is for {redeemer} and must be submitted at its node")]
    OtherRedeemer {
        /// The redeemer's name.
        redeemer: String,
    },
    /// A proof was asked for up to a checkpoint that does not cover the record.
    #[error("record {record} is at position {seq} of its log, after checkpoint {epoch}")]
    AfterCheckpoint {
        /// The record.
        record: Hash,
        /// Its position.
        seq: u64,
        /// The checkpoint asked for.
        epoch: Epoch,
    },
}

/// What is not here.
#[derive(Debug, thiserror::Error)]
pub enum NotFound {
    /// A log of a key that is not a partner.
    #[error("{} is not a partner", .partner.to_hex())]
    NotAPartner {
        /// The key.
        partner: PartnerId,
    },
    /// No sealed checkpoint of the epoch yet.
    #[error("epoch {epoch} has no sealed checkpoint yet")]
    NotSealed {
        /// The epoch.
        epoch: Epoch,
    },
    /// The epoch has not even ended, so nothing of it can be sealed or settled.
    #[error(
        "epoch {epoch} has not ended yet: the current epoch is {current}, and epoch {epoch} ends \
         at {}; it is sealed shortly after",
        rfc3339(*.ends_at)
    )]
    EpochNotOver {
        /// The epoch asked for.
        epoch: Epoch,
        /// The current epoch.
        current: Epoch,
        /// The first second after it.
        ends_at: Timestamp,
    },
    /// No statement of the epoch yet.
    #[error("epoch {epoch} has not been settled yet")]
    NotSettled {
        /// The epoch.
        epoch: Epoch,
    },
    /// No record with this id.
    #[error("no record {record} here")]
    NoRecord {
        /// The id.
        record: Hash,
    },
    /// The record is not covered by a sealed checkpoint yet.
    #[error("record {record} is in epoch {epoch}; no sealed checkpoint covers it yet")]
    NotCovered {
        /// The record.
        record: Hash,
        /// Its epoch.
        epoch: Epoch,
    },
}

/// How the store contradicts itself.
#[derive(Debug, thiserror::Error)]
pub enum Inconsistency {
    /// An index (by reference, by record id) names a record whose entry is not stored.
    #[error("record {record} is indexed but its entry is missing")]
    IndexedNotStored {
        /// The record.
        record: Hash,
    },
    /// The entry indexed under a lot id does not carry an issue.
    #[error("lot {lot}'s record is not an issue")]
    NotAnIssue {
        /// The lot.
        lot: Hash,
    },
    /// A checkpoint lacks one of the genesis partners' logs.
    #[error("the checkpoint of epoch {epoch} lacks the log of {partner}")]
    CheckpointLacksLog {
        /// The epoch.
        epoch: Epoch,
        /// The partner.
        partner: PartnerId,
    },
}

/// One partner that did not give its vote, and why.
#[derive(Debug)]
pub struct VoteMiss {
    /// The partner's name.
    pub partner: String,
    /// Why.
    pub reason: MissReason,
}

/// Why a partner's vote is missing.
#[derive(Debug, thiserror::Error)]
pub enum MissReason {
    /// It refused (possibly only "not yet", until the deadline).
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// It sent a vote that does not check.
    #[error("invalid vote: {0}")]
    InvalidVote(AddVoteError),
    /// Our own vote could not be given (our writer failed).
    #[error("{0}")]
    Ours(WriterError),
    /// The request failed on the way (not connected, transport error, timeout).
    #[error("{0}")]
    Network(crate::p2p::NetError),
    /// No answer before the deadline.
    #[error("no answer in time")]
    NoAnswer,
    /// It could not evaluate the vote (its own store or writer failed).
    #[error("{message}")]
    PeerFailed {
        /// Its words.
        message: String,
    },
    /// It answered something else than a vote.
    #[error("unexpected answer {kind}")]
    Unexpected {
        /// What it answered.
        kind: &'static str,
    },
}

/// The failures first, then the refusals (what a cashier most needs to see), `; ` between them.
fn join(failures: &[VoteMiss]) -> String {
    let refused = |m: &&VoteMiss| matches!(m.reason, MissReason::Refused(_));
    failures
        .iter()
        .filter(|m| !refused(m))
        .chain(failures.iter().filter(refused))
        .map(|m| format!("{}: {}", m.partner, m.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A time for a message, in UTC.
fn rfc3339(t: Timestamp) -> String {
    humantime::format_rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).to_string()
}
