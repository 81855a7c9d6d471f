//! The epoch-close task: appends an `EpochClose` for every epoch of our log that has ended by the
//! node's clock, and gossips it.

use crate::node::Node;
use crate::writer::{AppendError, WriterError};
use std::sync::Arc;
use std::time::Duration;

/// How often the clock is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until the node stops.
pub async fn run(node: Arc<Node>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match node.writer().close_due_epochs(node.now()).await {
            Ok(closed) => {
                for e in closed {
                    tracing::info!(epoch = e.entry.epoch, "closed epoch");
                    node.gossip_entry(e);
                }
            }
            // Until the node has rejoined after its start, nothing of ours is appended.
            Err(AppendError::Writer(WriterError::Rejoining)) => {}
            Err(e) => tracing::warn!(error = %e, "cannot close epoch"),
        }
    }
}
