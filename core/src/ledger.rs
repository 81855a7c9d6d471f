//! The state rules (DESIGN.md §3): how each validated log entry changes the ledger state — lots and
//! what remains of them, each member's next spend number — and the read side ([`LedgerView`]) and
//! write side ([`LedgerStore`]) a store implements.
//!
//! [`apply`] is pure: it reads through a [`LedgerView`] and returns the [`Changes`] the store commits
//! atomically with the entry. It separates an entry that must wait for something not yet here
//! ([`ApplyError::Waiting`]) from one that breaks a rule ([`ApplyError::Invalid`]) and from a store
//! failure ([`ApplyError::Store`]).
//!
//! Arrival order does not matter: an issue creates a lot and commutes with everything; a spend applies
//! only at its member's next sequence number, after every lot it names exists, so the state each spend
//! sees is the same whatever order the logs arrive in. [`crate::memory::Ledger`] is the driver that
//! parks waiting entries and retries them.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::log::{check_position, EntryError, Equivocation, LogClose, LogHead};
use crate::quorum::{check_cert_form, CertError, MAX_LOTS_PER_ORDER};
use crate::record::{
    Epoch, Issue, LotSpend, MemberId, PartnerId, Points, Record, RedeemCert, SignedEntry, Timestamp,
};
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
    /// The issue's id ([`Issue::id`]).
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

/// The write side of a ledger store, used by [`crate::memory::Ledger`].
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

/// What an entry waits for. It is not wrong; it is early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Missing {
    /// The issue that created this lot.
    #[error("lot {0} is not here yet")]
    Lot(Hash),
    /// The member's earlier spends.
    #[error("member {member} is at seq {next_seq}, the order is at seq {order_seq}")]
    PriorSpend {
        /// The member.
        member: MemberId,
        /// The order's `member_seq`.
        order_seq: u64,
        /// The member's next sequence number here.
        next_seq: u64,
    },
    /// Earlier entries of the same log.
    #[error("log of {partner} has {next_seq} entries, this is entry {seq}")]
    PriorEntry {
        /// The log.
        partner: PartnerId,
        /// The log's size here.
        next_seq: u64,
        /// The entry's position.
        seq: u64,
    },
}

