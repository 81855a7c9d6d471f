//! The vote rule (DESIGN.md §4): what a partner checks before it signs a vote for a member's order
//! ([`check_vote`]), and the stable codes of its refusals ([`RefusalCode`]), which cross the wire.

use crate::cert_window;
use crate::crypto::SignatureError;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::order::{check_order, OrderError};
use crate::record::{Epoch, MemberId, Points, SignedOrder, Timestamp};
use crate::refusal::RefusalCode;
use crate::state::LedgerView;

/// What a partner should answer to a vote request that passes the vote rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteDecision {
    /// A first vote for this `(member, member_seq)`: store it durably (synced), then sign and answer.
    New {
        /// The order to vote for.
        order_id: Hash,
    },
    /// This partner already voted for this very order: answer the same vote again.
    Again {
        /// The order voted for.
        order_id: Hash,
    },
    /// This partner voted for another order at this `(member, member_seq)` whose certificate can
    /// no longer apply ([`cert_window::released`]): replace that vote (check-and-set on
    /// `released`, synced), then sign and answer.
    Replace {
        /// The order to vote for.
        order_id: Hash,
        /// The order voted for before, released.
        released: Hash,
    },
}

/// The vote a partner already gave at an order's `(member, member_seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorVote {
    /// The order voted for.
    pub order_id: Hash,
    /// That order's time; `None` for a vote stored before order times were kept with votes, which
    /// is never released.
    pub order_time: Option<Timestamp>,
    /// Whether this partner holds a sealed checkpoint of the last epoch that could hold that
    /// order's certificate ([`cert_window::released`]).
    pub window_sealed: bool,
}

/// Why a partner refuses to vote for an order. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefusal {
    /// The order is malformed (its own code names the rule).
    #[error("malformed order: {0}")]
    Malformed(#[from] OrderError),
    /// The member's signature does not verify.
    #[error("member {member}'s signature on the order does not verify: {source}")]
    BadMemberSignature {
        /// The order's member.
        member: MemberId,
        /// Why.
        source: SignatureError,
    },
    /// This partner already voted for a different order at this `(member, member_seq)`.
    #[error(
        "already voted for order {voted} at member {member} seq {seq}; refusing order {order}"
    )]
    Conflict {
        /// The member.
        member: MemberId,
        /// The contested sequence number.
        seq: u64,
        /// The order already voted for.
        voted: Hash,
        /// The order refused.
        order: Hash,
    },
    /// The order's time is too far from this partner's clock.
    #[error("order time {order_time} is more than {max_skew}s from now ({now})")]
    ClockSkew {
        /// The order's time.
        order_time: Timestamp,
        /// This partner's clock.
        now: Timestamp,
        /// The genesis limit.
        max_skew: u64,
    },
    /// The order reuses a sequence number already spent.
    #[error("member {member} order seq {order_seq} is already spent (next is {next_seq})")]
    StaleSeq {
        /// The member.
        member: MemberId,
        /// The order's `member_seq`.
        order_seq: u64,
        /// The member's next sequence number here.
        next_seq: u64,
    },
    /// The order is ahead of the member's next sequence number: an earlier spend is not here yet.
    #[error("member {member} order seq {order_seq} is ahead of the next seq {next_seq}")]
    FutureSeq {
        /// The member.
        member: MemberId,
        /// The order's `member_seq`.
        order_seq: u64,
        /// The member's next sequence number here.
        next_seq: u64,
    },
    /// A lot is unknown here.
    #[error("lot {lot} is unknown")]
    UnknownLot {
        /// The lot.
        lot: Hash,
    },
    /// Every partner's log has closed the last epoch that could hold this order's certificate:
    /// it would never apply, so a vote would only lock the member's sequence number.
    #[error(
        "order {order} is of epoch {order_epoch}, and every partner has closed epoch {last_epoch}: \
         no certificate for it can apply any more; sign a new order"
    )]
    OrderTooLate {
        /// The order.
        order: Hash,
        /// The epoch of its time.
        order_epoch: Epoch,
        /// The last epoch a certificate for it could be appended in.
        last_epoch: Epoch,
    },
    /// A lot belongs to another member.
    #[error("lot {lot} belongs to {owner}, not to {member}")]
    LotOfAnotherMember {
        /// The lot.
        lot: Hash,
        /// Its owner.
        owner: MemberId,
        /// The member spending.
        member: MemberId,
    },
    /// A lot is expired at the order's time.
    #[error("lot {lot} expired at {expires_at}, before the order time {order_time}")]
    LotExpired {
        /// The lot.
        lot: Hash,
        /// When it expires.
        expires_at: Timestamp,
        /// The order's time.
        order_time: Timestamp,
    },
    /// A lot has fewer points left than the order takes from it.
    #[error("lot {lot} has {remaining} points left, the order takes {wanted}")]
    InsufficientRemaining {
        /// The lot.
        lot: Hash,
        /// Points left in it.
        remaining: Points,
        /// Points the order takes.
        wanted: Points,
    },
}

