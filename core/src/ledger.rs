//! The ledger rules (DESIGN.md §3): how each validated log entry changes the ledger state
//! ([`crate::state`]).
//!
//! [`apply`] is pure: it reads through a [`LedgerView`] and returns the [`Changes`] the store commits
//! atomically with the entry. It separates an entry that must wait for something not yet here
//! ([`ApplyError::Waiting`]) from one that breaks a rule ([`ApplyError::Invalid`]) and from a store
//! failure ([`ApplyError::Store`]).
//!
//! Arrival order does not matter: an issue creates a lot and commutes with everything; a spend applies
//! only at its member's next sequence number, after every lot it names exists, so the state each spend
//! sees is the same whatever order the logs arrive in. [`crate::replica::Ledger`] is the driver that
//! parks waiting entries and retries them.

use crate::cert::{check_cert_form, CertError};
use crate::cert_window;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::log::{check_position, EntryError, LogClose};
use crate::record::{
    Epoch, Issue, LotSpend, MemberId, PartnerId, Points, Record, RedeemCert, SignedEntry, Timestamp,
};
use crate::state::{Changes, LedgerView, Lot, Overflow, Spend};
use crate::verified::Verified;
use serde::{Deserialize, Serialize};

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
    /// A certificate appended after its window (docs/protocol.md, "Releasing a sequence number"):
    /// from a log past the epoch after its order's.
    #[error(
        "the certificate of order {order} (order epoch {order_epoch}) is appended in epoch \
         {entry_epoch}, later than epoch {last_epoch}"
    )]
    LateCertificate {
        /// The order.
        order: Hash,
        /// The epoch of the order's time.
        order_epoch: Epoch,
        /// The last epoch it could be appended in.
        last_epoch: Epoch,
        /// The epoch it was appended in.
        entry_epoch: Epoch,
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
/// Order of checks: the record's own rules (an issue's fields; a certificate's form and quorum, and
/// its entry's epoch at most one after the order's, before any state is read), then the entry's position after the log's head (an entry beyond the
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
            let order_time = cert.order.order.time;
            if !cert_window::appended_in_time(genesis, order_time, e.epoch) {
                return Err(RuleError::LateCertificate {
                    order: cert.order.order.id(),
                    order_epoch: cert_window::order_epoch(genesis, order_time),
                    last_epoch: cert_window::last_append_epoch(genesis, order_time),
                    entry_epoch: e.epoch,
                }
                .into());
            }
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