/// Which ledger rule an entry breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The entry does not extend its log's head.
    #[error(transparent)]
    Log(#[from] EntryError),
    /// The certificate is invalid.
    #[error("invalid certificate: {0}")]
    Cert(#[from] CertError),
    /// An issue of zero points.
    #[error("issue {lot} is for zero points")]
    ZeroIssue {
        /// The lot.
        lot: Hash,
    },
    /// An issue expiring at or before its own time.
    #[error("issue {lot} expires at {expires_at}, not after its time {time}")]
    IssueExpired {
        /// The lot.
        lot: Hash,
        /// Its expiry.
        expires_at: Timestamp,
        /// The issue's time.
        time: Timestamp,
    },
    /// An issue to a key nobody can sign with: the points could never be spent.
    #[error("issue {lot} is to {member}, which is not a valid key")]
    BadMemberKey {
        /// The lot.
        lot: Hash,
        /// The member key.
        member: MemberId,
    },
    /// The lot already exists: a replayed issue.
    #[error("lot {lot} already exists (replayed issue)")]
    DuplicateLot {
        /// The lot.
        lot: Hash,
    },
    /// The order reuses a spent sequence number.
    #[error("member {member} order seq {order_seq} is already spent (next is {next_seq})")]
    StaleSeq {
        /// The member.
        member: MemberId,
        /// The order's `member_seq`.
        order_seq: u64,
        /// The member's next sequence number.
        next_seq: u64,
    },
    /// The order spends a lot of another member.
    #[error("lot {lot} belongs to {owner}, not to {member}")]
    LotOfAnotherMember {
        /// The lot.
        lot: Hash,
        /// Its owner.
        owner: MemberId,
        /// The member spending.
        member: MemberId,
    },
    /// The order spends a lot expired at the order's time.
    #[error("lot {lot} expired at {expires_at}, not after the order time {order_time}")]
    LotExpired {
        /// The lot.
        lot: Hash,
        /// Its expiry.
        expires_at: Timestamp,
        /// The order's time.
        order_time: Timestamp,
    },
    /// The order takes more from a lot than is left.
    #[error("lot {lot} has {remaining} points left, the order takes {wanted}")]
    Overspend {
        /// The lot.
        lot: Hash,
        /// Points left.
        remaining: Points,
        /// Points taken.
        wanted: Points,
    },
    /// A counter would overflow.
    #[error(transparent)]
    Overflow(#[from] Overflow),
}

/// Why [`apply`] produced no changes.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError<E: std::error::Error + 'static> {
    /// A dependency has not arrived: keep the entry and retry once something is committed.
    #[error("waiting: {0}")]
    Waiting(Missing),
    /// The entry breaks a rule: reject it (the sender sent bad data).
    #[error("invalid: {0}")]
    Invalid(#[from] RuleError),
    /// The store failed (our problem, not the sender's).
    #[error("ledger store failed: {0}")]
    Store(#[source] E),
}

impl<E: std::error::Error + 'static> From<EntryError> for ApplyError<E> {
    fn from(e: EntryError) -> Self {
        ApplyError::Invalid(RuleError::Log(e))
    }
}

/// The checks on a record that need no state, run before any read.
enum Static<'a> {
    Issue(&'a Issue, Hash),
    Redeem(&'a RedeemCert),
    Close(Epoch),
}

/// The writes `entry` causes on the state seen through `view`, or why it cannot apply (yet).
///
/// The entry's signatures, a certificate's included, are verified already (`Verified<SignedEntry>`).
/// Order of checks: the record's own rules (an issue's fields; a certificate's form and quorum,
/// before any state is read), then the entry's position after the log's head (an entry beyond the
/// head waits for [`Missing::PriorEntry`]), then the state rules: an issue's lot must be new and its
/// member a valid key (checked once per member: a member holding a lot passed it); a spend
/// must be at the member's next seq (later waits, earlier is [`RuleError::StaleSeq`]) and each lot must
/// exist (else it waits), be the member's, be unexpired at the order's time and hold enough points.
pub fn apply<V: LedgerView>(
    genesis: &Genesis,
    view: &V,
    entry: &Verified<SignedEntry>,
) -> Result<Changes, ApplyError<V::Error>> {
    let e = &entry.entry;
    let checked = match &e.record {
        Record::Issue(issue) => {
            let lot = issue.id();
            if issue.points == 0 {
                return Err(RuleError::ZeroIssue { lot }.into());
            }
            if issue.expires_at <= issue.time {
                let (expires_at, time) = (issue.expires_at, issue.time);
                return Err(RuleError::IssueExpired {
                    lot,
                    expires_at,
                    time,
                }
                .into());
            }
            Static::Issue(issue, lot)
        }
        Record::Redeem(cert) => {
            // The certificate's signatures were verified with the entry's (`Verified<SignedEntry>`).
            check_cert_form(genesis, cert).map_err(RuleError::from)?;
            Static::Redeem(cert)
        }
        Record::EpochClose(close) => Static::Close(close.epoch),
    };

    let head = view.log_head(&e.partner).map_err(ApplyError::Store)?;
    if e.seq > head.size {
        let (partner, next_seq, seq) = (e.partner, head.size, e.seq);
        return Err(ApplyError::Waiting(Missing::PriorEntry {
            partner,
            next_seq,
            seq,
        }));
    }
    check_position(&head, e)?;
    let mut changes = Changes {
        partner: e.partner,
        seq: e.seq,
        entry_id: entry.id(),
        head: head.advance(e)?,
        lots: Vec::new(),
        members: Vec::new(),
        close: None,
    };

    match checked {
        Static::Issue(issue, id) => {
            if view.lot(&id).map_err(ApplyError::Store)?.is_some() {
                return Err(RuleError::DuplicateLot { lot: id }.into());
            }
            // A member with a lot passed this check with its first one; turning the key into a
            // curve point again for every issue was a tenth of an audit's time.
            let known = view.has_lots(&issue.member).map_err(ApplyError::Store)?;
            if !known && !issue.member.0.is_valid() {
                return Err(RuleError::BadMemberKey {
                    lot: id,
                    member: issue.member,
                }
                .into());
            }
            changes.lots.push(Lot {
                id,
                issuer: issue.issuer,
                member: issue.member,
                points: issue.points,
                remaining: issue.points,
                expires_at: issue.expires_at,
                issued_epoch: e.epoch,
                spends: Vec::new(),
            });
        }
        Static::Redeem(cert) => spend(view, cert, e.epoch, e.partner, &mut changes)?,
        Static::Close(epoch) => {
            let (size, root) = (changes.head.size, changes.head.root());
            changes.close = Some(LogClose { epoch, size, root });
        }
    }
    Ok(changes)
}

/// The state rules and writes of a certified spend.
fn spend<V: LedgerView>(
    view: &V,
    cert: &RedeemCert,
    epoch: Epoch,
    redeemer: PartnerId,
    changes: &mut Changes,
) -> Result<(), ApplyError<V::Error>> {
    let order = &cert.order.order;
    let member = order.member;
    let mut state = view.member(&member).map_err(ApplyError::Store)?;
    let (order_seq, next_seq) = (order.member_seq, state.next_seq);
    if order_seq > next_seq {
        return Err(ApplyError::Waiting(Missing::PriorSpend {
            member,
            order_seq,
            next_seq,
        }));
    }
    if order_seq < next_seq {
        return Err(RuleError::StaleSeq {
            member,
            order_seq,
            next_seq,
        }
        .into());
    }
    for LotSpend { lot: id, points } in &order.lots {
        let mut lot = match view.lot(id).map_err(ApplyError::Store)? {
            Some(lot) => lot,
            None => return Err(ApplyError::Waiting(Missing::Lot(*id))),
        };
        if lot.member != member {
            return Err(RuleError::LotOfAnotherMember {
                lot: *id,
                owner: lot.member,
                member,
            }
            .into());
        }
        if !lot.is_live_at(order.time) {
            let (expires_at, order_time) = (lot.expires_at, order.time);
            return Err(RuleError::LotExpired {
                lot: *id,
                expires_at,
                order_time,
            }
            .into());
        }
        let (remaining, wanted) = (lot.remaining, *points);
        lot.remaining = remaining.checked_sub(wanted).ok_or(RuleError::Overspend {
            lot: *id,
            remaining,
            wanted,
        })?;
        lot.spends.push(Spend {
            epoch,
            redeemer,
            points: wanted,
        });
        changes.lots.push(lot);
    }
    state.next_seq = next_seq
        .checked_add(1)
        .ok_or(Overflow { what: "member seq" })
        .map_err(RuleError::from)?;
    changes.members.push((member, state));
    Ok(())
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

/// Why [`select_lots`] cannot pay an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Nothing to pay.
    #[error("cannot redeem zero points")]
    ZeroPoints,
    /// Not enough live points.
    #[error("{wanted} points requested but only {available} are available")]
    Insufficient {
        /// Points asked for.
        wanted: Points,
        /// Points live at the order's time.
        available: Points,
    },
    /// Paying would take more lots than an order may name.
    #[error("paying {wanted} points needs more than {max} lots")]
    TooManyLots {
        /// Points asked for.
        wanted: Points,
        /// [`MAX_LOTS_PER_ORDER`].
        max: usize,
    },
}

/// What lot selection needs to know of a lot: a wallet may only have a node's summary of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotCandidate {
    /// The lot id.
    pub id: Hash,
    /// Points left.
    pub remaining: Points,
    /// Spendable only by orders timed strictly before this.
    pub expires_at: Timestamp,
}

/// The wallet's choice of lots for an order of `points` at `time`: live lots with points left,
/// soonest-expiring first (ties by lot id, so the choice is deterministic).
pub fn select_lots(
    lots: &[Lot],
    points: Points,
    time: Timestamp,
) -> Result<Vec<LotSpend>, SelectError> {
    let candidates: Vec<LotCandidate> = lots
        .iter()
        .map(|l| LotCandidate {
            id: l.id,
            remaining: l.remaining,
            expires_at: l.expires_at,
        })
        .collect();
    select_candidates(&candidates, points, time)
}

/// [`select_lots`] over lot summaries. A lot listed twice is counted once.
pub fn select_candidates(
    lots: &[LotCandidate],
    points: Points,
    time: Timestamp,
) -> Result<Vec<LotSpend>, SelectError> {
    if points == 0 {
        return Err(SelectError::ZeroPoints);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut live: Vec<&LotCandidate> = lots
        .iter()
        .filter(|l| l.expires_at > time && l.remaining > 0)
        .filter(|l| seen.insert(l.id))
        .collect();
    live.sort_by_key(|l| (l.expires_at, l.id));
    let mut out = Vec::new();
    let mut left = points;
    for lot in &live {
        if left == 0 {
            break;
        }
        if out.len() >= MAX_LOTS_PER_ORDER {
            return Err(SelectError::TooManyLots {
                wanted: points,
                max: MAX_LOTS_PER_ORDER,
            });
        }
        let take = left.min(lot.remaining);
        out.push(LotSpend {
            lot: lot.id,
            points: take,
        });
        left = left.saturating_sub(take);
    }
    if left > 0 {
        let available = live
            .iter()
            .fold(0u64, |acc, l| acc.saturating_add(l.remaining));
        return Err(SelectError::Insufficient {
            wanted: points,
            available,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::crypto::{Keypair, PublicKey};

    fn spent(epoch: Epoch, points: Points) -> Spend {
        Spend {
            epoch,
            redeemer: PartnerId(PublicKey([2; 32])),
            points,
        }
    }

    fn lot(id: u8, points: Points, remaining: Points, expires_at: Timestamp) -> Lot {
        Lot {
            id: Hash([id; 32]),
            issuer: PartnerId(PublicKey([1; 32])),
            member: MemberId(Keypair::generate().public()),
            points,
            remaining,
            expires_at,
            issued_epoch: 0,
            spends: vec![spent(2, points - remaining)],
        }
    }

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

    #[test]
    fn selection_expiring_first() {
        let lots = [
            lot(1, 10, 4, 100),
            lot(2, 5, 5, 50),
            lot(3, 7, 7, 200),
            lot(4, 9, 9, 10),
        ];
        let s = select_lots(&lots, 8, 20).unwrap();
        assert_eq!(
            s,
            vec![
                LotSpend {
                    lot: Hash([2; 32]),
                    points: 5
                },
                LotSpend {
                    lot: Hash([1; 32]),
                    points: 3
                }
            ]
        );
        assert_eq!(
            select_lots(&lots, 17, 20),
            Err(SelectError::Insufficient {
                wanted: 17,
                available: 16
            })
        );
        assert_eq!(select_lots(&lots, 0, 20), Err(SelectError::ZeroPoints));
    }
}
