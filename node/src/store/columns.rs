//! The column families of the node's database: one per kind of record, each with a short, stable
//! on-disk name.
//!
//! Names are part of the on-disk format: renaming one is a schema change (bump
//! [`super::schema::CURRENT_SCHEMA_VERSION`] and migrate). Keys are fixed-width and big-endian
//! wherever ordered iteration matters (see [`super::keys`]); values are the canonical encoding of
//! `coalition_core::encoding` unless a column says otherwise.

use std::fmt;

/// A column family of the node's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// `partner ‖ seq be` → canonical `SignedEntry` bytes: every partner's log, in order.
    Entries,
    /// `partner ‖ index be` → the Merkle leaf hash of that entry, so proofs need no entry decoding.
    Leaves,
    /// `partner` → `LogHead`: how far each log is applied here, with its Merkle frontier.
    Heads,
    /// `partner ‖ epoch be` → [`LogClose`](coalition_core::log::LogClose): the log's size and
    /// root right after its `EpochClose` for that epoch.
    Closes,
    /// `lot id` → `Lot`: every issue and what is left of it.
    Lots,
    /// `member ‖ lot id` → `()`: the lots of each member, for balances.
    MemberLots,
    /// `member` → `MemberState`: spend counter and totals.
    Members,
    /// `member ‖ time be ‖ entry partner ‖ entry seq be` → [`super::HistoryRow`]: each member's
    /// earns and redemptions in time order.
    History,
    /// `record id` → [`super::RecordLocation`]: the log position holding an issue (by lot id) or a
    /// redemption (by order id), for inclusion proofs. Epoch closes are not here: their record id
    /// is the same for every partner closing an epoch; `closes` finds them.
    Records,
    /// `member ‖ member_seq be` → `Vote`: the vote this node gave for that spend. Written synced
    /// before the vote is sent, and replaced by a vote for another order only once no certificate
    /// for the first can apply (`coalition_core::cert_window::released`).
    Votes,
    /// `order id` → `SignedOrder`: a redemption this node is collecting votes for, so it survives a
    /// restart.
    Inflight,
    /// `partner ‖ seq be` → [`Equivocation`](coalition_core::log::Equivocation): two different
    /// entries signed by one partner for one position (a fraud proof).
    Fraud,
    /// `epoch be` → [`Checkpoint`](coalition_core::checkpoint::Checkpoint): what this node
    /// computed for the epoch.
    Checkpoints,
    /// `epoch be ‖ partner` → [`CheckpointSig`](coalition_core::checkpoint::CheckpointSig): that
    /// partner's signature over its checkpoint of the epoch (the first one it sent).
    CheckpointSigs,
    /// `epoch be` → [`SettlementStatement`](coalition_core::settlement::SettlementStatement): the
    /// epoch's settlement, as this node computed it.
    Statements,
    /// Named keys (`schema_version`, `genesis_hash`, `partner`) describing the database itself.
    Meta,
    /// `reference hash` → lot id: this node's own issues by their receipt reference, so a POS
    /// retrying an issue gets the lot it already has. Added after schema 1 without a version bump:
    /// RocksDB creates the missing column, and issues from before it are simply not indexed.
    References,
    /// `order id ‖ voter` → [`HeldVote`](coalition_core::wire::HeldVote): a partner's vote this
    /// node gathered as redeemer for an order it has not certified, kept so that a voter which
    /// lost its own copy learns it back (docs/protocol.md, "Rejoining after a start"). Written
    /// unsynced: it is a second copy, the voter's synced one is the first. Added like
    /// `references`, without a version bump.
    HeldVotes,
    /// `member ‖ member_seq be` → `u64`: the time of the order this node's vote in `votes` is for,
    /// written in the vote's batch, so the vote can be released once that order can no longer be
    /// certified. Added like `references`; a vote from before it has no time and is never
    /// released.
    VoteTimes,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 19] = [
        Column::Entries,
        Column::Leaves,
        Column::Heads,
        Column::Closes,
        Column::Lots,
        Column::MemberLots,
        Column::Members,
        Column::History,
        Column::Records,
        Column::Votes,
        Column::Inflight,
        Column::Fraud,
        Column::Checkpoints,
        Column::CheckpointSigs,
        Column::Statements,
        Column::Meta,
        Column::References,
        Column::HeldVotes,
        Column::VoteTimes,
    ];

    /// The column family's name on disk. Stable: never change one.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Entries => "entries",
            Column::Leaves => "leaves",
            Column::Heads => "heads",
            Column::Closes => "closes",
            Column::Lots => "lots",
            Column::MemberLots => "member_lots",
            Column::Members => "members",
            Column::History => "history",
            Column::Records => "records",
            Column::Votes => "votes",
            Column::Inflight => "inflight",
            Column::Fraud => "fraud",
            Column::Checkpoints => "checkpoints",
            Column::CheckpointSigs => "checkpoint_sigs",
            Column::Statements => "statements",
            Column::Meta => "meta",
            Column::References => "references",
            Column::HeldVotes => "held_votes",
            Column::VoteTimes => "vote_times",
        }
    }

    /// The column with this on-disk name.
    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the column is read mostly by exact key (a bloom filter pays off) rather than by
    /// ordered scans.
    pub(crate) const fn point_lookups(self) -> bool {
        matches!(
            self,
            Column::Lots
                | Column::Members
                | Column::Records
                | Column::Votes
                | Column::VoteTimes
                | Column::Heads
        )
    }

    /// Whether the column grows with the ledger (and gets a bigger memtable).
    pub(crate) const fn is_large(self) -> bool {
        matches!(
            self,
            Column::Entries
                | Column::Leaves
                | Column::Lots
                | Column::MemberLots
                | Column::Members
                | Column::History
                | Column::Records
                | Column::Votes
                | Column::VoteTimes
        )
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        let mut names: Vec<_> = Column::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Column::ALL.len());
        for c in Column::ALL {
            assert_eq!(Column::from_name(c.name()), Some(c));
            assert_ne!(c.name(), "default");
        }
    }
}
