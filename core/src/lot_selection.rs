//! The wallet's choice of lots for an order: live lots with points left, soonest-expiring first
//! ([`select_lots`]). Not a ledger rule (any choice the member signs is valid); the one choice every
//! wallet makes, so that a member's points expire as little as possible.

use crate::hash::Hash;
use crate::order::MAX_LOTS_PER_ORDER;
use crate::record::{LotSpend, Points, Timestamp};
use crate::state::Lot;

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
mod tests {
    use super::*;
    use crate::test_util::test_lot as lot;

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
