//! Quorum certificates for spends (DESIGN.md §4): the structural rules of a redeem order, the check
//! of a [`RedeemCert`], the redeemer's [`CertBuilder`] that collects votes into a canonical
//! certificate, and the vote rule every partner applies before it signs a vote ([`check_vote`]).
//!
//! A member could sign two orders with the same `member_seq` at two shops at once. Each honest partner
//! votes for at most one order per `(member, member_seq)`, and a certificate needs
//! [`Genesis::quorum`] votes, so two certificates for one `(member, seq)` would need more than `f`
//! partners to lie. That is what lets the ledger apply a certificate without any global ordering.

// Orders, votes and certificates come from other processes: no arithmetic that can overflow, no
// indexing that can panic, no unwrap.
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use crate::crypto::{Signature, SignatureError, SignedMessage};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::ledger::LedgerView;
use crate::record::{
    vote_message, MemberId, PartnerId, Points, RedeemCert, RedeemOrder, SignedOrder, Timestamp,
    Vote, VoteSig,
};
use crate::verified::Verified;
use std::collections::{BTreeMap, BTreeSet};

/// Most lots one order may spend. Bounds the work of checking a certificate and the size of an entry.
pub const MAX_LOTS_PER_ORDER: usize = 256;

/// Why an order is malformed, whatever the ledger state: the checks every voter and every replica
/// run before looking at any lot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order spends no points.
    #[error("order spends zero points")]
    ZeroPoints,
    /// The order names no lots.
    #[error("order names no lots")]
    NoLots,
    /// More lots than [`MAX_LOTS_PER_ORDER`].
    #[error("order names {count} lots, more than the limit of {max}")]
    TooManyLots {
        /// Lots in the order.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A lot is spent for zero points.
    #[error("order spends zero points from lot {lot}")]
    ZeroLotPoints {
        /// The lot.
        lot: Hash,
    },
    /// A lot appears twice in the order.
    #[error("order names lot {lot} twice")]
    DuplicateLot {
        /// The lot.
        lot: Hash,
    },
    /// The lots' points overflow a u64.
    #[error("the points of the order's lots overflow")]
    LotsOverflow,
    /// `points` differs from the sum over the lots.
    #[error("order is for {points} points but its lots add up to {sum}")]
    SumMismatch {
        /// The order's `points`.
        points: Points,
        /// The sum over its lots.
        sum: Points,
    },
    /// The redeemer is not a genesis partner.
    #[error("redeemer {redeemer} is not a partner")]
    RedeemerNotPartner {
        /// The named redeemer.
        redeemer: PartnerId,
    },
}

impl OrderError {
    /// A stable snake_case name of the rule broken, for metrics labels and API error codes.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::ZeroPoints => "zero_points",
            OrderError::NoLots => "no_lots",
            OrderError::TooManyLots { .. } => "too_many_lots",
            OrderError::ZeroLotPoints { .. } => "zero_lot_points",
            OrderError::DuplicateLot { .. } => "duplicate_lot",
            OrderError::LotsOverflow => "lots_overflow",
            OrderError::SumMismatch { .. } => "sum_mismatch",
            OrderError::RedeemerNotPartner { .. } => "redeemer_not_partner",
        }
    }
}

/// Checks an order's structure: non-zero, 1..=[`MAX_LOTS_PER_ORDER`] distinct lots of at least one
/// point each, adding up (without overflow) to `points`, and a redeemer that is a partner.
pub fn check_order(genesis: &Genesis, order: &RedeemOrder) -> Result<(), OrderError> {
    if order.points == 0 {
        return Err(OrderError::ZeroPoints);
    }
    if order.lots.is_empty() {
        return Err(OrderError::NoLots);
    }
    if order.lots.len() > MAX_LOTS_PER_ORDER {
        return Err(OrderError::TooManyLots {
            count: order.lots.len(),
            max: MAX_LOTS_PER_ORDER,
        });
    }
    let mut seen = BTreeSet::new();
    let mut sum: Points = 0;
    for spend in &order.lots {
        if spend.points == 0 {
            return Err(OrderError::ZeroLotPoints { lot: spend.lot });
        }
        if !seen.insert(spend.lot) {
            return Err(OrderError::DuplicateLot { lot: spend.lot });
        }
        sum = sum
            .checked_add(spend.points)
            .ok_or(OrderError::LotsOverflow)?;
    }
    if sum != order.points {
        return Err(OrderError::SumMismatch {
            points: order.points,
            sum,
        });
    }
    if !genesis.is_partner(&order.redeemer) {
        return Err(OrderError::RedeemerNotPartner {
            redeemer: order.redeemer,
        });
    }
    Ok(())
}

