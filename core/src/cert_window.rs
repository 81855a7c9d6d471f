//! How long an order can still be certified, and when a member's sequence number that no
//! certificate took is free again (docs/protocol.md, "Releasing a sequence number").
//!
//! A member's order lives in the epoch of its own time, [`order_epoch`]. Its certificate applies
//! only from a redeemer log still in that epoch or the next ([`appended_in_time`], a ledger rule).
//! Once every partner's log has closed that next epoch here ([`window_closed`]), no log can take
//! the certificate any more: the position of every later entry is in a later epoch, and what came
//! before each close is fixed by the close. A voter that sees this may then vote for a new order
//! at the same `(member, seq)`, provided the new order's epoch is later than the old one's
//! ([`released`]), so that within one epoch an honest voter still votes for one order only.

use crate::genesis::Genesis;
use crate::record::{Epoch, Timestamp};
use crate::state::LedgerView;

/// How many epochs after its order's epoch a certificate may still be appended in.
pub const CERT_GRACE_EPOCHS: Epoch = 1;

/// The epoch an order timed at `order_time` belongs to.
pub fn order_epoch(genesis: &Genesis, order_time: Timestamp) -> Epoch {
    genesis.epoch_at(order_time)
}

/// The last epoch of a redeemer's log that may hold the certificate of an order timed at
/// `order_time`.
pub fn last_append_epoch(genesis: &Genesis, order_time: Timestamp) -> Epoch {
    order_epoch(genesis, order_time).saturating_add(CERT_GRACE_EPOCHS)
}

/// Whether a certificate for an order timed at `order_time` may apply from an entry of
/// `entry_epoch` (the ledger rule `LateCertificate`).
pub fn appended_in_time(genesis: &Genesis, order_time: Timestamp, entry_epoch: Epoch) -> bool {
    entry_epoch <= last_append_epoch(genesis, order_time)
}

/// Whether every partner's log has closed, here, the last epoch that could hold a certificate for
/// an order timed at `order_time`: then none will ever apply. Stops at the first log still open,
/// so while the window is open this is one read.
pub fn window_closed<V: LedgerView>(
    genesis: &Genesis,
    view: &V,
    order_time: Timestamp,
) -> Result<bool, V::Error> {
    let last = last_append_epoch(genesis, order_time);
    for p in &genesis.partners {
        if view.log_close(&p.id, last)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a voter that voted for an order timed at `voted_time` may now vote for another order,
/// timed at `new_time`, at the same `(member, seq)`: the new order is of a later epoch, and no
/// certificate for the old one can apply any more.
pub fn released<V: LedgerView>(
    genesis: &Genesis,
    view: &V,
    voted_time: Timestamp,
    new_time: Timestamp,
) -> Result<bool, V::Error> {
    if order_epoch(genesis, new_time) <= order_epoch(genesis, voted_time) {
        return Ok(false);
    }
    window_closed(genesis, view, voted_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::test_genesis;

    #[test]
    fn a_certificate_may_land_in_its_orders_epoch_or_the_next() {
        let (g, _) = test_genesis(4);
        let t = g.genesis_time + 5 * g.epoch_secs + 1;
        assert_eq!(order_epoch(&g, t), 5);
        assert!(appended_in_time(&g, t, 0));
        assert!(appended_in_time(&g, t, 5));
        assert!(appended_in_time(&g, t, 6));
        assert!(!appended_in_time(&g, t, 7));
        assert_eq!(
            last_append_epoch(&g, u64::MAX),
            order_epoch(&g, u64::MAX) + 1
        );
    }
}
