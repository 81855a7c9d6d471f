//! The structural rules of a redeem order, whatever the ledger state: what every voter and every
//! replica checks before looking at any lot ([`check_order`]).

use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::record::{PartnerId, Points, RedeemOrder};
use crate::refusal::RefusalCode;
use std::collections::BTreeSet;

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
    pub fn code(&self) -> RefusalCode {
        match self {
            OrderError::ZeroPoints => RefusalCode::ZeroPoints,
            OrderError::NoLots => RefusalCode::NoLots,
            OrderError::TooManyLots { .. } => RefusalCode::TooManyLots,
            OrderError::ZeroLotPoints { .. } => RefusalCode::ZeroLotPoints,
            OrderError::DuplicateLot { .. } => RefusalCode::DuplicateLot,
            OrderError::LotsOverflow => RefusalCode::LotsOverflow,
            OrderError::SumMismatch { .. } => RefusalCode::SumMismatch,
            OrderError::RedeemerNotPartner { .. } => RefusalCode::RedeemerNotPartner,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::test_util::{test_genesis, test_order};

    #[test]
    fn order_structure() {
        let (g, keys) = test_genesis(1);
        let m = Keypair::generate();
        let p = g.partners[0].id;
        let a = Hash([1; 32]);
        let order = |p, lots| test_order(p, &m, lots, 10);
        assert_eq!(check_order(&g, &order(p, vec![(a, 3)]).order), Ok(()));
        let mut o = order(p, vec![(a, 3)]).order;
        o.points = 4;
        assert_eq!(
            check_order(&g, &o),
            Err(OrderError::SumMismatch { points: 4, sum: 3 })
        );
        let o = order(p, vec![(a, 3), (a, 1)]).order;
        assert_eq!(
            check_order(&g, &o),
            Err(OrderError::DuplicateLot { lot: a })
        );
        let mut o = order(p, vec![(a, u64::MAX), (Hash([2; 32]), 1)]).order;
        o.points = 1;
        assert_eq!(check_order(&g, &o), Err(OrderError::LotsOverflow));
        let lots = (0..=MAX_LOTS_PER_ORDER)
            .map(|i| (Hash::tagged(b"l", &i.to_le_bytes()), 1))
            .collect();
        let o = order(p, lots).order;
        assert!(matches!(
            check_order(&g, &o),
            Err(OrderError::TooManyLots { .. })
        ));
        let o = order(PartnerId(keys[0].public()), vec![]).order;
        assert_eq!(check_order(&g, &o), Err(OrderError::ZeroPoints));
        let o = order(PartnerId(m.public()), vec![(a, 1)]).order;
        assert!(matches!(
            check_order(&g, &o),
            Err(OrderError::RedeemerNotPartner { .. })
        ));
    }
}