/// Why a certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The order inside is malformed.
    #[error("malformed order: {0}")]
    Order(#[from] OrderError),
    /// The member's signature over the order does not verify.
    #[error("member {member}'s signature on the order does not verify: {source}")]
    MemberSignature {
        /// The order's member.
        member: MemberId,
        /// Why.
        source: SignatureError,
    },
    /// Fewer distinct partner votes than the quorum.
    #[error("certificate has {got} votes, the quorum is {needed}")]
    TooFewVotes {
        /// Votes present.
        got: usize,
        /// The genesis quorum.
        needed: usize,
    },
    /// A vote from a key that is not a genesis partner.
    #[error("vote from {voter}, which is not a partner")]
    VoterNotPartner {
        /// The voter.
        voter: PartnerId,
    },
    /// Two votes from the same partner.
    #[error("two votes from partner {voter}")]
    DuplicateVote {
        /// The voter.
        voter: PartnerId,
    },
    /// Votes not sorted strictly by partner id (the canonical form).
    #[error("votes are not sorted by partner id at position {index}")]
    VotesUnsorted {
        /// Position of the first vote out of order.
        index: usize,
    },
    /// A vote's signature does not verify.
    #[error("vote by {voter} does not verify: {source}")]
    BadVote {
        /// The voter.
        voter: PartnerId,
        /// Why.
        source: SignatureError,
    },
}

/// Checks a certificate against the genesis: a well-formed order, the member's signature, and at least
/// [`Genesis::quorum`] votes from distinct genesis partners, sorted strictly by partner id, each signed
/// over [`vote_message`] of the order id. Cheap checks run before any signature is verified.
///
/// This says nothing about the ledger state (lot balances, the member's sequence number): that is
/// [`crate::ledger::apply`]'s job. A certificate inside a log entry has its signatures checked with the
/// entry's ([`crate::log::SignatureChecked`], batched during catch-up) and its form by `apply`
/// ([`check_cert_form`]); this function does both, for a certificate on its own.
pub fn verify_cert(
    genesis: &Genesis,
    cert: &RedeemCert,
) -> Result<Verified<RedeemCert>, CertError> {
    check_cert_form(genesis, cert)?;
    verify_cert_signatures(cert)?;
    Ok(Verified::new_unchecked(cert.clone()))
}

/// The checks on a certificate that need no signature: a well-formed order, at least
/// [`Genesis::quorum`] votes from distinct genesis partners, sorted strictly by partner id.
pub fn check_cert_form(genesis: &Genesis, cert: &RedeemCert) -> Result<(), CertError> {
    check_order(genesis, &cert.order.order)?;
    let mut previous: Option<&PartnerId> = None;
    for (index, vote) in cert.votes.iter().enumerate() {
        if !genesis.is_partner(&vote.partner) {
            return Err(CertError::VoterNotPartner {
                voter: vote.partner,
            });
        }
        if let Some(prev) = previous {
            if *prev == vote.partner {
                return Err(CertError::DuplicateVote {
                    voter: vote.partner,
                });
            }
            if *prev > vote.partner {
                return Err(CertError::VotesUnsorted { index });
            }
        }
        previous = Some(&vote.partner);
    }
    if cert.votes.len() < genesis.quorum() {
        return Err(CertError::TooFewVotes {
            got: cert.votes.len(),
            needed: genesis.quorum(),
        });
    }
    Ok(())
}

/// Who made one of a certificate's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSigner {
    /// The member, over the order.
    Member(MemberId),
    /// A partner, over its vote.
    Voter(PartnerId),
}

impl CertSigner {
    /// The error for this signature failing.
    pub fn error(self, source: SignatureError) -> CertError {
        match self {
            CertSigner::Member(member) => CertError::MemberSignature { member, source },
            CertSigner::Voter(voter) => CertError::BadVote { voter, source },
        }
    }
}

