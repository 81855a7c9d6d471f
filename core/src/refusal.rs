//! The stable codes of a partner's refusal to vote ([`RefusalCode`]): they cross the wire, label
//! metrics and name API errors, and they say whether a refusal is final or only "not yet".

use serde::{Deserialize, Serialize};

/// Why a partner refused to vote, as a code that crosses the wire inside a refusal
/// (`coalition_core::wire::Refusal`). Versioned by position like every wire enum: add codes at the
/// end only. Shown as snake_case (`"future_seq"`) in the API, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// [`crate::order::OrderError::ZeroPoints`].
    ZeroPoints,
    /// [`crate::order::OrderError::NoLots`].
    NoLots,
    /// [`crate::order::OrderError::TooManyLots`].
    TooManyLots,
    /// [`crate::order::OrderError::ZeroLotPoints`].
    ZeroLotPoints,
    /// [`crate::order::OrderError::DuplicateLot`].
    DuplicateLot,
    /// [`crate::order::OrderError::LotsOverflow`].
    LotsOverflow,
    /// [`crate::order::OrderError::SumMismatch`].
    SumMismatch,
    /// [`crate::order::OrderError::RedeemerNotPartner`].
    RedeemerNotPartner,
    /// [`crate::vote::VoteRefusal::BadMemberSignature`].
    BadMemberSignature,
    /// [`crate::vote::VoteRefusal::Conflict`].
    Conflict,
    /// [`crate::vote::VoteRefusal::ClockSkew`].
    ClockSkew,
    /// [`crate::vote::VoteRefusal::StaleSeq`].
    StaleSeq,
    /// [`crate::vote::VoteRefusal::FutureSeq`].
    FutureSeq,
    /// [`crate::vote::VoteRefusal::UnknownLot`].
    UnknownLot,
    /// [`crate::vote::VoteRefusal::LotOfAnotherMember`].
    LotOfAnotherMember,
    /// [`crate::vote::VoteRefusal::LotExpired`].
    LotExpired,
    /// [`crate::vote::VoteRefusal::InsufficientRemaining`].
    InsufficientRemaining,
    /// The vote was asked for by a partner other than the order's redeemer, who alone collects its
    /// votes.
    NotRedeemer,
    /// [`crate::vote::VoteRefusal::OrderTooLate`]: no certificate for the order can apply any more.
    OrderTooLate,
}

impl RefusalCode {
    /// Every code, in wire order.
    pub const ALL: [RefusalCode; 19] = [
        RefusalCode::ZeroPoints,
        RefusalCode::NoLots,
        RefusalCode::TooManyLots,
        RefusalCode::ZeroLotPoints,
        RefusalCode::DuplicateLot,
        RefusalCode::LotsOverflow,
        RefusalCode::SumMismatch,
        RefusalCode::RedeemerNotPartner,
        RefusalCode::BadMemberSignature,
        RefusalCode::Conflict,
        RefusalCode::ClockSkew,
        RefusalCode::StaleSeq,
        RefusalCode::FutureSeq,
        RefusalCode::UnknownLot,
        RefusalCode::LotOfAnotherMember,
        RefusalCode::LotExpired,
        RefusalCode::InsufficientRemaining,
        RefusalCode::NotRedeemer,
        RefusalCode::OrderTooLate,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::ZeroPoints => "zero_points",
            RefusalCode::NoLots => "no_lots",
            RefusalCode::TooManyLots => "too_many_lots",
            RefusalCode::ZeroLotPoints => "zero_lot_points",
            RefusalCode::DuplicateLot => "duplicate_lot",
            RefusalCode::LotsOverflow => "lots_overflow",
            RefusalCode::SumMismatch => "sum_mismatch",
            RefusalCode::RedeemerNotPartner => "redeemer_not_partner",
            RefusalCode::BadMemberSignature => "bad_member_signature",
            RefusalCode::Conflict => "conflict",
            RefusalCode::ClockSkew => "clock_skew",
            RefusalCode::StaleSeq => "stale_seq",
            RefusalCode::FutureSeq => "future_seq",
            RefusalCode::UnknownLot => "unknown_lot",
            RefusalCode::LotOfAnotherMember => "lot_of_another_member",
            RefusalCode::LotExpired => "lot_expired",
            RefusalCode::InsufficientRemaining => "insufficient_remaining",
            RefusalCode::NotRedeemer => "not_redeemer",
            RefusalCode::OrderTooLate => "order_too_late",
        }
    }

    /// Whether the refusal means "not yet" rather than "no": the voter lacks an earlier spend of the
    /// member or the issue behind a lot, which replication will bring. A redeemer asks again until
    /// its deadline; every other refusal is final for this order.
    pub fn is_transient(self) -> bool {
        matches!(self, RefusalCode::FutureSeq | RefusalCode::UnknownLot)
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_match_their_serde_names() {
        let mut names: Vec<&str> = RefusalCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RefusalCode::ALL.len());
        for code in RefusalCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let transient: Vec<RefusalCode> = RefusalCode::ALL
            .into_iter()
            .filter(|c| c.is_transient())
            .collect();
        assert_eq!(transient, [RefusalCode::FutureSeq, RefusalCode::UnknownLot]);
    }
}
