//! How long an order can still be certified, and when a member's sequence number that no
//! certificate took is free again (docs/protocol.md, "Releasing a sequence number").
//!
//! A member's order lives in the epoch of its own time, [`order_epoch`]. Its certificate applies
//! only from a redeemer log no later than [`last_append_epoch`]: the epoch after the one its time
//! plus the allowed clock skew falls in ([`appended_in_time`], a ledger rule), so every order a
//! voter accepts has at least the rest of the current epoch and the whole next one. Once every
//! partner's log has closed that epoch here ([`window_closed`]), no log can take the certificate
//! any more, and a voter refuses to vote for the order. Once the epoch is also *sealed* here (a
//! quorum signed the checkpoint that fixes every log up to its close), a voter may vote for a new
//! order at the same `(member, seq)`, provided the new order's epoch is later than the old one's
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
/// `order_time`: the epoch after the one of `order_time + max_clock_skew_secs`, so that an order
/// timed up to the skew in the past still gets the current epoch and the next.
pub fn last_append_epoch(genesis: &Genesis, order_time: Timestamp) -> Epoch {
    genesis
        .epoch_at(order_time.saturating_add(genesis.max_clock_skew_secs))
        .saturating_add(CERT_GRACE_EPOCHS)
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
/// timed at `new_time`, at the same `(member, seq)`: the new order is of a later epoch, and
/// `window_sealed`, this voter holds a sealed checkpoint of `last_append_epoch(voted_time)`.
/// Sealed, not only closed here: a partner that forked its log could have shown the old order's
/// certificate to other nodes before its close; the history a quorum sealed is the one that
/// counts, and a quorum that sealed it cannot also have sealed the other version.
pub fn released(
    genesis: &Genesis,
    voted_time: Timestamp,
    new_time: Timestamp,
    window_sealed: bool,
) -> bool {
    window_sealed && order_epoch(genesis, new_time) > order_epoch(genesis, voted_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::test_genesis;

    #[test]
    fn a_certificate_may_land_until_the_epoch_after_its_order_and_the_skew() {
        let (g, _) = test_genesis(4);
        let t = g.genesis_time + 5 * g.epoch_secs + 1;
        assert_eq!(order_epoch(&g, t), 5);
        // An order timed up to the skew in the past still has the current epoch and the next.
        let last = g.epoch_at(t + g.max_clock_skew_secs) + 1;
        assert_eq!(last_append_epoch(&g, t), last);
        assert!(last >= 6);
        assert!(appended_in_time(&g, t, 0));
        assert!(appended_in_time(&g, t, last));
        assert!(!appended_in_time(&g, t, last + 1));
        assert_eq!(
            last_append_epoch(&g, u64::MAX),
            order_epoch(&g, u64::MAX) + 1
        );
        assert!(!released(&g, t, t + 10 * g.epoch_secs, false));
        assert!(released(&g, t, t + g.epoch_secs, true));
        assert!(!released(&g, t, t + 1, true));
    }
}
