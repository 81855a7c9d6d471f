//! The ledger state (DESIGN.md §3) as the rules see it: lots and what remains of them, each
//! member's next spend number, a member's balance; and the two sides a store implements, the read
//! side ([`LedgerView`]: what the ledger rules and the vote rule read) and the write side
//! ([`LedgerStore`]: one entry's [`Changes`], committed atomically with it).

use crate::hash::Hash;
use crate::log::{Equivocation, LogClose, LogHead};
use crate::record::{Epoch, MemberId, PartnerId, Points, SignedEntry, Timestamp};
use crate::verified::Verified;
use serde::{Deserialize, Serialize};

/// Checked arithmetic on points or counters would have overflowed (or underflowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("arithmetic overflow in {what}")]
pub struct Overflow {
    /// What was being computed.
    pub what: &'static str,
}

/// One issue's points and what is left of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The id ([`Issue::id`]).
    pub id: Hash,
    /// Who issued (and pays for) the points.
    pub issuer: PartnerId,
    /// Who owns them.
    pub member: MemberId,
    /// Points issued.
    pub points: Points,
    /// Points not yet spent. Never above `points`.
    pub remaining: Points,
    /// Spendable only by orders timed strictly before this.
    pub expires_at: Timestamp,
    /// The epoch of the issue in the issuer's log.
    pub issued_epoch: Epoch,
    /// Each spend, in member sequence order. Lets settlement derive the remainder as of any epoch
    /// and who is owed for each spend.
    pub spends: Vec<Spend>,
}

/// Points taken from a lot by one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// The epoch of the redeemer's log entry that carries the certificate.
    pub epoch: Epoch,
    /// The partner that appended the certificate, and is owed for the points.
    pub redeemer: PartnerId,
    /// Points taken.
    pub points: Points,
}

impl Lot {
    /// Points spent so far.
    pub fn spent(&self) -> Result<Points, Overflow> {
        self.spends
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(s.points))
            .ok_or(Overflow { what: "lot spends" })
    }

    /// Points left once every spend in an epoch up to `epoch` (inclusive) is counted: the lot as the
    /// closed epochs up to `epoch` see it, whatever was spent later.
    pub fn remaining_at_epoch(&self, epoch: Epoch) -> Result<Points, Overflow> {
        let spent = self
            .spends
            .iter()
            .filter(|s| s.epoch <= epoch)
            .try_fold(0u64, |acc, s| acc.checked_add(s.points))
            .ok_or(Overflow { what: "lot spends" })?;
        self.points.checked_sub(spent).ok_or(Overflow {
            what: "lot remainder",
        })
    }

    /// Whether an order timed `time` may still spend from this lot.
    pub fn is_live_at(&self, time: Timestamp) -> bool {
        self.expires_at > time
    }
}

/// What the ledger knows about a member (unknown members have the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberState {
    /// The `member_seq` the member's next order must carry: the number of its applied spends.
    pub next_seq: u64,
}

/// The read side of a ledger store: what [`apply`] and the vote rule need.
pub trait LedgerView {
    /// What the store fails with (I/O, corruption); never a rule violation.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The head of `partner`'s log ([`LogHead::empty`] if there are no entries).
    fn log_head(&self, partner: &PartnerId) -> Result<LogHead, Self::Error>;
    /// The stored entry at `seq` of `partner`'s log.
    fn entry(&self, partner: &PartnerId, seq: u64) -> Result<Option<SignedEntry>, Self::Error>;
    /// The id of the stored entry at `seq` of `partner`'s log (override if the store indexes ids).
    fn entry_id(&self, partner: &PartnerId, seq: u64) -> Result<Option<Hash>, Self::Error> {
        Ok(self.entry(partner, seq)?.map(|e| e.id()))
    }
    /// A lot by id.
    fn lot(&self, id: &Hash) -> Result<Option<Lot>, Self::Error>;
    /// A member's state ([`MemberState::default`] if unknown).
    fn member(&self, member: &MemberId) -> Result<MemberState, Self::Error>;
    /// Every lot of a member, spent or not (wallets and balances need it).
    fn member_lots(&self, member: &MemberId) -> Result<Vec<Lot>, Self::Error>;
    /// Whether a member holds any lot (override with a cheaper lookup than [`Self::member_lots`]).
    fn has_lots(&self, member: &MemberId) -> Result<bool, Self::Error> {
        Ok(!self.member_lots(member)?.is_empty())
    }
    /// `partner`'s log size and root at its close of `epoch`, if it has closed it.
    fn log_close(&self, partner: &PartnerId, epoch: Epoch)
        -> Result<Option<LogClose>, Self::Error>;
}