impl VoteRefusal {
    /// The refusal's stable code: what crosses the wire, labels metrics and names API errors.
    pub fn code(&self) -> RefusalCode {
        match self {
            VoteRefusal::Malformed(e) => e.code(),
            VoteRefusal::BadMemberSignature { .. } => RefusalCode::BadMemberSignature,
            VoteRefusal::Conflict { .. } => RefusalCode::Conflict,
            VoteRefusal::ClockSkew { .. } => RefusalCode::ClockSkew,
            VoteRefusal::StaleSeq { .. } => RefusalCode::StaleSeq,
            VoteRefusal::FutureSeq { .. } => RefusalCode::FutureSeq,
            VoteRefusal::UnknownLot { .. } => RefusalCode::UnknownLot,
            VoteRefusal::LotOfAnotherMember { .. } => RefusalCode::LotOfAnotherMember,
            VoteRefusal::LotExpired { .. } => RefusalCode::LotExpired,
            VoteRefusal::InsufficientRemaining { .. } => RefusalCode::InsufficientRemaining,
            VoteRefusal::OrderTooLate { .. } => RefusalCode::OrderTooLate,
        }
    }
}

/// The vote rule could not be evaluated, or says no.
#[derive(Debug, thiserror::Error)]
pub enum VoteError<E: std::error::Error + 'static> {
    /// The order does not deserve a vote (the requester's problem).
    #[error(transparent)]
    Refused(#[from] VoteRefusal),
    /// Reading the ledger failed (our problem).
    #[error("ledger store failed: {0}")]
    Store(#[source] E),
}

/// The vote rule (DESIGN.md §4), evaluated against this partner's ledger `view` and clock `now`.
///
/// `prior` is the vote this partner already gave at the order's `(member, member_seq)`, if any: the
/// same order yields [`VoteDecision::Again`] without re-checking the ledger (the answer to a
/// repeated request must not change once the order is applied). Another order yields
/// [`VoteRefusal::Conflict`], unless that order's window is sealed here and this one is of a
/// later epoch ([`cert_window::released`]): then the rule goes on as for a first vote and ends in
/// [`VoteDecision::Replace`]. Otherwise the order must be well formed, signed by its member, within
/// the clock skew, still certifiable ([`VoteRefusal::OrderTooLate`]), at the member's next sequence
/// number, and spend only existing lots of the member that are unexpired at the order's time and
/// hold enough points.
pub fn check_vote<V: LedgerView>(
    genesis: &Genesis,
    view: &V,
    order: &SignedOrder,
    now: Timestamp,
    prior: Option<&PriorVote>,
) -> Result<VoteDecision, VoteError<V::Error>> {
    let o = &order.order;
    check_order(genesis, o).map_err(VoteRefusal::from)?;
    order
        .verify_signature()
        .map_err(|source| VoteRefusal::BadMemberSignature {
            member: o.member,
            source,
        })?;
    let order_id = o.id();
    let released = match prior {
        Some(p) if p.order_id == order_id => return Ok(VoteDecision::Again { order_id }),
        Some(p) => {
            let free = p
                .order_time
                .is_some_and(|t| cert_window::released(genesis, t, o.time, p.window_sealed));
            if !free {
                return Err(VoteRefusal::Conflict {
                    member: o.member,
                    seq: o.member_seq,
                    voted: p.order_id,
                    order: order_id,
                }
                .into());
            }
            Some(p.order_id)
        }
        None => None,
    };
    if o.time.abs_diff(now) > genesis.max_clock_skew_secs {
        return Err(VoteRefusal::ClockSkew {
            order_time: o.time,
            now,
            max_skew: genesis.max_clock_skew_secs,
        }
        .into());
    }
    if cert_window::window_closed(genesis, view, o.time).map_err(VoteError::Store)? {
        return Err(VoteRefusal::OrderTooLate {
            order: order_id,
            order_epoch: cert_window::order_epoch(genesis, o.time),
            last_epoch: cert_window::last_append_epoch(genesis, o.time),
        }
        .into());
    }
    let next_seq = view.member(&o.member).map_err(VoteError::Store)?.next_seq;
    if o.member_seq < next_seq {
        return Err(VoteRefusal::StaleSeq {
            member: o.member,
            order_seq: o.member_seq,
            next_seq,
        }
        .into());
    }
    if o.member_seq > next_seq {
        return Err(VoteRefusal::FutureSeq {
            member: o.member,
            order_seq: o.member_seq,
            next_seq,
        }
        .into());
    }
    for spend in &o.lots {
        let lot = view
            .lot(&spend.lot)
            .map_err(VoteError::Store)?
            .ok_or(VoteRefusal::UnknownLot { lot: spend.lot })?;
        if lot.member != o.member {
            return Err(VoteRefusal::LotOfAnotherMember {
                lot: spend.lot,
                owner: lot.member,
                member: o.member,
            }
            .into());
        }
        if lot.expires_at <= o.time {
            return Err(VoteRefusal::LotExpired {
                lot: spend.lot,
                expires_at: lot.expires_at,
                order_time: o.time,
            }
            .into());
        }
        if lot.remaining < spend.points {
            return Err(VoteRefusal::InsufficientRemaining {
                lot: spend.lot,
                remaining: lot.remaining,
                wanted: spend.points,
            }
            .into());
        }
    }
    Ok(match released {
        Some(released) => VoteDecision::Replace { order_id, released },
        None => VoteDecision::New { order_id },
    })
}
