//! Completing redemptions left in flight: after a restart, those that were collecting votes when
//! the node stopped; while running, those whose certificate was formed but could not be appended
//! yet (it waited on an earlier spend this node had not received). Partners give the same vote
//! again for the same order, so a retry forms the same certificate. An order a live request is
//! handling is left to it, and a request arriving during a retry is told to submit again.

use crate::ops::redeem::Redeemer;
use std::time::Duration;

/// How often in-flight redemptions that no request is working on are tried again.
pub const RETRY_INFLIGHT_EVERY: Duration = Duration::from_secs(5);

/// The retry task: every `every`, one attempt at each in-flight order.
pub async fn run(redeemer: Redeemer, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let orders = match redeemer.node().blocking(|s| s.inflight()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "cannot read in-flight redemptions");
                continue;
            }
        };
        for order in orders {
            let id = order.order.id();
            match redeemer.retry(order).await {
                Ok(Some(r)) => {
                    tracing::info!(order = %id.short(), seq = r.entry.seq, "in-flight redemption certified")
                }
                Ok(None) => {}
                // Not yet: partners unreachable, or the certificate still waits on an earlier spend.
                Err(e) if e.is_transient() => {
                    tracing::debug!(order = %id.short(), error = %e, "in-flight redemption not complete yet; will retry")
                }
                Err(e) => {
                    tracing::warn!(order = %id.short(), error = %e, "in-flight redemption did not complete")
                }
            }
        }
    }
}