/// The write side of a ledger store, used by [`crate::replica::Ledger`].
pub trait LedgerStore: LedgerView {
    /// Stores `entry` at its position and every write in `changes` (which [`apply`] computed for it
    /// from this store's current state), all or nothing: one write batch.
    fn commit(
        &mut self,
        entry: &Verified<SignedEntry>,
        changes: &Changes,
    ) -> Result<(), Self::Error>;
    /// The fraud proof held against `partner`, if it has equivocated.
    fn equivocation(&self, partner: &PartnerId) -> Result<Option<Equivocation>, Self::Error>;
    /// Keeps a (verified) fraud proof; from then on the partner's entries are refused.
    fn record_equivocation(&mut self, proof: &Equivocation) -> Result<(), Self::Error>;
}

/// The writes one entry causes, to be committed atomically with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The log the entry extends.
    pub partner: PartnerId,
    /// The entry's position.
    pub seq: u64,
    /// The entry's id.
    pub entry_id: Hash,
    /// The log's head after the entry.
    pub head: LogHead,
    /// Lots created or updated, each in full.
    pub lots: Vec<Lot>,
    /// Member states updated, each in full.
    pub members: Vec<(MemberId, MemberState)>,
    /// For an epoch close: the log's size and root including it.
    pub close: Option<LogClose>,
}

/// A member's points, split by what happened to them. Always
/// `issued == available + expired + redeemed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Every point issued to the member.
    pub issued: Points,
    /// Unspent points in lots still live at the time asked about.
    pub available: Points,
    /// Unspent points in lots expired by then (breakage).
    pub expired: Points,
    /// Points spent by certified orders.
    pub redeemed: Points,
}

impl Balance {
    /// The balance over `lots` (a member's, from [`LedgerView::member_lots`]) at time `now`.
    pub fn of_lots<'a>(
        lots: impl IntoIterator<Item = &'a Lot>,
        now: Timestamp,
    ) -> Result<Balance, Overflow> {
        let add = |a: Points, b: Points, what| a.checked_add(b).ok_or(Overflow { what });
        let mut b = Balance::default();
        for lot in lots {
            b.issued = add(b.issued, lot.points, "issued")?;
            let spent = lot.points.checked_sub(lot.remaining).ok_or(Overflow {
                what: "lot remainder",
            })?;
            b.redeemed = add(b.redeemed, spent, "redeemed")?;
            if lot.is_live_at(now) {
                b.available = add(b.available, lot.remaining, "available")?;
            } else {
                b.expired = add(b.expired, lot.remaining, "expired")?;
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{test_lot as lot, test_spend as spent};

    #[test]
    fn remainder_by_epoch() {
        let mut l = lot(1, 10, 4, 100);
        l.spends = vec![spent(1, 2), spent(3, 4)];
        assert_eq!(l.remaining_at_epoch(0), Ok(10));
        assert_eq!(l.remaining_at_epoch(1), Ok(8));
        assert_eq!(l.remaining_at_epoch(3), Ok(4));
        assert_eq!(l.spent(), Ok(6));
        l.spends.push(spent(4, 20));
        assert!(l.remaining_at_epoch(9).is_err());
    }

    #[test]
    fn balance_adds_up() {
        let lots = [lot(1, 10, 4, 100), lot(2, 5, 5, 50), lot(3, 7, 0, 200)];
        let b = Balance::of_lots(&lots, 60).unwrap();
        assert_eq!(
            b,
            Balance {
                issued: 22,
                available: 4,
                expired: 5,
                redeemed: 13
            }
        );
        let broken = [
            lot(1, 10, 4, 100),
            Lot {
                remaining: 11,
                ..lot(2, 10, 10, 1)
            },
        ];
        assert!(Balance::of_lots(&broken, 0).is_err());
    }
}
