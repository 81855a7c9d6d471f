//! What can go wrong in the store, with where and why.

use super::columns::Column;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, PartnerId};
use std::path::PathBuf;

/// Why a store operation failed.
///
/// [`StoreError::VoteConflict`] is the vote rule at work; [`StoreError::OutOfOrder`] and
/// [`StoreError::ChangesMismatch`] are bugs in the caller. Every other variant means the node itself is
/// in trouble (bad data directory, disk failure, corruption): log it and alert, do not blame a peer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be opened as the node's database: not a RocksDB database, corrupt,
    /// locked by another process, or not writable.
    #[error("cannot open the database at {}: {reason}", path.display())]
    Open {
        /// The data directory given.
        path: PathBuf,
        /// What went wrong, in words.
        reason: String,
    },
    /// A backup (a RocksDB checkpoint) could not be written.
    #[error("cannot write a backup to {}: {reason}", path.display())]
    Backup {
        /// The directory asked for.
        path: PathBuf,
        /// RocksDB's words.
        reason: String,
    },
    /// The database was written by a build with another on-disk layout.
    #[error(
        "the database has schema version {found}, this build reads version {expected}; \
         migrate it or start from an empty data directory"
    )]
    SchemaMismatch {
        /// The version on disk.
        found: u32,
        /// [`super::schema::CURRENT_SCHEMA_VERSION`].
        expected: u32,
    },
    /// The database holds another coalition's ledger.
    #[error(
        "the database belongs to the coalition with genesis {found}, \
         but the configured genesis is {expected}"
    )]
    WrongGenesis {
        /// The genesis hash on disk.
        found: Hash,
        /// The configured genesis hash.
        expected: Hash,
    },
    /// The database is another partner's.
    #[error("the database belongs to partner {found}, but this node's key is partner {expected}")]
    WrongPartner {
        /// The partner id on disk.
        found: PartnerId,
        /// This node's partner id.
        expected: PartnerId,
    },
    /// A stored value (or key) is not what this build wrote there.
    #[error("corrupt data in column {column} at key {key}: {reason}")]
    Corrupt {
        /// The column.
        column: Column,
        /// The key, hex.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This node already voted for another order at this `(member, member_seq)`; it never votes twice.
    #[error(
        "already voted for order {existing} at member {member} seq {seq}; \
         refusing to vote for {requested}"
    )]
    VoteConflict {
        /// The member.
        member: MemberId,
        /// The member's spend counter.
        seq: u64,
        /// The order voted for before.
        existing: Hash,
        /// The order asked for now.
        requested: Hash,
    },
    /// An entry was committed at a position other than its log's next one (a bug in the caller: the
    /// ledger checks positions before committing).
    #[error(
        "entry {partner}/{found} committed out of order: \
         the stored log's next position is {expected}"
    )]
    OutOfOrder {
        /// The log.
        partner: PartnerId,
        /// The stored log's size.
        expected: u64,
        /// The entry's `seq`.
        found: u64,
    },
    /// The changes handed to a commit were computed for another entry (a bug in the caller).
    #[error("changes committed with entry {partner}/{seq} were computed for another entry")]
    ChangesMismatch {
        /// The entry's log.
        partner: PartnerId,
        /// The entry's position.
        seq: u64,
    },
    /// RocksDB failed while reading or writing one column.
    #[error("database error while {op} column {column}: {source}")]
    Db {
        /// What the store was doing ("reading", "scanning", ...).
        op: &'static str,
        /// The column.
        column: Column,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// RocksDB failed to write a batch.
    #[error("database error while writing {what}: {source}")]
    Write {
        /// What the batch holds ("entry p/7", "vote", ...).
        what: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A write failed earlier in this group (a full disk, an I/O error), so its sync is refused.
    #[error("{reason}")]
    WriteFailed {
        /// The failed write's error.
        reason: String,
    },
    /// RocksDB failed, with no more context.
    #[error(transparent)]
    Rocks(#[from] rocksdb::Error),
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// A [`StoreError::Corrupt`] for `key` in `column`.
    pub(crate) fn corrupt(column: Column, key: &[u8], reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            column,
            key: hex::encode(key),
            reason: reason.to_string(),
        }
    }

    /// A closure wrapping a RocksDB error with what the store was doing to which column.
    pub(crate) fn db(
        op: &'static str,
        column: Column,
    ) -> impl FnOnce(rocksdb::Error) -> StoreError {
        move |source| StoreError::Db { op, column, source }
    }
}