/// Every signature in a certificate, with its signer: the member's over the order id, then each
/// vote's over [`vote_message`] of it. For batch verification.
pub fn cert_signatures(cert: &RedeemCert) -> Vec<(CertSigner, SignedMessage)> {
    let order = &cert.order.order;
    let order_id = order.id();
    let mut out = Vec::with_capacity(cert.votes.len().saturating_add(1));
    out.push((
        CertSigner::Member(order.member),
        SignedMessage {
            key: order.member.0,
            message: order_id,
            signature: cert.order.signature,
        },
    ));
    let message = vote_message(&order_id);
    for vote in &cert.votes {
        out.push((
            CertSigner::Voter(vote.partner),
            SignedMessage {
                key: vote.partner.0,
                message,
                signature: vote.signature,
            },
        ));
    }
    out
}

/// Verifies every signature of a certificate one by one with `verify_strict`: the member's first.
pub fn verify_cert_signatures(cert: &RedeemCert) -> Result<(), CertError> {
    for (signer, m) in cert_signatures(cert) {
        crate::crypto::verify(&m.key, &m.message, &m.signature).map_err(|e| signer.error(e))?;
    }
    Ok(())
}

/// Why the [`CertBuilder`] did not take a vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddVoteError {
    /// The vote is for a different order.
    #[error("vote by {voter} is for order {found}, not {expected}")]
    WrongOrder {
        /// The voter.
        voter: PartnerId,
        /// The order being certified.
        expected: Hash,
        /// The order the vote names.
        found: Hash,
    },
    /// The voter is not a genesis partner.
    #[error("vote from {voter}, which is not a partner")]
    NotAPartner {
        /// The voter.
        voter: PartnerId,
    },
    /// The vote's signature does not verify.
    #[error("vote by {voter} does not verify: {source}")]
    BadSignature {
        /// The voter.
        voter: PartnerId,
        /// Why.
        source: SignatureError,
    },
}

/// What [`CertBuilder::add`] did with a valid vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new partner's vote was added.
    Added,
    /// This partner had already voted; the first vote is kept.
    Duplicate,
}

/// Collects votes for one order on the redeemer's side and makes the canonical certificate.
///
/// Every vote is verified as it is added, so a peer's bad vote is named at once and never makes the
/// redeemer append a certificate that other nodes would reject.
#[derive(Debug, Clone)]
pub struct CertBuilder<'g> {
    genesis: &'g Genesis,
    order: SignedOrder,
    order_id: Hash,
    votes: BTreeMap<PartnerId, Signature>,
}

impl<'g> CertBuilder<'g> {
    /// Starts collecting votes for `order`, which must be well formed and carry a valid member
    /// signature (the same checks [`verify_cert`] runs on the order).
    pub fn new(genesis: &'g Genesis, order: SignedOrder) -> Result<CertBuilder<'g>, CertError> {
        check_order(genesis, &order.order)?;
        order
            .verify_signature()
            .map_err(|source| CertError::MemberSignature {
                member: order.order.member,
                source,
            })?;
        let order_id = order.order.id();
        Ok(CertBuilder {
            genesis,
            order,
            order_id,
            votes: BTreeMap::new(),
        })
    }

    /// The id of the order being certified.
    pub fn order_id(&self) -> Hash {
        self.order_id
    }

    /// The order being certified.
    pub fn order(&self) -> &SignedOrder {
        &self.order
    }

    /// The coalition the certificate is for.
    pub fn genesis(&self) -> &'g Genesis {
        self.genesis
    }

    /// Adds a vote after checking it is for this order, from a partner, and correctly signed. A
    /// second vote from the same partner is ignored.
    pub fn add(&mut self, vote: &Vote) -> Result<AddOutcome, AddVoteError> {
        if vote.order_id != self.order_id {
            return Err(AddVoteError::WrongOrder {
                voter: vote.partner,
                expected: self.order_id,
                found: vote.order_id,
            });
        }
        if !self.genesis.is_partner(&vote.partner) {
            return Err(AddVoteError::NotAPartner {
                voter: vote.partner,
            });
        }
        if self.votes.contains_key(&vote.partner) {
            return Ok(AddOutcome::Duplicate);
        }
        vote.verify_signature()
            .map_err(|source| AddVoteError::BadSignature {
                voter: vote.partner,
                source,
            })?;
        self.votes.insert(vote.partner, vote.signature);
        Ok(AddOutcome::Added)
    }

