//! Building redeem orders from what a node reports: lot selection over the balance's lots, and the
//! order token (hex of the signed order's canonical bytes) a member hands to a POS.

use crate::types::LotInfo;
use coalition_core::encoding::{self, DecodeError};
use coalition_core::lot_selection::{select_candidates, LotCandidate, SelectError};
use coalition_core::record::{LotSpend, Points, SignedOrder, Timestamp};

/// The lots that pay for `points` at `now` (expiring first), from a balance's lots; lots the node
/// marks expired are skipped.
pub fn select_lots(
    lots: &[LotInfo],
    points: Points,
    now: Timestamp,
) -> Result<Vec<LotSpend>, SelectError> {
    let candidates: Vec<LotCandidate> = lots
        .iter()
        .filter(|l| !l.expired)
        .map(|l| LotCandidate {
            id: l.lot,
            remaining: l.remaining,
            expires_at: l.expires_at,
        })
        .collect();
    select_candidates(&candidates, points, now)
}

/// The token of a signed order.
pub fn order_token(order: &SignedOrder) -> String {
    hex::encode(encoding::encode(order))
}

/// Why a token is not an order.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not hex.
    #[error("the order token is not hex: {0}")]
    Hex(#[from] hex::FromHexError),
    /// Not a canonical signed order.
    #[error("the order token is not a signed order: {0}")]
    Decode(#[from] DecodeError),
}

/// Parses an order token.
pub fn parse_order_token(token: &str) -> Result<SignedOrder, TokenError> {
    Ok(encoding::decode(&hex::decode(token.trim())?)?)
}