    /// Distinct valid votes so far.
    pub fn count(&self) -> usize {
        self.votes.len()
    }

    /// Whether enough votes are in to [`finish`](Self::finish).
    pub fn has_quorum(&self) -> bool {
        self.votes.len() >= self.genesis.quorum()
    }

    /// The certificate with every vote collected, sorted by partner id; [`CertError::TooFewVotes`]
    /// before the quorum is reached.
    pub fn finish(self) -> Result<Verified<RedeemCert>, CertError> {
        if !self.has_quorum() {
            return Err(CertError::TooFewVotes {
                got: self.votes.len(),
                needed: self.genesis.quorum(),
            });
        }
        let votes = self
            .votes
            .into_iter()
            .map(|(partner, signature)| VoteSig { partner, signature })
            .collect();
        // Every part was verified on the way in; the map keeps the votes sorted and distinct.
        Ok(Verified::new_unchecked(RedeemCert {
            order: self.order,
            votes,
        }))
    }
}

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
    /// A stable snake_case name of the refusal, for Prometheus labels and API error codes.
    pub fn code(&self) -> &'static str {
        match self {
            VoteRefusal::Malformed(e) => e.code(),
            VoteRefusal::BadMemberSignature { .. } => "bad_member_signature",
            VoteRefusal::Conflict { .. } => "conflict",
            VoteRefusal::ClockSkew { .. } => "clock_skew",
            VoteRefusal::StaleSeq { .. } => "stale_seq",
            VoteRefusal::FutureSeq { .. } => "future_seq",
            VoteRefusal::UnknownLot { .. } => "unknown_lot",
            VoteRefusal::LotOfAnotherMember { .. } => "lot_of_another_member",
            VoteRefusal::LotExpired { .. } => "lot_expired",
            VoteRefusal::InsufficientRemaining { .. } => "insufficient_remaining",
        }
    }

    /// A sentence for people (POS screens, logs).
    pub fn message(&self) -> String {
        self.to_string()
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
/// `prior_vote` is the order id this partner already voted for at the order's
/// `(member, member_seq)`, if any: the same id yields [`VoteDecision::Again`] without re-checking the
/// ledger (the answer to a repeated request must not change once the order is applied), a different
/// id yields [`VoteRefusal::Conflict`]. Otherwise the order must be well formed, signed by its member,
/// within the clock skew, at the member's next sequence number, and spend only existing lots of the
/// member that are unexpired at the order's time and hold enough points.
pub fn check_vote<V: LedgerView>(
    genesis: &Genesis,
    view: &V,
    order: &SignedOrder,
    now: Timestamp,
    prior_vote: Option<&Hash>,
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
    match prior_vote {
        Some(voted) if *voted == order_id => return Ok(VoteDecision::Again { order_id }),
        Some(voted) => {
            return Err(VoteRefusal::Conflict {
                member: o.member,
                seq: o.member_seq,
                voted: *voted,
                order: order_id,
            }
            .into())
        }
        None => {}
    }
    if o.time.abs_diff(now) > genesis.max_clock_skew_secs {
        return Err(VoteRefusal::ClockSkew {
            order_time: o.time,
            now,
            max_skew: genesis.max_clock_skew_secs,
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
    Ok(VoteDecision::New { order_id })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::genesis::{GenesisPartner, PointValue};
    use crate::record::LotSpend;

    fn setup(n: usize) -> (Genesis, Vec<Keypair>) {
        let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
        let genesis = Genesis {
            coalition: "t".into(),
            genesis_time: 0,
            epoch_secs: 60,
            partners: keys
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisPartner {
                    name: format!("p{i}"),
                    id: PartnerId(k.public()),
                    settlement_account: String::new(),
                })
                .collect(),
            fault_tolerance: None,
            point_value: PointValue {
                minor_units: 1,
                per_points: 1,
            },
            currency: "EUR".into(),
            fee_bps: 0,
            max_clock_skew_secs: 60,
        };
        (genesis, keys)
    }

    fn order(redeemer: PartnerId, member: &Keypair, lots: Vec<(Hash, Points)>) -> SignedOrder {
        RedeemOrder {
            member: MemberId(member.public()),
            member_seq: 0,
            redeemer,
            points: lots.iter().fold(0u64, |a, l| a.wrapping_add(l.1)),
            lots: lots
                .into_iter()
                .map(|(lot, points)| LotSpend { lot, points })
                .collect(),
            time: 10,
        }
        .sign(member)
    }

    #[test]
    fn order_structure() {
        let (g, keys) = setup(1);
        let m = Keypair::generate();
        let p = g.partners[0].id;
        let a = Hash([1; 32]);
        assert_eq!(check_order(&g, &order(p, &m, vec![(a, 3)]).order), Ok(()));
        let mut o = order(p, &m, vec![(a, 3)]).order;
        o.points = 4;
        assert_eq!(
            check_order(&g, &o),
            Err(OrderError::SumMismatch { points: 4, sum: 3 })
        );
        let o = order(p, &m, vec![(a, 3), (a, 1)]).order;
        assert_eq!(
            check_order(&g, &o),
            Err(OrderError::DuplicateLot { lot: a })
        );
        let mut o = order(p, &m, vec![(a, u64::MAX), (Hash([2; 32]), 1)]).order;
        o.points = 1;
        assert_eq!(check_order(&g, &o), Err(OrderError::LotsOverflow));
        let lots = (0..=MAX_LOTS_PER_ORDER)
            .map(|i| (Hash::tagged(b"l", &i.to_le_bytes()), 1))
            .collect();
        let o = order(p, &m, lots).order;
        assert!(matches!(
            check_order(&g, &o),
            Err(OrderError::TooManyLots { .. })
        ));
        let o = order(PartnerId(keys[0].public()), &m, vec![]).order;
        assert_eq!(check_order(&g, &o), Err(OrderError::ZeroPoints));
        let o = order(PartnerId(m.public()), &m, vec![(a, 1)]).order;
        assert!(matches!(
            check_order(&g, &o),
            Err(OrderError::RedeemerNotPartner { .. })
        ));
    }

    #[test]
    fn builder_makes_a_canonical_cert() {
        let (g, keys) = setup(4);
        let m = Keypair::generate();
        let so = order(g.partners[0].id, &m, vec![(Hash([1; 32]), 5)]);
        let mut b = CertBuilder::new(&g, so.clone()).unwrap();
        let id = b.order_id();
        // Added in reverse key order; the certificate comes out sorted.
        let mut sorted: Vec<&Keypair> = keys.iter().collect();
        sorted.sort_by_key(|k| k.public());
        assert_eq!(b.add(&Vote::sign(id, sorted[3])), Ok(AddOutcome::Added));
        assert_eq!(b.add(&Vote::sign(id, sorted[3])), Ok(AddOutcome::Duplicate));
        assert!(matches!(
            b.add(&Vote::sign(Hash([9; 32]), sorted[2])),
            Err(AddVoteError::WrongOrder { .. })
        ));
        assert!(matches!(
            b.add(&Vote::sign(id, &m)),
            Err(AddVoteError::NotAPartner { .. })
        ));
        let mut forged = Vote::sign(id, sorted[1]);
        forged.signature.0[0] ^= 1;
        assert!(matches!(
            b.add(&forged),
            Err(AddVoteError::BadSignature { .. })
        ));
        assert_eq!(b.add(&Vote::sign(id, sorted[1])), Ok(AddOutcome::Added));
        assert!(!b.has_quorum());
        assert!(matches!(
            b.clone().finish(),
            Err(CertError::TooFewVotes { got: 2, needed: 3 })
        ));
        assert_eq!(b.add(&Vote::sign(id, sorted[0])), Ok(AddOutcome::Added));
        let cert = b.finish().unwrap().into_inner();
        assert_eq!(cert.order, so);
        assert!(verify_cert(&g, &cert).is_ok());
        let mut swapped = cert;
        swapped.votes.swap(0, 1);
        assert_eq!(
            verify_cert(&g, &swapped),
            Err(CertError::VotesUnsorted { index: 1 })
        );
    }
}
